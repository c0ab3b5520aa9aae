//! Attribute-level comparison of matched objects, creates, memberships and prunes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use crate::desired::DesiredState;
use crate::model::{
    CollectionMode, GroupPrune, OwnershipMode, Selector, Span, Spanned, User as DesiredUser,
    UserPrune,
};
use crate::scim::wire::{self, MultiValue};
use crate::scim::{Live, Resource, Snapshot};

use super::matching::Matched;
use super::{
    Action, Attr, AttrDiff, Change, Edit, Kind, Multi, Plan, PlanError, PlanOptions, Ref,
    ResourceSchema, Schema, Source, ValueKey, Warning,
};

/// Attributes YAML sets but the target cannot store: attribute → (objects, first place).
type Unsupported = BTreeMap<&'static str, (usize, Span)>;

/// Everything the per-object diffs share.
struct Context<'a> {
    desired: &'a DesiredState,
    live: &'a Snapshot,
    options: &'a PlanOptions,
    /// Per desired user / group: the live id it will have (`None`: created by this plan).
    user_ids: Vec<Option<&'a str>>,
    group_ids: Vec<Option<&'a str>>,
    protected_users: HashSet<String>,
    protected_groups: HashSet<String>,
    unsupported: Unsupported,
    /// Live id → kind and name, for showing members removed.
    names: Option<HashMap<&'a str, (Kind, &'a str)>>,
    /// Answers of [`Context::supported`] so far (a handful of attributes, asked per object).
    support_cache: Vec<(Schema, &'static str, bool)>,
}

fn parse_live<R: Resource>(kind: Kind, live: &Live<R>) -> Result<R, PlanError> {
    live.parse().map_err(|e| PlanError::Live {
        kind,
        id: live.id().unwrap_or("?").to_owned(),
        error: e.to_string(),
    })
}

impl<'a> Context<'a> {
    fn user_ref(&self, name: &str) -> Option<Ref> {
        let i = self.desired.user_index(name)?;
        Some(Ref {
            kind: Kind::User,
            name: self.desired.users[i].user_name.value.clone(),
            id: self.user_ids[i].map(str::to_owned),
        })
    }

    fn group_ref(&self, name: &str) -> Option<Ref> {
        let i = self.desired.group_index(name)?;
        Some(Ref {
            kind: Kind::Group,
            name: self.desired.groups[i].display_name.value.clone(),
            id: self.group_ids[i].map(str::to_owned),
        })
    }

    fn name_of(&mut self, id: &str) -> Option<(Kind, &'a str)> {
        let live = self.live;
        let names = self.names.get_or_insert_with(|| {
            let mut m = HashMap::with_capacity(live.users.len() + live.groups.len());
            for u in &live.users {
                if let Some(id) = u.id() {
                    m.insert(id, (Kind::User, u.natural_key()));
                }
            }
            for g in &live.groups {
                if let Some(id) = g.id() {
                    m.insert(id, (Kind::Group, g.natural_key()));
                }
            }
            m
        });
        names.get(id).copied()
    }

    /// Whether the target stores `name` of `schema` for users; notes it when not.
    fn supported(&mut self, schema: Schema, name: &'static str, span: Span) -> bool {
        let known = self
            .support_cache
            .iter()
            .find(|(s, n, _)| *s == schema && *n == name)
            .map(|(_, _, ok)| *ok);
        let ok = known.unwrap_or_else(|| {
            let ok = self.options.support.user_attr(schema, name);
            self.support_cache.push((schema, name, ok));
            ok
        });
        if ok {
            return true;
        }
        let entry = self.unsupported.entry(name).or_insert((0, span));
        entry.0 += 1;
        false
    }

    fn group_supported(&mut self, name: &'static str, span: Span) -> bool {
        if self.options.support.has(ResourceSchema::Group, name) {
            return true;
        }
        let entry = self.unsupported.entry(name).or_insert((0, span));
        entry.0 += 1;
        false
    }
}

