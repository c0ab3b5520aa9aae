//! One group's comparison: `displayName`, `externalId`, `description` and members; then
//! [`super::finish`] turns the differences into a change.

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::values::Diffs;
use super::{Context, Object, finish, parse_live};
use crate::model::tenant::{self, Live, Resource};
use crate::model::{CollectionMode, Spanned};
use crate::plan::{Attr, AttrDiff, Change, Edit, Kind, PlanError, Ref, Scalar, Source, Warning};

/// The change that makes `live` (or nothing, for a create) the group YAML describes, with
/// `members` (already flattened where groups cannot nest), `None` when there is nothing to
/// do.
pub(in crate::plan) fn group_change(
    ctx: &mut Context<'_>,
    group: &Spanned<crate::model::Group>,
    live: Option<&Live<tenant::Group>>,
    members: Option<&BTreeSet<String>>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Change>, PlanError> {
    let g = &group.value;
    let parsed = live.map(|l| parse_live(Kind::Group, l)).transpose()?;
    let have = parsed.unwrap_or_default();
    let mut d = Diffs::default();
    if live.is_none() {
        d.edits.push(Edit::Set {
            attr: Attr::DisplayName,
            value: Scalar::from(&g.display_name.value),
        });
    } else if have.display_name != g.display_name.value {
        d.set(
            Attr::DisplayName,
            Some(Value::from(have.display_name.clone())),
            Scalar::from(&g.display_name.value),
        );
    }
    if let Some(e) = &g.external_id
        && ctx.group_supported("externalId", e.span)
        && have.external_id.as_deref() != Some(e.value.as_str())
    {
        d.set(
            Attr::ExternalId,
            have.external_id.clone().map(Value::from),
            Scalar::from(&e.value),
        );
    }
    if let Some(desc) = &g.description
        && ctx.group_supported("description", desc.span)
        && have.description.as_deref() != Some(desc.value.as_str())
    {
        d.set(
            Attr::Description,
            have.description.clone().map(Value::from),
            Scalar::from(&desc.value),
        );
    }
    settings_changes(ctx, group, live.is_some(), &have.settings, &mut d, warnings);
    role_grant_changes(ctx, group, live, &have.settings, &mut d, warnings);
    if let Some(members) = members {
        member_changes(ctx, members, &have, &mut d);
    }
    // Protected by either name: a group matched under an old name or by externalId is still
    // the protected live group.
    let protected = ctx
        .protected_groups
        .contains(&g.display_name.value.to_lowercase())
        || live.is_some_and(|l| {
            ctx.protected_groups
                .contains(&l.natural_key().to_lowercase())
        });
    let object = Object {
        kind: Kind::Group,
        key: g.display_name.value.clone(),
        source: Source::at(&ctx.desired.sources, group.span),
        protected,
    };
    Ok(finish(object, live, d, false, warnings))
}

/// The Genesys Cloud settings YAML writes that differ from the live group's (all of them for
/// a create); on a target without them, a note for the warning and nothing else. A setting
/// YAML leaves out is never compared, so it is left as it is.
fn settings_changes(
    ctx: &mut Context<'_>,
    group: &Spanned<crate::model::Group>,
    exists: bool,
    have: &tenant::GroupSettings,
    d: &mut Diffs,
    warnings: &mut Vec<Warning>,
) {
    let g = &group.value;
    if !ctx.options.target.group_settings {
        // Roles granted to the group say it all: one note, settings or not.
        if let Some(first) = g
            .roles
            .as_ref()
            .map(|r| r.first().map_or(g.display_name.span, |r| r.span))
        {
            ctx.note_genesys_only("roles", first);
        } else if let Some((name, span)) = g.first_setting() {
            ctx.note_genesys_only(name, span);
        }
        return;
    }
    let text = |attr: Attr, want: Option<&'static str>, live: Option<&str>, d: &mut Diffs| {
        if let Some(want) = want
            && live != Some(want)
        {
            d.set(attr, live.map(Value::from), Scalar::from(want));
        }
    };
    // A group's type is set when it is created and never after: `GroupUpdate` has no
    // `type` (PY GroupUpdate.md) and the Terraform provider replaces the group to change
    // it. So a live group of another type is a warning, not an edit that every run would
    // send again to no effect.
    match (&g.kind, have.kind.as_deref(), exists) {
        (Some(want), Some(live), true) if live != want.value.as_str() => {
            warnings.push(Warning {
                message: format!(
                    "group {:?} is of type {live:?} on the target, and a group's type cannot be \
                     changed once it exists: recreate the group, or write type: {live}",
                    g.display_name.value.as_str()
                ),
                source: Some(Source::at(&ctx.desired.sources, want.span)),
            });
        }
        (want, live, false) => text(
            Attr::GroupType,
            want.as_ref().map(|k| k.value.as_str()),
            live,
            d,
        ),
        _ => {}
    }
    text(
        Attr::Visibility,
        g.visibility.as_ref().map(|v| v.value.as_str()),
        have.visibility.as_deref(),
        d,
    );
    for (attr, want, live) in [
        (Attr::RulesVisible, &g.rules_visible, have.rules_visible),
        (Attr::RolesEnabled, &g.roles_enabled, have.roles_enabled),
        (Attr::CallsEnabled, &g.calls_enabled, have.calls_enabled),
        (Attr::IncludeOwners, &g.include_owners, have.include_owners),
    ] {
        if let Some(want) = want
            && live != Some(want.value)
        {
            d.set(attr, live.map(Value::Bool), Scalar::Bool(want.value));
        }
    }
    if let Some(owners) = &g.owners {
        owner_changes(
            ctx,
            owners,
            have.owner_ids.as_deref().unwrap_or_default(),
            d,
        );
    }
}

