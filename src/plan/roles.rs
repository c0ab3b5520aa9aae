//! Role definitions, on targets that manage them (Genesys Cloud, where `Snapshot::roles` is
//! `Some`): matching desired roles to live ones by name, the create or whole-body replace
//! each needs, and the deletes ownership asks for.
//!
//! A desired role is managed when it writes `permissions` or `description`; a role listed
//! by name only (to be granted to users) is left as it is. Genesys Cloud has no role
//! inheritance, so the permissions compared and written are the role's own and everything
//! it inherits, flattened into policies ([`crate::model::permission::policies_of`]). Live
//! roles are compared as permission strings after the server's own expansion of wildcards
//! ([`crate::model::permission::compare`]), so a wildcard Genesys expanded is no change.
//! Live permissions YAML does not cover (Genesys backfills new ones into existing roles)
//! are kept unless `collections.rolePermissions` is `authoritative`. Conditional policies
//! (resource conditions, named resources), which YAML cannot write, are left out of the
//! comparison and written back as they are on every replace.

use std::collections::HashSet;

use serde_json::Value;

use crate::desired::DesiredState;
use crate::model::CollectionMode;
use crate::model::Role;
use crate::model::permission::{self, Policy, RoleIndex};
use crate::model::tenant::{PermissionPolicy, PlatformRole, RoleBody};

use super::{Action, AttrDiff, Change, Edit, Kind, Plan, Source};

/// Whether desired state manages this role's definition (and so creates it when the target
/// lacks it).
pub(super) fn managed(role: &Role) -> bool {
    role.permissions.is_some() || role.description.is_some()
}

/// Per desired role, the index of the live role of the same name (case-insensitively). A
/// managed role whose name several live roles share is a problem; a role listed by name only
/// is matched to nothing then, as nothing about it is written.
pub(crate) fn match_roles(
    desired: &DesiredState,
    live: &[PlatformRole],
    problems: &mut Vec<String>,
) -> Vec<Option<usize>> {
    desired
        .roles
        .iter()
        .map(|role| {
            let name = role.name.to_lowercase();
            let hits: Vec<usize> = (0..live.len())
                .filter(|&i| live[i].name.to_lowercase() == name)
                .collect();
            match hits.as_slice() {
                [] => None,
                [one] => Some(*one),
                many if managed(role) => {
                    let all: Vec<String> = many
                        .iter()
                        .map(|&i| format!("live role {:?} (id {})", live[i].name, live[i].id))
                        .collect();
                    problems.push(format!(
                        "role {:?} matches {}",
                        role.name.as_str(),
                        all.join(" and ")
                    ));
                    None
                }
                _ => None,
            }
        })
        .collect()
}

/// The wire form of pure policies.
#[must_use]
pub fn wire_policies(policies: &[Policy]) -> Vec<PermissionPolicy> {
    policies
        .iter()
        .map(|p| PermissionPolicy::new(&p.domain, &p.entity, p.actions.clone()))
        .collect()
}

/// Whether a live policy carries resource conditions or named resources (or allows
/// conditions): YAML cannot write one, so it is kept as it is and not compared.
#[must_use]
pub fn conditional(policy: &PermissionPolicy) -> bool {
    let rest = &policy.rest;
    rest.get("resourceConditionNode")
        .is_some_and(|n| !n.is_null())
        || rest
            .get("namedResources")
            .and_then(Value::as_array)
            .is_some_and(|n| !n.is_empty())
        || rest.get("allowConditions").and_then(Value::as_bool) == Some(true)
}

/// The permission strings the unconditional live policies grant: what desired state is
/// compared with.
#[must_use]
pub fn plain_permissions(policies: &[PermissionPolicy]) -> Vec<String> {
    let plain: Vec<PermissionPolicy> = policies
        .iter()
        .filter(|p| !conditional(p))
        .cloned()
        .collect();
    live_permissions(&plain)
}