/// Builds the changes of a plan (before the safety brakes).
pub(super) fn diff(
    desired: &DesiredState,
    live: &Snapshot,
    matched: &Matched,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let config = &desired.config;
    let mut ctx = Context {
        desired,
        live,
        options,
        user_ids: matched
            .users
            .iter()
            .map(|m| m.and_then(|i| live.users[i].id()))
            .collect(),
        group_ids: matched
            .groups
            .iter()
            .map(|m| m.and_then(|i| live.groups[i].id()))
            .collect(),
        protected_users: lower_set(config.protected.users.iter().map(|p| p.value.as_str())),
        protected_groups: lower_set(config.protected.groups.iter().map(|p| p.value.as_str())),
        unsupported: BTreeMap::new(),
        names: None,
        support_cache: Vec::new(),
    };
    let mut plan = Plan::default();
    for (i, user) in desired.users.iter().enumerate() {
        let live_user = matched.users[i].map(|l| &live.users[l]);
        let change = user_change(&mut ctx, user, live_user, &mut plan.warnings)?;
        push(&mut plan, change);
    }
    let memberships = desired.memberships();
    for (i, group) in desired.groups.iter().enumerate() {
        let live_group = matched.groups[i].map(|l| &live.groups[l]);
        let members = memberships.get(&group.display_name.value);
        let change = group_change(&mut ctx, group, live_group, members, &mut plan.warnings)?;
        push(&mut plan, change);
    }
    prune_users(&ctx, matched, &mut plan)?;
    prune_groups(&ctx, matched, &mut plan);
    for (attr, (count, span)) in &ctx.unsupported {
        plan.warnings.push(Warning {
            message: format!(
                "`{attr}` is set on {count} object(s) but the target's schemas have no such \
                 writable attribute: not managed on this target"
            ),
            source: Some(Source::at(&desired.sources, *span)),
        });
    }
    Ok(plan)
}

fn push(plan: &mut Plan, change: Option<Change>) {
    match change {
        Some(c) => plan.changes.push(c),
        None => plan.unchanged += 1,
    }
}

fn lower_set<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    names.map(str::to_lowercase).collect()
}

/// A scalar string attribute's comparison.
fn scalar(
    ctx: &mut Context<'_>,
    attr: Attr,
    want: Option<&Spanned<String>>,
    have: Option<&str>,
    out: &mut Diffs,
) {
    let Some(want) = want else { return };
    if !ctx.supported(attr.schema(), attr.name(), want.span) {
        return;
    }
    if have == Some(want.value.as_str()) {
        return;
    }
    out.set(attr, have.map(Value::from), Value::from(want.value.clone()));
}

/// Diffs and edits being collected for one object.
#[derive(Default)]
struct Diffs {
    diff: Vec<AttrDiff>,
    edits: Vec<Edit>,
    present: Vec<Attr>,
}

impl Diffs {
    fn set(&mut self, attr: Attr, before: Option<Value>, after: Value) {
        if before.is_some() {
            self.present.push(attr);
        }
        self.diff.push(AttrDiff {
            attribute: attr.name().to_owned(),
            before,
            after: Some(after.clone()),
            ..AttrDiff::default()
        });
        self.edits.push(Edit::Set { attr, value: after });
    }

    fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

/// One value of a keyed multi-valued attribute, borrowed from desired or live data. Nothing
/// is allocated unless the value differs.
#[derive(Clone, Copy)]
struct Item<'a> {
    /// The sub-attribute it is keyed by: `type`, `value` or `name`.
    sub: &'static str,
    /// The key's value.
    key: &'a str,
    /// `value` (contacts, roles) or `name` (proficiencies).
    value: &'a str,
    /// `type` of a contact.
    kind: Option<&'a str>,
    primary: Option<bool>,
    proficiency: Option<f64>,
}

