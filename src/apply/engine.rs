//! Carrying out a plan: the only code that writes to a tenant.
//!
//! [`run`] turns the plan into steps (creates, links, updates, deletes) and runs every step
//! whose dependencies have succeeded, up to [`Settings::in_flight`] at once (the client's own
//! rate limit and concurrency gate what reaches the wire). Deactivations and deletes start once
//! everything else has finished. Each write carries `If-Match` with the version it was planned
//! against when the server supports ETags; a write that meets a moved object (412, 409, Genesys
//! `invalidVers`) or whose outcome is unknown re-reads that object, re-plans it with the
//! planner's own rules ([`Replanner`]), keeps what the operation still has to do and tries
//! again, a bounded number of times. A create answered "already exists" adopts the live
//! object; a delete answered 404 is done. A failed step never stops the others; the steps that
//! needed it are skipped. The [`Observer`] hears of every finished operation (audit log,
//! progress) and of each generated password, at once.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use serde::Serialize;
use serde_json::{Map, Value};

mod licenses;

use super::graph::{Graph, Phase, Step, StepKind};
use super::merge::{Merge, merge};
use super::password;
use super::twins;
use crate::desired::DesiredState;
use crate::model::PasswordSource;
use crate::plan::roles::{merged_body, role_matches};
use crate::plan::{
    Action, Change, Edit, Kind, Plan, PlanOptions, Ref, Replanner, Resolve, Source, Vetted,
};
use crate::scim::wire::{Group, User};
use crate::scim::{
    GrantPair, Live, LiveGroup, LiveUser, Resource, RoleBody, ScimError, ScimRead, ScimWrite,
    Secret, Snapshot,
};

/// What [`run`] carries out.
#[derive(Debug)]
pub struct Input<'a> {
    /// The plan, its safety rules evaluated against the live state ([`Vetted`]): blocked
    /// changes are never carried out, whoever made the plan.
    pub plan: &'a Vetted,
    /// The desired state it was made from (for re-planning and password sources).
    pub desired: &'a DesiredState,
    /// The options it was made with.
    pub options: &'a PlanOptions,
    /// The snapshot it was made from; `None` for a saved plan, in which case a fresh
    /// snapshot is read the first time an object turns out to have moved.
    pub snapshot: Option<&'a Snapshot>,
    /// The password the password-sync endpoint received for one user: its rotation sets this
    /// value instead of reading the user's source.
    pub pushed: Option<&'a Pushed>,
}

/// A password received by the password-sync endpoint for one user. Its `Debug` shows no
/// value ([`Secret`]'s does not).
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The user, as the request named it (matched case-insensitively).
    pub user_name: String,
    /// The password (zeroized when dropped).
    pub password: Secret,
}

/// How [`run`] behaves.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Send `If-Match` with the planned version (the server supports ETags).
    pub etag: bool,
    /// Most operations started and not finished at once.
    pub in_flight: usize,
    /// Re-reads (and re-sends) per operation after a moved object or an unknown outcome.
    pub merge_attempts: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            etag: false,
            in_flight: 32,
            merge_attempts: 3,
        }
    }
}

/// How one operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Carried out as planned.
    Done,
    /// The target was already as planned (a delete met 404, a re-read showed the values).
    AlreadyDone,
    /// The object had moved since the plan; the planned change was merged with it and sent.
    Merged,
    /// Not carried out; the detail says why.
    Failed,
    /// Not attempted: it needed an operation that failed.
    Skipped,
}

impl Outcome {
    /// As the report and the audit log spell it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::AlreadyDone => "already done",
            Outcome::Merged => "merged",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }

    /// Whether the operation's purpose was reached.
    #[must_use]
    pub fn succeeded(self) -> bool {
        matches!(self, Outcome::Done | Outcome::AlreadyDone | Outcome::Merged)
    }
}

/// One operation (one change of the plan) as it ended.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpReport {
    /// What was planned.
    pub action: Action,
    /// User or group.
    pub kind: Kind,
    /// Its name (shared with the plan's change: no copy per operation).
    pub key: crate::model::Text,
    /// Its id (for creates: the new id, when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The version it was planned against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_version: Option<String>,
    /// The version after the write, when the server said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_version: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, for anything but a plain success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Every operation of a run, in plan order.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// One per change that was not blocked.
    pub ops: Vec<OpReport>,
}

impl Report {
    /// How many operations ended with `outcome`.
    #[must_use]
    pub fn count(&self, outcome: Outcome) -> usize {
        self.ops.iter().filter(|o| o.outcome == outcome).count()
    }

    /// Whether every operation reached its purpose.
    #[must_use]
    pub fn all_succeeded(&self) -> bool {
        self.ops.iter().all(|o| o.outcome.succeeded())
    }
}

/// Hears what [`run`] does, as it happens.
pub trait Observer {
    /// An operation finished (once per operation, in the order they finish). An error
    /// (say, the audit log cannot be written) stops the run from starting anything new:
    /// what is in flight finishes, everything else is reported skipped with the reason.
    fn finished(&mut self, op: &OpReport) -> Result<(), String>;
    /// The run will create users with generated passwords: make sure they can be delivered
    /// (say, the password file can be created). Asked once, before anything is written; an
    /// error starts nothing, and every operation is reported skipped with the reason.
    fn prepare_passwords(&mut self) -> Result<(), String> {
        Ok(())
    }
    /// A user was just created with a generated password: deliver it (once).
    fn deliver_password(&mut self, user_name: &str, password: &Secret) -> Result<(), String>;

    /// The server accepted `password` for `user_name` from a `fromEnv`/`fromFile` source (a
    /// create or a rotation): record its fingerprint so the next plan can tell whether the
    /// source changed (issue 19). Only after the server said yes.
    fn password_set(&mut self, user_name: &str, password: &Secret) -> Result<(), String> {
        let _ = (user_name, password);
        Ok(())
    }
    /// Asked before every start: `Some(reason)` (say, SIGTERM arrived) starts nothing new.
    /// What is in flight finishes; everything else is reported skipped with the reason.
    fn stop_requested(&self) -> Option<String> {
        None
    }
    /// A step of `op` is about to send its first write ([`Stage::Sending`]), or wrote and was
    /// answered while the operation still has steps to go ([`Stage::Written`]; say, a group
    /// was created and its members are pending). Heard right before that write goes out and
    /// before any step that needs it starts, so a run killed at any point leaves a record of
    /// every write it made (the audit log appends and flushes one here). A step that sends no
    /// write (the object already had the planned values; it failed before sending) is heard
    /// of neither way; nor is a step's second write. `op` is the operation as far as it got:
    /// for [`Stage::Sending`] its outcome means nothing yet. An error stops the run from
    /// starting anything new, as in [`Observer::finished`], and nothing more is sent: the
    /// step not yet sent is reported skipped. The operation's [`Observer::finished`] still
    /// follows.
    fn step(&mut self, stage: Stage, step: StepName, op: &OpReport) -> Result<(), String> {
        let _ = (stage, step, op);
        Ok(())
    }
}

/// Where a step of an unfinished operation is, as [`Observer::step`] hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// About to send its first write: the server may act on it any time from now.
    Sending,
    /// Answered and succeeded; the operation has further steps.
    Written,
}

impl Stage {
    /// As the audit log spells it (its `phase` field).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Stage::Sending => "sending",
            Stage::Written => "written",
        }
    }
}

/// Which step of an operation [`Observer::step`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepName {
    /// Creating the object.
    Create,
    /// Restoring a deleted user (Genesys Cloud) and bringing it in line.
    Restore,
    /// Patching references (members, manager) into an object the run created.
    Link,
    /// Patching (or deactivating) a live object.
    Update,
    /// Granting and revoking roles in divisions.
    Grants,
    /// Giving and taking licenses (a batch over the run's users).
    Licenses,
    /// Deleting an object.
    Delete,
    /// Setting a user's password again from its source.
    Password,
}

impl StepName {
    /// As the audit log spells it (its `step` field).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StepName::Create => "create",
            StepName::Restore => "restore",
            StepName::Link => "link",
            StepName::Update => "update",
            StepName::Grants => "grants",
            StepName::Licenses => "licenses",
            StepName::Delete => "delete",
            StepName::Password => "password",
        }
    }

    fn of(kind: StepKind) -> StepName {
        match kind {
            StepKind::Create => StepName::Create,
            StepKind::Restore => StepName::Restore,
            StepKind::Link => StepName::Link,
            StepKind::Update => StepName::Update,
            StepKind::Grants => StepName::Grants,
            StepKind::Licenses => StepName::Licenses,
            StepKind::Delete => StepName::Delete,
            StepKind::Password => StepName::Password,
        }
    }
}

/// The result of one step.
#[derive(Debug)]
struct StepResult {
    outcome: Outcome,
    detail: Option<String>,
    id: Option<String>,
    version: Option<String>,
}

