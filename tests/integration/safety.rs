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

use crate::support::{bearer_client, bearer_sandbox, scimctl_with_token as scimctl};

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

/// Re-seals `doc` after `edit`, as anyone who can write the file can.
fn forge(doc: &PlanDocument, edit: impl FnOnce(&mut PlanDocument)) -> String {
    let mut forged = doc.clone();
    edit(&mut forged);
    let target = forged.target.clone().unwrap();
    let live = forged.live_hash.clone().unwrap();
    let forged = forged.with_target(&target).with_live_hash(live);
    serde_json::to_string_pretty(&forged).unwrap()
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
            extra.key.clone_from(&boss);
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
