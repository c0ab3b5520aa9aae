//! One user's comparison: the scalar attributes, `active`, the manager, contacts, routing
//! skills and languages, and roles (with role grants limited to divisions), each a step
//! that adds to the same [`Diffs`]; [`super::finish`] turns them into a change.

use std::collections::HashSet;

use serde_json::Value;

use super::values::{
    Diffs, Keyed, desired_contacts, keyed_set, live_contacts, live_proficiencies, proficiencies,
    same_contact, same_proficiency, scalar,
};
use super::{Context, Object, finish, parse_live};
use crate::model::tenant::{self, Live, Resource};
use crate::model::{CollectionMode, RoleGrant, Spanned, User as DesiredUser};
use crate::plan::{
    Attr, AttrDiff, Change, Complex, Edit, Kind, Multi, PlanError, Scalar, Schema, Source,
    ValueKey, Warning,
};

/// The change that makes `live` (or nothing, for a create) the user YAML describes, `None`
/// when there is nothing to do.
pub(in crate::plan) fn user_change(
    ctx: &mut Context<'_>,
    user: &Spanned<DesiredUser>,
    live: Option<&Live<tenant::User>>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Change>, PlanError> {
    let u = &user.value;
    let have = live
        .map(|l| parse_live(Kind::User, l))
        .transpose()?
        .unwrap_or_default();
    let mut d = Diffs::default();
    user_name(u, live.is_some(), &have, &mut d);
    scalars(ctx, u, &have, &mut d);
    let deactivating = active(ctx, u, live.is_some(), &have, &mut d);
    manager(ctx, u, &have, &mut d);
    contacts(ctx, user, &have, &mut d);
    routing(ctx, user, &have, &mut d);
    if let Some(roles) = &u.roles
        && ctx.supported(Schema::Core, "roles", user.span)
    {
        roles_and_grants(ctx, user, roles, live, &have, warnings, &mut d);
    }
    if let Some((diff, edit)) = crate::plan::licenses::user_licenses(
        ctx.desired,
        ctx.live.licenses.as_ref(),
        u,
        live.and_then(Live::id),
    ) {
        d.diff.push(diff);
        d.edits.push(edit);
    }
    if live.is_some() {
        password(ctx, user, warnings, &mut d);
    }
    let protected = ctx
        .protected_users
        .contains(&u.user_name.value.to_lowercase())
        || live.is_some_and(|l| {
            ctx.protected_users
                .contains(&l.natural_key().to_lowercase())
        });
    let object = Object {
        kind: Kind::User,
        key: u.user_name.value.clone(),
        source: Source::at(&ctx.desired.sources, user.span),
        protected,
    };
    Ok(finish(object, live, d, deactivating, warnings))
}

/// `password` of a matched user whose source changed since it was last set (the caller
/// worked that out: [`crate::plan::PlanOptions::rotate_passwords`]): a row without a value,
/// or a warning when the target does not let a client change passwords.
fn password(
    ctx: &Context<'_>,
    user: &Spanned<DesiredUser>,
    warnings: &mut Vec<Warning>,
    d: &mut Diffs,
) {
    let name = &user.value.user_name.value;
    if !ctx.options.rotate_passwords.contains(&name.to_lowercase()) {
        return;
    }
    if ctx.options.target.change_password {
        d.diff.push(AttrDiff {
            attribute: "password".into(),
            note: Some("changed at source".into()),
            ..AttrDiff::default()
        });
        d.edits.push(Edit::Password);
    } else {
        warnings.push(Warning {
            message: format!(
                "user {name:?}: the password changed at source, but the target does not let \
                 clients change passwords (ServiceProviderConfig changePassword.supported is \
                 false): not rotated"
            ),
            source: Some(Source::at(&ctx.desired.sources, user.span)),
        });
    }
}

/// `userName`: a create always sets it; a matched user is renamed when it differs other
/// than in case (userName compares case-insensitively, RFC 7643 §4.1.1).
fn user_name(u: &DesiredUser, matched: bool, have: &tenant::User, d: &mut Diffs) {
    let want = Scalar::from(&u.user_name.value);
    if !matched {
        d.edits.push(crate::plan::Edit::Set {
            attr: Attr::UserName,
            value: want,
        });
    } else if !have.user_name.eq_ignore_ascii_case(&u.user_name.value) {
        d.set(
            Attr::UserName,
            Some(Value::from(have.user_name.clone())),
            want,
        );
    }
}

/// The single-valued string attributes, core and enterprise.
fn scalars(ctx: &mut Context<'_>, u: &DesiredUser, have: &tenant::User, d: &mut Diffs) {
    let no_ent = tenant::EnterpriseUser::default();
    let ent = have.enterprise.as_ref().unwrap_or(&no_ent);
    for (attr, want, live_value) in [
        (
            Attr::DisplayName,
            &u.display_name,
            have.display_name.as_deref(),
        ),
        (
            Attr::ExternalId,
            &u.external_id,
            have.external_id.as_deref(),
        ),
        (Attr::Title, &u.title, have.title.as_deref()),
        (
            Attr::EmployeeNumber,
            &u.employee_number,
            ent.employee_number.as_deref(),
        ),
        (Attr::Department, &u.department, ent.department.as_deref()),
        (Attr::Division, &u.division, ent.division.as_deref()),
        (Attr::DateHire, &u.date_hire, ent.date_hire.as_deref()),
    ] {
        scalar(ctx, attr, want.as_ref(), live_value, d);
    }
}

/// `active`; returns whether the change deactivates a live user.
fn active(
    ctx: &mut Context<'_>,
    u: &DesiredUser,
    matched: bool,
    have: &tenant::User,
    d: &mut Diffs,
) -> bool {
    let Some(active) = &u.active else {
        return false;
    };
    if !ctx.supported(Schema::Core, "active", active.span) {
        return false;
    }
    // A server that omits `active` is taken to mean an active account.
    let live_active = have.active.unwrap_or(true);
    if matched && live_active != active.value {
        d.set(
            Attr::Active,
            Some(Value::from(live_active)),
            Scalar::Bool(active.value),
        );
        return !active.value;
    }
    if !matched {
        d.set(Attr::Active, None, Scalar::Bool(active.value));
    }
    false
}

/// The manager, a reference to a live user or to one this plan creates.
fn manager(ctx: &mut Context<'_>, u: &DesiredUser, have: &tenant::User, d: &mut Diffs) {
    let Some(manager) = &u.manager else { return };
    if !ctx.supported(Schema::Enterprise, "manager", manager.span) {
        return;
    }
    let Some(to) = ctx.user_ref(&manager.value) else {
        return;
    };
    let live_manager = have.enterprise.as_ref().and_then(|e| e.manager.as_ref());
    let live_id = live_manager.map(|m| m.value.as_str());
    if to.id.is_some() && to.id.as_deref() == live_id {
        return;
    }
    let before = live_manager.map(|m| {
        let name = ctx
            .name_of(Some(Kind::User), &m.value)
            .map_or_else(|| m.value.clone(), |(_, n)| n.to_owned());
        Value::from(name)
    });
    if before.is_some() {
        d.present.push(Attr::Manager);
    }
    d.diff.push(AttrDiff {
        attribute: "manager".into(),
        before,
        after: Some(Value::from(to.name.as_str())),
        ..AttrDiff::default()
    });
    d.edits.push(crate::plan::Edit::SetManager { to });
}

/// Emails and phone numbers.
fn contacts(
    ctx: &mut Context<'_>,
    user: &Spanned<DesiredUser>,
    have: &tenant::User,
    d: &mut Diffs,
) {
    let u = &user.value;
    if let Some(emails) = &u.emails
        && ctx.supported(Schema::Core, "emails", user.span)
    {
        // A server whose schemas list the email sub-attributes without `type` does not
        // store it: comparing it would plan the same change forever.
        let typed = ctx.options.target.attributes.has_sub(
            crate::plan::ResourceSchema::User,
            "emails",
            "type",
        );
        let want = desired_contacts(emails.iter().map(|e| {
            (
                e.value.value.as_str(),
                e.kind.filter(|_| typed).map(|k| k.name().to_owned()),
                e.primary,
            )
        }));
        let want = untyped_by_address(want, &have.emails);
        let mut have_emails = live_contacts(&have.emails, &want);
        if ctx.options.target.username_email {
            // The server keeps the userName as `emails[type=other]`, read-only (Genesys
            // Cloud, docs/genesys.md): neither compared nor ever removed.
            have_emails.retain(|e| {
                !e.value
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("other"))
            });
        }
        keyed_set(
            Multi::Emails,
            &want,
            &have_emails,
            same_contact(true),
            true,
            ctx.options.target.value_paths,
            d,
        );
    }
    if let Some(phones) = &u.phone_numbers
        && ctx.supported(Schema::Core, "phoneNumbers", user.span)
    {
        let want = desired_contacts(phones.iter().map(|p| {
            let kind = p.kind.map(|k| k.name().to_owned());
            (p.value.value.as_str(), kind, p.primary)
        }));
        let have_phones = live_contacts(&have.phone_numbers, &want);
        keyed_set(
            Multi::PhoneNumbers,
            &want,
            &have_phones,
            same_contact(false),
            true,
            ctx.options.target.value_paths,
            d,
        );
    }
}