/// The role grants YAML gives the group (Genesys Cloud, subject type `PC_GROUP`), compared
/// with the live group's grants as [`crate::plan::grants::group_grants`] says; when the group
/// is to hold any grant and does not have `rolesEnabled` (live, or as YAML writes it), the
/// same change switches it on first: Genesys grants roles only to such groups.
fn role_grant_changes(
    ctx: &mut Context<'_>,
    group: &Spanned<crate::model::Group>,
    live: Option<&Live<tenant::Group>>,
    have: &tenant::GroupSettings,
    d: &mut Diffs,
    warnings: &mut Vec<Warning>,
) {
    let g = &group.value;
    let Some(roles) = &g.roles else { return };
    if !ctx.options.target.group_settings {
        return; // noted by settings_changes
    }
    let prune = live.is_some_and(|l| {
        super::owned(
            &ctx.desired.config.ownership.groups.value,
            l.natural_key(),
            l.external_id(),
        )
    });
    let source = Source::at(&ctx.desired.sources, group.span);
    let grants = crate::plan::grants::group_grants(
        ctx.desired,
        ctx.live,
        roles,
        live.and_then(Live::id),
        prune,
        &mut |message| {
            warnings.push(Warning {
                message,
                source: Some(source.clone()),
            });
        },
    );
    let Some(grants) = grants else {
        warnings.push(Warning {
            message: "the group's role grants could not be read: its roles are not compared".into(),
            source: Some(source),
        });
        return;
    };
    // Roles on whenever the group is to hold a grant: for the grants given now, and for
    // those it holds while someone switched its roles off (its members then hold nothing).
    if grants.wanted && g.roles_enabled.is_none() && have.roles_enabled != Some(true) {
        d.set(
            Attr::RolesEnabled,
            have.roles_enabled.map(Value::Bool),
            Scalar::Bool(true),
        );
    }
    if let Some((row, edit)) = grants.change {
        d.diff.push(row);
        d.edits.push(edit);
    }
}

/// The owners YAML names (users in desired state, by `userName`), compared with the live
/// owners as sets of user ids; one edit that sets them all when they differ.
fn owner_changes(
    ctx: &mut Context<'_>,
    owners: &[Spanned<crate::model::Text>],
    live: &[String],
    d: &mut Diffs,
) {
    let mut want: Vec<Ref> = Vec::with_capacity(owners.len());
    for name in owners {
        if let Some(r) = ctx.user_ref(name)
            && !want.iter().any(|w| w.name == r.name)
        {
            want.push(r);
        }
    }
    let live_ids: BTreeSet<&str> = live.iter().map(String::as_str).collect();
    let want_ids: BTreeSet<&str> = want.iter().filter_map(|r| r.id.as_deref()).collect();
    let added: Vec<String> = want
        .iter()
        .filter(|r| r.id.as_deref().is_none_or(|id| !live_ids.contains(id)))
        .map(|r| r.name.to_string())
        .collect();
    let removed: Vec<String> = live_ids
        .iter()
        .filter(|id| !want_ids.contains(*id))
        .map(|id| {
            ctx.name_of(Some(Kind::User), id)
                .map_or_else(|| (*id).to_owned(), |(_, n)| n.to_owned())
        })
        .collect();
    if added.is_empty() && removed.is_empty() {
        return;
    }
    d.diff.push(AttrDiff {
        attribute: "owners".into(),
        added,
        removed,
        ..AttrDiff::default()
    });
    d.edits.push(Edit::SetOwners { owners: want });
}

