//! Planner tests that span its modules: fixtures the unit tests beside each planner module
//! share, [`simulate`] (a conforming SCIM server applying a plan, in memory), and the property
//! tests in [`properties`].
//!
//! The unit tests of one rule live next to the rule (`matching.rs`, `safety.rs`, `diff.rs`,
//! `render.rs`, `saved.rs`); what is here is what they and the properties have in common.

pub(crate) mod properties;

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::desired::DesiredState;
use crate::model::tenant::{
    Division, Grant, Live, LiveGroup, LiveLicenses, LiveUser, PlatformRole, Resource, Snapshot,
};

use super::{Action, Kind, Plan, PlanOptions, Ref, Resolve, edit};

/// Desired state from in-memory YAML files (`scimctl.yaml` is the configuration); panics with
/// the loader's report when it is invalid, since a fixture must be valid.
pub(crate) fn desired(files: &[(&str, &str)]) -> DesiredState {
    match crate::desired::load_texts(files) {
        Ok(loaded) => loaded.state,
        Err(crate::desired::LoadError::Invalid(report)) => {
            let mut text = Vec::new();
            report.write_text(&mut text).expect("report renders");
            panic!("fixture is invalid:\n{}", String::from_utf8_lossy(&text));
        }
        Err(e) => panic!("fixture is invalid: {e}"),
    }
}

/// Desired state from one `org.yaml` plus a `scimctl.yaml` (none when `config` is empty).
pub(crate) fn desired_with(config: &str, resources: &str) -> DesiredState {
    if config.is_empty() {
        desired(&[("org.yaml", resources)])
    } else {
        desired(&[("scimctl.yaml", config), ("org.yaml", resources)])
    }
}

/// A live user from the server's JSON.
pub(crate) fn live_user(json: &Value) -> LiveUser {
    Live::from_raw(serde_json::value::to_raw_value(json).expect("json")).expect("a user")
}

/// A live group from the server's JSON.
pub(crate) fn live_group(json: &Value) -> LiveGroup {
    Live::from_raw(serde_json::value::to_raw_value(json).expect("json")).expect("a group")
}

/// A snapshot of these users and groups (the server's JSON of each).
pub(crate) fn snapshot(users: &[Value], groups: &[Value]) -> Snapshot {
    Snapshot {
        roles: None,
        users: users.iter().map(live_user).collect(),
        groups: groups.iter().map(live_group).collect(),
        ..Snapshot::default()
    }
}

/// Plans with the given options, panicking on a planning error.
pub(crate) fn plan_ok(desired: &DesiredState, live: &Snapshot, options: &PlanOptions) -> Plan {
    super::plan(desired, live, options).expect("plans")
}

/// The change for `key` (case-insensitively), if the plan has one.
pub(super) fn change<'p>(plan: &'p Plan, kind: Kind, key: &str) -> Option<&'p super::Change> {
    plan.changes
        .iter()
        .find(|c| c.kind == kind && c.key.eq_ignore_ascii_case(key))
}

/// Ids of the objects a run creates, by kind and lower-cased name: what an applier learns
/// from each create's response and uses for later references.
#[derive(Debug, Default)]
pub(crate) struct CreatedIds(HashMap<(Kind, String), String>);

impl Resolve for CreatedIds {
    fn id_of(&self, r: &Ref) -> Option<String> {
        r.id.clone()
            .or_else(|| self.0.get(&(r.kind, r.name.to_lowercase())).cloned())
    }
}

/// One resource on the simulated server.
struct Stored {
    id: String,
    doc: Map<String, Value>,
}

