//! Safety brakes (docs/contract.md §4): destructive changes above the configured share or count of
//! the managed set, pruning everything because desired state is empty, removing the last
//! active holder of an admin role, and touching the account scimctl runs as. Blocked changes
//! stay in the plan as rows with the reason; `--allow-deletes N` lifts the threshold brake
//! when N is exactly the number of destructive changes.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::desired::DesiredState;
use crate::model::OwnershipMode;
use crate::model::tenant::{Resource, Snapshot};

use super::{Action, Attr, Edit, Kind, Multi, Plan, PlanError, PlanOptions, Rule};

pub(super) fn apply_brakes(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    protected_guard(desired, live, plan);
    actor_guard(desired, live, plan, options)?;
    empty_guard(desired, plan);
    admin_role_guard(desired, plan);
    last_admin_guard(desired, live, plan)?;
    threshold(desired, live, plan, options)?;
    cascade(plan);
    keep_roles_of_held_removals(plan);
    Ok(())
}

fn block(change: &mut super::Change, rule: Rule, reason: String) {
    if change.blocked.is_none() {
        change.blocked = Some(reason);
        change.held_by = Some(rule);
    }
}

/// `protected` principals are never changed. The planner never proposes a change to one; this
/// holds back any that reaches the applier by another road (a saved plan edited by hand, a
/// change assembled for one user).
fn protected_guard(desired: &DesiredState, live: &Snapshot, plan: &mut Plan) {
    let protected = &desired.config.protected;
    if protected.users.is_empty() && protected.groups.is_empty() {
        return;
    }
    let names = |list: &[crate::model::Spanned<String>]| -> HashSet<String> {
        list.iter().map(|p| p.value.to_lowercase()).collect()
    };
    let (users, groups) = (names(&protected.users), names(&protected.groups));
    // The live name of each changed object too: a change keyed by a new name (a rename) or
    // by an id still writes the protected principal.
    let touched: HashSet<&str> = plan
        .changes
        .iter()
        .filter_map(|c| c.id.as_deref())
        .collect();
    let mut live_names: HashMap<(Kind, &str), String> = HashMap::new();
    for u in live
        .users
        .iter()
        .filter(|u| u.id().is_some_and(|id| touched.contains(id)))
    {
        live_names.insert(
            (Kind::User, u.id().unwrap_or_default()),
            u.natural_key().to_lowercase(),
        );
    }
    for g in live
        .groups
        .iter()
        .filter(|g| g.id().is_some_and(|id| touched.contains(id)))
    {
        live_names.insert(
            (Kind::Group, g.id().unwrap_or_default()),
            g.natural_key().to_lowercase(),
        );
    }
    // Creates are allowed: `protected` keeps scimctl's hands off a principal that exists; the
    // planner creates a protected user the YAML names and the tenant lacks, as before. A
    // restore is such a create (the user is gone from the tenant but for its email), and
    // holding it back would leave what refers to the user dangling.
    for c in plan.changes.iter_mut().filter(|c| !c.action.brings_in()) {
        let set = match c.kind {
            Kind::User => &users,
            Kind::Group => &groups,
            Kind::Role => continue,
        };
        let live_name = c.id.as_deref().and_then(|id| live_names.get(&(c.kind, id)));
        if set.contains(&c.key.to_lowercase()) || live_name.is_some_and(|n| set.contains(n)) {
            block(
                c,
                Rule::Protected,
                format!(
                    "{} {:?} is protected (scimctl.yaml `protected`): scimctl never changes it",
                    c.kind, c.key
                ),
            );
        }
    }
}

/// The account scimctl runs as (`safety.runsAs`, or the user `GET /Me` names) is never
/// deactivated, deleted or stripped of an admin role it holds: scimctl would lock itself out
/// of the tenant halfway through a run. Matched by name and by live id, so a change keyed by a
/// new name (a rename) is caught too. Its other edits go ahead: of a change that also takes
/// an admin role, only that removal is held back, in a row of its own.
fn actor_guard(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    if options.actors.is_empty() {
        return Ok(());
    }
    let actors: HashSet<String> = options.actors.iter().map(|a| a.to_lowercase()).collect();
    let admin = admin_roles(desired);
    // Each actor's live id, name and the admin roles it holds now.
    let mut held: HashMap<&str, (String, Vec<String>)> = HashMap::new();
    for l in &live.users {
        let name = l.natural_key().to_lowercase();
        let Some(id) = l.id().filter(|_| actors.contains(&name)) else {
            continue;
        };
        let user = l.parse().map_err(|e| PlanError::Live {
            kind: Kind::User,
            id: id.to_owned(),
            error: e.to_string(),
        })?;
        let roles = user
            .roles
            .iter()
            .map(|r| r.value.to_lowercase())
            .filter(|r| admin.contains(r))
            .collect();
        held.insert(id, (l.natural_key().to_owned(), roles));
    }
    // A create or a restore is not the account that runs scimctl: that one exists and is not
    // deleted (a deleted user cannot sign in). Its deactivation or delete is held back whole.
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.kind == Kind::User && !c.action.brings_in())
    {
        let by_id = c.id.as_deref().and_then(|id| held.get(id));
        let name = by_id.map_or(c.key.as_str(), |(name, _)| name.as_str());
        if (by_id.is_some() || actors.contains(&c.key.to_lowercase()))
            && (c.action.is_destructive() || !active_after(c, true))
        {
            let why = format!(
                "{name} is the account scimctl runs as; it is never deactivated or deleted"
            );
            block(c, Rule::Actor, why);
        }
    }
    // Of any other change, only the removal of an admin role it holds.
    let roles_of = |c: &super::Change| {
        c.id.as_deref()
            .filter(|_| c.kind == Kind::User && !c.action.brings_in())
            .and_then(|id| held.get(id))
    };
    hold_removals(
        plan,
        Rule::Actor,
        |c, taken| {
            // Only an actor's edits are picked, so `roles_of` always finds it here.
            let (name, role) = roles_of(c).map_or((c.key.as_str(), ""), |(name, roles)| {
                let role = roles
                    .iter()
                    .find(|r| taken.iter().any(|e| edit_takes_role(e, r)))
                    .map_or("", String::as_str);
                (name.as_str(), role)
            });
            format!(
                "{name} is the account scimctl runs as; it keeps admin role {role:?} \
                 (policy.adminRoles), or scimctl would lock itself out"
            )
        },
        |c, e| {
            let (_, roles) = roles_of(c)?;
            roles
                .iter()
                .any(|r| edit_takes_role(e, r))
                .then(|| e.clone())
        },
    );
    Ok(())
}

fn empty_guard(desired: &DesiredState, plan: &mut Plan) {
    for (kind, empty) in [
        (Kind::User, desired.users.is_empty()),
        (Kind::Group, desired.groups.is_empty()),
        (Kind::Role, desired.roles.is_empty()),
    ] {
        if !empty {
            continue;
        }
        let prunes = plan
            .changes
            .iter()
            .filter(|c| c.kind == kind && c.action.is_destructive())
            .count();
        for c in plan
            .changes
            .iter_mut()
            .filter(|c| c.kind == kind && c.action.is_destructive())
        {
            block(
                c,
                Rule::EmptyDesiredState,
                format!(
                    "desired state lists no {kind}s: refusing to prune all {prunes} live {kind}s \
                     (an empty or misplaced directory looks the same)"
                ),
            );
        }
    }
}

/// A role named in `policy.adminRoles` is never deleted, whatever ownership says.
fn admin_role_guard(desired: &DesiredState, plan: &mut Plan) {
    let admin = &desired.config.policy.admin_roles;
    for c in &mut plan.changes {
        if c.kind == Kind::Role
            && c.action.is_destructive()
            && admin.iter().any(|r| r.value.eq_ignore_ascii_case(&c.key))
        {
            block(
                c,
                Rule::AdminRole,
                format!(
                    "{:?} is an admin role (policy.adminRoles): it is never deleted",
                    c.key
                ),
            );
        }
    }
}

/// Whether a change takes admin role `role` away from its user: removes it by name or (were
/// roles ever replaced as a whole) leaves it out.
fn takes_role(change: &super::Change, role: &str) -> bool {
    change.kind == Kind::User && change.edits.iter().any(|e| edit_takes_role(e, role))
}

/// Whether a user's edit takes role `role` away: `takes_role` for one edit.
fn edit_takes_role(edit: &Edit, role: &str) -> bool {
    let named = |v: &super::Complex| {
        v.get("value")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(role))
    };
    match edit {
        Edit::Remove {
            attr: Multi::Roles,
            key,
        } => key.equals.eq_ignore_ascii_case(role),
        Edit::ReplaceAll {
            attr: Multi::Roles,
            values,
        } => !values.iter().any(named),
        _ => false,
    }
}

/// Whether the user a change writes is active once it is applied: as the change sets it, else
/// as it was (`active_now`; a create without `active` makes an active account).
fn active_after(change: &super::Change, active_now: bool) -> bool {
    change
        .edits
        .iter()
        .find_map(|e| match e {
            Edit::Set {
                attr: Attr::Active,
                value,
            } => value.as_bool(),
            _ => None,
        })
        .unwrap_or(active_now)
}

