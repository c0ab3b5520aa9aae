//! Safety brakes (product.md §4): destructive changes above the configured share or count of
//! the managed set, pruning everything because desired state is empty, removing the last
//! active holder of an admin role, and touching the account scimctl runs as. Blocked changes
//! stay in the plan as rows with the reason; `--allow-deletes N` lifts the threshold brake
//! when N is exactly the number of destructive changes.

use std::collections::HashSet;

use crate::desired::DesiredState;
use crate::model::OwnershipMode;
use crate::scim::{Resource, Snapshot};

use super::{Action, Edit, Kind, Multi, Plan, PlanError, PlanOptions};

pub(super) fn apply_brakes(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    actor_guard(plan, options);
    empty_guard(desired, plan);
    last_admin_guard(desired, live, plan)?;
    threshold(desired, live, plan, options);
    Ok(())
}

fn block(change: &mut super::Change, reason: String) {
    if change.blocked.is_none() {
        change.blocked = Some(reason);
    }
}

fn actor_guard(plan: &mut Plan, options: &PlanOptions) {
    let Some(actor) = &options.actor else { return };
    for c in &mut plan.changes {
        if c.kind == Kind::User && c.action.is_destructive() && c.key.eq_ignore_ascii_case(actor) {
            block(
                c,
                format!(
                    "{actor} is the account scimctl runs as; it is never deactivated or deleted"
                ),
            );
        }
    }
}

fn empty_guard(desired: &DesiredState, plan: &mut Plan) {
    for (kind, empty) in [
        (Kind::User, desired.users.is_empty()),
        (Kind::Group, desired.groups.is_empty()),
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
                format!(
                    "desired state lists no {kind}s: refusing to prune all {prunes} live {kind}s \
                     (an empty or misplaced directory looks the same)"
                ),
            );
        }
    }
}

/// Whether a change takes admin role `role` away from its user.
fn removes_role(change: &super::Change, admin: &HashSet<String>) -> Option<String> {
    if change.kind != Kind::User {
        return None;
    }
    change.edits.iter().find_map(|e| match e {
        Edit::Remove {
            attr: Multi::Roles,
            key,
        } if admin.contains(&key.equals.to_lowercase()) => Some(key.equals.clone()),
        _ => None,
    })
}

fn last_admin_guard(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let admin: HashSet<String> = desired
        .config
        .policy
        .admin_roles
        .iter()
        .map(|r| r.value.to_lowercase())
        .collect();
    if admin.is_empty() {
        return Ok(());
    }
    let losing: HashSet<String> = plan
        .changes
        .iter()
        .filter(|c| c.action.is_destructive() || removes_role(c, &admin).is_some())
        .filter_map(|c| c.id.clone())
        .collect();
    if losing.is_empty() {
        return Ok(());
    }
    // Who holds each admin role now, among active users (every live user is read here, but
    // only when the plan takes something from someone).
    for role in &admin {
        let mut holders = Vec::new();
        for l in &live.users {
            let user = l.parse().map_err(|e| PlanError::Live {
                kind: Kind::User,
                id: l.id().unwrap_or("?").to_owned(),
                error: e.to_string(),
            })?;
            if user.active != Some(false)
                && user
                    .roles
                    .iter()
                    .any(|r| r.value.eq_ignore_ascii_case(role))
            {
                holders.push(l.id().unwrap_or_default().to_owned());
            }
        }
        let gained = plan.changes.iter().any(|c| {
            c.kind == Kind::User
                && !c.action.is_destructive()
                && c.edits.iter().any(|e| match e {
                    Edit::Add {
                        attr: Multi::Roles,
                        values,
                    } => values.iter().any(|v| {
                        v.get("value")
                            .and_then(serde_json::Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(role))
                    }),
                    _ => false,
                })
        });
        let kept = holders.iter().any(|h| !losing.contains(h));
        if holders.is_empty() || kept || gained {
            continue;
        }
        for c in &mut plan.changes {
            let takes =
                c.id.as_deref()
                    .is_some_and(|id| holders.iter().any(|h| h == id))
                    && (c.action.is_destructive()
                        || removes_role(c, &admin).is_some_and(|r| r.eq_ignore_ascii_case(role)));
            if takes {
                block(
                    c,
                    format!(
                        "would leave admin role {role:?} with no active holder \
                         (policy.adminRoles)"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// The number of live objects ownership covers: the managed set the thresholds are a share
/// of.
fn managed(desired: &DesiredState, live: &Snapshot, kind: Kind, plan: &Plan) -> usize {
    let mode = match kind {
        Kind::User => &desired.config.ownership.users.value,
        Kind::Group => &desired.config.ownership.groups.value,
    };
    let total = match kind {
        Kind::User => live.users.len(),
        Kind::Group => live.groups.len(),
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
            };
            let creates = plan
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.action == Action::Create)
                .count();
            let prunes = plan
                .changes
                .iter()
                .filter(|c| c.kind == kind && c.id.is_some() && c.action.is_destructive())
                .filter(|c| matches!(c.source, super::Source::Absent))
                .count();
            named.saturating_sub(creates) + prunes
        }
    }
    .max(1)
}

fn threshold(desired: &DesiredState, live: &Snapshot, plan: &mut Plan, options: &PlanOptions) {
    let safety = &desired.config.safety;
    let destructive = plan
        .changes
        .iter()
        .filter(|c| c.action.is_destructive() && c.blocked.is_none())
        .count();
    if destructive == 0 {
        return;
    }
    let max_count = safety.max_delete_count.value as usize;
    let percent = safety.max_delete_percent.value as usize;
    let mut over = Vec::new();
    for kind in [Kind::User, Kind::Group] {
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
    if over.is_empty() || options.allow_deletes == Some(destructive) {
        return;
    }
    let hint = match options.allow_deletes {
        Some(n) => format!(
            "--allow-deletes {n} was given, but this plan has {destructive} destructive changes"
        ),
        None => format!("review them, then pass --allow-deletes {destructive}"),
    };
    let reason = format!("{}; {hint}", over.join("; "));
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.action.is_destructive())
    {
        block(c, reason.clone());
    }
}

/// `n / of` as a percentage with one decimal, in integer arithmetic.
fn per_mille_text(n: usize, of: usize) -> String {
    let per_mille = (n * 1000 + of / 2) / of.max(1);
    format!("{}.{}", per_mille / 10, per_mille % 10)
}