/// The tenant of [`simulate`]: resources as JSON in listing order, the Platform API's side
/// of a Genesys Cloud org (role definitions, divisions, role grants of users and groups,
/// licenses), and a write counter that gives fresh ids and versions.
struct Server {
    users: Vec<Stored>,
    groups: Vec<Stored>,
    roles: Option<Vec<PlatformRole>>,
    divisions: Option<Vec<Division>>,
    /// Role grants by user id, and by group id (subject type `PC_GROUP`).
    grants: Option<HashMap<String, Vec<Grant>>>,
    group_grants: Option<HashMap<String, Vec<Grant>>>,
    licenses: Option<LiveLicenses>,
    /// Users in the `deleted` state (Genesys Cloud) not restored.
    deleted: Vec<crate::model::tenant::DeletedUser>,
    /// Ids of the roles the plan deleted: their grants went with them.
    deleted_roles: Vec<String>,
    writes: u64,
}

impl Server {
    fn load(live: &Snapshot) -> Server {
        fn stored<R: Resource>(l: &Live<R>) -> Stored {
            let doc: Map<String, Value> = serde_json::from_str(l.raw()).expect("live JSON");
            Stored {
                id: l.id().expect("live resources have ids").to_owned(),
                doc,
            }
        }
        Server {
            users: live.users.iter().map(stored).collect(),
            groups: live.groups.iter().map(stored).collect(),
            roles: live.roles.clone(),
            divisions: live.divisions.clone(),
            grants: live.grants.clone(),
            group_grants: live.group_grants.clone(),
            licenses: live.licenses.clone(),
            deleted: live.deleted_users.clone(),
            deleted_roles: Vec::new(),
            writes: 0,
        }
    }

    /// Carries out a change's role grants and licenses as the Platform API would, on the
    /// user or group `id` (created or restored objects resolved to their new ids): grants are
    /// (role, division) tuples added (`bulkadd`, which needs `rolesEnabled` on a group) and
    /// removed (`bulkremove`); licenses are definition ids given and taken
    /// (`POST /api/v2/license/organization`, which knows only the org's definitions).
    /// Revoking what is not held, or naming a role or division that does not exist, is a
    /// planner bug.
    fn platform(&mut self, c: &super::Change, id: &str) {
        for e in &c.edits {
            match e {
                super::Edit::Grants { add, remove } => self.grant(c, id, add, remove),
                super::Edit::Licenses { add, remove } => {
                    assert_eq!(c.kind, Kind::User, "licenses of a {}: {c:?}", c.kind);
                    let licenses = self
                        .licenses
                        .as_mut()
                        .unwrap_or_else(|| panic!("{}: licenses on a target without", c.key));
                    let mut held = licenses.held.remove(id).unwrap_or_default();
                    for l in add {
                        assert!(
                            licenses.defines(&l.id),
                            "{}: license {} is no definition of the org",
                            c.key,
                            l.id
                        );
                        if !held.contains(&l.id) {
                            held.push(l.id.clone());
                        }
                    }
                    for l in remove {
                        let at = held.iter().position(|h| *h == l.id);
                        held.remove(at.unwrap_or_else(|| {
                            panic!("{}: takes license {} it does not hold", c.key, l.id)
                        }));
                    }
                    held.sort();
                    if !held.is_empty() {
                        licenses.held.insert(id.to_owned(), held);
                    }
                }
                _ => {}
            }
        }
    }

