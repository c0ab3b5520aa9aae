//! Genesys Cloud licenses (issue 18, item 1), the real binary against `sandbox serve --flavor
//! genesys`: a YAML license that names a definition (`genesysLicense`) is assigned to its
//! users through `POST /api/v2/license/organization`, in batches of at most 100 user ids; a
//! license no YAML license maps is left alone under `ownership.licenses: listed` and taken
//! away under `all`; removals beyond the brakes are held back; the second plan is empty.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::genesys::{CLIENT_ID, assert_no_changes, check_request_log, run, serve_with, token};

const LICENSES: &str = "licenses:
  - name: Pro
    allowedRoles: []
    genesysLicense: cloudCX2
  - name: Basic
    allowedRoles: []
    genesysLicense: cloudCX1
  - name: Local
    allowedRoles: []
";

/// A desired state of `n` users (`u0@x.example`…) with license Pro, `config` added to
/// `scimctl.yaml`, pointed at the simulator at `url`.
fn desired(dir: &Path, url: &str, n: usize, config: &str) -> String {
    let ds = dir.join("desired-state");
    std::fs::create_dir_all(&ds).unwrap();
    let mut users = String::from("users:\n");
    for i in 0..n {
        let _ = writeln!(
            users,
            "  - userName: u{i}@x.example\n    displayName: User {i}\n    license: Pro"
        );
    }
    std::fs::write(ds.join("org.yaml"), format!("{LICENSES}{users}")).unwrap();
    std::fs::write(
        ds.join("scimctl.yaml"),
        format!(
            "{config}target:\n  kind: genesys\n  apiUrl: {url}\n  loginUrl: {url}\n  clientId: {CLIENT_ID}\n  clientSecret: {{fromEnv: GENESYS_TEST_SECRET}}\n  requestsPerMinute: 6000\n"
        ),
    )
    .unwrap();
    ds.to_str().unwrap().to_owned()
}