/// Whether `keys` (members as (type, id), the type `None` when the server gave none) hold
/// the member `kind`/`id`. Members are told apart by (type, id) when both sides have a type,
/// since a server's ids may be unique only per resource type (user 2 and group 2); an
/// untyped side matches by id alone, as before.
fn holds(keys: &HashSet<(Option<Kind>, &str)>, kind: Option<Kind>, id: &str) -> bool {
    match kind {
        Some(k) => keys.contains(&(Some(k), id)) || keys.contains(&(None, id)),
        None => {
            keys.contains(&(None, id))
                || keys.contains(&(Some(Kind::User), id))
                || keys.contains(&(Some(Kind::Group), id))
        }
    }
}

/// Members to add (by name, resolved to live ids or to objects this plan creates) and, when
/// `groupMembers` is authoritative, live members to remove (never a protected one).
fn member_changes(
    ctx: &mut Context<'_>,
    members: &BTreeSet<String>,
    have: &tenant::Group,
    d: &mut Diffs,
) {
    let want: Vec<Ref> = members
        .iter()
        .filter_map(|m| ctx.user_ref(m).or_else(|| ctx.group_ref(m)))
        .collect();
    let live_keys: HashSet<(Option<Kind>, &str)> = have
        .members
        .iter()
        .map(|m| (m.member_kind(), m.value.as_str()))
        .collect();
    let add: Vec<Ref> = want
        .iter()
        .filter(|r| {
            r.id.as_deref()
                .is_none_or(|id| !holds(&live_keys, Some(r.kind), id))
        })
        .cloned()
        .collect();
    let mut remove = Vec::new();
    if ctx.desired.config.collections.group_members == CollectionMode::Authoritative {
        let wanted: HashSet<(Option<Kind>, &str)> = want
            .iter()
            .filter_map(|r| r.id.as_deref().map(|id| (Some(r.kind), id)))
            .collect();
        for m in &have.members {
            let typed = m.member_kind();
            if holds(&wanted, typed, &m.value) {
                continue;
            }
            let (kind, name) = ctx
                .name_of(typed, &m.value)
                .unwrap_or((typed.unwrap_or(Kind::User), ""));
            let protected = match kind {
                Kind::User => ctx.protected_users.contains(&name.to_lowercase()),
                Kind::Group => ctx.protected_groups.contains(&name.to_lowercase()),
                Kind::Role => false,
            };
            if protected && !name.is_empty() {
                continue;
            }
            remove.push(Ref {
                kind,
                name: if name.is_empty() {
                    m.value.as_str().into()
                } else {
                    name.into()
                },
                id: Some(m.value.clone()),
            });
        }
    }
    if add.is_empty() && remove.is_empty() {
        return;
    }
    d.diff.push(AttrDiff {
        attribute: "members".into(),
        added: add.iter().map(|r| r.name.to_string()).collect(),
        removed: remove.iter().map(|r| r.name.to_string()).collect(),
        ..AttrDiff::default()
    });
    if !add.is_empty() {
        d.edits.push(Edit::AddMembers { members: add });
    }
    if !remove.is_empty() {
        d.edits.push(Edit::RemoveMembers { members: remove });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Typed members match only their own type; an untyped side matches by id alone.
    #[test]
    fn members_match_by_type_and_id() {
        let live: HashSet<(Option<Kind>, &str)> =
            [(Some(Kind::User), "1"), (None, "7")].into_iter().collect();
        assert!(holds(&live, Some(Kind::User), "1"));
        assert!(!holds(&live, Some(Kind::Group), "1"));
        assert!(holds(&live, None, "1"));
        assert!(holds(&live, Some(Kind::Group), "7"));
        assert!(!holds(&live, Some(Kind::User), "2"));
    }
}