    fn grant(
        &mut self,
        c: &super::Change,
        id: &str,
        add: &[super::GrantRef],
        remove: &[super::GrantRef],
    ) {
        if !add.is_empty() && c.kind == Kind::Group {
            let doc = &self
                .groups
                .iter()
                .find(|s| s.id == id)
                .unwrap_or_else(|| panic!("grants to group {id}, which is not live"))
                .doc;
            assert_eq!(
                doc.get("rolesEnabled"),
                Some(&Value::Bool(true)),
                "{}: roles granted to a group without rolesEnabled",
                c.key
            );
        }
        let roles = self.roles.as_deref().unwrap_or_default();
        let divisions = self.divisions.as_deref().unwrap_or_default();
        let resolve = |g: &super::GrantRef| -> Grant {
            let role = roles
                .iter()
                .find(|r| {
                    g.role_id
                        .as_ref()
                        .map_or_else(|| r.name.eq_ignore_ascii_case(&g.role), |id| r.id == *id)
                })
                .unwrap_or_else(|| panic!("{}: grant of role {g:?}, which is not live", c.key));
            let division = if g.division_id == crate::model::tenant::ALL_DIVISIONS {
                "All divisions".to_owned()
            } else {
                divisions
                    .iter()
                    .find(|d| d.id == g.division_id)
                    .unwrap_or_else(|| panic!("{}: grant in division {g:?}, not live", c.key))
                    .name
                    .clone()
            };
            Grant {
                role_id: role.id.clone(),
                role_name: role.name.clone(),
                division_id: g.division_id.clone(),
                division_name: division,
            }
        };
        // A revoked grant of a role the plan deleted went with the role.
        let gone = |g: &&super::GrantRef| {
            g.role_id
                .as_ref()
                .is_some_and(|id| self.deleted_roles.contains(id))
        };
        let (add, remove): (Vec<Grant>, Vec<Grant>) = (
            add.iter().map(resolve).collect(),
            remove.iter().filter(|g| !gone(g)).map(resolve).collect(),
        );
        let map = match c.kind {
            Kind::User => &mut self.grants,
            Kind::Group => &mut self.group_grants,
            Kind::Role => panic!("grants to a role: {c:?}"),
        };
        let held = map
            .get_or_insert_with(HashMap::new)
            .entry(id.to_owned())
            .or_default();
        let same = |a: &Grant, b: &Grant| a.role_id == b.role_id && a.division_id == b.division_id;
        for g in remove {
            let at = held.iter().position(|h| same(h, &g));
            held.remove(
                at.unwrap_or_else(|| panic!("{}: revokes {g:?}, which it does not hold", c.key)),
            );
        }
        for g in add {
            if !held.iter().any(|h| same(h, &g)) {
                held.push(g);
            }
        }
    }

    /// Carries out a role change as the Platform API would: POST, whole-body PUT, DELETE.
    fn role(&mut self, c: &super::Change) {
        let roles = self
            .roles
            .as_mut()
            .unwrap_or_else(|| panic!("the plan writes role {} on a target without roles", c.key));
        let body = c.edits.iter().find_map(|e| match e {
            super::Edit::Role { body, .. } => Some(body),
            _ => None,
        });
        match (c.action, body, c.id.as_deref()) {
            (Action::Create, Some(body), None) => {
                self.writes += 1;
                roles.push(PlatformRole {
                    id: format!("new-role-{}", self.writes),
                    name: body.name.clone(),
                    description: body.description.clone(),
                    permissions: body.permissions.clone(),
                    permission_policies: body.permission_policies.clone(),
                    default: false,
                    base: false,
                });
            }
            (Action::Patch, Some(body), Some(id)) => {
                let role = roles
                    .iter_mut()
                    .find(|r| r.id == id)
                    .unwrap_or_else(|| panic!("the plan writes role {id}, which is not live"));
                role.name.clone_from(&body.name);
                role.description.clone_from(&body.description);
                role.permissions.clone_from(&body.permissions);
                role.permission_policies
                    .clone_from(&body.permission_policies);
            }
            (Action::Delete, None, Some(id)) => {
                let before = roles.len();
                roles.retain(|r| r.id != id);
                assert_eq!(
                    roles.len() + 1,
                    before,
                    "the plan deletes role {id}, not live"
                );
                // Its grants, to users and groups, go with it.
                for grants in [&mut self.grants, &mut self.group_grants]
                    .into_iter()
                    .flatten()
                {
                    for held in grants.values_mut() {
                        held.retain(|g| g.role_id != id);
                    }
                }
                self.deleted_roles.push(id.to_owned());
            }
            _ => panic!("a role change the Platform API cannot take: {c:?}"),
        }
    }