/// Who holds which license on the simulator: userName → sorted license ids.
pub(crate) async fn holders(http: &reqwest::Client, url: &str) -> BTreeMap<String, Vec<String>> {
    let bearer = token(http, url).await;
    let mut out = BTreeMap::new();
    let mut number = 1;
    loop {
        let held: Value = get(
            http,
            &format!("{url}/api/v2/license/users?pageSize=100&pageNumber={number}"),
            &bearer,
        )
        .await;
        let entities = held["entities"].as_array().cloned().unwrap_or_default();
        for e in &entities {
            let id = e["id"].as_str().unwrap();
            let mut ids: Vec<String> = e["licenses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            let user = get(http, &format!("{url}/api/v2/scim/v2/users/{id}"), &bearer).await;
            let name = user["userName"].as_str().unwrap_or(id).to_owned();
            out.insert(name, ids);
        }
        if entities.len() < 100 {
            break;
        }
        number += 1;
    }
    out
}

async fn get(http: &reqwest::Client, url: &str, bearer: &str) -> Value {
    http.get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Gives `license` to the users `names` behind scimctl's back (an admin in the UI).
pub(crate) async fn give(http: &reqwest::Client, url: &str, names: &[String], license: &str) {
    assign(http, url, names, license, "userIdsAdd").await;
}

/// Takes `license` from the users `names` behind scimctl's back.
pub(crate) async fn take(http: &reqwest::Client, url: &str, names: &[String], license: &str) {
    assign(http, url, names, license, "userIdsRemove").await;
}

/// One license request naming `names` in `field` (`userIdsAdd` or `userIdsRemove`).
async fn assign(http: &reqwest::Client, url: &str, names: &[String], license: &str, field: &str) {
    let bearer = token(http, url).await;
    let mut ids = Vec::new();
    for name in names {
        let found: Value = http
            .get(format!("{url}/api/v2/scim/v2/users"))
            .query(&[("filter", format!("userName eq \"{name}\""))])
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.push(found["Resources"][0]["id"].as_str().unwrap().to_owned());
    }
    let answer: Value = http
        .post(format!("{url}/api/v2/license/organization"))
        .bearer_auth(&bearer)
        .json(&json!({"assignments": [{"licenseId": license, field: ids}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        answer
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["result"] == "Success"),
        "{answer}"
    );
}

fn apply(dir: &Path, ds: &str) -> (i32, String) {
    let (code, out, err) = run(dir, &["apply", ds, "--yes"]);
    (code, format!("{out}\n{err}"))
}

// 130 new users get license Pro (cloudCX2) in batches of at most 100 user ids; the second plan
// is empty; a license the YAML maps nowhere (cloudCX3) given behind scimctl's back is left
// under `listed` and taken away under `all`; a Basic license (mapped, not theirs) is taken
// away under `listed` too.
#[test]
fn licenses_are_assigned_in_batches_and_follow_ownership() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let url = server.url.clone();
    let ds = desired(dir.path(), &url, 130, "");
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (code, out, err) = run(dir.path(), &["plan", &ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Pro (cloudCX2)"), "{out}");
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(" 0 failed"), "{out}");
    let held = runtime.block_on(holders(&http, &url));
    assert_eq!(held.len(), 130, "{held:?}");
    assert!(held.keys().all(|k| k.ends_with("@x.example")), "{held:?}");
    assert!(held.values().all(|l| l == &["cloudCX2"]), "{held:?}");
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    let posts = log
        .lines()
        .filter(|l| l.contains(r#""method":"POST","path":"/api/v2/license/organization""#))
        .count();
    assert!(posts >= 2, "130 user ids need two requests: {posts}");
    check_request_log(dir.path());
    assert_no_changes(dir.path(), &ds);

    let names =
        |r: std::ops::Range<usize>| r.map(|i| format!("u{i}@x.example")).collect::<Vec<_>>();
    runtime.block_on(give(&http, &url, &names(0..2), "cloudCX3"));
    runtime.block_on(give(&http, &url, &names(2..3), "cloudCX1"));
    // listed: cloudCX3 is no YAML license's, so it stays; cloudCX1 is Basic's, so it goes.
    let (code, out, err) = run(dir.path(), &["plan", &ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Basic (cloudCX1)"), "{out}");
    assert!(!out.contains("cloudCX3"), "{out}");
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 0, "{out}");
    let held = runtime.block_on(holders(&http, &url));
    assert_eq!(held["u0@x.example"], ["cloudCX2", "cloudCX3"]);
    assert_eq!(held["u2@x.example"], ["cloudCX2"]);
    assert_no_changes(dir.path(), &ds);

    // all: every license not the user's goes.
    let ds = desired(dir.path(), &url, 130, "ownership: {licenses: all}\n");
    let (code, out, err) = run(dir.path(), &["plan", &ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("cloudCX3"), "{out}");
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 0, "{out}");
    let held = runtime.block_on(holders(&http, &url));
    assert!(held.values().all(|l| l == &["cloudCX2"]), "{held:?}");
    assert_no_changes(dir.path(), &ds);
}

// License removals count toward the brakes: 40 users holding a license YAML says they should
// not is more than maxDeleteCount and the share allowed, so the removals are held back (a
// blocked row), apply writes none of them and exits 4; the licenses stay.
#[test]
fn license_removals_beyond_the_brakes_are_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let url = server.url.clone();
    let config = "ownership: {licenses: all}\nsafety: {maxDeleteCount: 5, maxDeletePercent: 10}\n";
    let ds = desired(dir.path(), &url, 40, config);
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 0, "{out}");
    let names: Vec<String> = (0..40).map(|i| format!("u{i}@x.example")).collect();
    runtime.block_on(give(&http, &url, &names, "cloudCX3"));

    let (code, out, err) = run(dir.path(), &["plan", &ds, "--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<&Value> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["edits"].to_string().contains("cloudCX3"))
        .collect();
    assert_eq!(rows.len(), 40, "{out}");
    assert!(
        rows.iter().all(|c| c["blocked"]
            .as_str()
            .is_some_and(|r| r.contains("license assignments to remove"))),
        "{rows:#?}"
    );
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 4, "{out}");
    let held = runtime.block_on(holders(&http, &url));
    assert!(
        held.values().all(|l| l == &["cloudCX2", "cloudCX3"]),
        "{held:?}"
    );
}

fn doctor_check(dir: &Path, ds: &str, name: &str) -> (i32, Value) {
    let (code, out, err) = run(dir, &["doctor", ds, "--format", "json"]);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
        .clone();
    (code, check)
}

// Users holding two definitions (given behind scimctl's back) are exported without a
// `license`, the others with theirs; licenses.yaml maps every definition held; the export
// plans empty, under `ownership.licenses: listed` as written and under `all` too.
#[test]
fn export_writes_licenses_and_reads_back_empty() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let url = server.url.clone();
    let ds = desired(dir.path(), &url, 5, "");
    // A work email for three users, none for two: Genesys lists every user's userName as a
    // read-only `other` email, which the export leaves out (desired state may not write it).
    let org = Path::new(&ds).join("org.yaml");
    let mut yaml = std::fs::read_to_string(&org).unwrap();
    for i in 0..3 {
        yaml = yaml.replace(
            &format!("displayName: User {i}\n"),
            &format!(
                "displayName: User {i}\n    emails: [{{value: u{i}@x.example, type: work, primary: true}}]\n"
            ),
        );
    }
    std::fs::write(&org, yaml).unwrap();
    let (code, out) = apply(dir.path(), &ds);
    assert_eq!(code, 0, "{out}");
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let two: Vec<String> = (0..2).map(|i| format!("u{i}@x.example")).collect();
    runtime.block_on(give(&http, &url, &two, "cloudCX3"));

    let exported = dir.path().join("exported");
    let exported = exported.to_str().unwrap();
    let (code, out, err) = run(dir.path(), &["export", "--from", &ds, "--out", exported]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("holds several license definitions"), "{err}");
    let licenses = std::fs::read_to_string(Path::new(exported).join("licenses.yaml")).unwrap();
    assert!(licenses.contains("genesysLicense: cloudCX2"), "{licenses}");
    assert!(licenses.contains("genesysLicense: cloudCX3"), "{licenses}");
    let users = std::fs::read_dir(Path::new(exported).join("users"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    assert_eq!(users.matches("license: cloudCX2").count(), 3, "{users}");
    assert_eq!(users.matches("type: work").count(), 3, "{users}");
    assert!(!users.contains("type: other"), "{users}");
    assert!(!users.contains("license: cloudCX3"), "{users}");
    assert_no_changes(dir.path(), exported);

    let config = Path::new(exported).join("scimctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}ownership: {{licenses: all}}\n").replace(
            "ownership: {users: listed, groups: listed, roles: listed}\n",
            "",
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("licenses: all"), "{text}");
    assert_no_changes(dir.path(), exported);
}

// doctor says whether the client may assign the mapped licenses, from reads alone: a pass
// with the simulator's role (it holds authorization:grant:add), a failure naming exactly
// that permission once the role lacks it, a failure for a definition the org does not have,
// and a skip when YAML maps none. Every call doctor makes is a GET.
#[test]
fn doctor_checks_license_assignment() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let url = server.url.clone();
    let ds = desired(dir.path(), &url, 2, "");
    let (code, check) = doctor_check(dir.path(), &ds, "license assignment");
    assert_eq!(code, 0, "{check}");
    assert_eq!(check["status"], "pass", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("not tried"),
        "{check}"
    );

    crate::doctor::edit_client_permissions(&url, &["authorization:grant:add"], &[]);
    let (code, check) = doctor_check(dir.path(), &ds, "license assignment");
    assert_eq!(code, 1, "{check}");
    assert_eq!(check["status"], "fail", "{check}");
    assert_eq!(
        check["needed_permissions"],
        json!(["authorization:grant:add"])
    );
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    assert!(
        !log.contains(r#""method":"POST","path":"/api/v2/license"#),
        "doctor assigns nothing"
    );

    let org = Path::new(&ds).join("org.yaml");
    let yaml = std::fs::read_to_string(&org).unwrap();
    std::fs::write(&org, yaml.replace("cloudCX1", "cloudCX9")).unwrap();
    let (_, check) = doctor_check(dir.path(), &ds, "license assignment");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("cloudCX9"),
        "{check}"
    );

    std::fs::write(
        &org,
        yaml.replace("    genesysLicense: cloudCX2\n", "")
            .replace("    genesysLicense: cloudCX1\n", ""),
    )
    .unwrap();
    let (_, check) = doctor_check(dir.path(), &ds, "license assignment");
    assert_eq!(check["status"], "skip", "{check}");
}
