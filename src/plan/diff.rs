//! Attribute-level comparison of matched objects, creates, memberships and prunes.
//!
//! [`diff`] walks desired users and groups, compares each with its live match
//! ([`users`], [`groups`], with the value comparisons in [`values`]), and ends every
//! object the same way ([`finish`]); then it prunes what desired state left out
//! ([`prune`]) and settles twins ([`twins`]).

mod groups;
mod prune;
#[cfg(test)]
mod tests;
mod twins;
mod users;
mod values;

pub(super) use groups::group_change;
use prune::{prune_groups, prune_users};
pub(super) use users::user_change;
use values::Diffs;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::desired::DesiredState;
use crate::model::tenant::{Live, Resource, Snapshot};
use crate::model::{OwnershipMode, Selector, Span};

use super::matching::Matched;
use super::{
    Action, AttrDiff, Change, Kind, Plan, PlanError, PlanOptions, Ref, ResourceSchema, Schema,
    Source, TargetCapabilities, Warning,
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
    /// Genesys Cloud group settings YAML writes for a target without them: setting → (groups,
    /// first place).
    genesys_only: Unsupported,
    /// Live id → kind and name, for showing members removed.
    names: Option<HashMap<(Kind, &'a str), &'a str>>,
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
            genesys_only: BTreeMap::new(),
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
        let name = self.desired.users[i].user_name.value.clone();
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
        let name = self.desired.groups[i].display_name.value.clone();
        let id = self.group_ids[i]
            .map(str::to_owned)
            .or_else(|| self.created_id(Kind::Group, &name));
        Some(Ref {
            kind: Kind::Group,
            name,
            id,
        })
    }

    /// The live object with `id`, of `kind` when the server said which (ids may be unique
    /// only per resource type); without a kind a group wins over a user with the same id,
    /// as it always did.
    fn name_of(&mut self, kind: Option<Kind>, id: &str) -> Option<(Kind, &'a str)> {
        let live = self.live;
        let names = self.names.get_or_insert_with(|| {
            let mut m = HashMap::with_capacity(live.users.len() + live.groups.len());
            for u in &live.users {
                if let Some(id) = u.id() {
                    m.insert((Kind::User, id), u.natural_key());
                }
            }
            for g in &live.groups {
                if let Some(id) = g.id() {
                    m.insert((Kind::Group, id), g.natural_key());
                }
            }
            m
        });
        let kinds: &[Kind] = match kind {
            Some(Kind::User) => &[Kind::User],
            Some(Kind::Group) => &[Kind::Group],
            _ => &[Kind::Group, Kind::User],
        };
        kinds
            .iter()
            .find_map(|k| names.get(&(*k, id)).map(|n| (*k, *n)))
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

    /// Notes a group that writes Genesys Cloud setting `name` for a target without them.
    fn note_genesys_only(&mut self, name: &'static str, span: Span) {
        let entry = self.genesys_only.entry(name).or_insert((0, span));
        entry.0 += 1;
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
    // At most one change per desired object before prunes: reserved once, not grown by
    // doubling (which, at 100,000 creates, held the old and the new buffer at once).
    plan.changes
        .reserve_exact(desired.users.len() + desired.groups.len());
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
        let mut change = user_change(&mut ctx, user, live_user, &mut plan.warnings)?;
        if live_user.is_none() {
            change = change.map(|c| restore_deleted(live, c));
        }
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
    if let Some(warning) = shared_ids(live) {
        plan.warnings.push(warning);
    }
    for (attr, (count, span)) in &ctx.unsupported {
        plan.warnings.push(Warning {
            message: format!(
                "`{attr}` is set on {count} object(s) but the target's schemas have no such \
                 writable attribute: not managed on this target"
            ),
            source: Some(Source::at(&desired.sources, *span)),
        });
    }
    for (setting, (count, span)) in &ctx.genesys_only {
        plan.warnings.push(Warning {
            message: genesys_only_message(setting, *count),
            source: Some(Source::at(&desired.sources, *span)),
        });
    }
    Ok(plan)
}

/// The warning for group settings YAML writes on a target that has none (plain SCIM).
fn genesys_only_message(setting: &str, groups: usize) -> String {
    if setting == "roles" {
        return format!(
            "`roles` is set on {groups} group(s), but role grants to groups (and the other \
             Genesys Cloud group settings) cannot be written on this target, which is plain \
             SCIM: not managed, never sent"
        );
    }
    format!(
        "`{setting}` (and any other of type, visibility, rulesVisible, rolesEnabled, \
         callsEnabled, includeOwners, owners) is set on {groups} group(s), but these are \
         Genesys Cloud group settings and this target is plain SCIM: not managed, never sent"
    )
}

/// A user create whose userName belongs to a user in the `deleted` state (Genesys Cloud)
/// becomes a restore of that user: the create would be refused (its email is still taken),
/// and a restored user keeps its id and history. The edits stay those of the create: the
/// applier restores, reads the user back and re-plans it, and grants the roles in divisions
/// the create would have granted, since deletion took every grant
/// ([`crate::plan::Action::Restore`]).
fn restore_deleted(live: &Snapshot, change: Change) -> Change {
    let deleted = live
        .deleted_users
        .iter()
        .find(|d| d.email.eq_ignore_ascii_case(&change.key));
    match deleted {
        Some(d) if change.action == Action::Create && change.kind == Kind::User => Change {
            action: Action::Restore,
            id: Some(d.id.clone()),
            version: Some(d.version.to_string()),
            ..change
        },
        _ => change,
    }
}

fn push(plan: &mut Plan, change: Option<Change>) {
    match change {
        Some(c) => plan.changes.push(c),
        None => plan.unchanged += 1,
    }
}

/// A warning when a live user and a live group share an id: the server's ids are unique only
/// per resource type (per-table integers, say), so a member's `value` alone does not say
/// which one it is.
fn shared_ids(live: &Snapshot) -> Option<Warning> {
    let users: HashSet<&str> = live.users.iter().filter_map(|u| u.id()).collect();
    let shared = live
        .groups
        .iter()
        .filter_map(|g| g.id())
        .filter(|id| users.contains(id))
        .count();
    (shared > 0).then(|| Warning {
        message: format!(
            "{shared} id(s) belong to both a user and a group: the server's ids are not unique \
             across resource types; members are told apart by their type"
        ),
        source: None,
    })
}

fn lower_set<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    names.map(|n| folded(n).into_owned()).collect()
}

/// `name` lowercased, without a copy when it has no uppercase ASCII letter and no non-ASCII
/// character (nearly every userName): `View::contains` runs once per live object.
fn folded(name: &str) -> std::borrow::Cow<'_, str> {
    if name
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        std::borrow::Cow::Borrowed(name)
    } else {
        std::borrow::Cow::Owned(name.to_lowercase())
    }
}