/// Whether a change gives its user role `role`.
fn grants_role(change: &super::Change, role: &str) -> bool {
    change.kind == Kind::User
        && change.edits.iter().any(|e| match e {
            Edit::Add {
                attr: Multi::Roles,
                values,
            }
            | Edit::ReplaceAll {
                attr: Multi::Roles,
                values,
            } => values.iter().any(|v| {
                v.get("value")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(role))
            }),
            _ => false,
        })
}

/// The `policy.adminRoles` names, lower-cased; ordered, so that a change held back for two
/// roles always names the same one.
fn admin_roles(desired: &DesiredState) -> BTreeSet<String> {
    desired
        .config
        .policy
        .admin_roles
        .iter()
        .map(|r| r.value.to_lowercase())
        .collect()
}

/// Each `policy.adminRoles` role keeps an active holder (directly or through a group): a
/// holder's deactivation or delete, or the delete of a group that grants it to them, is held
/// back whole; of other changes, only the edits that take the role (a role removal, a
/// membership, a group's grant), in a row of their own.
fn last_admin_guard(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let admin = admin_roles(desired);
    if admin.is_empty() {
        return Ok(());
    }
    let through = admin_groups(&admin, live);
    let losing = plan.changes.iter().any(|c| match c.kind {
        Kind::User => {
            c.id.is_some() && (c.action.is_destructive() || admin.iter().any(|r| takes_role(c, r)))
        }
        Kind::Group => {
            c.id.as_deref()
                .is_some_and(|id| through.iter().any(|g| g.id == id))
        }
        Kind::Role => false,
    });
    if !losing {
        return Ok(());
    }
    // Every live user's id, whether active, and roles (read here, but only when the plan
    // takes something from someone).
    let mut users = Vec::with_capacity(live.users.len());
    for l in &live.users {
        let user = l.parse().map_err(|e| PlanError::Live {
            kind: Kind::User,
            id: l.id().unwrap_or("?").to_owned(),
            error: e.to_string(),
        })?;
        users.push((
            l.id().unwrap_or_default().to_owned(),
            user.active != Some(false),
            user.roles,
        ));
    }
    // Holding one change back can take away a role another relied on gaining, so this runs
    // until nothing more is held back (each round holds back at least one more change).
    let held = |plan: &Plan| plan.changes.iter().filter(|c| c.blocked.is_some()).count();
    loop {
        let orphaned = orphaned_roles(&admin, &users, &through, plan);
        let before = held(plan);
        for (role, holders) in orphaned {
            let why = format!(
                "would leave admin role {role:?} with no active holder (policy.adminRoles)"
            );
            let holder = |c: &super::Change| {
                c.kind == Kind::User && c.id.as_deref().is_some_and(|id| holders.contains(&id))
            };
            // A live group that grants the role to some of the holders.
            let grants_them = |c: &super::Change| {
                c.kind == Kind::Group
                    && through.iter().any(|g| {
                        c.id.as_deref() == Some(g.id.as_str())
                            && g.roles.contains(&role)
                            && g.members.iter().any(|m| holders.contains(&m.as_str()))
                    })
            };
            // A holder's deactivation or delete, or the delete of such a group, is held back
            // whole.
            for c in plan.changes.iter_mut().filter(|c| c.blocked.is_none()) {
                if (holder(c) && (c.action.is_destructive() || !active_after(c, true)))
                    || (grants_them(c) && c.action.is_destructive())
                {
                    block(c, Rule::LastAdmin, why.clone());
                }
            }
            // Of any other change, only the edits that take the role from a holder: the rest
            // of the change goes ahead.
            hold_removals(
                plan,
                Rule::LastAdmin,
                |_, _| why.clone(),
                |c, e| {
                    if holder(c) {
                        edit_takes_role(e, &role).then(|| e.clone())
                    } else if grants_them(c) {
                        group_edit_takes(e, &role, &holders)
                    } else {
                        None
                    }
                },
            );
        }
        if held(plan) == before {
            return Ok(());
        }
    }
}

/// A live group that grants admin roles (Genesys Cloud, read into
/// [`Snapshot::group_grants`]): its members hold them through it.
struct AdminGroup {
    id: String,
    /// The `policy.adminRoles` it grants, lower-cased.
    roles: BTreeSet<String>,
    /// Its members' ids (users; a group in a group is not followed).
    members: Vec<String>,
}

/// The live groups that grant an admin role, with their members.
fn admin_groups(admin: &BTreeSet<String>, live: &Snapshot) -> Vec<AdminGroup> {
    let Some(grants) = &live.group_grants else {
        return Vec::new();
    };
    let role_name = |g: &crate::model::tenant::Grant| {
        live.roles
            .iter()
            .flatten()
            .find(|r| r.id == g.role_id)
            .map_or_else(|| g.role_name.to_lowercase(), |r| r.name.to_lowercase())
    };
    let mut out = Vec::new();
    for group in &live.groups {
        let Some(id) = group.id() else { continue };
        let roles: BTreeSet<String> = grants
            .get(id)
            .into_iter()
            .flatten()
            .map(role_name)
            .filter(|r| admin.contains(r))
            .collect();
        if roles.is_empty() {
            continue;
        }
        let Ok(parsed) = group.parse() else { continue };
        if parsed.settings.roles_enabled == Some(false) {
            // Genesys grants a group's roles to its members only while roles are enabled on
            // it: with them off, its members hold nothing through it.
            continue;
        }
        out.push(AdminGroup {
            id: id.to_owned(),
            roles,
            members: parsed.members.into_iter().map(|m| m.value).collect(),
        });
    }
    out
}

/// Whether a group change takes admin role `role` from some of `members`: deletes the group,
/// revokes the role's grant, or removes one of them.
fn group_takes(change: &super::Change, role: &str, members: &[&str]) -> bool {
    change.action.is_destructive()
        || change
            .edits
            .iter()
            .any(|e| group_edit_takes(e, role, members).is_some())
}

/// The part of a group's edit that takes admin role `role` from some of `members`: the
/// revocation of the role's grant, the removal of those members, or switching the group's
/// `rolesEnabled` off (which takes every role it grants from every member).
fn group_edit_takes(edit: &Edit, role: &str, members: &[&str]) -> Option<Edit> {
    match edit {
        Edit::Set {
            attr: Attr::RolesEnabled,
            value: super::Scalar::Bool(false),
        } => Some(edit.clone()),
        Edit::Grants { remove, .. } => {
            let taken: Vec<_> = remove
                .iter()
                .filter(|g| g.role.eq_ignore_ascii_case(role))
                .cloned()
                .collect();
            (!taken.is_empty()).then_some(Edit::Grants {
                add: Box::default(),
                remove: taken.into(),
            })
        }
        Edit::RemoveMembers { members: gone } => {
            let taken: Vec<_> = gone
                .iter()
                .filter(|m| m.id.as_deref().is_some_and(|id| members.contains(&id)))
                .cloned()
                .collect();
            (!taken.is_empty()).then_some(Edit::RemoveMembers { members: taken })
        }
        _ => None,
    }
}

/// Whether user `id` still holds `role` through a group once the changes not held back are
/// applied: still a member of a group that still grants it.
fn held_through(id: &str, role: &str, through: &[AdminGroup], plan: &Plan) -> bool {
    through.iter().any(|g| {
        if !g.roles.contains(role) || !g.members.iter().any(|m| m == id) {
            return false;
        }
        let one = [id];
        !plan.changes.iter().any(|c| {
            c.kind == Kind::Group
                && c.blocked.is_none()
                && c.id.as_deref() == Some(g.id.as_str())
                && group_takes(c, role, &one)
        })
    })
}

/// A live user as the last-admin guard sees it: id, whether active, roles.
type Holder = (String, bool, Vec<crate::model::tenant::Reference>);

/// Each admin role that has active holders now (directly or through a group) but would have
/// none once the changes not held back are applied, with those holders' ids.
fn orphaned_roles<'u>(
    admin: &BTreeSet<String>,
    users: &'u [Holder],
    through: &[AdminGroup],
    plan: &Plan,
) -> Vec<(String, Vec<&'u str>)> {
    // The user changes that go ahead, by live id.
    let applied: HashMap<&str, &super::Change> = plan
        .changes
        .iter()
        .filter(|c| c.kind == Kind::User && c.blocked.is_none())
        .filter_map(|c| c.id.as_deref().map(|id| (id, c)))
        .collect();
    let mut out = Vec::new();
    for role in admin {
        let has = |roles: &[crate::model::tenant::Reference]| {
            roles.iter().any(|r| r.value.eq_ignore_ascii_case(role))
        };
        let via_now = |id: &str| {
            through
                .iter()
                .any(|g| g.roles.contains(role) && g.members.iter().any(|m| m == id))
        };
        let holders: Vec<&str> = users
            .iter()
            .filter(|(id, active, roles)| *active && (has(roles) || via_now(id)))
            .map(|(id, _, _)| id.as_str())
            .collect();
        if holders.is_empty() {
            continue;
        }
        // An active account still holds it once the plan is applied: a live user the plan
        // leaves alone, one whose change keeps or grants the role and leaves the account
        // active, one still in a group that still grants it, or a created one.
        let held_after = users.iter().any(|(id, active, roles)| {
            let via = || held_through(id, role, through, plan);
            match applied.get(id.as_str()) {
                None => *active && (has(roles) || via()),
                Some(c) => {
                    c.action != Action::Delete
                        && active_after(c, *active)
                        && ((has(roles) && !takes_role(c, role)) || grants_role(c, role) || via())
                }
            }
        }) || plan.changes.iter().any(|c| {
            c.kind == Kind::User
                && c.action.brings_in()
                && c.blocked.is_none()
                && active_after(c, true)
                && grants_role(c, role)
        });
        if !held_after {
            out.push((role.clone(), holders));
        }
    }
    out
}

