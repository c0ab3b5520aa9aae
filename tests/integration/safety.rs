//! The safety rules hold on every road to the tenant, shown from the tenant's side against
//! the embedded sandbox and python-scim's scim2-server:
//!
//! - `apply --plan` with a hand-edited saved plan (blocked fields deleted, checksum
//!   recomputed, a change added) writes nothing the brakes or `protected` hold back;
//! - `watch` (heal) applies none of the member removals that go with blocked deactivations.

use std::fmt::Write as _;
use std::path::Path;

use scimctl::plan::saved::PlanDocument;
use scimctl::scim::{Resource, ScimClient, ScimRead};

use crate::support::{bearer_client, bearer_sandbox, forge, scimctl_with_token as scimctl};

const TOKEN: &str = "safety-token";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// `boss@TAG.example` (protected) and `u0..u{n}@TAG.example`, all in group `TAG-team`.
fn org(dir: &Path, tag: &str, n: usize) {
    write(
        dir,
        "scimctl.yaml",
        &format!(
            "ownership: {{users: {{selector: {{nameSuffix: \"@{tag}.example\"}}}}}}\n\
             safety: {{maxDeletePercent: 10}}\n\
             protected: {{users: [boss@{tag}.example]}}\n"
        ),
    );
    let mut users = format!("users:\n  - userName: boss@{tag}.example\n");
    let mut members = Vec::new();
    for i in 0..n {
        let _ = writeln!(users, "  - userName: u{i}@{tag}.example");
        members.push(format!("u{i}@{tag}.example"));
    }
    let _ = writeln!(
        users,
        "groups:\n  - displayName: {tag}-team\n    members: [{}]",
        members.join(", ")
    );
    write(dir, "org.yaml", &users);
}

/// (active users, members of the team group) among this test's objects on the tenant.
async fn census(client: &ScimClient, tag: &str) -> (usize, usize) {
    let snapshot = client.snapshot().await.unwrap();
    let suffix = format!("@{tag}.example");
    let active = snapshot
        .users
        .iter()
        .map(|u| u.parse().unwrap())
        .filter(|u| u.user_name.ends_with(&suffix) && u.active != Some(false))
        .count();
    let members = snapshot
        .groups
        .iter()
        .map(|g| g.parse().unwrap())
        .find(|g| g.display_name == format!("{tag}-team"))
        .map_or(0, |g| g.members.len());
    (active, members)
}

