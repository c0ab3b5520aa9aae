//! The planner: a pure function from desired state and a live snapshot to a [`Plan`].
//!
//! [`plan`] does no I/O and reads no clock; the same inputs give the same plan, byte for byte
//! once rendered. It compares only attributes written in YAML, matches objects as docs/contract.md
//! §4 says (externalId, then name case-insensitively, then `previously`), resolves member and
//! manager names to live ids or to objects the plan creates, decides what ownership and the
//! prune policy remove, and holds destructive changes behind the safety brakes as blocked
//! rows. Rendering lives in [`render`]; saved plans in [`saved`].

mod diff;
pub mod edit;
pub mod grants;
pub mod licenses;
mod matching;
pub mod render;
pub mod replan;
pub mod roles;
mod rows;
mod safety;
pub mod saved;
#[cfg(test)]
pub(crate) mod tests;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::DesiredState;
pub use crate::model::capabilities::{
    AttributeSupport, ResourceSchema, TargetCapabilities, ValuePaths,
};
use crate::model::tenant::Snapshot;
use crate::model::{SourceMap, Span};

pub(crate) use diff::View;
pub use edit::{
    Attr, Complex, Edit, GrantRef, Kind, Multi, OWNER_IDS, Ref, Resolve, Scalar, Schema,
    Unresolved, ValueKey,
};
pub(crate) use matching::{Matched, match_all};
pub use replan::Replanner;

/// What a change does.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Create the object.
    Create,
    /// Bring back a user in the `deleted` state (Genesys Cloud), whose email a create would
    /// collide with, then set what YAML describes on it and grant its roles again (deletion
    /// took them all).
    Restore,
    /// Change some of its attributes.
    Patch,
    /// Set `active: false` (reversible).
    Deactivate,
    /// Delete it.
    Delete,
}

impl Action {
    /// Whether the change takes something away (deactivate or delete): what the safety brakes
    /// count.
    #[must_use]
    pub fn is_destructive(self) -> bool {
        matches!(self, Action::Deactivate | Action::Delete)
    }

    /// Whether the object is not live before the change (a create, or a restore of a deleted
    /// user): it has no live attributes to compare, and objects that refer to it wait for it.
    #[must_use]
    pub fn brings_in(self) -> bool {
        matches!(self, Action::Create | Action::Restore)
    }

    /// Lower-case name, as in JSON plans.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Restore => "restore",
            Action::Patch => "patch",
            Action::Deactivate => "deactivate",
            Action::Delete => "delete",
        }
    }
}

/// Where a change comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", tag = "from")]
pub enum Source {
    /// The YAML entry of the object.
    Yaml {
        /// The file, as given on the command line.
        file: crate::model::Text,
        /// 1-based line.
        line: u32,
    },
    /// The object is live but absent from desired state (a prune).
    Absent,
}

impl Source {
    /// The source of something written at `span`.
    #[must_use]
    pub fn at(sources: &SourceMap, span: Span) -> Source {
        Source::Yaml {
            file: sources
                .shown(span.file)
                .map_or_else(|| "desired state".into(), Clone::clone),
            line: span.line,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Absent => f.write_str("absent from desired state"),
            Source::Yaml { file, line: 0 } => f.write_str(file),
            Source::Yaml { file, line } => write!(f, "{file}:{line}"),
        }
    }
}

/// One attribute's difference, for people: scalar values before and after, or the values a
/// set gains and loses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttrDiff {
    /// The attribute as YAML spells it (`title`, `emails[work]`, `members`).
    pub attribute: String,
    /// Live value (scalars), `None` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// Desired value (scalars), `None` when the attribute goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Values a set gains (members, roles by name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Values a set loses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// A change shown without values (the password: `changed at source`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One change to one object.