impl Item<'_> {
    fn contact<'a>(value: &'a str, kind: Option<&'a str>, primary: Option<bool>) -> Item<'a> {
        match kind {
            Some(t) => Item {
                sub: "type",
                key: t,
                value,
                kind,
                primary,
                proficiency: None,
            },
            None => Item {
                sub: "value",
                key: value,
                value,
                kind,
                primary,
                proficiency: None,
            },
        }
    }

    fn role(name: &str) -> Item<'_> {
        Item {
            sub: "value",
            key: name,
            value: name,
            kind: None,
            primary: None,
            proficiency: None,
        }
    }

    fn proficiency(name: &str, level: f64) -> Item<'_> {
        Item {
            sub: "name",
            key: name,
            value: name,
            kind: None,
            primary: None,
            proficiency: Some(level),
        }
    }

    fn same_key(&self, other: &Item<'_>) -> bool {
        self.sub == other.sub && self.key.eq_ignore_ascii_case(other.key)
    }

    fn value_key(&self) -> ValueKey {
        ValueKey::new(self.sub, self.key)
    }

    /// The complex value sent to the server.
    fn to_json(self) -> Value {
        let mut v = serde_json::Map::new();
        if let Some(p) = self.proficiency {
            v.insert("name".into(), Value::from(self.value));
            v.insert("proficiency".into(), json!(p));
            return Value::Object(v);
        }
        v.insert("value".into(), Value::from(self.value));
        if let Some(t) = self.kind {
            v.insert("type".into(), Value::from(t));
        }
        if let Some(p) = self.primary {
            v.insert("primary".into(), Value::from(p));
        }
        Value::Object(v)
    }

    /// How it shows in a diff.
    fn label(&self) -> String {
        match (self.proficiency, self.kind) {
            (Some(p), _) => format!("{} ({p})", self.value),
            (None, Some(t)) => format!("{} ({t})", self.value),
            (None, None) => self.value.to_owned(),
        }
    }
}

fn email_type(kind: crate::model::EmailType) -> &'static str {
    use crate::model::EmailType;
    match kind {
        EmailType::Work => "work",
        EmailType::Home => "home",
        EmailType::Other => "other",
    }
}

fn phone_type(kind: crate::model::PhoneType) -> &'static str {
    use crate::model::PhoneType;
    match kind {
        PhoneType::Work => "work",
        PhoneType::Work2 => "work2",
        PhoneType::Work3 => "work3",
        PhoneType::Work4 => "work4",
        PhoneType::Home => "home",
        PhoneType::Mobile => "mobile",
        PhoneType::Fax => "fax",
        PhoneType::Pager => "pager",
        PhoneType::Microsoftteams => "microsoftteams",
        PhoneType::Zoomphone => "zoomphone",
        PhoneType::Eightbyeight => "eightbyeight",
        PhoneType::Ringcentral => "ringcentral",
        PhoneType::Other => "other",
    }
}

/// Live contacts as items: keyed by type, except those whose value a desired value without
/// a type names (those are keyed by value, as the desired one is).
fn live_contacts<'a>(values: &'a [MultiValue], by_value: &[&str]) -> Vec<Item<'a>> {
    values
        .iter()
        .map(|m| {
            let untyped = by_value.iter().any(|v| v.eq_ignore_ascii_case(&m.value));
            let mut item = Item::contact(&m.value, m.kind.as_deref(), m.primary);
            if untyped {
                item.sub = "value";
                item.key = &m.value;
            }
            item
        })
        .collect()
}

