//! Genesys Cloud group settings and `externalIds` matching (issue 18), end to end: the
//! binary against `sandbox serve --flavor genesys`, whose group PUT resets every field a
//! body leaves out, checked through the simulator's own Platform API.

use std::path::Path;

use serde_json::{Value, json};

use crate::genesys::{
    Server, apply, assert_no_changes, check_request_log, client_config, example_for, get_json, run,
    scim_user, serve, serve_with, token,
};

const GROUP: &str = "Support Tier 1";
const SAM: &str = "sam.okafor@northwind.example";
const PRIYA: &str = "priya.raman@northwind.example";

/// The Platform view of the group named `name`.
async fn platform_group(http: &reqwest::Client, server: &Server, name: &str) -> Value {
    let bearer = token(http, &server.url).await;
    let list = get_json(
        http,
        &format!("{}/api/v2/groups?pageSize=100", server.url),
        &bearer,
    )
    .await;
    let id = list["entities"]
        .as_array()
        .and_then(|e| e.iter().find(|g| g["name"] == name))
        .and_then(|g| g["id"].as_str())
        .unwrap_or_else(|| panic!("no group {name}: {list}"))
        .to_owned();
    get_json(http, &format!("{}/api/v2/groups/{id}", server.url), &bearer).await
}

/// The user id of `user_name`.
async fn user_id(http: &reqwest::Client, server: &Server, user_name: &str) -> String {
    let bearer = token(http, &server.url).await;
    let user = scim_user(http, &server.url, &bearer, user_name).await;
    user["id"].as_str().unwrap().to_owned()
}

/// Rewrites the group file of `ds`: `from` (once) becomes `to`.
fn edit_groups(ds: &Path, from: &str, to: &str) {
    let file = ds.join("groups.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    assert!(yaml.contains(from), "{from:?} in {yaml}");
    std::fs::write(&file, yaml.replacen(from, to, 1)).unwrap();
}

/// The owners of a Platform group, by id.
fn owners(group: &Value) -> Vec<&str> {
    group["owners"]
        .as_array()
        .map(|o| o.iter().filter_map(|o| o["id"].as_str()).collect())
        .unwrap_or_default()
}

// Settings written in YAML go out with the group's create (an owner the same run creates
// first), and the second plan is empty. Changing one setting changes only that one: the PUT
// carries every other field as read, although the simulator resets what a PUT leaves out.
// A setting taken out of YAML is left as it is, as are settings changed in the admin UI that
// YAML never names. An owners change is one row with who comes and who goes.
#[test]
fn group_settings_are_managed_only_when_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let ds_str = ds.to_str().unwrap().to_owned();
    edit_groups(
        &ds,
        "    externalId: grp-support-t1\n",
        &format!(
            "    externalId: grp-support-t1\n    visibility: members\n    rolesEnabled: true\n    callsEnabled: true\n    owners: [{SAM}]\n"
        ),
    );
    let (code, out, err) = run(dir.path(), &["plan", &ds_str]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("visibility: \"members\""), "{out}");
    assert!(out.contains(&format!("owners: {SAM}")), "{out}");
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);

    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sam = runtime.block_on(user_id(&http, &server, SAM));
    let created = runtime.block_on(platform_group(&http, &server, GROUP));
    assert_eq!(created["visibility"], "members", "{created}");
    assert_eq!(created["type"], "official", "the default: {created}");
    assert_eq!(created["rulesVisible"], true, "the default: {created}");
    assert_eq!(created["rolesEnabled"], true, "{created}");
    assert_eq!(created["callsEnabled"], true, "{created}");
    assert_eq!(created["includeOwners"], false, "not written: {created}");
    assert_eq!(owners(&created), [sam.as_str()], "{created}");
    assert_eq!(created["description"], "First-line support queue");

    // One setting changes; every other survives the PUT.
    edit_groups(&ds, "    callsEnabled: true\n", "    callsEnabled: false\n");
    let (code, out, err) = run(dir.path(), &["plan", &ds_str, "--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!(
        changes[0]["diff"],
        json!([{"attribute": "callsEnabled", "before": true, "after": false}]),
        "{out}"
    );
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);
    let after = runtime.block_on(platform_group(&http, &server, GROUP));
    assert_eq!(after["callsEnabled"], false, "{after}");
    for (field, value) in [
        ("visibility", json!("members")),
        ("rolesEnabled", json!(true)),
        ("rulesVisible", json!(true)),
        ("type", json!("official")),
        ("description", json!("First-line support queue")),
    ] {
        assert_eq!(after[field], value, "{field} survived: {after}");
    }
    assert_eq!(owners(&after), [sam.as_str()], "{after}");

    // Out of YAML: left as it is, with no plan row.
    edit_groups(&ds, "    visibility: members\n", "");
    assert_no_changes(dir.path(), &ds_str);

    // The owners change: Priya comes, Sam goes.
    edit_groups(
        &ds,
        &format!("owners: [{SAM}]"),
        &format!("owners: [{PRIYA}]"),
    );
    let (code, out, err) = run(dir.path(), &["plan", &ds_str]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("- owners: {SAM}")), "{out}");
    assert!(out.contains(&format!("+ owners: {PRIYA}")), "{out}");
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);
    let priya = runtime.block_on(user_id(&http, &server, PRIYA));
    let last = runtime.block_on(platform_group(&http, &server, GROUP));
    assert_eq!(owners(&last), [priya.as_str()], "{last}");
    assert_eq!(last["visibility"], "members", "left alone: {last}");
    assert_eq!(last["rolesEnabled"], true, "{last}");

    check_request_log(dir.path());
}