    fn collection(&mut self, kind: Kind) -> &mut Vec<Stored> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
            Kind::Role => panic!("role definitions are no SCIM resources"),
        }
    }

    /// A new `meta.version` for a resource just written.
    fn stamp(&mut self, doc: &mut Map<String, Value>) {
        self.writes += 1;
        let version = Value::from(format!("W/\"sim-{}\"", self.writes));
        match doc.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.insert("version".into(), version);
            }
            None => {
                doc.insert("meta".into(), json!({ "version": version }));
            }
        }
    }

    fn find(&mut self, kind: Kind, id: &str) -> &mut Map<String, Value> {
        &mut self
            .collection(kind)
            .iter_mut()
            .find(|s| s.id == id)
            .unwrap_or_else(|| panic!("the plan writes {kind} {id}, which is not live"))
            .doc
    }

    /// Deletes a resource and, as servers do (the sandbox among them), drops it from every
    /// group's members.
    fn delete(&mut self, kind: Kind, id: &str) {
        let list = self.collection(kind);
        let before = list.len();
        list.retain(|s| s.id != id);
        assert_eq!(
            list.len() + 1,
            before,
            "the plan deletes {kind} {id}, not live"
        );
        let grants = match kind {
            Kind::User => &mut self.grants,
            _ => &mut self.group_grants,
        };
        if let Some(grants) = grants {
            grants.remove(id);
        }
        if let (Kind::User, Some(licenses)) = (kind, &mut self.licenses) {
            licenses.held.remove(id);
        }
        let mut touched = Vec::new();
        for (i, g) in self.groups.iter_mut().enumerate() {
            if let Some(Value::Array(members)) = g.doc.get_mut("members") {
                let n = members.len();
                members.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
                if members.len() != n {
                    touched.push(i);
                }
            }
        }
        for i in touched {
            let mut doc = std::mem::take(&mut self.groups[i].doc);
            self.stamp(&mut doc);
            self.groups[i].doc = doc;
        }
    }

    fn snapshot(&self) -> Snapshot {
        let raw = |s: &Stored| {
            serde_json::value::to_raw_value(&Value::Object(s.doc.clone())).expect("json")
        };
        Snapshot {
            roles: self.roles.clone(),
            users: self
                .users
                .iter()
                .map(|s| Live::from_raw(raw(s)).expect("a user"))
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|s| Live::from_raw(raw(s)).expect("a group"))
                .collect(),
            divisions: self.divisions.clone(),
            grants: self.grants.clone(),
            group_grants: self.group_grants.clone(),
            deleted_users: self.deleted.clone(),
            licenses: self.licenses.clone(),
        }
    }
}

/// A replace through a value filter that matches nothing fails with `noTarget` (RFC 7644
/// §3.5.2.3), so a plan must never send one.
fn assert_has_target(doc: &Map<String, Value>, edit: &super::Edit, key: &str) {
    let super::Edit::Replace {
        attr, key: filter, ..
    } = edit
    else {
        return;
    };
    let holder = match attr.schema().urn() {
        None => Some(doc),
        Some(urn) => doc.get(urn).and_then(Value::as_object),
    };
    let values = holder
        .and_then(|h| h.get(attr.name()))
        .and_then(Value::as_array);
    assert!(
        values.is_some_and(|v| v.iter().any(|item| filter.matches(item))),
        "{key}: replace of {}[{} eq {:?}] matches nothing (noTarget)",
        attr.name(),
        filter.sub,
        filter.equals
    );
}