/// The permission strings live policies grant (conditions and named resources aside).
#[must_use]
pub fn live_permissions(policies: &[PermissionPolicy]) -> Vec<String> {
    let pure: Vec<Policy> = policies
        .iter()
        .map(|p| Policy {
            domain: p.domain.clone(),
            entity: p.entity_name.clone(),
            actions: p.action_set.clone(),
        })
        .collect();
    permission::permissions_of(&pure)
}

/// What desired state says about one role: its name, description and (flattened)
/// permissions, each `None` when not written.
struct Wanted<'a> {
    name: &'a str,
    description: Option<&'a str>,
    permissions: Option<Vec<String>>,
}

impl<'a> Wanted<'a> {
    fn of(index: &RoleIndex<'_>, role: &'a Role) -> Wanted<'a> {
        Wanted {
            name: role.name.as_str(),
            description: role.description.as_ref().map(|d| d.value.as_str()),
            permissions: role
                .permissions
                .as_ref()
                .map(|_| permission::flattened_permissions(index, role.name.as_str()))
                .map(Option::unwrap_or_default),
        }
    }

    /// The policies to write: the desired permissions and the live ones `kept`.
    fn policies(&self, kept: &[String]) -> Option<Vec<PermissionPolicy>> {
        self.permissions.as_ref().map(|p| {
            wire_policies(&permission::policies_of(
                p.iter().chain(kept).map(String::as_str),
            ))
        })
    }
}

/// What the planner compares a live role against besides desired state.
struct Against<'a> {
    /// Every concrete permission any live role grants unconditionally or a desired role
    /// names.
    known: &'a [String],
    /// `collections.rolePermissions`.
    mode: CollectionMode,
}

/// Adds the role changes of a plan: creates, whole-body updates and owned deletes. Does
/// nothing when the target has no role definitions.
pub(super) fn plan_roles(
    desired: &DesiredState,
    live: Option<&[PlatformRole]>,
    matched: &[Option<usize>],
    plan: &mut Plan,
) {
    let Some(live) = live else { return };
    let index = RoleIndex::new(desired.roles.iter().map(|r| &r.value));
    // The catalogue as far as scimctl can see it: what live roles grant, and the concrete
    // permissions desired roles name (the server would refuse them if they did not exist).
    // Leaving the desired ones out made a wildcard look granted by a role holding every
    // *live* permission it matches, until this plan created a role with another one: the
    // next plan then found the wildcard missing (a plan that did not converge).
    let mut known: Vec<String> = live
        .iter()
        .flat_map(|l| plain_permissions(&l.permission_policies))
        .chain(
            desired
                .roles
                .iter()
                .filter_map(|r| permission::flattened_permissions(&index, r.name.as_str()))
                .flatten(),
        )
        .collect();
    known.sort();
    known.dedup();
    let against = Against {
        known: &known,
        mode: desired.config.collections.role_permissions,
    };
    for (i, role) in desired.roles.iter().enumerate() {
        if !managed(role) {
            continue;
        }
        let wanted = Wanted::of(&index, role);
        let source = Source::at(&desired.sources, role.span);
        let change = match matched.get(i).copied().flatten() {
            None => Some(create(&wanted, source)),
            Some(l) => update(&wanted, &live[l], &against, source),
        };
        match change {
            Some(c) => plan.changes.push(c),
            None => plan.unchanged += 1,
        }
    }
    let named: HashSet<String> = desired
        .roles
        .iter()
        .map(|r| r.name.to_lowercase())
        .collect();
    let mode = &desired.config.ownership.roles.value;
    for l in live {
        if l.default
            || named.contains(&l.name.to_lowercase())
            || !super::diff::owned(mode, &l.name, None)
        {
            continue;
        }
        plan.changes.push(Change {
            action: Action::Delete,
            kind: Kind::Role,
            key: l.name.as_str().into(),
            id: Some(l.id.clone()),
            version: None,
            source: Source::Absent,
            diff: Vec::new(),
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        });
    }
}

