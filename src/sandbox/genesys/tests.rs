//! Tests of the Genesys flavour, driving `App::handle` in process (no sockets, pausable time),
//! plus one over TCP for the state file.

use std::sync::Arc;

use crate::sandbox::Quirks;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::http::{HeaderMap, Request};
use serde_json::{Value, json};

use super::super::clock::Clock;
use super::super::http::{App, Outcome, RequestLog};
use super::super::resource::{ENTERPRISE_URN, GENESYS_URN};
use super::super::store::Store;
use super::super::{Faults, GenesysOptions, RateLimit, SandboxAuth};
use super::Genesys;

const ORIGIN: &str = "http://127.0.0.1:9";
const USERS: &str = "/api/v2/scim/v2/users";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn scim_type(&self) -> Option<&str> {
        self.body["scimType"].as_str()
    }
}

fn build(lag: Duration, faults: Faults) -> App {
    let mut store = Store::new(
        format!("{ORIGIN}/api/v2/scim/v2"),
        Clock::fixed(UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
    );
    store.set_per_resource_versions();
    store.set_unique_group_names();
    let store = Arc::new(store);
    let auth = SandboxAuth::OAuth {
        client_id: "cid".into(),
        client_secret: "csecret".into(),
        token_ttl: Duration::from_secs(3600),
    };
    let mut app = App::new(store.clone(), auth, faults, ORIGIN, &Quirks::default());
    let options = GenesysOptions {
        read_lag: lag,
        divisions: vec!["Sales".into()],
        ..GenesysOptions::default()
    };
    app.genesys = Some(Genesys::new(&store, &options, ORIGIN, "cid".into()));
    app
}

async fn send(app: &App, request: Request<Body>) -> Reply {
    let Outcome::Respond(response) = app.handle(request).await else {
        panic!("dropped");
    };
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// A token for `cid:csecret` (HTTP Basic).
async fn token(app: &App) -> String {
    let request = Request::post("/oauth/token")
        .header("authorization", "Basic Y2lkOmNzZWNyZXQ=")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("grant_type=client_credentials"))
        .expect("request");
    let reply = send(app, request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "bearer");
    assert!(reply.header("inin-correlation-id").is_none());
    reply.body["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// A request with the bearer token (when not empty) and extra headers.
async fn call_with(
    app: &App,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut builder = Request::builder().method(method).uri(uri);
    if !token.is_empty() {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = match body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    send(app, builder.body(body).expect("request")).await
}

async fn call(app: &App, token: &str, method: &str, uri: &str, body: Option<Value>) -> Reply {
    call_with(app, token, method, uri, body, &[]).await
}

async fn setup() -> (App, String) {
    let app = build(Duration::ZERO, Faults::default());
    let token = token(&app).await;
    (app, token)
}

fn user(name: &str) -> Value {
    json!({"userName": format!("{name}@example.com"), "displayName": name})
}

async fn create_user(app: &App, token: &str, body: Value) -> String {
    let reply = call(app, token, "POST", USERS, Some(body)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["id"].as_str().expect("id").to_owned()
}

async fn create_group(app: &App, token: &str, name: &str) -> Value {
    let reply = call(
        app,
        token,
        "POST",
        "/api/v2/groups",
        Some(
            json!({"name": name, "description": "secret", "type": "official",
            "visibility": "public", "rulesVisible": true}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn patch(ops: Value) -> Value {
    let mut body = json!({"schemas": [PATCH_URN]});
    body["Operations"] = ops;
    body
}

/// User "w" with `extra` attributes.
fn user_with(extra: Value) -> Value {
    let mut body = user("w");
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

fn role_names(reply: &Reply) -> Vec<String> {
    reply.body["roles"]
        .as_array()
        .map(|roles| {
            roles
                .iter()
                .filter_map(|r| r["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

// Tokens come from Basic credentials; everything else (discovery too) needs one; the inin
// headers ride on every answer but the token endpoint's.
#[tokio::test]
async fn token_and_auth() {
    let app = build(Duration::ZERO, Faults::default());
    let denied = call(&app, "", "GET", USERS, None).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.body["status"], "401");
    let platform = call(&app, "", "GET", "/api/v2/groups", None).await;
    assert_eq!(
        (platform.status, platform.body["status"].as_u64()),
        (401, Some(401))
    );
    let spc = "/api/v2/scim/v2/serviceproviderconfig";
    assert_eq!(call(&app, "", "GET", spc, None).await.status, 401);
    let token = token(&app).await;
    let reply = call(&app, &token, "GET", spc, None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["filter"],
        json!({"supported": true, "maxResults": 100})
    );
    assert_eq!(reply.body["bulk"]["supported"], false);
    assert_eq!(reply.body["sort"]["supported"], false);
    assert_eq!(reply.body["etag"]["supported"], true);
    assert_eq!(reply.body["patch"]["supported"], true);
    assert_eq!(reply.body["changePassword"]["supported"], false);
    assert_eq!(reply.body["authenticationSchemes"][0]["type"], "oauth2");
    for uri in [USERS, "/api/v2/authorization/roles", "/nowhere"] {
        let reply = call(&app, &token, "GET", uri, None).await;
        assert_eq!(reply.header("inin-ratelimit-allowed"), Some("300"), "{uri}");
        assert!(reply.header("inin-ratelimit-count").is_some(), "{uri}");
        assert_eq!(reply.header("inin-ratelimit-reset"), Some("60"), "{uri}");
        let id = reply.header("inin-correlation-id").expect("correlation id");
        assert_eq!(id.len(), 36);
    }
    let a = call(&app, &token, "GET", USERS, None).await;
    let b = call(&app, &token, "GET", USERS, None).await;
    let count = |r: &Reply| {
        r.header("inin-ratelimit-count")
            .and_then(|c| c.parse::<u32>().ok())
    };
    assert_eq!(count(&b), count(&a).map(|c| c + 1));
    assert_ne!(
        a.header("inin-correlation-id"),
        b.header("inin-correlation-id")
    );
    let schemas = call(&app, &token, "GET", "/api/v2/scim/v2/schemas", None).await;
    assert_eq!(schemas.body["totalResults"], 4);
    let group = call(
        &app,
        &token,
        "GET",
        "/api/v2/scim/v2/schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
        None,
    )
    .await;
    let names: Vec<&str> = group.body["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["id", "displayName", "externalId", "members", "meta"]
    );
    let types = call(
        &app,
        &token,
        "GET",
        "/api/v2/scim/v2/resourcetypes/User",
        None,
    )
    .await;
    assert_eq!(types.body["endpoint"], "/users");
}

// Only the lower-case Genesys paths exist; everything else is a Platform 404.
#[tokio::test]
async fn lower_case_paths_only() {
    let (app, token) = setup().await;
    for uri in [
        "/api/v2/scim/v2/Users",
        "/api/v2/scim/v2/ServiceProviderConfig",
        "/scim/v2/Users",
        "/scim/v2/users",
        "/api/v2/scim/v2/Groups?filter=displayName%20eq%20x",
    ] {
        let reply = call(&app, &token, "GET", uri, None).await;
        assert_eq!(reply.status, 404, "{uri}");
        assert_eq!(reply.body["code"], "not.found", "{uri}");
        assert_eq!(reply.body["status"], 404, "{uri}");
        assert!(reply.body["contextId"].is_string());
        assert_eq!(
            (&reply.body["details"], &reply.body["errors"]),
            (&json!([]), &json!([]))
        );
    }
    assert_eq!(call(&app, &token, "GET", USERS, None).await.status, 200);
}

// SCIM groups: the filter is required on the v2 list (not on /api/v2/scim/groups); no POST
// or DELETE; members are users only; no description; If-Match is 400 invalidVers.
#[tokio::test]
async fn scim_groups() {
    let (app, token) = setup().await;
    let group = create_group(&app, &token, "Support Team").await;
    let gid = group["id"].as_str().expect("id").to_owned();
    create_group(&app, &token, "Other").await;
    let unfiltered = call(&app, &token, "GET", "/api/v2/scim/v2/groups", None).await;
    assert_eq!(
        (unfiltered.status, unfiltered.scim_type()),
        (400, Some("invalidFilter"))
    );
    assert!(
        unfiltered.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("required"))
    );
    let v1 = call(&app, &token, "GET", "/api/v2/scim/groups", None).await;
    assert_eq!(
        (v1.status, v1.body["totalResults"].as_u64()),
        (200, Some(2))
    );
    for filter in [
        "displayName%20eq%20Other",
        "displayName%20eq%20%22support%20team%22",
        &format!("id%20eq%20{gid}"),
    ] {
        let found = call(
            &app,
            &token,
            "GET",
            &format!("/api/v2/scim/v2/groups?filter={filter}"),
            None,
        )
        .await;
        assert_eq!(found.body["totalResults"], 1, "{filter}");
    }
    let uri = format!("/api/v2/scim/v2/groups/{gid}");
    let scim = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(scim.body["displayName"], "Support Team");
    assert!(scim.body.get("description").is_none());
    assert_eq!(scim.header("etag"), Some("\"1\""));
    let v1_one = call(
        &app,
        &token,
        "GET",
        &format!("/api/v2/scim/groups/{gid}"),
        None,
    )
    .await;
    assert_eq!(v1_one.body, scim.body);
    let posted = call(
        &app,
        &token,
        "POST",
        "/api/v2/scim/v2/groups",
        Some(json!({"displayName": "X"})),
    )
    .await;
    assert_eq!(
        (posted.status, posted.body["code"].as_str()),
        (404, Some("not.found"))
    );
    let deleted = call(&app, &token, "DELETE", &uri, None).await;
    assert_eq!(
        (deleted.status, deleted.body["code"].as_str()),
        (404, Some("not.found"))
    );
}

// SCIM group members are users only; PUT/PATCH honour If-Match as 400 invalidVers.
#[tokio::test]
async fn scim_group_members() {
    let (app, token) = setup().await;
    let group = create_group(&app, &token, "Support Team").await;
    let gid = group["id"].as_str().expect("id").to_owned();
    // A create drops the description: a Platform PUT sets it (version 2).
    let described = json!({"name": "Support Team", "description": "secret", "type": "official",
        "visibility": "public", "rulesVisible": true, "version": 1});
    let put = call(
        &app,
        &token,
        "PUT",
        &format!("/api/v2/groups/{gid}"),
        Some(described),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let other = create_group(&app, &token, "Other").await;
    let uri = format!("/api/v2/scim/v2/groups/{gid}");
    let uid = create_user(&app, &token, user("ann")).await;
    let add = patch(json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]));
    let added = call(&app, &token, "PATCH", &uri, Some(add)).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["members"][0]["type"], "User");
    assert_eq!(added.body["members"][0]["value"], uid.as_str());
    assert_eq!(added.header("etag"), Some("\"3\""));
    let member_of = call(&app, &token, "GET", &format!("{USERS}/{uid}"), None).await;
    assert_eq!(member_of.body["groups"][0]["value"], gid.as_str());
    let nested =
        patch(json!([{"op": "add", "path": "members", "value": [{"value": other["id"]}]}]));
    let refused = call(&app, &token, "PATCH", &uri, Some(nested)).await;
    assert_eq!(
        (refused.status, refused.scim_type()),
        (400, Some("invalidValue"))
    );
    let stale = call_with(
        &app,
        &token,
        "PUT",
        &uri,
        Some(json!({"displayName": "Support Team"})),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(
        (stale.status, stale.scim_type()),
        (400, Some("invalidVers"))
    );
    assert_eq!(stale.body["status"], "400");
    let described = call(
        &app,
        &token,
        "PUT",
        &uri,
        Some(json!({"displayName": "S", "description": "d"})),
    )
    .await;
    assert_eq!(described.status, 400);
    let removed = call(
        &app,
        &token,
        "PATCH",
        &uri,
        Some(patch(
            json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
        )),
    )
    .await;
    assert_eq!(removed.status, 200);
    assert!(removed.body.get("members").is_none());
    let platform = call(&app, &token, "GET", &format!("/api/v2/groups/{gid}"), None).await;
    assert_eq!(platform.body["description"], "secret");
    assert_eq!(platform.body["version"], 4);
}

// Default lists show active users only; `active eq false` the others, also combined.
#[tokio::test]
async fn two_pass_user_listing() {
    let (app, token) = setup().await;
    create_user(&app, &token, user("a")).await;
    create_user(&app, &token, user("b")).await;
    let c = create_user(&app, &token, user("c")).await;
    let off = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    let reply = call(&app, &token, "PATCH", &format!("{USERS}/{c}"), Some(off)).await;
    assert_eq!((reply.status, &reply.body["active"]), (200, &json!(false)));
    let listed = |filter: &str| format!("{USERS}?filter={filter}");
    let all = call(&app, &token, "GET", USERS, None).await;
    assert_eq!(all.body["totalResults"], 2);
    assert_eq!(all.body["itemsPerPage"], 2);
    let inactive = call(&app, &token, "GET", &listed("active%20eq%20false"), None).await;
    assert_eq!(inactive.body["Resources"][0]["id"], c.as_str());
    for filter in [
        "userName%20eq%20%22c%40example.com%22%20and%20active%20eq%20false",
        "userName%20eq%20c%40example.com%20and%20active%20eq%20false",
    ] {
        let both = call(&app, &token, "GET", &listed(filter), None).await;
        assert_eq!(both.body["totalResults"], 1, "{filter}");
    }
    let hidden = call(
        &app,
        &token,
        "GET",
        &listed("userName%20eq%20c%40example.com"),
        None,
    )
    .await;
    assert_eq!(hidden.body["totalResults"], 0);
    let paged = call(
        &app,
        &token,
        "GET",
        &format!("{USERS}?startIndex=2&count=1"),
        None,
    )
    .await;
    assert_eq!(
        (
            paged.body["startIndex"].as_u64(),
            paged.body["itemsPerPage"].as_u64()
        ),
        (Some(2), Some(1))
    );
}

// The 25 rule: a page over 25 with the expensive attributes is a Platform 429.
#[tokio::test]
async fn pages_over_25_need_cheap_attributes() {
    let (app, token) = setup().await;
    for i in 0..30 {
        create_user(&app, &token, user(&format!("u{i:02}"))).await;
    }
    let full = call(&app, &token, "GET", &format!("{USERS}?count=26"), None).await;
    assert_eq!((full.status, full.header("retry-after")), (429, Some("1")));
    assert_eq!(full.body["code"], "too.many.requests.retry.after");
    assert_eq!(full.body["status"], 429);
    let partly = call(
        &app,
        &token,
        "GET",
        &format!("{USERS}?count=26&excludedAttributes=externalId,roles"),
        None,
    )
    .await;
    assert_eq!(partly.status, 429);
    let cheap = format!(
        "{USERS}?count=100&excludedAttributes=externalId,roles,{GENESYS_URN}:routingSkills,{GENESYS_URN}:routingLanguages"
    );
    let reply = call(&app, &token, "GET", &cheap, None).await;
    assert_eq!(
        (reply.status, reply.body["itemsPerPage"].as_u64()),
        (200, Some(30))
    );
    assert!(reply.body["Resources"][0].get("roles").is_none());
    let picked = call(
        &app,
        &token,
        "GET",
        &format!("{USERS}?count=500&attributes=userName"),
        None,
    )
    .await;
    assert_eq!(
        (picked.status, picked.body["itemsPerPage"].as_u64()),
        (200, Some(30))
    );
    assert!(picked.body["Resources"][0]["meta"].is_object());
    let default = call(&app, &token, "GET", USERS, None).await;
    assert_eq!(default.body["itemsPerPage"], 25);
    let groups = call(&app, &token, "GET", "/api/v2/scim/groups?count=30", None).await;
    assert_eq!(groups.status, 429);
    let groups = call(
        &app,
        &token,
        "GET",
        "/api/v2/scim/groups?count=30&excludedAttributes=members,externalId",
        None,
    )
    .await;
    assert_eq!(groups.status, 200);
}

// Integer versions, the quoted ETag, no meta.created, If-Match mismatch as 400 invalidVers,
// and only the quoted form of the current version matches.
#[tokio::test]
async fn versions_and_if_match() {
    let (app, token) = setup().await;
    let created = call(&app, &token, "POST", USERS, Some(user("v"))).await;
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(created.body["meta"]["version"], "1");
    assert!(created.body["meta"].get("created").is_none());
    let id = created.body["id"].as_str().expect("id");
    let uri = format!("{USERS}/{id}");
    assert_eq!(
        created.header("location"),
        Some(format!("{ORIGIN}{uri}").as_str())
    );
    assert_eq!(created.body["meta"]["location"], format!("{ORIGIN}{uri}"));
    let title = patch(json!([{"op": "replace", "path": "title", "value": "Lead"}]));
    for method in ["PUT", "PATCH", "DELETE"] {
        let body = match method {
            "PUT" => Some(user("v")),
            "PATCH" => Some(title.clone()),
            _ => None,
        };
        let stale = call_with(&app, &token, method, &uri, body, &[("if-match", "\"7\"")]).await;
        assert_eq!(
            (stale.status, stale.scim_type()),
            (400, Some("invalidVers")),
            "{method}"
        );
        assert_eq!(stale.body["status"], "400");
        assert_eq!(
            stale.body["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
    }
    // The current version, but not in the documented quoted form: refused all the same.
    for form in ["1", "W/\"1\"", "*", "\"1\", \"2\""] {
        let bare = call_with(
            &app,
            &token,
            "PATCH",
            &uri,
            Some(title.clone()),
            &[("if-match", form)],
        )
        .await;
        assert_eq!(
            (bare.status, bare.scim_type()),
            (400, Some("invalidVers")),
            "{form}"
        );
    }
    let ok = call_with(
        &app,
        &token,
        "PATCH",
        &uri,
        Some(title),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!((ok.status, ok.header("etag")), (200, Some("\"2\"")));
    assert_eq!(ok.body["meta"]["version"], "2");
    let not_modified = call_with(
        &app,
        &token,
        "GET",
        &uri,
        None,
        &[("if-none-match", "\"2\"")],
    )
    .await;
    assert_eq!(not_modified.status, 304);
    let gone = call_with(&app, &token, "DELETE", &uri, None, &[("if-match", "\"2\"")]).await;
    assert_eq!(gone.status, 204);
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 404);
    let subject = call(
        &app,
        &token,
        "GET",
        &format!("/api/v2/authorization/subjects/{id}"),
        None,
    )
    .await;
    assert_eq!(subject.status, 404);
}

// What Genesys does not support is refused, naming the attribute; read-only parts too.
#[tokio::test]
async fn attribute_rules() {
    let (app, token) = setup().await;
    for (extra, attr) in [
        (json!({"name": {"givenName": "W"}}), "name"),
        (json!({"nickName": "w"}), "nickName"),
        (json!({"locale": "en"}), "locale"),
        (json!({"addresses": []}), "addresses"),
        (json!({ENTERPRISE_URN: {"costCenter": "1"}}), "costCenter"),
        (
            json!({ENTERPRISE_URN: {"organization": "o"}}),
            "organization",
        ),
        (json!({ENTERPRISE_URN: {"division": "Nowhere"}}), "Nowhere"),
        (
            json!({"roles": [{"value": "no such role"}]}),
            "no such role",
        ),
    ] {
        let reply = call(&app, &token, "POST", USERS, Some(user_with(extra))).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidValue")),
            "{attr}"
        );
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(attr)),
            "{}",
            reply.body
        );
    }
    let other = json!({"emails": [{"type": "other", "value": "someone@else"}]});
    let reply = call(&app, &token, "POST", USERS, Some(user_with(other))).await;
    assert_eq!((reply.status, reply.scim_type()), (400, Some("mutability")));
    let groups = json!({"groups": [{"value": "g"}]});
    let reply = call(&app, &token, "POST", USERS, Some(user_with(groups))).await;
    assert_eq!((reply.status, reply.scim_type()), (400, Some("mutability")));
    let skills: Vec<Value> = (0..51)
        .map(|i| json!({"name": format!("s{i}"), "proficiency": 1}))
        .collect();
    let reply = call(
        &app,
        &token,
        "POST",
        USERS,
        Some(user_with(json!({GENESYS_URN: {"routingSkills": skills}}))),
    )
    .await;
    assert_eq!(
        (reply.status, reply.scim_type()),
        (400, Some("invalidValue"))
    );
    let reply = call(
        &app,
        &token,
        "POST",
        USERS,
        Some(user_with(
            json!({GENESYS_URN: {"routingSkills": [{"name": "x", "proficiency": 6}]}}),
        )),
    )
    .await;
    assert_eq!(reply.status, 400);
}

// Supported attributes are kept in Genesys's shapes; the other email follows userName.
#[tokio::test]
async fn supported_attributes() {
    let (app, token) = setup().await;
    let full = user_with(json!({
        "password": "never-returned",
        "emails": [{"type": "other", "value": "W@example.com", "primary": true},
                   {"type": "work", "value": "w@work.example.com"}],
        "phoneNumbers": [{"type": "mobile", "value": "+13175550199"}],
        ENTERPRISE_URN: {"division": "sales", "dateHire": "2024-03-01T09:00:00Z",
                         "manager": {"value": "m-1"}},
        GENESYS_URN: {"routingSkills": [{"name": "Billing", "proficiency": 4.0}]}
    }));
    let created = call(&app, &token, "POST", USERS, Some(full)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let body = &created.body;
    assert!(body.get("password").is_none());
    assert_eq!(
        body["emails"][0],
        json!({"type": "other", "value": "w@example.com", "primary": true})
    );
    assert_eq!(body["emails"][1]["type"], "work");
    assert_eq!(body[ENTERPRISE_URN]["division"], "Sales");
    assert_eq!(body[ENTERPRISE_URN]["dateHire"], "2024-03-01");
    assert_eq!(body["active"], true);
    let uri = format!("{USERS}/{}", body["id"].as_str().expect("id"));
    let touch_other = patch(
        json!([{"op": "replace", "path": "emails[type eq \"other\"].value", "value": "x@y"}]),
    );
    let reply = call(&app, &token, "PATCH", &uri, Some(touch_other)).await;
    assert_eq!((reply.status, reply.scim_type()), (400, Some("mutability")));
    let rename = patch(json!([{"op": "replace", "path": "userName", "value": "w2@example.com"}]));
    let reply = call(&app, &token, "PATCH", &uri, Some(rename)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["emails"][0]["value"], "w2@example.com");
    let reply = call(
        &app,
        &token,
        "PATCH",
        &uri,
        Some(patch(
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
        )),
    )
    .await;
    assert_eq!((reply.status, reply.scim_type()), (400, Some("mutability")));
    let home = call(&app, &token, "POST", USERS, Some(user("h"))).await;
    assert_eq!(home.body[ENTERPRISE_URN]["division"], "Home");
}

// Roles over SCIM are names backed by Home-division grants, shared with the subjects API.
#[tokio::test]
async fn roles_and_grants() {
    let (app, token) = setup().await;
    let id = create_user(&app, &token, user("r")).await;
    let uri = format!("{USERS}/{id}");
    let subject_uri = format!("/api/v2/authorization/subjects/{id}");
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(role_names(&got), ["employee"]);
    let subject = call(&app, &token, "GET", &subject_uri, None).await;
    assert_eq!(subject.body["grants"][0]["role"]["name"], "employee");
    assert_eq!(subject.body["grants"][0]["division"]["name"], "Home");
    assert_eq!(subject.body["grants"][0]["subjectId"], id.as_str());
    let add = patch(json!([{"op": "add", "path": "roles", "value": [{"value": "MASTER ADMIN"}]}]));
    let added = call(&app, &token, "PATCH", &uri, Some(add)).await;
    assert_eq!(role_names(&added), ["employee", "Master Admin"]);
    assert_eq!(added.header("etag"), Some("\"2\""));
    let remove = patch(json!([{"op": "remove", "path": "roles[value eq \"employee\"]"}]));
    let removed = call(&app, &token, "PATCH", &uri, Some(remove)).await;
    assert_eq!(role_names(&removed), ["Master Admin"]);
    let unknown = patch(json!([{"op": "add", "path": "roles", "value": [{"value": "Nope"}]}]));
    let refused = call(&app, &token, "PATCH", &uri, Some(unknown)).await;
    assert_eq!(
        (refused.status, refused.scim_type()),
        (400, Some("invalidValue"))
    );
    let given = create_user(
        &app,
        &token,
        json!({"userName": "g@x", "displayName": "G", "roles": [{"value": "master admin"}]}),
    )
    .await;
    let got = call(&app, &token, "GET", &format!("{USERS}/{given}"), None).await;
    assert_eq!(role_names(&got), ["Master Admin"]);
}

// Grants through the subjects API show up as SCIM roles, in any division.
#[tokio::test]
async fn subject_grants() {
    let (app, token) = setup().await;
    let body = json!({"userName": "r@x", "displayName": "R", "roles": [{"value": "Master Admin"}]});
    let id = create_user(&app, &token, body).await;
    let uri = format!("{USERS}/{id}");
    let subject_uri = format!("/api/v2/authorization/subjects/{id}");
    let roles = call(
        &app,
        &token,
        "GET",
        "/api/v2/authorization/roles?pageSize=100&userCount=false",
        None,
    )
    .await;
    let role_id = |name: &str| {
        roles.body["entities"]
            .as_array()
            .and_then(|e| e.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_str())
            .expect("role")
            .to_owned()
    };
    let divisions = call(&app, &token, "GET", "/api/v2/authorization/divisions", None).await;
    assert_eq!(divisions.body["total"], 2);
    let sales = divisions.body["entities"][1]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(divisions.body["entities"][1]["homeDivision"], false);
    let home = call(
        &app,
        &token,
        "GET",
        "/api/v2/authorization/divisions/home",
        None,
    )
    .await;
    assert_eq!(
        (
            home.body["name"].as_str(),
            home.body["homeDivision"].as_bool()
        ),
        (Some("Home"), Some(true))
    );
    let grants = json!({"grants": [{"roleId": role_id("scimctl"), "divisionId": sales},
                                   {"roleId": role_id("employee"), "divisionId": "*"}]});
    let bulk = call(
        &app,
        &token,
        "POST",
        &format!("{subject_uri}/bulkadd"),
        Some(grants.clone()),
    )
    .await;
    assert_eq!(bulk.status, 204);
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(role_names(&got), ["Master Admin", "scimctl", "employee"]);
    let subject = call(&app, &token, "GET", &subject_uri, None).await;
    assert_eq!(
        subject.body["grants"][2]["division"],
        json!({"id": "*", "name": "All divisions"})
    );
    let bad = json!({"grants": [{"roleId": "nope", "divisionId": sales}]});
    assert_eq!(
        call(
            &app,
            &token,
            "POST",
            &format!("{subject_uri}/bulkadd"),
            Some(bad)
        )
        .await
        .status,
        400
    );
    let bad = json!({"grants": [{"roleId": role_id("employee"), "divisionId": "nope"}]});
    assert_eq!(
        call(
            &app,
            &token,
            "POST",
            &format!("{subject_uri}/bulkremove"),
            Some(bad)
        )
        .await
        .status,
        400
    );
    let bulk = call(
        &app,
        &token,
        "POST",
        &format!("{subject_uri}/bulkremove"),
        Some(grants),
    )
    .await;
    assert_eq!(bulk.status, 204);
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(role_names(&got), ["Master Admin"]);
}

// Platform groups: create, uniqueness, version conflicts, members in chunks of 50, delete.
#[tokio::test]
async fn platform_groups() {
    let (app, token) = setup().await;
    let group = create_group(&app, &token, "Ops").await;
    assert_eq!(
        (
            group["state"].as_str(),
            group["version"].as_u64(),
            group["memberCount"].as_u64()
        ),
        (Some("active"), Some(1), Some(0))
    );
    let gid = group["id"].as_str().expect("id").to_owned();
    let dup = call(
        &app,
        &token,
        "POST",
        "/api/v2/groups",
        Some(json!({"name": "OPS", "type": "official", "visibility": "public", "rulesVisible": true})),
    )
    .await;
    assert_eq!(
        (dup.status, dup.body["code"].as_str()),
        (409, Some("general.conflict"))
    );
    let untyped = call(
        &app,
        &token,
        "POST",
        "/api/v2/groups",
        Some(json!({"name": "T"})),
    )
    .await;
    assert_eq!(untyped.status, 400);
    let uri = format!("/api/v2/groups/{gid}");
    let body = |version: u64| json!({"name": "Ops 2", "description": "new", "type": "official", "visibility": "members", "version": version});
    let stale = call(&app, &token, "PUT", &uri, Some(body(7))).await;
    assert_eq!(stale.status, 409);
    assert!(
        stale.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("does not match the current version"))
    );
    let updated = call(&app, &token, "PUT", &uri, Some(body(1))).await;
    assert_eq!(
        (updated.status, updated.body["version"].as_u64()),
        (200, Some(2))
    );
    assert_eq!(
        (
            updated.body["name"].as_str(),
            updated.body["visibility"].as_str()
        ),
        (Some("Ops 2"), Some("members"))
    );
}

// Platform group members: version checks, chunks of at most 50, delete.
#[tokio::test]
async fn platform_group_members() {
    let (app, token) = setup().await;
    let group = create_group(&app, &token, "Ops").await;
    let gid = group["id"].as_str().expect("id").to_owned();
    let uri = format!("/api/v2/groups/{gid}");
    let put = json!({"name": "Ops", "type": "official", "visibility": "public", "version": 1});
    assert_eq!(call(&app, &token, "PUT", &uri, Some(put)).await.status, 200);
    let a = create_user(&app, &token, user("a")).await;
    let b = create_user(&app, &token, user("b")).await;
    let members = format!("{uri}/members");
    let many: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    let too_many = call(
        &app,
        &token,
        "POST",
        &members,
        Some(json!({"memberIds": many, "version": 2})),
    )
    .await;
    assert_eq!(too_many.status, 400);
    let stale = call(
        &app,
        &token,
        "POST",
        &members,
        Some(json!({"memberIds": [a], "version": 1})),
    )
    .await;
    assert_eq!(stale.status, 409);
    let added = call(
        &app,
        &token,
        "POST",
        &members,
        Some(json!({"memberIds": [a, b], "version": 2})),
    )
    .await;
    assert_eq!(added.status, 202);
    let individuals = call(&app, &token, "GET", &format!("{uri}/individuals"), None).await;
    assert_eq!(individuals.body["total"], 2);
    assert_eq!(individuals.body["entities"][0]["email"], "a@example.com");
    let scim = call(
        &app,
        &token,
        "GET",
        &format!("/api/v2/scim/v2/groups/{gid}"),
        None,
    )
    .await;
    assert_eq!(scim.body["members"].as_array().map(Vec::len), Some(2));
    let ids = many.join(",");
    assert_eq!(
        call(
            &app,
            &token,
            "DELETE",
            &format!("{members}?ids={ids}"),
            None
        )
        .await
        .status,
        400
    );
    let removed = call(&app, &token, "DELETE", &format!("{members}?ids={a}"), None).await;
    assert_eq!(removed.status, 202);
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(
        (
            got.body["memberCount"].as_u64(),
            got.body["version"].as_u64()
        ),
        (Some(1), Some(4))
    );
    let list = call(
        &app,
        &token,
        "GET",
        "/api/v2/groups?pageSize=1&pageNumber=1",
        None,
    )
    .await;
    assert_eq!(
        (list.body["pageCount"].as_u64(), list.body["total"].as_u64()),
        (Some(1), Some(1))
    );
    // The first DELETE is answered as done and fails "asynchronously": the group stays.
    assert_eq!(call(&app, &token, "DELETE", &uri, None).await.status, 204);
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 200);
    assert_eq!(call(&app, &token, "DELETE", &uri, None).await.status, 204);
    assert_eq!(
        call(
            &app,
            &token,
            "GET",
            &format!("/api/v2/scim/v2/groups/{gid}"),
            None
        )
        .await
        .status,
        404
    );
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 404);
}

// Roles CRUD and the OAuth client's role.
#[tokio::test]
async fn roles_crud() {
    let (app, token) = setup().await;
    let list = call(&app, &token, "GET", "/api/v2/authorization/roles", None).await;
    let names: Vec<&str> = list.body["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["employee", "Master Admin", "scimctl"]);
    assert_eq!(
        list.body["entities"][1]["permissionPolicies"][0]["actionSet"],
        json!(["*"])
    );
    assert_eq!(list.body["entities"][0]["default"], true);
    let role = json!({"name": "Supervisor", "description": "d", "permissions": [],
        "permissionPolicies": [{"domain": "directory", "entityName": "user", "actionSet": ["view"]}]});
    let created = call(
        &app,
        &token,
        "POST",
        "/api/v2/authorization/roles",
        Some(role),
    )
    .await;
    assert_eq!(created.status, 200);
    let rid = created.body["id"].as_str().expect("id").to_owned();
    let dup = call(
        &app,
        &token,
        "POST",
        "/api/v2/authorization/roles",
        Some(json!({"name": "supervisor"})),
    )
    .await;
    assert_eq!(
        (dup.status, dup.body["code"].as_str()),
        (409, Some("general.conflict"))
    );
    let uri = format!("/api/v2/authorization/roles/{rid}");
    let put = call(
        &app,
        &token,
        "PUT",
        &uri,
        Some(json!({"name": "Lead", "permissionPolicies": []})),
    )
    .await;
    assert_eq!((put.status, put.body["name"].as_str()), (200, Some("Lead")));
    let uid = create_user(
        &app,
        &token,
        json!({"userName": "l@x", "displayName": "L", "roles": [{"value": "lead"}]}),
    )
    .await;
    let got = call(&app, &token, "GET", &format!("{USERS}/{uid}"), None).await;
    assert_eq!(role_names(&got), ["Lead"]);
    assert_eq!(call(&app, &token, "DELETE", &uri, None).await.status, 204);
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 404);
    let got = call(&app, &token, "GET", &format!("{USERS}/{uid}"), None).await;
    assert!(got.body.get("roles").is_none());
}

// Reading the OAuth client needs `oauth:client:view`, which the client's seeded role lacks
// (403, the pessimistic reading); `/api/v2/tokens/me` needs no permission and tells the same
// role grants. Once the role holds the permission, the client reads as before.
#[tokio::test]
async fn oauth_client_needs_its_permission_and_tokens_me_does_not() {
    let (app, token) = setup().await;
    let list = call(&app, &token, "GET", "/api/v2/authorization/roles", None).await;
    let scimctl = list.body["entities"][2].clone();
    assert_eq!(scimctl["name"], "scimctl");
    let refused = call(&app, &token, "GET", "/api/v2/oauth/clients/cid", None).await;
    assert_eq!(refused.status, 403, "{:?}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("oauth:client:view")),
        "{:?}",
        refused.body
    );
    let me = call(&app, &token, "GET", "/api/v2/tokens/me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["OAuthClient"]["id"], "cid");
    assert_eq!(
        me.body["OAuthClient"]["roleDivisions"][0]["divisionId"],
        "*"
    );
    assert_eq!(
        me.body["OAuthClient"]["roleDivisions"][0]["roleId"],
        scimctl["id"]
    );
    assert_eq!(me.body["authorizedScope"], json!([]));

    let mut policies = scimctl["permissionPolicies"]
        .as_array()
        .expect("policies")
        .clone();
    policies.push(json!({"domain": "oauth", "entityName": "client", "actionSet": ["view"]}));
    let uri = format!(
        "/api/v2/authorization/roles/{}",
        scimctl["id"].as_str().expect("id")
    );
    let put = call(
        &app,
        &token,
        "PUT",
        &uri,
        Some(json!({"name": "scimctl", "permissionPolicies": policies})),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let client = call(&app, &token, "GET", "/api/v2/oauth/clients/cid", None).await;
    assert_eq!(client.status, 200, "{:?}", client.body);
    assert_eq!(client.body["authorizedGrantType"], "CLIENT-CREDENTIALS");
    assert_eq!(client.body["roleDivisions"][0]["divisionId"], "*");
    assert_eq!(client.body["roleDivisions"][0]["roleId"], scimctl["id"]);
    assert_eq!(
        call(&app, &token, "GET", "/api/v2/oauth/clients/other", None)
            .await
            .status,
        404
    );
}

// A new user is invisible to reads and writes for the lag; the POST itself answers it.
#[tokio::test(start_paused = true)]
async fn read_after_write_lag() {
    let app = build(Duration::from_millis(1500), Faults::default());
    let token = token(&app).await;
    let id = create_user(&app, &token, user("late")).await;
    let uri = format!("{USERS}/{id}");
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 404);
    assert_eq!(
        call(&app, &token, "GET", USERS, None).await.body["totalResults"],
        0
    );
    let title = patch(json!([{"op": "replace", "path": "title", "value": "x"}]));
    assert_eq!(
        call(&app, &token, "PATCH", &uri, Some(title)).await.status,
        404
    );
    let group = create_group(&app, &token, "Late").await;
    let guri = format!("/api/v2/groups/{}", group["id"].as_str().expect("id"));
    assert_eq!(call(&app, &token, "GET", &guri, None).await.status, 404);
    tokio::time::advance(Duration::from_millis(1500)).await;
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 200);
    assert_eq!(
        call(&app, &token, "GET", USERS, None).await.body["totalResults"],
        1
    );
    assert_eq!(call(&app, &token, "GET", &guri, None).await.status, 200);
}

// The rate-limit fault answers with the Platform 429 and drives the inin headers.
#[tokio::test(start_paused = true)]
async fn rate_limit_fault() {
    let faults = Faults {
        rate_limit: Some(RateLimit {
            requests: 1,
            window: Duration::from_secs(10),
        }),
        ..Faults::default()
    };
    let app = build(Duration::ZERO, faults);
    let token = token(&app).await;
    let first = call(&app, &token, "GET", USERS, None).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("inin-ratelimit-allowed"), Some("1"));
    let limited = call(&app, &token, "GET", USERS, None).await;
    assert_eq!(
        (limited.status, limited.header("retry-after")),
        (429, Some("10"))
    );
    assert_eq!(
        limited.body["message"],
        "Rate limit exceeded the maximum. Retry the request in [10] seconds"
    );
    assert_eq!(limited.body["code"], "too.many.requests.retry.after");
    assert_eq!(limited.header("inin-ratelimit-count"), Some("2"));
}

// One JSON line per request, the query string apart from the path (the request-log checks
// read `subjectType` there), a credential in it never written.
#[tokio::test]
async fn request_log_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("requests.jsonl");
    let mut app = build(Duration::ZERO, Faults::default());
    app.request_log = Some(RequestLog::open(&path).expect("opens"));
    let token = token(&app).await;
    call(&app, &token, "GET", &format!("{USERS}?count=5"), None).await;
    call(&app, &token, "GET", "/scim/v2/Users", None).await;
    call(
        &app,
        &token,
        "GET",
        &format!("{USERS}?access_token=hunter2&count=1"),
        None,
    )
    .await;
    let text = std::fs::read_to_string(&path).expect("log");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"method": "POST", "path": "/oauth/token", "status": 200}),
            json!({"method": "GET", "path": USERS, "query": "count=5", "status": 200}),
            json!({"method": "GET", "path": "/scim/v2/Users", "status": 404}),
            json!({"method": "GET", "path": USERS, "query": "access_token=(redacted)&count=1",
                   "status": 200}),
        ]
    );
}

// Over TCP: the flavour refuses to start without OAuth; roles, grants, divisions, group
// descriptions and versions survive a restart through the state file.
#[tokio::test]
#[allow(clippy::too_many_lines)] // one sandbox's life and the next one's, in order
async fn state_file_keeps_genesys_data() {
    use super::super::{Flavor, SandboxConfig, SandboxError, start};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.json");
    let flavor = Flavor::Genesys(GenesysOptions::default());
    let plain = SandboxConfig::default().with_flavor(flavor.clone());
    let loopback: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    assert!(matches!(
        start(plain, loopback).await,
        Err(SandboxError::Config(_))
    ));
    let config = || {
        SandboxConfig::default()
            .with_state_path(&path)
            .with_flavor(flavor.clone())
            .with_auth(SandboxAuth::OAuth {
                client_id: "cid".into(),
                client_secret: "csecret".into(),
                token_ttl: Duration::from_secs(60),
            })
    };
    let client = reqwest::Client::new();
    let first = start(config(), loopback).await.expect("starts");
    assert!(first.base_url.ends_with("/api/v2/scim/v2"));
    let origin = first
        .base_url
        .trim_end_matches("/api/v2/scim/v2")
        .to_owned();
    let token = |origin: String| {
        let client = client.clone();
        async move {
            let reply: Value = client
                .post(format!("{origin}/oauth/token"))
                .basic_auth("cid", Some("csecret"))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            reply["access_token"].as_str().expect("token").to_owned()
        }
    };
    let bearer = token(origin.clone()).await;
    let post = |url: String, body: Value| client.post(url).bearer_auth(&bearer).json(&body).send();
    post(
        format!("{origin}/api/v2/authorization/roles"),
        json!({"name": "Kept"}),
    )
    .await
    .expect("sent");
    let group: Value = post(
        format!("{origin}/api/v2/groups"),
        json!({"name": "G", "type": "social", "visibility": "owners", "rulesVisible": true}),
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    // A create drops the description: a Platform PUT sets it (version 2).
    client
        .put(format!(
            "{origin}/api/v2/groups/{}",
            group["id"].as_str().expect("id")
        ))
        .bearer_auth(&bearer)
        .json(
            &json!({"name": "G", "description": "about G", "type": "social",
            "visibility": "owners", "rulesVisible": true, "rolesEnabled": true, "version": 1}),
        )
        .send()
        .await
        .expect("sent");
    let created: Value = post(
        first.base_url.clone() + "/users",
        json!({"userName": "p@x", "displayName": "P", "roles": [{"value": "kept"}]}),
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    first.shutdown().await.expect("stops");

    let second = start(config(), loopback).await.expect("restarts");
    let origin = second
        .base_url
        .trim_end_matches("/api/v2/scim/v2")
        .to_owned();
    let bearer = token(origin.clone()).await;
    let get = |url: String| async {
        client
            .get(url)
            .bearer_auth(&bearer)
            .send()
            .await
            .expect("sent")
            .json::<Value>()
            .await
            .expect("json")
    };
    let groups = get(format!("{origin}/api/v2/groups")).await;
    assert_eq!(groups["entities"][0]["description"], "about G");
    assert_eq!(groups["entities"][0]["type"], "social");
    assert_eq!(groups["entities"][0]["rolesEnabled"], true);
    assert_eq!(groups["entities"][0]["version"], 2);
    let user = get(format!("{}/users/{id}", second.base_url)).await;
    assert_eq!(user["roles"], json!([{"value": "Kept"}]));
    assert_eq!(user["meta"]["version"], "1");
    let roles = get(format!("{origin}/api/v2/authorization/roles")).await;
    assert_eq!(roles["total"], 4);
    second.shutdown().await.expect("stops");
}

// GroupCreate needs name, type, visibility and rulesVisible, and drops the description;
// GET returns the flags, owners and addresses; a PUT resets every field it omits and cannot
// change the type.
#[tokio::test]
async fn platform_group_fields_and_pessimistic_put() {
    let (app, token) = setup().await;
    let owner = create_user(&app, &token, user("owner")).await;
    for missing in ["name", "type", "visibility", "rulesVisible"] {
        let mut body = json!({"name": "Ops", "type": "official", "visibility": "public",
            "rulesVisible": true});
        body.as_object_mut().map(|b| b.remove(missing));
        let refused = call(&app, &token, "POST", "/api/v2/groups", Some(body)).await;
        assert_eq!(refused.status, 400, "without {missing}: {}", refused.body);
    }
    let created = call(
        &app,
        &token,
        "POST",
        "/api/v2/groups",
        Some(
            json!({"name": "Ops", "description": "dropped", "type": "official",
            "visibility": "public", "rulesVisible": true, "rolesEnabled": true,
            "ownerIds": [owner], "addresses": [{"address": "3001", "mediaType": "PHONE",
            "type": "GROUPRING"}]}),
        ),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(
        created.body.get("description").is_none(),
        "{}",
        created.body
    );
    let uri = format!(
        "/api/v2/groups/{}",
        created.body["id"].as_str().expect("id")
    );
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(
        (
            got.body["rulesVisible"].as_bool(),
            got.body["rolesEnabled"].as_bool(),
            got.body["callsEnabled"].as_bool(),
            got.body["includeOwners"].as_bool(),
        ),
        (Some(true), Some(true), Some(false), Some(false))
    );
    assert_eq!(got.body["owners"][0]["id"], owner.as_str());
    assert_eq!(got.body["addresses"][0]["address"], "3001");
    let bad_owner = json!({"name": "Ops", "version": 1, "ownerIds": ["nobody"]});
    assert_eq!(
        call(&app, &token, "PUT", &uri, Some(bad_owner))
            .await
            .status,
        400
    );
    // A description-only PUT: everything else goes back to its default.
    let careless = json!({"name": "Ops", "description": "d", "version": 1});
    let put = call(&app, &token, "PUT", &uri, Some(careless)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["description"], "d");
    assert_eq!(
        (
            put.body["rulesVisible"].as_bool(),
            put.body["rolesEnabled"].as_bool(),
            put.body["owners"].as_array().map(Vec::len),
            put.body["addresses"].as_array().map(Vec::len),
        ),
        (Some(false), Some(false), Some(0), Some(0))
    );
    let cleared = json!({"name": "Ops", "version": 2});
    let put = call(&app, &token, "PUT", &uri, Some(cleared)).await;
    assert!(put.body.get("description").is_none(), "{}", put.body);
    // GroupUpdate has no type: one sent is ignored, the group keeps its create's.
    let retype = json!({"name": "Ops", "type": "social", "version": 3});
    let put = call(&app, &token, "PUT", &uri, Some(retype)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["type"], "official", "{}", put.body);
}

// A new role answers 404 to bulkadd until the authorization cache has seen it (tokio time);
// bulkremove fails whole on a pair not held; one pair is removed with DELETE, 404 when not
// held.
#[tokio::test(start_paused = true)]
async fn grants_cache_lag_and_single_removal() {
    let (app, token) = setup().await;
    let uid = create_user(&app, &token, user("g")).await;
    let role = call(
        &app,
        &token,
        "POST",
        "/api/v2/authorization/roles",
        Some(json!({"name": "Fresh"})),
    )
    .await;
    let rid = role.body["id"].as_str().expect("id").to_owned();
    let home = call(
        &app,
        &token,
        "GET",
        "/api/v2/authorization/divisions/home",
        None,
    )
    .await;
    let hid = home.body["id"].as_str().expect("id").to_owned();
    let subject = format!("/api/v2/authorization/subjects/{uid}");
    let pair = json!({"grants": [{"roleId": rid, "divisionId": hid}]});
    let early = call(
        &app,
        &token,
        "POST",
        &format!("{subject}/bulkadd"),
        Some(pair.clone()),
    )
    .await;
    assert_eq!(early.status, 404, "{}", early.body);
    tokio::time::advance(GenesysOptions::default().auth_cache_lag).await;
    let later = call(
        &app,
        &token,
        "POST",
        &format!("{subject}/bulkadd"),
        Some(pair.clone()),
    )
    .await;
    assert_eq!(later.status, 204, "{}", later.body);
    // The user does not hold Fresh in all divisions: a stale pair beside a real one.
    let stale_and_real = json!({"grants": [{"roleId": rid, "divisionId": "*"},
                                           {"roleId": rid, "divisionId": hid}]});
    let whole = call(
        &app,
        &token,
        "POST",
        &format!("{subject}/bulkremove"),
        Some(stale_and_real),
    )
    .await;
    assert_eq!(whole.status, 404, "{}", whole.body);
    let fresh_grants = |reply: &Reply| {
        reply.body["grants"]
            .as_array()
            .map(|g| g.iter().filter(|g| g["role"]["id"] == rid.as_str()).count())
    };
    let held = call(&app, &token, "GET", &subject, None).await;
    assert_eq!(fresh_grants(&held), Some(1), "nothing removed");
    let one = format!("{subject}/divisions/{hid}/roles/{rid}");
    assert_eq!(call(&app, &token, "DELETE", &one, None).await.status, 204);
    assert_eq!(call(&app, &token, "DELETE", &one, None).await.status, 404);
    let held = call(&app, &token, "GET", &subject, None).await;
    assert_eq!(fresh_grants(&held), Some(0));
}

/// Sends `ops` as a PATCH onto `uri` and returns the answer.
async fn patch_at(app: &App, token: &str, uri: &str, ops: Value) -> Reply {
    call(app, token, "PATCH", uri, Some(patch(ops))).await
}

// Only the PATCH path forms Genesys documents (docs/genesys.md §6) get through: a whole
// email or phone number replaced through its filter, a filter on another sub-attribute or on
// an extension attribute, a role replaced through a filter, a sub-attribute without a filter
// and a core-URN prefix are all 400 `invalidPath`, and leave the user as it was.
#[tokio::test]
async fn patch_paths_are_the_documented_forms() {
    let (app, token) = setup().await;
    let body = user_with(json!({
        "emails": [{"type": "work", "value": "w@work.example"}],
        "phoneNumbers": [{"type": "mobile", "value": "+15550100"}],
        GENESYS_URN: {"routingSkills": [{"name": "Sales", "proficiency": 2}]}
    }));
    let id = create_user(&app, &token, body).await;
    let uri = format!("{USERS}/{id}");
    let skills = format!("{GENESYS_URN}:routingSkills");
    for op in [
        json!({"op": "replace", "path": "emails[type eq \"work\"]",
               "value": {"type": "work", "value": "x@work.example"}}),
        json!({"op": "replace", "path": "phoneNumbers[type eq \"mobile\"]",
               "value": {"type": "mobile", "value": "+15550199"}}),
        json!({"op": "add", "path": "phoneNumbers[type eq \"mobile\"]",
               "value": {"type": "mobile", "value": "+15550199"}}),
        json!({"op": "replace", "path": "emails[value eq \"w@work.example\"].value",
               "value": "x@work.example"}),
        json!({"op": "remove", "path": "phoneNumbers[value eq \"+15550100\"]"}),
        json!({"op": "remove", "path": "emails[type eq \"work\"].value"}),
        json!({"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].display",
               "value": "mine"}),
        json!({"op": "replace", "path": "emails[type ne \"work\"].value", "value": "x@y.example"}),
        json!({"op": "replace", "path": format!("{skills}[name eq \"Sales\"]"),
               "value": {"name": "Sales", "proficiency": 4}}),
        json!({"op": "remove", "path": format!("{skills}[name eq \"Sales\"]")}),
        json!({"op": "replace", "path": "roles[value eq \"employee\"]",
               "value": {"value": "employee"}}),
        json!({"op": "replace", "path": "emails.value", "value": "x@work.example"}),
        json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:title",
               "value": "Lead"}),
    ] {
        let reply = patch_at(&app, &token, &uri, json!([op])).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidPath")),
            "{op}: {}",
            reply.body
        );
    }
    let unchanged = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(unchanged.body["meta"]["version"], "1", "{}", unchanged.body);

    // The documented forms.
    let reply = patch_at(
        &app,
        &token,
        &uri,
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "x@work.example"},
            {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+15550199"},
            {"op": "replace", "path": "phoneNumbers[type eq \"mobile\"].primary", "value": true},
            {"op": "replace", "path": "title", "value": "Lead"},
            {"op": "replace", "path": format!("{ENTERPRISE_URN}:department"), "value": "Ops"},
            {"op": "replace", "path": skills, "value": [{"name": "Sales", "proficiency": 4}]}
        ]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let work: Vec<&Value> = reply.body["emails"]
        .as_array()
        .expect("emails")
        .iter()
        .filter(|e| e["type"] == "work")
        .collect();
    assert_eq!(work, [&json!({"type": "work", "value": "x@work.example"})]);
    assert_eq!(
        reply.body["phoneNumbers"],
        json!([{"type": "mobile", "value": "+15550199", "primary": true}])
    );
    assert_eq!(
        reply.body[GENESYS_URN]["routingSkills"][0]["proficiency"],
        4
    );
    let removed = patch_at(
        &app,
        &token,
        &uri,
        json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"}]),
    )
    .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(
        removed.body.get("phoneNumbers").is_none(),
        "{}",
        removed.body
    );
}

// Group members are removed by id through `members[value eq "id"]` (what Okta and Entra
// send); another filter, or a replace through it, is 400 `invalidPath`.
#[tokio::test]
async fn group_member_paths_are_the_documented_form() {
    let (app, token) = setup().await;
    let group = create_group(&app, &token, "Paths").await;
    let uri = format!(
        "/api/v2/scim/v2/groups/{}",
        group["id"].as_str().expect("id")
    );
    let uid = create_user(&app, &token, user("ann")).await;
    let add = json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]);
    assert_eq!(patch_at(&app, &token, &uri, add).await.status, 200);
    for op in [
        json!({"op": "remove", "path": "members[display eq \"ann\"]"}),
        json!({"op": "replace", "path": format!("members[value eq \"{uid}\"]"),
               "value": {"value": uid}}),
        json!({"op": "remove", "path": format!("members[value eq \"{uid}\"].value")}),
    ] {
        let reply = patch_at(&app, &token, &uri, json!([op])).await;
        assert_eq!(
            (reply.status, reply.scim_type()),
            (400, Some("invalidPath")),
            "{op}: {}",
            reply.body
        );
    }
    let remove = json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]);
    let removed = patch_at(&app, &token, &uri, remove).await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert!(removed.body.get("members").is_none(), "{}", removed.body);
}