#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn forged_plans_are_refused(url: &str, token: &str, tag: &str) {
    let client = bearer_client(url, token, None);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let cwd = work.path();
    org(&dir, tag, 30);
    let (code, out, err) = scimctl(cwd, &["apply", d, "--target", url, "--yes"], token);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(census(&client, tag).await, (31, 30));

    // Remove 20 of the 30 from YAML: 20 deactivations, over the 10 % brake.
    org(&dir, tag, 10);
    let saved = cwd.join("most.json");
    let (code, out, err) = scimctl(
        cwd,
        &["plan", d, "--target", url, "--out", saved.to_str().unwrap()],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("BLOCKED deactivate"), "{out}");
    let doc = PlanDocument::from_json(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(
        doc.summary.blocked, 21,
        "20 deactivations and the team's removals"
    );

    // 1. The blocked fields deleted, the checksum recomputed.
    let forged = cwd.join("forged.json");
    std::fs::write(
        &forged,
        forge(&doc, |d| {
            d.changes.iter_mut().for_each(|c| c.blocked = None);
        }),
    )
    .unwrap();
    let f = forged.to_str().unwrap();
    let (code, out, err) = scimctl(
        cwd,
        &["apply", d, "--plan", f, "--target", url, "--yes"],
        token,
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("blocked by a safety rule; nothing was written"),
        "{err}"
    );
    assert_eq!(census(&client, tag).await, (31, 30), "nothing written");

    // 2. A deactivation of the protected user added (its live id looked up, as an attacker
    // with read access would), the brake lifted at apply time.
    let boss = format!("boss@{tag}.example");
    let boss_id = client
        .snapshot()
        .await
        .unwrap()
        .users
        .iter()
        .find(|u| u.natural_key() == boss)
        .and_then(|u| u.id().map(str::to_owned))
        .unwrap();
    std::fs::write(
        &forged,
        forge(&doc, |d| {
            let mut extra = d
                .changes
                .iter()
                .find(|c| c.action.is_destructive())
                .unwrap()
                .clone();
            extra.key = boss.as_str().into();
            extra.id = Some(boss_id.clone());
            d.changes.push(extra);
            d.changes.iter_mut().for_each(|c| c.blocked = None);
        }),
    )
    .unwrap();
    let (code, out, err) = scimctl(
        cwd,
        &[
            "apply",
            d,
            "--plan",
            f,
            "--target",
            url,
            "--yes",
            "--allow-deletes",
            "20",
        ],
        token,
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("which a plan made now does not"), "{err}");
    assert_eq!(census(&client, tag).await, (31, 30), "nothing written");

    // The plan as saved, with the brake lifted at apply time, goes through: the 20 and
    // their memberships, nothing else.
    let (code, out, err) = scimctl(
        cwd,
        &[
            "apply",
            d,
            "--plan",
            saved.to_str().unwrap(),
            "--target",
            url,
            "--yes",
            "--allow-deletes",
            "20",
        ],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(census(&client, tag).await, (11, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_saved_plans_write_nothing_on_the_sandbox() {
    let sandbox = bearer_sandbox(TOKEN).await;
    forged_plans_are_refused(&sandbox.base_url, TOKEN, "forge-sbx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_saved_plans_write_nothing_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    forged_plans_are_refused(&url, &token, "forge-peer").await;
}

/// `plan` and `apply` agree with the repro of `watch`: the member removals of users whose
/// deactivation is blocked are blocked rows too, and apply writes none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_prunes_keep_their_memberships() {
    let sandbox = bearer_sandbox(TOKEN).await;
    let url = sandbox.base_url.as_str();
    let client = bearer_client(url, TOKEN, None);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let cwd = work.path();
    org(&dir, "cascade", 30);
    let (code, out, err) = scimctl(cwd, &["apply", d, "--target", url, "--yes"], TOKEN);
    assert_eq!(code, 0, "{out}\n{err}");
    org(&dir, "cascade", 10);
    let (code, out, err) = scimctl(
        cwd,
        &["plan", d, "--target", url, "--format", "json"],
        TOKEN,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let group_rows: Vec<&serde_json::Value> = doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "group")
        .collect();
    assert!(!group_rows.is_empty());
    assert!(
        group_rows.iter().all(|c| c["blocked"]
            .as_str()
            .is_some_and(|r| r.starts_with("goes with the blocked deactivation"))),
        "{group_rows:#?}"
    );
    let (code, out, err) = scimctl(cwd, &["apply", d, "--target", url, "--yes"], TOKEN);
    assert_eq!(code, 4, "{out}\n{err}");
    assert_eq!(census(&client, "cascade").await, (31, 30));
}

/// Issue 14 item 6: a third party creates a user with a planned userName but another
/// externalId between `plan --out` and `apply --plan`. Only the operations that involve it
/// fail (its create, and the group that lists it); the other users and group are created.
async fn one_ambiguity_fails_only_its_operations(url: &str, token: &str, tag: &str) {
    use scimctl::scim::wire::User;
    let client = bearer_client(url, token, None);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let cwd = work.path();
    let mut yaml = String::from("users:\n");
    for i in 0..7 {
        let _ = writeln!(
            yaml,
            "  - userName: u{i}@{tag}.example\n    externalId: hr-{tag}-{i}"
        );
    }
    let _ = write!(
        yaml,
        "groups:\n  - displayName: {tag}-clear\n    members: [u0@{tag}.example, u1@{tag}.example]\n\
         \x20 - displayName: {tag}-with-twin\n    members: [u2@{tag}.example, u3@{tag}.example]\n"
    );
    write(&dir, "org.yaml", &yaml);
    let saved = cwd.join("plan.json");
    let (code, out, err) = scimctl(
        cwd,
        &["plan", d, "--target", url, "--out", saved.to_str().unwrap()],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");

    // The third party's user: the planned name, another externalId.
    let twin = User {
        user_name: format!("u3@{tag}.example"),
        external_id: Some("someone-else".into()),
        ..User::default()
    }
    .with_schemas();
    let twin_id = client.create(&twin).await.unwrap().resource.id.unwrap();

    let (code, out, err) = scimctl(
        cwd,
        &[
            "apply",
            d,
            "--plan",
            saved.to_str().unwrap(),
            "--target",
            url,
            "--yes",
        ],
        token,
    );
    assert_eq!(code, 1, "one object failed:\n{out}\n{err}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("failed")).collect();
    assert_eq!(failed.len(), 2, "the twin's create and its group:\n{out}");
    assert!(
        failed
            .iter()
            .any(|l| l.contains(&format!("u3@{tag}.example")) && l.contains("externalId differs")),
        "{out}"
    );
    assert!(
        failed
            .iter()
            .any(|l| l.contains(&format!("{tag}-with-twin")) && l.contains("refers to user")),
        "{out}"
    );
    assert!(out.contains("7 done"), "6 users and one group:\n{out}");

    let snapshot = client.snapshot().await.unwrap();
    let ours: Vec<User> = snapshot
        .users
        .iter()
        .map(|u| u.parse().unwrap())
        .filter(|u: &User| u.user_name.ends_with(&format!("@{tag}.example")))
        .collect();
    assert_eq!(ours.len(), 7, "six created, the twin left alone");
    let kept = ours
        .iter()
        .find(|u| u.id.as_deref() == Some(&twin_id))
        .unwrap();
    assert_eq!(kept.external_id.as_deref(), Some("someone-else"));
    let groups: Vec<String> = snapshot
        .groups
        .iter()
        .map(|g| g.natural_key().to_owned())
        .filter(|n| n.starts_with(tag))
        .collect();
    assert_eq!(groups, [format!("{tag}-clear")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ambiguity_fails_only_its_operations_on_the_sandbox() {
    let sandbox = bearer_sandbox(TOKEN).await;
    one_ambiguity_fails_only_its_operations(&sandbox.base_url, TOKEN, "amb-sbx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_ambiguity_fails_only_its_operations_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    one_ambiguity_fails_only_its_operations(&url, &token, "amb-peer").await;
}

/// A lock held by another run: `apply --lock-timeout 0` exits 4 at once and writes nothing,
/// and so does `apply --plan` with a saved plan; with a timeout it says it waits, then gives
/// up the same way; once the lock is free the apply goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_stops_apply_before_it_reads() {
    use std::time::Duration;

    use scimctl::session::lock;
    let sandbox = bearer_sandbox(TOKEN).await;
    let url = sandbox.base_url.clone();
    let work = tempfile::tempdir().unwrap();
    let locks = work.path().join("locks");
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    write(&dir, "org.yaml", "users:\n  - userName: ann@lock.example\n");
    let d = dir.to_str().unwrap();
    let saved = work.path().join("saved.json");
    let s = saved.to_str().unwrap();
    let key = scimctl::scim::shown_url(&url);
    let run = |args: &[&str]| {
        let output = crate::support::run_bounded_with(
            work.path(),
            args,
            &[
                ("SCIMCTL_TOKEN", TOKEN),
                ("SCIMCTL_LOCK_DIR", locks.to_str().unwrap()),
            ],
            Duration::from_secs(60),
        );
        let (out, err) = crate::support::text(&output);
        (output.status.code().unwrap_or(-1), out, err)
    };
    let apply = |timeout: &str, plan: Option<&str>| {
        let mut args = vec![
            "apply",
            d,
            "--target",
            &url,
            "--yes",
            "--lock-timeout",
            timeout,
        ];
        args.extend(plan.map(|p| ["--plan", p]).into_iter().flatten());
        tokio::task::block_in_place(|| run(&args))
    };
    // `plan` writes nothing and takes no lock.
    let (code, out, err) = run(&["plan", d, "--target", &url, "--out", s]);
    assert_eq!(code, 0, "{out}\n{err}");
    let held = lock::acquire(&locks, &key, Duration::ZERO, |_| panic!("free"))
        .await
        .unwrap();
    for plan in [None, Some(s)] {
        let (code, out, err) = apply("0", plan);
        assert_eq!(code, 4, "{plan:?}\n{out}\n{err}");
        assert!(err.contains("another scimctl run is writing"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
    }
    let (code, out, err) = apply("1", None);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(err.contains("waiting up to 1 s"), "{err}");
    let client = bearer_client(&url, TOKEN, None);
    assert!(
        client.snapshot().await.unwrap().users.is_empty(),
        "nothing written"
    );

    drop(held);
    let (code, out, err) = apply("0", Some(s));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(client.snapshot().await.unwrap().users.len(), 1);
    sandbox.shutdown().await.unwrap();
}

/// Issue 14 item 5's repro: two applies of an org with groups, started together against
/// scim2-server (which allows duplicate displayNames). The second waits for the first, reads
/// what it wrote and has nothing left to do: one of each group, every member in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_at_once_make_no_twins_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let outputs = two_applies_at_once(&url, &token, true).await;
    // One run created everything; the other, after it, found nothing to do.
    assert!(
        outputs[0].contains("27 done, 0 already done, 0 merged, 0 failed"),
        "{}",
        outputs[0]
    );
    assert!(outputs[1].contains("No changes."), "{}", outputs[1]);
}

/// The same two applies from two machines (two lock directories, so the local lock cannot
/// order them): both plan 7 group creates, both create, and the check after each create
/// merges the twins into the lowest id. The tenant ends with one of each group and every
/// member, whichever way the runs interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_at_once_merge_their_twins_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    no_run_failed(&two_applies_at_once(&url, &token, false).await);
}

/// The same on the sandbox, which accepts copies of a group name as RFC 7643 allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_machines_at_once_merge_their_twins_on_the_sandbox() {
    let sandbox = bearer_sandbox(TOKEN).await;
    no_run_failed(&two_applies_at_once(&sandbox.base_url, TOKEN, false).await);
}

/// Each of two runs on two machines either applied with no failure or, when the other had
/// finished before it read the tenant (an interleaving as good as any), found nothing to do;
/// at least one of them applied.
fn no_run_failed(outputs: &[String]) {
    for out in outputs {
        assert!(
            out.contains(" 0 failed") || out.contains("No changes."),
            "{out}"
        );
    }
    assert!(
        outputs.iter().any(|o| o.contains(" 0 failed")),
        "{outputs:#?}"
    );
}

/// Starts two applies of one org together; with `one_lock`, both use the same lock
/// directory. Checks the tenant holds one of each group with all 20 members and returns the
/// two outputs, the one with changes first.
async fn two_applies_at_once(url: &str, token: &str, one_lock: bool) -> Vec<String> {
    let (url, token) = (url.to_owned(), token.to_owned());
    let tag = format!("twins{}{}", std::process::id(), u8::from(one_lock));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    let mut yaml = String::from("users:\n");
    for i in 0..20 {
        let _ = writeln!(yaml, "  - userName: u{i}@{tag}.example");
    }
    yaml.push_str("groups:\n");
    for g in 0..7 {
        let members: Vec<String> = (0..20)
            .filter(|i| i % 7 == g)
            .map(|i| format!("u{i}@{tag}.example"))
            .collect();
        let _ = writeln!(
            yaml,
            "  - displayName: {tag}-g{g}\n    members: [{}]",
            members.join(", ")
        );
    }
    write(&dir, "org.yaml", &yaml);
    let d = dir.to_str().unwrap().to_owned();
    let runs: Vec<_> = (0..2)
        .map(|n| {
            let cwd = work.path().join(format!("run{n}"));
            std::fs::create_dir(&cwd).unwrap();
            let locks = if one_lock {
                work.path().join("locks")
            } else {
                cwd.join("locks")
            };
            let (d, url, token) = (d.clone(), url.clone(), token.clone());
            std::thread::spawn(move || {
                let output = crate::support::run_bounded_with(
                    &cwd,
                    &["apply", &d, "--target", &url, "--yes"],
                    &[
                        ("SCIMCTL_TOKEN", token.as_str()),
                        ("SCIMCTL_LOCK_DIR", locks.to_str().unwrap()),
                    ],
                    std::time::Duration::from_secs(120),
                );
                let (out, err) = crate::support::text(&output);
                (output.status.code(), out, err)
            })
        })
        .collect();
    let mut outputs = Vec::new();
    for run in runs {
        let (code, out, err) = run.join().unwrap();
        assert_eq!(code, Some(0), "{out}\n{err}");
        outputs.push(out);
    }
    outputs.sort_by_key(|o| o.contains("No changes."));
    let client = bearer_client(&url, &token, None);
    let snapshot = client.snapshot().await.unwrap();
    let groups: Vec<_> = snapshot
        .groups
        .iter()
        .filter(|g| g.natural_key().starts_with(&tag))
        .map(|g| g.parse().unwrap())
        .collect();
    assert_eq!(groups.len(), 7, "one of each group: {outputs:#?}");
    let members: usize = groups
        .iter()
        .map(|g: &scimctl::scim::wire::Group| g.members.len())
        .sum();
    assert_eq!(members, 20, "{outputs:#?}");
    let users = snapshot
        .users
        .iter()
        .filter(|u| u.natural_key().ends_with(&format!("@{tag}.example")))
        .count();
    assert_eq!(users, 20);
    outputs
}

/// Twins someone else made (two groups of one name on scim2-server) no longer fail every
/// plan: `plan` shows the merge as rows (keep the lowest id, add the members only the twin
/// has, delete the twin) under the brakes, and `apply` carries it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_twins_are_planned_as_a_merge_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let tag = format!("pretwin{}", std::process::id());
    let client = bearer_client(&url, &token, None);
    let mut ids = Vec::new();
    for i in 0..2 {
        let user = scimctl::scim::wire::User {
            user_name: format!("m{i}@{tag}.example"),
            ..Default::default()
        };
        let created = client.create(&user.with_schemas()).await.unwrap();
        ids.push(created.resource.id.unwrap());
    }
    let mut twins = Vec::new();
    for id in &ids {
        let group = scimctl::scim::wire::Group {
            display_name: format!("{tag}-team"),
            members: vec![scimctl::scim::wire::Reference {
                value: id.clone(),
                kind: Some("User".into()),
                display: None,
                reference: None,
            }],
            ..Default::default()
        };
        let created = client.create(&group.with_schemas()).await.unwrap();
        twins.push(created.resource.id.unwrap());
    }
    twins.sort_by(|a, b| scimctl::plan::survivor_order(a, b));
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    write(
        &dir,
        "org.yaml",
        &format!(
            "users:\n  - userName: m0@{tag}.example\n  - userName: m1@{tag}.example\ngroups:\n  - displayName: {tag}-team\n"
        ),
    );
    let d = dir.to_str().unwrap();
    let env = [("SCIMCTL_TOKEN", token.as_str())];
    let plan = crate::support::run_bounded_with(
        work.path(),
        &["plan", d, "--target", &url],
        &env,
        std::time::Duration::from_secs(60),
    );
    let (out, err) = crate::support::text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{out}\n{err}");
    assert!(
        err.contains(&format!("keeps id {}", twins[0])),
        "the twin warning is a diagnostic, on stderr:\n{err}"
    );
    assert!(out.contains("BLOCKED"), "{out}");

    write(&dir, "scimctl.yaml", "safety: {maxDeletePercent: 100}\n");
    let apply = crate::support::run_bounded_with(
        work.path(),
        &["apply", d, "--target", &url, "--yes"],
        &env,
        std::time::Duration::from_secs(60),
    );
    let (out, err) = crate::support::text(&apply);
    assert_eq!(apply.status.code(), Some(0), "{out}\n{err}");
    let snapshot = client.snapshot().await.unwrap();
    let left: Vec<scimctl::scim::wire::Group> = snapshot
        .groups
        .iter()
        .filter(|g| g.natural_key() == format!("{tag}-team"))
        .map(|g| g.parse().unwrap())
        .collect();
    assert_eq!(left.len(), 1, "{out}");
    assert_eq!(left[0].id.as_deref(), Some(twins[0].as_str()));
    let mut members: Vec<&str> = left[0].members.iter().map(|m| m.value.as_str()).collect();
    members.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(members, want);
}

/// The userNames of this test's active users on the tenant, sorted.
async fn active_users(client: &ScimClient, tag: &str) -> Vec<String> {
    let suffix = format!("@{tag}.example");
    let mut names: Vec<String> = client
        .snapshot()
        .await
        .unwrap()
        .users
        .iter()
        .map(|u| u.parse().unwrap())
        .filter(|u| u.user_name.ends_with(&suffix) && u.active != Some(false))
        .map(|u| u.user_name)
        .collect();
    names.sort();
    names
}

/// The actor guard on `apply`, `apply --allow-deletes` and `apply --plan` (a forged plan): the
/// account scimctl runs as is never deactivated, with every brake off. Who that is comes from
/// the target's `GET /Me` (`declare` false) or from `safety.runsAs` (`declare` true, for
/// servers that cannot say, like scim2-server).
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn the_account_scimctl_runs_as_is_kept(url: &str, token: &str, tag: &str, declare: bool) {
    let client = bearer_client(url, token, None);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let cwd = work.path();
    let [bot, ann, bo] = ["bot", "ann", "bo"].map(|n| format!("{n}@{tag}.example"));
    let runs_as = if declare {
        format!(", runsAs: {bot}")
    } else {
        String::new()
    };
    write(
        &dir,
        "scimctl.yaml",
        &format!(
            "ownership: {{users: {{selector: {{nameSuffix: \"@{tag}.example\"}}}}}}\n\
             safety: {{maxDeletePercent: 100, maxDeleteCount: 100{runs_as}}}\n"
        ),
    );
    let users = |names: &[&String]| {
        let mut yaml = String::from("users:\n");
        for n in names {
            let _ = writeln!(yaml, "  - userName: {n}");
        }
        write(&dir, "org.yaml", &yaml);
    };
    users(&[&bot, &ann, &bo]);
    let (code, out, err) = scimctl(cwd, &["apply", d, "--target", url, "--yes"], token);
    assert_eq!(code, 0, "{out}\n{err}");
    let everyone = vec![ann.clone(), bo.clone(), bot.clone()];
    assert_eq!(active_users(&client, tag).await, everyone);

    // bot and bo leave the YAML: bo's deactivation is planned, bot's is held back.
    users(&[&ann]);
    let (code, out, err) = scimctl(
        cwd,
        &["plan", d, "--target", url, "--format", "json"],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = |key: &str| {
        doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .unwrap_or_else(|| panic!("no row for {key}: {out}"))
            .clone()
    };
    assert!(
        row(&bot)["blocked"]
            .as_str()
            .is_some_and(|r| r.contains("the account scimctl runs as")),
        "{out}"
    );
    assert!(row(&bo)["blocked"].is_null(), "{out}");

    // apply, with and without --allow-deletes: refused, nothing written.
    for extra in [&[][..], &["--allow-deletes", "2"][..]] {
        let mut args = vec!["apply", d, "--target", url, "--yes"];
        args.extend_from_slice(extra);
        let (code, out, err) = scimctl(cwd, &args, token);
        assert_eq!(code, 4, "{args:?}\n{out}\n{err}");
        assert!(
            out.contains("BLOCKED") && out.contains("the account scimctl runs as"),
            "{out}\n{err}"
        );
        assert_eq!(active_users(&client, tag).await, everyone, "{args:?}");
    }

    // A saved plan with its blocked field deleted and the checksum recomputed.
    let saved = cwd.join("saved.json");
    let (code, out, err) = scimctl(
        cwd,
        &["plan", d, "--target", url, "--out", saved.to_str().unwrap()],
        token,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let doc = PlanDocument::from_json(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let forged = cwd.join("forged.json");
    std::fs::write(
        &forged,
        forge(&doc, |d| {
            d.changes.iter_mut().for_each(|c| c.blocked = None);
        }),
    )
    .unwrap();
    let f = forged.to_str().unwrap();
    let (code, out, err) = scimctl(
        cwd,
        &[
            "apply",
            d,
            "--plan",
            f,
            "--target",
            url,
            "--yes",
            "--allow-deletes",
            "2",
        ],
        token,
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert_eq!(active_users(&client, tag).await, everyone, "forged plan");

    // The guard holds back only the actor: bo alone goes.
    users(&[&ann, &bot]);
    let (code, out, err) = scimctl(cwd, &["apply", d, "--target", url, "--yes"], token);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(active_users(&client, tag).await, vec![ann, bot]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_named_by_get_me_is_kept_on_the_sandbox() {
    let sandbox = crate::support::bearer_sandbox_as(TOKEN, Some("bot@me-sbx.example")).await;
    the_account_scimctl_runs_as_is_kept(&sandbox.base_url, TOKEN, "me-sbx", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_declared_in_runs_as_is_kept_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let tag = format!("runsas{}", std::process::id());
    the_account_scimctl_runs_as_is_kept(&url, &token, &tag, true).await;
}