impl StepResult {
    fn new(outcome: Outcome, detail: Option<String>) -> StepResult {
        StepResult {
            outcome,
            detail,
            id: None,
            version: None,
        }
    }

    fn failed(why: impl Into<String>) -> StepResult {
        StepResult::new(Outcome::Failed, Some(why.into()))
    }
}

/// What the run created: per change, the id and version its create (or restore, or
/// adoption) left, for the change's later steps; found by kind and name for the references
/// (members, managers) of other changes to objects created in the same run.
///
/// One slot per change and a name index borrowed from the plan: at 100,000 creates a map of
/// copied names, beside a second map of ids per change, cost ~35 MB (issue 21).
struct Created<'p> {
    /// The changes that bring an object in, by kind and name (case-insensitively).
    by_name: HashMap<(Kind, Caseless<'p>), usize>,
    /// Per change: the id and version it left.
    made: RefCell<Vec<Option<Made>>>,
}

/// The id and version a change's create left.
#[derive(Clone, Debug)]
struct Made {
    id: Box<str>,
    version: Option<Box<str>>,
}

impl<'p> Created<'p> {
    fn new(plan: &'p Plan) -> Created<'p> {
        let mut by_name = HashMap::new();
        for (i, c) in plan.changes.iter().enumerate() {
            if c.action.brings_in() {
                by_name.entry((c.kind, Caseless(&c.key))).or_insert(i);
            }
        }
        Created {
            by_name,
            made: RefCell::new(vec![None; plan.changes.len()]),
        }
    }

    /// Records what change `i` left.
    fn note(&self, i: usize, id: &str, version: Option<&str>) {
        if let Some(slot) = self.made.borrow_mut().get_mut(i) {
            *slot = Some(Made {
                id: id.into(),
                version: version.map(Into::into),
            });
        }
    }

    /// The id and version change `i` left, if it did.
    fn of(&self, i: usize) -> Option<(String, Option<String>)> {
        let made = self.made.borrow();
        let m = made.get(i)?.as_ref()?;
        Some((m.id.to_string(), m.version.as_deref().map(str::to_owned)))
    }

    /// Every object created so far: kind, name, id.
    fn all(&self, plan: &Plan) -> Vec<(Kind, String, String)> {
        let made = self.made.borrow();
        self.by_name
            .values()
            .filter_map(|&i| {
                let m = made.get(i)?.as_ref()?;
                let c = &plan.changes[i];
                Some((c.kind, c.key.to_string(), m.id.to_string()))
            })
            .collect()
    }
}

impl Resolve for Created<'_> {
    fn id_of(&self, r: &Ref) -> Option<String> {
        r.id.clone().or_else(|| {
            let i = *self.by_name.get(&(r.kind, Caseless(&r.name)))?;
            self.of(i).map(|(id, _)| id)
        })
    }
}

/// A name compared and hashed as its lower-case form, character by character
/// (`char::to_lowercase`), without making that form.
#[derive(Clone, Copy, Debug)]
struct Caseless<'a>(&'a str);

impl Caseless<'_> {
    fn lower(&self) -> impl Iterator<Item = char> + '_ {
        self.0.chars().flat_map(char::to_lowercase)
    }
}

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.lower().eq(other.lower())
    }
}

impl Eq for Caseless<'_> {}

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for c in self.lower() {
            state.write_u32(u32::from(c));
        }
        state.write_u8(0xff);
    }
}

/// A freshly read object.
enum Fresh {
    User(LiveUser),
    Group(LiveGroup),
}

impl Fresh {
    fn version(&self) -> Option<&str> {
        match self {
            Fresh::User(u) => u.version(),
            Fresh::Group(g) => g.version(),
        }
    }
}

/// `kind`, when it is a SCIM resource; roles are none (their steps go to the Platform API
/// instead, see `role_step`).
fn resource_kind(kind: Kind) -> Result<Kind, ScimError> {
    match kind {
        Kind::User | Kind::Group => Ok(kind),
        Kind::Role => Err(not_scim()),
    }
}

fn not_scim() -> ScimError {
    ScimError::Config("internal: a role definition is not a SCIM resource".into())
}

/// What the futures of one run share. They all run on the task that polls [`run`], so
/// plain cells suffice; no borrow is held across an await.
struct Shared<'a, 's, C> {
    client: &'a C,
    input: &'a Input<'a>,
    settings: &'a Settings,
    created: Created<'a>,
    /// A snapshot read during the run, when the plan came without one.
    fetched: &'s tokio::sync::OnceCell<Snapshot>,
    replanner: RefCell<Option<Replanner<'s>>>,
    observer: RefCell<&'a mut dyn Observer>,
    /// Set when the observer could not record a step's announcement: why. No step sends
    /// anything from then on.
    refused: RefCell<Option<String>>,
    /// Set once the server has been seen to drop the members of a group create (warned
    /// once a run).
    dropped_members: std::cell::Cell<bool>,
    /// The license batch of the run: sent by the first license step that starts, read by
    /// every license step (see the `licenses` module).
    licenses: licenses::Batch,
}

/// Whether a step was announced ([`Stage::Sending`]) before its first write.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Announced {
    /// Not (yet): the step sent no write.
    Not,
    /// Heard; the step sent at least one write.
    Sent,
    /// Its announcement could not be recorded, so it sent nothing: the step counts as never
    /// started (skipped with the rest).
    Refused,
}

/// One step's announcement: made once, right before the step's first write request, so the
/// audit log has a `sending` record for every step that wrote and for no other. A step that
/// sends nothing (the object already had the planned values, a password source cannot be
/// read, a dependency left no id) is never announced; its operation's final record says why.
struct Herald {
    step: StepName,
    /// Its operation as far as it got when the step started.
    op: OpReport,
    announced: RefCell<Announced>,
}

