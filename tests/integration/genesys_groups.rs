//! Genesys Cloud groups and grants against the simulator's pessimistic readings
//! (docs/genesys.md §4, §5): a group PUT that omits a field resets it, a group create drops
//! the description and needs `rulesVisible`, a group DELETE can fail after its 200, a new
//! role answers 404 to `bulkadd` for a while, and `bulkremove` fails whole on a stale pair.
//! The binary runs against `sandbox serve --flavor genesys`; the client tests run in process
//! on a paused clock.

use std::path::Path;
use std::time::Duration;

use scimctl::model::Kind;
use scimctl::sandbox::{self, Flavor, GenesysOptions, RunningSandbox, SandboxAuth, SandboxConfig};
use scimctl::scim::wire::{Group, User};
use scimctl::scim::{
    ClientConfig, Credentials, Dialect, GrantPair, OAuthSettings, RoleBody, ScimClient, Secret,
};
use serde_json::{Value, json};

use crate::genesys::{CLIENT_ID, SECRET, Server, check_call, example_for, run, serve};

/// A bearer token for raw Platform calls to `server`.
async fn token(http: &reqwest::Client, origin: &str) -> String {
    let reply: Value = http
        .post(format!("{origin}/oauth/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    reply["access_token"].as_str().unwrap().to_owned()
}

/// The Platform view of the group named `name` on `server`, and a token.
async fn platform_group(http: &reqwest::Client, server: &Server, name: &str) -> (Value, String) {
    let bearer = token(http, &server.url).await;
    let list: Value = http
        .get(format!("{}/api/v2/groups?pageSize=100", server.url))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["entities"]
        .as_array()
        .and_then(|e| e.iter().find(|g| g["name"] == name))
        .and_then(|g| g["id"].as_str())
        .unwrap_or_else(|| panic!("no group {name}: {list}"))
        .to_owned();
    let group: Value = http
        .get(format!("{}/api/v2/groups/{id}", server.url))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (group, bearer)
}

/// The id of the user `user_name` through the SCIM filter Genesys documents.
async fn user_id(http: &reqwest::Client, server: &Server, bearer: &str, user_name: &str) -> String {
    let found: Value = http
        .get(format!("{}/api/v2/scim/v2/users", server.url))
        .query(&[("filter", format!("userName eq \"{user_name}\""))])
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    found["Resources"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no user {user_name}: {found}"))
        .to_owned()
}

fn apply(dir: &Path, ds: &str) {
    let (code, out, err) = run(
        dir,
        &["apply", ds, "--yes", "--password-file", "passwords.txt"],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(" 0 failed"), "{out}");
}

fn assert_no_changes(dir: &Path, ds: &str) {
    let (code, out, err) = run(dir, &["plan", ds, "--detailed-exitcode"]);
    assert_eq!(code, 0, "the plan is empty:\n{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
}

// Groups created by apply get their description (a create drops it, so a PUT sets it) and
// the second plan is empty. Then someone enables roles on one, gives it an owner, a calls
// setting and an address in the admin UI; a description edit through scimctl keeps all of
// it, although the simulator's PUT resets every field a body leaves out.
#[test]
fn group_create_and_description_edit_keep_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let ds = example_for(&server, dir.path());
    let ds_str = ds.to_str().unwrap().to_owned();
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);

    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (group, bearer) = runtime.block_on(platform_group(&http, &server, "Support Tier 1"));
    assert_eq!(group["description"], "First-line support queue", "{group}");
    assert_eq!(group["rulesVisible"], true, "{group}");

    // The admin UI's changes, sent whole.
    let owner = runtime.block_on(user_id(
        &http,
        &server,
        &bearer,
        "sam.okafor@northwind.example",
    ));
    let id = group["id"].as_str().unwrap().to_owned();
    let body = json!({
        "name": group["name"], "description": group["description"],
        "type": group["type"], "visibility": group["visibility"], "rulesVisible": true,
        "rolesEnabled": true, "callsEnabled": true, "includeOwners": true,
        "ownerIds": [owner], "addresses": [{"address": "3001", "mediaType": "PHONE",
            "type": "GROUPRING"}],
        "version": group["version"],
    });
    let status = runtime.block_on(async {
        http.put(format!("{}/api/v2/groups/{id}", server.url))
            .bearer_auth(&bearer)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status.as_u16(), 200);

    let groups = ds.join("groups.yaml");
    let yaml = std::fs::read_to_string(&groups).unwrap();
    std::fs::write(
        &groups,
        yaml.replacen(
            "description: First-line support queue",
            "description: First-line support, all channels",
            1,
        ),
    )
    .unwrap();
    let (code, out, err) = run(dir.path(), &["plan", &ds_str]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("First-line support, all channels"), "{out}");
    apply(dir.path(), &ds_str);
    assert_no_changes(dir.path(), &ds_str);

    let (after, _) = runtime.block_on(platform_group(&http, &server, "Support Tier 1"));
    assert_eq!(after["description"], "First-line support, all channels");
    for flag in [
        "rolesEnabled",
        "callsEnabled",
        "includeOwners",
        "rulesVisible",
    ] {
        assert_eq!(after[flag], true, "{flag} survived the edit: {after}");
    }
    assert_eq!(after["owners"][0]["id"], owner.as_str(), "{after}");
    assert_eq!(after["addresses"][0]["address"], "3001", "{after}");

    let log = std::fs::read_to_string(dir.path().join("requests.log")).unwrap();
    for line in log.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        if let Err(e) = check_call(&entry) {
            panic!("{e}");
        }
    }
}

/// The Genesys flavour in process, with `options`.
async fn embedded(options: GenesysOptions) -> RunningSandbox {
    sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(options)),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// A fresh Genesys client of `server` (each one knows only what it created itself).
fn client(server: &RunningSandbox) -> ScimClient {
    let mut config = ClientConfig::new(server.base_url.clone());
    config.dialect = Dialect::Genesys;
    config.credentials = Credentials::OAuth(OAuthSettings {
        token_url: server.token_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(SECRET),
        scope: None,
    });
    // A paused clock would fire a request timeout while the server works.
    config.timeout = None;
    ScimClient::new(config).unwrap()
}

async fn new_group(client: &ScimClient, name: &str) -> String {
    let group = Group {
        display_name: name.into(),
        ..Group::default()
    };
    client.create(&group).await.unwrap().resource.id.unwrap()
}

// The first DELETE of a group is answered as done and changes nothing; the client reads the
// group after a moment, finds it, deletes it again and confirms it gone. When the second
// delete fails as well, the delete is reported as failed, with why.
#[tokio::test(start_paused = true)]
async fn group_delete_is_verified_and_retried_once() {
    let server = embedded(GenesysOptions::default()).await;
    let client = client(&server);
    let id = new_group(&client, "Short Lived").await;
    client.delete(Kind::Group, &id, None).await.unwrap();
    let gone = client.get::<Group>(&id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    server.shutdown().await.unwrap();

    let stubborn = embedded(GenesysOptions {
        group_delete_misses: 2,
        ..GenesysOptions::default()
    })
    .await;
    let client = self::client(&stubborn);
    let id = new_group(&client, "Stubborn").await;
    let failed = client.delete(Kind::Group, &id, None).await.unwrap_err();
    assert!(
        failed.to_string().contains("still there after two deletes"),
        "{failed}"
    );
    client.get::<Group>(&id).await.expect("still there");
    stubborn.shutdown().await.unwrap();
}

// A role created moments ago answers 404 to bulkadd (the authorization cache): the grant to a
// user this client did not create goes through once the cache catches up. A stale pair
// beside a real one: the real one is removed (bulkremove would fail as a whole).
#[tokio::test(start_paused = true)]
async fn grants_survive_cache_lag_and_stale_pairs() {
    let server = embedded(GenesysOptions::default()).await;
    let setup = client(&server);
    let user = User {
        user_name: "grace@northwind.example".into(),
        display_name: Some("Grace".into()),
        ..User::default()
    };
    let user_id = setup.create(&user).await.unwrap().resource.id.unwrap();
    // Another run's client: the user is not one it created.
    let client = client(&server);
    let role = client
        .create_role(&RoleBody {
            name: "Fresh".into(),
            description: None,
            permissions: Vec::new(),
            permission_policies: Vec::new(),
        })
        .await
        .unwrap();
    let home = client
        .list_divisions()
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.home)
        .unwrap();
    let real = GrantPair {
        role_id: role.id.clone(),
        division_id: home.id.clone(),
    };
    client
        .add_grants(&user_id, std::slice::from_ref(&real))
        .await
        .expect("granted once the cache has the role");
    let fresh = |grants: &std::collections::HashMap<String, Vec<scimctl::scim::Grant>>| {
        grants[&user_id]
            .iter()
            .filter(|g| g.role_id == role.id)
            .count()
    };
    let held = client
        .read_grants(std::slice::from_ref(&user_id))
        .await
        .unwrap();
    assert_eq!(fresh(&held), 1);

    let stale = GrantPair {
        role_id: role.id.clone(),
        division_id: "*".into(),
    };
    client
        .remove_grants(&user_id, &[stale, real])
        .await
        .expect("the stale pair does not block the real one");
    let held = client
        .read_grants(std::slice::from_ref(&user_id))
        .await
        .unwrap();
    assert_eq!(fresh(&held), 0);
    server.shutdown().await.unwrap();
}