/// `want` with each value keyed by `type` re-keyed by its address where the live list holds
/// that address untyped: the same value, missing only its type, is then replaced in place
/// (or left alone) rather than removed and added again.
fn untyped_by_address(mut want: Vec<Keyed>, live: &[tenant::MultiValue]) -> Vec<Keyed> {
    for w in &mut want {
        let Some(address) = w.value.get("value").and_then(Value::as_str) else {
            continue;
        };
        if w.key.sub == "type"
            && live
                .iter()
                .any(|l| l.kind.is_none() && l.value.eq_ignore_ascii_case(address))
        {
            w.key = ValueKey::new("value", address);
        }
    }
    want
}

/// Routing skills and languages (the Genesys Cloud extension).
fn routing(ctx: &mut Context<'_>, user: &Spanned<DesiredUser>, have: &tenant::User, d: &mut Diffs) {
    let u = &user.value;
    let no_gen = tenant::GenesysUser::default();
    let gen_ext = have.genesys.as_ref().unwrap_or(&no_gen);
    for (attr, want, have_list) in [
        (
            Multi::RoutingSkills,
            u.routing_skills.as_ref(),
            &gen_ext.routing_skills,
        ),
        (
            Multi::RoutingLanguages,
            u.routing_languages.as_ref(),
            &gen_ext.routing_languages,
        ),
    ] {
        if let Some(want) = want
            && ctx.supported(Schema::Genesys, attr.name(), user.span)
        {
            let values: Vec<crate::model::Proficiency> =
                want.iter().map(|p| p.value.clone()).collect();
            keyed_set(
                attr,
                &proficiencies(&values),
                &live_proficiencies(have_list),
                same_proficiency,
                true,
                ctx.options.target.value_paths,
                d,
            );
        }
    }
}

