//! `scimctl plan` end to end: the real binary against the embedded sandbox and against
//! python-scim's scim2-server, each seeded with a live org that differs from desired state in
//! every kind of way (missing, extra, changed, renamed, membership, unmanaged, protected).
//!
//! The same scenario runs against both servers; names carry a per-server prefix so the peer
//! may hold other data.

use std::path::Path;
use std::time::Duration;

use scimctl::scim::wire::{EnterpriseUser, Group, MultiValue, Reference, User};
use serde_json::Value;

use crate::support::{run_bounded_with, text};

fn live_user(name: &str, title: &str, external_id: Option<&str>) -> User {
    User {
        user_name: name.into(),
        display_name: Some(title.to_owned() + " " + name.split('@').next().unwrap_or("")),
        external_id: external_id.map(str::to_owned),
        active: Some(true),
        title: Some(title.into()),
        emails: vec![MultiValue {
            value: name.into(),
            kind: Some("work".into()),
            primary: Some(true),
        }],
        enterprise: Some(EnterpriseUser {
            department: Some("Support".into()),
            ..EnterpriseUser::default()
        }),
        ..User::default()
    }
    .with_schemas()
}

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn plan_json(dir: &Path, url: &str, token: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "plan",
        dir.to_str().unwrap(),
        "--target",
        url,
        "--format",
        "json",
        "--detailed-exitcode",
    ];
    args.extend_from_slice(extra);
    let output = run_bounded_with(
        dir,
        &args,
        &[("SCIMCTL_TOKEN", token)],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&output);
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("plan did not print JSON ({e}): {stdout}\n{stderr}"));
    (output.status.code().unwrap_or(-1), json, stderr)
}

/// (action, kind, key, blocked?) of every change, in plan order.
fn rows(plan: &Value) -> Vec<(String, String, String, bool)> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap().to_owned(),
                c["kind"].as_str().unwrap().to_owned(),
                c["key"].as_str().unwrap().to_owned(),
                c.get("blocked").is_some(),
            )
        })
        .collect()
}

fn change<'a>(plan: &'a Value, key: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == key)
        .unwrap_or_else(|| panic!("no change for {key}: {plan:#}"))
}

fn diff_of<'a>(change: &'a Value, attribute: &str) -> &'a Value {
    change["diff"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attribute"] == attribute)
        .unwrap_or_else(|| panic!("no {attribute} in {change:#}"))
}