/// What `live` becomes when a conforming SCIM server applies `plan`: creates first (each gets
/// a fresh id and `meta.version`; references between objects created in the same run resolve
/// to those ids), then patches and deactivations (the edits applied to the server's JSON as
/// RFC 7644 §3.5.2 says, with [`edit::apply`]; a replace whose filter matches nothing fails),
/// then deletes (which also drop the deleted object from group members, and its role grants
/// and licenses). Role definitions are written before everything else; role grants (of
/// users and groups) and licenses are carried out after each object's SCIM write, as the
/// Platform API would (see `Server::platform`). Every write bumps `meta.version`. Blocked
/// changes are not applied. Panics when the plan refers to an object
/// that is not live, or sends what a server refuses: those are planner bugs.
pub(super) fn simulate(plan: &Plan, live: &Snapshot) -> Snapshot {
    simulate_with(plan, live, &|doc, change, created| {
        for e in &change.edits {
            assert_has_target(doc, e, &change.key);
            edit::apply(doc, std::slice::from_ref(e), created).expect("every reference resolves");
        }
    })
}

/// How a simulated server applies one patch or deactivation to a resource's JSON.
pub(crate) type Patcher<'a> = dyn Fn(&mut Map<String, Value>, &super::Change, &CreatedIds) + 'a;

/// [`simulate`] with another way to apply patches, e.g. the PATCH requests the client layer
/// would send, through the sandbox's independent PATCH engine.
pub(crate) fn simulate_with(plan: &Plan, live: &Snapshot, patch: &Patcher<'_>) -> Snapshot {
    let mut server = Server::load(live);
    for c in plan
        .changes
        .iter()
        .filter(|c| c.blocked.is_none() && c.kind == Kind::Role)
    {
        server.role(c);
    }
    let applied = || {
        plan.changes
            .iter()
            .filter(|c| c.blocked.is_none() && c.kind != Kind::Role)
    };
    let mut created = CreatedIds::default();
    for c in applied().filter(|c| c.action == Action::Create) {
        server.writes += 1;
        let id = format!("new-{}-{}", c.kind, server.writes);
        let previous = created.0.insert((c.kind, c.key.to_lowercase()), id);
        assert!(previous.is_none(), "{} {} is created twice", c.kind, c.key);
    }
    // A restore brings the deleted user back under its id, as Genesys does: active, its
    // email as userName, no roles; then its create edits make it what YAML describes.
    for c in applied().filter(|c| c.action == Action::Restore) {
        let id = c.id.clone().expect("a restore names the deleted user's id");
        created.0.insert((c.kind, c.key.to_lowercase()), id);
    }
    for c in applied().filter(|c| c.action == Action::Restore) {
        let id = c.id.clone().expect("a restore names the deleted user's id");
        let at = server.deleted.iter().position(|d| d.id == id);
        let deleted = server
            .deleted
            .remove(at.expect("the plan restores a deleted user"));
        server.writes += 1;
        let mut doc = Map::new();
        doc.insert("userName".into(), Value::from(deleted.email));
        doc.insert("active".into(), Value::from(true));
        edit::apply(&mut doc, &c.edits, &created).expect("every reference resolves");
        doc.insert("id".into(), Value::from(id.clone()));
        server.stamp(&mut doc);
        server.users.push(Stored {
            id: id.clone(),
            doc,
        });
        server.platform(c, &id);
    }
    for c in applied().filter(|c| c.action == Action::Create) {
        let mut doc = Map::new();
        edit::apply(&mut doc, &c.edits, &created).expect("every reference resolves");
        let id = created.0[&(c.kind, c.key.to_lowercase())].clone();
        doc.insert("id".into(), Value::from(id.clone()));
        server.stamp(&mut doc);
        server.collection(c.kind).push(Stored {
            id: id.clone(),
            doc,
        });
        server.platform(c, &id);
    }
    for c in applied().filter(|c| matches!(c.action, Action::Patch | Action::Deactivate)) {
        let id = c.id.as_deref().expect("a patch names a live id");
        let mut doc = std::mem::take(server.find(c.kind, id));
        patch(&mut doc, c, &created);
        server.stamp(&mut doc);
        *server.find(c.kind, id) = doc;
        server.platform(c, id);
    }
    for c in applied().filter(|c| c.action == Action::Delete) {
        server.delete(c.kind, c.id.as_deref().expect("a delete names a live id"));
    }
    server.snapshot()
}