// Email types other than work and other, and phone types outside Genesys's list, are 400
// `invalidValue` on create, PUT and PATCH alike.
#[tokio::test]
async fn email_and_phone_types_outside_the_lists_are_refused() {
    let (app, token) = setup().await;
    let id = create_user(&app, &token, user("t")).await;
    let uri = format!("{USERS}/{id}");
    for extra in [
        json!({"emails": [{"type": "home", "value": "t@home.example"}]}),
        json!({"phoneNumbers": [{"type": "fax", "value": "+15550100"}]}),
        json!({"phoneNumbers": [{"type": "pager", "value": "+15550100"}]}),
    ] {
        let mut created = user_with(extra.clone());
        created["userName"] = json!("t2@example.com");
        let mut replaced = user_with(extra.clone());
        replaced["userName"] = json!("t@example.com");
        let (attr, values) = extra
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("one attribute");
        let add = patch(json!([{"op": "add", "path": attr, "value": values}]));
        for (method, at, body) in [
            ("POST", USERS, created),
            ("PUT", uri.as_str(), replaced),
            ("PATCH", uri.as_str(), add),
        ] {
            let reply = call(&app, &token, method, at, Some(body)).await;
            assert_eq!(
                (reply.status, reply.scim_type()),
                (400, Some("invalidValue")),
                "{method} {extra}: {}",
                reply.body
            );
        }
    }
}