fn create(wanted: &Wanted<'_>, source: Source) -> Change {
    let mut diff = vec![AttrDiff {
        attribute: "name".into(),
        after: Some(Value::from(wanted.name)),
        ..AttrDiff::default()
    }];
    if let Some(d) = wanted.description {
        diff.push(AttrDiff {
            attribute: "description".into(),
            after: Some(Value::from(d)),
            ..AttrDiff::default()
        });
    }
    if let Some(p) = wanted.permissions.as_ref().filter(|p| !p.is_empty()) {
        diff.push(AttrDiff {
            attribute: "permissions".into(),
            added: p.clone(),
            ..AttrDiff::default()
        });
    }
    let body = RoleBody {
        name: wanted.name.to_owned(),
        description: wanted.description.map(str::to_owned),
        permissions: Vec::new(),
        permission_policies: wanted.policies(&[]).unwrap_or_default(),
    };
    Change {
        action: Action::Create,
        kind: Kind::Role,
        key: wanted.name.into(),
        id: None,
        version: None,
        source,
        diff,
        edits: vec![Edit::Role {
            body: Box::new(body),
            permissions: wanted.permissions.is_some(),
        }],
        present: Vec::new(),
        blocked: None,
        held_by: None,
        derived: false,
    }
}

/// The attribute-level differences between a live role and what desired state writes, and
/// the live permissions to keep although YAML does not cover them.
fn differences(
    wanted: &Wanted<'_>,
    live: &PlatformRole,
    against: &Against<'_>,
) -> (Vec<AttrDiff>, Vec<String>) {
    let mut kept = Vec::new();
    let mut diff = Vec::new();
    if live.name != wanted.name {
        diff.push(AttrDiff {
            attribute: "name".into(),
            before: Some(Value::from(live.name.as_str())),
            after: Some(Value::from(wanted.name)),
            ..AttrDiff::default()
        });
    }
    if let Some(d) = wanted.description
        && live.description.as_deref().unwrap_or_default() != d
    {
        diff.push(AttrDiff {
            attribute: "description".into(),
            before: live.description.clone().map(Value::from),
            after: Some(Value::from(d)),
            ..AttrDiff::default()
        });
    }
    if let Some(want) = &wanted.permissions {
        let have = plain_permissions(&live.permission_policies);
        let compared = permission::compare(want, &have, against.known);
        let removed = if against.mode == CollectionMode::Authoritative {
            compared.extra
        } else {
            kept = compared.extra;
            Vec::new()
        };
        if !compared.missing.is_empty() || !removed.is_empty() {
            diff.push(AttrDiff {
                attribute: "permissions".into(),
                added: compared.missing,
                removed,
                ..AttrDiff::default()
            });
        }
    }
    (diff, kept)
}

/// The whole-body replace that brings `live` in line with `wanted`: the desired name, the
/// desired description if written else the live one, the flattened policies if written else
/// the live ones, and the live general permissions. Written policies are followed by the
/// live conditional ones ([`conditional`]), which YAML cannot write: dropping them from a
/// replace would leave the unconditional grant alone, widening access.
#[must_use]
pub(crate) fn merged_body(
    name: &str,
    description: Option<&str>,
    policies: Option<Vec<PermissionPolicy>>,
    live: &PlatformRole,
) -> RoleBody {
    let permission_policies = match policies {
        Some(mut written) => {
            written.extend(
                live.permission_policies
                    .iter()
                    .filter(|p| conditional(p))
                    .cloned(),
            );
            written
        }
        None => live.permission_policies.clone(),
    };
    RoleBody {
        name: name.to_owned(),
        description: description
            .map(str::to_owned)
            .or_else(|| live.description.clone()),
        permissions: live.permissions.clone(),
        permission_policies,
    }
}