// The simulated server does what the properties rely on: creates resolve references to each
// other, patches change only what the edits say, deletes drop memberships, blocked rows stay
// unapplied, and every write gets a new version.
#[test]
fn simulate_applies_like_a_server() {
    let desired = desired_with(
        "ownership: {users: all}\nprune: {users: delete}\nsafety: {maxDeletePercent: 100}\n",
        "users:\n  - userName: boss@x.example\n  - userName: new@x.example\n    manager: boss@x.example\n    groups: [Ops]\n  - userName: kept@x.example\n    title: Lead\ngroups:\n  - displayName: Ops\n    members: [kept@x.example]\n",
    );
    let live = snapshot(
        &[
            json!({"id": "k", "userName": "kept@x.example", "title": "Agent", "nickName": "K",
                   "meta": {"version": "W/\"1\"", "created": "2024-01-01"}}),
            json!({"id": "gone", "userName": "gone@x.example"}),
        ],
        &[json!({"id": "other", "displayName": "Other",
                 "members": [{"value": "gone", "type": "User"}, {"value": "k"}]})],
    );
    let plan = plan_ok(&desired, &live, &PlanOptions::default());
    let after = simulate(&plan, &live);
    let user = |name: &str| {
        after
            .users
            .iter()
            .find(|u| u.natural_key() == name)
            .unwrap_or_else(|| panic!("{name} is live"))
            .parse()
            .expect("parses")
    };
    let (boss, new, kept) = (
        user("boss@x.example"),
        user("new@x.example"),
        user("kept@x.example"),
    );
    let boss_id = boss.id.clone().expect("created with an id");
    assert!(boss_id.starts_with("new-user-"), "{boss_id}");
    assert_eq!(
        new.enterprise.and_then(|e| e.manager).map(|m| m.value),
        Some(boss_id)
    );
    assert_eq!(kept.title.as_deref(), Some("Lead"));
    assert_eq!(
        kept.meta
            .version
            .as_deref()
            .map(|v| v.starts_with("W/\"sim-")),
        Some(true)
    );
    let kept_raw: Value = serde_json::from_str(after.users[0].raw()).expect("json");
    assert_eq!(kept_raw["nickName"], "K", "unmanaged attributes stay");
    assert_eq!(
        kept_raw["meta"],
        serde_json::json!({"version": kept.meta.version.clone()}),
        "a snapshot keeps only the version of meta"
    );
    assert!(
        after.users.iter().all(|u| u.id() != Some("gone")),
        "deleted"
    );
    let ops = after
        .groups
        .iter()
        .find(|g| g.natural_key() == "Ops")
        .expect("Ops created")
        .parse()
        .expect("parses");
    let mut members: Vec<String> = ops.members.iter().map(|m| m.value.clone()).collect();
    members.sort();
    assert_eq!(members, vec!["k".to_owned(), new.id.clone().expect("id")]);
    let other = after.groups[0].parse().expect("parses");
    assert_eq!(other.members.len(), 1, "the deleted user left Other");
    assert_eq!(other.members[0].value, "k");
    assert!(other.meta.version.is_some(), "losing a member is a write");

    // A blocked change is not applied.
    let mut blocked = plan.clone();
    for c in &mut blocked.changes {
        c.blocked = Some("held".into());
        c.held_by = Some(super::Rule::Threshold);
    }
    assert_eq!(simulate(&blocked, &live).users, live.users);
}