/// The number of live objects ownership covers: the managed set the thresholds are a share
/// of.
fn managed(desired: &DesiredState, live: &Snapshot, kind: Kind, plan: &Plan) -> usize {
    let mode = match kind {
        Kind::User => &desired.config.ownership.users.value,
        Kind::Group => &desired.config.ownership.groups.value,
        Kind::Role => &desired.config.ownership.roles.value,
    };
    let total = match kind {
        Kind::User => live.users.len(),
        Kind::Group => live.groups.len(),
        Kind::Role => live.roles.as_ref().map_or(0, Vec::len),
    };
    if *mode == OwnershipMode::All {
        total
    } else {
        // Listed: what desired state names (and is live), plus nothing else; selector: that
        // plus the unmatched objects it selects, which are exactly the prunes.
        {
            let named = match kind {
                Kind::User => desired.users.len(),
                Kind::Group => desired.groups.len(),
                Kind::Role => desired.roles.len(),
            };
            let creates = plan
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.action.brings_in())
                .count();
            let prunes = plan
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.id.is_some() && c.action.is_destructive())
                // A group delete written from YAML is a twin's (diff::twins): a live object
                // beside the one desired state names, so managed like a prune.
                .filter(|c| {
                    matches!(c.source, super::Source::Absent)
                        || (c.kind == Kind::Group && c.action == Action::Delete)
                })
                .count();
            named.saturating_sub(creates) + prunes
        }
    }
    .max(1)
}

fn threshold(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    let safety = &desired.config.safety;
    let max_count = safety.max_delete_count.value as usize;
    let percent = safety.max_delete_percent.value as usize;
    let destructive = plan
        .changes
        .iter()
        .filter(|c| c.action.is_destructive() && c.blocked.is_none())
        .count();
    let mut over = Vec::new();
    for kind in [Kind::User, Kind::Group, Kind::Role] {
        let n = plan
            .changes
            .iter()
            .filter(|c| c.kind == kind && c.action.is_destructive() && c.blocked.is_none())
            .count();
        if n == 0 {
            continue;
        }
        let of = managed(desired, live, kind, plan);
        if n > max_count {
            over.push(format!(
                "{n} {kind}s to deactivate or delete is more than safety.maxDeleteCount ({max_count})"
            ));
        } else if n * 100 > percent * of {
            over.push(format!(
                "{n} of {of} managed {kind}s ({} %) is more than safety.maxDeletePercent ({percent} %)",
                per_mille_text(n, of)
            ));
        }
    }
    // Emptying groups (or stripping roles) while their members stay is as destructive as
    // deactivating the members: removals that do not go with a prune of this plan have a
    // brake of their own, over their own managed set.
    let pruned = pruned_objects(plan, false);
    let mut removals = Vec::new();
    for what in [
        Removal::Members,
        Removal::Roles,
        Removal::Licenses,
        Removal::Grants,
    ] {
        let n = count_removals(plan, what, &pruned);
        // A few removals are everyday edits (someone moves team); the brake holds only when
        // there are both more than maxDeleteCount of them and more than the share.
        if n <= max_count {
            continue;
        }
        let of = managed_assignments(desired, live, plan, what)?;
        if n * 100 > percent * of {
            over.push(format!(
                "{n} of {of} managed {} ({} %) is more than safety.maxDeletePercent ({percent} %)",
                what.noun(),
                per_mille_text(n, of)
            ));
            removals.push((what, n));
        }
    }
    let units = destructive + removals.iter().map(|(_, n)| n).sum::<usize>();
    if over.is_empty() || options.allow_deletes == Some(units) {
        return Ok(());
    }
    let hint = match options.allow_deletes {
        Some(n) => {
            format!("--allow-deletes {n} was given, but this plan has {units} destructive changes")
        }
        None => format!("review them, then pass --allow-deletes {units}"),
    };
    let reason = format!("{}; {hint}", over.join("; "));
    if destructive > 0 && over.len() > removals.len() {
        for c in plan
            .changes
            .iter_mut()
            .filter(|c| c.action.is_destructive())
        {
            block(c, Rule::Threshold, reason.clone());
        }
    }
    for (what, _) in removals {
        let pruned = pruned_objects(plan, false);
        hold_removals(
            plan,
            Rule::Threshold,
            |_, _| reason.clone(),
            |c, e| {
                counted(c, &pruned)
                    .then(|| removal_held(e, what, &pruned))
                    .flatten()
            },
        );
    }
    Ok(())
}

/// Member or role removals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Removal {
    Members,
    Roles,
    /// Genesys Cloud licenses taken from users.
    Licenses,
    /// Genesys Cloud role grants (in divisions) revoked from users and groups.
    Grants,
}

impl Removal {
    fn noun(self) -> &'static str {
        match self {
            Removal::Members => "group memberships to remove",
            Removal::Roles => "role assignments to remove",
            Removal::Licenses => "license assignments to remove",
            Removal::Grants => "role grants to revoke",
        }
    }
}

/// (kind, lower-cased name) and ids of the objects a destructive change of the plan takes
/// away; only the blocked ones with `blocked_only`.
fn pruned_objects(plan: &Plan, blocked_only: bool) -> HashSet<(Kind, String)> {
    let mut out = HashSet::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.action.is_destructive() && (!blocked_only || c.blocked.is_some()))
    {
        out.insert((c.kind, c.key.to_lowercase()));
        if let Some(id) = &c.id {
            out.insert((c.kind, format!("\u{0}id:{id}")));
        }
    }
    out
}

fn is_pruned(pruned: &HashSet<(Kind, String)>, r: &super::Ref) -> bool {
    pruned.contains(&(r.kind, r.name.to_lowercase()))
        || r.id
            .as_ref()
            .is_some_and(|id| pruned.contains(&(r.kind, format!("\u{0}id:{id}"))))
}

/// Of a removal edit, the part that `what` counts and that does not go with a prune.
fn removal_held(edit: &Edit, what: Removal, pruned: &HashSet<(Kind, String)>) -> Option<Edit> {
    match (what, edit) {
        (Removal::Members, Edit::RemoveMembers { members }) => {
            let held: Vec<_> = members
                .iter()
                .filter(|m| !is_pruned(pruned, m))
                .cloned()
                .collect();
            (!held.is_empty()).then_some(Edit::RemoveMembers { members: held })
        }
        (
            Removal::Roles,
            Edit::Remove {
                attr: Multi::Roles, ..
            },
        ) => Some(edit.clone()),
        (Removal::Licenses, Edit::Licenses { remove, .. }) if !remove.is_empty() => {
            Some(Edit::Licenses {
                add: Box::default(),
                remove: remove.clone(),
            })
        }
        (Removal::Grants, Edit::Grants { remove, .. }) if !remove.is_empty() => {
            Some(Edit::Grants {
                add: Box::default(),
                remove: remove.clone(),
            })
        }
        _ => None,
    }
}

/// Whether the removals of change `c` count toward (and are held by) the removal brake: not
/// those of a deactivation or delete, nor of any change to an object the plan prunes; they go
/// with that prune, under the prune brake.
fn counted(c: &super::Change, pruned: &HashSet<(Kind, String)>) -> bool {
    !c.action.is_destructive() && !pruned.contains(&(c.kind, c.key.to_lowercase()))
}

/// How many members or roles the plan's unblocked, non-destructive changes remove, leaving
/// out those that go with a prune.
fn count_removals(plan: &Plan, what: Removal, pruned: &HashSet<(Kind, String)>) -> usize {
    plan.changes
        .iter()
        .filter(|c| c.blocked.is_none() && counted(c, pruned))
        .flat_map(|c| c.edits.iter())
        .filter_map(|e| removal_held(e, what, pruned))
        .map(|e| match e {
            Edit::RemoveMembers { members } => members.len(),
            Edit::Licenses { remove, .. } => remove.len(),
            Edit::Grants { remove, .. } => remove.len(),
            _ => 1,
        })
        .sum()
}

