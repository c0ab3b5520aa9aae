//! `scimctl export` end to end: the real binary exports the example org from the embedded
//! sandbox and from python-scim's scim2-server, `plan --detailed-exitcode` on the export
//! exits 0 against the same tenant, a second export is byte-identical, and a non-empty
//! directory is refused unless `--force`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::{DEMO_PASSWORD, scimctl_with_token as scimctl};

/// A copy of the example org in `cwd` (the embedded sandbox lives beside it).
fn example_dir(cwd: &Path) -> PathBuf {
    let dir = cwd.join("desired-state");
    crate::support::copy_example(&dir);
    dir
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The example org applied into the embedded sandbox, exported: the export plans to
/// nothing, a second export is byte-identical, an export into it again is refused (exit 4,
/// nothing written) unless `--force`, and a bad filter is a usage error.
#[test]
fn example_org_round_trips_through_the_sandbox() {
    let cwd = tempfile::tempdir().unwrap();
    let example = example_dir(cwd.path());
    let (code, out, err) = scimctl(
        cwd.path(),
        &["apply", example.to_str().unwrap(), "--yes"],
        "",
    );
    assert_eq!(code, 0, "{out}\n{err}");

    let (code, out, err) = scimctl(cwd.path(), &["export", "--out", "exported"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, "", "results are files; stdout stays empty");
    assert!(
        err.contains(
            "Exported 40 users in 6 files, 8 groups, 7 role names to exported (4 requests in "
        ),
        "{err}"
    );
    let first = tree(&cwd.path().join("exported"));
    let names: Vec<String> = first.keys().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [
            "groups.yaml",
            "roles.yaml",
            "scimctl.yaml",
            "users/billing.yaml",
            "users/operations.yaml",
            "users/quality.yaml",
            "users/sales.yaml",
            "users/support.yaml",
            "users/workforce-management.yaml",
        ]
    );
    let all = first
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<String>();
    assert!(
        !all.contains("password") && !all.contains(DEMO_PASSWORD),
        "no secret"
    );
    assert!(
        !all.contains("meta") && !all.contains("\n    id:"),
        "nothing read-only"
    );

    let (code, out, err) = scimctl(cwd.path(), &["plan", "exported", "--detailed-exitcode"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    let (code, _, err) = scimctl(cwd.path(), &["export", "--out", "again"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(tree(&cwd.path().join("again")), first, "byte-identical");

    let (code, _, err) = scimctl(cwd.path(), &["export", "--out", "exported"], "");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("refused: exported is not empty"), "{err}");
    std::fs::write(cwd.path().join("exported/users/stale.yaml"), "users: []\n").unwrap();
    let (code, _, err) = scimctl(cwd.path(), &["export", "--out", "exported", "--force"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        tree(&cwd.path().join("exported")),
        first,
        "stale YAML removed"
    );

    // A filtered export: only Support, so members elsewhere are left out, group members
    // become additive, and the plan is still empty.
    let (code, _, err) = scimctl(
        cwd.path(),
        &[
            "export",
            "--out",
            "support",
            "--include",
            "department=support",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Exported 22 users in 1 file"), "{err}");
    assert!(err.contains("warning: group members left out"), "{err}");
    let config = std::fs::read_to_string(cwd.path().join("support/scimctl.yaml")).unwrap();
    assert!(config.contains("groupMembers: additive"), "{config}");
    let (code, out, err) = scimctl(cwd.path(), &["plan", "support", "--detailed-exitcode"], "");
    assert_eq!(code, 0, "{out}\n{err}");

    let (code, _, err) = scimctl(
        cwd.path(),
        &["export", "--out", "x", "--include", "dept=x"],
        "",
    );
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("not a filterable attribute"), "{err}");
}

/// The same round trip against scim2-server, on objects of this run only (the peer is shared
/// with other tests): a small org with nested groups, a manager and values YAML would
/// mis-type is applied, exported with filters that select it, and plans to nothing; a second
/// export is byte-identical.
#[test]
fn round_trip_against_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    let run = format!("xr{}", std::process::id());
    let org = cwd.path().join("org");
    std::fs::create_dir_all(&org).unwrap();
    std::fs::write(
        org.join("org.yaml"),
        format!(
            "users:
  - userName: {run}.lead@peer.example
    displayName: Lead
    title: \"yes\"
    emails: [{{value: {run}.lead@peer.example, type: work, primary: true}}]
    department: Support
    employeeNumber: \"00123\"
  - userName: {run}.agent@peer.example
    displayName: Agent
    active: false
    phoneNumbers: [{{value: \"+14155550100\", type: mobile}}]
    department: Support
    manager: {run}.lead@peer.example
  - userName: {run}.other@peer.example
    title: \"null\"
groups:
  - displayName: {run} outer
    externalId: \"0042\"
    members: [{run} inner, {run}.other@peer.example]
  - displayName: {run} inner
    members: [{run}.lead@peer.example, {run}.agent@peer.example]
  - displayName: {run} empty
    members: []
"
        ),
    )
    .unwrap();
    let (code, out, err) = scimctl(
        cwd.path(),
        &["apply", "org", "--target", &url, "--yes"],
        &token,
    );
    assert_eq!(code, 0, "{out}\n{err}");

    let include_users = format!("userName={run}.*");
    let include_groups = format!("group.displayName={run} *");
    let export = |out_dir: &str| {
        scimctl(
            cwd.path(),
            &[
                "export",
                "--target",
                &url,
                "--out",
                out_dir,
                "--include",
                &include_users,
                "--include",
                &include_groups,
            ],
            &token,
        )
    };
    let (code, out, err) = export("exported");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("Exported 3 users in 2 files, 3 groups to exported"),
        "{err}"
    );
    assert!(!err.contains("warning"), "nothing left out: {err}");
    let config = std::fs::read_to_string(cwd.path().join("exported/scimctl.yaml")).unwrap();
    assert!(
        config.contains(&format!(
            "target: {{kind: scim, url: \"{url}\", token: {{fromEnv: SCIMCTL_TOKEN}}}}"
        )),
        "{config}"
    );
    assert!(!config.contains(&token), "the token is never written");
    let support = std::fs::read_to_string(cwd.path().join("exported/users/support.yaml")).unwrap();
    assert!(support.contains("employeeNumber: \"00123\""), "{support}");
    assert!(
        support.contains(&format!("manager: {run}.lead@peer.example")),
        "{support}"
    );

    // The export names the peer in its scimctl.yaml, so plan needs no --target.
    let (code, out, err) = scimctl(
        cwd.path(),
        &["plan", "exported", "--detailed-exitcode"],
        &token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = export("again");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        tree(&cwd.path().join("again")),
        tree(&cwd.path().join("exported")),
        "byte-identical"
    );
}