// Serialised, compared and rendered with its rows (`Change::rows`), whether stored or told by
// its edits (`rows.rs`). Plain comments here: doc comments become the JSON Schema's text.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// What it does.
    pub action: Action,
    /// User, group or role.
    pub kind: Kind,
    /// The object's name (desired name; the live name for prunes).
    pub key: crate::model::Text,
    /// Live id; `None` for creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Live `meta.version` the change was computed against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why: the YAML entry, or absence from desired state.
    pub source: Source,
    /// What changes, attribute by attribute.
    // In memory: read it with `Change::rows`, change it with `Change::rows_mut`; it is empty
    // when `derived`. Serialised plans always carry the rows.
    pub diff: Vec<AttrDiff>,
    /// The edits to send (for a create: the attributes of the new object).
    pub edits: Vec<Edit>,
    /// Attributes set live (so an edit of them is a `replace`, not an `add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<Attr>,
    /// Set when a safety rule holds the change back: the reason, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Which rule holds it back, set with `blocked` (absent in plans saved before rules were
    /// named, whose `blocked` rows stay held all the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<Rule>,
    /// Set by the planner on a create whose rows its edits tell exactly: `diff` is empty
    /// and [`Change::rows`] derives them. Never serialised (a saved plan stores its rows).
    #[serde(skip)]
    #[schemars(skip)]
    pub derived: bool,
}

/// The safety rule that held a change back (docs/contract.md §4): the typed side of
/// [`Change::blocked`], for code that acts on the rule and for machines reading JSON plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// A `protected` principal would be changed.
    Protected,
    /// The account scimctl runs as would be deactivated, deleted or lose an admin role.
    Actor,
    /// Desired state is empty while the tenant is not.
    EmptyDesiredState,
    /// A `policy.adminRoles` role would be taken away or deleted.
    AdminRole,
    /// The last holder of an admin role would lose it.
    LastAdmin,
    /// More would be removed than `safety` allows (share or count) without `--allow-deletes`.
    Threshold,
    /// The change only exists because of a prune that is itself held back, or (a role
    /// delete) would carry out a removal that is held back.
    Cascade,
}

/// A warning the plan carries: something written in YAML that this target cannot manage, or
/// an object left alone on purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Warning {
    /// The message.
    pub message: String,
    /// Where, when it comes from YAML.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Counts per action.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct Summary {
    /// Objects to create.
    pub create: usize,
    /// Deleted users to restore (Genesys Cloud); left out of JSON when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restore: usize,
    /// Objects to patch.
    pub patch: usize,
    /// Users to deactivate.
    pub deactivate: usize,
    /// Objects to delete.
    pub delete: usize,
    /// Changes held back by a safety rule.
    pub blocked: usize,
    /// Desired objects already as desired.
    pub noop: usize,
}

impl Summary {
    /// Changes that would be applied (blocked ones excluded).
    #[must_use]
    pub fn changes(&self) -> usize {
        self.create + self.restore + self.patch + self.deactivate + self.delete
    }
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The result of planning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Changes in a stable order: creates, patches, deactivations, deletes; roles before
    /// groups before users within each (role deletes after user and group deletes); then by
    /// name.
    pub changes: Vec<Change>,
    /// Warnings, in a stable order.
    pub warnings: Vec<Warning>,
    /// Desired objects that need nothing.
    pub unchanged: usize,
}

