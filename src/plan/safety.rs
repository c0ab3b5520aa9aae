//! Safety brakes (product.md §4): destructive changes above the configured share or count of
//! the managed set, pruning everything because desired state is empty, removing the last
//! active holder of an admin role, and touching the account scimctl runs as. Blocked changes
//! stay in the plan as rows with the reason; `--allow-deletes N` lifts the threshold brake
//! when N is exactly the number of destructive changes.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::desired::DesiredState;
use crate::model::OwnershipMode;
use crate::scim::{Resource, Snapshot};

use super::{Action, Attr, Edit, Kind, Multi, Plan, PlanError, PlanOptions};

pub(super) fn apply_brakes(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
    options: &PlanOptions,
) -> Result<(), PlanError> {
    actor_guard(plan, options);
    empty_guard(desired, plan);
    admin_role_guard(desired, plan);
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
    let named = |v: &serde_json::Value| {
        v.get("value")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|n| n.eq_ignore_ascii_case(role))
    };
    change.kind == Kind::User
        && change.edits.iter().any(|e| match e {
            Edit::Remove {
                attr: Multi::Roles,
                key,
            } => key.equals.eq_ignore_ascii_case(role),
            Edit::ReplaceAll {
                attr: Multi::Roles,
                values,
            } => !values.iter().any(named),
            _ => false,
        })
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

fn last_admin_guard(
    desired: &DesiredState,
    live: &Snapshot,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    // Ordered, so that a change held back for two roles always names the same one.
    let admin: BTreeSet<String> = desired
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
        .filter(|c| c.kind == Kind::User)
        .filter(|c| c.action.is_destructive() || admin.iter().any(|r| takes_role(c, r)))
        .filter_map(|c| c.id.clone())
        .collect();
    if losing.is_empty() {
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
    loop {
        let orphaned = orphaned_roles(&admin, &users, plan);
        let mut more = false;
        for (role, holders) in orphaned {
            for c in &mut plan.changes {
                let takes = c.blocked.is_none()
                    && c.kind == Kind::User
                    && c.id.as_deref().is_some_and(|id| holders.contains(&id))
                    && (c.action.is_destructive() || takes_role(c, &role));
                if takes {
                    more = true;
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
        if !more {
            return Ok(());
        }
    }
}

/// A live user as the last-admin guard sees it: id, whether active, roles.
type Holder = (String, bool, Vec<crate::scim::wire::Reference>);

/// Each admin role that has active holders now but would have none once the changes not held
/// back are applied, with those holders' ids.
fn orphaned_roles<'u>(
    admin: &BTreeSet<String>,
    users: &'u [Holder],
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
        let has = |roles: &[crate::scim::wire::Reference]| {
            roles.iter().any(|r| r.value.eq_ignore_ascii_case(role))
        };
        let holders: Vec<&str> = users
            .iter()
            .filter(|(_, active, roles)| *active && has(roles))
            .map(|(id, _, _)| id.as_str())
            .collect();
        if holders.is_empty() {
            continue;
        }
        // An active account still holds it once the plan is applied: a live user the plan
        // leaves alone, one whose change keeps or grants the role and leaves the account
        // active, or a created one.
        let held_after = users
            .iter()
            .any(|(id, active, roles)| match applied.get(id.as_str()) {
                None => *active && has(roles),
                Some(c) => {
                    c.action != Action::Delete
                        && active_after(c, *active)
                        && ((has(roles) && !takes_role(c, role)) || grants_role(c, role))
                }
            })
            || plan.changes.iter().any(|c| {
                c.kind == Kind::User
                    && c.action == Action::Create
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Kind, Plan, PlanOptions};
    use crate::scim::Snapshot;

    fn users(names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"id": format!("id-{n}"), "userName": n}))
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
        let plan = plan_ok(&desired, &live, &allowing(None));
        let root = change(&plan, Kind::User, "root@x.example").expect("root is patched");
        assert_eq!(root.action, Action::Patch);
        assert!(
            root.blocked
                .as_deref()
                .is_some_and(|r| r.contains("no active holder")),
            "{root:#?}"
        );
        // --allow-deletes is about counts; it does not release this.
        let plan = plan_ok(&desired, &live, &allowing(Some(0)));
        assert!(change(&plan, Kind::User, "root@x.example").is_some_and(|c| c.blocked.is_some()));
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
        assert!(
            change(&plan, Kind::User, "root@x.example").is_some_and(|c| c.blocked.is_some()),
            "{plan:#?}"
        );
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

    // A role gained in a change that is itself held back is not gained: here b would take
    // over Supervisor from a while giving up Admin, its only holder; both are held back.
    #[test]
    fn held_back_changes_gain_nothing() {
        let config = "policy: {adminRoles: [Admin, Supervisor]}\ncollections: {userRoles: authoritative}\nsafety: {maxDeletePercent: 100}\n";
        let resources = "roles:\n  - name: Admin\n  - name: Supervisor\nusers:\n  - userName: a@x.example\n    active: false\n  - userName: b@x.example\n    roles: [Supervisor]\n";
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
            vec![
                (
                    "b@x.example",
                    r#"would leave admin role "admin" with no active holder (policy.adminRoles)"#
                ),
                (
                    "a@x.example",
                    r#"would leave admin role "supervisor" with no active holder (policy.adminRoles)"#
                ),
            ],
            "{plan:#?}"
        );
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
            actor: Some("bot@X.example".into()),
            ..PlanOptions::default()
        };
        let plan = plan_ok(&desired, &live, &options);
        assert_eq!(
            blocked(&plan),
            vec![(
                "Bot@x.example",
                "bot@X.example is the account scimctl runs as; it is never deactivated or deleted"
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
}
