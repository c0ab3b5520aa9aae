//! `scimctl apply` end to end: the real binary against the embedded sandbox (the README
//! quickstart), an in-process sandbox, and python-scim's scim2-server.
//!
//! "Sends no write" is checked from the tenant's side: every write bumps a resource's
//! `meta.version` on both servers, so identical versions before and after mean no write
//! landed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scimctl::scim::wire::{Group, Reference, User};
use scimctl::scim::{PatchOperation, Resource, ScimClient};
use serde_json::{Value, json};

use crate::support::{bearer_client, scimctl_with_token as scimctl};

/// A copy of the example org in `cwd`: the embedded sandbox lives beside the directory, so
/// each test needs its own copy (the repository's would share one sandbox between tests).
fn example_dir(cwd: &Path) -> PathBuf {
    let dir = cwd.join("desired-state");
    crate::support::copy_example(&dir);
    dir
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Every resource's id and version.
async fn versions(client: &ScimClient) -> BTreeMap<String, Option<String>> {
    use scimctl::scim::ScimRead;
    let snapshot = client.snapshot().await.unwrap();
    let users = snapshot
        .users
        .iter()
        .map(|u| (u.id().unwrap().to_owned(), u.version().map(str::to_owned)));
    let groups = snapshot
        .groups
        .iter()
        .map(|g| (g.id().unwrap().to_owned(), g.version().map(str::to_owned)));
    users.chain(groups).collect()
}

/// The lines of an audit log, each parsed.
fn audit(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// An operation's phase records, as `(phase, step)` in the order written.
type Phases = Vec<(String, String)>;

/// An operation in the audit log: kind, key and action.
type Operation = (String, String, String);

/// An audit log read per operation (kind, key and action): its final records (those without
/// a `phase`, one per operation, in the order written) and, per operation, the phase records
/// before its final one. Checks the shape every run leaves, whatever it did: each operation
/// has exactly one final record and it is its last (no phase record is orphaned); a `sending`
/// record is `pending` with a null `afterVersion`; a `written` record succeeded and follows a
/// `sending` record of the same step.
fn audit_by_operation(path: &Path) -> (Vec<Value>, BTreeMap<Operation, Phases>) {
    let all = audit(path);
    let op = |r: &Value| {
        let field = |f: &str| {
            r[f].as_str()
                .unwrap_or_else(|| panic!("no {f}: {r}"))
                .to_owned()
        };
        (field("kind"), field("key"), field("action"))
    };
    let mut phases: BTreeMap<Operation, Phases> = BTreeMap::new();
    let mut finished = BTreeSet::new();
    let mut finals = Vec::new();
    for r in &all {
        let id = op(r);
        assert!(!finished.contains(&id), "a record after the final one: {r}");
        let Some(phase) = r.get("phase") else {
            finished.insert(id);
            finals.push(r.clone());
            continue;
        };
        let (phase, step) = (phase.as_str().unwrap(), r["step"].as_str().unwrap());
        let seen = phases.entry(id).or_default();
        match phase {
            "sending" => assert!(
                r["outcome"] == "pending" && r["afterVersion"].is_null(),
                "{r}"
            ),
            "written" => {
                assert!(
                    ["done", "merged"].contains(&r["outcome"].as_str().unwrap()),
                    "{r}"
                );
                assert_eq!(
                    seen.last(),
                    Some(&("sending".to_owned(), step.to_owned())),
                    "a written record follows its step's sending record: {r}"
                );
            }
            other => panic!("phase {other:?}: {r}"),
        }
        seen.push((phase.to_owned(), step.to_owned()));
    }
    for id in phases.keys() {
        assert!(finished.contains(id), "no final record for {id:?}");
    }
    (finals, phases)
}

fn phases(list: &[(&str, &str)]) -> Phases {
    list.iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect()
}

/// The README quickstart: `apply desired-state --yes` into a fresh embedded sandbox creates
/// the org, records it in the audit log, delivers generated passwords to a private file and
/// nowhere else; then `plan` shows no changes and a second apply writes nothing.
#[test]
fn quickstart_apply_then_nothing_to_do() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = example_dir(cwd.path());
    let dir = dir.to_str().unwrap();
    let (code, out, err) = scimctl(cwd.path(), &["apply", dir, "--yes"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("48 done, 0 already done, 0 merged, 0 failed, 0 skipped"),
        "{out}"
    );

    // One final record per operation, 48; before it, a record of each write as it went out
    // (`sending`). Users need one write each: a manager is created before the users who
    // report to it and named in their creates. So do groups: a group is created after its
    // new users and names them; only Support, whose members include two groups the run
    // creates, is `written` once created and then linked to them.
    let log = cwd.path().join(".scimctl/audit.jsonl");
    let (records, ops) = audit_by_operation(&log);
    assert_eq!(records.len(), 48);
    assert!(records.iter().all(|r| r["outcome"] == "done"
        && r["action"] == "create"
        && r["planChecksum"].as_str().is_some_and(|c| c.len() == 64)));
    assert_eq!(ops.len(), 48, "every operation wrote: {ops:?}");
    for ((kind, key, _), seen) in &ops {
        let want = match (kind.as_str(), key.as_str()) {
            ("group", "Support") => phases(&[
                ("sending", "create"),
                ("written", "create"),
                ("sending", "link"),
            ]),
            _ => phases(&[("sending", "create")]),
        };
        assert_eq!(*seen, want, "{kind} {key}");
    }
    let groups = records.iter().filter(|r| r["kind"] == "group").count();
    assert_eq!(groups, 8);
    let all = audit(&log);
    assert_eq!(all.len(), 48 + 48 + 2, "no other record");
    assert!(
        all.iter()
            .filter(|r| r["phase"] == "written")
            .all(|r| r["detail"] == "created; members pending" && r["id"].is_string()),
        "{all:?}"
    );

    // Four users have `password: generate` (the break-glass account too, so the quickstart
    // needs no secret): one private file, one line each.
    let drops: Vec<PathBuf> = std::fs::read_dir(cwd.path().join(".scimctl"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("initial-passwords-")
        })
        .collect();
    assert_eq!(drops.len(), 1, "{drops:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&drops[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let delivered = std::fs::read_to_string(&drops[0]).unwrap();
    let passwords: Vec<&str> = delivered
        .lines()
        .map(|l| l.split_once('\t').unwrap().1)
        .collect();
    assert_eq!(passwords.len(), 4, "{delivered}");
    let audit_text = std::fs::read_to_string(cwd.path().join(".scimctl/audit.jsonl")).unwrap();
    for secret in passwords.iter().copied() {
        assert!(scimctl::apply::password::meets_policy(secret));
        for (name, text) in [("stdout", &out), ("stderr", &err), ("audit", &audit_text)] {
            assert!(!text.contains(secret), "a password reached {name}");
        }
    }

    let (code, out, err) = scimctl(cwd.path(), &["plan", dir, "--detailed-exitcode"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    let state = cwd.path().join(".scimctl/sandbox.json");
    let before = std::fs::read(&state).unwrap();
    let (code, out, err) = scimctl(cwd.path(), &["apply", dir, "--yes"], "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    assert_eq!(std::fs::read(&state).unwrap(), before, "no write");
    assert_eq!(audit(&log), all, "nothing applied, nothing audited");
}

/// The example org into scim2-server converges, written in Bulk requests: the plan
/// afterwards is empty and a second apply writes nothing. (The peer lacks some attributes; the plan warns and leaves them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_org_converges_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    let dir = example_dir(cwd.path());
    let dir = dir.to_str().unwrap();
    let (code, out, err) = scimctl(
        cwd.path(),
        &["apply", dir, "--target", &url, "--yes"],
        &token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        !out.contains("failed ") && out.contains(" 0 failed, 0 skipped"),
        "{out}"
    );
    // scim2-server announces /Bulk: 48 objects in a few Bulk requests, with the reads and
    // the twin checks of the new groups (one request each per object: about 60).
    let requests: u64 = out
        .split(" requests in ")
        .next()
        .and_then(|head| head.rsplit('(').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no request count in the summary:\n{out}"));
    assert!(requests <= 25, "{requests} requests:\n{out}");
    let (code, out, err) = scimctl(
        cwd.path(),
        &["plan", dir, "--target", &url, "--detailed-exitcode"],
        &token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let client = bearer_client(&url, &token, None);
    let before = versions(&client).await;
    let (code, out, err) = scimctl(
        cwd.path(),
        &["apply", dir, "--target", &url, "--yes"],
        &token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    assert_eq!(versions(&client).await, before, "the second apply wrote");
}

/// Nothing is written without `--yes` off a terminal, with a blocked change, or from a
/// saved plan whose desired state changed; the unchanged saved plan applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn refusals_write_nothing() {
    let token = "apply-guard-token";
    let running = crate::support::bearer_sandbox(token).await;
    let url = running.base_url.clone();
    let client = bearer_client(&url, token, None);
    for name in ["old1@g.example", "old2@g.example"] {
        let user = User {
            user_name: name.into(),
            ..User::default()
        }
        .with_schemas();
        client.create(&user).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write(
        dir.path(),
        "scimctl.yaml",
        "ownership: {users: all}\nprune: {users: delete}\nsafety: {maxDeleteCount: 1}\n",
    );
    write(
        dir.path(),
        "users.yaml",
        "users:\n  - userName: new@g.example\n    title: Agent\n",
    );
    let before = versions(&client).await;

    let (code, out, err) = scimctl(dir.path(), &["apply", d, "--target", &url], token);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("blocked by a safety rule"), "{err}");
    let (code, _, err) = scimctl(
        dir.path(),
        &["apply", d, "--target", &url, "--allow-deletes", "2"],
        token,
    );
    assert_eq!(code, 4, "off a terminal, no --yes: {err}");
    assert!(err.contains("give --yes"), "{err}");
    assert_eq!(versions(&client).await, before);
    assert!(!dir.path().join(".scimctl/audit.jsonl").exists());

    // A saved plan, then the desired state changes: refused.
    let plan_path = dir.path().join("plan.json");
    let p = plan_path.to_str().unwrap();
    let (code, _, err) = scimctl(
        dir.path(),
        &[
            "plan",
            d,
            "--target",
            &url,
            "--allow-deletes",
            "2",
            "--out",
            p,
        ],
        token,
    );
    assert_eq!(code, 0, "{err}");
    write(
        dir.path(),
        "users.yaml",
        "users:\n  - userName: new@g.example\n    title: Lead\n",
    );
    let (code, _, err) = scimctl(
        dir.path(),
        &["apply", d, "--plan", p, "--target", &url, "--yes"],
        token,
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("desired state changed"), "{err}");
    assert_eq!(versions(&client).await, before);

    // Back as planned, but another tenant: refused.
    write(
        dir.path(),
        "users.yaml",
        "users:\n  - userName: new@g.example\n    title: Agent\n",
    );

    let other = crate::support::bearer_sandbox(token).await;
    let (code, _, err) = scimctl(
        dir.path(),
        &[
            "apply",
            d,
            "--plan",
            p,
            "--target",
            &other.base_url,
            "--yes",
        ],
        token,
    );
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("the plan was made against"), "{err}");
    other.shutdown().await.unwrap();

    // The planned tenant, but the brake lifted only at plan time: the saved plan cannot lift
    // it (a file anyone can edit), so the deletes are blocked again and nothing is written.
    let (code, out, err) = scimctl(
        dir.path(),
        &["apply", d, "--plan", p, "--target", &url, "--yes"],
        token,
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("blocked by a safety rule"), "{err}");
    assert_eq!(versions(&client).await, before);

    // With --allow-deletes given to apply: it applies, deletes included.
    let (code, out, err) = scimctl(
        dir.path(),
        &[
            "apply",
            d,
            "--plan",
            p,
            "--target",
            &url,
            "--yes",
            "--allow-deletes",
            "2",
        ],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("3 done"), "{out}");
    let after = versions(&client).await;
    assert_eq!(after.len(), 1);
    running.shutdown().await.unwrap();
}

fn by_name(users: &[User], name: &str) -> User {
    users
        .iter()
        .find(|u| u.user_name == name)
        .unwrap_or_else(|| panic!("{name} is live"))
        .clone()
}

async fn users(client: &ScimClient) -> Vec<User> {
    use scimctl::scim::ScimRead;
    client
        .snapshot()
        .await
        .unwrap()
        .users
        .iter()
        .map(|u| u.parse().unwrap())
        .collect()
}

/// Someone else edits the tenant between `plan --out` and `apply --plan`: an unmanaged
/// attribute survives the merge, a managed attribute changed to a third value fails only
/// that operation with both values, a deleted user is reported, and a member someone else
/// added to a group stays while the planned member is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn concurrent_edits_are_merged_or_reported() {
    let token = "apply-merge-token";
    let running = crate::support::bearer_sandbox(token).await;
    let url = running.base_url.clone();
    let client = bearer_client(&url, token, None);
    let mut ids = BTreeMap::new();
    for name in ["a", "b", "c", "d", "stranger"] {
        let user = User {
            user_name: format!("{name}@m.example"),
            title: Some("Agent".into()),
            ..User::default()
        }
        .with_schemas();
        let created = client.create(&user).await.unwrap().resource;
        ids.insert(name, created.id.unwrap());
    }
    let member = |n: &str| Reference {
        value: ids[n].clone(),
        kind: Some("User".into()),
        display: None,
        reference: None,
    };
    let group = Group {
        display_name: "Support".into(),
        members: vec![member("a")],
        ..Group::default()
    }
    .with_schemas();
    let group = client.create(&group).await.unwrap().resource;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    write(
        dir.path(),
        "scimctl.yaml",
        "collections: {groupMembers: authoritative}\n",
    );
    write(
        dir.path(),
        "org.yaml",
        "users:\n  - userName: a@m.example\n    title: Lead\n  - userName: b@m.example\n    title: Lead\n\
         \x20 - userName: c@m.example\n    title: Lead\n  - userName: d@m.example\n\
         groups:\n  - displayName: Support\n    members: [a@m.example, d@m.example]\n",
    );
    let plan_path = dir.path().join("plan.json");
    let p = plan_path.to_str().unwrap();
    let (code, out, err) = scimctl(
        dir.path(),
        &["plan", d, "--target", &url, "--out", p],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");

    // The other writer.
    let op = |op: &str, path: &str, value: Value| -> PatchOperation {
        serde_json::from_value(json!({"op": op, "path": path, "value": value})).unwrap()
    };
    client
        .patch::<User>(&ids["a"], None, &[op("add", "nickName", json!("theirs"))])
        .await
        .unwrap();
    client
        .patch::<User>(&ids["b"], None, &[op("replace", "title", json!("Manager"))])
        .await
        .unwrap();
    client
        .delete(scimctl::model::Kind::User, &ids["c"], None)
        .await
        .unwrap();
    client
        .patch::<Group>(
            group.id.as_deref().unwrap(),
            None,
            &[op(
                "add",
                "members",
                json!([{"value": ids["stranger"], "type": "User"}]),
            )],
        )
        .await
        .unwrap();

    let b_version = versions(&client).await[&ids["b"]].clone();
    let (code, out, err) = scimctl(
        dir.path(),
        &["apply", d, "--plan", p, "--target", &url, "--yes"],
        token,
    );
    assert_eq!(code, 1, "two operations fail: {out}\n{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.ends_with(key) || l.contains(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no report line for {key}: {out}"))
            .to_owned()
    };
    assert!(line("a@m.example").starts_with("merged"), "{out}");
    let b = line("b@m.example");
    assert!(b.starts_with("failed"), "{b}");
    assert!(
        b.contains("\"Agent\" → \"Lead\"") && b.contains("now \"Manager\""),
        "both values: {b}"
    );
    assert!(
        line("c@m.example").contains("deleted on the target since the plan"),
        "{out}"
    );
    assert!(line("Support").starts_with("merged"), "{out}");

    let live_users = users(&client).await;
    let a = by_name(&live_users, "a@m.example");
    assert_eq!(a.title.as_deref(), Some("Lead"));
    // Typed users drop attributes scimctl does not know: read the server's JSON.
    let raw: Value = reqwest::Client::new()
        .get(format!("{url}/Users/{}", ids["a"]))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        raw["nickName"], "theirs",
        "the unmanaged attribute survives"
    );
    assert_eq!(
        by_name(&live_users, "b@m.example").title.as_deref(),
        Some("Manager")
    );
    let support: Group = client.get(group.id.as_deref().unwrap()).await.unwrap();
    let mut members: Vec<&str> = support.members.iter().map(|m| m.value.as_str()).collect();
    members.sort_unstable();
    let mut want = vec![
        ids["a"].as_str(),
        ids["d"].as_str(),
        ids["stranger"].as_str(),
    ];
    want.sort_unstable();
    assert_eq!(members, want, "the planned member added, theirs kept");

    // Four final records. The two operations that failed before anything was sent (the
    // overlap and the deleted user, decided on re-reading the tenant) have nothing else; the
    // two merged ones sent their patch and have its `sending` record first.
    let (records, ops) = audit_by_operation(&dir.path().join(".scimctl/audit.jsonl"));
    assert_eq!(records.len(), 4);
    let outcome = |key: &str| {
        records
            .iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no record of {key}: {records:?}"))["outcome"]
            .clone()
    };
    let sent = |kind: &str, key: &str| {
        ops.get(&(kind.to_owned(), key.to_owned(), "patch".to_owned()))
            .cloned()
            .unwrap_or_default()
    };
    for key in ["b@m.example", "c@m.example"] {
        assert_eq!(outcome(key), "failed");
        assert_eq!(sent("user", key), phases(&[]), "{key} sent nothing");
    }
    assert_eq!(outcome("a@m.example"), "merged");
    assert_eq!(outcome("Support"), "merged");
    assert_eq!(
        sent("user", "a@m.example"),
        phases(&[("sending", "update")])
    );
    assert_eq!(sent("group", "Support"), phases(&[("sending", "update")]));
    assert_eq!(ops.len(), 2, "{ops:?}");
    // From the tenant's side: nothing of scimctl's reached b.
    assert_eq!(
        versions(&client).await[&ids["b"]],
        b_version,
        "no write to the failed user"
    );
    running.shutdown().await.unwrap();
}

/// A `--password-file` that already exists is found before anything is written (it may hold
/// passwords nobody handed out yet, and a password generated for a created user must never be
/// lost): exit 4, no user created, the file untouched. A run that generates no password does
/// not care about the file.
#[test]
fn an_existing_password_file_stops_apply_before_any_write() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = example_dir(cwd.path());
    let dir = dir.to_str().unwrap();
    let drop = cwd.path().join("passwords.tsv");
    std::fs::write(&drop, "earlier@example.com\tnot-yet-handed-out\n").unwrap();
    let args = ["apply", dir, "--yes", "--password-file", "passwords.tsv"];
    let (code, out, err) = scimctl(cwd.path(), &args, "");
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("passwords.tsv already exists"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&drop).unwrap(),
        "earlier@example.com\tnot-yet-handed-out\n"
    );
    let audit_log = cwd.path().join(".scimctl/audit.jsonl");
    assert!(!audit_log.exists() || audit(&audit_log).is_empty());
    let (code, out, err) = scimctl(cwd.path(), &["plan", dir, "--detailed-exitcode"], "");
    assert_eq!(code, 2, "everything is still to create:\n{out}\n{err}");

    // Delivered and deleted: the run goes ahead, into a file made before the first write.
    std::fs::remove_file(&drop).unwrap();
    let (code, out, err) = scimctl(cwd.path(), &args, "");
    assert_eq!(code, 0, "{out}\n{err}");
    // The example org's four `generate` users (the break-glass account among them).
    assert_eq!(std::fs::read_to_string(&drop).unwrap().lines().count(), 4);

    // Nothing left to create: the existing file does not matter.
    let (code, out, err) = scimctl(cwd.path(), &args, "");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
}

/// SIGINT during apply (issue 15): operations in flight finish and are recorded, nothing new
/// starts, the rest is reported skipped, the summary is printed and the exit code is 1; every
/// user on the tenant afterwards has its audit record. The signal is sent once the run has
/// recorded its first operation (seen on stderr at -vv), so nothing waits on a timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_apply_with_a_summary_and_every_write_recorded() {
    use std::fmt::Write as _;
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    use scimctl::sandbox::{self, Faults, SandboxAuth, SandboxConfig};

    let token = "sigint-token";
    let running = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::Bearer(token.into()),
            faults: Faults {
                latency: std::time::Duration::from_millis(100),
                ..Faults::default()
            },
            // Bulk requests of 5, so the run is many requests long and the signal lands
            // while some operations have not started.
            bulk: Some(sandbox::BulkLimits {
                max_operations: 5,
                ..sandbox::BulkLimits::default()
            }),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let mut users = String::from("users:\n");
    for i in 0..200 {
        let _ = writeln!(users, "  - userName: u{i}@sigint.example");
    }
    write(&dir, "users.yaml", &users);
    let mut child = crate::support::scimctl()
        .args(["-vv", "apply", dir.to_str().unwrap(), "--yes"])
        .args(["--target", &running.base_url])
        .env("SCIMCTL_TOKEN", token)
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stderr = child.stderr.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut err = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            err.push_str(&line);
            err.push('\n');
            if line.contains("operation finished") {
                break;
            }
        }
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        for line in lines {
            err.push_str(&line.unwrap());
            err.push('\n');
        }
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        (child.wait().unwrap(), out, err)
    });
    let (status, out, err) = tokio::time::timeout(std::time::Duration::from_secs(60), output)
        .await
        .expect("apply ends after the signal")
        .unwrap();
    assert_eq!(status.code(), Some(1), "{out}\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(out.contains("Applied to"), "the summary is printed:\n{out}");
    let records = audit(&cwd.path().join(".scimctl/audit.jsonl"));
    let done = records.iter().filter(|r| r["outcome"] == "done").count();
    let skipped = records.iter().filter(|r| r["outcome"] == "skipped").count();
    assert!(done >= 1 && skipped >= 1, "{done} done, {skipped} skipped");
    assert_eq!(done + skipped, 200, "every operation has a record");
    assert!(out.contains(&format!("{done} done")), "{out}");
    assert!(
        records
            .iter()
            .filter(|r| r["outcome"] == "skipped")
            .all(|r| r["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("interrupted")),
        "the reason is recorded"
    );
    let client = bearer_client(&running.base_url, token, None);
    let on_tenant = {
        use scimctl::scim::ScimRead;
        client.snapshot().await.unwrap().users.len()
    };
    assert_eq!(on_tenant, done, "every user on the tenant has its record");
    running.shutdown().await.unwrap();
}
