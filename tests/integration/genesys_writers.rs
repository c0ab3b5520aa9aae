//! Licenses and groups' role grants (issue 18) on the writers other than a plain `apply`:
//! `watch` assigns both and keeps the removal brakes on both, a saved plan forged to release
//! held-back license removals writes nothing, and a saved plan applied after the tenant moved
//! takes no license it did not plan to take (`apply --plan`). The real binary
//! against `sandbox serve --flavor genesys`.

use std::fmt::Write as _;
use std::path::Path;

use crate::genesys::{CLIENT_ID, SECRET, Server, apply_forged_plan, run, serve_with};
use crate::genesys_group_roles::{grants_of, platform_group};
use crate::genesys_licenses::{give, holders, take};
use crate::watch::Watch;

/// How many users the desired state has.
const USERS: usize = 40;

/// A desired state for the simulator at `url`: role Coach, license Pro (`cloudCX2`, which
/// allows Coach) for `u0@x.example`… `u39@x.example`, and group Coaches (u0, u1) granting
/// `group_roles`; licenses and groups owned (`all`) and brakes of 5 removals or 10 %.
fn desired(dir: &Path, url: &str, group_roles: &str) -> String {
    let ds = dir.join("desired-state");
    std::fs::create_dir_all(&ds).unwrap();
    let mut org = String::from(
        "roles:\n  - name: Coach\n    permissions: [\"directory:user:view\"]\n\
         licenses:\n  - name: Pro\n    allowedRoles: [Coach]\n    genesysLicense: cloudCX2\n\
         users:\n",
    );
    for i in 0..USERS {
        let _ = writeln!(
            org,
            "  - userName: u{i}@x.example\n    displayName: User {i}\n    license: Pro"
        );
    }
    let _ = writeln!(
        org,
        "groups:\n  - displayName: Coaches\n    members: [u0@x.example, u1@x.example]\n    roles: {group_roles}"
    );
    std::fs::write(ds.join("org.yaml"), org).unwrap();
    std::fs::write(
        ds.join("scimctl.yaml"),
        format!(
            "ownership: {{licenses: all, groups: all}}\nsafety: {{maxDeleteCount: 5, maxDeletePercent: 10}}\n\
             target:\n  kind: genesys\n  apiUrl: {url}\n  loginUrl: {url}\n  clientId: {CLIENT_ID}\n  clientSecret: {{fromEnv: GENESYS_TEST_SECRET}}\n  requestsPerMinute: 6000\n"
        ),
    )
    .unwrap();
    ds.to_str().unwrap().to_owned()
}

/// The names of every desired user.
fn everyone() -> Vec<String> {
    (0..USERS).map(|i| format!("u{i}@x.example")).collect()
}

/// The grants of group Coaches, as `(role, division)`.
fn coach_grants(runtime: &tokio::runtime::Runtime, server: &Server) -> Vec<(String, String)> {
    let group = platform_group(runtime, server, "Coaches");
    let id = group["id"].as_str().unwrap();
    grants_of(runtime, server, id)
        .into_iter()
        .map(|(_, role, division)| (role, division))
        .collect()
}

/// A simulator with the desired state of [`desired`] (the group granting Coach) applied.
fn applied() -> (tempfile::TempDir, Server, String) {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let ds = desired(dir.path(), &server.url, "[Coach]");
    let (code, out, err) = run(dir.path(), &["apply", &ds, "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    (dir, server, ds)
}

// watch, with the target its directory names: the start reconcile gives every user its
// license and the group its grant (switching rolesEnabled on). Then 40 licenses given behind
// its back and the group's roles taken out of YAML: the 40 license removals are beyond the
// brakes (more than 5 and 10 %), so they are held back and every license stays, while the one
// revocation, within them, goes ahead in the same reconcile.
#[test]
fn watch_carries_licenses_and_group_grants_and_keeps_the_brakes() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let ds = desired(dir.path(), &server.url, "[Coach]");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let mut watch = Watch::start_with(
        dir.path(),
        Path::new(&ds),
        "",
        "",
        &["--interval", "1h"],
        "scimctl=info",
        &[("GENESYS_TEST_SECRET", SECRET)],
    );
    let line = runtime.block_on(watch.reconciled("start"));
    assert!(line.contains("blocked=0"), "{line}");
    let held = runtime.block_on(holders(&http, &server.url));
    assert_eq!(held.len(), USERS, "{held:?}");
    assert!(held.values().all(|l| l == &["cloudCX2"]), "{held:?}");
    assert_eq!(
        platform_group(&runtime, &server, "Coaches")["rolesEnabled"],
        true
    );
    assert_eq!(
        coach_grants(&runtime, &server),
        [("Coach".into(), "Home".into())]
    );

    runtime.block_on(give(&http, &server.url, &everyone(), "cloudCX3"));
    desired(dir.path(), &server.url, "[]");
    let line = runtime.block_on(watch.reconciled("files"));
    assert!(line.contains("applied=1 blocked=40"), "{line}");
    let held = runtime.block_on(holders(&http, &server.url));
    assert!(
        held.values().all(|l| l == &["cloudCX2", "cloudCX3"]),
        "no license was taken: {held:?}"
    );
    assert_eq!(coach_grants(&runtime, &server), [], "the grant was revoked");
    let (code, rest) = runtime.block_on(watch.terminate());
    assert_eq!(code, Some(0), "{rest:#?}");
    assert!(
        !rest.iter().any(|l| l.contains(SECRET)),
        "the secret never reaches the log"
    );
}

// apply --plan: the license removals held back in a saved plan stay held back when the plan
// file is edited to release them; nothing is sent to the license endpoint and every license
// stays where it was.
#[test]
fn a_forged_plan_releases_no_license_removal() {
    let (dir, server, ds) = applied();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    runtime.block_on(give(&http, &server.url, &everyone(), "cloudCX3"));

    let sent = apply_forged_plan(dir.path(), &ds, USERS);
    assert!(
        !sent.contains("/api/v2/license/organization"),
        "no license request was sent"
    );
    let held = runtime.block_on(holders(&http, &server.url));
    assert!(
        held.values().all(|l| l == &["cloudCX2", "cloudCX3"]),
        "{held:?}"
    );
}

// apply --plan after the tenant moved: the saved plan gives u0 its license back; before it is
// applied, an admin gives u0 another license, which a fresh plan would take away (licenses
// owned: all). The merge carries out what was saved, no more: u0 gets cloudCX2 and keeps
// cloudCX3, and the report shows no removal.
#[test]
fn a_saved_plan_takes_no_license_given_after_it() {
    let (dir, server, ds) = applied();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let u0 = ["u0@x.example".to_owned()];
    runtime.block_on(take(&http, &server.url, &u0, "cloudCX2"));
    let saved = dir.path().join("saved.json");
    let (code, out, err) = run(dir.path(), &["plan", &ds, "--out", saved.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("+ license: Pro (cloudCX2)") && !out.contains("- license"),
        "{out}"
    );

    runtime.block_on(give(&http, &server.url, &u0, "cloudCX3"));
    let (code, out, err) = run(
        dir.path(),
        &["apply", &ds, "--plan", saved.to_str().unwrap(), "--yes"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("cloudCX3"), "no removal is reported: {out}");
    let held = runtime.block_on(holders(&http, &server.url));
    assert_eq!(held["u0@x.example"], ["cloudCX2", "cloudCX3"], "{held:?}");
    // A fresh plan now proposes the removal, for review.
    let (code, out, err) = run(dir.path(), &["plan", &ds]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("cloudCX3"), "{out}");
}