/// Compares a keyed set: values to add, replace and (when `authoritative`) remove.
fn keyed_set(
    attr: Multi,
    want: &[Item<'_>],
    have: &[Item<'_>],
    same: fn(&Item<'_>, &Item<'_>) -> bool,
    authoritative: bool,
    out: &mut Diffs,
) {
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut adds = Vec::new();
    for w in want {
        let mut hits = have.iter().filter(|h| h.same_key(w));
        match (hits.next(), hits.next()) {
            (None, _) => {
                added.push(w.label());
                adds.push(w.to_json());
            }
            (Some(one), None) if same(one, w) => {}
            (first, second) => {
                for h in first.into_iter().chain(second).chain(hits) {
                    removed.push(h.label());
                }
                added.push(w.label());
                out.edits.push(Edit::Replace {
                    attr,
                    key: w.value_key(),
                    value: w.to_json(),
                });
            }
        }
    }
    if authoritative {
        for h in have {
            if !want.iter().any(|w| w.same_key(h)) {
                removed.push(h.label());
                out.edits.push(Edit::Remove {
                    attr,
                    key: h.value_key(),
                });
            }
        }
    }
    if !adds.is_empty() {
        out.edits.push(Edit::Add { attr, values: adds });
    }
    if !added.is_empty() || !removed.is_empty() {
        out.diff.push(AttrDiff {
            attribute: attr.name().to_owned(),
            added,
            removed,
            ..AttrDiff::default()
        });
    }
}

/// Whether two emails agree: same address, case-insensitively, and where the desired one
/// says, the same `primary` (an unset live `primary` is false).
fn same_email(live: &Item<'_>, want: &Item<'_>) -> bool {
    live.value.eq_ignore_ascii_case(want.value) && same_primary(live, want)
}

/// Phone numbers compare exactly.
fn same_phone(live: &Item<'_>, want: &Item<'_>) -> bool {
    live.value == want.value && same_primary(live, want)
}

fn same_primary(live: &Item<'_>, want: &Item<'_>) -> bool {
    want.primary
        .is_none_or(|p| live.primary.unwrap_or(false) == p)
}

fn same_proficiency(live: &Item<'_>, want: &Item<'_>) -> bool {
    let level = |i: &Item<'_>| i.proficiency.unwrap_or(-1.0);
    (level(live) - level(want)).abs() < 1e-9
}

fn same_role(_: &Item<'_>, _: &Item<'_>) -> bool {
    true
}

#[allow(clippy::too_many_lines)]
fn user_change(
    ctx: &mut Context<'_>,
    user: &Spanned<DesiredUser>,
    live: Option<&Live<wire::User>>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Change>, PlanError> {
    let u = &user.value;
    let have = live
        .map(|l| parse_live(Kind::User, l))
        .transpose()?
        .unwrap_or_default();
    let no_ent = wire::EnterpriseUser::default();
    let ent = have.enterprise.as_ref().unwrap_or(&no_ent);
    let no_gen = wire::GenesysUser::default();
    let gen_ext = have.genesys.as_ref().unwrap_or(&no_gen);
    let mut d = Diffs::default();

    if live.is_some() && !have.user_name.eq_ignore_ascii_case(&u.user_name.value) {
        d.set(
            Attr::UserName,
            Some(Value::from(have.user_name.clone())),
            Value::from(u.user_name.value.clone()),
        );
    } else if live.is_none() {
        d.edits.push(Edit::Set {
            attr: Attr::UserName,
            value: Value::from(u.user_name.value.clone()),
        });
    }
    scalar(
        ctx,
        Attr::DisplayName,
        u.display_name.as_ref(),
        have.display_name.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::ExternalId,
        u.external_id.as_ref(),
        have.external_id.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::Title,
        u.title.as_ref(),
        have.title.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::EmployeeNumber,
        u.employee_number.as_ref(),
        ent.employee_number.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::Department,
        u.department.as_ref(),
        ent.department.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::Division,
        u.division.as_ref(),
        ent.division.as_deref(),
        &mut d,
    );
    scalar(
        ctx,
        Attr::DateHire,
        u.date_hire.as_ref(),
        ent.date_hire.as_deref(),
        &mut d,
    );
    let mut deactivating = false;
    if let Some(active) = &u.active
        && ctx.supported(Schema::Core, "active", active.span)
    {
        // A server that omits `active` is taken to mean an active account.
        let live_active = have.active.unwrap_or(true);
        if live.is_none() || live_active != active.value {
            let before = live.map(|_| Value::from(live_active));
            if live.is_some() {
                d.set(Attr::Active, before, Value::from(active.value));
                deactivating = !active.value;
            } else {
                d.set(Attr::Active, None, Value::from(active.value));
            }
        }
    }
    if let Some(manager) = &u.manager
        && ctx.supported(Schema::Enterprise, "manager", manager.span)
        && let Some(to) = ctx.user_ref(&manager.value)
    {
        let live_id = ent.manager.as_ref().map(|m| m.value.as_str());
        if to.id.is_none() || to.id.as_deref() != live_id {
            let before = ent.manager.as_ref().map(|m| {
                let name = ctx
                    .name_of(&m.value)
                    .map_or_else(|| m.value.clone(), |(_, n)| n.to_owned());
                Value::from(name)
            });
            if before.is_some() {
                d.present.push(Attr::Manager);
            }
            d.diff.push(AttrDiff {
                attribute: "manager".into(),
                before,
                after: Some(Value::from(to.name.clone())),
                ..AttrDiff::default()
            });
            d.edits.push(Edit::SetManager { to });
        }
    }
    if let Some(emails) = &u.emails
        && ctx.supported(Schema::Core, "emails", user.span)
    {
        let want: Vec<Item<'_>> = emails
            .iter()
            .map(|e| {
                Item::contact(
                    &e.value.value,
                    e.value.kind.map(email_type),
                    e.value.primary,
                )
            })
            .collect();
        let by_value: Vec<&str> = want
            .iter()
            .filter(|w| w.sub == "value")
            .map(|w| w.key)
            .collect();
        let have_emails = live_contacts(&have.emails, &by_value);
        keyed_set(Multi::Emails, &want, &have_emails, same_email, true, &mut d);
    }
    if let Some(phones) = &u.phone_numbers
        && ctx.supported(Schema::Core, "phoneNumbers", user.span)
    {
        let want: Vec<Item<'_>> = phones
            .iter()
            .map(|p| {
                Item::contact(
                    &p.value.value,
                    p.value.kind.map(phone_type),
                    p.value.primary,
                )
            })
            .collect();
        let by_value: Vec<&str> = want
            .iter()
            .filter(|w| w.sub == "value")
            .map(|w| w.key)
            .collect();
        let have_phones = live_contacts(&have.phone_numbers, &by_value);
        keyed_set(
            Multi::PhoneNumbers,
            &want,
            &have_phones,
            same_phone,
            true,
            &mut d,
        );
    }
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
            let want: Vec<Item<'_>> = want
                .iter()
                .map(|p| Item::proficiency(&p.value.name, p.value.proficiency))
                .collect();
            let have_items: Vec<Item<'_>> = have_list
                .iter()
                .map(|p| Item::proficiency(&p.name, p.proficiency))
                .collect();
            keyed_set(attr, &want, &have_items, same_proficiency, true, &mut d);
        }
    }
    if let Some(roles) = &u.roles
        && ctx.supported(Schema::Core, "roles", user.span)
    {
        if roles.iter().any(|r| r.divisions.is_some()) {
            warnings.push(Warning {
                message: "role grants limited to divisions are managed by name only on a \
                          SCIM target (divisions need the Genesys Cloud target)"
                    .into(),
                source: Some(Source::at(&ctx.desired.sources, user.span)),
            });
        }
        let mut want: Vec<Item<'_>> = Vec::with_capacity(roles.len());
        for r in roles {
            let item = Item::role(&r.value.name);
            if !want.iter().any(|w| w.same_key(&item)) {
                want.push(item);
            }
        }
        let have_roles: Vec<Item<'_>> = have.roles.iter().map(|r| Item::role(&r.value)).collect();
        let authoritative =
            ctx.desired.config.collections.user_roles == CollectionMode::Authoritative;
        keyed_set(
            Multi::Roles,
            &want,
            &have_roles,
            same_role,
            authoritative,
            &mut d,
        );
    }

    let desired = ctx.desired;
    let source = || Source::at(&desired.sources, user.span);
    let protected = ctx
        .protected_users
        .contains(&u.user_name.value.to_lowercase())
        || live.is_some_and(|l| {
            ctx.protected_users
                .contains(&l.natural_key().to_lowercase())
        });
    match live {
        None => {
            // Creates carry every managed attribute; the diff shows them all.
            let mut diff = vec![AttrDiff {
                attribute: "userName".into(),
                after: Some(Value::from(u.user_name.value.clone())),
                ..AttrDiff::default()
            }];
            diff.extend(d.diff);
            Ok(Some(Change {
                action: Action::Create,
                kind: Kind::User,
                key: u.user_name.value.clone(),
                id: None,
                version: None,
                source: source(),
                diff,
                edits: d.edits,
                present: Vec::new(),
                blocked: None,
            }))
        }
        Some(_) if d.is_empty() => Ok(None),
        Some(l) if protected => {
            let attrs: Vec<&str> = d.diff.iter().map(|a| a.attribute.as_str()).collect();
            warnings.push(Warning {
                message: format!(
                    "user {:?} is protected: not changed, though live differs in {}",
                    l.natural_key(),
                    attrs.join(", ")
                ),
                source: Some(source()),
            });
            Ok(None)
        }
        Some(l) => Ok(Some(Change {
            action: if deactivating {
                Action::Deactivate
            } else {
                Action::Patch
            },
            kind: Kind::User,
            key: u.user_name.value.clone(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
            source: source(),
            diff: d.diff,
            edits: d.edits,
            present: d.present,
            blocked: None,
        })),
    }
}

#[allow(clippy::too_many_lines)]
fn group_change(
    ctx: &mut Context<'_>,
    group: &Spanned<crate::model::Group>,
    live: Option<&Live<wire::Group>>,
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
            value: Value::from(g.display_name.value.clone()),
        });
    } else if have.display_name != g.display_name.value {
        d.set(
            Attr::DisplayName,
            Some(Value::from(have.display_name.clone())),
            Value::from(g.display_name.value.clone()),
        );
    }
    if let Some(e) = &g.external_id
        && ctx.group_supported("externalId", e.span)
        && have.external_id.as_deref() != Some(e.value.as_str())
    {
        d.set(
            Attr::ExternalId,
            have.external_id.clone().map(Value::from),
            Value::from(e.value.clone()),
        );
    }
    if let Some(desc) = &g.description
        && ctx.group_supported("description", desc.span)
        && have.description.as_deref() != Some(desc.value.as_str())
    {
        d.set(
            Attr::Description,
            have.description.clone().map(Value::from),
            Value::from(desc.value.clone()),
        );
    }
    if let Some(members) = members {
        let want: Vec<Ref> = members
            .iter()
            .filter_map(|m| ctx.user_ref(m).or_else(|| ctx.group_ref(m)))
            .collect();
        let live_ids: HashSet<&str> = have.members.iter().map(|m| m.value.as_str()).collect();
        let add: Vec<Ref> = want
            .iter()
            .filter(|r| r.id.as_deref().is_none_or(|id| !live_ids.contains(id)))
            .cloned()
            .collect();
        let mut remove = Vec::new();
        if ctx.desired.config.collections.group_members == CollectionMode::Authoritative {
            let wanted: HashSet<&str> = want.iter().filter_map(|r| r.id.as_deref()).collect();
            for m in &have.members {
                if wanted.contains(m.value.as_str()) {
                    continue;
                }
                let (kind, name) = ctx.name_of(&m.value).unwrap_or((
                    if m.kind.as_deref() == Some("Group") {
                        Kind::Group
                    } else {
                        Kind::User
                    },
                    "",
                ));
                let protected = match kind {
                    Kind::User => ctx.protected_users.contains(&name.to_lowercase()),
                    Kind::Group => ctx.protected_groups.contains(&name.to_lowercase()),
                };
                if protected && !name.is_empty() {
                    continue;
                }
                remove.push(Ref {
                    kind,
                    name: if name.is_empty() {
                        m.value.clone()
                    } else {
                        name.to_owned()
                    },
                    id: Some(m.value.clone()),
                });
            }
        }
        if !add.is_empty() || !remove.is_empty() {
            d.diff.push(AttrDiff {
                attribute: "members".into(),
                added: add.iter().map(|r| r.name.clone()).collect(),
                removed: remove.iter().map(|r| r.name.clone()).collect(),
                ..AttrDiff::default()
            });
            if !add.is_empty() {
                d.edits.push(Edit::AddMembers { members: add });
            }
            if !remove.is_empty() {
                d.edits.push(Edit::RemoveMembers { members: remove });
            }
        }
    }
    let desired = ctx.desired;
    let source = || Source::at(&desired.sources, group.span);
    let protected = ctx
        .protected_groups
        .contains(&g.display_name.value.to_lowercase());
    match live {
        None => {
            let mut diff = vec![AttrDiff {
                attribute: "displayName".into(),
                after: Some(Value::from(g.display_name.value.clone())),
                ..AttrDiff::default()
            }];
            diff.extend(d.diff);
            Ok(Some(Change {
                action: Action::Create,
                kind: Kind::Group,
                key: g.display_name.value.clone(),
                id: None,
                version: None,
                source: source(),
                diff,
                edits: d.edits,
                present: Vec::new(),
                blocked: None,
            }))
        }
        Some(_) if d.is_empty() => Ok(None),
        Some(l) if protected => {
            warnings.push(Warning {
                message: format!(
                    "group {:?} is protected: not changed, though live differs",
                    l.natural_key()
                ),
                source: Some(source()),
            });
            Ok(None)
        }
        Some(l) => Ok(Some(Change {
            action: Action::Patch,
            kind: Kind::Group,
            key: g.display_name.value.clone(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
            source: source(),
            diff: d.diff,
            edits: d.edits,
            present: d.present,
            blocked: None,
        })),
    }
}