const GENESYS_EXT: &str = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";

/// The `externalIds` entry of `authority` of a SCIM user, if any.
fn entry<'v>(user: &'v Value, authority: &str) -> Option<&'v str> {
    user[GENESYS_EXT]["externalIds"]
        .as_array()?
        .iter()
        .find(|e| e["authority"] == authority)?["value"]
        .as_str()
}

// `matchBy: {externalIdAuthority: hris}`: another provisioner owns the SCIM externalId of a
// live user that it named sam.legacy; scimctl finds that user by its `hris` entry (YAML
// `externalId: hr-10010`) and renames it instead of creating a second Sam, never touching
// the other provisioner's externalId. New users get their YAML externalId as an `hris`
// entry and no SCIM externalId. The second plan is empty, and an export through a client
// with the authority writes the `hris` value back as `externalId`.
#[test]
fn users_match_on_their_external_ids_authority() {
    let dir = tempfile::tempdir().unwrap();
    // No read lag: the user seeded below is listed at once, so nothing waits on a clock.
    let server = serve_with(dir.path(), &["--read-lag-ms", "0"]);
    let ds = example_for(&server, dir.path());
    let ds_str = ds.to_str().unwrap().to_owned();
    let config = ds.join("scimctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}matchBy: {{externalIdAuthority: hris}}\n"),
    )
    .unwrap();

    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bearer = runtime.block_on(token(&http, &server.url));
    let legacy = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", GENESYS_EXT],
        "userName": "sam.legacy@northwind.example", "displayName": "Sam Okafor",
        "externalId": "okta-00u1",
        GENESYS_EXT: {"externalIds": [{"authority": "hris", "value": "hr-10010"}]}
    });
    let (status, body) = runtime.block_on(async {
        let reply = http
            .post(format!("{}/api/v2/scim/v2/users", server.url))
            .bearer_auth(&bearer)
            .json(&legacy)
            .send()
            .await
            .unwrap();
        (reply.status(), reply.text().await.unwrap())
    });
    assert_eq!(status.as_u16(), 201, "{body}");

    let (code, out, err) = run(dir.path(), &["plan", &ds_str, "--format", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let sam = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == SAM)
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        sam["action"], "patch",
        "matched by hris, not created: {sam}"
    );
    assert!(
        sam["diff"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["attribute"] != "externalId"),
        "{sam}"
    );
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);

    let renamed = runtime.block_on(scim_user(&http, &server.url, &bearer, SAM));
    assert_eq!(renamed["externalId"], "okta-00u1", "left alone: {renamed}");
    assert_eq!(entry(&renamed, "hris"), Some("hr-10010"), "{renamed}");
    let priya = runtime.block_on(scim_user(&http, &server.url, &bearer, PRIYA));
    assert!(priya.get("externalId").is_none(), "{priya}");
    let priya_hris = entry(&priya, "hris").unwrap_or_else(|| panic!("{priya}"));
    assert!(priya_hris.starts_with("hr-"), "{priya}");

    // An export through a client that knows the authority.
    let mut client = client_config(
        format!("{}/api/v2/scim/v2", server.url),
        format!("{}/oauth/token", server.url),
    );
    client.external_id_authority = Some("hris".into());
    // As the CLI configures a Genesys target (src/target.rs).
    client.page_size = Some(25);
    client.max_concurrency = 4;
    client.requests_per_minute = Some(6000);
    let client = scimctl::scim::ScimClient::new(client).unwrap();
    let snapshot = runtime
        .block_on(scimctl::scim::snapshot::snapshot(&client))
        .unwrap();
    let export = scimctl::export::export(&snapshot, &scimctl::export::ExportOptions::default());
    let all: String = export.files.values().cloned().collect();
    assert!(all.contains("externalId: hr-10010"), "{all}");
    assert!(!all.contains("okta-00u1"), "{all}");
    // The same through the CLI: `--from` reads with the directory's authority and writes it
    // into the export's scimctl.yaml, so the export plans empty.
    let exported = dir.path().join("exported");
    let exported = exported.to_str().unwrap();
    let (code, out, err) = run(
        dir.path(),
        &["export", "--from", &ds_str, "--out", exported],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let read = |file: &str| std::fs::read_to_string(Path::new(exported).join(file)).unwrap();
    assert!(
        read("scimctl.yaml").contains("matchBy: {externalIdAuthority: hris}"),
        "{}",
        read("scimctl.yaml")
    );
    let users: String = std::fs::read_dir(Path::new(exported).join("users"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(users.contains("externalId: hr-10010"), "{users}");
    assert!(!users.contains("okta-00u1"), "{users}");
    assert_no_changes(dir.path(), exported);

    check_request_log(dir.path());
}