/// The memberships (or role assignments) of the live objects ownership covers.
fn managed_assignments(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &Plan,
    what: Removal,
) -> Result<usize, PlanError> {
    let touched: HashSet<&str> = plan
        .changes
        .iter()
        .filter_map(|c| c.id.as_deref())
        .collect();
    let mut total = 0;
    match what {
        Removal::Members => {
            let all = desired.config.ownership.groups.value == OwnershipMode::All;
            let named: HashSet<String> = desired
                .groups
                .iter()
                .map(|g| g.value.display_name.value.to_lowercase())
                .collect();
            for g in &live.groups {
                let group = g.parse().map_err(|e| PlanError::Live {
                    kind: Kind::Group,
                    id: g.id().unwrap_or("?").to_owned(),
                    error: e.to_string(),
                })?;
                let id = g.id().unwrap_or_default();
                if all || touched.contains(id) || named.contains(&group.display_name.to_lowercase())
                {
                    total += group.members.len();
                }
            }
        }
        Removal::Roles => {
            let all = desired.config.ownership.users.value == OwnershipMode::All;
            let named: HashSet<String> = desired
                .users
                .iter()
                .map(|u| u.value.user_name.value.to_lowercase())
                .collect();
            for u in &live.users {
                let user = u.parse().map_err(|e| PlanError::Live {
                    kind: Kind::User,
                    id: u.id().unwrap_or("?").to_owned(),
                    error: e.to_string(),
                })?;
                let id = u.id().unwrap_or_default();
                if all || touched.contains(id) || named.contains(&user.user_name.to_lowercase()) {
                    total += user.roles.len();
                }
            }
        }
        Removal::Grants => total = managed_grants(desired, live, &touched),
        Removal::Licenses => {
            // The licenses held by the live users desired state names (those whose licenses
            // the plan manages).
            let named: HashSet<String> = desired
                .users
                .iter()
                .filter(|u| u.value.license.is_some())
                .map(|u| u.value.user_name.value.to_lowercase())
                .collect();
            if let Some(licenses) = &live.licenses {
                for u in &live.users {
                    use crate::model::tenant::Resource as _;
                    let id = u.id().unwrap_or_default();
                    if touched.contains(id) || named.contains(&u.natural_key().to_lowercase()) {
                        total += licenses.of(id).len();
                    }
                }
            }
        }
    }
    Ok(total.max(1))
}

/// The live role grants (Genesys Cloud) of the users and groups a plan may change: those
/// desired state names, those the plan touches, and every one of a kind owned `all`.
fn managed_grants(desired: &DesiredState, live: &Snapshot, touched: &HashSet<&str>) -> usize {
    use crate::model::tenant::Resource as _;
    let users_all = desired.config.ownership.users.value == OwnershipMode::All;
    let groups_all = desired.config.ownership.groups.value == OwnershipMode::All;
    let users: HashSet<String> = desired
        .users
        .iter()
        .map(|u| u.value.user_name.value.to_lowercase())
        .collect();
    let groups: HashSet<String> = desired
        .groups
        .iter()
        .map(|g| g.value.display_name.value.to_lowercase())
        .collect();
    let mut total = 0;
    if let Some(grants) = &live.grants {
        for u in &live.users {
            let id = u.id().unwrap_or_default();
            if users_all || touched.contains(id) || users.contains(&u.natural_key().to_lowercase())
            {
                total += grants.get(id).map_or(0, Vec::len);
            }
        }
    }
    if let Some(grants) = &live.group_grants {
        for g in &live.groups {
            let id = g.id().unwrap_or_default();
            if groups_all
                || touched.contains(id)
                || groups.contains(&g.natural_key().to_lowercase())
            {
                total += grants.get(id).map_or(0, Vec::len);
            }
        }
    }
    total
}

/// Holds back, in every change not already blocked, the edits `held` picks out (returning
/// the part to hold): the whole change when nothing else is left, else a row of its own for
/// the same object, blocked with `reason`, beside the rest of the change.
fn hold_removals(
    plan: &mut Plan,
    rule: Rule,
    reason: impl Fn(&super::Change, &[Edit]) -> String,
    held: impl Fn(&super::Change, &Edit) -> Option<Edit>,
) {
    let mut rows = Vec::new();
    for c in plan.changes.iter_mut().filter(|c| c.blocked.is_none()) {
        let picked: Vec<(usize, Edit)> = c
            .edits
            .iter()
            .enumerate()
            .filter_map(|(i, e)| held(c, e).map(|h| (i, h)))
            .collect();
        if picked.is_empty() {
            continue;
        }
        // The edits are split below: the rows stay those the planner built.
        c.rows_mut();
        let mut kept = Vec::with_capacity(c.edits.len());
        let mut taken = Vec::with_capacity(picked.len());
        let mut picked = picked.into_iter().peekable();
        for (i, edit) in std::mem::take(&mut c.edits).into_iter().enumerate() {
            match picked.next_if(|(j, _)| *j == i) {
                Some((_, part)) => {
                    if let Some(rest) = remainder(&edit, &part) {
                        kept.push(rest);
                    }
                    taken.push(part);
                }
                None => kept.push(edit),
            }
        }
        let why = reason(c, &taken);
        if kept.is_empty() {
            c.edits = taken;
            block(c, rule, why);
            continue;
        }
        let (kept_diff, taken_diff) = split_diff(&c.diff, &taken);
        c.edits = kept;
        c.diff = kept_diff;
        let mut row = c.clone();
        row.edits = taken;
        row.diff = taken_diff;
        row.blocked = Some(why);
        row.held_by = Some(rule);
        rows.push(row);
    }
    plan.changes.extend(rows);
}

/// What is left of `edit` once `part` of it is held back.
fn remainder(edit: &Edit, part: &Edit) -> Option<Edit> {
    match (edit, part) {
        (Edit::RemoveMembers { members }, Edit::RemoveMembers { members: held }) => {
            let rest = unheld(members, held);
            (!rest.is_empty()).then_some(Edit::RemoveMembers { members: rest })
        }
        (Edit::Grants { add, remove }, Edit::Grants { remove: held, .. }) => {
            let remove = unheld(remove, held);
            (!add.is_empty() || !remove.is_empty()).then(|| Edit::Grants {
                add: add.clone(),
                remove: remove.into(),
            })
        }
        (Edit::Licenses { add, remove }, Edit::Licenses { remove: held, .. }) => {
            let remove = unheld(remove, held);
            (!add.is_empty() || !remove.is_empty()).then(|| Edit::Licenses {
                add: add.clone(),
                remove: remove.into(),
            })
        }
        _ => None,
    }
}

/// The removals of `all` that are not `held`.
fn unheld<T: Clone + PartialEq>(all: &[T], held: &[T]) -> Vec<T> {
    all.iter().filter(|x| !held.contains(x)).cloned().collect()
}

/// The diff lines of a change split into what stays and what goes with the `taken` edits.
fn split_diff(
    diff: &[super::AttrDiff],
    taken: &[Edit],
) -> (Vec<super::AttrDiff>, Vec<super::AttrDiff>) {
    let mut members = HashSet::new();
    let mut roles = HashSet::new();
    let mut licenses = HashSet::new();
    let mut grants = HashSet::new();
    let mut whole = HashSet::new();
    for e in taken {
        match e {
            Edit::Set { attr, .. } => {
                whole.insert(attr.name());
            }
            Edit::Grants { remove, .. } => {
                grants.extend(remove.iter().map(|g| g.label().to_lowercase()));
            }
            Edit::Licenses { remove, .. } => {
                licenses.extend(remove.iter().map(|l| l.label().to_lowercase()));
            }
            Edit::RemoveMembers { members: m } => {
                members.extend(m.iter().map(|r| r.name.to_lowercase()));
            }
            Edit::Remove {
                attr: Multi::Roles,
                key,
            } => {
                roles.insert(key.equals.to_lowercase());
            }
            _ => {}
        }
    }
    let mut kept = Vec::new();
    let mut went = Vec::new();
    for d in diff {
        if whole.contains(d.attribute.as_str()) {
            went.push(d.clone());
            continue;
        }
        let names = match d
            .attribute
            .split_once('[')
            .map_or(d.attribute.as_str(), |p| p.0)
        {
            "members" => &members,
            "roles" => &roles,
            "license" => &licenses,
            "roleGrants" => &grants,
            _ => {
                kept.push(d.clone());
                continue;
            }
        };
        let (gone, stay): (Vec<String>, Vec<String>) = d
            .removed
            .iter()
            .cloned()
            .partition(|n| names.contains(&n.to_lowercase()));
        if !gone.is_empty() {
            went.push(super::AttrDiff {
                attribute: d.attribute.clone(),
                removed: gone,
                ..super::AttrDiff::default()
            });
        }
        if !stay.is_empty() || !d.added.is_empty() {
            kept.push(super::AttrDiff {
                removed: stay,
                ..d.clone()
            });
        }
    }
    (kept, went)
}