/// Whether ownership covers an unmatched live object with this name and externalId.
fn owned(mode: &OwnershipMode, name: &str, external_id: Option<&str>) -> bool {
    match mode {
        OwnershipMode::Listed => false,
        OwnershipMode::All => true,
        OwnershipMode::Selector(s) => selected(s, name, external_id),
    }
}

fn selected(s: &Selector, name: &str, external_id: Option<&str>) -> bool {
    if s.is_empty() {
        return false;
    }
    let lower = name.to_lowercase();
    s.name_suffix
        .as_ref()
        .is_none_or(|x| lower.ends_with(&x.to_lowercase()))
        && s.name_prefix
            .as_ref()
            .is_none_or(|x| lower.starts_with(&x.to_lowercase()))
        && s.external_id_prefix
            .as_ref()
            .is_none_or(|x| external_id.is_some_and(|e| e.starts_with(x.as_str())))
}

fn unmatched(matched: &[Option<usize>], live: usize) -> Vec<bool> {
    let mut free = vec![true; live];
    for i in matched.iter().flatten() {
        free[*i] = false;
    }
    free
}

fn prune_users(ctx: &Context<'_>, matched: &Matched, plan: &mut Plan) -> Result<(), PlanError> {
    let config = &ctx.desired.config;
    let policy = config.prune.users;
    if policy == UserPrune::None {
        return Ok(());
    }
    let free = unmatched(&matched.users, ctx.live.users.len());
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
        let (action, edits, diff) = match policy {
            UserPrune::Deactivate => {
                let user = parse_live(Kind::User, l)?;
                if user.active == Some(false) {
                    continue;
                }
                (
                    Action::Deactivate,
                    vec![Edit::Set {
                        attr: Attr::Active,
                        value: Value::Bool(false),
                    }],
                    vec![AttrDiff {
                        attribute: "active".into(),
                        before: Some(Value::Bool(true)),
                        after: Some(Value::Bool(false)),
                        ..AttrDiff::default()
                    }],
                )
            }
            UserPrune::Delete | UserPrune::None => (Action::Delete, Vec::new(), Vec::new()),
        };
        plan.changes.push(Change {
            action,
            kind: Kind::User,
            key: l.natural_key().to_owned(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
            source: Source::Absent,
            diff,
            edits,
            present: vec![Attr::Active],
            blocked: None,
        });
    }
    Ok(())
}

fn prune_groups(ctx: &Context<'_>, matched: &Matched, plan: &mut Plan) {
    let config = &ctx.desired.config;
    if config.prune.groups == GroupPrune::None {
        return;
    }
    let free = unmatched(&matched.groups, ctx.live.groups.len());
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
            key: l.natural_key().to_owned(),
            id: l.id().map(str::to_owned),
            version: l.version().map(str::to_owned),
            source: Source::Absent,
            diff: Vec::new(),
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
        });
    }
}