impl Plan {
    /// Counts per action.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            noop: self.unchanged,
            ..Summary::default()
        };
        for c in &self.changes {
            if c.blocked.is_some() {
                s.blocked += 1;
                continue;
            }
            match c.action {
                Action::Create => s.create += 1,
                Action::Restore => s.restore += 1,
                Action::Patch => s.patch += 1,
                Action::Deactivate => s.deactivate += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    /// Whether anything would be applied or is blocked.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Whether the target stores user attribute `name` of `schema`.
fn user_attr(support: &AttributeSupport, schema: Schema, name: &str) -> bool {
    let s = match schema {
        Schema::Core => ResourceSchema::User,
        Schema::Enterprise => ResourceSchema::Enterprise,
        Schema::Genesys => ResourceSchema::Genesys,
    };
    support.has(s, name)
}

/// Options of one planning run.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// What the target can store and how it behaves, as read from the connection.
    pub target: TargetCapabilities,
    /// `--allow-deletes N`: lifts the brakes when the plan has exactly N destructive changes.
    pub allow_deletes: Option<usize>,
    /// The userNames of the account scimctl runs as, when known (`safety.runsAs`, `GET /Me`):
    /// never deactivated, deleted or stripped of an admin role.
    pub actors: Vec<String>,
    /// The userNames (lower-cased) whose `fromEnv`/`fromFile` password no longer matches the
    /// fingerprint of the one last set: each matched one gets a `password` edit. Worked out
    /// outside the planner (it resolves secrets and hashes), see `apply::rotation`.
    pub rotate_passwords: std::collections::BTreeSet<String>,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Desired objects that cannot be matched to live ones unambiguously; every problem is
    /// listed.
    #[error("{} object(s) cannot be matched unambiguously:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Ambiguous(Vec<String>),
    /// A live resource the plan needs could not be read.
    #[error("live {kind} {id}: cannot read the server's JSON: {error}")]
    Live {
        /// Its kind.
        kind: Kind,
        /// Its id.
        id: String,
        /// The parse error.
        error: String,
    },
    /// YAML licenses map license definitions the org does not have (Genesys Cloud).
    #[error("{} license(s) name an unknown license definition:\n{}\n  the org's license definitions: {known}", .unknown.len(), .unknown.iter().map(|u| format!("  {u}")).collect::<Vec<_>>().join("\n"))]
    UnknownLicense {
        /// Each, with where it is written.
        unknown: Vec<String>,
        /// The ids the org knows, comma-separated.
        known: String,
    },
}

/// Plans the changes that make `live` match `desired`.
pub fn plan(
    desired: &DesiredState,
    live: &Snapshot,
    options: &PlanOptions,
) -> Result<Plan, PlanError> {
    let matched = matching::match_all(desired, live)?;
    Ok(plan_matched(desired, live, &matched, options)?.plan)
}

/// The userNames of the desired users that no live user matches (those a plan would
/// create), for the read of deleted users that would block those creates. A user whose match
/// is ambiguous is among them (the plan itself reports the ambiguity); users in the `deleted`
/// state already in `live` play no part, so a second read asks for the same users.
#[must_use]
pub fn unmatched_users(desired: &DesiredState, live: &Snapshot) -> Vec<String> {
    desired
        .users
        .iter()
        .zip(matching::match_users(desired, live))
        .filter(|(_, m)| m.is_none())
        .map(|(u, _)| u.user_name.value.to_string())
        .collect()
}

/// The order in which twins (live groups sharing one name) are ranked: the first survives.
/// Shorter ids first, then bytewise, so numeric ids compare as numbers; the planner and the
/// applier's check after a create use it alike, so two runs that meet the same twins keep
/// the same one.
#[must_use]
pub fn survivor_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A plan made around ambiguous matches ([`plan_partial`]).
#[derive(Debug)]
pub struct Partial {
    /// What can be planned for everything else.
    pub plan: Plan,
    /// Objects left alone, each with why: an ambiguous match, or a change that refers to one.
    pub held: Vec<Held>,
}

/// An object [`plan_partial`] leaves alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// User or group.
    pub kind: Kind,
    /// Its userName or displayName (for a change, the change's key).
    pub key: String,
    /// Why it is held.
    pub why: String,
}