/// Seeds the tenant, writes desired state, and checks the plan lists exactly the expected
/// changes; then checks a desired state identical to live plans nothing. One function: it
/// reads top to bottom as the story of one tenant.
#[allow(clippy::too_many_lines)]
async fn plan_scenario(url: &str, token: &str, p: &str) {
    let client = crate::support::bearer_client(url, token, None);
    let name = |local: &str| format!("{local}@{p}.example");
    let create = |u: User| {
        let client = client.clone();
        async move { client.create(&u).await.unwrap().resource }
    };
    let alice = create(live_user(&name("alice"), "Agent", Some(&format!("{p}-1")))).await;
    let carol = create(live_user(&name("carol.old"), "Agent", None)).await;
    let dave = create(live_user(&name("dave"), "Agent", None)).await;
    let erin = create(live_user(&name("erin"), "Admin", None)).await;
    let frank = create(live_user(&name("frank"), "Agent", None)).await;
    let member = |u: &User| Reference {
        value: u.id.clone().unwrap(),
        kind: Some("User".into()),
        display: None,
        reference: None,
    };
    let support = Group {
        display_name: format!("{p} Support"),
        members: vec![member(&alice), member(&frank), member(&dave)],
        ..Group::default()
    }
    .with_schemas();
    client.create(&support).await.unwrap();
    let unmanaged = Group {
        display_name: format!("{p} Unmanaged"),
        members: vec![member(&erin)],
        ..Group::default()
    }
    .with_schemas();
    client.create(&unmanaged).await.unwrap();
    assert!(carol.id.is_some() && erin.id.is_some());

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "scimctl.yaml",
        &format!(
            "ownership:\n  users: {{selector: {{nameSuffix: \"@{p}.example\"}}}}\n\
             protected:\n  users: [\"{erin}\"]\n",
            erin = name("erin")
        ),
    );
    let user = |n: &str, title: &str, extra: &str| {
        format!(
            "  - userName: {u}\n    displayName: {title} {n}\n    title: {title}\n    department: Support\n    \
             emails: [{{value: {u}, type: work, primary: true}}]\n{extra}",
            u = name(n)
        )
    };
    let users = [
        user(
            "alice",
            "Lead",
            &format!("    externalId: {p}-1\n    department: Support Ops\n"),
        )
        .replace("    department: Support\n    emails", "    emails"),
        user("bob", "Agent", &format!("    manager: {}\n", name("alice"))),
        user(
            "carol.new",
            "Agent",
            &format!("    previously: [{}]\n", name("carol.old")),
        ),
        user("erin", "Administrator", ""),
        user("frank", "Agent", ""),
    ];
    write(
        dir.path(),
        "users.yaml",
        &format!("users:\n{}", users.join("")),
    );
    write(
        dir.path(),
        "groups.yaml",
        &format!(
            "groups:\n  - displayName: {p} Support\n    members: [{}, {}]\n  - displayName: {p} New\n    members: [{}]\n",
            name("alice"),
            name("bob"),
            name("carol.new")
        ),
    );
    // carol.old's display name was "Agent carol.old".
    let (code, plan, stderr) = plan_json(dir.path(), url, token, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        rows(&plan),
        vec![
            ("create".into(), "group".into(), format!("{p} New"), false),
            ("create".into(), "user".into(), name("bob"), false),
            (
                "patch".into(),
                "group".into(),
                format!("{p} Support"),
                false
            ),
            // dave's removal from Support goes with his blocked deactivation (issue 14).
            ("patch".into(), "group".into(), format!("{p} Support"), true),
            ("patch".into(), "user".into(), name("alice"), false),
            ("patch".into(), "user".into(), name("carol.new"), false),
            ("deactivate".into(), "user".into(), name("dave"), true),
        ],
        "{plan:#}"
    );
    assert_eq!(plan["summary"]["blocked"], 2);
    assert_eq!(plan["summary"]["create"], 2);
    // Exactly the attributes that differ, with before and after.
    let pa = change(&plan, &name("alice"));
    assert_eq!(diff_of(pa, "title")["before"], "Agent");
    assert_eq!(diff_of(pa, "title")["after"], "Lead");
    assert_eq!(diff_of(pa, "department")["after"], "Support Ops");
    assert_eq!(pa["diff"].as_array().unwrap().len(), 3, "{pa:#}");
    assert_eq!(pa["id"], alice.id.clone().unwrap().as_str());
    assert!(pa["version"].is_string(), "the live version is recorded");
    let pc = change(&plan, &name("carol.new"));
    assert_eq!(diff_of(pc, "userName")["before"], name("carol.old"));
    assert_eq!(diff_of(pc, "displayName")["after"], "Agent carol.new");
    assert_eq!(
        pc["diff"].as_array().unwrap().len(),
        3,
        "userName, displayName, emails: {pc:#}"
    );
    let ps = change(&plan, &format!("{p} Support"));
    let members = diff_of(ps, "members");
    assert_eq!(members["added"], serde_json::json!([name("bob")]));
    let mut removed: Vec<String> = members["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    removed.sort();
    assert_eq!(removed, vec![name("frank")]);
    // dave stays a member until his deactivation is allowed: his removal is its own row.
    let held = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == format!("{p} Support") && c.get("blocked").is_some())
        .unwrap();
    assert_eq!(
        diff_of(held, "members")["removed"],
        serde_json::json!([name("dave")])
    );
    assert!(
        held["blocked"].as_str().unwrap().starts_with(&format!(
            "goes with the blocked deactivation or delete of user {}",
            name("dave")
        )),
        "{held:#}"
    );
    let pb = change(&plan, &name("bob"));
    assert_eq!(diff_of(pb, "manager")["after"], name("alice"));
    let pd = change(&plan, &name("dave"));
    assert_eq!(pd["source"]["from"], "absent");
    assert!(
        pd["blocked"]
            .as_str()
            .unwrap()
            .contains("--allow-deletes 1"),
        "{pd:#}"
    );
    let yaml_source = &pa["source"];
    assert!(
        yaml_source["file"]
            .as_str()
            .unwrap()
            .ends_with("users.yaml")
    );
    assert_eq!(yaml_source["line"], 2);
    // The protected admin differs but is not touched, and the plan says so.
    assert!(
        plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["key"] != name("erin"))
    );
    assert!(
        plan["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("protected")),
        "{plan:#}"
    );
    // The unmanaged group is not in the plan.
    assert!(stderr.is_empty() || !stderr.contains("error"), "{stderr}");

    // --allow-deletes with exactly the count lifts the brake.
    let (code, lifted, _) = plan_json(dir.path(), url, token, &["--allow-deletes", "1"]);
    assert_eq!(code, 2);
    assert_eq!(lifted["summary"]["blocked"], 0);
    assert_eq!(lifted["summary"]["deactivate"], 1);

    // The text form names every change and ends with the summary line.
    let output = run_bounded_with(
        dir.path(),
        &["plan", dir.path().to_str().unwrap(), "--target", url],
        &[("SCIMCTL_TOKEN", token)],
        Duration::from_secs(60),
    );
    let (out, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        out.contains(&format!("~ patch user {}", name("alice"))),
        "{out}"
    );
    assert!(
        out.contains("    - title: \"Agent\"\n") && out.contains("    + title: \"Lead\"\n"),
        "{out}"
    );
    assert!(out.contains("! BLOCKED deactivate user"), "{out}");
    assert!(
        out.trim_end().ends_with(
            "Plan: 2 to create, 3 to patch, 0 to deactivate, 0 to delete, 2 blocked (2 unchanged)."
        ),
        "{out}"
    );

    // A desired state identical to what is live plans nothing. Group members must be in
    // desired state too; naming a user without attributes manages nothing else of it.
    let same = tempfile::tempdir().unwrap();
    write(
        same.path(),
        "org.yaml",
        &format!(
            "users:\n  - userName: {f}\n    displayName: Agent frank\n    title: Agent\n    \
             department: Support\n    active: true\n    \
             emails: [{{value: {f}, type: work, primary: true}}]\n  \
             - userName: {e}\n  - userName: {a}\n  - userName: {d}\n\
             groups:\n  - displayName: {p} Unmanaged\n    members: [{e}]\n  \
             - displayName: {p} Support\n    members: [{a}, {f}, {d}]\n",
            f = name("frank"),
            e = name("erin"),
            a = name("alice"),
            d = name("dave"),
        ),
    );
    let output = run_bounded_with(
        same.path(),
        &[
            "plan",
            same.path().to_str().unwrap(),
            "--target",
            url,
            "--detailed-exitcode",
        ],
        &[("SCIMCTL_TOKEN", token)],
        Duration::from_secs(60),
    );
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{err}");
    assert!(out.starts_with("No changes."), "{out}");
}

/// Against the embedded sandbox, served in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_the_sandbox() {
    let token = "plan-sandbox-token";
    let running = crate::support::bearer_sandbox(token).await;
    let url = running.base_url.clone();
    plan_scenario(&url, token, "plansandbox").await;
    running.shutdown().await.unwrap();
}

/// Against python-scim's scim2-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_against_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let prefix = format!("planpeer{}", std::process::id());
    plan_scenario(&url, &token, &prefix).await;
}
