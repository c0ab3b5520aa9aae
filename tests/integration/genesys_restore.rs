//! Genesys Cloud users in the `deleted` state (docs/genesys.md, "Deleted users"): the example
//! org meets a tenant where one of its people was deleted before the first apply. Genesys
//! keeps the deleted user's email, so a create of it fails on every run; scimctl finds it
//! with the Platform user search, plans `restore`, restores it under its old id and gives
//! back the roles deletion took (SCIM roles and a grant limited to a division), and the
//! second plan is empty. The real binary runs against `sandbox serve --flavor genesys`.

use serde_json::{Value, json};

use crate::genesys::{
    SECRET, apply, assert_no_changes, check_request_log, example_for, run, scim_user, serve, token,
};
use crate::watch::Watch;

const PRIYA: &str = "priya.raman@northwind.example";

/// Priya's id on the tenant, kept through her deletion.
const OLD_ID: &str = "0c0ffee0-0000-4000-8000-00000000d1e7";

/// A simulator state file in which Priya was deleted (by an admin, before scimctl ever ran):
/// the `deleted` list of the Genesys section, as a SCIM DELETE leaves it, with one entry per
/// id in `ids`.
fn tenant_with_deleted_priya(dir: &std::path::Path, ids: &[&str]) {
    let deleted: Vec<Value> = ids
        .iter()
        .map(|id| {
            json!({"id": id, "version": 3, "doc": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": PRIYA, "displayName": "Priya R.", "title": "Lead", "active": true}})
        })
        .collect();
    let state = json!({
        "version": 1,
        "users": [],
        "groups": [],
        "genesys": {"deleted": deleted},
        "counter": 3,
    });
    std::fs::write(dir.join("state.json"), state.to_string()).unwrap();
}

#[test]
fn example_org_restores_a_deleted_user() {
    let dir = tempfile::tempdir().unwrap();
    tenant_with_deleted_priya(dir.path(), &[OLD_ID]);
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    // Priya also holds Wrap Up in Field Sales: a grant the grants step must give back.
    let supervisors = ds.join("users").join("supervisors.yaml");
    let yaml = std::fs::read_to_string(&supervisors).unwrap();
    let (head, tail) = yaml.split_at(yaml.find(&format!("userName: {PRIYA}")).unwrap());
    let tail = tail.replacen(
        "roles: [Supervisor, Queue Member, Wrap Up]",
        "roles: [Supervisor, Queue Member, {name: Wrap Up, divisions: [Home, Field Sales]}]",
        1,
    );
    std::fs::write(&supervisors, format!("{head}{tail}")).unwrap();
    let ds = ds.to_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let old_id = OLD_ID;

    let (code, out, err) = run(dir.path(), &["plan", &ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("+ restore user {PRIYA}")), "{out}");
    assert!(out.contains(" 1 to restore,"), "{out}");
    assert!(!out.contains(&format!("+ create user {PRIYA}")), "{out}");
    let (code, json_out, err) = run(dir.path(), &["plan", &ds, "--format", "json"]);
    assert_eq!(code, 0, "{json_out}\n{err}");
    assert!(
        json_out.contains(r#""action": "restore""#) || json_out.contains(r#""action":"restore""#),
        "{json_out}"
    );

    apply(dir.path(), &ds);
    assert_no_changes(dir.path(), &ds);
    // The converged org, read back by export from the directory that names it, plans empty.
    let exported = dir.path().join("exported");
    let exported = exported.to_str().unwrap();
    let (code, out, err) = run(dir.path(), &["export", "--from", &ds, "--out", exported]);
    assert_eq!(code, 0, "{out}\n{err}");
    let users = std::fs::read_dir(std::path::Path::new(exported).join("users")).unwrap();
    assert!(
        users
            .filter_map(|f| std::fs::read_to_string(f.unwrap().path()).ok())
            .any(|yaml| yaml.contains(PRIYA)),
        "the restored user is exported"
    );
    assert_no_changes(dir.path(), exported);

    let user = runtime.block_on(async {
        let bearer = token(&http, &server.url).await;
        let user = scim_user(&http, &server.url, &bearer, PRIYA).await;
        let subject: Value = http
            .get(format!(
                "{}/api/v2/authorization/subjects/{old_id}",
                server.url
            ))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (user, subject)
    });
    let (user, subject) = user;
    assert_eq!(user["id"], old_id, "restored under its id: {user}");
    assert_eq!(user["title"], "Support Team Lead, Tier 2", "{user}");
    let roles: Vec<&str> = user["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["value"].as_str()).collect())
        .unwrap_or_default();
    for role in ["Supervisor", "Queue Member", "Wrap Up"] {
        assert!(roles.contains(&role), "{role} given back: {user}");
    }
    let divisions: Vec<&str> = subject["grants"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter(|g| g["role"]["name"] == "Wrap Up")
                .filter_map(|g| g["division"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(divisions.contains(&"Field Sales"), "{subject}");

    // Every call was a documented one, the search and the restore included.
    check_request_log(dir.path());
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    assert!(log.contains(r#""path":"/api/v2/users/search""#), "{log}");
    assert!(
        log.contains(&format!(r#""path":"/api/v2/users/{old_id}""#)),
        "{log}"
    );
}

/// Two deleted accounts carry Priya's email (a tenant scimctl did not shape): which one is
/// hers cannot be told, so neither is restored. `plan` and `apply` refuse the ambiguous match,
/// naming both ids, as does a `watch` reconcile, and nothing is written: no restore, no create,
/// no other change.
#[test]
fn two_deleted_accounts_of_one_email_are_not_guessed_between() {
    const OTHER_ID: &str = "0c0ffee0-0000-4000-8000-00000000d1e8";
    let dir = tempfile::tempdir().unwrap();
    tenant_with_deleted_priya(dir.path(), &[OLD_ID, OTHER_ID]);
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let ds = ds.to_str().unwrap();

    let (code, out, err) = run(dir.path(), &["plan", ds]);
    assert_eq!(code, 1, "{out}\n{err}");
    for needle in [PRIYA, OLD_ID, OTHER_ID, "deleted users"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let (code, out, err) = run(
        dir.path(),
        &["apply", ds, "--yes", "--password-file", "passwords.txt"],
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains(OTHER_ID), "{err}");
    // watch, the other writer that plans afresh: its reconcile fails the same way.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut watch = Watch::start_with(
        dir.path(),
        std::path::Path::new(ds),
        "",
        "",
        &["--interval", "1h"],
        "scimctl=info",
        &[("GENESYS_TEST_SECRET", SECRET)],
    );
    let line =
        runtime.block_on(watch.wait_for("a failed reconcile", |l| l.contains("reconcile failed")));
    assert!(line.contains("cannot be matched unambiguously"), "{line}");
    let line = runtime.block_on(watch.wait_for("the ids", |l| l.contains(PRIYA)));
    assert!(line.contains(OLD_ID) && line.contains(OTHER_ID), "{line}");
    let (code, rest) = runtime.block_on(watch.terminate());
    assert_eq!(code, Some(0), "{rest:#?}");

    check_request_log(dir.path());
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        let (method, path) = (entry["method"].as_str(), entry["path"].as_str());
        let read = method == Some("GET")
            || path == Some("/oauth/token")
            || path == Some("/api/v2/users/search");
        assert!(read, "nothing is written: {entry}");
    }
}