/// Plans like [`plan`], except that a user or group whose match is ambiguous is held instead
/// of failing the whole plan: it is neither changed nor pruned (its live candidates are left
/// alone too), and any change that refers to it or to one of its candidates (a member added
/// or removed, a manager set) is held with it. An ambiguous role still fails the plan.
///
/// `apply --plan` uses it so that one ambiguous object fails only the saved operations that
/// involve it; `plan` and `apply` keep refusing an ambiguous tenant as a whole.
pub fn plan_partial(
    desired: &DesiredState,
    live: &Snapshot,
    options: &PlanOptions,
) -> Result<Partial, PlanError> {
    let matched = matching::match_partial(desired, live)?;
    plan_matched(desired, live, &matched, options)
}

/// The steps [`plan`] and [`plan_partial`] share once objects are matched. A full match
/// holds nothing, so `hold_back` leaves its plan as it is.
fn plan_matched(
    desired: &DesiredState,
    live: &Snapshot,
    matched: &Matched,
    options: &PlanOptions,
) -> Result<Partial, PlanError> {
    licenses::check(desired, live)?;
    let mut plan = diff::diff(desired, live, matched, options)?;
    plan.warnings.extend(licenses::unassignable(desired, live));
    plan.warnings
        .extend(licenses::undefined_held(desired, live));
    roles::plan_roles(desired, live.roles.as_deref(), &matched.roles, &mut plan);
    let held = hold_back(desired, live, &matched.held, &mut plan);
    safety::apply_brakes(desired, live, &mut plan, options)?;
    order(&mut plan);
    Ok(Partial { plan, held })
}

/// What is held and why: held objects by (kind, lower-cased name), held live candidates by id.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    names: std::collections::BTreeMap<(Kind, String), String>,
    ids: std::collections::BTreeSet<String>,
}

impl Holds {
    /// The holds of a partial match, and the held objects each with why.
    pub(crate) fn new(
        desired: &DesiredState,
        live: &Snapshot,
        held: &matching::Held,
    ) -> (Holds, Vec<Held>) {
        use crate::model::tenant::Resource as _;
        let mut holds = Holds::default();
        let mut out = Vec::new();
        for (kind, i, why) in &held.desired {
            let key = match kind {
                Kind::User => desired.users[*i].user_name.value.to_string(),
                _ => desired.groups[*i].display_name.value.to_string(),
            };
            holds.names.insert((*kind, key.to_lowercase()), why.clone());
            out.push(Held {
                kind: *kind,
                key,
                why: why.clone(),
            });
        }
        let users = held.users.iter().zip(&live.users).filter(|(h, _)| **h);
        let groups = held.groups.iter().zip(&live.groups).filter(|(h, _)| **h);
        holds.ids = users
            .filter_map(|(_, l)| l.id())
            .chain(groups.filter_map(|(_, l)| l.id()))
            .map(str::to_owned)
            .collect();
        (holds, out)
    }

    /// Whether nothing is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.names.is_empty() && self.ids.is_empty()
    }

    /// Why the object `kind` `key` (live id `id`) is held, if it is.
    pub(crate) fn object(&self, kind: Kind, key: &str, id: Option<&str>) -> Option<String> {
        if let Some(why) = self.names.get(&(kind, key.to_lowercase())) {
            return Some(why.clone());
        }
        id.filter(|id| self.ids.contains(*id))
            .map(|_| "it is a candidate of an ambiguous match".to_owned())
    }

    /// Why `change` is held, if it is: its object is, or it refers to a held object.
    pub(crate) fn change(&self, change: &Change) -> Option<String> {
        if let Some(why) = self.object(change.kind, &change.key, change.id.as_deref()) {
            return Some(why);
        }
        refs(change).find_map(|r| {
            if let Some(why) = self.names.get(&(r.kind, r.name.to_lowercase())) {
                return Some(format!("it refers to {} {:?}: {why}", r.kind, r.name));
            }
            r.id.as_deref()
                .filter(|id| self.ids.contains(*id))
                .map(|id| {
                    format!(
                        "it refers to live {} {id}, a candidate of an ambiguous match",
                        r.kind
                    )
                })
        })
    }
}

