//! Role grants limited to divisions (Genesys Cloud): `roles: [{name: X, divisions: [D]}]`
//! planned as Platform API grants of role X in division D rather than as a SCIM role name
//! (which Genesys Cloud grants in the home division only, docs/genesys.md §4).
//!
//! Grants are managed for a user when the snapshot holds the divisions (the Genesys target)
//! and, for a live user, its direct grants ([`Snapshot::grants`], read by the caller for
//! the users [`grant_subjects`] names). Only the roles that YAML limits to divisions are
//! compared: desired pairs (role, division) are added; under `collections.userRoles:
//! authoritative` the user's other direct grants of those roles are removed. Such roles are
//! left out of the SCIM `roles` comparison on both sides.
//!
//! `divisions: ["*"]` is the grant in all divisions (division id `*`), compared as a pair of
//! its own: it neither stands for nor is covered by grants in named divisions. A `*` grant
//! held on the target is never revoked, authoritative mode included: it is what an org-wide
//! administrator or integration runs on, and YAML that lists named divisions has not said
//! to take it away; a warning says it was left. Pure.

use std::collections::{BTreeMap, HashSet};

use crate::desired::DesiredState;
use crate::model::tenant::{ALL_DIVISIONS, Division, Grant, Resource, Snapshot};
use crate::model::{RoleGrant, Spanned};

use super::{AttrDiff, Edit, GrantRef};

/// The live ids of the users whose direct grants a plan of `desired` against `live` needs:
/// on a target with divisions, the live users the planner matches (by externalId, userName
/// or a `previously` name) to a desired user with at least one role limited to divisions, so
/// that a user renamed by the run has its grants compared in that run, not the next one;
/// when matching fails, those whose userName (case-insensitively) is such a user's.
#[must_use]
pub fn grant_subjects(desired: &DesiredState, live: &Snapshot) -> Vec<String> {
    if live.divisions.is_none() {
        return Vec::new();
    }
    let scoped: Vec<bool> = desired
        .users
        .iter()
        .map(|u| {
            u.value
                .roles
                .as_ref()
                .is_some_and(|r| r.iter().any(|g| g.value.divisions.is_some()))
        })
        .collect();
    if !scoped.contains(&true) {
        return Vec::new();
    }
    let matched = super::matching::match_all(desired, live)
        .or_else(|_| super::matching::match_partial(desired, live));
    let mut ids: Vec<&str> = if let Ok(m) = matched {
        m.users
            .iter()
            .zip(&scoped)
            .filter_map(|(m, &s)| m.filter(|_| s))
            .filter_map(|i| live.users[i].id())
            .collect()
    } else {
        let names: HashSet<String> = desired
            .users
            .iter()
            .zip(&scoped)
            .filter(|(_, s)| **s)
            .map(|(u, _)| u.value.user_name.value.to_lowercase())
            .collect();
        live.users
            .iter()
            .filter(|u| names.contains(&u.natural_key().to_lowercase()))
            .filter_map(|u| u.id())
            .collect()
    };
    // In listing order, as before.
    let order: std::collections::HashMap<&str, usize> = live
        .users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.id().map(|id| (id, i)))
        .collect();
    ids.sort_by_key(|id| order.get(id).copied());
    ids.dedup();
    ids.into_iter().map(str::to_owned).collect()
}

/// (lower-cased role name, division id) → grant; sorted, for a stable plan.
type Pairs = BTreeMap<(String, String), GrantRef>;

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
    let (want, ids, unplaced) = wanted(desired, live, divisions, roles, &scoped, warn);
    let mut have = held_pairs(held, &ids, roles, divisions);
    have.retain(|(role, _), _| !unplaced.contains(role));
    let change = compare(&want, &have, authoritative, warn);
    Some(UserGrants { scoped, change })
}

/// The `roleGrants` diff and edit that turn `have` into `want`, a user's or a group's alike;
/// `None` when nothing changes. Grants `want` lacks are revoked only with `revoke`, and a
/// grant in all divisions never is (warned about instead).
fn compare(
    want: &Pairs,
    have: &Pairs,
    revoke: bool,
    warn: &mut dyn FnMut(String),
) -> Option<(AttrDiff, Edit)> {
    let add: Vec<GrantRef> = want
        .iter()
        .filter(|(k, _)| !have.contains_key(*k))
        .map(|(_, g)| g.clone())
        .collect();
    let remove: Vec<GrantRef> = if revoke {
        have.iter()
            .filter(|(k, _)| !want.contains_key(*k))
            .filter(|(_, g)| {
                let everywhere = g.division_id == ALL_DIVISIONS;
                if everywhere {
                    warn(format!(
                        "role {:?} is granted in all divisions (\"*\") on the target, which \
                         YAML does not list: an all-divisions grant is never revoked; remove \
                         it by hand, or write divisions: [\"*\"] to manage it",
                        g.role
                    ));
                }
                !everywhere
            })
            .map(|(_, g)| g.clone())
            .collect()
    } else {
        Vec::new()
    };
    (!add.is_empty() || !remove.is_empty()).then(|| {
        (
            AttrDiff {
                attribute: "roleGrants".into(),
                added: add.iter().map(GrantRef::label).collect(),
                removed: remove.iter().map(GrantRef::label).collect(),
                ..AttrDiff::default()
            },
            Edit::Grants {
                add: add.into(),
                remove: remove.into(),
            },
        )
    })
}

