//! Client scenarios that every SCIM server scimctl supports must pass: the embedded sandbox
//! and the third-party peer (python-scim's scim2-server) run exactly these.
//!
//! Names carry a per-run prefix, and checks only look at the objects a scenario made, so
//! the peer may hold other data. Each scenario fails if an expected answer never comes.

use std::collections::BTreeSet;

use scimctl::model::Kind;
use scimctl::scim::wire::{EnterpriseUser, Group, MultiValue, PatchOpKind, Reference, User};
use scimctl::scim::{PatchOperation, Resource, ScimClient, ScimRead};
use serde_json::json;

/// A user with core and enterprise attributes that both the RFC enterprise schema and the
/// peer's strict schema accept.
pub(crate) fn user(prefix: &str, n: usize) -> User {
    let name = format!("{prefix}.user{n}@northwind.example");
    User {
        user_name: name.clone(),
        display_name: Some(format!("User {n}")),
        external_id: Some(format!("{prefix}-hr-{n}")),
        active: Some(true),
        title: Some("Agent".into()),
        emails: vec![MultiValue {
            value: name,
            kind: Some("work".into()),
            primary: Some(true),
        }],
        phone_numbers: vec![MultiValue {
            value: format!("+1415555{:04}", n % 10_000),
            kind: Some("work".into()),
            primary: None,
        }],
        enterprise: Some(EnterpriseUser {
            employee_number: Some(format!("{n:05}")),
            department: Some("Support".into()),
            ..EnterpriseUser::default()
        }),
        ..User::default()
    }
    .with_schemas()
}

