//! `scimctl doctor` against `sandbox serve --flavor genesys` (audit item 15 and §5): its own
//! roles read through `/api/v2/tokens/me` when `/api/v2/oauth/clients/{id}` is refused, a
//! missing permission named exactly (`telephony:extension:assign` when YAML sets an
//! extension), and the read-only probes in the JSON report, including a server whose `ETag`
//! and `meta.version` disagree.

use std::path::Path;

use serde_json::{Value, json};

use crate::genesys::{
    SECRET, apply, documented, example_for, get_json, run, serve, serve_with, token,
};

/// The request log's entries as `(method, path, status)`.
fn requests(dir: &Path) -> Vec<(String, String, u64)> {
    let log = std::fs::read_to_string(dir.join("requests.log")).unwrap();
    log.lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            (
                e["method"].as_str().unwrap().to_owned(),
                e["path"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn doctor_json(dir: &Path, ds: &str) -> (i32, Value, String) {
    let (code, out, err) = run(dir, &["doctor", ds, "--format", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, report, err)
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
}

fn probe<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no probe {name}: {report:#}"))
}

// The simulator refuses oauth/clients/{id} (the client lacks oauth:client:view), so doctor
// reads its grants through tokens/me and still verifies them; the JSON report parses and
// carries every probe with a status, and every request was a documented read.
#[test]
fn json_report_with_grants_from_tokens_me_and_probes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let ds = ds.to_str().unwrap();
    apply(dir.path(), ds);
    let before = requests(dir.path()).len();

    let (code, report, err) = doctor_json(dir.path(), ds);
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(report["failed"], false);
    let permissions = check(&report, "permissions");
    assert_eq!(permissions["status"], "pass", "{permissions}");
    assert!(
        permissions["detail"]
            .as_str()
            .unwrap()
            .contains("read through /api/v2/tokens/me"),
        "{permissions}"
    );
    let calls = &requests(dir.path())[before..];
    assert!(
        calls
            .iter()
            .any(|(m, p, s)| m == "GET" && p == "/api/v2/tokens/me" && *s == 200),
        "{calls:?}"
    );
    for (method, path, _) in calls {
        assert!(
            method == "GET" || path == "/oauth/token",
            "doctor only reads: {method} {path}"
        );
        assert!(
            documented(method, path),
            "undocumented call: {method} {path}"
        );
    }

    let statuses = ["confirmed", "differs", "not testable"];
    let probes = report["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 7, "{report:#}");
    for p in probes {
        assert!(statuses.contains(&p["status"].as_str().unwrap()), "{p}");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{p}");
    }
    // The simulator: bare meta.version, quoted ETag; skills in the default list; SCIM
    // roles are the direct grants; PATCH and ETag announced, maxResults 100.
    assert_eq!(probe(&report, "version vs etag")["status"], "confirmed");
    assert_eq!(
        probe(&report, "extension in default list")["status"],
        "confirmed"
    );
    assert_eq!(probe(&report, "roles vs grants")["status"], "confirmed");
    let spc = probe(&report, "serviceproviderconfig values");
    assert_eq!(
        (&spc["status"], &spc["detail"]),
        (
            &json!("confirmed"),
            &json!("filter.maxResults 100, etag yes, patch yes")
        )
    );
    let deep = probe(&report, "deep paging");
    assert_eq!(deep["status"], "not testable", "{deep}");
    assert_eq!(
        probe(&report, "group put semantics")["status"],
        "not testable"
    );

    // The text form lists the probes after the checks.
    let (code, out, err) = run(dir.path(), &["doctor", ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("[confirmed   ] version vs etag"), "{out}");
    assert!(out.contains("[not testable] deep paging"), "{out}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));
}

/// Replaces the permission policies of the sandbox client's role `scimctl`, dropping the
/// actions in `drop` and adding those in `add` (`domain:entity:action`).
pub(crate) fn edit_client_permissions(origin: &str, drop: &[&str], add: &[&str]) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let bearer = token(&http, origin).await;
        let roles = get_json(
            &http,
            &format!("{origin}/api/v2/authorization/roles"),
            &bearer,
        )
        .await;
        let role = roles["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "scimctl")
            .unwrap()
            .clone();
        let mut policies: Vec<Value> = role["permissionPolicies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let (domain, entity) = (
                    p["domain"].as_str().unwrap(),
                    p["entityName"].as_str().unwrap(),
                );
                let actions: Vec<&Value> = p["actionSet"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| {
                        !drop.contains(
                            &format!("{domain}:{entity}:{}", a.as_str().unwrap()).as_str(),
                        )
                    })
                    .collect();
                json!({"domain": domain, "entityName": entity, "actionSet": actions})
            })
            .filter(|p| !p["actionSet"].as_array().unwrap().is_empty())
            .collect();
        for permission in add {
            let parts: Vec<&str> = permission.split(':').collect();
            policies
                .push(json!({"domain": parts[0], "entityName": parts[1], "actionSet": [parts[2]]}));
        }
        let status = http
            .put(format!(
                "{origin}/api/v2/authorization/roles/{}",
                role["id"].as_str().unwrap()
            ))
            .bearer_auth(&bearer)
            .json(&json!({"name": "scimctl", "permissionPolicies": policies}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
    });
}

// The example org sets a phone extension (`;ext=42`): with the client's role lacking
// telephony:extension:assign, doctor fails and names exactly that permission, in the text
// and in the JSON; without the extension in YAML the same role passes.
#[test]
fn missing_extension_permission_is_named_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    edit_client_permissions(&server.url, &["telephony:extension:assign"], &[]);
    let ds_str = ds.to_str().unwrap();

    let (code, report, err) = doctor_json(dir.path(), ds_str);
    assert_eq!(code, 1, "{report:#}\n{err}");
    let permissions = check(&report, "permissions");
    assert_eq!(permissions["status"], "fail", "{permissions}");
    assert_eq!(
        permissions["needed_permissions"],
        json!(["telephony:extension:assign"]),
        "{permissions}"
    );
    assert!(
        permissions["detail"]
            .as_str()
            .unwrap()
            .ends_with("lack: telephony:extension:assign"),
        "{permissions}"
    );
    let (code, out, _) = run(dir.path(), &["doctor", ds_str]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("[FAIL] permissions") && l.contains("telephony:extension:assign")),
        "{out}"
    );

    let agents = ds.join("users").join("agents-support.yaml");
    let yaml = std::fs::read_to_string(&agents).unwrap();
    assert!(yaml.contains(";ext=42"));
    std::fs::write(
        &agents,
        yaml.replace("tel:+1-415-555-0142;ext=42", "+14155550142"),
    )
    .unwrap();
    let (code, report, err) = doctor_json(dir.path(), ds_str);
    assert_eq!(code, 0, "{report:#}\n{err}");
    assert_eq!(check(&report, "permissions")["status"], "pass");
}

// A server whose ETag header (`W/"n"`) is not the body's meta.version (`n`) nor that
// version quoted: the probe reports `differs` and shows both.
#[test]
fn etag_unlike_meta_version_differs() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--weak-etags"]);
    let ds = example_for(&server, dir.path());
    let ds = ds.to_str().unwrap();
    apply(dir.path(), ds);
    let (code, report, err) = doctor_json(dir.path(), ds);
    assert_eq!(code, 0, "{report:#}\n{err}");
    let probe = probe(&report, "version vs etag");
    assert_eq!(probe["status"], "differs", "{probe}");
    assert!(
        probe["detail"].as_str().unwrap().contains("W/\""),
        "{probe}"
    );
}

// A token whose /api/v2/tokens/me does not name its OAuth client: doctor falls back to
// /api/v2/oauth/clients/{id}. Without oauth:client:view that read is refused too, and the
// check warns with both reasons and the permission it needs; once the client's role holds
// it, the permissions are verified through the client read.
#[test]
fn permissions_fall_back_to_the_oauth_client_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--tokens-me-without-client"]);
    let ds = example_for(&server, dir.path());
    let ds = ds.to_str().unwrap();

    let (code, report, err) = doctor_json(dir.path(), ds);
    assert_eq!(code, 0, "a warning is not a failure: {report:#}\n{err}");
    let permissions = check(&report, "permissions");
    assert_eq!(permissions["status"], "warn", "{permissions}");
    let detail = permissions["detail"].as_str().unwrap();
    for says in [
        "/api/v2/tokens/me named no OAuth client",
        "oauth:client:view",
        "not verified",
    ] {
        assert!(detail.contains(says), "{says}: {permissions}");
    }

    edit_client_permissions(&server.url, &[], &["oauth:client:view"]);
    let before = requests(dir.path()).len();
    let (code, report, err) = doctor_json(dir.path(), ds);
    assert_eq!(code, 0, "{report:#}\n{err}");
    let permissions = check(&report, "permissions");
    assert_eq!(permissions["status"], "pass", "{permissions}");
    assert!(
        permissions["detail"]
            .as_str()
            .unwrap()
            .contains("read through /api/v2/oauth/clients/{id}"),
        "{permissions}"
    );
    let calls = &requests(dir.path())[before..];
    assert!(
        calls
            .iter()
            .any(|(m, p, s)| m == "GET" && p.starts_with("/api/v2/oauth/clients/") && *s == 200),
        "{calls:?}"
    );
}
