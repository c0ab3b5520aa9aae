//! Attribute-level comparison of matched objects, creates, memberships and prunes.

mod twins;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::{Value, json};

use crate::desired::DesiredState;
use crate::model::tenant::{self, Live, MultiValue, Resource, Snapshot};
use crate::model::{
    CollectionMode, GroupPrune, OwnershipMode, Selector, Span, Spanned, User as DesiredUser,
    UserPrune,
};

use super::matching::Matched;
use super::{
    Action, Attr, AttrDiff, Change, Edit, Kind, Multi, Plan, PlanError, PlanOptions, Ref,
    ResourceSchema, Schema, Source, TargetCapabilities, ValueKey, Warning,
};

/// Attributes YAML sets but the target cannot store: attribute → (objects, first place).
type Unsupported = BTreeMap<&'static str, (usize, Span)>;

/// Everything the per-object diffs share.
pub(super) struct Context<'a> {
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
    /// Objects created since the snapshot (kind, lower-cased name → id): an applier that
    /// re-plans one object mid-run refers to them by id, as the live object now does.
    created: HashMap<(Kind, String), String>,
}

fn parse_live<R: Resource>(kind: Kind, live: &Live<R>) -> Result<R, PlanError> {
    live.parse().map_err(|e| PlanError::Live {
        kind,
        id: live.id().unwrap_or("?").to_owned(),
        error: e.to_string(),
    })
}

