//! `scimctl explain` end to end: the real binary on the example org (a supervisor's
//! effective permissions and where each comes from, a role's holders, a nested group, unknown
//! names), then against the embedded sandbox and an in-process sandbox after `apply --yes`,
//! where the tenant is changed behind scimctl's back and explain must say exactly how.

use std::path::Path;

use scimctl::scim::wire::{Group, User};
use scimctl::scim::{PatchOperation, Resource, ScimRead};
use serde_json::{Value, json};

use crate::support::scimctl_with_token as scimctl;

const SAM: &str = "sam.okafor@northwind.example";

/// `explain ... --format json` in the repository, so sources read `desired-state/...`.
fn explain_json(args: &[&str]) -> Value {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = vec!["explain"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let (code, out, err) = scimctl(root, &all, "");
    assert_eq!(code, 0, "{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// A chain as `kind name file:line` strings.
fn chain(value: &Value) -> Vec<String> {
    value["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {} {}:{}",
                l["kind"].as_str().unwrap(),
                l["name"].as_str().unwrap(),
                l["source"]["file"].as_str().unwrap_or("-"),
                l["source"]["line"]
            )
        })
        .collect()
}

fn permission<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["permission"] == name)
        .unwrap_or_else(|| panic!("{name} not in {doc:#}"))
}

/// A supervisor's effective permissions from the example org: 18, deduplicated, each with
/// the chain through role inheritance and the YAML line of every link; license and groups.
#[test]
fn supervisor_permissions_and_where_they_come_from() {
    let doc = explain_json(&["user", "Sam.Okafor@northwind.example"]);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["kind"], "user");
    assert_eq!(doc["name"], SAM);
    assert_eq!(doc["permissions"].as_array().unwrap().len(), 18);
    // conversation:call:accept: Supervisor inherits Agent, which declares it.
    assert_eq!(
        chain(permission(&doc, "conversation:call:accept")),
        [
            "user sam.okafor@northwind.example desired-state/users/supervisors.yaml:4",
            "role Supervisor desired-state/users/supervisors.yaml:15",
            "role Agent desired-state/roles.yaml:42",
            "permission conversation:call:accept desired-state/roles.yaml:8",
        ]
    );
    assert_eq!(
        chain(permission(&doc, "analytics:conversationDetail:view"))[2],
        "role Reporting desired-state/roles.yaml:42"
    );
    // routing:queue:view comes from his own Queue Member grant, not from Supervisor.
    assert_eq!(
        chain(permission(&doc, "routing:queue:view"))[1],
        "role Queue Member desired-state/users/supervisors.yaml:15"
    );
    assert_eq!(doc["license"]["name"], "Supervisor");
    assert_eq!(doc["license"]["fits"], true);
    assert_eq!(
        doc["groups"],
        json!([{
            "group": "Support", "direct": true,
            "chain": [
                {"kind": "user", "name": SAM, "source": {"file": "desired-state/users/supervisors.yaml", "line": 4}},
                {"kind": "group", "name": "Support", "source": {"file": "desired-state/groups.yaml", "line": 11}}
            ]
        }])
    );
}

/// The text form of the same question, as a terminal shows it.
#[test]
fn supervisor_text() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = scimctl(root, &["explain", "user", SAM], "");
    assert_eq!(code, 0, "{out}\n{err}");
    for expected in [
        "user sam.okafor@northwind.example (Sam Okafor)\n  defined at desired-state/users/supervisors.yaml:4\n",
        "\nRoles (3)\n  Supervisor    desired-state/users/supervisors.yaml:15\n",
        "\nLicense Supervisor  (assigned at desired-state/users/supervisors.yaml:16, defined at desired-state/licenses.yaml:11)\n",
        "\nEffective permissions (18)\n",
        "    → inherits role Agent                desired-state/roles.yaml:42\n    → grants conversation:call:accept    desired-state/roles.yaml:8\n",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(err.is_empty(), "{err}");
}