impl<'a, 's, C: ScimRead + ScimWrite> Shared<'a, 's, C>
where
    'a: 's,
{
    fn change(&self, step: &Step<'_>) -> &'a Change {
        &self.input.plan.changes[step.change]
    }

    /// Announces `herald`'s step before its first write (once; later writes of the step go
    /// ahead). `Err` holds the step's result when the announcement could not be recorded (or
    /// another one could not): nothing may be sent.
    fn announce(&self, herald: &Herald) -> Result<(), StepResult> {
        let refused = || {
            StepResult::new(
                Outcome::Skipped,
                Some("not started: its announcement could not be recorded".into()),
            )
        };
        match *herald.announced.borrow() {
            Announced::Sent => return Ok(()),
            Announced::Refused => return Err(refused()),
            Announced::Not => {}
        }
        let heard = match self.refused.borrow().clone() {
            Some(why) => Err(why),
            None => self
                .observer
                .borrow_mut()
                .step(Stage::Sending, herald.step, &herald.op),
        };
        match heard {
            Ok(()) => {
                *herald.announced.borrow_mut() = Announced::Sent;
                Ok(())
            }
            Err(why) => {
                self.refused.borrow_mut().get_or_insert(why);
                *herald.announced.borrow_mut() = Announced::Refused;
                Err(refused())
            }
        }
    }

    fn if_match<'v>(&self, version: Option<&'v str>) -> Option<&'v str> {
        if self.settings.etag { version } else { None }
    }

    /// Records the id and version change `i`'s create (or restore, or adoption) left.
    fn note_created(&self, i: usize, id: &str, version: Option<&str>) {
        self.created.note(i, id, version);
        let change = &self.input.plan.changes[i];
        if let Some(r) = self.replanner.borrow_mut().as_mut() {
            r.note_created(change.kind, &change.key, id);
        }
    }

    /// Makes sure a replanner exists, reading a fresh snapshot first when the plan came
    /// without one.
    async fn ensure_replanner(&self) -> Result<(), String> {
        if self.replanner.borrow().is_some() {
            return Ok(());
        }
        let snapshot: &'s Snapshot = match self.input.snapshot {
            Some(s) => s,
            None => self
                .fetched
                .get_or_try_init(|| self.client.snapshot())
                .await
                .map_err(|e| format!("re-reading the tenant: {e}"))?,
        };
        if self.replanner.borrow().is_some() {
            return Ok(());
        }
        let mut replanner = Replanner::new(self.input.desired, snapshot, self.input.options)
            .map_err(|e| e.to_string())?;
        for (kind, name, id) in self.created.all(self.input.plan) {
            replanner.note_created(kind, &name, &id);
        }
        *self.replanner.borrow_mut() = Some(replanner);
        Ok(())
    }

    /// What `fresh` needs now to carry out `planned`.
    async fn replan(&self, planned: &Change, fresh: &Fresh) -> Result<Option<Change>, String> {
        if planned.source == Source::Absent {
            // A prune: nothing desired about the object but that it is inactive (or gone).
            let Fresh::User(user) = fresh else {
                return Ok(None);
            };
            let active = user.parse().map_err(|e| e.to_string())?.active;
            return Ok((active != Some(false)).then(|| Change {
                version: user.version().map(str::to_owned),
                ..planned.clone()
            }));
        }
        self.ensure_replanner().await?;
        let mut guard = self.replanner.borrow_mut();
        let replanner = guard.as_mut().ok_or("no replanner")?;
        let result = match fresh {
            Fresh::User(u) => replanner.user(&planned.key, u),
            Fresh::Group(g) => replanner.group(&planned.key, g),
        };
        result.map_err(|e| e.to_string())
    }

    async fn fetch(&self, kind: Kind, id: &str) -> Result<Option<Fresh>, ScimError> {
        let fresh = match kind {
            Kind::User => self.client.get::<User>(id).await.and_then(|u| {
                Ok(Fresh::User(
                    Live::from_resource(&u).map_err(|e| decode(&e))?,
                ))
            }),
            Kind::Group => self.client.get::<Group>(id).await.and_then(|g| {
                Ok(Fresh::Group(
                    Live::from_resource(&g).map_err(|e| decode(&e))?,
                ))
            }),
            Kind::Role => Err(not_scim()),
        };
        match fresh {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn patch(
        &self,
        kind: Kind,
        id: &str,
        version: Option<&str>,
        ops: &[crate::scim::PatchOperation],
    ) -> Result<Option<String>, ScimError> {
        let version = self.if_match(version);
        Ok(match kind {
            Kind::User => {
                let p = self.client.patch::<User>(id, version, ops).await?;
                p.version
                    .or_else(|| p.resource.and_then(|r| r.meta.version))
            }
            Kind::Group => {
                let p = self.client.patch::<Group>(id, version, ops).await?;
                p.version
                    .or_else(|| p.resource.and_then(|r| r.meta.version))
            }
            Kind::Role => return Err(not_scim()),
        })
    }

    /// Carries out one step. Each kind's future is boxed on its own, in a plain function (an
    /// async one keeps room for the unboxed future all the same): an async fn's state is as
    /// big as its biggest branch, and with the HTTP client's futures inside, one step holding
    /// every kind's took ~50 KB, times the hundreds of steps a Bulk request keeps in flight
    /// (issue 21).
    fn step<'f>(&'f self, step: &'f Step<'_>, herald: &'f Herald) -> Boxed<'f, StepResult> {
        let change = self.change(step);
        if change.kind == Kind::Role {
            return Box::pin(self.role_step(step, change, herald));
        }
        match step.kind {
            StepKind::Create => Box::pin(self.create(step, change, herald)),
            StepKind::Restore => Box::pin(self.restore(step, change, herald)),
            StepKind::Link => Box::pin(self.link(step, change, herald)),
            StepKind::Update => match change.id.as_deref() {
                Some(id) => Box::pin(self.update(
                    change.kind,
                    id,
                    change.version.clone(),
                    change.clone(),
                    change,
                    herald,
                )),
                None => Box::pin(std::future::ready(StepResult::failed(
                    "internal: a patch without an id",
                ))),
            },
            StepKind::Delete => Box::pin(self.delete(change, herald)),
            StepKind::Grants => Box::pin(self.grants(step, change, herald)),
            StepKind::Licenses => Box::pin(self.licenses(step, herald)),
            StepKind::Password => Box::pin(self.rotate(change, herald)),
        }
    }

    /// A create's link step: sets what the create could not carry (members that are groups
    /// the run creates, a manager created later) on the object the create made.
    async fn link(&self, step: &Step<'_>, change: &Change, herald: &Herald) -> StepResult {
        let Some((id, version)) = self.created.of(step.change) else {
            return StepResult::failed("internal: the create left no id");
        };
        let sending = part_of(change, &step.edits, &id, version.clone());
        let r = self
            .update(change.kind, &id, version, sending, change, herald)
            .await;
        if r.outcome == Outcome::Failed
            && change.kind == Kind::Group
            && matches!(self.fetch(change.kind, &id).await, Ok(None))
            && let Some(r) = Box::pin(self.relink(step, change, &id, herald)).await
        {
            return r;
        }
        r
    }

    /// Sends `sending` to object `id`, merging with a fresh copy when it moved.
    async fn update(
        &self,
        kind: Kind,
        id: &str,
        mut version: Option<String>,
        mut sending: Change,
        planned: &Change,
        herald: &Herald,
    ) -> StepResult {
        let mut merged = false;
        let mut attempt = 0;
        let mut missing: Vec<Ref> = Vec::new();
        loop {
            // Grants have a step of their own (and a re-plan may bring them back).
            // So has a password (and a re-plan may bring one back).
            sending.edits.retain(|e| {
                !matches!(
                    e,
                    Edit::Grants { .. } | Edit::Licenses { .. } | Edit::Password
                )
            });
            // Members whose create failed earlier in the run are left out; the rest is sent.
            leave_out_failed_members(&mut sending, &self.created, &mut missing);
            let paths = self.input.options.target.value_paths;
            let ops = match crate::scim::patch::change_operations(&sending, &self.created, paths) {
                Ok(ops) => ops,
                Err(e) => return StepResult::failed(format!("internal: {e}")),
            };
            if ops.is_empty() && !missing.is_empty() {
                return StepResult::new(Outcome::Skipped, Some(needs(&missing)));
            }
            if ops.is_empty() {
                return StepResult::new(Outcome::AlreadyDone, None);
            }
            if let Err(r) = self.announce(herald) {
                return r;
            }
            let error = match self.patch(kind, id, version.as_deref(), &ops).await {
                Ok(after) => {
                    let r = if merged {
                        StepResult::new(
                            Outcome::Merged,
                            Some("the object changed since the plan; the planned change was merged with it".into()),
                        )
                    } else {
                        StepResult::new(Outcome::Done, None)
                    };
                    let mut r = short_of_members(r, "patched", &missing);
                    r.id = Some(id.to_owned());
                    r.version = after;
                    return r;
                }
                Err(e) => e,
            };
            if error.is_not_found() {
                return gone(planned);
            }
            let moved =
                error.is_precondition_failed() || (self.settings.etag && error.is_conflict());
            let unsure = error.is_ambiguous();
            if !(moved || unsure) || attempt >= self.settings.merge_attempts {
                return StepResult::failed(error.to_string());
            }
            attempt += 1;
            let fresh = match self.fetch(kind, id).await {
                Ok(Some(f)) => f,
                Ok(None) => return gone(planned),
                Err(e) => return StepResult::failed(format!("{error}; re-reading it: {e}")),
            };
            let next = match self.replan(planned, &fresh).await {
                Ok(next) => next,
                Err(e) => return StepResult::failed(format!("{error}; re-planning it: {e}")),
            };
            let fresh_version = fresh.version().map(str::to_owned);
            match merge(planned, next) {
                Merge::Nothing => {
                    let detail = if moved {
                        "the object already had the planned values when re-read"
                    } else {
                        "the answer was lost; a re-read shows the change in place"
                    };
                    let mut r = StepResult::new(
                        if moved {
                            Outcome::AlreadyDone
                        } else {
                            Outcome::Done
                        },
                        Some(detail.into()),
                    );
                    r.id = Some(id.to_owned());
                    r.version = fresh_version;
                    return r;
                }
                Merge::Overlap(why) => return StepResult::failed(why),
                Merge::Send(next) => {
                    if self.settings.etag && fresh_version.is_none() {
                        return StepResult::failed(unversioned(&error));
                    }
                    if moved && next.edits == sending.edits && fresh_version == version {
                        // Nothing moved: the server refuses the change itself.
                        return StepResult::failed(error.to_string());
                    }
                    merged |= moved;
                    version = fresh_version;
                    sending = next;
                }
            }
        }
    }

    async fn delete(&self, change: &Change, herald: &Herald) -> StepResult {
        let Some(id) = change.id.as_deref() else {
            return StepResult::failed("internal: a delete without an id");
        };
        let mut version = change.version.clone();
        let mut attempt = 0;
        loop {
            let kind = match resource_kind(change.kind) {
                Ok(kind) => kind,
                Err(e) => return StepResult::failed(e.to_string()),
            };
            if let Err(r) = self.announce(herald) {
                return r;
            }
            let error = match self
                .client
                .delete(kind, id, self.if_match(version.as_deref()))
                .await
            {
                Ok(()) => return StepResult::new(Outcome::Done, None),
                Err(e) => e,
            };
            if error.is_not_found() {
                return StepResult::new(Outcome::AlreadyDone, Some("already gone".into()));
            }
            let moved =
                error.is_precondition_failed() || (self.settings.etag && error.is_conflict());
            if !(moved || error.is_ambiguous()) || attempt >= self.settings.merge_attempts {
                return StepResult::failed(error.to_string());
            }
            attempt += 1;
            match self.fetch(change.kind, id).await {
                Ok(None) => {
                    return StepResult::new(Outcome::AlreadyDone, Some("gone when re-read".into()));
                }
                // Still absent from desired state: it goes, whatever changed, but never
                // without a precondition once the server takes them.
                Ok(Some(fresh)) => {
                    version = fresh.version().map(str::to_owned);
                    if self.settings.etag && version.is_none() {
                        return StepResult::failed(unversioned(&error));
                    }
                }
                Err(e) => return StepResult::failed(format!("{error}; re-reading it: {e}")),
            }
        }
    }

    /// After a user's create: records the fingerprint of a password from a source, or hands a
    /// generated one to the observer for delivery (a failed delivery fails the step).
    fn created_password(
        &self,
        key: &str,
        password: Option<&(Secret, bool)>,
        id: &str,
    ) -> Option<StepResult> {
        match password {
            Some((secret, false)) => {
                if let Err(e) = self.observer.borrow_mut().password_set(key, secret) {
                    // The user exists with its password; only the next plan's knowledge of
                    // it is missing (it will need --adopt-passwords for this user).
                    tracing::warn!(user = %key, error = %e, "password fingerprint not recorded");
                }
                None
            }
            Some((secret, true)) => {
                let delivered = self.observer.borrow_mut().deliver_password(key, secret);
                delivered.err().map(|e| {
                    let mut r = StepResult::failed(format!(
                        "created, but the generated password could not be delivered: {e}"
                    ));
                    r.id = Some(id.to_owned());
                    r
                })
            }
            None => None,
        }
    }

    async fn create(&self, step: &Step<'_>, change: &Change, herald: &Herald) -> StepResult {
        let trimmed = without_failed_members(&step.edits, &self.created).map(|(edits, missing)| {
            let trimmed = Step {
                edits: std::borrow::Cow::Owned(edits),
                ..step.clone()
            };
            (trimmed, missing)
        });
        let sending = trimmed.as_ref().map_or(step, |(s, _)| s);
        let r = self.create_resolved(sending, change, herald).await;
        match &trimmed {
            Some((_, missing)) => short_of_members(r, "created", missing),
            None => r,
        }
    }

    /// [`Shared::create`], every reference of `step` resolved.
    async fn create_resolved(
        &self,
        step: &Step<'_>,
        change: &Change,
        herald: &Herald,
    ) -> StepResult {
        let mut doc = Map::new();
        if let Err(e) = crate::plan::edit::apply(&mut doc, &step.edits, &self.created) {
            return StepResult::failed(format!("internal: {e}"));
        }
        let doc = Value::Object(doc);
        let result = match change.kind {
            Kind::User => {
                let mut user: User = match serde_json::from_value(doc) {
                    Ok(u) => u,
                    Err(e) => return StepResult::failed(format!("internal: {e}")),
                };
                let password = match self.password(change) {
                    Ok(p) => p,
                    Err(e) => return StepResult::failed(e),
                };
                user.password = password.as_ref().map(|(p, _)| p.expose().to_owned());
                if let Err(r) = self.announce(herald) {
                    return r;
                }
                let created = self.client.create(&user.with_schemas()).await;
                created.map(|c| {
                    (
                        c.resource.id,
                        c.resource.meta.version,
                        c.recovered,
                        password,
                    )
                })
            }
            Kind::Group => {
                let group: Group = match serde_json::from_value(doc) {
                    Ok(g) => g,
                    Err(e) => return StepResult::failed(format!("internal: {e}")),
                };
                if let Err(r) = self.announce(herald) {
                    return r;
                }
                let sent = group.with_schemas();
                let created = self.client.create(&sent).await;
                match created {
                    // Boxed, as the rare paths below: see `step`.
                    Ok(c) => Box::pin(self.kept_members(&sent, c.resource))
                        .await
                        .map(|(id, version)| (id, version, c.recovered, None)),
                    Err(e) => Err(e),
                }
            }
            Kind::Role => Err(not_scim()),
        };
        match result {
            Ok((Some(id), version, recovered, password)) => {
                if change.kind == Kind::Group {
                    let mut r = Box::pin(self.verify_alone(step, change, id, version)).await;
                    if recovered && r.detail.is_none() {
                        r.detail =
                            Some("the answer was lost; found by name after the create".into());
                    }
                    return r;
                }
                self.note_created(step.change, &id, version.as_deref());
                let mut detail = recovered
                    .then(|| "the answer was lost; found by name after the create".to_owned());
                if let Some(failed) = self.created_password(&change.key, password.as_ref(), &id) {
                    return failed;
                }
                if detail.is_none()
                    && change.kind == Kind::User
                    && user_had_password(self.input.desired, &change.key)
                {
                    detail = Some("initial password set".into());
                }
                StepResult {
                    outcome: Outcome::Done,
                    detail,
                    id: Some(id),
                    version,
                }
            }
            Ok((None, ..)) => StepResult::failed("the server answered the create without an id"),
            Err(e) if e.is_conflict() => Box::pin(self.adopt(step, change, &e, herald)).await,
            Err(e) => StepResult::failed(e.to_string()),
        }
    }

    /// After a group create: the members sent that the answer lacks (a server that answers
    /// 201 and drops them) are added with one PATCH, so the run converges now rather than
    /// on the next one; warned once a run. Returns the group's id and latest version.
    async fn kept_members(
        &self,
        sent: &Group,
        created: Group,
    ) -> Result<(Option<String>, Option<String>), ScimError> {
        let missing: Vec<Value> = sent
            .members
            .iter()
            .filter(|m| !created.members.iter().any(|c| c.value == m.value))
            .map(|m| serde_json::to_value(m).unwrap_or(Value::Null))
            .collect();
        let (Some(id), false) = (created.id.clone(), missing.is_empty()) else {
            return Ok((created.id, created.meta.version));
        };
        if !self.dropped_members.replace(true) {
            tracing::warn!(
                group = %sent.display_name,
                dropped = missing.len(),
                "the server answered a group create without the members it was sent; adding them with a PATCH (and after every group create of this run)"
            );
        }
        let ops = [crate::scim::PatchOperation {
            op: crate::scim::wire::PatchOpKind::Add,
            path: Some("members".into()),
            value: Some(Value::Array(missing)),
        }];
        let version = self
            .patch(Kind::Group, &id, created.meta.version.as_deref(), &ops)
            .await?;
        Ok((Some(id), version))
    }

    /// After a group create: makes sure it is the only group of its name, merging twins a
    /// concurrent run made ([`twins::settle`]); the run goes on with the survivor.
    async fn verify_alone(
        &self,
        step: &Step<'_>,
        change: &Change,
        id: String,
        version: Option<String>,
    ) -> StepResult {
        let (id, version, outcome, detail) = match twins::settle(
            self.client,
            &change.key,
            &id,
            self.settings.etag,
        )
        .await
        {
            Ok(None) => (id, version, Outcome::Done, None),
            Ok(Some(s)) => {
                let detail = s.describe(&id);
                (s.id, s.version, Outcome::Merged, Some(detail))
            }
            Err(e) => {
                tracing::warn!(group = %change.key, error = %e, "could not check the new group for a twin");
                (
                    id,
                    version,
                    Outcome::Done,
                    Some(format!("created; checking for a twin failed: {e}")),
                )
            }
        };
        self.note_created(step.change, &id, version.as_deref());
        StepResult {
            outcome,
            detail,
            id: Some(id),
            version,
        }
    }

    /// A link step met 404 on the group this run created: a concurrent run may have merged
    /// it into a twin with a lower id. Goes on with that one, once.
    async fn relink(
        &self,
        step: &Step<'_>,
        change: &Change,
        gone_id: &str,
        herald: &Herald,
    ) -> Option<StepResult> {
        let settled = twins::settle(self.client, &change.key, gone_id, self.settings.etag)
            .await
            .ok()??;
        if settled.id == gone_id {
            return None;
        }
        self.note_created(step.change, &settled.id, settled.version.as_deref());
        let sending = part_of(change, &step.edits, &settled.id, settled.version.clone());
        let mut r = self
            .update(
                change.kind,
                &settled.id,
                settled.version,
                sending,
                change,
                herald,
            )
            .await;
        if r.outcome.succeeded() {
            r.outcome = Outcome::Merged;
            r.detail = Some(format!(
                "a concurrent run merged this run's group {gone_id} into its twin {}; members set there",
                settled.id
            ));
        }
        Some(r)
    }

    /// Sets a live user's password again from its `fromEnv`/`fromFile` source, read now (a
    /// plan carries no password), with a PATCH `replace` of `password` (write-only: RFC 7643
    /// §4.1.1; on Genesys Cloud it needs `directory:user:setPassword`). No `If-Match`: the
    /// password is not part of the versioned object a plan compared. The fingerprint is
    /// recorded only once the server accepted it. A password the password-sync endpoint
    /// received for this user ([`Input::pushed`]) is set instead of the source's.
    async fn rotate(&self, change: &Change, herald: &Herald) -> StepResult {
        let Some(id) = change.id.clone() else {
            return StepResult::failed("internal: a password rotation without an id");
        };
        let pushed = self
            .input
            .pushed
            .filter(|p| p.user_name.eq_ignore_ascii_case(&change.key))
            .map(|p| Ok(Some((p.password.clone(), false))));
        let secret = match pushed.unwrap_or_else(|| self.password(change)) {
            Ok(Some((secret, false))) => secret,
            Ok(Some((_, true))) => {
                return StepResult::failed("a generated password is never rotated");
            }
            Ok(None) => return StepResult::failed("the user has no password source"),
            Err(e) => return StepResult::failed(e.replace("initial password", "password")),
        };
        let ops = [crate::scim::PatchOperation {
            op: crate::scim::wire::PatchOpKind::Replace,
            path: Some("password".into()),
            value: Some(Value::String(secret.expose().to_owned())),
        }];
        if let Err(r) = self.announce(herald) {
            return r;
        }
        match self.patch(change.kind, &id, None, &ops).await {
            Ok(version) => {
                let detail = match self
                    .observer
                    .borrow_mut()
                    .password_set(&change.key, &secret)
                {
                    Ok(()) => "password set".to_owned(),
                    Err(e) => format!("password set, but its fingerprint was not recorded: {e}"),
                };
                let mut r = StepResult::new(Outcome::Done, Some(detail));
                r.id = Some(id);
                r.version = version;
                r
            }
            Err(e) if e.is_not_found() => gone(change),
            Err(e) => StepResult::failed(format!("setting the password: {e}")),
        }
    }

    /// The user's initial password, and whether it was generated (and so must be
    /// delivered). Read now, at apply time; never printed.
    fn password(&self, change: &Change) -> Result<Option<(Secret, bool)>, String> {
        let Some(user) = self.input.desired.user(&change.key) else {
            return Ok(None);
        };
        let Some(source) = &user.password else {
            return Ok(None);
        };
        let file = self.input.desired.sources.path(source.span.file);
        let secret = password::resolve(&source.value, file, self.input.desired.secret_dirs())
            .map_err(|e| format!("initial password: {e}"))?;
        Ok(Some((secret, source.value == PasswordSource::Generate)))
    }

    /// Restores a deleted user (Genesys Cloud: `state` back to active, at the version the plan
    /// read), reads it back over SCIM and brings it in line with a re-plan, as a create that
    /// met "already exists" does; the grants step that follows gives back the roles in
    /// divisions that deletion took. A restore answered with an error is still taken as done
    /// when the user now reads back (an unknown outcome, or another run restored it first).
    async fn restore(&self, step: &Step<'_>, change: &Change, herald: &Herald) -> StepResult {
        let (Some(id), Some(version)) = (
            change.id.clone(),
            change
                .version
                .as_deref()
                .and_then(|v| v.parse::<u64>().ok()),
        ) else {
            return StepResult::failed("internal: a restore without an id and a version");
        };
        if let Err(r) = self.announce(herald) {
            return r;
        }
        let restored = self.client.restore_user(&id, version).await;
        let fresh = match self.fetch(Kind::User, &id).await {
            Ok(Some(fresh)) => fresh,
            Ok(None) => {
                return StepResult::failed(match restored {
                    Err(e) => format!("restoring the deleted user: {e}"),
                    Ok(()) => "restored, but the user cannot be read back".to_owned(),
                });
            }
            Err(e) => return StepResult::failed(format!("restored; reading it back: {e}")),
        };
        let restore_detail = match &restored {
            Ok(()) => "restored a deleted user",
            Err(_) => "found restored already",
        };
        let fresh_version = fresh.version().map(str::to_owned);
        self.note_created(step.change, &id, fresh_version.as_deref());
        let next = match self.replan(change, &fresh).await {
            Ok(next) => next,
            Err(e) => return StepResult::failed(format!("restored; re-planning it: {e}")),
        };
        let Some(next) = next.map(|c| without_unresolved(c, &self.created)) else {
            let mut r = StepResult::new(Outcome::Done, Some(restore_detail.into()));
            r.id = Some(id);
            r.version = fresh_version;
            return r;
        };
        let mut r = self
            .update(change.kind, &id, fresh_version, next, change, herald)
            .await;
        if r.outcome.succeeded() {
            r.outcome = Outcome::Done;
            r.detail = Some(format!("{restore_detail} and brought it in line"));
        } else {
            r.detail = Some(format!(
                "{restore_detail}, but bringing it in line failed: {}",
                r.detail.unwrap_or_default()
            ));
        }
        r
    }

    /// A create met "already exists": take the live object over and bring it in line.
    async fn adopt(
        &self,
        step: &Step<'_>,
        change: &Change,
        error: &ScimError,
        herald: &Herald,
    ) -> StepResult {
        let found = match change.kind {
            Kind::User => self
                .client
                .find_by_key::<User>(&change.key)
                .await
                .map(|u| u.map(|u| Live::from_resource(&u).map(Fresh::User))),
            Kind::Group => self
                .client
                .find_by_key::<Group>(&change.key)
                .await
                .map(|g| g.map(|g| Live::from_resource(&g).map(Fresh::Group))),
            Kind::Role => Err(not_scim()),
        };
        let fresh = match found {
            Ok(Some(Ok(f))) => f,
            Ok(None) => {
                return StepResult::failed(format!(
                    "{error}, but nothing of that name can be found"
                ));
            }
            Ok(Some(Err(e))) => {
                return StepResult::failed(format!("{error}; reading the existing object: {e}"));
            }
            Err(e) => return StepResult::failed(format!("{error}; looking it up: {e}")),
        };
        let (id, version) = match &fresh {
            Fresh::User(u) => (u.id(), u.version()),
            Fresh::Group(g) => (g.id(), g.version()),
        };
        let Some(id) = id.map(str::to_owned) else {
            return StepResult::failed(format!("{error}; the existing object has no id"));
        };
        let version = version.map(str::to_owned);
        self.note_created(step.change, &id, version.as_deref());
        let next = match self.replan(change, &fresh).await {
            Ok(next) => next,
            Err(e) => return StepResult::failed(format!("{error}; re-planning it: {e}")),
        };
        let Some(next) = next.map(|c| without_unresolved(c, &self.created)) else {
            let mut r = StepResult::new(
                Outcome::AlreadyDone,
                Some("it already existed, as desired".into()),
            );
            r.id = Some(id);
            r.version = version;
            return r;
        };
        let mut r = self
            .update(change.kind, &id, version, next, change, herald)
            .await;
        if r.outcome.succeeded() {
            r.outcome = Outcome::Merged;
            r.detail = Some(
                if change.kind == Kind::User && user_had_password(self.input.desired, &change.key) {
                    "it already existed: adopted and brought in line (initial password not set)"
                        .into()
                } else {
                    "it already existed: adopted and brought in line".into()
                },
            );
        }
        r
    }
}

impl<'a, 's, C: ScimRead + ScimWrite> Shared<'a, 's, C>
where
    'a: 's,
{
    /// A user's or group's grants of roles in divisions (Platform API `bulkadd`, then
    /// `bulkremove`; a group's with `subjectType=PC_GROUP`). Roles the run created are
    /// resolved by name; the subject is the live one, or the one the change's create made.
    async fn grants(&self, step: &Step<'_>, change: &Change, herald: &Herald) -> StepResult {
        let user = match change.id.clone() {
            Some(id) => Some(id),
            None => self.created.of(step.change).map(|(id, _)| id),
        };
        let Some(user) = user else {
            return StepResult::failed("internal: grants for a user without an id");
        };
        let mut sent = 0;
        for edit in step.edits.iter() {
            let Edit::Grants { add, remove } = edit else {
                continue;
            };
            for (adding, grants) in [(true, add), (false, remove)] {
                let mut pairs = Vec::with_capacity(grants.len());
                for g in grants {
                    let Some(role_id) = self.created.id_of(&g.role_ref()) else {
                        return StepResult::failed(format!(
                            "role {:?} has no id: its create did not happen",
                            g.role
                        ));
                    };
                    pairs.push(GrantPair {
                        role_id,
                        division_id: g.division_id.clone(),
                    });
                }
                if pairs.is_empty() {
                    continue;
                }
                if let Err(r) = self.announce(herald) {
                    return r;
                }
                let group = change.kind == Kind::Group;
                let result = match (group, adding) {
                    (false, true) => self.client.add_grants(&user, &pairs).await,
                    (false, false) => self.client.remove_grants(&user, &pairs).await,
                    // Roles granted to a group (`PC_GROUP`).
                    (true, true) => self.client.add_group_grants(&user, &pairs).await,
                    (true, false) => self.client.remove_group_grants(&user, &pairs).await,
                };
                match result {
                    Ok(()) => sent += pairs.len(),
                    // A 404 can name the role or division (the authorization cache lags
                    // behind new ones): the subject is gone only when a read says so.
                    Err(e) if e.is_not_found() && self.subject_gone(change.kind, &user).await => {
                        return gone(change);
                    }
                    Err(e) => {
                        let what = if adding { "granting" } else { "revoking" };
                        let done = if sent > 0 {
                            format!(" ({sent} grant changes were made)")
                        } else {
                            String::new()
                        };
                        return StepResult::failed(format!("{what} roles in divisions: {e}{done}"));
                    }
                }
            }
        }
        let mut r = StepResult::new(Outcome::Done, None);
        r.id = Some(user);
        r
    }

    /// Whether a read of user `id` answers 404 (any other answer, error or not, says no).
    async fn user_gone(&self, id: &str) -> bool {
        matches!(self.client.get::<User>(id).await, Err(e) if e.is_not_found())
    }

    /// Whether a read of the user or group `id` answers 404.
    async fn subject_gone(&self, kind: Kind, id: &str) -> bool {
        if kind == Kind::Group {
            matches!(self.client.get::<Group>(id).await, Err(e) if e.is_not_found())
        } else {
            self.user_gone(id).await
        }
    }

    /// A role definition's create, whole-body update or delete (Platform API).
    async fn role_step(&self, step: &Step<'_>, change: &Change, herald: &Herald) -> StepResult {
        let kind = step.kind;
        let role = change.edits.iter().find_map(|e| match e {
            Edit::Role { body, permissions } => Some((body, *permissions)),
            _ => None,
        });
        let sends = matches!(
            (kind, role, change.id.as_deref()),
            (StepKind::Delete, _, Some(_))
                | (StepKind::Create, Some(_), _)
                | (StepKind::Update, Some(_), Some(_))
        );
        if sends && let Err(r) = self.announce(herald) {
            return r;
        }
        match (kind, role, change.id.as_deref()) {
            (StepKind::Delete, _, Some(id)) => match self.client.delete_role(id).await {
                Ok(()) => StepResult::new(Outcome::Done, None),
                Err(e) if e.is_not_found() => {
                    StepResult::new(Outcome::AlreadyDone, Some("already gone".into()))
                }
                Err(e) => StepResult::failed(e.to_string()),
            },
            (StepKind::Create, Some((body, permissions)), _) => {
                match self.client.create_role(body).await {
                    Ok(created) => {
                        self.note_created(step.change, &created.id, None);
                        let mut r = StepResult::new(Outcome::Done, None);
                        r.id = Some(created.id);
                        r
                    }
                    Err(e) if e.is_conflict() || e.is_ambiguous() => {
                        self.adopt_role(step.change, body, permissions, &e).await
                    }
                    Err(e) => StepResult::failed(e.to_string()),
                }
            }
            (StepKind::Update, Some((body, _)), Some(id)) => {
                match self.client.update_role(id, body).await {
                    Ok(_) => {
                        let mut r = StepResult::new(Outcome::Done, None);
                        r.id = Some(id.to_owned());
                        r
                    }
                    Err(e) if e.is_not_found() => StepResult::failed(
                        "deleted on the target since the plan; plan again to recreate it",
                    ),
                    Err(e) => StepResult::failed(e.to_string()),
                }
            }
            _ => StepResult::failed("internal: a role change without its body or id"),
        }
    }

    /// A role create met "name taken" (409 `general.conflict`) or lost its answer: find the
    /// live role by name, and bring it in line when it differs.
    async fn adopt_role(
        &self,
        i: usize,
        body: &RoleBody,
        permissions: bool,
        error: &ScimError,
    ) -> StepResult {
        let roles = match self.client.list_roles().await {
            Ok(roles) => roles,
            Err(e) => return StepResult::failed(format!("{error}; listing roles: {e}")),
        };
        let name = body.name.to_lowercase();
        let mut hits = roles.into_iter().filter(|r| r.name.to_lowercase() == name);
        let (live, more) = (hits.next(), hits.next());
        let live = match (live, more) {
            (Some(live), None) => live,
            (None, _) => {
                return StepResult::failed(format!(
                    "{error}, but no role of that name can be found"
                ));
            }
            (Some(_), Some(_)) => {
                return StepResult::failed(format!(
                    "{error}, and several roles have that name: plan again"
                ));
            }
        };
        self.note_created(i, &live.id, None);
        let lost = !error.is_conflict();
        if role_matches(body, permissions, &live) {
            let mut r = if lost {
                StepResult::new(
                    Outcome::Done,
                    Some("the answer was lost; found by name after the create".into()),
                )
            } else {
                StepResult::new(
                    Outcome::AlreadyDone,
                    Some("it already existed, as desired".into()),
                )
            };
            r.id = Some(live.id);
            return r;
        }
        let policies = permissions.then(|| body.permission_policies.clone());
        let merged = merged_body(&body.name, body.description.as_deref(), policies, &live);
        let mut r = match self.client.update_role(&live.id, &merged).await {
            Ok(_) => StepResult::new(
                Outcome::Merged,
                Some("it already existed: adopted and brought in line".into()),
            ),
            Err(e) => StepResult::failed(format!(
                "{error}; it already existed, and bringing it in line failed: {e}"
            )),
        };
        r.id = Some(live.id);
        r
    }
}

/// Whether `plan` creates a user whose password is generated (and so must be delivered).
#[must_use]
pub fn generates_passwords(plan: &Plan, desired: &DesiredState) -> bool {
    plan.changes.iter().any(|c| {
        c.kind == Kind::User
            && c.action == Action::Create
            && c.blocked.is_none()
            && desired.user(&c.key).is_some_and(|u| {
                u.password
                    .as_ref()
                    .is_some_and(|p| matches!(p.value, PasswordSource::Generate))
            })
    })
}

fn user_had_password(desired: &DesiredState, key: &str) -> bool {
    desired.user(key).is_some_and(|u| u.password.is_some())
}

fn decode(e: &serde_json::Error) -> ScimError {
    ScimError::Decode {
        method: "GET".into(),
        path: String::new(),
        message: e.to_string(),
    }
}

/// A write met a moved object and the re-read copy has no version to send: the write is not
/// sent again without `If-Match` (a conditional write must not become an unconditional one).
fn unversioned(error: &ScimError) -> String {
    format!(
        "{error}; the object was read again but carries no version, so the change is not sent \
         without a precondition; plan again"
    )
}

/// The object is gone: done for a deactivation, a failure for anything else.
fn gone(planned: &Change) -> StepResult {
    if planned.action == Action::Deactivate && planned.source == Source::Absent {
        StepResult::new(
            Outcome::AlreadyDone,
            Some("no longer exists on the target".into()),
        )
    } else {
        StepResult::failed("deleted on the target since the plan; plan again to recreate it")
    }
}

/// `edits` without the members that have no id although the run has settled their creates
/// (the step waited for them: [`crate::apply::graph::Step::after`]), and those members;
/// `None` when every member resolves.
fn without_failed_members(edits: &[Edit], ids: &Created) -> Option<(Vec<Edit>, Vec<Ref>)> {
    let unresolved = |m: &Ref| ids.id_of(m).is_none();
    let adds_unresolved =
        |e: &Edit| matches!(e, Edit::AddMembers { members } if members.iter().any(unresolved));
    if !edits.iter().any(adds_unresolved) {
        return None;
    }
    let mut missing = Vec::new();
    let kept = edits
        .iter()
        .filter_map(|e| match e {
            Edit::AddMembers { members } => {
                let (kept, left): (Vec<Ref>, Vec<Ref>) =
                    members.iter().cloned().partition(|m| !unresolved(m));
                missing.extend(left);
                (!kept.is_empty()).then_some(Edit::AddMembers { members: kept })
            }
            other => Some(other.clone()),
        })
        .collect();
    Some((kept, missing))
}

/// Takes out of `sending` the members whose create failed, adding them to `missing`.
fn leave_out_failed_members(sending: &mut Change, ids: &Created, missing: &mut Vec<Ref>) {
    if let Some((edits, left_out)) = without_failed_members(&sending.edits, ids) {
        sending.rows_mut();
        sending.edits = edits;
        for r in left_out {
            if !missing.contains(&r) {
                missing.push(r);
            }
        }
    }
}

/// Why members were left out: they name objects whose create did not succeed.
fn needs(missing: &[Ref]) -> String {
    let names: Vec<String> = missing
        .iter()
        .map(|m| format!("{} {}", m.kind, m.name))
        .collect();
    format!("needs {}, which did not succeed", names.join(", "))
}

/// `r`, failed when it succeeded without members that were left out.
fn short_of_members(r: StepResult, done: &str, missing: &[Ref]) -> StepResult {
    if missing.is_empty() || !r.outcome.succeeded() {
        return r;
    }
    StepResult {
        outcome: Outcome::Failed,
        detail: Some(format!(
            "{done}, but its members could not be set: {}",
            needs(missing)
        )),
        ..r
    }
}

/// Drops references to objects that have no id yet (a link step of the run adds them).
/// The part of planned `change` that one step sends (`edits`), to the object `id` at
/// `version`. Its rows stay the whole change's, as planned: these edits do not tell them.
fn part_of(change: &Change, edits: &[Edit], id: &str, version: Option<String>) -> Change {
    Change {
        edits: edits.to_vec(),
        id: Some(id.to_owned()),
        version,
        diff: change.rows().into_owned(),
        derived: false,
        ..change.clone()
    }
}

fn without_unresolved(mut change: Change, ids: &Created) -> Change {
    // The rows stay those planned, whatever references are left out of the edits.
    change.rows_mut();
    change.edits = change
        .edits
        .into_iter()
        .filter_map(|e| match e {
            Edit::AddMembers { members } => {
                let members: Vec<Ref> = members
                    .into_iter()
                    .filter(|m| ids.id_of(m).is_some())
                    .collect();
                (!members.is_empty()).then_some(Edit::AddMembers { members })
            }
            Edit::SetManager { to } if ids.id_of(&to).is_none() => None,
            other => Some(other),
        })
        .collect();
    change
}

/// Per change: how its steps have ended so far.
struct Progress {
    steps_left: usize,
    report: OpReport,
}

/// The steps of each change (indices into the graph), by change: one array for them all,
/// as a vector per change cost an allocation per operation (issue 21).
struct StepsOf {
    /// Where each change's steps start in `steps`; one entry more than there are changes.
    start: Vec<usize>,
    steps: Vec<usize>,
}

impl StepsOf {
    fn new(graph: &Graph<'_>, changes: usize) -> StepsOf {
        let mut start = vec![0; changes + 1];
        for step in &graph.steps {
            start[step.change + 1] += 1;
        }
        for i in 0..changes {
            start[i + 1] += start[i];
        }
        let mut next = start.clone();
        let mut steps = vec![0; graph.steps.len()];
        for (s, step) in graph.steps.iter().enumerate() {
            steps[next[step.change]] = s;
            next[step.change] += 1;
        }
        StepsOf { start, steps }
    }

    /// The steps of change `change`.
    fn of(&self, change: usize) -> &[usize] {
        &self.steps[self.start[change]..self.start[change + 1]]
    }
}

/// The detail of a [`Stage::Written`] step: what the step did (its own detail when it has
/// one) and what the operation still has to do, e.g. `created; members pending`.
fn written_detail(
    of: Kind,
    done: StepKind,
    detail: Option<String>,
    pending: impl Iterator<Item = StepKind>,
) -> String {
    let did = detail.unwrap_or_else(|| {
        match done {
            StepKind::Create => "created",
            StepKind::Restore => "restored",
            StepKind::Link => "references set",
            StepKind::Update => "patched",
            StepKind::Grants => "roles in divisions granted",
            StepKind::Licenses => "licenses assigned",
            StepKind::Delete => "deleted",
            StepKind::Password => "password set",
        }
        .to_owned()
    });
    let mut todo: Vec<&str> = pending
        .map(|k| match k {
            StepKind::Link if of == Kind::Group => "members",
            StepKind::Link => "manager",
            StepKind::Grants => "roles in divisions",
            StepKind::Licenses => "licenses",
            StepKind::Create => "create",
            StepKind::Restore => "restore",
            StepKind::Update => "patch",
            StepKind::Delete => "delete",
            StepKind::Password => "password",
        })
        .collect();
    todo.sort_unstable();
    todo.dedup();
    if todo.is_empty() {
        did
    } else {
        format!("{did}; {} pending", todo.join(", "))
    }
}

type StepFuture<'f> = Boxed<'f, (usize, Announced, StepResult)>;

/// A boxed future.
type Boxed<'f, T> = Pin<Box<dyn Future<Output = T> + 'f>>;

/// Which steps may start, and what each finished step means for the rest.
struct Schedule<'g> {
    graph: &'g Graph<'g>,
    plan: &'g Plan,
    /// Per step: dependencies not yet succeeded (`usize::MAX`: skipped already).
    waiting: Vec<usize>,
    settled: Vec<bool>,
    /// Per phase, steps not yet settled; a phase's steps wait until every earlier phase is
    /// at zero.
    left: [usize; Phase::ALL.len()],
    ready: VecDeque<usize>,
    /// Per phase, steps whose dependencies are met but whose phase has not come yet.
    held: [Vec<usize>; Phase::ALL.len()],
    /// Per change (by index into the plan), its report; `None` for a change without steps.
    reports: Vec<Option<Progress>>,
    steps_of: StepsOf,
    /// Set when no new step may start (the observer failed): the reason.
    stop: Option<String>,
}