/// Takes out of `plan` every change that refers to a held object (by name, or by the id of a
/// held live candidate), and, in turn, every change that refers to an object whose creation
/// was taken out. Returns the held objects and the held changes, each with the reason.
fn hold_back(
    desired: &DesiredState,
    live: &Snapshot,
    held: &matching::Held,
    plan: &mut Plan,
) -> Vec<Held> {
    let (mut holds, mut out) = Holds::new(desired, live, held);
    if holds.is_empty() {
        return out;
    }
    loop {
        let mut taken = false;
        let mut kept = Vec::with_capacity(plan.changes.len());
        for change in std::mem::take(&mut plan.changes) {
            match holds.change(&change) {
                Some(why) => {
                    taken = true;
                    if change.action.brings_in() {
                        holds.names.insert(
                            (change.kind, change.key.to_lowercase()),
                            format!("its creation is held: {why}"),
                        );
                    }
                    out.push(Held {
                        kind: change.kind,
                        key: change.key.to_string(),
                        why,
                    });
                }
                None => kept.push(change),
            }
        }
        plan.changes = kept;
        if !taken {
            break;
        }
    }
    out
}

/// The users and groups a change refers to.
fn refs(change: &Change) -> impl Iterator<Item = &Ref> {
    change.edits.iter().flat_map(|e| match e {
        Edit::SetManager { to } => std::slice::from_ref(to),
        Edit::AddMembers { members } | Edit::RemoveMembers { members } => members.as_slice(),
        Edit::SetOwners { owners } => owners.as_slice(),
        _ => &[],
    })
}

/// Puts changes and warnings in the plan's stable order.
fn order(plan: &mut Plan) {
    plan.changes.sort_by(|a, b| {
        // Roles before groups before users; role deletes after every other delete.
        let kind = |c: &Change| match (c.action, c.kind) {
            (Action::Delete, Kind::Role) => 3,
            (_, Kind::Role) => 0,
            (_, Kind::Group) => 1,
            (_, Kind::User) => 2,
        };
        let rank = |c: &Change| (c.action, kind(c), c.key.to_lowercase());
        rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id))
    });
    plan.warnings.sort_by(|a, b| a.message.cmp(&b.message));
    plan.warnings.dedup();
}

/// A plan whose safety rules were evaluated against the live state it is about to be applied
/// to: the only form of plan the applier takes ([`crate::apply::engine::Input`]).
///
/// Whatever `blocked` fields a plan arrives with (a saved plan is input like any other),
/// [`Vetted::new`] evaluates every rule again (protected principals, the actor, empty desired
/// state, admin roles, the last admin, the thresholds and the removals that go with a blocked
/// prune): a rule can only hold more back, never release what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct Vetted(Plan);

impl Vetted {
    /// Evaluates the safety rules on `plan` for `desired` and `live`.
    pub fn new(
        desired: &DesiredState,
        live: &Snapshot,
        mut plan: Plan,
        options: &PlanOptions,
    ) -> Result<Vetted, PlanError> {
        safety::apply_brakes(desired, live, &mut plan, options)?;
        order(&mut plan);
        Ok(Vetted(plan))
    }

    /// A plan taken as vetted, for the engine's own tests, which build plans by hand.
    #[cfg(test)]
    pub(crate) fn assume(plan: Plan) -> Vetted {
        Vetted(plan)
    }

    /// The plan.
    #[must_use]
    pub fn plan(&self) -> &Plan {
        &self.0
    }

    /// Adds warnings (they say what a plan does; no safety rule reads them).
    pub fn add_warnings(&mut self, warnings: impl IntoIterator<Item = Warning>) {
        self.0.warnings.extend(warnings);
    }

    /// The plan, for rendering or saving.
    #[must_use]
    pub fn into_plan(self) -> Plan {
        self.0
    }
}

impl std::ops::Deref for Vetted {
    type Target = Plan;
    fn deref(&self) -> &Plan {
        &self.0
    }
}