/// Holds back, with each blocked prune, the changes that exist only because of it: removing
/// the user (or group) it would prune from groups. Without this, a plan whose deactivations
/// are blocked would still empty their groups.
fn cascade(plan: &mut Plan) {
    let blocked = pruned_objects(plan, true);
    if blocked.is_empty() {
        return;
    }
    hold_removals(
        plan,
        Rule::Cascade,
        |_, taken| {
            let names: Vec<String> = taken
                .iter()
                .flat_map(|e| match e {
                    Edit::RemoveMembers { members } => members.as_slice(),
                    _ => &[],
                })
                .map(|m| format!("{} {}", m.kind, m.name))
                .collect();
            format!(
                "goes with the blocked deactivation or delete of {}: the membership stays \
                 until that prune is allowed",
                names.join(", ")
            )
        },
        |_, e| {
            let Edit::RemoveMembers { members } = e else {
                return None;
            };
            let held: Vec<_> = members
                .iter()
                .filter(|m| is_pruned(&blocked, m))
                .cloned()
                .collect();
            (!held.is_empty()).then_some(Edit::RemoveMembers { members: held })
        },
    );
}

/// Holds back the delete of a role whose removal from someone is itself held back (a role
/// grant's revocation or a user's role removal, by any rule): deleting the role takes it from
/// everyone who holds it, so it would carry out the very removals a rule kept, and the held
/// row would promise what the apply undid. The role stays until those removals may go.
fn keep_roles_of_held_removals(plan: &mut Plan) {
    let mut kept: HashMap<String, Vec<String>> = HashMap::new();
    for c in plan.changes.iter().filter(|c| c.blocked.is_some()) {
        for e in &c.edits {
            let roles: Vec<&str> = match e {
                Edit::Grants { remove, .. } => remove.iter().map(|g| g.role.as_str()).collect(),
                Edit::Remove {
                    attr: Multi::Roles,
                    key,
                } => vec![key.equals.as_str()],
                _ => Vec::new(),
            };
            for role in roles {
                let holders = kept.entry(role.to_lowercase()).or_default();
                if !holders.contains(&c.key.to_string()) {
                    holders.push(c.key.to_string());
                }
            }
        }
    }
    if kept.is_empty() {
        return;
    }
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.kind == Kind::Role && c.action == Action::Delete && c.blocked.is_none())
    {
        if let Some(holders) = kept.get(&c.key.to_lowercase()) {
            let why = format!(
                "deleting the role would take it from {}, whose removal of it is held back: \
                 the role stays until that removal may go",
                holders.join(", ")
            );
            block(c, Rule::Cascade, why);
        }
    }
}

