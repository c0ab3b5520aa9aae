//! Prunes: live objects that desired state does not name, that ownership covers and that
//! are not protected, deactivated or deleted as the prune policy says.

use serde_json::Value;

use super::{Context, owned, parse_live, unmatched};
use crate::model::tenant::Resource;
use crate::model::{GroupPrune, UserPrune};
use crate::plan::matching::Matched;
use crate::plan::{Action, Attr, AttrDiff, Change, Edit, Kind, Plan, PlanError, Source};

pub(super) fn prune_users(
    ctx: &Context<'_>,
    matched: &Matched,
    plan: &mut Plan,
) -> Result<(), PlanError> {
    let config = &ctx.desired.config;
    let policy = config.prune.users;
    if policy == UserPrune::None {
        return Ok(());
    }
    let free = unmatched(&matched.users, &matched.held.users, ctx.live.users.len());
    for (i, l) in ctx.live.users.iter().enumerate() {
        if !free[i]
            || !owned(
                &config.ownership.users.value,
                l.natural_key(),
                l.external_id(),
            )
            || ctx
                .protected_users
                .contains(&l.natural_key().to_lowercase())
        {
            continue;
        }
        // Genesys Cloud offboards deactivate-first: a deleted user loses its role grants for
        // good (docs/genesys.md §6), so an active user is only deactivated, and deleted by a
        // later run once it is inactive.
        let deactivate_first =
            policy == UserPrune::Delete && !ctx.options.target.delete_active_users;
        let active = if policy == UserPrune::Deactivate || deactivate_first {
            parse_live(Kind::User, l)?.active != Some(false)
        } else {
            false
        };
        let (action, edits, diff) = match policy {
            UserPrune::Deactivate if !active => continue,
            UserPrune::Deactivate | UserPrune::Delete if active => (
                Action::Deactivate,
                vec![Edit::Set {
                    attr: Attr::Active,
                    value: crate::plan::Scalar::Bool(false),
                }],
                vec![AttrDiff {
                    attribute: "active".into(),
                    before: Some(Value::Bool(true)),
                    after: Some(Value::Bool(false)),
                    ..AttrDiff::default()
                }],
            ),
            _ => (Action::Delete, Vec::new(), Vec::new()),
        };
        plan.changes.push(Change {
            action,
            kind: Kind::User,
            key: l.natural_key().into(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
            source: Source::Absent,
            diff,
            edits,
            present: vec![Attr::Active],
            blocked: None,
            held_by: None,
            derived: false,
        });
    }
    Ok(())
}

pub(super) fn prune_groups(ctx: &Context<'_>, matched: &Matched, plan: &mut Plan) {
    let config = &ctx.desired.config;
    if config.prune.groups == GroupPrune::None {
        return;
    }
    let mut free = unmatched(&matched.groups, &matched.held.groups, ctx.live.groups.len());
    // Twins have rows of their own (`twins::merge`), or are left alone with a protected group.
    for &o in matched.twins.iter().flat_map(|t| &t.others) {
        free[o] = false;
    }
    for (i, l) in ctx.live.groups.iter().enumerate() {
        if !free[i]
            || !owned(
                &config.ownership.groups.value,
                l.natural_key(),
                l.external_id(),
            )
            || ctx
                .protected_groups
                .contains(&l.natural_key().to_lowercase())
        {
            continue;
        }
        plan.changes.push(Change {
            action: Action::Delete,
            kind: Kind::Group,
            key: l.natural_key().into(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
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