// A deleted user leaves SCIM, loses its grants and keeps its email: a create of that
// userName is refused (409) until the user, found by the Platform user search, is restored
// at its version; it comes back under its id, active, in the Home division, with no role.
#[tokio::test]
async fn deleted_users_block_creates_until_restored() {
    let (app, token) = setup().await;
    let body = json!({"userName": "Del@x.example", "displayName": "Del", "title": "Agent",
        "roles": [{"value": "Master Admin"}], ENTERPRISE_URN: {"division": "Sales"}});
    let id = create_user(&app, &token, body).await;
    let uri = format!("{USERS}/{id}");
    assert_eq!(call(&app, &token, "DELETE", &uri, None).await.status, 204);
    assert_eq!(call(&app, &token, "GET", &uri, None).await.status, 404);
    let again = call(
        &app,
        &token,
        "POST",
        USERS,
        Some(user_with(json!({"userName": "del@x.example"}))),
    )
    .await;
    assert_eq!(
        (again.status, again.scim_type()),
        (409, Some("uniqueness")),
        "{}",
        again.body
    );
    assert!(
        again.body.to_string().contains("general.conflict"),
        "{}",
        again.body
    );

    let search = |state: &str| {
        json!({"pageSize": 25, "pageNumber": 1, "query": [
            {"type": "EXACT", "fields": ["email"], "values": ["DEL@x.example", "other@x"]},
            {"type": "EXACT", "fields": ["state"], "values": [state]}]})
    };
    let found = call(
        &app,
        &token,
        "POST",
        "/api/v2/users/search",
        Some(search("deleted")),
    )
    .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["total"], 1, "{}", found.body);
    let hit = &found.body["results"][0];
    assert_eq!(
        (hit["id"].as_str(), hit["state"].as_str()),
        (Some(id.as_str()), Some("deleted"))
    );
    let version = hit["version"].as_u64().expect("a version");
    let active = call(
        &app,
        &token,
        "POST",
        "/api/v2/users/search",
        Some(search("active")),
    )
    .await;
    assert_eq!(active.body["total"], 0, "{}", active.body);
    let fuzzy = json!({"query": [{"type": "QUERY_STRING", "fields": ["email"], "value": "del"}]});
    let refused = call(&app, &token, "POST", "/api/v2/users/search", Some(fuzzy)).await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    let restore = |v: u64| json!({"state": "active", "version": v});
    let platform = format!("/api/v2/users/{id}");
    let stale = call(&app, &token, "PATCH", &platform, Some(restore(version + 1))).await;
    assert_eq!(
        (stale.status, stale.body["code"].as_str()),
        (409, Some("general.conflict"))
    );
    let restored = call(&app, &token, "PATCH", &platform, Some(restore(version))).await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(restored.body["state"], "active");
    let got = call(&app, &token, "GET", &uri, None).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(
        (got.body["title"].as_str(), got.body["active"].as_bool()),
        (Some("Agent"), Some(true))
    );
    assert!(
        role_names(&got).is_empty(),
        "no role, not even employee: {}",
        got.body
    );
    assert_eq!(got.body[ENTERPRISE_URN]["division"], "Home");
    let twice = call(&app, &token, "PATCH", &platform, Some(restore(version))).await;
    assert_eq!(twice.status, 400, "{}", twice.body);
    let gone = call(
        &app,
        &token,
        "POST",
        "/api/v2/users/search",
        Some(search("deleted")),
    )
    .await;
    assert_eq!(gone.body["total"], 0, "{}", gone.body);
}