/// A role: who holds it and through what, what it inherits, which licenses allow it.
#[test]
fn role_holders_and_licenses() {
    let doc = explain_json(&["role", "system administrator"]);
    let holders: Vec<&str> = doc["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["user"].as_str().unwrap())
        .collect();
    assert_eq!(
        holders,
        [
            "ops.admin@northwind.example",
            "breakglass.admin@northwind.example"
        ]
    );
    let inherits: Vec<(&str, bool)> = doc["inherits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["role"].as_str().unwrap(), r["direct"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        inherits,
        [("Supervisor", true), ("Agent", false), ("Reporting", false)]
    );
    assert_eq!(doc["licenses"][0]["license"], "Administrator");
    // Its own `*`, Supervisor's 4, Agent's 6 and Reporting's 4.
    assert_eq!(doc["permissions"].as_array().unwrap().len(), 15);
    assert_eq!(
        chain(permission(&doc, "*")),
        [
            "role System Administrator desired-state/roles.yaml:60",
            "permission * desired-state/roles.yaml:62",
        ]
    );

    let agent = explain_json(&["role", "Agent"]);
    let sam = agent["holders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["user"] == SAM)
        .unwrap();
    assert_eq!(sam["direct"], false);
    assert_eq!(
        chain(sam),
        [
            "user sam.okafor@northwind.example desired-state/users/supervisors.yaml:4",
            "role Supervisor desired-state/users/supervisors.yaml:15",
            "role Agent desired-state/roles.yaml:42",
        ]
    );
}

/// A nested group: Support holds the two tiers and, through them, their agents.
#[test]
fn nested_group_members() {
    let doc = explain_json(&["group", "support"]);
    let members = doc["members"].as_array().unwrap();
    assert_eq!(members.len(), 24);
    let maria = members
        .iter()
        .find(|m| m["name"] == "maria.lopez@northwind.example")
        .unwrap();
    assert_eq!(maria["direct"], false);
    assert_eq!(
        chain(maria),
        [
            "group Support desired-state/groups.yaml:5",
            "group Support Tier 1 desired-state/groups.yaml:9",
            "user maria.lopez@northwind.example desired-state/users/agents-support.yaml:18",
        ]
    );
    let tier = explain_json(&["group", "Support Tier 1"]);
    assert_eq!(tier["parents"][0]["group"], "Support");
}

/// Unknown names exit 1 with a hint and print nothing on stdout; a renamed user points at
/// the new name; an unknown kind is a usage error (64).
#[test]
fn unknown_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = scimctl(root, &["explain", "role", "Supervsor"], "");
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "error: no role named `Supervsor` in the desired state (did you mean `Supervisor`?)\n"
    );
    let (code, _, err) = scimctl(
        root,
        &["explain", "user", "maria.garcia@northwind.example"],
        "",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("(it was renamed to `maria.lopez@northwind.example`)"),
        "{err}"
    );
    let (code, _, _) = scimctl(root, &["explain", "license", "Supervisor"], "");
    assert_eq!(code, 64);
}