fn update(
    wanted: &Wanted<'_>,
    live: &PlatformRole,
    against: &Against<'_>,
    source: Source,
) -> Option<Change> {
    let (diff, kept) = differences(wanted, live, against);
    if diff.is_empty() {
        return None;
    }
    let body = merged_body(
        wanted.name,
        wanted.description,
        wanted.policies(&kept),
        live,
    );
    Some(Change {
        action: Action::Patch,
        kind: Kind::Role,
        key: wanted.name.into(),
        id: Some(live.id.clone()),
        version: None,
        source,
        diff,
        edits: vec![Edit::Role {
            body: Box::new(body),
            permissions: wanted.permissions.is_some(),
        }],
        present: Vec::new(),
        blocked: None,
        held_by: None,
        derived: false,
    })
}

/// Whether `live` already is what a role edit's `body` asks for (compared as the planner
/// compares: name exactly, description when the body has one, and, when `permissions` is
/// written, every written permission granted after the server's expansion; live extras are
/// left to the next plan). Used by the applier when it adopts a role that already exists.
#[must_use]
pub fn role_matches(body: &RoleBody, permissions: bool, live: &PlatformRole) -> bool {
    live.name == body.name
        && body
            .description
            .as_ref()
            .is_none_or(|d| live.description.as_deref().unwrap_or_default() == d.as_str())
        && (!permissions || {
            let have = plain_permissions(&live.permission_policies);
            let want = live_permissions(&body.permission_policies);
            permission::compare(&want, &have, &have).missing.is_empty()
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::tenant::{PlatformRole, Snapshot};
    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Kind, Plan, PlanError, PlanOptions};

    const ROLES: &str = r#"roles:
  - name: Agent
    description: Takes calls
    permissions: ["routing:queue:join", "directory:user:view"]
  - name: Lead
    permissions: ["routing:queue:*"]
    inherits: [Agent]
  - name: Admin
  - name: Viewer
    description: Reads
"#;

    fn live(roles: &serde_json::Value) -> Snapshot {
        let mut s = snapshot(&[], &[]);
        s.roles = Some(serde_json::from_value::<Vec<PlatformRole>>(roles.clone()).expect("roles"));
        s
    }

    fn tenant() -> Snapshot {
        live(&json!([
            {"id": "r-agent", "name": "agent", "description": "Takes calls",
             "permissionPolicies": [
                 {"domain": "directory", "entityName": "user", "actionSet": ["view"]},
                 {"domain": "routing", "entityName": "queue", "actionSet": ["join"]}]},
            {"id": "r-lead", "name": "Lead", "description": "Leads", "permissions": ["x"],
             "permissionPolicies": [
                 {"domain": "routing", "entityName": "queue", "actionSet": ["view"]}]},
            {"id": "r-admin", "name": "Admin", "description": "All"},
            {"id": "r-emp", "name": "employee", "default": true},
            {"id": "r-old", "name": "Old"}
        ]))
    }

    fn planned(config: &str, live: &Snapshot) -> Plan {
        let config = if config.contains("safety") {
            config.to_owned()
        } else {
            format!("{config}safety: {{maxDeletePercent: 100}}\n")
        };
        plan_ok(&desired_with(&config, ROLES), live, &PlanOptions::default())
    }

    // Matching is by name in any case; a case-only difference renames; inheritance is
    // flattened; a role listed by name only is left alone; a missing managed role is
    // created; the update keeps what is not written (the live description, general
    // permissions).
    #[test]
    fn creates_updates_and_leaves_alone() {
        let plan = planned("", &tenant());
        let agent = change(&plan, Kind::Role, "Agent").expect("renamed");
        assert_eq!(agent.action, Action::Patch);
        assert_eq!(agent.diff.len(), 1, "only the name: {:?}", agent.diff);
        let lead = change(&plan, Kind::Role, "Lead").expect("patched");
        assert_eq!(
            lead.diff[0].added,
            ["directory:user:view", "routing:queue:*"],
            "inherited, and `*` absorbs join"
        );
        // Compared after expansion: `routing:queue:view` is part of what `routing:queue:*`
        // grants, so it is not removed; the wildcard is still missing, as Lead lacks the
        // `routing:queue:join` Agent shows the server knows.
        assert!(lead.diff[0].removed.is_empty(), "{:?}", lead.diff);
        let crate::plan::Edit::Role { body, permissions } = &lead.edits[0] else {
            panic!("a role body");
        };
        assert!(*permissions);
        assert_eq!(body.description.as_deref(), Some("Leads"), "kept");
        assert_eq!(body.permissions, ["x"], "kept");
        assert!(
            change(&plan, Kind::Role, "Admin").is_none(),
            "listed by name only"
        );
        let viewer = change(&plan, Kind::Role, "Viewer").expect("created");
        assert_eq!(viewer.action, Action::Create);
        assert!(
            plan.changes.iter().all(|c| c.action != Action::Delete),
            "roles listed by default"
        );
        // Without role definitions on the target, nothing about roles is planned.
        let scim_only = planned("", &snapshot(&[], &[]));
        assert!(scim_only.is_empty(), "{scim_only:#?}");
    }

    // Ownership decides which absent roles go; built-in roles never; admin roles are held
    // back; role deletes count against the brakes.
    #[test]
    fn deletes_follow_ownership_and_guards() {
        let mut live = tenant();
        if let Some(roles) = live.roles.as_mut() {
            roles.retain(|r| r.name != "Admin");
            roles.push(
                serde_json::from_value(json!({"id": "r-root", "name": "Root"})).expect("a role"),
            );
        }
        let plan = planned(
            "ownership: {roles: all}\npolicy: {adminRoles: [Root]}\n",
            &live,
        );
        let old = change(&plan, Kind::Role, "Old").expect("deleted");
        assert_eq!((old.action, old.blocked.as_deref()), (Action::Delete, None));
        assert!(change(&plan, Kind::Role, "employee").is_none(), "built-in");
        let root = change(&plan, Kind::Role, "Root").expect("held");
        assert!(
            root.blocked
                .as_deref()
                .is_some_and(|r| r.contains("policy.adminRoles")),
            "{root:#?}"
        );
        let prefix = planned("ownership: {roles: {selector: {namePrefix: ro}}}\n", &live);
        assert!(change(&prefix, Kind::Role, "Old").is_none(), "not selected");
        assert!(change(&prefix, Kind::Role, "Root").is_some());
        let braked = planned(
            "ownership: {roles: all}\nsafety: {maxDeleteCount: 1, maxDeletePercent: 100}\n",
            &live,
        );
        assert_eq!(braked.summary().blocked, 2, "{braked:#?}");
    }

    // After the server's expansion: a wildcard role that reads back expanded is no change;
    // a backfilled extra is kept (additive, the default) or removed (authoritative); a
    // replace keeps the extra and the live conditional policy, which is never compared.
    #[test]
    fn compared_after_expansion_and_backfill() {
        const WILD: &str = "roles:\n  - name: Queues\n    description: Q\n    permissions: [\"routing:queue:*\"]\n";
        let tenant = |description: &str| {
            live(&json!([
                {"id": "r-q", "name": "Queues", "description": description,
                 "permissionPolicies": [
                     {"domain": "routing", "entityName": "queue", "actionSet": ["join", "view"]},
                     {"domain": "routing", "entityName": "queueMember", "actionSet": ["view"]},
                     {"domain": "directory", "entityName": "user", "actionSet": ["edit"],
                      "resourceConditionNode": {"variableName": "division"}}]}
            ]))
        };
        let desired = |config: &str| {
            desired_with(
                &format!("{config}safety: {{maxDeletePercent: 100}}\n"),
                WILD,
            )
        };
        let plan = plan_ok(&desired(""), &tenant("Q"), &PlanOptions::default());
        assert!(plan.is_empty(), "expanded and backfilled: {plan:#?}");
        let strict = plan_ok(
            &desired("collections: {rolePermissions: authoritative}\n"),
            &tenant("Q"),
            &PlanOptions::default(),
        );
        let c = change(&strict, Kind::Role, "Queues").expect("the extra goes");
        assert_eq!(c.diff[0].removed, ["routing:queueMember:view"]);
        assert!(c.diff[0].added.is_empty(), "{:?}", c.diff);
        let edited = plan_ok(&desired(""), &tenant("old"), &PlanOptions::default());
        let c = change(&edited, Kind::Role, "Queues").expect("description");
        let crate::plan::Edit::Role { body, .. } = &c.edits[0] else {
            panic!("a role body");
        };
        let shape: Vec<(&str, &str, bool)> = body
            .permission_policies
            .iter()
            .map(|p| {
                (
                    p.domain.as_str(),
                    p.entity_name.as_str(),
                    super::conditional(p),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("routing", "queue", false),
                ("routing", "queueMember", false),
                ("directory", "user", true)
            ],
            "the wildcard as written, the kept extra, the conditional policy"
        );
    }

    // A permission a desired role names is part of the catalogue even before any live role
    // holds it: a wildcard role that lacks it is not yet expanded, and is written now rather
    // than one plan later (found by the idempotence property).
    #[test]
    fn a_desired_permission_counts_toward_a_wildcard() {
        const TWO: &str = "roles:\n  - name: All\n    permissions: [\"*\"]\n  - name: Reader\n    permissions: [\"directory:user:view\"]\n";
        let tenant = live(&json!([
            {"id": "r-all", "name": "All",
             "permissionPolicies": [
                 {"domain": "directory", "entityName": "user", "actionSet": ["edit"]}]}
        ]));
        let desired = desired_with("safety: {maxDeletePercent: 100}\n", TWO);
        let plan = plan_ok(&desired, &tenant, &PlanOptions::default());
        let all = change(&plan, Kind::Role, "All").expect("not yet expanded");
        assert_eq!(all.diff[0].added, ["*"], "{:?}", all.diff);
        assert!(change(&plan, Kind::Role, "Reader").is_some(), "created");
    }

    // Two live roles answering to one managed name are an ambiguity, reported, not guessed.
    #[test]
    fn ambiguous_names_are_errors() {
        let live = live(&json!([
            {"id": "a1", "name": "Agent"}, {"id": "a2", "name": "AGENT"},
            {"id": "d1", "name": "Admin"}, {"id": "d2", "name": "admin"}
        ]));
        let desired = desired_with("", ROLES);
        match crate::plan::plan(&desired, &live, &PlanOptions::default()) {
            Err(PlanError::Ambiguous(problems)) => {
                assert_eq!(problems.len(), 1, "Admin is not managed: {problems:?}");
                assert!(problems[0].contains("a1") && problems[0].contains("a2"));
            }
            other => panic!("expected an ambiguity: {other:?}"),
        }
    }

    // Role changes render like the others and survive a saved plan.
    #[test]
    fn role_plans_render_and_round_trip() {
        let plan = planned("ownership: {roles: all}\n", &tenant());
        let mut text = Vec::new();
        crate::plan::render::text(&plan, &mut text, false).expect("renders");
        insta::assert_snapshot!("text_roles", String::from_utf8(text).expect("utf-8"));
        let mut md = Vec::new();
        crate::plan::render::markdown(&plan, &mut md).expect("renders");
        insta::assert_snapshot!("markdown_roles", String::from_utf8(md).expect("utf-8"));
        let doc = crate::plan::saved::PlanDocument::new(&plan, "0".repeat(64));
        let json = serde_json::to_string(&doc).expect("json");
        let read = crate::plan::saved::PlanDocument::from_json(&json).expect("reads");
        assert_eq!(read.plan(), plan);
    }
}