/// Which live users and groups are in view of a desired state: owned by its ownership rules,
/// named in it, or protected. What lies outside (another team's objects, another
/// provisioner's) is never written by a plan of this desired state. The names are folded
/// into sets once, so checking a whole tenant is linear in its size (a scan of the desired
/// names per live object took minutes for 100,000 users).
pub(crate) struct View<'a> {
    desired: &'a DesiredState,
    users: HashSet<String>,
    groups: HashSet<String>,
}

impl<'a> View<'a> {
    /// The view of `desired`.
    pub(crate) fn new(desired: &'a DesiredState) -> View<'a> {
        let protected = &desired.config.protected;
        View {
            desired,
            users: lower_set(
                desired
                    .users
                    .iter()
                    .map(|u| u.user_name.as_str())
                    .chain(protected.users.iter().map(|p| p.as_str())),
            ),
            groups: lower_set(
                desired
                    .groups
                    .iter()
                    .map(|g| g.display_name.as_str())
                    .chain(protected.groups.iter().map(|p| p.as_str())),
            ),
        }
    }

    /// Whether the live object of `kind` with this name and externalId is in view.
    pub(crate) fn contains(
        &self,
        kind: super::Kind,
        name: &str,
        external_id: Option<&str>,
    ) -> bool {
        let ownership = &self.desired.config.ownership;
        match kind {
            super::Kind::User => {
                owned(&ownership.users, name, external_id)
                    || self.users.contains(folded(name).as_ref())
            }
            super::Kind::Group => {
                owned(&ownership.groups, name, external_id)
                    || self.groups.contains(folded(name).as_ref())
            }
            super::Kind::Role => true,
        }
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

/// What [`finish`] needs to know of the object compared.
struct Object {
    kind: Kind,
    /// Its natural key as YAML writes it.
    key: crate::model::Text,
    /// Where YAML describes it.
    source: Source,
    /// A protected object is never changed; a difference is a warning.
    protected: bool,
}

/// The last step of every user's and group's comparison: a create (its diff led by the
/// natural key, every managed attribute shown), nothing (no difference), a warning (a
/// protected object that differs), or a patch (a deactivation when `deactivating`).
fn finish<R: Resource>(
    object: Object,
    live: Option<&Live<R>>,
    d: Diffs,
    deactivating: bool,
    warnings: &mut Vec<Warning>,
) -> Option<Change> {
    let Some(l) = live else {
        // Sized exactly: a plan of 100,000 creates holds every one of these until it is
        // carried out.
        let mut diff = Vec::with_capacity(1 + d.diff.len());
        diff.push(AttrDiff {
            attribute: object.kind.natural_key().into(),
            after: Some(Value::from(object.key.as_str())),
            ..AttrDiff::default()
        });
        diff.extend(d.diff);
        let mut edits = d.edits;
        edits.shrink_to_fit();
        let mut change = Change {
            action: Action::Create,
            kind: object.kind,
            key: object.key,
            id: None,
            version: None,
            source: object.source,
            diff,
            edits,
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        };
        // A plan of 100,000 creates holds every one of these until it is carried out: its
        // rows are told by its edits when they can be (`Change::rows`).
        change.derive_rows();
        return Some(change);
    };
    if d.is_empty() {
        return None;
    }
    if object.protected {
        // A user's warning names the attributes that differ; a group's says only that it
        // differs (its members would make a long line), as both always have.
        let what = match object.kind {
            Kind::User => {
                let attrs: Vec<&str> = d.diff.iter().map(|a| a.attribute.as_str()).collect();
                format!(" in {}", attrs.join(", "))
            }
            Kind::Group | Kind::Role => String::new(),
        };
        warnings.push(Warning {
            message: format!(
                "{} {:?} is protected: not changed, though live differs{what}",
                object.kind,
                l.natural_key(),
            ),
            source: Some(object.source),
        });
        return None;
    }
    Some(Change {
        action: if deactivating {
            Action::Deactivate
        } else {
            Action::Patch
        },
        kind: object.kind,
        key: object.key,
        id: l.id().map(str::to_owned),
        version: l.version().map(str::to_owned),
        source: object.source,
        diff: d.diff,
        edits: d.edits,
        present: d.present,
        blocked: None,
        held_by: None,
        derived: false,
    })
}