/// Roles: SCIM `roles` by name, and the grants limited to divisions (Genesys Cloud) as
/// their own edit.
#[allow(clippy::too_many_arguments)] // one step of user_change; each is a part of its state
fn roles_and_grants(
    ctx: &mut Context<'_>,
    user: &Spanned<DesiredUser>,
    roles: &[Spanned<RoleGrant>],
    live: Option<&Live<tenant::User>>,
    have: &tenant::User,
    warnings: &mut Vec<Warning>,
    d: &mut Diffs,
) {
    let authoritative = ctx.desired.config.collections.user_roles == CollectionMode::Authoritative;
    let source = Source::at(&ctx.desired.sources, user.span);
    let grants = crate::plan::grants::user_grants(
        ctx.desired,
        ctx.live,
        roles,
        live.and_then(Live::id),
        authoritative,
        &mut |message| {
            warnings.push(Warning {
                message,
                source: Some(source.clone()),
            });
        },
    );
    let scoped = grants.as_ref().map(|g| &g.scoped);
    if grants.is_none() && roles.iter().any(|r| r.divisions.is_some()) {
        warnings.push(Warning {
            message: if ctx.options.target.divisions {
                "role grants limited to divisions are managed by role name only: SCIM \
                 grants them in the home division (the user's grants could not be read)"
            } else {
                "role grants limited to divisions are managed by name only on a SCIM \
                 target (divisions need the Genesys Cloud target)"
            }
            .into(),
            source: Some(source),
        });
    }
    // Roles managed as grants are left out of SCIM `roles` on both sides: SCIM would
    // grant them in the home division, and reads back every role held in any division.
    let by_name = |name: &str| scoped.is_none_or(|s| !s.contains(&name.to_lowercase()));
    let mut seen = HashSet::new();
    let mut want: Vec<Keyed> = roles
        .iter()
        .filter(|r| by_name(&r.name) && seen.insert(r.name.to_lowercase()))
        .map(|r| Keyed {
            key: ValueKey::new("value", &r.name),
            value: Complex::new([("value", Value::from(r.name.as_str()))]),
            label: r.name.to_string(),
        })
        .collect();
    // The org's default roles (`policy.defaultRoles`, `employee` unless configured) are
    // kept under authoritative roles: a `roles:` list that does not mention them is read as
    // the roles to manage on top, not as a request to take basic access away. Only an empty
    // list (`roles: []`, "no roles at all") removes them, and the plan says which.
    let defaults = &ctx.desired.config.policy.default_roles;
    let is_default = |name: &str| defaults.iter().any(|d| d.eq_ignore_ascii_case(name));
    let wanted = |name: &str| roles.iter().any(|r| r.name.eq_ignore_ascii_case(name));
    let strip_defaults = roles.is_empty();
    // Genesys Cloud gives a new user the default roles only when the create names no roles:
    // a create that names roles names the default roles as well, so the new user starts with
    // the basic access every other user of the org has. A role the org does not define is
    // left out (a misspelt `defaultRoles` entry must not fail every create).
    if live.is_none() && ctx.options.target.default_roles_unless_named && !want.is_empty() {
        let defined = |name: &str| {
            ctx.live
                .roles
                .as_ref()
                .is_none_or(|catalogue| catalogue.iter().any(|r| r.name.eq_ignore_ascii_case(name)))
        };
        for name in defaults.iter().filter(|d| !wanted(d) && defined(d)) {
            if seen.insert(name.to_lowercase()) {
                want.push(Keyed {
                    key: ValueKey::new("value", name),
                    value: Complex::new([("value", Value::from(name.value.as_str()))]),
                    label: format!("{} (policy.defaultRoles)", name.value),
                });
            }
        }
    }
    if authoritative && strip_defaults {
        for role in have.roles.iter().filter(|r| is_default(&r.value)) {
            warnings.push(Warning {
                message: format!(
                    "roles: [] takes the default role {:?} away (policy.defaultRoles); \
                     list it to keep it",
                    role.value
                ),
                source: Some(Source::at(&ctx.desired.sources, user.span)),
            });
        }
    }
    let have_roles: Vec<Keyed> = have
        .roles
        .iter()
        .filter(|r| by_name(&r.value))
        .filter(|r| strip_defaults || !is_default(&r.value) || wanted(&r.value))
        .map(|r| Keyed {
            key: ValueKey::new("value", &r.value),
            value: Complex::new([("value", Value::from(r.value.as_str()))]),
            label: r.value.clone(),
        })
        .collect();
    keyed_set(
        Multi::Roles,
        &want,
        &have_roles,
        |_, _| true,
        authoritative,
        ctx.options.target.value_paths,
        d,
    );
    if let Some((diff, edit)) = grants.and_then(|g| g.change) {
        d.diff.push(diff);
        d.edits.push(edit);
    }
}
