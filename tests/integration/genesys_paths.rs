//! Genesys Cloud PATCH path forms and contact types (audit items 12 and 13, docs/genesys.md
//! §3 and §6), end to end: the real binary against `sandbox serve --flavor genesys`, which
//! refuses any PATCH path but the documented forms and any email or phone type Genesys does
//! not list.

use std::path::Path;

use serde_json::Value;

use crate::genesys::{apply, assert_no_changes, example_for, run, serve, token};

/// The user `user_name` as SCIM reads it back from `origin`.
fn scim_user(origin: &str, user_name: &str) -> Value {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let bearer = token(&http, origin).await;
        crate::genesys::scim_user(&http, origin, &bearer, user_name).await
    })
}

// A changed work email and work phone of an existing user reach the simulator, which takes
// only `emails[type eq "work"].value` and `phoneNumbers[type eq "work"].value` (a replace of
// the whole value through the filter is 400 `invalidPath`), and the next plan is empty.
#[test]
fn email_and_phone_changes_use_the_documented_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let ds_str = ds.to_str().unwrap().to_owned();
    apply(dir.path(), &ds_str);

    let agents = ds.join("users").join("agents-sales-billing.yaml");
    let yaml = std::fs::read_to_string(&agents).unwrap();
    let yaml = yaml
        .replacen(
            "{value: carlos.ruiz@northwind.example, type: work, primary: true}",
            "{value: carlos.r@northwind.example, type: work, primary: true}",
            1,
        )
        .replacen("+14155550141", "+14155550149", 1);
    std::fs::write(&agents, yaml).unwrap();
    let (code, out, err) = run(dir.path(), &["plan", &ds_str]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("carlos.r@northwind.example"), "{out}");
    assert!(out.contains("+14155550149"), "{out}");
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);

    let user = scim_user(&server.url, "carlos.ruiz@northwind.example");
    let work: Vec<&Value> = user["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "work")
        .collect();
    assert_eq!(work.len(), 1, "{user}");
    assert_eq!(work[0]["value"], "carlos.r@northwind.example", "{user}");
    assert_eq!(user["phoneNumbers"][0]["value"], "+14155550149", "{user}");
}

/// A desired-state directory for a Genesys target with one user whose contacts are `contacts`
/// (YAML lines under the user).
fn genesys_ds(dir: &Path, contacts: &str) -> String {
    let ds = dir.join("ds");
    std::fs::create_dir_all(ds.join("users")).unwrap();
    std::fs::write(
        ds.join("scimctl.yaml"),
        "target:\n  kind: genesys\n  region: mypurecloud.com\n  clientId: cid\n  clientSecret: {fromEnv: GENESYS_TEST_SECRET}\n",
    )
    .unwrap();
    std::fs::write(
        ds.join("users").join("people.yaml"),
        format!("users:\n  - userName: ana@x.example\n    displayName: Ana\n{contacts}"),
    )
    .unwrap();
    ds.to_str().unwrap().to_owned()
}

// `validate` and `plan` on a Genesys target refuse a phone of type fax and an email of type
// home with exit code 3 (invalid input, nothing contacted) and the value's file:line:col.
#[test]
fn contact_types_genesys_refuses_are_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    for (contacts, says, at) in [
        (
            "    phoneNumbers:\n      - {value: '+14155550100', type: fax}\n",
            "Genesys Cloud refuses phone type `fax`",
            "people.yaml:5:9",
        ),
        (
            "    emails:\n      - {value: ana@home.example, type: home}\n",
            "Genesys Cloud refuses email type `home`",
            "people.yaml:5:9",
        ),
    ] {
        let ds = genesys_ds(dir.path(), contacts);
        for command in ["validate", "plan"] {
            let (code, out, err) = run(dir.path(), &[command, &ds]);
            assert_eq!(code, 3, "{command}: {out}\n{err}");
            let line = err
                .lines()
                .chain(out.lines())
                .find(|l| l.contains(says))
                .unwrap_or_else(|| panic!("{command}: no `{says}`:\n{out}\n{err}"));
            assert!(line.contains(at), "{command}: {line}");
        }
    }
}
