//! Roles granted through groups (issue 18, item 2) on the Genesys simulator: the example
//! org's Quality Assurance group grants Reporting (`PC_GROUP` grants, `rolesEnabled`); a role
//! given to an existing group switches `rolesEnabled` on in the same change; a group created
//! in the same run gets its grants after it exists; a grant YAML does not list is kept under
//! `ownership.groups: listed` and revoked under `all`; the last admin who holds the admin
//! role only through a group is kept, and a forged saved plan that revokes that grant writes
//! nothing. Every second plan is empty and every request is a documented one.

use std::path::Path;

use serde_json::{Value, json};

use crate::genesys::{
    Server, apply, apply_forged_plan, assert_no_changes, check_request_log, example_for, get_json,
    run, serve, token,
};

/// The Platform group named `name`.
pub(crate) fn platform_group(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    name: &str,
) -> Value {
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let bearer = token(&http, &server.url).await;
        let list = get_json(
            &http,
            &format!("{}/api/v2/groups?pageSize=100", server.url),
            &bearer,
        )
        .await;
        list["entities"]
            .as_array()
            .and_then(|e| e.iter().find(|g| g["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no group {name}: {list}"))
    })
}

/// The grants subject `id` holds, as `(subjectId, role name, division name)`.
pub(crate) fn grants_of(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    id: &str,
) -> Vec<(String, String, String)> {
    let http = reqwest::Client::new();
    let subject = runtime.block_on(async {
        let bearer = token(&http, &server.url).await;
        get_json(
            &http,
            &format!("{}/api/v2/authorization/subjects/{id}", server.url),
            &bearer,
        )
        .await
    });
    let mut out: Vec<(String, String, String)> = subject["grants"]
        .as_array()
        .unwrap_or_else(|| panic!("{subject}"))
        .iter()
        .map(|g| {
            (
                g["subjectId"].as_str().unwrap_or_default().to_owned(),
                g["role"]["name"].as_str().unwrap_or_default().to_owned(),
                g["division"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `POST …/subjects/{group}/bulkadd?subjectType=PC_GROUP` of `role` in the home division, as
/// an administrator would in the admin UI; the answer's status.
fn grant_by_hand(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    group: &str,
    role: &str,
) -> u16 {
    let http = reqwest::Client::new();
    runtime.block_on(async {
        let bearer = token(&http, &server.url).await;
        let roles = get_json(
            &http,
            &format!("{}/api/v2/authorization/roles?pageSize=100", server.url),
            &bearer,
        )
        .await;
        let role_id = roles["entities"]
            .as_array()
            .and_then(|e| e.iter().find(|r| r["name"] == role))
            .and_then(|r| r["id"].as_str())
            .unwrap_or_else(|| panic!("no role {role}: {roles}"))
            .to_owned();
        let divisions = get_json(
            &http,
            &format!("{}/api/v2/authorization/divisions", server.url),
            &bearer,
        )
        .await;
        let home = divisions["entities"]
            .as_array()
            .and_then(|e| e.iter().find(|d| d["name"] == "Home"))
            .cloned()
            .unwrap_or_else(|| panic!("no home division: {divisions}"));
        http.post(format!(
            "{}/api/v2/authorization/subjects/{group}/bulkadd",
            server.url
        ))
        .query(&[("subjectType", "PC_GROUP")])
        .bearer_auth(&bearer)
        .json(&json!({"grants": [{"roleId": role_id, "divisionId": home["id"]}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
    })
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

// The example org converges with the Quality Assurance group granting Reporting: the group
// has rolesEnabled and the grant, its member Grace holds Reporting through it (her subject
// read shows the group's grant), and the second plan is empty. Then Sales (roles not
// enabled) is given Agent and a new group Coaches is given Supervisor: the plan shows
// rolesEnabled switched on before the grant, apply carries both out, the next plan is empty.
#[test]
fn example_group_grants_converge_and_switch_roles_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let d = ds.to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let (code, out, err) = run(dir.path(), &["plan", &d]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Reporting @ Home"), "{out}");
    assert!(!err.contains("cannot be written"), "{err}");
    apply(dir.path(), &d);
    assert_no_changes(dir.path(), &d);

    let qa = platform_group(&runtime, &server, "Quality Assurance");
    assert_eq!(qa["rolesEnabled"], true, "{qa}");
    let qa_id = qa["id"].as_str().unwrap().to_owned();
    assert_eq!(
        grants_of(&runtime, &server, &qa_id),
        [(qa_id.clone(), "Reporting".to_owned(), "Home".to_owned())]
    );
    let http = reqwest::Client::new();
    let grace = runtime.block_on(async {
        let bearer = token(&http, &server.url).await;
        crate::genesys::scim_user(&http, &server.url, &bearer, "grace.liu@northwind.example").await
    });
    let grace_grants = grants_of(&runtime, &server, grace["id"].as_str().unwrap());
    assert!(
        grace_grants
            .iter()
            .any(|(s, r, _)| s == &qa_id && r == "Reporting"),
        "Grace holds Reporting through the group: {grace_grants:?}"
    );

    let groups = ds.join("groups.yaml");
    edit(
        &groups,
        "    description: Inbound sales and renewals\n",
        "    description: Inbound sales and renewals\n    roles: [Agent]\n",
    );
    let text = std::fs::read_to_string(&groups).unwrap();
    std::fs::write(
        &groups,
        format!(
            "{text}\n  - displayName: Coaches\n    members: [grace.liu@northwind.example]\n    roles: [{{name: Supervisor, divisions: [Home, Field Sales]}}]\n"
        ),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["plan", &d]);
    assert_eq!(code, 0, "{out}\n{err}");
    let sales = out
        .split("group Sales")
        .nth(1)
        .unwrap_or_else(|| panic!("Sales is patched:\n{out}"));
    let (enabled, granted) = (
        sales.find("rolesEnabled").expect("rolesEnabled row"),
        sales.find("Agent @ Home").expect("grant row"),
    );
    assert!(enabled < granted, "rolesEnabled first:\n{out}");
    assert!(out.contains("+ create group Coaches"), "{out}");
    assert!(out.contains("Supervisor @ Field Sales"), "{out}");
    apply(dir.path(), &d);
    assert_no_changes(dir.path(), &d);
    let sales = platform_group(&runtime, &server, "Sales");
    assert_eq!(sales["rolesEnabled"], true, "{sales}");
    let sales_grants = grants_of(&runtime, &server, sales["id"].as_str().unwrap());
    assert_eq!(sales_grants.len(), 1, "{sales_grants:?}");
    let coaches = platform_group(&runtime, &server, "Coaches");
    let coach_grants = grants_of(&runtime, &server, coaches["id"].as_str().unwrap());
    assert_eq!(coach_grants.len(), 2, "{coach_grants:?}");
    let (requests, _) = check_request_log(dir.path());
    assert!(requests > 50);
    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    let grant: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["path"] == format!("/api/v2/authorization/subjects/{qa_id}/bulkadd"))
        .collect();
    assert!(!grant.is_empty(), "the group grant went out");
    assert!(
        grant.iter().all(|e| e["query"] == "subjectType=PC_GROUP"),
        "a group's grant names its subject type: {grant:?}"
    );
}

// A grant made by hand to Quality Assurance is kept under `ownership.groups: listed` (the
// plan is empty) and revoked under `all` (`bulkremove?subjectType=PC_GROUP`); Reporting
// stays. The simulator refuses a grant to a group without rolesEnabled (400).
#[test]
fn unlisted_group_grants_kept_under_listed_revoked_under_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let d = ds.to_str().unwrap().to_owned();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    apply(dir.path(), &d);

    let qa = platform_group(&runtime, &server, "Quality Assurance");
    let qa_id = qa["id"].as_str().unwrap().to_owned();
    assert_eq!(grant_by_hand(&runtime, &server, &qa_id, "Wrap Up"), 204);
    let billing = platform_group(&runtime, &server, "Billing");
    assert_eq!(billing["rolesEnabled"], false, "{billing}");
    assert_eq!(
        grant_by_hand(
            &runtime,
            &server,
            billing["id"].as_str().unwrap(),
            "Wrap Up"
        ),
        400,
        "no roles on a group without rolesEnabled"
    );
    assert_no_changes(dir.path(), &d);

    edit(
        &ds.join("scimctl.yaml"),
        "ownership: {users: listed, groups: listed, roles: listed}",
        "ownership: {users: listed, groups: all, roles: listed}",
    );
    let (code, out, err) = run(dir.path(), &["plan", &d]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Wrap Up @ Home"), "{out}");
    assert!(!out.contains("BLOCKED"), "{out}");
    apply(dir.path(), &d);
    assert_no_changes(dir.path(), &d);
    assert_eq!(
        grants_of(&runtime, &server, &qa_id),
        [(qa_id.clone(), "Reporting".to_owned(), "Home".to_owned())]
    );
    check_request_log(dir.path());
}

// A small org whose only admin holds the admin role through a group: removing her from the
// group, or revoking the group's grant, is held back by the last-admin rule; a saved plan
// with that row's `blocked` field deleted writes nothing.
#[test]
fn last_admin_through_a_group_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = dir.path().join("org");
    std::fs::create_dir(&ds).unwrap();
    let d = ds.to_str().unwrap().to_owned();
    let config = |groups: &str| {
        format!(
            "ownership: {{users: listed, groups: {groups}, roles: listed}}\npolicy: {{adminRoles: [Boss]}}\ntarget:\n  kind: genesys\n  apiUrl: {0}\n  loginUrl: {0}\n  clientId: {1}\n  clientSecret: {{fromEnv: GENESYS_TEST_SECRET}}\n  requestsPerMinute: 6000\n",
            server.url,
            crate::genesys::CLIENT_ID
        )
    };
    let org = |members: &str, roles: &str| {
        format!(
            "roles:\n  - name: Boss\n    permissions: [directory:user:view]\nusers:\n  - userName: root@x.example\n    displayName: Root\n  - userName: bob@x.example\n    displayName: Bob\ngroups:\n  - displayName: Admins\n    members: {members}\n    roles: {roles}\n"
        )
    };
    std::fs::write(ds.join("scimctl.yaml"), config("listed")).unwrap();
    std::fs::write(ds.join("org.yaml"), org("[root@x.example]", "[Boss]")).unwrap();
    apply(dir.path(), &d);
    assert_no_changes(dir.path(), &d);

    // Root leaves the group: held back.
    std::fs::write(ds.join("org.yaml"), org("[bob@x.example]", "[Boss]")).unwrap();
    let (code, out, err) = run(dir.path(), &["plan", &d]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("would leave admin role \"boss\" with no active holder"),
        "{out}"
    );
    // The group's grant revoked (ownership all, no roles): held back; saved, then forged.
    std::fs::write(ds.join("scimctl.yaml"), config("all")).unwrap();
    std::fs::write(ds.join("org.yaml"), org("[root@x.example]", "[]")).unwrap();
    let (code, out, err) = run(dir.path(), &["plan", &d]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("BLOCKED"), "{out}");
    let sent = apply_forged_plan(dir.path(), &d, 1);
    assert!(!sent.contains("bulkremove"), "nothing was revoked");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let admins = platform_group(&runtime, &server, "Admins");
    let id = admins["id"].as_str().unwrap();
    assert_eq!(grants_of(&runtime, &server, id).len(), 1);
    check_request_log(dir.path());
}