impl<'a> Context<'a> {
    pub(super) fn new(
        desired: &'a DesiredState,
        live: &'a Snapshot,
        matched: &Matched,
        options: &'a PlanOptions,
    ) -> Context<'a> {
        let config = &desired.config;
        Context {
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
            created: HashMap::new(),
        }
    }

    /// Notes an object created after the snapshot was taken.
    pub(super) fn note_created(&mut self, kind: Kind, name: &str, id: &str) {
        self.created
            .insert((kind, name.to_lowercase()), id.to_owned());
    }

    fn created_id(&self, kind: Kind, name: &str) -> Option<String> {
        if self.created.is_empty() {
            return None;
        }
        self.created.get(&(kind, name.to_lowercase())).cloned()
    }

    fn user_ref(&self, name: &str) -> Option<Ref> {
        let i = self.desired.user_index(name)?;
        let name = self.desired.users[i].user_name.value.to_string();
        let id = self.user_ids[i]
            .map(str::to_owned)
            .or_else(|| self.created_id(Kind::User, &name));
        Some(Ref {
            kind: Kind::User,
            name,
            id,
        })
    }

    fn group_ref(&self, name: &str) -> Option<Ref> {
        let i = self.desired.group_index(name)?;
        let name = self.desired.groups[i].display_name.value.to_string();
        let id = self.group_ids[i]
            .map(str::to_owned)
            .or_else(|| self.created_id(Kind::Group, &name));
        Some(Ref {
            kind: Kind::Group,
            name,
            id,
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
            let ok = super::user_attr(&self.options.target.attributes, schema, name);
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
        if self
            .options
            .target
            .attributes
            .has(ResourceSchema::Group, name)
        {
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
    let mut ctx = Context::new(desired, live, matched, options);
    let mut plan = Plan::default();
    let held = |kind: Kind, i: usize| {
        matched
            .held
            .desired
            .iter()
            .any(|(k, j, _)| *k == kind && *j == i)
    };
    for (i, user) in desired.users.iter().enumerate() {
        if held(Kind::User, i) {
            continue;
        }
        let live_user = matched.users[i].map(|l| &live.users[l]);
        let change = user_change(&mut ctx, user, live_user, &mut plan.warnings)?;
        push(&mut plan, change);
    }
    let memberships = memberships(desired, &options.target, &mut plan.warnings);
    for (i, group) in desired.groups.iter().enumerate() {
        if held(Kind::Group, i) {
            continue;
        }
        let live_group = matched.groups[i].map(|l| &live.groups[l]);
        let members = memberships.get(group.display_name.value.as_str());
        let mut change = group_change(&mut ctx, group, live_group, members, &mut plan.warnings)?;
        if let Some(t) = matched.twins.iter().find(|t| t.desired == i)
            && let Some(survivor) = live_group
        {
            let listed = members.is_some();
            change = twins::merge(
                &mut ctx, group, survivor, &t.others, listed, change, &mut plan,
            )?;
        }
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
    want: Option<&Spanned<crate::model::Text>>,
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
    out.set(
        attr,
        have.map(Value::from),
        Value::from(want.value.as_str()),
    );
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

/// One keyed value of a multi-valued attribute, desired or live.
struct Keyed {
    key: ValueKey,
    value: Value,
    /// How it shows in a diff.
    label: String,
}

/// A contact (email or phone number) as SCIM writes it.
fn contact_json(value: &str, kind: Option<&str>, primary: Option<bool>) -> Value {
    let mut v = serde_json::Map::new();
    v.insert("value".into(), Value::from(value));
    if let Some(t) = kind {
        v.insert("type".into(), Value::from(t));
    }
    if let Some(p) = primary {
        v.insert("primary".into(), Value::from(p));
    }
    Value::Object(v)
}

fn contact_label(value: &str, kind: Option<&str>) -> String {
    match kind {
        Some(t) => format!("{value} ({t})"),
        None => value.to_owned(),
    }
}

/// Desired contacts as keyed values: one per address (the first where one is listed twice),
/// keyed by `type` where no other desired value has that type, else by the address. A key
/// two desired values shared would have both fight over the same live values forever.
fn desired_contacts<'a>(
    items: impl Iterator<Item = (&'a str, Option<String>, Option<bool>)>,
) -> Vec<Keyed> {
    let mut seen = HashSet::new();
    let items: Vec<_> = items
        .filter(|(value, _, _)| seen.insert(value.to_lowercase()))
        .collect();
    let shared = |t: &str| {
        items
            .iter()
            .filter(|(_, k, _)| k.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(t)))
            .count()
            > 1
    };
    items
        .iter()
        .map(|(value, kind, primary)| {
            let key = match kind {
                Some(t) if !shared(t) => ValueKey::new("type", t),
                _ => ValueKey::new("value", value),
            };
            Keyed {
                key,
                value: contact_json(value, kind.as_deref(), *primary),
                label: contact_label(value, kind.as_deref()),
            }
        })
        .collect()
}

/// Live contacts as keyed values: by address where desired state keys that address, else by
/// `type` (by address when untyped). The value keeps everything a filter can test.
fn live_contacts(values: &[MultiValue], want: &[Keyed]) -> Vec<Keyed> {
    let by_value: HashSet<String> = want
        .iter()
        .filter(|w| w.key.sub == "value")
        .map(|w| w.key.equals.to_lowercase())
        .collect();
    values
        .iter()
        .map(|m| {
            let key = match &m.kind {
                Some(t) if !by_value.contains(&m.value.to_lowercase()) => ValueKey::new("type", t),
                _ => ValueKey::new("value", &m.value),
            };
            Keyed {
                key,
                value: contact_json(&m.value, m.kind.as_deref(), m.primary),
                label: contact_label(&m.value, m.kind.as_deref()),
            }
        })
        .collect()
}

/// Whether two keys name the same value. Routing skill and language names (`name`) are
/// case-sensitive on Genesys Cloud (genesys-api.md: "the case-sensitive skill name"), as
/// validation treats them; types and values compare as SCIM's `eq` does, ignoring case.
/// (Edits still target values case-insensitively, see [`ValueKey::matches`], so a filter
/// that could also hit a differently cased twin falls back to a whole-list replace.)
fn same_key(a: &ValueKey, b: &ValueKey) -> bool {
    a.sub == b.sub
        && if a.sub == "name" {
            a.equals == b.equals
        } else {
            a.equals.eq_ignore_ascii_case(&b.equals)
        }
}

/// What a change does to one live value of a keyed set.
#[derive(Clone, Copy)]
enum Fate<'a> {
    Keep,
    Replace(&'a Value),
    Remove,
}

/// Compares a keyed set: values to add, replace and (when `authoritative`) remove. Each
/// desired key claims every live value with that key; when they are not all as desired, one
/// is replaced, or several are removed and the desired value added.
fn keyed_set(
    attr: Multi,
    want: &[Keyed],
    have: &[Keyed],
    same: impl Fn(&Value, &Value) -> bool,
    authoritative: bool,
    out: &mut Diffs,
) {
    let mut keys: Vec<&ValueKey> = Vec::with_capacity(want.len());
    let want: Vec<&Keyed> = want
        .iter()
        .filter(|w| {
            let first = !keys.iter().any(|k| same_key(k, &w.key));
            keys.push(&w.key);
            first
        })
        .collect();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut fate = vec![Fate::Keep; have.len()];
    let mut adds = Vec::new();
    for w in &want {
        let hits: Vec<usize> = (0..have.len())
            .filter(|&i| same_key(&have[i].key, &w.key))
            .collect();
        if hits.iter().all(|&i| same(&have[i].value, &w.value)) && !hits.is_empty() {
            continue;
        }
        for &i in &hits {
            removed.push(have[i].label.clone());
        }
        added.push(w.label.clone());
        if let [one] = hits.as_slice() {
            fate[*one] = Fate::Replace(&w.value);
        } else {
            for &i in &hits {
                fate[i] = Fate::Remove;
            }
            adds.push(w.value.clone());
        }
    }
    if authoritative {
        for (i, h) in have.iter().enumerate() {
            if !want.iter().any(|w| same_key(&w.key, &h.key)) {
                removed.push(h.label.clone());
                fate[i] = Fate::Remove;
            }
        }
    }
    if added.is_empty() && removed.is_empty() {
        return;
    }
    out.diff.push(AttrDiff {
        attribute: attr.name().to_owned(),
        added,
        removed,
        ..AttrDiff::default()
    });
    out.edits.extend(set_edits(attr, have, &fate, adds));
}

/// The edits that give each live value its fate, then add `adds`: removals, then
/// replacements, each through a value filter that picks out exactly the values meant at that
/// point (checked against the list as the earlier edits leave it), then one add. When no
/// filter is exact (the live set holds a type twice and an address twice, say), a filter
/// would also hit a value that must stay, so the whole attribute is replaced instead.
fn set_edits(attr: Multi, have: &[Keyed], fate: &[Fate<'_>], adds: Vec<Value>) -> Vec<Edit> {
    // The list as the server holds it while the edits apply: (live index, value).
    let mut list: Vec<(Option<usize>, Value)> = have
        .iter()
        .enumerate()
        .map(|(i, h)| (Some(i), h.value.clone()))
        .collect();
    let intended: Vec<Value> = have
        .iter()
        .zip(fate)
        .filter_map(|(h, f)| match f {
            Fate::Keep => Some(h.value.clone()),
            Fate::Replace(v) => Some((*v).clone()),
            Fate::Remove => None,
        })
        .chain(adds.iter().cloned())
        .collect();
    // A filter that matches exactly the entries of `list` at positions `targets`.
    let exact = |list: &[(Option<usize>, Value)], targets: &[usize], candidates: Vec<ValueKey>| {
        candidates.into_iter().find(|k| {
            list.iter()
                .enumerate()
                .all(|(p, (_, v))| k.matches(v) == targets.contains(&p))
        })
    };
    let candidates = |h: &Keyed, alone: bool| {
        let mut keys = vec![h.key.clone()];
        if alone {
            for sub in ["value", "type", "name"] {
                if let Some(s) = h.value.get(sub).and_then(Value::as_str) {
                    keys.push(ValueKey::new(sub, s));
                }
            }
        }
        keys
    };
    let fallback = || {
        vec![Edit::ReplaceAll {
            attr,
            values: intended.clone(),
        }]
    };
    let mut edits = Vec::new();
    let mut done = vec![false; have.len()];
    for i in 0..have.len() {
        if !matches!(fate[i], Fate::Remove) || done[i] {
            continue;
        }
        let group: Vec<usize> = (i..have.len())
            .filter(|&j| matches!(fate[j], Fate::Remove) && same_key(&have[j].key, &have[i].key))
            .collect();
        let targets: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, (origin, _))| origin.is_some_and(|o| group.contains(&o)))
            .map(|(p, _)| p)
            .collect();
        let Some(key) = exact(&list, &targets, candidates(&have[i], group.len() == 1)) else {
            return fallback();
        };
        list.retain(|(_, v)| !key.matches(v));
        for j in group {
            done[j] = true;
        }
        edits.push(Edit::Remove { attr, key });
    }
    for (i, f) in fate.iter().enumerate() {
        let Fate::Replace(value) = f else { continue };
        let Some(p) = list.iter().position(|(origin, _)| *origin == Some(i)) else {
            return fallback();
        };
        let Some(key) = exact(&list, &[p], candidates(&have[i], true)) else {
            return fallback();
        };
        list[p] = (None, (*value).clone());
        edits.push(Edit::Replace {
            attr,
            key,
            value: (*value).clone(),
        });
    }
    if !adds.is_empty() {
        edits.push(Edit::Add { attr, values: adds });
    }
    edits
}

/// Whether two contact values agree: same value (emails case-insensitively) and, where the
/// desired one says, the same `type` and `primary`.
fn same_contact(case_insensitive: bool) -> impl Fn(&Value, &Value) -> bool {
    move |live, want| {
        let text = |v: &Value| {
            v.get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let values_equal = if case_insensitive {
            text(live).eq_ignore_ascii_case(&text(want))
        } else {
            text(live) == text(want)
        };
        let primary_ok = match want.get("primary").and_then(Value::as_bool) {
            None => true,
            Some(p) => {
                live.get("primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    == p
            }
        };
        let type_ok = want.get("type").and_then(Value::as_str).is_none_or(|t| {
            live.get("type")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(t))
        });
        values_equal && type_ok && primary_ok
    }
}

fn same_proficiency(live: &Value, want: &Value) -> bool {
    let p = |v: &Value| v.get("proficiency").and_then(Value::as_f64).unwrap_or(-1.0);
    (p(live) - p(want)).abs() < 1e-9
}

fn proficiencies(values: &[crate::model::Proficiency]) -> Vec<Keyed> {
    values
        .iter()
        .map(|p| Keyed {
            key: ValueKey::new("name", &p.name),
            value: json!({"name": p.name, "proficiency": p.proficiency}),
            label: format!("{} ({})", p.name, p.proficiency),
        })
        .collect()
}

fn live_proficiencies(values: &[tenant::Proficiency]) -> Vec<Keyed> {
    values
        .iter()
        .map(|p| Keyed {
            key: ValueKey::new("name", &p.name),
            value: json!({"name": p.name, "proficiency": p.proficiency}),
            label: format!("{} ({})", p.name, p.proficiency),
        })
        .collect()
}

#[allow(clippy::too_many_lines)]
pub(super) fn user_change(
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
    let no_ent = tenant::EnterpriseUser::default();
    let ent = have.enterprise.as_ref().unwrap_or(&no_ent);
    let no_gen = tenant::GenesysUser::default();
    let gen_ext = have.genesys.as_ref().unwrap_or(&no_gen);
    let mut d = Diffs::default();

    if live.is_some() && !have.user_name.eq_ignore_ascii_case(&u.user_name.value) {
        d.set(
            Attr::UserName,
            Some(Value::from(have.user_name.clone())),
            Value::from(u.user_name.value.to_string()),
        );
    } else if live.is_none() {
        d.edits.push(Edit::Set {
            attr: Attr::UserName,
            value: Value::from(u.user_name.value.to_string()),
        });
    }
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
        scalar(ctx, attr, want.as_ref(), live_value, &mut d);
    }
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
        let want = desired_contacts(emails.iter().map(|e| {
            (
                e.value.value.as_str(),
                e.kind.map(|k| k.name().to_owned()),
                e.primary,
            )
        }));
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
            &mut d,
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
            let values: Vec<crate::model::Proficiency> =
                want.iter().map(|p| p.value.clone()).collect();
            keyed_set(
                attr,
                &proficiencies(&values),
                &live_proficiencies(have_list),
                same_proficiency,
                true,
                &mut d,
            );
        }
    }
    if let Some(roles) = &u.roles
        && ctx.supported(Schema::Core, "roles", user.span)
    {
        let authoritative =
            ctx.desired.config.collections.user_roles == CollectionMode::Authoritative;
        let source = Source::at(&ctx.desired.sources, user.span);
        let grants = super::grants::user_grants(
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
        let want: Vec<Keyed> = roles
            .iter()
            .filter(|r| by_name(&r.name) && seen.insert(r.name.to_lowercase()))
            .map(|r| Keyed {
                key: ValueKey::new("value", &r.name),
                value: json!({"value": r.name}),
                label: r.name.to_string(),
            })
            .collect();
        let have_roles: Vec<Keyed> = have
            .roles
            .iter()
            .filter(|r| by_name(&r.value))
            .map(|r| Keyed {
                key: ValueKey::new("value", &r.value),
                value: json!({"value": r.value}),
                label: r.value.clone(),
            })
            .collect();
        keyed_set(
            Multi::Roles,
            &want,
            &have_roles,
            |_, _| true,
            authoritative,
            &mut d,
        );
        if let Some((diff, edit)) = grants.and_then(|g| g.change) {
            d.diff.push(diff);
            d.edits.push(edit);
        }
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
                after: Some(Value::from(u.user_name.value.to_string())),
                ..AttrDiff::default()
            }];
            diff.extend(d.diff);
            Ok(Some(Change {
                action: Action::Create,
                kind: Kind::User,
                key: u.user_name.value.to_string(),
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
            key: u.user_name.value.to_string(),
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
pub(super) fn group_change(
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
            value: Value::from(g.display_name.value.to_string()),
        });
    } else if have.display_name != g.display_name.value {
        d.set(
            Attr::DisplayName,
            Some(Value::from(have.display_name.clone())),
            Value::from(g.display_name.value.to_string()),
        );
    }
    if let Some(e) = &g.external_id
        && ctx.group_supported("externalId", e.span)
        && have.external_id.as_deref() != Some(e.value.as_str())
    {
        d.set(
            Attr::ExternalId,
            have.external_id.clone().map(Value::from),
            Value::from(e.value.as_str()),
        );
    }
    if let Some(desc) = &g.description
        && ctx.group_supported("description", desc.span)
        && have.description.as_deref() != Some(desc.value.as_str())
    {
        d.set(
            Attr::Description,
            have.description.clone().map(Value::from),
            Value::from(desc.value.as_str()),
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
                    Kind::Role => false,
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
    // Protected by either name: a group matched under an old name or by externalId is still
    // the protected live group.
    let protected = ctx
        .protected_groups
        .contains(&g.display_name.value.to_lowercase())
        || live.is_some_and(|l| {
            ctx.protected_groups
                .contains(&l.natural_key().to_lowercase())
        });
    match live {
        None => {
            let mut diff = vec![AttrDiff {
                attribute: "displayName".into(),
                after: Some(Value::from(g.display_name.value.to_string())),
                ..AttrDiff::default()
            }];
            diff.extend(d.diff);
            Ok(Some(Change {
                action: Action::Create,
                kind: Kind::Group,
                key: g.display_name.value.to_string(),
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
            key: g.display_name.value.to_string(),
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
pub(super) fn owned(mode: &OwnershipMode, name: &str, external_id: Option<&str>) -> bool {
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

/// Desired group members. On a target whose groups cannot contain groups (Genesys Cloud), a
/// member group's users become direct members (with a warning per nesting).
pub(super) fn memberships(
    desired: &DesiredState,
    target: &TargetCapabilities,
    warnings: &mut Vec<Warning>,
) -> BTreeMap<String, BTreeSet<String>> {
    if target.nested_groups {
        return desired.memberships();
    }
    let (flat, nested) = desired.flattened_memberships();
    for (group, inner) in nested {
        let span = desired.group(&group).map(|g| g.span);
        warnings.push(Warning {
            message: format!(
                "Genesys Cloud groups cannot contain groups: the members of `{inner}` are made direct members of `{group}`"
            ),
            source: span.map(|s| Source::at(&desired.sources, s)),
        });
    }
    flat
}

/// Per live object: whether no desired object matched it (and no ambiguous match holds it).
fn unmatched(matched: &[Option<usize>], held: &[bool], live: usize) -> Vec<bool> {
    let mut free = vec![true; live];
    for i in matched.iter().flatten() {
        free[*i] = false;
    }
    for (i, _) in held.iter().enumerate().filter(|(_, h)| **h) {
        free[i] = false;
    }
    free
}

fn prune_users(ctx: &Context<'_>, matched: &Matched, plan: &mut Plan) -> Result<(), PlanError> {
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
        // good (genesys-api.md §6), so an active user is only deactivated, and deleted by a
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
                    value: Value::Bool(false),
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{
        Action, Attr, AttributeSupport, Edit, Kind, Multi, PlanOptions, Ref, ResourceSchema,
        TargetCapabilities, ValueKey,
    };

    const THREE: &str = "users:
  - userName: a@x.example
    title: Lead
    department: Ops
    displayName: A
  - userName: b@x.example
    title: Agent
    department: Ops
  - userName: c@x.example
    title: Agent
";

    fn supporting(support: AttributeSupport) -> PlanOptions {
        PlanOptions {
            target: TargetCapabilities::storing(support),
            ..PlanOptions::default()
        }
    }

    fn names_of(edits: &[Edit]) -> Vec<&'static str> {
        edits
            .iter()
            .map(|e| match e {
                Edit::Set { attr, .. } => attr.name(),
                Edit::SetManager { .. } => "manager",
                Edit::Add { attr, .. }
                | Edit::Replace { attr, .. }
                | Edit::Remove { attr, .. }
                | Edit::ReplaceAll { attr, .. } => attr.name(),
                Edit::AddMembers { .. } | Edit::RemoveMembers { .. } => "members",
                Edit::Role { .. } => "role",
                Edit::Grants { .. } => "roleGrants",
            })
            .collect()
    }

    // An attribute the target cannot store gives one warning for all objects that set it
    // (pointing at the first), and no edit, neither in creates nor in patches.
    // Skill names differing only in case are two skills, as validation and Genesys Cloud
    // have them: a tenant holding both plans to nothing, and renaming `billing` to `Billing`
    // replaces the one with the other, and the simulated server ends where desired.
    #[test]
    fn routing_skill_names_are_case_sensitive() {
        let yaml = |skills: &str| {
            format!("users:\n  - userName: a@x.example\n    routingSkills: [{skills}]\n")
        };
        let ext = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example", ext: {"routingSkills": [
                    {"name": "Billing", "proficiency": 3}, {"name": "billing", "proficiency": 4}
                ]}}),
            ],
            &[],
        );
        let both = desired_with(
            "",
            &yaml("{name: Billing, proficiency: 3}, {name: billing, proficiency: 4}"),
        );
        assert!(plan_ok(&both, &live, &PlanOptions::default()).is_empty());

        let one = desired_with("", &yaml("{name: Billing, proficiency: 3}"));
        let plan = plan_ok(&one, &live, &PlanOptions::default());
        let c = change(&plan, Kind::User, "a@x.example").expect("a patch of a");
        let skills = c
            .diff
            .iter()
            .find(|d| d.attribute == "routingSkills")
            .unwrap_or_else(|| panic!("{c:#?}"));
        assert_eq!(skills.removed, ["billing (4)"], "{c:#?}");
        assert!(skills.added.is_empty(), "{c:#?}");
        let after = crate::plan::tests::simulate(&plan, &live);
        assert!(plan_ok(&one, &after, &PlanOptions::default()).is_empty());
    }

    #[test]
    fn unsupported_attributes_warn_once_and_are_not_written() {
        let desired = desired_with("", THREE);
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example", "title": "Agent", "displayName": "Old"}),
                json!({"id": "b", "userName": "b@x.example"}),
            ],
            &[],
        );
        let support = AttributeSupport::only([
            (ResourceSchema::User, "userName"),
            (ResourceSchema::User, "displayName"),
        ]);
        let plan = plan_ok(&desired, &live, &supporting(support));
        let messages: Vec<(&str, String)> = plan
            .warnings
            .iter()
            .map(|w| {
                (
                    w.message.as_str(),
                    w.source
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            messages,
            vec![
                (
                    "`department` is set on 2 object(s) but the target's schemas have no such writable attribute: not managed on this target",
                    "org.yaml:4".to_owned()
                ),
                (
                    "`title` is set on 3 object(s) but the target's schemas have no such writable attribute: not managed on this target",
                    "org.yaml:3".to_owned()
                ),
            ]
        );
        let a = change(&plan, Kind::User, "a@x.example").expect("displayName differs");
        assert_eq!(names_of(&a.edits), vec!["displayName"]);
        assert!(
            change(&plan, Kind::User, "b@x.example").is_none(),
            "{plan:#?}"
        );
        let c = change(&plan, Kind::User, "c@x.example").expect("created");
        assert_eq!(c.action, Action::Create);
        assert_eq!(names_of(&c.edits), vec!["userName"]);
    }

    // The same with what a target's `/Schemas` give (`scim::wire::attribute_support` reads
    // them): `title` read-only, so unsupported; names matched case-insensitively.
    #[test]
    fn support_from_schemas() {
        let support = AttributeSupport::only([
            (ResourceSchema::User, "userName"),
            (ResourceSchema::Group, "displayName"),
            (ResourceSchema::User, "displayName"),
            (ResourceSchema::Enterprise, "Department"),
        ]);

        let desired = desired_with("", THREE);
        let plan = plan_ok(&desired, &snapshot(&[], &[]), &supporting(support));
        assert_eq!(plan.warnings.len(), 1, "{:#?}", plan.warnings);
        assert!(
            plan.warnings[0]
                .message
                .starts_with("`title` is set on 3 object(s)")
        );
        let a = change(&plan, Kind::User, "a@x.example").expect("created");
        assert_eq!(
            names_of(&a.edits),
            vec!["userName", "displayName", "department"]
        );
    }

    // Genesys Cloud offboards deactivate-first even under `prune: {users: delete}`: an active
    // user absent from YAML is deactivated, and only an inactive one deleted.
    #[test]
    fn genesys_deletes_only_inactive_users() {
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example", "active": true}),
                json!({"id": "b", "userName": "b@x.example", "active": false}),
                json!({"id": "c", "userName": "c@x.example"}),
            ],
            &[],
        );
        let config =
            "ownership: {users: all}\nprune: {users: delete}\nsafety: {maxDeletePercent: 100}\n";
        let genesys = desired_with(
            &format!(
                "{config}target: {{kind: genesys, region: mypurecloud.com, clientId: {{fromEnv: A}}, clientSecret: {{fromEnv: B}}}}\n"
            ),
            "users: []\n",
        );
        let actions = |plan: &crate::plan::Plan| -> Vec<(String, Action)> {
            plan.changes
                .iter()
                .map(|c| (c.key.clone(), c.action))
                .collect()
        };
        let options = PlanOptions {
            target: crate::plan::tests::genesys_target(),
            ..PlanOptions::default()
        };
        let plan = plan_ok(&genesys, &live, &options);
        assert_eq!(
            actions(&plan),
            vec![
                ("a@x.example".to_owned(), Action::Deactivate),
                ("c@x.example".to_owned(), Action::Deactivate),
                ("b@x.example".to_owned(), Action::Delete),
            ],
            "{plan:#?}"
        );
        let scim = desired_with(config, "users: []\n");
        let plan = plan_ok(&scim, &live, &PlanOptions::default());
        assert!(
            plan.changes.iter().all(|c| c.action == Action::Delete),
            "{plan:#?}"
        );
    }

    // Protected principals are never changed: not patched though they differ (a warning says
    // so), not pruned, not removed from a group whose members are authoritative.
    #[test]
    fn protected_objects_are_never_changed() {
        let desired = desired_with(
            "ownership: {users: all, groups: all}\nprune: {users: delete}\nsafety: {maxDeletePercent: 100}\nprotected: {users: [Root@x.example, keep@x.example], groups: [Admins]}\n",
            "users:\n  - userName: root@x.example\n    title: Boss\n  - userName: a@x.example\ngroups:\n  - displayName: Ops\n    members: [a@x.example]\n  - displayName: Admins\n    members: [a@x.example]\n",
        );
        let live = snapshot(
            &[
                json!({"id": "r", "userName": "root@x.example", "title": "Root"}),
                json!({"id": "k", "userName": "keep@x.example"}),
                json!({"id": "a", "userName": "a@x.example"}),
                json!({"id": "x", "userName": "x@x.example"}),
            ],
            &[
                json!({"id": "ops", "displayName": "Ops", "members": [
                    {"value": "k"}, {"value": "x"}, {"value": "r"}]}),
                json!({"id": "adm", "displayName": "Admins", "members": [{"value": "r"}]}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        let touched: Vec<(&str, Action)> = plan
            .changes
            .iter()
            .map(|c| (c.key.as_str(), c.action))
            .collect();
        assert_eq!(
            touched,
            vec![("Ops", Action::Patch), ("x@x.example", Action::Delete)],
            "{plan:#?}"
        );
        let ops = change(&plan, Kind::Group, "Ops").expect("patched");
        assert_eq!(
            ops.edits,
            vec![
                Edit::AddMembers {
                    members: vec![Ref {
                        kind: Kind::User,
                        name: "a@x.example".into(),
                        id: Some("a".into())
                    }]
                },
                Edit::RemoveMembers {
                    members: vec![Ref {
                        kind: Kind::User,
                        name: "x@x.example".into(),
                        id: Some("x".into())
                    }]
                },
            ],
            "keep and root stay members"
        );
        let warnings: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            warnings,
            vec![
                r#"group "Admins" is protected: not changed, though live differs"#,
                r#"user "root@x.example" is protected: not changed, though live differs in title"#,
            ]
        );
    }

    // A protected group stays untouched when desired state reaches it under another name
    // (`previously`, or its externalId): protection follows the live object, as for users.
    #[test]
    fn protected_group_matched_under_another_name() {
        let desired = desired_with(
            "protected: {groups: [Old Ops, Legacy]}\n",
            "groups:\n  - displayName: Ops\n    previously: [old ops]\n  - displayName: Sales\n    externalId: crm-1\n",
        );
        let live = snapshot(
            &[],
            &[
                json!({"id": "o", "displayName": "Old Ops"}),
                json!({"id": "l", "displayName": "Legacy", "externalId": "crm-1"}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert!(plan.changes.is_empty(), "{plan:#?}");
        let warnings: Vec<&str> = plan.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            warnings,
            vec![
                r#"group "Legacy" is protected: not changed, though live differs"#,
                r#"group "Old Ops" is protected: not changed, though live differs"#,
            ]
        );
    }

    // Group members: authoritative adds and removes, additive only adds.
    #[test]
    fn members_authoritative_or_additive() {
        let resources = "users:\n  - userName: a@x.example\n  - userName: b@x.example\n    groups: [Ops]\ngroups:\n  - displayName: Ops\n    members: [a@x.example, Sub]\n  - displayName: Sub\n";
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "a@x.example"}),
                json!({"id": "x", "userName": "x@x.example"}),
            ],
            &[json!({"id": "ops", "displayName": "Ops", "members": [
                {"value": "a", "type": "User"}, {"value": "x", "type": "User"}, {"value": "gone"}]})],
        );
        // Members are added in name order (the union of `members` and users' `groups`).
        let added = vec![
            Ref {
                kind: Kind::Group,
                name: "Sub".into(),
                id: None,
            },
            Ref {
                kind: Kind::User,
                name: "b@x.example".into(),
                id: None,
            },
        ];
        let plan = plan_ok(&desired_with("", resources), &live, &PlanOptions::default());
        let ops = change(&plan, Kind::Group, "Ops").expect("patched");
        assert_eq!(
            ops.edits,
            vec![
                Edit::AddMembers {
                    members: added.clone()
                },
                Edit::RemoveMembers {
                    members: vec![
                        Ref {
                            kind: Kind::User,
                            name: "x@x.example".into(),
                            id: Some("x".into())
                        },
                        Ref {
                            kind: Kind::User,
                            name: "gone".into(),
                            id: Some("gone".into())
                        },
                    ]
                },
            ]
        );
        assert_eq!(ops.diff[0].added, vec!["Sub", "b@x.example"]);
        assert_eq!(ops.diff[0].removed, vec!["x@x.example", "gone"]);

        let additive = desired_with("collections: {groupMembers: additive}\n", resources);
        let plan = plan_ok(&additive, &live, &PlanOptions::default());
        let ops = change(&plan, Kind::Group, "Ops").expect("patched");
        assert_eq!(ops.edits, vec![Edit::AddMembers { members: added }]);
        assert!(ops.diff[0].removed.is_empty());
    }

    /// Plans `desired` against `live`, applies the plan with the simulated server and checks
    /// that a second plan finds nothing; returns the first plan's edits of `key`.
    fn settles(
        desired: &crate::desired::DesiredState,
        live: &crate::model::tenant::Snapshot,
        key: &str,
    ) -> Vec<Edit> {
        let plan = plan_ok(desired, live, &PlanOptions::default());
        let after = crate::plan::tests::simulate(&plan, live);
        let again = plan_ok(desired, &after, &PlanOptions::default());
        assert!(again.is_empty(), "first: {plan:#?}\nagain: {again:#?}");
        change(&plan, Kind::User, key)
            .map(|c| c.edits.clone())
            .unwrap_or_default()
    }

    // Desired contacts that share a key (a number listed twice, two work addresses) each get
    // their own key, so they do not fight over one live value from plan to plan.
    #[test]
    fn repeated_desired_contacts_settle() {
        let desired = desired_with(
            "",
            "users:\n  - userName: a@x.example\n    phoneNumbers: [{value: '+14155550100'}, {value: '+14155550100', type: work}]\n    emails:\n      - {value: one@x.example, type: work}\n      - {value: two@x.example, type: work}\n      - {value: ONE@x.example}\n",
        );
        let live = snapshot(&[json!({"id": "a", "userName": "a@x.example"})], &[]);
        assert_eq!(
            settles(&desired, &live, "a@x.example"),
            vec![
                Edit::Add {
                    attr: Multi::Emails,
                    values: vec![
                        json!({"value": "one@x.example", "type": "work"}),
                        json!({"value": "two@x.example", "type": "work"}),
                    ]
                },
                Edit::Add {
                    attr: Multi::PhoneNumbers,
                    values: vec![json!({"value": "+14155550100"})]
                },
            ]
        );
        // Live as desired, in another case and order: nothing to do.
        let live = snapshot(
            &[json!({"id": "a", "userName": "a@x.example",
                     "emails": [{"value": "TWO@x.example", "type": "Work"}, {"value": "one@x.example", "type": "work"}],
                     "phoneNumbers": [{"value": "+14155550100", "type": "mobile"}]})],
            &[],
        );
        assert!(plan_ok(&desired, &live, &PlanOptions::default()).is_empty());
    }

    // Live values that share a key (a role held twice, two work addresses) are settled in one
    // plan: all as desired is no change; otherwise the key's values are removed and the desired
    // one added, rather than all of them replaced by the same value.
    #[test]
    fn repeated_live_values_settle() {
        let desired = desired_with(
            "",
            "roles:\n  - name: Agent\nusers:\n  - userName: a@x.example\n    roles: [Agent]\n    emails: [{value: a@x.example, type: work}]\n",
        );
        let live = snapshot(
            &[json!({"id": "a", "userName": "a@x.example",
                     "roles": [{"value": "Agent"}, {"value": "agent"}],
                     "emails": [{"value": "a@x.example", "type": "work"}, {"value": "b@x.example", "type": "work"}]})],
            &[],
        );
        assert_eq!(
            settles(&desired, &live, "a@x.example"),
            vec![
                Edit::Remove {
                    attr: Multi::Emails,
                    key: ValueKey::new("type", "work")
                },
                Edit::Add {
                    attr: Multi::Emails,
                    values: vec![json!({"value": "a@x.example", "type": "work"})]
                },
            ]
        );
    }

    // A removal or replacement targets exactly the values meant: by type where that is
    // exact, else by address, and when neither is (the same type and the same address both
    // held twice) the whole attribute is replaced, keeping the values that stay as they are.
    #[test]
    fn edits_target_exactly_the_values_meant() {
        // Dropping `b (home)` by type would also drop `a (home)`, which stays: by address.
        let desired = desired_with(
            "",
            "users:\n  - userName: u@x.example\n    emails: [{value: a@x.example}]\n",
        );
        let live = snapshot(
            &[json!({"id": "u", "userName": "u@x.example",
                     "emails": [{"value": "b@x.example", "type": "home"}, {"value": "a@x.example", "type": "home"}]})],
            &[],
        );
        assert_eq!(
            settles(&desired, &live, "u@x.example"),
            vec![Edit::Remove {
                attr: Multi::Emails,
                key: ValueKey::new("value", "b@x.example")
            }]
        );
        // `v (work)` becomes `w (work)`; neither `type eq work` (z too) nor `value eq v`
        // (v (home), which stays, too) picks it out alone.
        let desired = desired_with(
            "",
            "users:\n  - userName: u@x.example\n    emails: [{value: z@x.example}, {value: w@x.example, type: work}, {value: v@x.example, type: home}]\n",
        );
        let live = snapshot(
            &[json!({"id": "u", "userName": "u@x.example",
                     "emails": [{"value": "v@x.example", "type": "work"},
                                {"value": "z@x.example", "type": "work", "primary": true},
                                {"value": "v@x.example", "type": "home"}]})],
            &[],
        );
        assert_eq!(
            settles(&desired, &live, "u@x.example"),
            vec![Edit::ReplaceAll {
                attr: Multi::Emails,
                values: vec![
                    json!({"value": "w@x.example", "type": "work"}),
                    json!({"value": "z@x.example", "type": "work", "primary": true}),
                    json!({"value": "v@x.example", "type": "home"}),
                ]
            }]
        );
    }

    // User roles: additive (the default) only adds, authoritative also removes; names
    // compare case-insensitively.
    #[test]
    fn roles_additive_or_authoritative() {
        let resources = "roles:\n  - name: Agent\n  - name: Supervisor\n  - name: Admin\nusers:\n  - userName: a@x.example\n    roles: [agent, Supervisor]\n";
        let live = snapshot(
            &[json!({"id": "a", "userName": "a@x.example",
                     "roles": [{"value": "Agent"}, {"value": "Admin"}]})],
            &[],
        );
        let add = Edit::Add {
            attr: Multi::Roles,
            values: vec![json!({"value": "Supervisor"})],
        };
        let plan = plan_ok(&desired_with("", resources), &live, &PlanOptions::default());
        let a = change(&plan, Kind::User, "a@x.example").expect("patched");
        assert_eq!(a.edits, vec![add.clone()]);
        assert_eq!(a.diff[0].added, vec!["Supervisor"]);

        let authoritative = desired_with("collections: {userRoles: authoritative}\n", resources);
        let plan = plan_ok(&authoritative, &live, &PlanOptions::default());
        let a = change(&plan, Kind::User, "a@x.example").expect("patched");
        assert_eq!(
            a.edits,
            vec![
                Edit::Remove {
                    attr: Multi::Roles,
                    key: ValueKey::new("value", "Admin")
                },
                add
            ]
        );
        assert_eq!(a.diff[0].removed, vec!["Admin"]);
        assert_eq!(Attr::Title.name(), "title");
    }
}