/// `n / of` as a percentage with one decimal, in integer arithmetic.
fn per_mille_text(n: usize, of: usize) -> String {
    let per_mille = (n * 1000 + of / 2) / of.max(1);
    format!("{}.{}", per_mille / 10, per_mille % 10)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use serde_json::{Value, json};

    use crate::model::tenant::Snapshot;
    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Attr, Edit, Kind, Multi, Plan, PlanOptions, Rule};

    use super::{grants_role, takes_role};

    fn users(names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"id": format!("id-{n}"), "userName": n}))
            .collect()
    }

    /// The rule of each blocked change; every blocked change names one.
    fn rules_of(plan: &Plan) -> Vec<Rule> {
        plan.changes
            .iter()
            .filter(|c| c.blocked.is_some())
            .map(|c| c.held_by.unwrap_or_else(|| panic!("no rule for {c:#?}")))
            .collect()
    }

    fn blocked(plan: &Plan) -> Vec<(&str, &str)> {
        plan.changes
            .iter()
            .filter_map(|c| c.blocked.as_deref().map(|r| (c.key.as_str(), r)))
            .collect()
    }

    fn allowing(n: Option<usize>) -> PlanOptions {
        PlanOptions {
            allow_deletes: n,
            ..PlanOptions::default()
        }
    }

    /// Desired keeps `kept` of the live users; every other live user is pruned (deleted).
    fn prune_all_but(
        config: &str,
        kept: &[&str],
        live: &[&str],
    ) -> (crate::desired::DesiredState, Snapshot) {
        let mut yaml = String::from("users:\n");
        for name in kept {
            yaml.push_str("  - userName: ");
            yaml.push_str(name);
            yaml.push('\n');
        }
        let desired = desired_with(
            &format!("ownership: {{users: all}}\nprune: {{users: delete}}\n{config}"),
            &yaml,
        );
        (desired, snapshot(&users(live), &[]))
    }

    /// `n` live users `u0..` with ids `id-u0..`, all members of one live group `Team`.
    fn team(n: usize) -> Snapshot {
        let names: Vec<String> = (0..n).map(|i| format!("u{i}@x.example")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let members: Vec<Value> = refs
            .iter()
            .map(|n| json!({"value": format!("id-{n}"), "type": "User"}))
            .collect();
        snapshot(
            &users(&refs),
            &[json!({"id": "g-team", "displayName": "Team", "members": members})],
        )
    }

    /// The member names a change removes, by whether it is blocked.
    fn removals(plan: &Plan, blocked: bool) -> Vec<String> {
        let mut out: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.kind == Kind::Group && c.blocked.is_some() == blocked)
            .flat_map(|c| c.edits.iter())
            .filter_map(|e| match e {
                crate::plan::Edit::RemoveMembers { members } => Some(members),
                _ => None,
            })
            .flatten()
            .map(|m| m.name.to_string())
            .collect();
        out.sort();
        out
    }

    // A blocked prune holds back the member removals that exist only because of it: the
    // group keeps the members whose deactivation waits (the watch repro: groups emptied while
    // their members' deactivations were blocked). Lifted, both go ahead together.
    #[test]
    fn member_removals_go_with_blocked_prunes() {
        let live = team(10);
        let desired = desired_with(
            "ownership: {users: all}\nsafety: {maxDeletePercent: 10}\n",
            "users:\n  - userName: u0@x.example\n  - userName: u1@x.example\n\
             groups:\n  - displayName: Team\n    members: [u0@x.example, u1@x.example]\n",
        );
        let plan = plan_ok(&desired, &live, &allowing(None));
        assert_eq!(plan.summary().deactivate, 0, "{plan:#?}");
        assert_eq!(
            plan.summary().blocked,
            9,
            "8 deactivations and one removal row"
        );
        assert!(removals(&plan, false).is_empty(), "{plan:#?}");
        let held: Vec<String> = (2..10).map(|i| format!("u{i}@x.example")).collect();
        assert_eq!(removals(&plan, true), held);
        let row = plan
            .changes
            .iter()
            .find(|c| c.kind == Kind::Group)
            .and_then(|c| c.blocked.as_deref())
            .unwrap();
        assert!(
            row.starts_with("goes with the blocked deactivation or delete of user u2@x.example"),
            "{row}"
        );

        let lifted = plan_ok(&desired, &live, &allowing(Some(8)));
        assert_eq!(lifted.summary().blocked, 0, "{lifted:#?}");
        assert_eq!(removals(&lifted, false), held);
    }

    // A plan that keeps the members but empties their group is as destructive as pruning
    // them: more removals than maxDeleteCount and over the share of managed memberships are
    // held back, in a row of their own, while the group's other edits go ahead.
    #[test]
    fn standalone_member_removals_have_a_brake() {
        let live = team(40);
        let mut yaml = String::from("users:\n");
        for i in 0..40 {
            let _ = writeln!(yaml, "  - userName: u{i}@x.example");
        }
        yaml.push_str("groups:\n  - displayName: Team\n    description: kept small\n    members: [u0@x.example, u1@x.example]\n");
        let desired = desired_with("", &yaml);
        let plan = plan_ok(&desired, &live, &allowing(None));
        assert_eq!(removals(&plan, true).len(), 38, "{plan:#?}");
        assert!(removals(&plan, false).is_empty());
        let reason = plan
            .changes
            .iter()
            .find_map(|c| c.blocked.as_deref())
            .unwrap();
        assert!(
            reason.contains("38 of 40 managed group memberships to remove")
                && reason.ends_with("pass --allow-deletes 38"),
            "{reason}"
        );
        // The description edit is not held back with them.
        let rest = plan
            .changes
            .iter()
            .find(|c| c.kind == Kind::Group && c.blocked.is_none())
            .unwrap();
        assert!(
            rest.diff.iter().any(|d| d.attribute == "description"),
            "{rest:#?}"
        );

        let lifted = plan_ok(&desired, &live, &allowing(Some(38)));
        assert_eq!(lifted.summary().blocked, 0);
        assert_eq!(removals(&lifted, false).len(), 38);

        // A few removals are an everyday edit: no brake.
        let live = team(40);
        let mut yaml = String::from("users:\n");
        for i in 0..40 {
            let _ = writeln!(yaml, "  - userName: u{i}@x.example");
        }
        let members: Vec<String> = (3..40).map(|i| format!("u{i}@x.example")).collect();
        let _ = writeln!(
            yaml,
            "groups:\n  - displayName: Team\n    members: [{}]",
            members.join(", ")
        );
        let plan = plan_ok(&desired_with("", &yaml), &live, &allowing(None));
        assert_eq!(plan.summary().blocked, 0, "{plan:#?}");
        assert_eq!(removals(&plan, false).len(), 3);
    }

    // Changes to protected principals reach no tenant, whatever road they come by: a
    // change assembled by hand (a saved plan edited) is held back when vetted.
    #[test]
    fn protected_principals_are_held_back_when_vetted() {
        let live = snapshot(&users(&["admin@x.example", "a@x.example"]), &[]);
        let desired = desired_with(
            "protected: {users: [Admin@x.example]}\n",
            "users:\n  - userName: a@x.example\n",
        );
        let mut plan = plan_ok(&desired, &live, &allowing(None));
        assert!(plan.changes.is_empty(), "{plan:#?}");
        plan.changes.push(crate::plan::Change {
            action: Action::Deactivate,
            kind: Kind::User,
            key: "someone-else".into(),
            id: Some("id-admin@x.example".into()),
            version: None,
            source: crate::plan::Source::Absent,
            diff: Vec::new(),
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        });
        let vetted = crate::plan::Vetted::new(&desired, &live, plan, &allowing(Some(1))).unwrap();
        let reason = vetted.changes[0].blocked.as_deref().unwrap();
        assert!(reason.contains("is protected"), "{reason}");
        assert_eq!(vetted.changes[0].held_by, Some(Rule::Protected));
    }

    // More destructive changes than maxDeleteCount hold all of them back, with the reason and
    // the exact flag that lifts it; --allow-deletes lifts it only for exactly that number.
    #[test]
    fn count_threshold_and_allow_deletes() {
        let (desired, live) = prune_all_but(
            "safety: {maxDeleteCount: 2, maxDeletePercent: 100}\n",
            &["k@x.example"],
            &["k@x.example", "p@x.example", "q@x.example", "r@x.example"],
        );
        let plan = plan_ok(&desired, &live, &allowing(None));
        let held = blocked(&plan);
        assert_eq!(held.len(), 3, "{plan:#?}");
        assert!(held.iter().all(|(_, r)| *r
            == "3 users to deactivate or delete is more than safety.maxDeleteCount (2); \
                review them, then pass --allow-deletes 3"));
        assert_eq!(plan.summary().blocked, 3);
        assert_eq!(plan.summary().delete, 0);

        let lifted = plan_ok(&desired, &live, &allowing(Some(3)));
        assert!(blocked(&lifted).is_empty(), "{lifted:#?}");
        assert_eq!(lifted.summary().delete, 3);

        for wrong in [2, 4] {
            let plan = plan_ok(&desired, &live, &allowing(Some(wrong)));
            let held = blocked(&plan);
            assert_eq!(held.len(), 3, "--allow-deletes {wrong} must not lift it");
            assert!(
                held[0].1.ends_with(&format!(
                    "--allow-deletes {wrong} was given, but this plan has 3 destructive changes"
                )),
                "{}",
                held[0].1
            );
        }

        // At the count the brake does not hold.
        let (desired, live) = prune_all_but(
            "safety: {maxDeleteCount: 2, maxDeletePercent: 100}\n",
            &["k@x.example"],
            &["k@x.example", "p@x.example", "q@x.example"],
        );
        let plan = plan_ok(&desired, &live, &allowing(None));
        assert!(blocked(&plan).is_empty(), "{plan:#?}");
        assert_eq!(plan.summary().delete, 2);
    }

    // The percentage is of the managed set (with ownership `all`, every live user): exactly
    // the threshold passes, one more is held back.
    #[test]
    fn percent_threshold() {
        let live: Vec<String> = (0..10).map(|i| format!("u{i}@x.example")).collect();
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
        let config = "safety: {maxDeletePercent: 10, maxDeleteCount: 100}\n";
        let (desired, snap) = prune_all_but(config, &live[1..], &live);
        let plan = plan_ok(&desired, &snap, &allowing(None));
        assert!(blocked(&plan).is_empty(), "1 of 10 is 10 %: {plan:#?}");
        assert_eq!(plan.summary().delete, 1);

        let (desired, snap) = prune_all_but(config, &live[2..], &live);
        let plan = plan_ok(&desired, &snap, &allowing(None));
        let held = blocked(&plan);
        assert_eq!(held.len(), 2, "{plan:#?}");
        assert_eq!(rules_of(&plan), vec![Rule::Threshold, Rule::Threshold]);
        assert!(
            held[0].1.starts_with(
                "2 of 10 managed users (20.0 %) is more than safety.maxDeletePercent (10 %)"
            ),
            "{}",
            held[0].1
        );
        assert!(blocked(&plan_ok(&desired, &snap, &allowing(Some(2)))).is_empty());
    }

    // With ownership `listed`, the managed set is what desired state names: a desired user's
    // own deactivation (`active: false`) counts against it.
    #[test]
    fn percent_of_the_listed_set() {
        let desired = desired_with(
            "safety: {maxDeletePercent: 50}\n",
            "users:\n  - userName: a@x.example\n    active: false\n  - userName: b@x.example\n  - userName: c@x.example\n    active: false\n",
        );
        let live = snapshot(&users(&["a@x.example", "b@x.example", "c@x.example"]), &[]);
        let plan = plan_ok(&desired, &live, &allowing(None));
        let held = blocked(&plan);
        assert_eq!(held.len(), 2, "2 of 3 is over 50 %: {plan:#?}");
        assert!(
            held[0].1.starts_with("2 of 3 managed users (66.7 %)"),
            "{}",
            held[0].1
        );
        assert!(plan.changes.iter().all(|c| c.action == Action::Deactivate));
    }

    // Desired state without users never prunes every live user, and --allow-deletes does not
    // lift that: an empty or misplaced directory looks the same as a deliberate purge.
    #[test]
    fn empty_desired_never_prunes_everything() {
        let desired = desired_with(
            "ownership: {users: all, groups: all}\nsafety: {maxDeletePercent: 100, maxDeleteCount: 100}\n",
            "groups:\n  - displayName: Kept\n",
        );
        let live = snapshot(
            &users(&["a@x.example", "b@x.example"]),
            &[
                json!({"id": "g1", "displayName": "Kept"}),
                json!({"id": "g2", "displayName": "Gone"}),
            ],
        );
        for allow in [None, Some(2), Some(3)] {
            let plan = plan_ok(&desired, &live, &allowing(allow));
            let held = blocked(&plan);
            assert_eq!(held.len(), 2, "{plan:#?}");
            assert_eq!(rules_of(&plan), vec![Rule::EmptyDesiredState; 2]);
            assert!(held.iter().all(|(k, r)| k.ends_with("@x.example")
                && r.starts_with(
                    "desired state lists no users: refusing to prune all 2 live users"
                )));
            let gone = change(&plan, Kind::Group, "Gone").expect("groups are listed, so pruned");
            assert_eq!(
                (gone.action, gone.blocked.as_deref()),
                (Action::Delete, None)
            );
        }
    }

    const ADMIN: &str = "roles:\n  - name: Admin\n  - name: Agent\n";

    fn admin_config(extra: &str) -> String {
        format!(
            "ownership: {{users: all}}\npolicy: {{adminRoles: [admin]}}\nsafety: {{maxDeletePercent: 100}}\n{extra}"
        )
    }

    /// Root and bob, and group Admins (of `members`) holding a `PC_GROUP` grant of Admin.
    fn admins_group_tenant(members: &[&str]) -> Snapshot {
        let members: Vec<Value> = members
            .iter()
            .map(|m| json!({"value": m, "type": "User"}))
            .collect();
        let mut live = snapshot(
            &[
                json!({"id": "r", "userName": "root@x.example"}),
                json!({"id": "b", "userName": "bob@x.example"}),
            ],
            &[json!({"id": "g", "displayName": "Admins", "members": members})],
        );
        live.group_grants = Some(
            [(
                "g".to_owned(),
                vec![crate::model::tenant::Grant {
                    role_id: "r-admin".into(),
                    role_name: "Admin".into(),
                    division_id: "d-home".into(),
                    division_name: "Home".into(),
                }],
            )]
            .into(),
        );
        live
    }

    // An admin who holds the role only through a group (a `PC_GROUP` grant, Genesys Cloud)
    // counts: with no other holder, removing them from the group, deactivating them, or
    // deleting the group is held back; a second member of the group releases the removal.
    #[test]
    fn last_admin_through_a_group_is_kept() {
        let tenant = admins_group_tenant;
        let config = "ownership: {users: listed, groups: all}\npolicy: {adminRoles: [admin]}\nsafety: {maxDeletePercent: 100}\n";
        let users = "users:\n  - userName: root@x.example\n  - userName: bob@x.example\n";
        // Admins is emptied of root, the only holder: held back.
        let desired = desired_with(
            config,
            &format!("{ADMIN}{users}groups:\n  - displayName: Admins\n    members: []\n"),
        );
        let plan = plan_ok(&desired, &tenant(&["r"]), &allowing(None));
        assert_eq!(
            blocked(&plan),
            vec![(
                "Admins",
                r#"would leave admin role "admin" with no active holder (policy.adminRoles)"#
            )],
            "{plan:#?}"
        );
        // Bob is in the group too: root may go.
        let desired = desired_with(
            config,
            &format!(
                "{ADMIN}{users}groups:\n  - displayName: Admins\n    members: [bob@x.example]\n"
            ),
        );
        let plan = plan_ok(&desired, &tenant(&["r", "b"]), &allowing(None));
        assert!(blocked(&plan).is_empty(), "{plan:#?}");
        let admins = change(&plan, Kind::Group, "Admins").expect("root leaves the group");
        assert!(admins.blocked.is_none());
        // Root absent from YAML (ownership users: all): the deactivation is held back, as for
        // a direct holder.
        let config = admin_config("");
        let desired = desired_with(
            &config,
            &format!("{ADMIN}users:\n  - userName: bob@x.example\n"),
        );
        let plan = plan_ok(&desired, &tenant(&["r"]), &allowing(None));
        assert_eq!(
            blocked(&plan).first().map(|(k, _)| *k),
            Some("root@x.example"),
            "{plan:#?}"
        );
    }

    // On Genesys Cloud, switching the group's rolesEnabled off takes the role from every
    // member: held back in a row of its own, while the group's other edits go ahead. And a
    // group whose roles are off grants nothing, so its members are not holders.
    #[test]
    fn a_group_whose_roles_go_off_takes_the_admin_role() {
        let tenant = admins_group_tenant;
        let users = "users:\n  - userName: root@x.example\n  - userName: bob@x.example\n";
        let genesys = PlanOptions {
            target: crate::plan::tests::genesys_target(),
            ..allowing(None)
        };
        let config = "ownership: {users: listed, groups: listed}\npolicy: {adminRoles: [admin]}\n";
        let desired = desired_with(
            config,
            &format!(
                "{ADMIN}{users}groups:\n  - displayName: Admins\n    rolesEnabled: false\n    visibility: members\n"
            ),
        );
        let mut live = tenant(&["r"]);
        live.groups[0] = crate::plan::tests::live_group(&json!({
            "id": "g", "displayName": "Admins", "members": [{"value": "r", "type": "User"}],
            "rolesEnabled": true, "visibility": "public"}));
        let plan = plan_ok(&desired, &live, &genesys);
        let rows: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.key.as_str() == "Admins")
            .map(|c| {
                let attrs: Vec<&str> = c.edits.iter().map(Edit::attribute).collect();
                (c.blocked.is_some(), attrs)
            })
            .collect();
        assert!(
            rows.contains(&(true, vec!["rolesEnabled"]))
                && rows.contains(&(false, vec!["visibility"])),
            "{plan:#?}"
        );
        // A group whose roles are off grants nothing: root's deactivation is held, the group's
        // grant notwithstanding (ownership users: all drops root).
        let mut live = tenant(&["r", "b"]);
        live.users.push(crate::plan::tests::live_user(
            &json!({"id": "c", "userName": "cy@x.example", "roles": [{"value": "Admin"}]}),
        ));
        live.groups[0] = crate::plan::tests::live_group(&json!({
            "id": "g", "displayName": "Admins",
            "members": [{"value": "b", "type": "User"}], "rolesEnabled": false}));
        let desired = desired_with(
            &admin_config(""),
            &format!("{ADMIN}users:\n  - userName: bob@x.example\n  - userName: root@x.example\n"),
        );
        let plan = plan_ok(&desired, &live, &genesys);
        assert_eq!(
            blocked(&plan).first().map(|(k, _)| *k),
            Some("cy@x.example"),
            "bob holds nothing through a group with roles off: {plan:#?}"
        );
    }

    // The last active holder of a `policy.adminRoles` role is neither deactivated nor stripped
    // of the role; a second active holder, or a holder gained in the same plan, releases it.
    #[test]
    fn last_admin_is_kept() {
        let live = snapshot(
            &[
                json!({"id": "r", "userName": "root@x.example", "roles": [{"value": "Admin"}]}),
                json!({"id": "i", "userName": "idle@x.example", "active": false, "roles": [{"value": "Admin"}]}),
                json!({"id": "a", "userName": "agent@x.example"}),
            ],
            &[],
        );
        // root is absent from desired state: its deactivation is held back.
        let desired = desired_with(
            &admin_config(""),
            &format!(
                "{ADMIN}users:\n  - userName: agent@x.example\n  - userName: idle@x.example\n"
            ),
        );
        let plan = plan_ok(&desired, &live, &allowing(None));
        let held = blocked(&plan);
        assert_eq!(
            held,
            vec![(
                "root@x.example",
                r#"would leave admin role "admin" with no active holder (policy.adminRoles)"#
            )],
            "an inactive holder does not count: {plan:#?}"
        );
        // With authoritative roles, taking the role away is held back the same way.
        let desired = desired_with(
            &admin_config("collections: {userRoles: authoritative}\n"),
            &format!(
                "{ADMIN}users:\n  - userName: root@x.example\n    roles: [Agent]\n  - userName: agent@x.example\n  - userName: idle@x.example\n"
            ),
        );
        // Only the removal is held back, in a row of its own: root gains Agent.
        let root_held = |plan: &Plan| !rows_of(plan, "root@x.example").0.is_empty();
        let plan = plan_ok(&desired, &live, &allowing(None));
        let (held, gains) = rows_of(&plan, "root@x.example");
        let root = held.first().expect("root's removal is held back");
        assert_eq!(root.action, Action::Patch);
        assert!(
            root.blocked
                .as_deref()
                .is_some_and(|r| r.contains("no active holder")),
            "{root:#?}"
        );
        assert!(takes_role(root, "admin") && !grants_role(root, "agent"));
        assert!(grants_role(gains, "agent"), "{plan:#?}");
        // --allow-deletes is about counts; it does not release this.
        let plan = plan_ok(&desired, &live, &allowing(Some(0)));
        assert!(root_held(&plan));
        // Someone else gains the role in the same plan: nothing is held back.
        let desired = desired_with(
            &admin_config("collections: {userRoles: authoritative}\n"),
            &format!(
                "{ADMIN}users:\n  - userName: root@x.example\n    roles: [Agent]\n  - userName: agent@x.example\n    roles: [Admin]\n  - userName: idle@x.example\n"
            ),
        );
        assert!(blocked(&plan_ok(&desired, &live, &allowing(None))).is_empty());
        // A role gained by an account that stays inactive, or is created inactive, is no
        // active holder: the last one is still held back.
        let desired = desired_with(
            &admin_config("collections: {userRoles: authoritative}\n"),
            &format!(
                "{ADMIN}users:\n  - userName: root@x.example\n    roles: [Agent]\n  - userName: idle@x.example\n    roles: [Admin]\n  - userName: new@x.example\n    active: false\n    roles: [Admin]\n  - userName: agent@x.example\n"
            ),
        );
        let plan = plan_ok(&desired, &live, &allowing(None));
        assert!(root_held(&plan), "{plan:#?}");
        // Gained by an inactive account that the same plan activates: released.
        let desired = desired_with(
            &admin_config("collections: {userRoles: authoritative}\n"),
            &format!(
                "{ADMIN}users:\n  - userName: root@x.example\n    roles: [Agent]\n  - userName: idle@x.example\n    active: true\n    roles: [Admin]\n  - userName: agent@x.example\n"
            ),
        );
        assert!(blocked(&plan_ok(&desired, &live, &allowing(None))).is_empty());
        // Another active holder stays: nothing is held back either.
        let two = snapshot(
            &[
                json!({"id": "r", "userName": "root@x.example", "roles": [{"value": "Admin"}]}),
                json!({"id": "s", "userName": "second@x.example", "roles": [{"value": "admin"}]}),
            ],
            &[],
        );
        let desired = desired_with(
            &admin_config(""),
            &format!("{ADMIN}users:\n  - userName: second@x.example\n"),
        );
        let plan = plan_ok(&desired, &two, &allowing(None));
        assert!(blocked(&plan).is_empty(), "{plan:#?}");
        assert_eq!(plan.summary().deactivate, 1);
    }

    // Each admin role is guarded on its own: a user who holds two and loses both is held
    // back when they are the last holder of the second, even though the first has others.
    #[test]
    fn last_holder_of_each_admin_role() {
        let config = "ownership: {users: listed}\npolicy: {adminRoles: [Admin, Security]}\ncollections: {userRoles: authoritative}\n";
        let resources = "roles:\n  - name: Admin\n  - name: Security\n  - name: Agent\nusers:\n  - userName: x@x.example\n    roles: [Agent]\n";
        let live = snapshot(
            &[
                json!({"id": "x", "userName": "x@x.example",
                       "roles": [{"value": "Admin"}, {"value": "Security"}]}),
                json!({"id": "y", "userName": "y@x.example", "roles": [{"value": "Admin"}]}),
            ],
            &[],
        );
        let plan = plan_ok(&desired_with(config, resources), &live, &allowing(None));
        assert_eq!(
            blocked(&plan),
            vec![(
                "x@x.example",
                r#"would leave admin role "security" with no active holder (policy.adminRoles)"#
            )],
            "{plan:#?}"
        );
    }

    // The removal brake counts neither the removals of a deactivation nor those of an
    // object the plan prunes, and so holds none of them: a's role goes with its (allowed)
    // deactivation, while b's two removals are over the brake and held.
    #[test]
    fn removals_that_go_with_an_allowed_deactivation_are_not_held() {
        let config = "ownership: {users: listed}\ncollections: {userRoles: authoritative}\nsafety: {maxDeleteCount: 1, maxDeletePercent: 50}\n";
        let resources = "roles:\n  - name: X\n  - name: Y\nusers:\n  - userName: a@x.example\n    active: false\n    roles: []\n  - userName: b@x.example\n    roles: []\n  - userName: c@x.example\n  - userName: d@x.example\n";
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example", "roles": [{"value": "X"}]}),
                json!({"id": "b", "userName": "b@x.example", "roles": [{"value": "X"}, {"value": "Y"}]}),
                json!({"id": "c", "userName": "c@x.example"}),
                json!({"id": "d", "userName": "d@x.example"}),
            ],
            &[],
        );
        let plan = plan_ok(&desired_with(config, resources), &live, &allowing(None));
        let a: Vec<_> = plan
            .changes
            .iter()
            .filter(|c| c.key == "a@x.example")
            .collect();
        assert_eq!(a.len(), 1, "{plan:#?}");
        assert_eq!(
            (a[0].action, a[0].blocked.is_none()),
            (Action::Deactivate, true)
        );
        assert!(takes_role(a[0], "x"), "{plan:#?}");
        let held = blocked(&plan);
        assert_eq!(held.len(), 1, "{plan:#?}");
        assert_eq!(held[0].0, "b@x.example");
        assert!(
            held[0].1.contains("2 of 3 managed role assignments"),
            "{plan:#?}"
        );
    }

    // Only what takes the role is held back: b gives up Admin, whose only holder it is (held
    // back in a row of its own), and takes over Supervisor from a. That gain goes ahead, so
    // a, the other Supervisor, may be deactivated; and b's title changes.
    #[test]
    fn a_change_held_back_in_part_keeps_the_rest() {
        let config = "policy: {adminRoles: [Admin, Supervisor]}\ncollections: {userRoles: authoritative}\nsafety: {maxDeletePercent: 100}\n";
        let resources = "roles:\n  - name: Admin\n  - name: Supervisor\nusers:\n  - userName: a@x.example\n    active: false\n  - userName: b@x.example\n    title: Lead\n    roles: [Supervisor]\n";
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example", "roles": [{"value": "Supervisor"}]}),
                json!({"id": "b", "userName": "b@x.example", "roles": [{"value": "Admin"}]}),
            ],
            &[],
        );
        let plan = plan_ok(&desired_with(config, resources), &live, &allowing(None));
        assert_eq!(
            blocked(&plan),
            vec![(
                "b@x.example",
                r#"would leave admin role "admin" with no active holder (policy.adminRoles)"#
            )],
            "{plan:#?}"
        );
        let (held, free) = rows_of(&plan, "b@x.example");
        assert!(matches!(
            held[0].edits.as_slice(),
            [Edit::Remove { attr: Multi::Roles, key }] if key.equals == "Admin"
        ));
        // The held row shows only its own line of the diff; the rest keeps the others.
        let lines: Vec<String> = held[0].rows().iter().map(|d| d.attribute.clone()).collect();
        assert_eq!(lines, ["roles"]);
        assert!(
            grants_role(free, "supervisor") && sets_title(free),
            "{plan:#?}"
        );
        assert!(!takes_role(free, "admin"));
        let a = change(&plan, Kind::User, "a@x.example").expect("a is deactivated");
        assert_eq!((a.action, a.blocked.is_none()), (Action::Deactivate, true));
    }

    /// The rows of user `key`: the held ones, and the one change that goes ahead.
    fn rows_of<'p>(
        plan: &'p Plan,
        key: &str,
    ) -> (Vec<&'p crate::plan::Change>, &'p crate::plan::Change) {
        let (held, free): (Vec<_>, Vec<_>) = plan
            .changes
            .iter()
            .filter(|c| c.key == key)
            .partition(|c| c.blocked.is_some());
        assert_eq!(
            free.len(),
            1,
            "{key} has one change that goes ahead: {plan:#?}"
        );
        (held, free[0])
    }

    fn sets_title(change: &crate::plan::Change) -> bool {
        change.edits.iter().any(|e| {
            matches!(
                e,
                Edit::Set {
                    attr: Attr::Title,
                    ..
                }
            )
        })
    }

    // The same inputs give the same plan: a change held back for two roles names the same
    // one every time.
    #[test]
    fn reasons_are_deterministic() {
        let config = "policy: {adminRoles: [Security, Admin, Audit]}\nownership: {users: all}\nsafety: {maxDeletePercent: 100}\n";
        let resources = "users:\n  - userName: b@x.example\n";
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example",
                       "roles": [{"value": "Security"}, {"value": "Admin"}, {"value": "Audit"}]}),
                json!({"id": "b", "userName": "b@x.example"}),
            ],
            &[],
        );
        let desired = desired_with(config, resources);
        let reasons: std::collections::BTreeSet<String> = (0..32)
            .map(|_| {
                let plan = plan_ok(&desired, &live, &allowing(None));
                blocked(&plan)[0].1.to_owned()
            })
            .collect();
        assert_eq!(
            reasons.into_iter().collect::<Vec<_>>(),
            vec![r#"would leave admin role "admin" with no active holder (policy.adminRoles)"#]
        );
    }

    // The account scimctl runs as is never deactivated or deleted, whatever the brakes say;
    // its other changes go ahead.
    #[test]
    fn actor_is_never_pruned() {
        let (desired, live) = prune_all_but(
            "safety: {maxDeletePercent: 100, maxDeleteCount: 100}\n",
            &["k@x.example"],
            &["k@x.example", "Bot@x.example", "p@x.example"],
        );
        let options = PlanOptions {
            actors: vec!["bot@X.example".into()],
            ..PlanOptions::default()
        };
        let plan = plan_ok(&desired, &live, &options);
        assert_eq!(
            blocked(&plan),
            vec![(
                "Bot@x.example",
                "Bot@x.example is the account scimctl runs as; it is never deactivated or deleted"
            )]
        );
        assert!(change(&plan, Kind::User, "p@x.example").is_some_and(|c| c.blocked.is_none()));
        let desired = desired_with(
            "",
            "users:\n  - userName: bot@x.example\n    title: Robot\n",
        );
        let live = snapshot(&users(&["bot@x.example"]), &[]);
        let plan = plan_ok(&desired, &live, &options);
        assert!(
            blocked(&plan).is_empty(),
            "a patch of the actor is fine: {plan:#?}"
        );
    }

    // The actor keeps every admin role it holds (only that removal is held back: its new
    // title goes ahead), and is found by live id, so a change keyed by a new name (a rename
    // through externalId) that deactivates it is held back too, whole.
    #[test]
    fn actor_keeps_its_admin_roles_and_a_rename_does_not_hide_it() {
        let options = PlanOptions {
            actors: vec!["bot@x.example".into()],
            ..PlanOptions::default()
        };
        let live = snapshot(
            &[
                json!({"id": "id-bot", "userName": "bot@x.example", "externalId": "e-bot",
                       "roles": [{"value": "admin"}, {"value": "agent"}]}),
                json!({"id": "id-ann", "userName": "ann@x.example",
                       "roles": [{"value": "admin"}]}),
            ],
            &[],
        );
        let config = "collections: {userRoles: authoritative}\npolicy: {adminRoles: [admin]}\n";
        let desired = desired_with(
            config,
            "roles:\n  - name: admin\n  - name: agent\nusers:\n  - userName: bot@x.example\n    externalId: e-bot\n    title: Robot\n    roles: [agent]\n  - userName: ann@x.example\n    roles: [admin]\n",
        );
        let plan = plan_ok(&desired, &live, &options);
        assert_eq!(
            blocked(&plan),
            vec![(
                "bot@x.example",
                "bot@x.example is the account scimctl runs as; it keeps admin role \"admin\" \
                 (policy.adminRoles), or scimctl would lock itself out"
            )]
        );
        let (held, free) = rows_of(&plan, "bot@x.example");
        assert_eq!(held[0].held_by, Some(Rule::Actor));
        assert!(takes_role(held[0], "admin") && !sets_title(held[0]));
        assert!(sets_title(free) && !takes_role(free, "admin"), "{plan:#?}");
        // Without the actor, the same removal goes ahead (ann still holds admin).
        let free = plan_ok(&desired, &live, &PlanOptions::default());
        assert!(blocked(&free).is_empty(), "{free:#?}");

        let desired = desired_with(
            config,
            "roles:\n  - name: admin\n  - name: agent\nusers:\n  - userName: robot@x.example\n    externalId: e-bot\n    active: false\n    roles: [admin, agent]\n  - userName: ann@x.example\n    roles: [admin]\n",
        );
        let plan = plan_ok(&desired, &live, &options);
        assert_eq!(
            blocked(&plan),
            vec![(
                "robot@x.example",
                "bot@x.example is the account scimctl runs as; it is never deactivated or deleted"
            )]
        );
    }
}