impl<'g> Schedule<'g> {
    fn new(graph: &'g Graph<'g>, plan: &'g Plan) -> Schedule<'g> {
        let mut left = [0; Phase::ALL.len()];
        for step in &graph.steps {
            left[step.phase.index()] += 1;
        }
        let mut schedule = Schedule {
            graph,
            plan,
            waiting: graph
                .steps
                .iter()
                .map(|s| s.deps.len() + s.after.len())
                .collect(),
            settled: vec![false; graph.steps.len()],
            left,
            ready: VecDeque::new(),
            held: Default::default(),
            reports: reports(graph, plan),
            steps_of: StepsOf::new(graph, plan.changes.len()),
            stop: None,
        };
        for (s, step) in graph.steps.iter().enumerate() {
            if step.deps.is_empty() && step.after.is_empty() {
                schedule.release(s);
            }
        }
        schedule
    }

    fn release(&mut self, s: usize) {
        self.held[self.graph.steps[s].phase.index()].push(s);
    }

    /// The next step to start, if one may start now.
    fn next_ready(&mut self) -> Option<usize> {
        if self.stop.is_some() {
            return None;
        }
        // The current phase: the first with unsettled steps. Its held steps (and any of an
        // earlier phase, though none can be left) may start.
        let current = self
            .left
            .iter()
            .position(|&n| n > 0)
            .unwrap_or(Phase::ALL.len() - 1);
        for phase in &mut self.held[..=current] {
            self.ready.extend(phase.drain(..));
        }
        self.ready.pop_front()
    }

    /// Records step `s`'s result, skips what needed it if it failed, releases what now may
    /// run, and tells `observer` of every operation that is complete, and of the step when it
    /// `sent` a write and its operation has further steps.
    fn settle(
        &mut self,
        s: usize,
        result: StepResult,
        sent: bool,
        observer: &RefCell<&mut dyn Observer>,
    ) {
        let mut finished = vec![(s, result, sent)];
        while let Some((s, result, sent)) = finished.pop() {
            self.settled[s] = true;
            let step = &self.graph.steps[s];
            self.left[step.phase.index()] -= 1;
            let ok = result.outcome.succeeded();
            let change = &self.plan.changes[step.change];
            if let Some(p) = self.reports[step.change].as_mut() {
                let (outcome, detail) = (result.outcome, result.detail.clone());
                absorb(&mut p.report, step.kind, result, change);
                p.steps_left -= 1;
                let heard = if p.steps_left == 0 {
                    observer.borrow_mut().finished(&p.report)
                } else if ok && sent {
                    // Recorded before any step that needs this one is released below. (A
                    // step that sent nothing was never announced: it has no record to end.)
                    let pending = self
                        .steps_of
                        .of(step.change)
                        .iter()
                        .filter(|&&other| !self.settled[other])
                        .map(|&other| self.graph.steps[other].kind);
                    let written = OpReport {
                        outcome,
                        detail: Some(written_detail(change.kind, step.kind, detail, pending)),
                        ..p.report.clone()
                    };
                    observer
                        .borrow_mut()
                        .step(Stage::Written, StepName::of(step.kind), &written)
                } else {
                    Ok(())
                };
                if let Err(why) = heard
                    && self.stop.is_none()
                {
                    tracing::error!(%why, "stopping: no new operation starts");
                    self.stop = Some(why);
                }
            }
            for &d in &self.graph.dependants[s] {
                if self.settled[d] || self.waiting[d] == usize::MAX {
                    continue;
                }
                if ok {
                    self.waiting[d] -= 1;
                    if self.waiting[d] == 0 {
                        self.release(d);
                    }
                } else {
                    // Skipped, and reported through the same path as a finished step.
                    let why = format!(
                        "needs {} {}, which did not succeed",
                        change.kind, change.key
                    );
                    self.waiting[d] = usize::MAX;
                    // A link is the rest of a create that may stand: its members can no
                    // longer be set, which fails the operation (a stop, below, only skips).
                    let outcome = if self.graph.steps[d].kind == StepKind::Link {
                        Outcome::Failed
                    } else {
                        Outcome::Skipped
                    };
                    finished.push((d, StepResult::new(outcome, Some(why)), false));
                }
            }
            // Those that only wait for it go ahead either way (a failed member is left out
            // of their write).
            for &d in &self.graph.followers[s] {
                if self.settled[d] || self.waiting[d] == usize::MAX {
                    continue;
                }
                self.waiting[d] -= 1;
                if self.waiting[d] == 0 {
                    self.release(d);
                }
            }
        }
    }

    /// Settles every step that never started (after a stop) as skipped.
    fn skip_the_rest(&mut self, observer: &RefCell<&mut dyn Observer>) {
        let why = format!(
            "not started: {}",
            self.stop
                .clone()
                .unwrap_or_else(|| "its dependencies never finished".into())
        );
        for s in 0..self.graph.steps.len() {
            if !self.settled[s] && self.waiting[s] != usize::MAX {
                self.settle(
                    s,
                    StepResult::new(Outcome::Skipped, Some(why.clone())),
                    false,
                    observer,
                );
            }
        }
    }

    fn report(self) -> Report {
        // In the plan's order already; `filter_map` collects in place, so the reports are not
        // held twice at the end of a big run (issue 21, memory).
        Report {
            ops: self
                .reports
                .into_iter()
                .filter_map(|p| p.map(|p| p.report))
                .collect(),
        }
    }
}

/// Carries out `input.plan` through `client`, telling `observer` as operations finish.
pub async fn run<C: ScimRead + ScimWrite>(
    client: &C,
    input: &Input<'_>,
    settings: &Settings,
    observer: &mut dyn Observer,
) -> Report {
    let graph = Graph::new(input.plan);
    let fetched = tokio::sync::OnceCell::new();
    let shared = Shared {
        client,
        input,
        settings,
        created: Created::new(input.plan),
        fetched: &fetched,
        replanner: RefCell::new(None),
        observer: RefCell::new(observer),
        refused: RefCell::new(None),
        dropped_members: std::cell::Cell::new(false),
        licenses: licenses::Batch::new(&graph),
    };
    let shared = &shared;
    let mut schedule = Schedule::new(&graph, input.plan);
    if generates_passwords(input.plan, input.desired)
        && let Err(why) = shared.observer.borrow_mut().prepare_passwords()
    {
        tracing::warn!(%why, "generated passwords could not be delivered: nothing is written");
        schedule.stop = Some(format!(
            "generated passwords could not be delivered, so nothing was written: {why}"
        ));
    }
    let mut running: FuturesUnordered<StepFuture<'_>> = FuturesUnordered::new();
    let in_flight = settings.in_flight.max(1);
    loop {
        while running.len() < in_flight {
            if schedule.stop.is_none()
                && let Some(why) = shared.observer.borrow().stop_requested()
            {
                tracing::info!(%why, "stopping: no new operation starts");
                schedule.stop = Some(why);
            }
            let Some(s) = schedule.next_ready() else {
                break;
            };
            let step = &graph.steps[s];
            // Announced (recorded) right before its first write goes out: whatever the
            // server does from then on, a run killed at any point has a record naming it.
            let herald = Herald {
                step: StepName::of(step.kind),
                op: schedule.reports[step.change].as_ref().map_or_else(
                    || initial_report(&input.plan.changes[step.change]),
                    |p| p.report.clone(),
                ),
                announced: RefCell::new(Announced::Not),
            };
            running.push(Box::pin(async move {
                let result = shared.step(step, &herald).await;
                (s, herald.announced.into_inner(), result)
            }));
        }
        let Some((s, announced, result)) = running.next().await else {
            break;
        };
        if schedule.stop.is_none()
            && let Some(why) = shared.refused.borrow().clone()
        {
            tracing::error!(%why, "stopping: no new operation starts");
            schedule.stop = Some(why);
        }
        if announced == Announced::Refused {
            // It sent nothing: not started, skipped with the rest below.
            continue;
        }
        schedule.settle(s, result, announced == Announced::Sent, &shared.observer);
    }
    shared.settle_unread_licenses(&mut schedule);
    schedule.skip_the_rest(&shared.observer);
    schedule.report()
}

/// One report per change that has steps, each counting the steps still to finish.
fn reports(graph: &Graph<'_>, plan: &Plan) -> Vec<Option<Progress>> {
    let mut progress: Vec<Option<Progress>> = Vec::new();
    progress.resize_with(plan.changes.len(), || None);
    for step in &graph.steps {
        let change = &plan.changes[step.change];
        let p = progress[step.change].get_or_insert_with(|| Progress {
            steps_left: 0,
            report: initial_report(change),
        });
        p.steps_left += 1;
    }
    progress
}

/// An operation's report before any of its steps finished.
fn initial_report(change: &Change) -> OpReport {
    OpReport {
        action: change.action,
        kind: change.kind,
        key: change.key.clone(),
        id: change.id.clone(),
        before_version: change.version.clone(),
        after_version: None,
        outcome: Outcome::Done,
        detail: None,
    }
}

/// Folds one step's result into its operation's report.
fn absorb(report: &mut OpReport, kind: StepKind, result: StepResult, change: &Change) {
    if result.id.is_some() {
        report.id = result.id;
    }
    if result.version.is_some() {
        report.after_version = result.version;
    }
    if kind == StepKind::Link {
        if !result.outcome.succeeded() && report.outcome.succeeded() {
            let what = if change
                .edits
                .iter()
                .any(|e| matches!(e, Edit::SetManager { .. }))
            {
                "members or manager"
            } else {
                "members"
            };
            let why = result.detail.unwrap_or_default();
            if result.outcome == Outcome::Skipped {
                // Created is created: the create stands (its `written` record says so) and
                // only the link went unstarted, e.g. a stop came first.
                report.outcome = Outcome::Skipped;
                report.detail = Some(format!("created; its {what} were not set: {why}"));
            } else {
                report.outcome = Outcome::Failed;
                report.detail = Some(format!("created, but its {what} could not be set: {why}"));
            }
        } else if result.outcome == Outcome::Merged && report.outcome == Outcome::Done {
            report.outcome = Outcome::Merged;
            report.detail = result.detail;
        }
        return;
    }
    // A later step of the same operation: what it was to do, for a failure's detail.
    let later = match kind {
        StepKind::Grants => Some("its roles in divisions could not be granted"),
        StepKind::Licenses => Some("its licenses could not be assigned"),
        _ => None,
    };
    if let Some(what) = later {
        if !result.outcome.succeeded() && report.outcome.succeeded() {
            let created = if change.action.brings_in() {
                "created, but "
            } else {
                ""
            };
            report.outcome = result.outcome;
            report.detail = Some(format!(
                "{created}{what}: {}",
                result.detail.unwrap_or_default()
            ));
        }
        return;
    }
    if kind == StepKind::Password {
        if !result.outcome.succeeded() && report.outcome.succeeded() {
            report.outcome = result.outcome;
            report.detail = Some(format!(
                "its password could not be set: {}",
                result.detail.unwrap_or_default()
            ));
        } else if report.detail.is_none() {
            report.detail = result.detail;
        }
        return;
    }
    if matches!(
        kind,
        StepKind::Create | StepKind::Restore | StepKind::Update
    ) && result.outcome.succeeded()
        && !report.outcome.succeeded()
    {
        // The link or grants step was skipped or failed before this step finished (a
        // member's or the manager's create failed first): the object exists, its
        // references do not.
        return;
    }
    report.outcome = result.outcome;
    report.detail = result.detail;
}

#[cfg(test)]
mod caseless_tests {
    use std::hash::BuildHasher;

    use super::Caseless;

    // Equal names hash equally, whatever their case, so the index of created objects finds a
    // member written `ANA@X.EXAMPLE` under the create of `ana@x.example`.
    #[test]
    fn names_equal_but_for_case_are_one_key() {
        let hasher = std::collections::hash_map::RandomState::new();
        for (a, b) in [
            ("ana@x.example", "ANA@X.Example"),
            ("Ärzte", "äRZTE"),
            ("", ""),
        ] {
            assert_eq!(Caseless(a), Caseless(b), "{a} {b}");
            assert_eq!(hasher.hash_one(Caseless(a)), hasher.hash_one(Caseless(b)));
        }
        for (a, b) in [("ana", "anna"), ("ana", "ana "), ("ab", "a")] {
            assert_ne!(Caseless(a), Caseless(b), "{a} {b}");
        }
    }
}
