//! Role grants limited to divisions (Genesys Cloud): `roles: [{name: X, divisions: [D]}]`
//! planned as Platform API grants of role X in division D rather than as a SCIM role name
//! (which Genesys Cloud grants in the home division only, genesys-api.md §4).
//!
//! Grants are managed for a user when the snapshot holds the divisions (the Genesys target)
//! and, for a live user, its direct grants ([`Snapshot::grants`], read by the caller for
//! the users [`grant_subjects`] names). Only the roles that YAML limits to divisions are
//! compared: desired pairs (role, division) are added; under `collections.userRoles:
//! authoritative` the user's other direct grants of those roles are removed. Such roles are
//! left out of the SCIM `roles` comparison on both sides. Pure.

use std::collections::{BTreeMap, HashSet};

use crate::desired::DesiredState;
use crate::model::{RoleGrant, Spanned};
use crate::scim::{Grant, Resource, Snapshot};

use super::{AttrDiff, Edit, GrantRef};

/// The live ids of the users whose direct grants a plan of `desired` against `live` needs:
/// on a target with divisions, the live users whose userName (case-insensitively) is a
/// desired user's with at least one role limited to divisions.
#[must_use]
pub fn grant_subjects(desired: &DesiredState, live: &Snapshot) -> Vec<String> {
    if live.divisions.is_none() {
        return Vec::new();
    }
    let scoped: HashSet<String> = desired
        .users
        .iter()
        .filter(|u| {
            u.value
                .roles
                .as_ref()
                .is_some_and(|r| r.iter().any(|g| g.value.divisions.is_some()))
        })
        .map(|u| u.value.user_name.value.to_lowercase())
        .collect();
    if scoped.is_empty() {
        return Vec::new();
    }
    live.users
        .iter()
        .filter(|u| scoped.contains(&u.natural_key().to_lowercase()))
        .filter_map(|u| u.id())
        .map(str::to_owned)
        .collect()
}

/// What the grants of one user come to.
pub(super) struct UserGrants {
    /// Lower-cased names of the roles managed as grants (left out of SCIM `roles`).
    pub(super) scoped: HashSet<String>,
    /// The `roleGrants` diff and its edit, when anything changes.
    pub(super) change: Option<(AttrDiff, Edit)>,
}

/// The grants of a user whose desired roles are `roles` and whose live id is `live_id`
/// (`None`: created by this plan); `None` when grants are not managed for it (no divisions
/// in the snapshot, no grants read for the live user, or no role limited to divisions).
pub(super) fn user_grants(
    desired: &DesiredState,
    live: &Snapshot,
    roles: &[Spanned<RoleGrant>],
    live_id: Option<&str>,
    authoritative: bool,
    warn: &mut dyn FnMut(String),
) -> Option<UserGrants> {
    let divisions = live.divisions.as_ref()?;
    let held: &[Grant] = match live_id {
        None => &[],
        Some(id) => live.grants.as_ref()?.get(id)?,
    };
    let scoped: HashSet<String> = roles
        .iter()
        .filter(|r| r.value.divisions.is_some())
        .map(|r| r.value.name.to_lowercase())
        .collect();
    if scoped.is_empty() {
        return None;
    }
    let home = divisions.iter().find(|d| d.home);
    // (lower-cased role, division id) → the grant; sorted, for a stable plan.
    let mut want: BTreeMap<(String, String), GrantRef> = BTreeMap::new();
    let mut ids: BTreeMap<String, Option<String>> = BTreeMap::new();
    for grant in roles
        .iter()
        .filter(|r| scoped.contains(&r.value.name.to_lowercase()))
    {
        let name = grant.value.name.to_string();
        let lower = name.to_lowercase();
        let role_id = if let Some(known) = ids.get(&lower) {
            known.clone()
        } else {
            let live_role = live
                .roles
                .iter()
                .flatten()
                .find(|r| r.name.eq_ignore_ascii_case(&name));
            let id = match (live_role, desired.role(&name)) {
                (Some(r), _) => Some(r.id.clone()),
                (None, Some(_)) => None,
                (None, None) => {
                    warn(format!(
                        "role {name:?} is neither on the target nor in desired state: its \
                         division grants are skipped"
                    ));
                    continue;
                }
            };
            ids.insert(lower.clone(), id.clone());
            id
        };
        // The plain `roles: [X]` beside `{name: X, divisions: […]}` is X in the home division.
        let listed: Vec<String> = match &grant.value.divisions {
            Some(list) => list.iter().map(ToString::to_string).collect(),
            None => home.map(|h| vec![h.name.clone()]).unwrap_or_default(),
        };
        for division in listed {
            let Some(d) = divisions
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(&division))
            else {
                warn(format!(
                    "division {division:?} is not on the target: role {name:?} is not \
                     granted in it"
                ));
                continue;
            };
            want.entry((lower.clone(), d.id.clone()))
                .or_insert_with(|| GrantRef {
                    role: name.clone(),
                    role_id: role_id.clone(),
                    division: d.name.clone(),
                    division_id: d.id.clone(),
                });
        }
    }
    let mut have: BTreeMap<(String, String), GrantRef> = BTreeMap::new();
    for g in held {
        let role = ids
            .iter()
            .find(|(name, id)| {
                id.as_deref() == Some(g.role_id.as_str()) || **name == g.role_name.to_lowercase()
            })
            .map(|(name, _)| name.clone());
        let Some(role) = role else { continue };
        let division = if g.division_name.is_empty() {
            divisions
                .iter()
                .find(|d| d.id == g.division_id)
                .map_or_else(|| g.division_id.clone(), |d| d.name.clone())
        } else {
            g.division_name.clone()
        };
        let shown = roles
            .iter()
            .find(|r| r.value.name.to_lowercase() == role)
            .map_or_else(|| g.role_name.clone(), |r| r.value.name.to_string());
        have.insert(
            (role, g.division_id.clone()),
            GrantRef {
                role: shown,
                role_id: Some(g.role_id.clone()),
                division,
                division_id: g.division_id.clone(),
            },
        );
    }
    let add: Vec<GrantRef> = want
        .iter()
        .filter(|(k, _)| !have.contains_key(*k))
        .map(|(_, g)| g.clone())
        .collect();
    let remove: Vec<GrantRef> = if authoritative {
        have.iter()
            .filter(|(k, _)| !want.contains_key(*k))
            .map(|(_, g)| g.clone())
            .collect()
    } else {
        Vec::new()
    };
    let change = (!add.is_empty() || !remove.is_empty()).then(|| {
        (
            AttrDiff {
                attribute: "roleGrants".into(),
                added: add.iter().map(GrantRef::label).collect(),
                removed: remove.iter().map(GrantRef::label).collect(),
                ..AttrDiff::default()
            },
            Edit::Grants { add, remove },
        )
    });
    Some(UserGrants { scoped, change })
}