// Licenses (issue 18, item 1): definitions by id, a batch whose entries succeed or fail on
// their own under a 200, a users' page that lists only holders, and licenses that go with a
// deleted user.
#[tokio::test]
async fn licenses_are_assigned_in_batches_and_read_back() {
    let (app, token) = setup().await;
    let definitions = call(&app, &token, "GET", "/api/v2/license/definitions", None).await;
    assert_eq!(definitions.status, 200, "{}", definitions.body);
    let ids: Vec<&str> = definitions
        .body
        .as_array()
        .expect("a plain list")
        .iter()
        .filter_map(|d| d["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"cloudCX2") && ids.contains(&"cloudCX3"),
        "{ids:?}"
    );

    let ann = create_user(&app, &token, user("ann")).await;
    let bob = create_user(&app, &token, user("bob")).await;
    let _cy = create_user(&app, &token, user("cy")).await;
    let batch = json!({"assignments": [
        {"licenseId": "cloudCX2", "userIdsAdd": [ann, bob, "no-such-user"]},
        {"licenseId": "cloudCX3", "userIdsAdd": [ann]}
    ]});
    let reply = call(
        &app,
        &token,
        "POST",
        "/api/v2/license/organization",
        Some(batch),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let results: Vec<(&str, &str)> = reply
        .body
        .as_array()
        .expect("LicenseUpdateStatus list")
        .iter()
        .map(|s| {
            (
                s["userId"].as_str().unwrap_or(""),
                s["result"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        results,
        [
            (ann.as_str(), "Success"),
            (bob.as_str(), "Success"),
            ("no-such-user", "UserNotFound"),
            (ann.as_str(), "Success")
        ]
    );

    // Only holders are listed; pages follow pageSize.
    let page = call(
        &app,
        &token,
        "GET",
        "/api/v2/license/users?pageSize=1",
        None,
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        (page.body["total"].as_u64(), page.body["pageCount"].as_u64()),
        (Some(2), Some(2))
    );
    let all = call(
        &app,
        &token,
        "GET",
        "/api/v2/license/users?pageSize=100",
        None,
    )
    .await;
    let mut held: Vec<(String, Value)> = all.body["entities"]
        .as_array()
        .expect("entities")
        .iter()
        .map(|e| {
            (
                e["id"].as_str().unwrap_or("").to_owned(),
                e["licenses"].clone(),
            )
        })
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (ann.clone(), json!(["cloudCX2", "cloudCX3"])),
        (bob.clone(), json!(["cloudCX2"])),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(held, expected);
    let refused = call(
        &app,
        &token,
        "GET",
        "/api/v2/license/users?pageSize=101",
        None,
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    licenses_are_refused_whole_and_go_with_deleted_users(&app, &token, &ann, &bob).await;
}

/// Part of [`licenses_are_assigned_in_batches_and_read_back`]: `bob` holds `cloudCX2` only.
async fn redundant_changes_are_answered_as_failures(app: &App, token: &str, bob: &str) {
    // Giving a license held, or taking one not held, is answered as a failure and changes
    // nothing (the reading that breaks a client believing the answer to a resent batch).
    let again = json!({"assignments": [
        {"licenseId": "cloudCX2", "userIdsAdd": [bob]},
        {"licenseId": "cloudCX3", "userIdsRemove": [bob]}
    ]});
    let reply = call(
        app,
        token,
        "POST",
        "/api/v2/license/organization",
        Some(again),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!([
            {"userId": bob, "licenseId": "cloudCX2", "result": "AlreadyAssigned"},
            {"userId": bob, "licenseId": "cloudCX3", "result": "NotAssigned"}
        ])
    );
    let one = call(
        app,
        token,
        "GET",
        &format!("/api/v2/license/users/{bob}"),
        None,
    )
    .await;
    assert_eq!(one.body["licenses"], json!(["cloudCX2"]), "{}", one.body);
}

/// The rest of [`licenses_are_assigned_in_batches_and_read_back`]: `ann` holds `cloudCX2` and
/// `cloudCX3`, `bob` `cloudCX2`.
async fn licenses_are_refused_whole_and_go_with_deleted_users(
    app: &App,
    token: &str,
    ann: &str,
    bob: &str,
) {
    redundant_changes_are_answered_as_failures(app, token, bob).await;
    // An unknown license refuses the whole batch: nothing changes.
    let bad = json!({"assignments": [
        {"licenseId": "cloudCX2", "userIdsRemove": [ann]},
        {"licenseId": "platinum", "userIdsAdd": [bob]}
    ]});
    let reply = call(
        app,
        token,
        "POST",
        "/api/v2/license/organization",
        Some(bad),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let one = call(
        app,
        token,
        "GET",
        &format!("/api/v2/license/users/{ann}"),
        None,
    )
    .await;
    assert_eq!(one.body["licenses"], json!(["cloudCX2", "cloudCX3"]));

    // Removal, then a deleted user takes its licenses along.
    let remove = json!({"assignments": [{"licenseId": "cloudCX2", "userIdsRemove": [ann]}]});
    let reply = call(
        app,
        token,
        "POST",
        "/api/v2/license/organization",
        Some(remove),
    )
    .await;
    assert_eq!(reply.body[0]["result"], "Success");
    let one = call(
        app,
        token,
        "GET",
        &format!("/api/v2/license/users/{ann}"),
        None,
    )
    .await;
    assert_eq!(one.body["licenses"], json!(["cloudCX3"]));
    let deleted = call(app, token, "DELETE", &format!("{USERS}/{bob}"), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let all = call(app, token, "GET", "/api/v2/license/users", None).await;
    assert_eq!(all.body["total"], 1, "{}", all.body);
    let gone = call(
        app,
        token,
        "GET",
        &format!("/api/v2/license/users/{bob}"),
        None,
    )
    .await;
    assert_eq!(gone.status, 404, "{}", gone.body);
}