/// After `apply --yes` into the embedded sandbox, `--live` reads it and finds nothing that
/// differs for the supervisor.
#[test]
fn live_against_the_embedded_sandbox_after_apply() {
    let cwd = tempfile::tempdir().unwrap();
    // A copy: the embedded sandbox lives beside the directory.
    let dir = cwd.path().join("desired-state");
    crate::support::copy_example(&dir);
    let dir = dir.to_str().unwrap();
    let (code, out, err) = scimctl(cwd.path(), &["apply", dir, "--yes"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = scimctl(
        cwd.path(),
        &["explain", "user", SAM, dir, "--live", "--format", "json"],
        "",
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let live = &doc["live"];
    assert_eq!(live["found"], true);
    assert!(
        live["target"].as_str().unwrap().starts_with("sandbox"),
        "{live}"
    );
    assert_eq!(live["compared"], json!(["userName", "roles", "groups"]));
    assert_eq!(live["differences"], json!([]));
}

fn op(op: &str, path: &str, value: Option<Value>) -> PatchOperation {
    let mut json = json!({"op": op, "path": path});
    if let Some(value) = value {
        json["value"] = value;
    }
    serde_json::from_value(json).unwrap()
}

/// The other writer: deactivates the supervisor, grants him Reporting directly, and moves
/// him from Support to Sales. Returns his live id.
async fn move_sam(client: &scimctl::scim::ScimClient) -> String {
    let snapshot = client.snapshot().await.unwrap();
    let sam = snapshot
        .users
        .iter()
        .find(|u| u.natural_key() == SAM)
        .unwrap();
    let sam_id = sam.id().unwrap().to_owned();
    let group_id = |name: &str| {
        snapshot
            .groups
            .iter()
            .find(|g| g.natural_key() == name)
            .unwrap()
            .id()
            .unwrap()
            .to_owned()
    };
    client
        .patch::<User>(
            &sam_id,
            None,
            &[
                op("replace", "active", Some(json!(false))),
                op("add", "roles", Some(json!([{"value": "Reporting"}]))),
            ],
        )
        .await
        .unwrap();
    let filter = format!("members[value eq \"{sam_id}\"]");
    client
        .patch::<Group>(&group_id("Support"), None, &[op("remove", &filter, None)])
        .await
        .unwrap();
    client
        .patch::<Group>(
            &group_id("Sales"),
            None,
            &[op("add", "members", Some(json!([{"value": sam_id}])))],
        )
        .await
        .unwrap();
    sam_id
}

/// After `apply --yes` to a SCIM server, someone else moves the supervisor from Support to
/// Sales and grants him Reporting directly: `explain --target` reports exactly that for the
/// user, the group and the role, and leaves `active` alone (the YAML does not write it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_shows_where_live_differs() {
    let token = "explain-sandbox-token";
    let running = crate::support::bearer_sandbox(token).await;
    let url = running.base_url.clone();
    let cwd = tempfile::tempdir().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state");
    let dir = dir.to_str().unwrap();
    let run = |args: Vec<String>| {
        let cwd = cwd.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                scimctl(&cwd, &args, token)
            })
            .await
            .unwrap()
        }
    };
    let args = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (code, out, err) = run(args(&["apply", dir, "--target", &url, "--yes"])).await;
    assert_eq!(code, 0, "{out}\n{err}");

    let sam_id = move_sam(&crate::support::bearer_client(&url, token, None)).await;

    let explain = |kind: &'static str, name: &'static str| {
        let run = &run;
        let url = url.clone();
        async move {
            let (code, out, err) = run(args(&[
                "explain", kind, name, dir, "--target", &url, "--format", "json",
            ]))
            .await;
            assert_eq!(code, 0, "{out}\n{err}");
            let doc: Value = serde_json::from_str(&out).unwrap();
            doc["live"].clone()
        }
    };
    let live = explain("user", SAM).await;
    assert_eq!(live["id"], sam_id.as_str());
    assert_eq!(live["compared"], json!(["userName", "roles", "groups"]));
    assert_eq!(
        live["differences"],
        json!([
            {"attribute": "roles", "onlyLive": ["Reporting"]},
            {"attribute": "groups", "onlyDesired": ["Support"], "onlyLive": ["Sales"]}
        ])
    );
    let live = explain("group", "Support").await;
    assert_eq!(
        live["differences"],
        json!([{"attribute": "members", "onlyDesired": [SAM]}])
    );
    let live = explain("role", "Reporting").await;
    assert_eq!(
        live["differences"],
        json!([{"attribute": "holders", "onlyLive": [SAM]}])
    );

    // The text form says the same in a terminal.
    let (code, out, err) = run(args(&["explain", "user", SAM, dir, "--target", &url])).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "\nLive on {url} (id {sam_id})\n  compared: userName, roles, groups\n  ~ roles: live only: Reporting\n  ~ groups: desired only: Support; live only: Sales\n"
        )),
        "{out}"
    );
    running.shutdown().await.unwrap();
}