/// Per managed (lower-cased role, division id): the desired grant; and per role the
/// desired roles limited to divisions resolve to: its live id (`None`: created by the run).
/// Roles and divisions that cannot be resolved are warned about and skipped. The third part
/// names the roles (lower-cased) whose grants must be left exactly as they are: a plain name
/// is the home division, and when the target marks no division as home, or several, where
/// that is cannot be told, so the role's grants are neither given nor revoked.
fn wanted(
    desired: &DesiredState,
    live: &Snapshot,
    divisions: &[Division],
    roles: &[Spanned<RoleGrant>],
    scoped: &HashSet<String>,
    warn: &mut dyn FnMut(String),
) -> (Pairs, BTreeMap<String, Option<String>>, HashSet<String>) {
    let homes = divisions.iter().filter(|d| d.home).count();
    let home = divisions.iter().find(|d| d.home).filter(|_| homes == 1);
    let mut unplaced = HashSet::new();
    let mut want = Pairs::new();
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
                // Created by the run only when desired state manages its definition.
                (None, Some(role)) if live.roles.is_some() && super::roles::managed(role) => None,
                (None, Some(_)) => {
                    warn(format!(
                        "role {name:?} is not on the target, and desired state lists it by \
                         name only (no permissions or description), so no run creates it: \
                         its division grants are skipped"
                    ));
                    continue;
                }
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
        let listed: Vec<String> = match (&grant.value.divisions, home) {
            (Some(list), _) => list.iter().map(ToString::to_string).collect(),
            (None, Some(h)) => vec![h.name.clone()],
            (None, None) => {
                warn(format!(
                    "the target marks {homes} division(s) as home, not one: where role                      {name:?} given by name alone belongs cannot be told, so its grants are                      left as they are"
                ));
                unplaced.insert(lower);
                continue;
            }
        };
        for division in listed {
            if division == ALL_DIVISIONS {
                want.entry((lower.clone(), ALL_DIVISIONS.to_owned()))
                    .or_insert_with(|| GrantRef {
                        role: name.clone(),
                        role_id: role_id.clone(),
                        division: ALL_DIVISIONS.to_owned(),
                        division_id: ALL_DIVISIONS.to_owned(),
                    });
                continue;
            }
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
    want.retain(|(role, _), _| !unplaced.contains(role));
    (want, ids, unplaced)
}

/// The user's direct grants of the roles in `ids`, keyed as [`wanted`] keys them.
fn held_pairs(
    held: &[Grant],
    ids: &BTreeMap<String, Option<String>>,
    roles: &[Spanned<RoleGrant>],
    divisions: &[Division],
) -> Pairs {
    let mut have = Pairs::new();
    for g in held {
        let role = ids
            .iter()
            .find(|(name, id)| {
                id.as_deref() == Some(g.role_id.as_str()) || **name == g.role_name.to_lowercase()
            })
            .map(|(name, _)| name.clone());
        let Some(role) = role else { continue };
        // Shown as YAML writes it, whatever name the target gives the grant in all divisions.
        let division = if g.division_id == ALL_DIVISIONS {
            ALL_DIVISIONS.to_owned()
        } else if g.division_name.is_empty() {
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
    have
}

/// The live ids of the groups whose role grants (subject type `PC_GROUP`) a plan of
/// `desired` against `live` needs: on a target with divisions, every live group when a
/// desired group declares `roles` (to compare them) or `policy.adminRoles` is set (the
/// last-admin guard counts admins through groups); none otherwise. One subject read each.
#[must_use]
pub fn group_grant_subjects(desired: &DesiredState, live: &Snapshot) -> Vec<String> {
    if live.divisions.is_none() {
        return Vec::new();
    }
    let declares = desired.groups.iter().any(|g| g.value.roles.is_some());
    if !declares && desired.config.policy.admin_roles.is_empty() {
        return Vec::new();
    }
    live.groups
        .iter()
        .filter_map(|g| g.id())
        .map(str::to_owned)
        .collect()
}

/// What a group's role grants come to: the `roleGrants` diff and its edit, when anything
/// changes.
pub(super) struct GroupGrants {
    /// The diff row and the edit.
    pub(super) change: Option<(AttrDiff, Edit)>,
    /// Whether the group is to hold any grant YAML gives it (held already, or given now).
    pub(super) wanted: bool,
}

/// The grants of a group whose desired roles are `roles` (every one a grant: a plain name
/// is the home division) and whose live id is `live_id` (`None`: created by this plan).
/// With `prune` (the group is owned by `ownership.groups`: `all`, or a selector that takes
/// it) the group's other grants are revoked, an all-divisions grant excepted as for users;
/// otherwise they are kept. `None` when grants are not managed: no divisions (plain SCIM), or
/// the live group's grants were not read.
pub(super) fn group_grants(
    desired: &DesiredState,
    live: &Snapshot,
    roles: &[Spanned<RoleGrant>],
    live_id: Option<&str>,
    prune: bool,
    warn: &mut dyn FnMut(String),
) -> Option<GroupGrants> {
    let divisions = live.divisions.as_ref()?;
    let held: &[Grant] = match live_id {
        None => &[],
        Some(id) => live
            .group_grants
            .as_ref()?
            .get(id)
            .map_or(&[], Vec::as_slice),
    };
    let scoped: HashSet<String> = roles.iter().map(|r| r.value.name.to_lowercase()).collect();
    let (want, ids, unplaced) = wanted(desired, live, divisions, roles, &scoped, warn);
    let mut have = held_pairs(held, &ids, roles, divisions);
    if prune {
        // The grants of roles YAML does not name, keyed by the live role's name.
        for g in held {
            let named = ids.iter().any(|(name, id)| {
                id.as_deref() == Some(g.role_id.as_str()) || *name == g.role_name.to_lowercase()
            });
            if named {
                continue;
            }
            let role = live
                .roles
                .iter()
                .flatten()
                .find(|r| r.id == g.role_id)
                .map_or_else(|| g.role_name.clone(), |r| r.name.clone());
            let division = if g.division_id == ALL_DIVISIONS {
                ALL_DIVISIONS.to_owned()
            } else {
                divisions
                    .iter()
                    .find(|d| d.id == g.division_id)
                    .map_or_else(|| g.division_name.clone(), |d| d.name.clone())
            };
            have.insert(
                (role.to_lowercase(), g.division_id.clone()),
                GrantRef {
                    role,
                    role_id: Some(g.role_id.clone()),
                    division,
                    division_id: g.division_id.clone(),
                },
            );
        }
    }
    have.retain(|(role, _), _| !unplaced.contains(role));
    let wanted = !want.is_empty();
    let change = compare(&want, &have, prune, warn);
    Some(GroupGrants { change, wanted })
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::grant_subjects;
    use crate::model::tenant::{Division, Grant, PlatformRole, Snapshot};
    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Edit, GrantRef, Kind, Multi, Plan, PlanOptions};

    const ROLES: &str =
        "roles:\n  - name: Agent\n  - name: Wrap Up\n  - name: Extra\n  - name: Coach\n";

    fn division(id: &str, name: &str, home: bool) -> Division {
        Division {
            id: id.into(),
            name: name.into(),
            home,
        }
    }

    fn grant(role: (&str, &str), division: (&str, &str)) -> Grant {
        Grant {
            role_id: role.0.into(),
            role_name: role.1.into(),
            division_id: division.0.into(),
            division_name: division.1.into(),
        }
    }

    /// A Genesys-like tenant: user `a` holding Agent and Wrap Up (SCIM reads back every
    /// role name), Wrap Up granted directly in Home and Old, Extra through SCIM; divisions
    /// Home, Field Sales and Old.
    fn tenant(roles: &[&str]) -> Snapshot {
        let values: Vec<Value> = roles.iter().map(|r| json!({"value": r})).collect();
        let mut s = snapshot(
            &[json!({"id": "u-a", "userName": "a@x.example", "roles": values})],
            &[],
        );
        s.roles = Some(
            serde_json::from_value::<Vec<PlatformRole>>(json!([
                {"id": "r-agent", "name": "Agent"},
                {"id": "r-wrap", "name": "Wrap Up"},
                {"id": "r-extra", "name": "Extra"}
            ]))
            .expect("roles"),
        );
        s.divisions = Some(vec![
            division("d-home", "Home", true),
            division("d-field", "Field Sales", false),
            division("d-old", "Old", false),
        ]);
        s.grants = Some(
            [(
                "u-a".to_owned(),
                vec![
                    grant(("r-wrap", "Wrap Up"), ("d-home", "Home")),
                    grant(("r-wrap", "Wrap Up"), ("d-old", "Old")),
                    grant(("r-agent", "Agent"), ("d-old", "Old")),
                ],
            )]
            .into(),
        );
        s
    }

    fn user(roles: &str) -> String {
        format!("{ROLES}users:\n  - userName: a@x.example\n    roles: {roles}\n")
    }

    fn grants_of(plan: &Plan, key: &str) -> (Vec<String>, Vec<String>) {
        let c = change(plan, Kind::User, key).expect("a change");
        c.edits
            .iter()
            .find_map(|e| match e {
                Edit::Grants { add, remove } => Some((
                    add.iter().map(GrantRef::label).collect(),
                    remove.iter().map(GrantRef::label).collect(),
                )),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn scim_role_edits(plan: &Plan, key: &str) -> Vec<Edit> {
        change(plan, Kind::User, key)
            .map(|c| {
                c.edits
                    .iter()
                    .filter(|e| {
                        matches!(
                            e,
                            Edit::Add {
                                attr: Multi::Roles,
                                ..
                            } | Edit::Remove {
                                attr: Multi::Roles,
                                ..
                            } | Edit::ReplaceAll {
                                attr: Multi::Roles,
                                ..
                            }
                        )
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    // Additive (the default) only adds the missing pair; authoritative also revokes the
    // role's grant in a division YAML does not list, never another role's; the diff shows
    // `Role @ Division`; no warning about divisions either way.
    #[test]
    fn additive_adds_authoritative_also_revokes() {
        let yaml = user("[Agent, {name: Wrap Up, divisions: [Home, Field Sales]}]");
        let live = tenant(&["Agent", "Wrap Up"]);
        let plan = plan_ok(&desired_with("", &yaml), &live, &PlanOptions::default());
        assert_eq!(
            grants_of(&plan, "a@x.example"),
            (vec!["Wrap Up @ Field Sales".to_owned()], Vec::new())
        );
        let c = change(&plan, Kind::User, "a@x.example").expect("a change");
        assert_eq!(c.action, Action::Patch);
        let diff = c
            .diff
            .iter()
            .find(|d| d.attribute == "roleGrants")
            .expect("diff");
        assert_eq!(diff.added, ["Wrap Up @ Field Sales"]);
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);
        let authoritative = desired_with("collections: {userRoles: authoritative}\n", &yaml);
        let plan = plan_ok(&authoritative, &live, &PlanOptions::default());
        assert_eq!(
            grants_of(&plan, "a@x.example"),
            (
                vec!["Wrap Up @ Field Sales".to_owned()],
                vec!["Wrap Up @ Old".to_owned()]
            )
        );
        let Some(Edit::Grants { add, .. }) = change(&plan, Kind::User, "a@x.example")
            .and_then(|c| c.edits.iter().find(|e| matches!(e, Edit::Grants { .. })))
        else {
            panic!("a grants edit");
        };
        assert_eq!(
            (add[0].role_id.as_deref(), add[0].division_id.as_str()),
            (Some("r-wrap"), "d-field")
        );
    }

    // SCIM `roles` reads back Wrap Up (granted in some division): it is neither added by
    // SCIM (which would grant it in Home) nor removed under authoritative mode; other roles
    // are compared by name as before.
    #[test]
    fn scim_roles_leave_division_scoped_roles_alone() {
        let yaml = user("[Agent, {name: Wrap Up, divisions: [Home, Old]}]");
        let authoritative = desired_with("collections: {userRoles: authoritative}\n", &yaml);
        let live = tenant(&["Agent", "Wrap Up", "Extra"]);
        let plan = plan_ok(&authoritative, &live, &PlanOptions::default());
        assert_eq!(grants_of(&plan, "a@x.example"), (Vec::new(), Vec::new()));
        let edits = scim_role_edits(&plan, "a@x.example");
        assert_eq!(edits.len(), 1, "{edits:#?}");
        assert!(
            matches!(&edits[0], Edit::Remove { key, .. } if key.equals == "Extra"),
            "{edits:#?}"
        );
        // The role missing from SCIM `roles` entirely is not added by name either.
        let live = tenant(&["Agent"]);
        let plan = plan_ok(&desired_with("", &yaml), &live, &PlanOptions::default());
        assert!(plan.is_empty(), "{plan:#?}");
    }

    // A new user's grants name a role the run creates (Coach, which desired state defines):
    // no id yet (the applier resolves it); an unknown division is a warning and that pair is
    // skipped.
    #[test]
    fn new_user_new_role_and_unknown_division() {
        let yaml = format!(
            "{ROLES}    description: Coaches\nusers:\n  - userName: new@x.example\n    roles: [{{name: Coach, divisions: [Field Sales, Nowhere]}}]\n"
        );
        let live = tenant(&[]);
        let plan = plan_ok(&desired_with("", &yaml), &live, &PlanOptions::default());
        let c = change(&plan, Kind::User, "new@x.example").expect("a create");
        assert_eq!(c.action, Action::Create);
        let Some(Edit::Grants { add, remove }) =
            c.edits.iter().find(|e| matches!(e, Edit::Grants { .. }))
        else {
            panic!("a grants edit: {c:#?}");
        };
        assert!(remove.is_empty());
        assert_eq!(add.len(), 1);
        assert_eq!(
            (
                add[0].role.as_str(),
                add[0].role_id.as_deref(),
                add[0].division_id.as_str()
            ),
            ("Coach", None, "d-field")
        );
        assert!(scim_role_edits(&plan, "new@x.example").is_empty(), "{c:#?}");
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.message.contains("\"Nowhere\" is not on the target")),
            "{:#?}",
            plan.warnings
        );
        assert_eq!(plan.warnings.len(), 1, "{:#?}", plan.warnings);
    }

    // A role listed by name only (no permissions, no description) that the target lacks is
    // created by no run: a grant of it, to a user or a group, is skipped with a warning
    // rather than planned with a role id that never comes (found by the planner's property
    // test, whose simulated Platform API refused such a grant).
    #[test]
    fn a_role_no_run_creates_is_not_granted() {
        let yaml = format!(
            "{ROLES}users:\n  - userName: new@x.example\n    roles: [{{name: Coach, divisions: [Field Sales]}}]\ngroups:\n  - displayName: Coaches\n    roles: [Coach, Agent]\n"
        );
        let plan = plan_ok(&desired_with("", &yaml), &tenant(&[]), &genesys());
        assert!(change(&plan, Kind::Role, "Coach").is_none(), "{plan:#?}");
        let c = change(&plan, Kind::User, "new@x.example").expect("a create");
        assert!(
            !c.edits.iter().any(|e| matches!(e, Edit::Grants { .. })),
            "{c:#?}"
        );
        assert_eq!(group_grants_of(&plan, "Coaches").0, ["Agent @ Home"]);
        let skipped = plan
            .warnings
            .iter()
            .filter(|w| w.message.contains("\"Coach\" is not on the target"))
            .count();
        assert_eq!(skipped, 2, "{:#?}", plan.warnings);
    }

    // A live user the run renames (matched by a `previously` name or by externalId) is a
    // grant subject under its old name, so its grants are compared in the run that renames
    // it rather than in the next (the planner's property test, which plans what the client
    // reads, needs it for one run to converge).
    #[test]
    fn renamed_users_are_grant_subjects() {
        let yaml = format!(
            "{ROLES}users:\n  - userName: a2@x.example\n    previously: [a@x.example]\n    roles: [{{name: Wrap Up, divisions: [Field Sales]}}]\n  - userName: c@x.example\n    externalId: hr-c\n    roles: [{{name: Agent, divisions: [Old]}}]\n"
        );
        let desired = desired_with("", &yaml);
        let mut live = tenant(&["Wrap Up"]);
        live.users.push(crate::plan::tests::live_user(
            &json!({"id": "u-c", "userName": "old-c@x.example", "externalId": "hr-c"}),
        ));
        assert_eq!(grant_subjects(&desired, &live), ["u-a", "u-c"]);
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(
            grants_of(&plan, "a2@x.example"),
            (vec!["Wrap Up @ Field Sales".to_owned()], Vec::new())
        );
    }

    // `divisions: ["*"]` is the grant in all divisions: wanted as division id `*` with no
    // lookup (and no "not on the target" warning), converged when the target holds it
    // whatever name it gives it, and never revoked: authoritative mode that lists named
    // divisions leaves a held `*` grant and warns, naming the role; additive says nothing.
    #[test]
    fn all_divisions_is_a_grant_of_its_own_and_never_revoked() {
        let everywhere = |role: (&str, &str)| grant(role, ("*", "All divisions"));
        let yaml = format!(
            "{ROLES}    description: Coaches\nusers:\n  - userName: new@x.example\n    roles: [{{name: Coach, divisions: [\"*\"]}}]\n"
        );
        let plan = plan_ok(
            &desired_with("", &yaml),
            &tenant(&[]),
            &PlanOptions::default(),
        );
        let c = change(&plan, Kind::User, "new@x.example").expect("a create");
        let Some(Edit::Grants { add, remove }) =
            c.edits.iter().find(|e| matches!(e, Edit::Grants { .. }))
        else {
            panic!("a grants edit: {c:#?}");
        };
        assert!(remove.is_empty());
        assert_eq!(
            add.iter()
                .map(|g| (g.label(), g.division_id.as_str()))
                .collect::<Vec<_>>(),
            [("Coach @ *".to_owned(), "*")]
        );
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);

        // Held in all divisions and in Home; YAML says "*": nothing to do.
        let mut live = tenant(&["Wrap Up"]);
        let held = live
            .grants
            .as_mut()
            .and_then(|g| g.get_mut("u-a"))
            .expect("grants");
        held.retain(|g| g.division_id == "d-home");
        held.push(everywhere(("r-wrap", "Wrap Up")));
        let authoritative = "collections: {userRoles: authoritative}\n";
        let star = user("[{name: Wrap Up, divisions: [\"*\", Home]}]");
        let plan = plan_ok(
            &desired_with(authoritative, &star),
            &live,
            &PlanOptions::default(),
        );
        assert!(plan.is_empty(), "{plan:#?}");
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);

        // YAML narrows Wrap Up to Field Sales: Home goes, `*` stays, with a warning.
        let narrowed = user("[{name: Wrap Up, divisions: [Field Sales]}]");
        let plan = plan_ok(
            &desired_with(authoritative, &narrowed),
            &live,
            &PlanOptions::default(),
        );
        assert_eq!(
            grants_of(&plan, "a@x.example"),
            (
                vec!["Wrap Up @ Field Sales".to_owned()],
                vec!["Wrap Up @ Home".to_owned()]
            )
        );
        let warned: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(warned.len(), 1, "{warned:#?}");
        assert!(
            warned[0].contains("\"Wrap Up\" is granted in all divisions"),
            "{warned:#?}"
        );
        let plan = plan_ok(&desired_with("", &narrowed), &live, &PlanOptions::default());
        assert_eq!(
            grants_of(&plan, "a@x.example"),
            (vec!["Wrap Up @ Field Sales".to_owned()], Vec::new())
        );
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);
    }

    fn genesys() -> PlanOptions {
        PlanOptions {
            target: crate::plan::tests::genesys_target(),
            ..PlanOptions::default()
        }
    }

    fn group_grants_of(plan: &Plan, key: &str) -> (Vec<String>, Vec<String>) {
        let c = change(plan, Kind::Group, key).expect("a change");
        c.edits
            .iter()
            .find_map(|e| match e {
                Edit::Grants { add, remove } => Some((
                    add.iter().map(GrantRef::label).collect(),
                    remove.iter().map(GrantRef::label).collect(),
                )),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The tenant with group `Leads` (`g-leads`), roles not enabled, holding Extra in Home.
    fn with_group(roles_enabled: bool) -> Snapshot {
        let mut live = tenant(&[]);
        let more = crate::plan::tests::snapshot(
            &[],
            &[json!({"id": "g-leads", "displayName": "Leads", "rolesEnabled": roles_enabled})],
        );
        live.groups = more.groups;
        live.group_grants = Some(
            [(
                "g-leads".to_owned(),
                vec![grant(("r-extra", "Extra"), ("d-home", "Home"))],
            )]
            .into(),
        );
        live
    }

    // A target that marks no division as home, or two: a plain role name cannot be placed,
    // so that role's grants are left exactly as they are, even where the group's or the
    // user's other grants are revoked, and the plan says why. Named divisions still work.
    #[test]
    fn no_single_home_division_leaves_plain_grants_alone() {
        let all = "ownership: {groups: all}\nprune: {groups: none}\n";
        let yaml = format!(
            "{ROLES}groups:\n  - displayName: Leads\n    roles: [Extra, {{name: Agent, divisions: [Field Sales]}}]\n"
        );
        for homes in [&[][..], &["d-home", "d-field"][..]] {
            let mut live = with_group(true);
            for d in live.divisions.iter_mut().flatten() {
                d.home = homes.contains(&d.id.as_str());
            }
            let plan = plan_ok(&desired_with(all, &yaml), &live, &genesys());
            assert_eq!(
                group_grants_of(&plan, "Leads"),
                (vec!["Agent @ Field Sales".to_owned()], Vec::new()),
                "Extra @ Home stays: {plan:#?}"
            );
            assert!(
                plan.warnings.iter().any(|w| w.message.contains(&format!(
                    "marks {} division(s) as home, not one",
                    homes.len()
                )) && w.message.contains("\"Extra\"")),
                "{:#?}",
                plan.warnings
            );
        }
        // The user's grants alike: authoritative, Wrap Up by name and in Field Sales keeps
        // its Home and Old grants, while Agent's unlisted Old grant goes.
        let user = "users:\n  - userName: a@x.example\n    roles: [Wrap Up, {name: Wrap Up, divisions: [Field Sales]}, {name: Agent, divisions: [Field Sales]}]\n";
        let mut live = tenant(&[]);
        for d in live.divisions.iter_mut().flatten() {
            d.home = false;
        }
        let desired = desired_with(
            "collections: {userRoles: authoritative}\n",
            &format!("{ROLES}{user}"),
        );
        let plan = plan_ok(&desired, &live, &genesys());
        let a = change(&plan, Kind::User, "a@x.example").expect("a change");
        let grants = a
            .edits
            .iter()
            .find_map(|e| match e {
                Edit::Grants { add, remove } => Some((
                    add.iter().map(GrantRef::label).collect::<Vec<_>>(),
                    remove.iter().map(GrantRef::label).collect::<Vec<_>>(),
                )),
                _ => None,
            })
            .expect("grants");
        assert_eq!(
            grants,
            (
                vec!["Agent @ Field Sales".to_owned()],
                vec!["Agent @ Old".to_owned()]
            ),
            "{a:#?}"
        );
    }

    // Group roles: a plain name is the home division, `{name, divisions}` limits it; the
    // group without rolesEnabled gets it set first in the same change; a grant YAML does not
    // list is kept under `ownership.groups: listed` and revoked under `all`; a group the run
    // creates gets rolesEnabled and its grants (no removal).
    #[test]
    fn group_roles_are_grants_and_switch_roles_on() {
        let groups = "groups:\n  - displayName: Leads\n    roles: [Agent, {name: Wrap Up, divisions: [Field Sales]}]\n  - displayName: New\n    roles: [Agent]\n";
        let yaml = format!("{ROLES}{groups}");
        let plan = plan_ok(&desired_with("", &yaml), &with_group(false), &genesys());
        assert_eq!(
            group_grants_of(&plan, "Leads"),
            (
                vec![
                    "Agent @ Home".to_owned(),
                    "Wrap Up @ Field Sales".to_owned()
                ],
                Vec::new()
            )
        );
        let leads = change(&plan, Kind::Group, "Leads").expect("a change");
        assert_eq!(leads.action, Action::Patch);
        let first = leads.edits.first().expect("edits");
        assert!(
            matches!(first, Edit::Set { attr: crate::plan::Attr::RolesEnabled, value } if value.as_bool() == Some(true)),
            "{leads:#?}"
        );
        let new = change(&plan, Kind::Group, "New").expect("a create");
        assert_eq!(new.action, Action::Create);
        assert_eq!(group_grants_of(&plan, "New").0, ["Agent @ Home"]);
        assert!(new.rows().iter().any(|r| r.attribute == "rolesEnabled"));
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);

        // Enabled already: only the grants; under `all` Extra goes.
        let all = desired_with("ownership: {groups: all}\nprune: {groups: none}\n", &yaml);
        let plan = plan_ok(&all, &with_group(true), &genesys());
        assert_eq!(
            group_grants_of(&plan, "Leads"),
            (
                vec![
                    "Agent @ Home".to_owned(),
                    "Wrap Up @ Field Sales".to_owned()
                ],
                vec!["Extra @ Home".to_owned()]
            )
        );
        let leads = change(&plan, Kind::Group, "Leads").expect("a change");
        assert!(
            !leads.edits.iter().any(|e| matches!(e, Edit::Set { .. })),
            "{leads:#?}"
        );

        // Every grant held, but roles switched off by hand (so the members hold nothing):
        // switched back on, and nothing else.
        let held = desired_with(
            "",
            &format!("{ROLES}groups:\n  - displayName: Leads\n    roles: [Extra]\n"),
        );
        let plan = plan_ok(&held, &with_group(false), &genesys());
        let leads = change(&plan, Kind::Group, "Leads").expect("roles switched on");
        assert!(
            matches!(leads.edits.as_slice(), [Edit::Set { attr: crate::plan::Attr::RolesEnabled, value }] if value.as_bool() == Some(true)),
            "{leads:#?}"
        );
        assert!(plan_ok(&held, &with_group(true), &genesys()).is_empty());

        // Converged: nothing to do under listed or all.
        let mut live = with_group(true);
        live.group_grants = Some(
            [(
                "g-leads".to_owned(),
                vec![
                    grant(("r-agent", "Agent"), ("d-home", "Home")),
                    grant(("r-wrap", "Wrap Up"), ("d-field", "Field Sales")),
                ],
            )]
            .into(),
        );
        let only = format!(
            "{ROLES}groups:\n  - displayName: Leads\n    roles: [Agent, {{name: Wrap Up, divisions: [Field Sales]}}]\n"
        );
        let plan = plan_ok(
            &desired_with("ownership: {groups: all}\nprune: {groups: none}\n", &only),
            &live,
            &genesys(),
        );
        assert!(plan.is_empty(), "{plan:#?}");
    }

    // Revoking role grants is as destructive as removing members: past maxDeleteCount and
    // over the share of the managed grants, a group's and a user's revocations are held back
    // in a blocked row of their own, while the grants to add go ahead; --allow-deletes with
    // their number lets them through.
    // A role delete would take the role from every holder, so when a brake holds back the
    // revocation of a grant of that role, the delete is held too (`cascade`): otherwise the
    // held row would promise a grant the apply took away with the role.
    #[test]
    fn a_role_whose_revocation_is_held_is_not_deleted() {
        let yaml = "roles:\n  - name: Agent\n  - name: Wrap Up\n  - name: Coach\n  - name: Lead\n\
                    groups:\n  - displayName: Leads\n    roles: []\n";
        let config = "ownership: {groups: all, roles: all}\nprune: {groups: none}\n\
                      safety: {maxDeleteCount: 2, maxDeletePercent: 50}\n";
        // Three grants of Extra to revoke (beyond the brakes); one role of three to delete
        // (within them).
        let mut live = with_group(true);
        live.group_grants = Some(
            [(
                "g-leads".to_owned(),
                [
                    ("d-home", "Home"),
                    ("d-old", "Old"),
                    ("d-field", "Field Sales"),
                ]
                .map(|d| grant(("r-extra", "Extra"), d))
                .to_vec(),
            )]
            .into(),
        );
        let plan = plan_ok(&desired_with(config, yaml), &live, &genesys());
        let held: Vec<(Kind, &str, Option<crate::plan::Rule>)> = plan
            .changes
            .iter()
            .filter(|c| c.blocked.is_some())
            .map(|c| (c.kind, c.key.as_str(), c.held_by))
            .collect();
        assert!(
            held.contains(&(Kind::Group, "Leads", Some(crate::plan::Rule::Threshold)))
                && held.contains(&(Kind::Role, "Extra", Some(crate::plan::Rule::Cascade))),
            "{plan:#?}"
        );
        let extra = change(&plan, Kind::Role, "Extra").expect("the delete");
        assert!(
            extra
                .blocked
                .as_deref()
                .is_some_and(|b| b.contains("take it from Leads")),
            "{extra:#?}"
        );
    }

    #[test]
    fn grant_revocations_have_a_brake() {
        let mut live = with_group(true);
        let held = [
            grant(("r-extra", "Extra"), ("d-home", "Home")),
            grant(("r-extra", "Extra"), ("d-old", "Old")),
            grant(("r-extra", "Extra"), ("d-field", "Field Sales")),
            grant(("r-wrap", "Wrap Up"), ("d-old", "Old")),
            grant(("r-wrap", "Wrap Up"), ("d-field", "Field Sales")),
        ];
        live.group_grants = Some([("g-leads".to_owned(), held.to_vec())].into());
        let yaml = format!(
            "{ROLES}groups:\n  - displayName: Leads\n    roles: [Agent]\nusers:\n  - userName: a@x.example\n    roles: [Agent]\n"
        );
        let config = "ownership: {groups: all, users: all}\nprune: {groups: none}\n\
                      safety: {maxDeleteCount: 2, maxDeletePercent: 10}\n";
        let desired = desired_with(config, &yaml);
        let plan = plan_ok(&desired, &live, &genesys());
        let revoked = |blocked: bool| -> Vec<String> {
            let mut out: Vec<String> = plan
                .changes
                .iter()
                .filter(|c| c.blocked.is_some() == blocked)
                .flat_map(|c| c.edits.iter())
                .filter_map(|e| match e {
                    Edit::Grants { remove, .. } => Some(remove),
                    _ => None,
                })
                .flatten()
                .map(GrantRef::label)
                .collect();
            out.sort();
            out
        };
        // The group's five, of eight managed grants (the user's three count as managed but
        // stay: user roles are additive by default).
        assert_eq!(revoked(true).len(), 5, "{plan:#?}");
        assert!(revoked(false).is_empty(), "{plan:#?}");
        let reason = plan
            .changes
            .iter()
            .find_map(|c| c.blocked.as_deref())
            .expect("a blocked row");
        assert!(
            reason.contains("5 of 8 managed role grants to revoke")
                && reason.ends_with("pass --allow-deletes 5"),
            "{reason}"
        );
        // The grants to add are not held back with them.
        assert_eq!(group_grants_of(&plan, "Leads").0, ["Agent @ Home"]);
        let blocked_rows: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.blocked.is_some())
            .collect();
        assert!(
            blocked_rows
                .iter()
                .all(|c| c.rows().iter().all(|r| r.added.is_empty())),
            "{blocked_rows:#?}"
        );

        let lifted = plan_ok(
            &desired,
            &live,
            &PlanOptions {
                allow_deletes: Some(5),
                ..genesys()
            },
        );
        assert_eq!(lifted.summary().blocked, 0, "{lifted:#?}");
    }

    // Plain SCIM: the group's roles are not compared and one warning says so.
    #[test]
    fn group_roles_on_plain_scim_warn_once() {
        let yaml = format!(
            "{ROLES}groups:\n  - displayName: Leads\n    rolesEnabled: true\n    roles: [Agent]\n  - displayName: Other\n    roles: [Coach]\n"
        );
        let live =
            crate::plan::tests::snapshot(&[], &[json!({"id": "g-leads", "displayName": "Leads"})]);
        let plan = plan_ok(&desired_with("", &yaml), &live, &PlanOptions::default());
        assert!(change(&plan, Kind::Group, "Leads").is_none(), "{plan:#?}");
        let other = change(&plan, Kind::Group, "Other").expect("a create");
        assert!(!other.edits.iter().any(|e| matches!(
            e,
            Edit::Grants { .. }
                | Edit::Set {
                    attr: crate::plan::Attr::RolesEnabled,
                    ..
                }
        )));
        assert_eq!(plan.warnings.len(), 1, "{:#?}", plan.warnings);
        assert!(
            plan.warnings[0]
                .message
                .contains("`roles` is set on 2 group(s)"),
            "{:#?}",
            plan.warnings
        );
    }

    // Without divisions (plain SCIM) or without the user's grants read, roles stay managed
    // by name with the old warning; only users with a role limited to divisions are read.
    #[test]
    fn falls_back_to_names_and_reads_only_whom_it_needs() {
        let yaml = user("[{name: Wrap Up, divisions: [Field Sales]}]");
        let desired = desired_with("", &yaml);
        let mut live = tenant(&["Agent"]);
        live.users.push(crate::plan::tests::live_user(
            &json!({"id": "u-b", "userName": "b@x.example"}),
        ));
        assert_eq!(grant_subjects(&desired, &live), ["u-a"]);
        live.grants = None;
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(grants_of(&plan, "a@x.example"), (Vec::new(), Vec::new()));
        assert_eq!(scim_role_edits(&plan, "a@x.example").len(), 1);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.message.contains("managed by name only on a SCIM target")),
            "{:#?}",
            plan.warnings
        );
        live.divisions = None;
        assert!(grant_subjects(&desired, &live).is_empty());
    }
}