/// A plan with a bit of everything, made by the planner from YAML and live JSON: creates
/// (a group and a user whose manager and group are in the same plan), patches (a group
/// renamed through `previously`, a user's scalars, emails and roles), deactivations (by
/// `active: false` and by pruning), a delete, a blocked row (the actor) and warnings (a
/// protected user, an attribute the target lacks, division-scoped roles). Renderer and
/// saved-plan tests share it.
pub(super) fn mixed_plan() -> Plan {
    let desired = desired_with(
        "ownership: {users: all, groups: all}
prune: {users: deactivate, groups: delete}
safety: {maxDeletePercent: 100, maxDeleteCount: 10}
protected: {users: [root@x.example]}
",
        r#"roles:
  - name: Agent
  - name: Supervisor
users:
  - userName: ana@x.example
    displayName: Ana Lima
    title: Agent
    division: Home
    emails: [{value: ana@x.example, type: work, primary: true}]
    roles: [Agent]
    manager: bo@x.example
    groups: [Ops]
  - userName: bo@x.example
    displayName: Bo Chen
    title: Team Lead
    emails: [{value: bo@x.example, type: work}]
    roles: [Agent, {name: Supervisor, divisions: [Home]}]
  - userName: cy@x.example
    active: false
  - userName: root@x.example
    title: Root
groups:
  - displayName: Ops
    members: [bo@x.example]
  - displayName: Sales | EMEA
    description: "Sales <EMEA>"
    members: [cy@x.example]
    previously: [Sales]
"#,
    );
    let live = snapshot(
        &[
            json!({"id": "u-bo", "userName": "bo@x.example", "displayName": "Bo Chen",
                   "title": "Agent", "emails": [{"value": "bo.old@x.example", "type": "work"}],
                   "roles": [{"value": "Agent"}], "meta": {"version": "W/\"3\""}}),
            json!({"id": "u-cy", "userName": "cy@x.example", "active": true}),
            json!({"id": "u-root", "userName": "root@x.example", "title": "Admin"}),
            json!({"id": "u-dan", "userName": "dan@x.example"}),
            json!({"id": "u-bot", "userName": "bot@x.example"}),
        ],
        &[
            json!({"id": "g-sales", "displayName": "Sales", "description": "Sales",
                   "members": [{"value": "u-cy"}, {"value": "u-dan"}]}),
            json!({"id": "g-old", "displayName": "Old", "meta": {"version": "W/\"7\""}}),
        ],
    );
    let mut support: Vec<(super::ResourceSchema, &str)> = [
        "userName",
        "displayName",
        "title",
        "emails",
        "active",
        "roles",
    ]
    .into_iter()
    .map(|a| (super::ResourceSchema::User, a))
    .collect();
    support.push((super::ResourceSchema::Enterprise, "manager"));
    support.push((super::ResourceSchema::Group, "description"));
    let options = PlanOptions {
        target: super::TargetCapabilities::storing(super::AttributeSupport::only(support)),
        allow_deletes: None,
        actors: vec!["bot@x.example".into()],
        rotate_passwords: std::collections::BTreeSet::new(),
    };
    plan_ok(&desired, &live, &options)
}

/// A plan with no changes and one warning (a protected user that differs).
pub(super) fn empty_plan() -> Plan {
    let desired = desired_with(
        "protected: {users: [root@x.example]}\n",
        "users:\n  - userName: root@x.example\n    title: Root\n  - userName: ana@x.example\n",
    );
    let live = snapshot(
        &[
            json!({"id": "u-root", "userName": "root@x.example", "title": "Admin"}),
            json!({"id": "u-ana", "userName": "ana@x.example"}),
        ],
        &[],
    );
    plan_ok(&desired, &live, &PlanOptions::default())
}

/// What the client layer tells the planner about a Genesys Cloud target
/// (`scim::client::Dialect::target_capabilities`, whose test checks the two agree).
pub(crate) fn genesys_target() -> super::TargetCapabilities {
    super::TargetCapabilities {
        nested_groups: false,
        delete_active_users: false,
        username_email: true,
        divisions: true,
        group_settings: true,
        default_roles_unless_named: true,
        value_paths: super::ValuePaths::TypeFilters,
        ..super::TargetCapabilities::default()
    }
}