/// Discovery, CRUD, uniqueness, ETags, group membership PATCH, PUT, DELETE and a paged
/// snapshot, in that order.
#[allow(clippy::too_many_lines)] // one story, told in order, each step depending on the last
pub(crate) async fn run_all(client: &ScimClient, prefix: &str) {
    let caps = client.capabilities().await.expect("capabilities");
    assert!(
        caps.discovered && caps.patch && caps.etag && caps.filter,
        "{caps:?}"
    );

    // Create, read back, look up by natural key in another case.
    let ada = client.create(&user(prefix, 1)).await.expect("create user");
    assert!(!ada.recovered);
    let ada = ada.resource;
    let id = ada.id.clone().expect("server assigned an id");
    assert!(ada.meta.version.is_some(), "create returns a version");
    let read: User = client.get(&id).await.expect("get by id");
    assert_eq!(read.user_name, ada.user_name);
    assert_eq!(
        read.enterprise
            .as_ref()
            .and_then(|e| e.employee_number.as_deref()),
        Some("00001")
    );
    let found: Option<User> = client
        .find_by_key(&ada.user_name.to_uppercase())
        .await
        .expect("lookup");
    assert_eq!(found.and_then(|u| u.id), Some(id.clone()));
    let missing: Option<User> = client
        .find_by_key(&format!("{prefix}.nobody@northwind.example"))
        .await
        .expect("lookup of nobody");
    assert!(missing.is_none());

    // userName is unique case-insensitively: 409 uniqueness.
    let mut twin = user(prefix, 1);
    twin.user_name = twin.user_name.to_uppercase();
    let err = client.create(&twin).await.expect_err("duplicate userName");
    assert!(err.is_conflict(), "{err}");

    // PATCH with the current version succeeds; with a stale one it is refused (412).
    let v1 = read.meta.version.clone().expect("version");
    let ops = [PatchOperation {
        op: PatchOpKind::Replace,
        path: Some("title".into()),
        value: Some(json!("Senior Agent")),
    }];
    let patched = client
        .patch::<User>(&id, Some(&v1), &ops)
        .await
        .expect("patch with current version");
    let after: User = client.get(&id).await.expect("get after patch");
    assert_eq!(after.title.as_deref(), Some("Senior Agent"));
    let v2 = after.meta.version.clone().expect("version");
    assert_ne!(v1, v2, "a change moves the version");
    if let Some(v) = patched.version {
        assert_eq!(v, v2);
    }
    let stale = client
        .patch::<User>(&id, Some(&v1), &ops)
        .await
        .expect_err("stale version");
    assert!(stale.is_precondition_failed(), "{stale}");

    // Groups: create with a member, add a second, remove the first with a value filter.
    let bob = client
        .create(&user(prefix, 2))
        .await
        .expect("create second user")
        .resource;
    let bob_id = bob.id.clone().expect("id");
    let group = Group {
        display_name: format!("{prefix} Support"),
        members: vec![Reference {
            value: id.clone(),
            ..Reference::default()
        }],
        ..Group::default()
    }
    .with_schemas();
    let group = client.create(&group).await.expect("create group").resource;
    let gid = group.id.clone().expect("group id");
    let add = [PatchOperation {
        op: PatchOpKind::Add,
        path: Some("members".into()),
        value: Some(json!([{ "value": bob_id }])),
    }];
    client
        .patch::<Group>(&gid, None, &add)
        .await
        .expect("add member");
    let remove = [PatchOperation {
        op: PatchOpKind::Remove,
        path: Some(format!("members[value eq \"{id}\"]")),
        value: None,
    }];
    client
        .patch::<Group>(&gid, None, &remove)
        .await
        .expect("remove member");
    let group: Group = client.get(&gid).await.expect("get group");
    let members: Vec<&str> = group.members.iter().map(|m| m.value.as_str()).collect();
    assert_eq!(members, [bob_id.as_str()]);

    // PUT replaces the whole user.
    let current: User = client.get(&bob_id).await.expect("get bob");
    let mut replacement = user(prefix, 2);
    replacement.title = Some("Team Lead".into());
    let replaced = client
        .replace(&bob_id, current.meta.version.as_deref(), &replacement)
        .await
        .expect("put");
    assert_eq!(replaced.title.as_deref(), Some("Team Lead"));

    // A paged snapshot sees every object made here exactly once.
    let made: Vec<User> = futures_create(client, prefix, 3..=130).await;
    let snap = client.snapshot().await.expect("snapshot");
    let ids: BTreeSet<&str> = snap.users.iter().filter_map(Resource::id).collect();
    assert_eq!(ids.len(), snap.users.len(), "no user listed twice");
    for u in made.iter().chain([&ada, &bob]) {
        assert!(
            ids.contains(u.id.as_deref().expect("id")),
            "{} missing",
            u.user_name
        );
    }
    assert!(snap.groups.iter().any(|g| g.id() == Some(gid.as_str())));
    // Each listed resource parses on demand into what a GET returns.
    let live_ada = snap
        .users
        .iter()
        .find(|u| u.id() == ada.id.as_deref())
        .expect("ada listed");
    let parsed = live_ada.parse().expect("parses");
    let fetched = client
        .get::<User>(ada.id.as_deref().expect("id"))
        .await
        .expect("get");
    // A snapshot keeps only `meta.version` of meta (see scim::live); all else is as a GET.
    let mut expected = fetched.clone();
    expected.meta.last_modified = None;
    assert_eq!(parsed, expected);
    assert_eq!(parsed.meta.version, fetched.meta.version);
    assert_eq!(live_ada.natural_key(), fetched.user_name);

    // DELETE, then 404 for the object and for a second DELETE.
    client.delete(Kind::User, &id, None).await.expect("delete");
    let gone = client.get::<User>(&id).await.expect_err("gone");
    assert!(gone.is_not_found(), "{gone}");
    let again = client
        .delete(Kind::User, &id, None)
        .await
        .expect_err("second delete");
    assert!(again.is_not_found(), "{again}");
}

/// Creates users `range` concurrently (bounded by the client's own concurrency limit).
pub(crate) async fn futures_create(
    client: &ScimClient,
    prefix: &str,
    range: std::ops::RangeInclusive<usize>,
) -> Vec<User> {
    let mut tasks = tokio::task::JoinSet::new();
    for n in range {
        let client = client.clone();
        let u = user(prefix, n);
        tasks.spawn(async move { client.create(&u).await });
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        out.push(done.expect("task").expect("create").resource);
    }
    out
}
