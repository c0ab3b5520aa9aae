//! Role definitions, on targets that manage them (Genesys Cloud, where `Snapshot::roles` is
//! `Some`): matching desired roles to live ones by name, the create or whole-body replace
//! each needs, and the deletes ownership asks for.
//!
//! A desired role is managed when it writes `permissions` or `description`; a role listed
//! by name only (to be granted to users) is left as it is. Genesys Cloud has no role
//! inheritance, so the permissions compared and written are the role's own and everything
//! it inherits, flattened into policies ([`crate::model::permission::policies_of`]). Live
//! roles are compared as permission strings, so policies that grant the same thing in
//! another shape are no change.

use std::collections::HashSet;

use serde_json::Value;

use crate::desired::DesiredState;
use crate::model::Role;
use crate::model::permission::{self, Policy, RoleIndex};
use crate::scim::{PermissionPolicy, PlatformRole, RoleBody};

use super::{Action, AttrDiff, Change, Edit, Kind, Plan, Source};

/// Whether desired state manages this role's definition.
fn managed(role: &Role) -> bool {
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

    fn policies(&self) -> Option<Vec<PermissionPolicy>> {
        self.permissions
            .as_ref()
            .map(|p| wire_policies(&permission::policies_of(p.iter().map(String::as_str))))
    }
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
    for (i, role) in desired.roles.iter().enumerate() {
        if !managed(role) {
            continue;
        }
        let wanted = Wanted::of(&index, role);
        let source = Source::at(&desired.sources, role.span);
        let change = match matched.get(i).copied().flatten() {
            None => Some(create(&wanted, source)),
            Some(l) => update(&wanted, &live[l], source),
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
            key: l.name.clone(),
            id: Some(l.id.clone()),
            version: None,
            source: Source::Absent,
            diff: Vec::new(),
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
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
        permission_policies: wanted.policies().unwrap_or_default(),
    };
    Change {
        action: Action::Create,
        kind: Kind::Role,
        key: wanted.name.to_owned(),
        id: None,
        version: None,
        source,
        diff,
        edits: vec![Edit::Role {
            body,
            permissions: wanted.permissions.is_some(),
        }],
        present: Vec::new(),
        blocked: None,
    }
}

/// The attribute-level differences between a live role and what desired state writes.
fn differences(wanted: &Wanted<'_>, live: &PlatformRole) -> Vec<AttrDiff> {
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
        let have = live_permissions(&live.permission_policies);
        let added: Vec<String> = want.iter().filter(|p| !have.contains(p)).cloned().collect();
        let removed: Vec<String> = have.iter().filter(|p| !want.contains(p)).cloned().collect();
        if !added.is_empty() || !removed.is_empty() {
            diff.push(AttrDiff {
                attribute: "permissions".into(),
                added,
                removed,
                ..AttrDiff::default()
            });
        }
    }
    diff
}

/// The whole-body replace that brings `live` in line with `wanted`: the desired name, the
/// desired description if written else the live one, the flattened policies if written else
/// the live ones, and the live general permissions.
#[must_use]
pub(crate) fn merged_body(
    name: &str,
    description: Option<&str>,
    policies: Option<Vec<PermissionPolicy>>,
    live: &PlatformRole,
) -> RoleBody {
    RoleBody {
        name: name.to_owned(),
        description: description
            .map(str::to_owned)
            .or_else(|| live.description.clone()),
        permissions: live.permissions.clone(),
        permission_policies: policies.unwrap_or_else(|| live.permission_policies.clone()),
    }
}

fn update(wanted: &Wanted<'_>, live: &PlatformRole, source: Source) -> Option<Change> {
    let diff = differences(wanted, live);
    if diff.is_empty() {
        return None;
    }
    let body = merged_body(wanted.name, wanted.description, wanted.policies(), live);
    Some(Change {
        action: Action::Patch,
        kind: Kind::Role,
        key: wanted.name.to_owned(),
        id: Some(live.id.clone()),
        version: None,
        source,
        diff,
        edits: vec![Edit::Role {
            body,
            permissions: wanted.permissions.is_some(),
        }],
        present: Vec::new(),
        blocked: None,
    })
}

/// Whether `live` already is what a role edit's `body` asks for (compared as the planner
/// compares: name exactly, description when the body has one, permissions as strings when
/// `permissions` is written). Used by the applier when it adopts a role that already exists.
#[must_use]
pub fn role_matches(body: &RoleBody, permissions: bool, live: &PlatformRole) -> bool {
    live.name == body.name
        && body
            .description
            .as_ref()
            .is_none_or(|d| live.description.as_deref().unwrap_or_default() == d.as_str())
        && (!permissions
            || live_permissions(&live.permission_policies)
                == live_permissions(&body.permission_policies))
}
