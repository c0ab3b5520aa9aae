//! One reconcile: load the desired state (keeping the last valid one when the files are
//! invalid), read the tenant, plan, and then apply (`heal`) or only report (`report`).
//!
//! The connection to the target is made on the first reconcile and kept, so an embedded
//! sandbox lives as long as watch does and a remote client keeps its token and limits. It is
//! made again only when `scimctl.yaml`'s target changes. Writes go through the same engine,
//! audit log and password drop as `scimctl apply`; a requested stop reaches the engine before
//! each new operation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::apply::audit::{self, AuditLog, RunContext};
use crate::apply::engine::{Observer, OpReport, Outcome, Stage, StepName};
use crate::apply::fingerprint::{Fingerprints, VerifyCache};
use crate::apply::record::{self, Recorder};
use crate::desired::{self, DesiredState, LoadError};
use crate::overrides::Overrides;
use crate::plan::Kind;
use crate::plan::saved::PlanDocument;
use crate::scim::Secret;
use crate::session::{self, PlanSource};
use crate::target::Connection;
use crate::webhook::password::{PasswordSet, PasswordSyncError};
use crate::webhook::{Outcomes, TerminateError, Terminated};

use super::Stop;
use super::metrics::Metrics;

/// What watch does with drift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Apply the plan.
    Heal,
    /// Only report the plan (metrics, log, webhooks); write nothing.
    Report,
}

/// Why a reconcile did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The files are invalid and there is no earlier valid state to fall back on.
    #[error("the desired state is invalid and no earlier valid state is known")]
    NoValidState,
    /// The target could not be reached, read or planned against.
    #[error("{0}")]
    Target(String),
    /// Some operations failed or were skipped.
    #[error("{failed} operation(s) failed and {skipped} were skipped")]
    Operations {
        /// Operations that failed.
        failed: usize,
        /// Operations not carried out because something they needed failed.
        skipped: usize,
    },
    /// A stop was requested before the reconcile finished.
    #[error("stopped")]
    Stopped,
}

/// What a successful reconcile did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Changes the plan found (blocked ones included).
    pub drift: usize,
    /// Changes held back by a safety rule.
    pub blocked: usize,
    /// Operations applied (0 in report mode).
    pub applied: usize,
    /// The target, as plans name it.
    pub target: String,
    /// The plan's changes by action, then kind (blocked ones under `blocked`).
    pub changes: BTreeMap<String, BTreeMap<String, u64>>,
    /// The first safety rule's reason, when changes were held back.
    pub blocked_reason: Option<String>,
    /// The checksum of the plan applied and how its operations ended, in heal mode.
    pub outcomes: Option<(String, Outcomes)>,
    /// The files on disk were invalid: this reconciled the last valid desired state, and
    /// counts as `result="invalid"`, not as a success.
    pub desired_invalid: bool,
}

/// Takes the target's lock for a write, logging once when another run holds it.
async fn take_lock(
    config: &Config,
    target: &str,
) -> Result<session::lock::TargetLock, session::lock::LockError> {
    session::lock::acquire(&config.lock_dir, target, config.lock_timeout, |holder| {
        tracing::warn!(%target, %holder, "waiting for another scimctl run writing to the target");
    })
    .await
}

/// Settings of the reconciler.
#[derive(Clone, Debug)]
pub struct Config {
    /// The desired-state directory.
    pub dir: PathBuf,
    /// Heal or report.
    pub mode: Mode,
    /// `--target URL`.
    pub target_url: Option<String>,
    /// `--requests-per-minute N`.
    pub requests_per_minute: Option<u32>,
    /// `--no-bulk`.
    pub no_bulk: bool,
    /// The audit log.
    pub audit_log: PathBuf,
    /// The overrides file (HRIS terminations).
    pub overrides: PathBuf,
    /// Where the one-writer-per-target locks live ([`session::lock`]).
    pub lock_dir: PathBuf,
    /// How long a write waits for another run holding the target's lock.
    pub lock_timeout: std::time::Duration,
    /// The password fingerprints (issue 19): read to find passwords changed at source,
    /// written when a password is set.
    pub fingerprints: PathBuf,
}

/// A valid desired state and the hash of its files.
struct Good {
    state: DesiredState,
    hash: String,
    /// The target section of `scimctl.yaml`, to notice when it changes.
    target: String,
}

/// Reconciles on demand; owns the connection and the last valid desired state.
pub struct Reconciler {
    applier: Applier,
    connection: Option<(Connection, String)>,
    last_good: Option<Good>,
    /// The override warnings last logged, to log them again only when they change.
    override_warnings: Vec<String>,
    /// The files were loaded by [`Reconciler::preload`] for the next reconcile.
    preloaded: bool,
    /// The last load found the files invalid (the last valid state, if any, is in force).
    files_invalid: bool,
    /// The (fingerprint, password) pairs seen to match, so a resync does not pay Argon2
    /// again for every user.
    verified: VerifyCache,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("dir", &self.applier.config.dir)
            .field("mode", &self.applier.config.mode)
            .finish_non_exhaustive()
    }
}

impl Reconciler {
    /// A reconciler that records into `metrics` and stops starting operations once `stop`
    /// is set. Opens the audit log now, so a watch that cannot record never starts.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        stop: Stop,
    ) -> Result<Reconciler, audit::AuditError> {
        let audit = AuditLog::open(&config.audit_log)?;
        Ok(Reconciler {
            applier: Applier {
                config,
                metrics,
                stop,
                audit,
                actor: audit::actor(),
            },
            connection: None,
            last_good: None,
            override_warnings: Vec::new(),
            preloaded: false,
            files_invalid: false,
            verified: VerifyCache::default(),
        })
    }

    /// Closes the connection (an embedded sandbox flushes its state file).
    pub async fn close(mut self) {
        if let Some((connection, _)) = self.connection.take()
            && let Err(e) = connection.close().await
        {
            tracing::error!(error = %e, "closing the target");
        }
    }

    /// Loads the files; on invalid files keeps (and returns) the last valid state.
    async fn load(&mut self) -> Result<&Good, ReconcileError> {
        let dir = self.applier.config.dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            let loaded = desired::load_dir(&dir);
            let hash = loaded
                .as_ref()
                .ok()
                .map(|l| crate::plan::saved::desired_hash_of(&dir, &l.state.sources));
            (loaded, hash)
        })
        .await
        .map_err(|e| ReconcileError::Target(format!("loading the desired state: {e}")))?;
        match loaded {
            (Ok(loaded), Some(hash)) => {
                // Warnings once per version of the files, not on every resync.
                if self.last_good.as_ref().is_none_or(|g| g.hash != hash) {
                    for line in loaded.warnings.to_string().lines() {
                        tracing::warn!("{line}");
                    }
                }
                self.applier.metrics.desired_invalid(None);
                self.files_invalid = false;
                let mut state = loaded.state;
                self.fold_overrides(&mut state)?;
                let target = format!("{:?}", state.config.target);
                self.last_good = Some(Good {
                    state,
                    hash,
                    target,
                });
            }
            (Err(e), _) => {
                let report = match &e {
                    LoadError::Invalid(report) => report.to_string(),
                    LoadError::Directory { .. } => e.to_string(),
                };
                for line in report.lines() {
                    tracing::error!("{line}");
                }
                tracing::error!(
                    "{e}; {}",
                    if self.last_good.is_some() {
                        "the last valid desired state stays in force"
                    } else {
                        "nothing is reconciled until it is fixed"
                    }
                );
                self.applier.metrics.desired_invalid(Some(report));
                self.files_invalid = true;
            }
            (Ok(_), None) => unreachable!("a loaded state always has a hash"),
        }
        self.last_good.as_ref().ok_or(ReconcileError::NoValidState)
    }

    /// Loads the desired state for the first reconcile, which then does not load it again,
    /// and returns its configuration (`None` while the files are invalid): what watch needs
    /// before it starts (webhooks, the HRIS secret).
    pub async fn preload(&mut self) -> Option<&crate::model::Config> {
        self.preloaded = true;
        match self.load().await {
            Ok(good) => Some(&good.state.config),
            Err(_) => None,
        }
    }

    /// One reconcile.
    pub async fn reconcile(&mut self) -> Result<Reconciled, ReconcileError> {
        if std::mem::take(&mut self.preloaded) {
            self.last_good
                .as_ref()
                .ok_or(ReconcileError::NoValidState)?;
        } else {
            self.load().await?;
        }
        if self.applier.stop.requested() {
            return Err(ReconcileError::Stopped);
        }
        self.connect().await?;
        let good = self
            .last_good
            .as_ref()
            .ok_or(ReconcileError::NoValidState)?;
        let (connection, _) = self.connection.as_ref().ok_or(ReconcileError::Stopped)?;
        let client = &connection.client;
        let target_error = |e: &dyn std::fmt::Display| ReconcileError::Target(e.to_string());
        // One writer per target: held from the read to the last write, so another run's
        // writes are either all seen or not yet begun. Report mode writes nothing.
        // Waiting for another run's lock ends at once on a stop.
        let _lock = if self.applier.config.mode == Mode::Heal {
            tokio::select! {
                lock = take_lock(&self.applier.config, &connection.lock_key) => {
                    Some(lock.map_err(|e| target_error(&e))?)
                }
                () = self.applier.stop.wait() => return Err(ReconcileError::Stopped),
            }
        } else {
            None
        };
        // Reading a large tenant under a rate limit takes a while; a stop ends it at once
        // (nothing has been written yet).
        let live = tokio::select! {
            read = session::read(client, Some(&good.state)) => read.map_err(|e| target_error(&e))?,
            () = self.applier.stop.wait() => return Err(ReconcileError::Stopped),
        };
        let mut options = session::options(&live, None);
        let (mut fingerprints, passwords) = check_passwords(
            &good.state,
            &self.applier.config.fingerprints,
            &connection.lock_key,
            &mut self.verified,
        )
        .await
        .map_err(|e| target_error(&e))?;
        options.rotate_passwords = passwords.rotate;
        let mut decision = session::decide(&good.state, &live, PlanSource::Fresh, &options)
            .map_err(|e| target_error(&e))?;
        decision.plan.add_warnings(passwords.warnings);
        let plan: &crate::plan::Plan = &decision.plan;
        let summary = plan.summary();
        let count = |kind: Kind| {
            u64::try_from(plan.changes.iter().filter(|c| c.kind == kind).count()).unwrap_or(0)
        };
        self.applier.metrics.drift(
            &[("user", count(Kind::User)), ("group", count(Kind::Group))],
            u64::try_from(summary.blocked).unwrap_or(0),
        );
        let mut reconciled = Reconciled {
            drift: summary.changes() + summary.blocked,
            blocked: summary.blocked,
            applied: 0,
            target: connection.description.clone(),
            changes: changes_by_action(plan),
            blocked_reason: plan.changes.iter().find_map(|c| c.blocked.clone()),
            outcomes: None,
            desired_invalid: self.files_invalid,
        };
        if reconciled.drift == 0 {
            tracing::debug!("no drift");
            return Ok(reconciled);
        }
        log_drift(plan, self.applier.config.mode);
        if self.applier.config.mode == Mode::Report || summary.changes() == 0 {
            return Ok(reconciled);
        }
        if self.applier.stop.requested() {
            return Err(ReconcileError::Stopped);
        }

        let (checksum, outcomes) = self
            .applier
            .apply(good, connection, &decision, &live, Some(&mut fingerprints))
            .await?;
        let failed = usize::try_from(outcomes.failed).unwrap_or(usize::MAX);
        let skipped = usize::try_from(outcomes.skipped).unwrap_or(usize::MAX);
        reconciled.applied = summary.changes().saturating_sub(failed + skipped);
        reconciled.outcomes = Some((checksum, outcomes));
        if self.applier.stop.requested() && skipped > 0 {
            return Err(ReconcileError::Stopped);
        }
        if failed + skipped > 0 {
            return Err(ReconcileError::Operations { failed, skipped });
        }
        Ok(reconciled)
    }

    /// Folds the overrides file into a freshly loaded `state`: terminations the YAML has
    /// caught up with are forgotten (heal mode only: report mode writes nothing), the rest
    /// make their users inactive, with a warning logged whenever the set changes.
    fn fold_overrides(&mut self, state: &mut DesiredState) -> Result<(), ReconcileError> {
        let path = &self.applier.config.overrides;
        let local = |e: &dyn std::fmt::Display| ReconcileError::Target(e.to_string());
        let mut overrides = Overrides::load(path).map_err(|e| local(&e))?;
        if self.applier.config.mode == Mode::Heal {
            let settled = overrides.prune_settled(state);
            if !settled.is_empty() {
                overrides.save(path).map_err(|e| local(&e))?;
                tracing::info!(
                    users = settled.join(", "),
                    "the desired state caught up with these HRIS terminations; forgotten"
                );
            }
        }
        let folded = overrides.fold(state);
        let report = desired::Report::new(state.sources.clone(), folded);
        let warnings: Vec<String> = report
            .diagnostics()
            .iter()
            .map(|d| report.line(d))
            .collect();
        if warnings != self.override_warnings {
            for w in &warnings {
                tracing::warn!("{w}");
            }
            self.override_warnings = warnings;
        }
        Ok(())
    }

    /// An HRIS termination: records the override, then deactivates the user at once through
    /// the applier (in report mode too: the HRIS asked for it). The user must be in the
    /// desired state; only that user's change is applied.
    pub async fn terminate(
        &mut self,
        user_name: &str,
        reason: Option<&str>,
    ) -> Result<Terminated, TerminateError> {
        let Some(good) = self.last_good.as_mut() else {
            return Err(TerminateError::Unavailable(
                "no valid desired state is loaded yet".into(),
            ));
        };
        let Some(user) = good
            .state
            .users
            .iter()
            .find(|u| u.value.user_name.value.eq_ignore_ascii_case(user_name))
        else {
            return Err(TerminateError::UnknownUser(user_name.to_owned()));
        };
        let key = user.value.user_name.value.to_string();
        let path = &self.applier.config.overrides;
        let failed = |e: &dyn std::fmt::Display| TerminateError::Failed(e.to_string());
        let mut overrides = Overrides::load(path).map_err(|e| failed(&e))?;
        if overrides.record_termination(&key, &audit::now_rfc3339(), reason) {
            overrides.save(path).map_err(|e| failed(&e))?;
        }
        overrides.fold(&mut good.state);
        tracing::warn!(user = %key, reason = reason.unwrap_or("-"), "HRIS termination recorded");

        // The HRIS asked for exactly this deactivation.
        match self
            .write_one_user(&key, PlanSource::Termination(&key), Some(1), None)
            .await
        {
            Ok(OneUser::Applied) => Ok(Terminated::Deactivated),
            // Not on the tenant: the override keeps a later create inactive.
            Ok(OneUser::NotOnTarget) => Ok(Terminated::Accepted),
            Ok(OneUser::NothingPlanned { inactive: true, .. }) => Ok(Terminated::AlreadyInactive),
            // Active, yet nothing planned: the planner left the user alone (a protected user
            // gets a warning and no change). Say so instead of claiming it is done.
            Ok(OneUser::NothingPlanned { why, .. }) => {
                Err(TerminateError::Refused(why.unwrap_or_else(|| {
                    format!("no deactivation of {key} is planned")
                })))
            }
            Err(OneUserError::Unavailable(e)) => Err(TerminateError::Unavailable(e)),
            Err(OneUserError::Failed(e)) => Err(TerminateError::Failed(e)),
            Err(OneUserError::Refused(e)) => Err(TerminateError::Refused(e)),
        }
    }

    /// A write of one user for a webhook, between reconciles: connects, takes the target's
    /// lock (a stop ends the wait), reads that user, decides with `source` and applies what
    /// is not held back. `fingerprints` records a password the target accepts.
    async fn write_one_user(
        &mut self,
        key: &str,
        source: PlanSource<'_>,
        allow_deletes: Option<usize>,
        fingerprints: Option<&mut Fingerprints>,
    ) -> Result<OneUser, OneUserError> {
        self.connect()
            .await
            .map_err(|e| OneUserError::Unavailable(e.to_string()))?;
        let (Some(good), Some((connection, _))) = (self.last_good.as_ref(), &self.connection)
        else {
            return Err(OneUserError::Unavailable("not connected".into()));
        };
        let failed = |e: &dyn std::fmt::Display| OneUserError::Failed(e.to_string());
        let _lock = tokio::select! {
            lock = take_lock(&self.applier.config, &connection.lock_key) => {
                lock.map_err(|e| OneUserError::Unavailable(e.to_string()))?
            }
            () = self.applier.stop.wait() => {
                return Err(OneUserError::Unavailable("watch is shutting down".into()));
            }
        };
        let Some(live) = session::read_one_user(&connection.client, &good.state, key)
            .await
            .map_err(|e| failed(&e))?
        else {
            return Ok(OneUser::NotOnTarget);
        };
        let options = session::options(&live, allow_deletes);
        let decision =
            session::decide(&good.state, &live, source, &options).map_err(|e| failed(&e))?;
        if let Some(reason) = decision.plan.changes.iter().find_map(|c| c.blocked.clone()) {
            return Err(OneUserError::Refused(reason));
        }
        if decision.plan.changes.is_empty() {
            let inactive = live
                .snapshot
                .users
                .iter()
                .find(|u| crate::scim::Resource::natural_key(*u).eq_ignore_ascii_case(key))
                .and_then(|u| u.parse().ok())
                .is_some_and(|u| u.active == Some(false));
            let why = decision.plan.warnings.first().map(|w| w.message.clone());
            return Ok(OneUser::NothingPlanned { inactive, why });
        }
        let (_, outcomes) = self
            .applier
            .apply(good, connection, &decision, &live, fingerprints)
            .await
            .map_err(|e| failed(&e))?;
        if outcomes.failed + outcomes.skipped > 0 {
            return Err(OneUserError::Failed(format!(
                "the change to {key} did not succeed; see the audit log"
            )));
        }
        Ok(OneUser::Applied)
    }

    /// A password from the password-sync endpoint, for a user of the desired state whose
    /// password does not come from it (`generate`, or none): checked against
    /// `policy.password`, compared with the fingerprint of the one last set (equal: nothing
    /// is sent), then set through the one pipeline ([`PlanSource::Password`]: protected
    /// users, targets that refuse password changes, the actor guard and the lock hold as for
    /// any write) and its fingerprint recorded. In report mode too: the sender asked for it.
    pub async fn set_password(
        &mut self,
        user_name: &str,
        password: Secret,
    ) -> Result<PasswordSet, PasswordSyncError> {
        let key = self.password_user(user_name, &password)?;
        self.connect()
            .await
            .map_err(|e| PasswordSyncError::Unavailable(e.to_string()))?;
        let Some((connection, _)) = &self.connection else {
            return Err(PasswordSyncError::Unavailable("not connected".into()));
        };
        let failed = |e: &dyn std::fmt::Display| PasswordSyncError::Failed(e.to_string());
        let mut store = Fingerprints::load(&self.applier.config.fingerprints, &connection.lock_key)
            .map_err(|e| failed(&e))?;
        if let Some(phc) = store.get(&key).map(str::to_owned) {
            let probe = password.clone();
            let same = tokio::task::spawn_blocking(move || {
                crate::apply::fingerprint::matches(&phc, &probe)
            })
            .await
            .map_err(|e| failed(&e))?;
            if same {
                return Ok(PasswordSet::Unchanged);
            }
        }
        let source = PlanSource::Password {
            user: &key,
            password: &password,
        };
        match self
            .write_one_user(&key, source, None, Some(&mut store))
            .await
        {
            Ok(OneUser::Applied) => Ok(PasswordSet::Set),
            Ok(OneUser::NotOnTarget) => Err(PasswordSyncError::Refused(format!(
                "{key} is not on the target yet: the next reconcile creates it with its \
                 initial password; send the password again after that"
            ))),
            // The planner left the password alone: a protected user, or a target that does
            // not let clients change passwords. Its warning says which.
            Ok(OneUser::NothingPlanned { why, .. }) => {
                Err(PasswordSyncError::Refused(why.unwrap_or_else(|| {
                    format!("no password change of {key} is planned")
                })))
            }
            Err(OneUserError::Unavailable(e)) => Err(PasswordSyncError::Unavailable(e)),
            Err(OneUserError::Failed(e)) => Err(PasswordSyncError::Failed(e)),
            Err(OneUserError::Refused(e)) => Err(PasswordSyncError::Refused(e)),
        }
    }

    /// The desired-state userName a pushed password is for, once the user is managed, its
    /// password does not come from the desired state, and the password meets
    /// `policy.password`.
    fn password_user(
        &self,
        user_name: &str,
        password: &Secret,
    ) -> Result<String, PasswordSyncError> {
        let Some(good) = self.last_good.as_ref() else {
            return Err(PasswordSyncError::Unavailable(
                "no valid desired state is loaded yet".into(),
            ));
        };
        let state = &good.state;
        let Some(user) = state
            .users
            .iter()
            .find(|u| u.value.user_name.value.eq_ignore_ascii_case(user_name))
        else {
            return Err(PasswordSyncError::UnknownUser(user_name.to_owned()));
        };
        if let Some(source) = &user.value.password
            && source.value != crate::model::PasswordSource::Generate
        {
            // Two owners of one password would undo each other on every reconcile.
            return Err(PasswordSyncError::Refused(format!(
                "the password of {} comes from the desired state ({}); change it there",
                user.value.user_name.value.as_str(),
                crate::plan::Source::at(&state.sources, source.span)
            )));
        }
        let broken = crate::apply::password::PasswordPolicy::from(&state.config.policy.password)
            .violations(password.expose());
        if !broken.is_empty() {
            return Err(PasswordSyncError::Weak(broken));
        }
        Ok(user.value.user_name.value.to_string())
    }

    /// Connects on first use, and again when `scimctl.yaml`'s target changed.
    async fn connect(&mut self) -> Result<(), ReconcileError> {
        let good = self
            .last_good
            .as_ref()
            .ok_or(ReconcileError::NoValidState)?;
        if let Some((_, target)) = &self.connection {
            if *target == good.target {
                return Ok(());
            }
            tracing::info!("the target in scimctl.yaml changed: reconnecting");
            if let Some((old, _)) = self.connection.take() {
                self.applier.metrics.set_client(None);
                let _ = old.close().await;
            }
        }
        let overrides = crate::target::Overrides {
            url: self.applier.config.target_url.as_deref(),
            requests_per_minute: self.applier.config.requests_per_minute,
            no_bulk: self.applier.config.no_bulk,
        };
        let connection =
            crate::target::connect(&good.state.config, &self.applier.config.dir, &overrides)
                .await
                .map_err(|e| ReconcileError::Target(e.to_string()))?;
        tracing::info!(target = %connection.description, "connected");
        self.applier
            .metrics
            .set_client(Some(connection.client.clone()));
        self.connection = Some((connection, good.target.clone()));
        Ok(())
    }

    /// The connected target's description, once connected.
    #[must_use]
    pub fn target(&self) -> Option<&str> {
        self.connection
            .as_ref()
            .map(|(c, _)| c.description.as_str())
    }
}

/// The fingerprints of `target` in `path`, and which users' `fromEnv`/`fromFile` passwords
/// changed at source: the one check `plan` and `apply` make ([`session::passwords`]), with
/// Argon2 run off the async threads (so `/healthz` answers meanwhile) and the pairs `cache`
/// has seen match not verified again.
async fn check_passwords(
    state: &DesiredState,
    path: &std::path::Path,
    target: &str,
    cache: &mut VerifyCache,
) -> Result<(Fingerprints, crate::apply::rotation::Check), String> {
    let store = Fingerprints::load(path, target).map_err(|e| e.to_string())?;
    let (candidates, warnings) = crate::apply::rotation::candidates(state, &store);
    if candidates.is_empty() {
        return Ok((
            store,
            crate::apply::rotation::Check {
                rotate: std::collections::BTreeSet::new(),
                warnings,
            },
        ));
    }
    let mut owned = std::mem::take(cache);
    let (owned, rotate) = tokio::task::spawn_blocking(move || {
        let rotate = owned.changed_at_source(candidates, crate::apply::fingerprint::threads());
        (owned, rotate)
    })
    .await
    .map_err(|e| format!("verifying password fingerprints: {e}"))?;
    *cache = owned;
    Ok((store, crate::apply::rotation::Check { rotate, warnings }))
}

/// What a webhook's write of one user came to ([`Reconciler::write_one_user`]).
enum OneUser {
    /// The plan was applied, every operation succeeded.
    Applied,
    /// The user is not on the target: nothing was decided.
    NotOnTarget,
    /// Nothing was planned; whether the user is inactive on the target, and the plan's first
    /// warning (why the planner left it alone, if it said).
    NothingPlanned { inactive: bool, why: Option<String> },
}

/// Why a webhook's write of one user did not happen.
enum OneUserError {
    /// Not now: not connected, shutting down, the lock not taken.
    Unavailable(String),
    /// Attempted and failed.
    Failed(String),
    /// A safety rule held it back.
    Refused(String),
}

/// The plan's changes by action, then kind; blocked ones under `blocked`.
fn changes_by_action(plan: &crate::plan::Plan) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut changes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for c in &plan.changes {
        let action = if c.blocked.is_some() {
            "blocked"
        } else {
            c.action.name()
        };
        *changes
            .entry(action.to_owned())
            .or_default()
            .entry(c.kind.to_string())
            .or_default() += 1;
    }
    changes
}

/// Logs the drift a plan found, as the plan's text.
fn log_drift(plan: &crate::plan::Plan, mode: Mode) {
    let summary = plan.summary();
    let mut text = Vec::new();
    let _ = crate::plan::render::text(plan, &mut text, false);
    let text = String::from_utf8_lossy(&text);
    tracing::info!(
        ?mode,
        create = summary.create,
        patch = summary.patch,
        deactivate = summary.deactivate,
        delete = summary.delete,
        blocked = summary.blocked,
        "drift found\n{}",
        text.trim_end()
    );
    if summary.blocked > 0 {
        tracing::warn!(
            blocked = summary.blocked,
            "changes held back by a safety rule are not applied; lift the brake with `scimctl apply --allow-deletes N`"
        );
    }
}

/// What applying needs: the settings, the metrics, the stop, the audit log and who runs
/// it. Apart from the connection and the desired state, so both can be borrowed beside it.
struct Applier {
    config: Config,
    metrics: Arc<Metrics>,
    stop: Stop,
    audit: AuditLog,
    actor: String,
}

impl Applier {
    /// Applies `plan` (made from `good` and `read`) with audit, metrics and the stop flag;
    /// returns the plan's checksum and how its operations ended.
    /// `fingerprints` records each password the target accepts (`None`: the plan sets none,
    /// as a termination's does not).
    async fn apply(
        &mut self,
        good: &Good,
        connection: &Connection,
        decision: &session::Decision,
        live: &session::LiveRead,
        fingerprints: Option<&mut Fingerprints>,
    ) -> Result<(String, Outcomes), ReconcileError> {
        let checksum =
            PlanDocument::checksum_for(&decision.plan, &good.hash, &connection.description);
        let commit = audit::git_commit(&self.config.dir);
        let mut observer = WatchObserver {
            recorder: Recorder::new(
                &mut self.audit,
                RunContext {
                    actor: &self.actor,
                    target: &connection.description,
                    plan_checksum: &checksum,
                    git_commit: commit.as_deref(),
                },
                record::password_path(&self.config.audit_log, None),
            ),
            metrics: &self.metrics,
            stop: &self.stop,
            fingerprints,
        };
        let report = session::execute(
            &connection.client,
            decision,
            &good.state,
            live,
            &mut observer,
        )
        .await;
        if let Some((path, count)) = observer.recorder.delivered() {
            tracing::warn!(
                count,
                path = %path.display(),
                "generated initial passwords written (mode 0600): deliver them, then delete the file"
            );
        }
        if let Some(e) = observer.recorder.audit_error() {
            return Err(ReconcileError::Target(format!(
                "the audit log cannot be written: {e}"
            )));
        }
        let count = |o| u64::try_from(report.count(o)).unwrap_or(u64::MAX);
        let outcomes = Outcomes {
            done: count(Outcome::Done),
            already_done: count(Outcome::AlreadyDone),
            merged: count(Outcome::Merged),
            failed: count(Outcome::Failed),
            skipped: count(Outcome::Skipped),
        };
        tracing::info!(
            done = outcomes.done,
            already_done = outcomes.already_done,
            merged = outcomes.merged,
            failed = outcomes.failed,
            skipped = outcomes.skipped,
            "applied"
        );
        Ok((checksum, outcomes))
    }
}

/// Audit, metrics, stop and password fingerprints for the engine.
struct WatchObserver<'a> {
    recorder: Recorder<'a>,
    metrics: &'a Metrics,
    stop: &'a Stop,
    fingerprints: Option<&'a mut Fingerprints>,
}

impl Observer for WatchObserver<'_> {
    fn finished(&mut self, op: &OpReport) -> Result<(), String> {
        self.metrics.operation(op.action.name(), op.outcome.name());
        self.recorder.finished(op)
    }

    fn prepare_passwords(&mut self) -> Result<(), String> {
        self.recorder.reserve_passwords()
    }

    fn step(&mut self, stage: Stage, step: StepName, op: &OpReport) -> Result<(), String> {
        self.recorder.step(stage, step, op)
    }

    fn deliver_password(&mut self, user_name: &str, password: &Secret) -> Result<(), String> {
        self.recorder.deliver_password(user_name, password)
    }

    fn password_set(&mut self, user_name: &str, password: &Secret) -> Result<(), String> {
        let Some(store) = self.fingerprints.as_deref_mut() else {
            return Err("no fingerprint store for this run".into());
        };
        let phc = crate::apply::fingerprint::fingerprint(password).map_err(|e| e.to_string())?;
        store.set(user_name, phc);
        store.save().map_err(|e| e.to_string())
    }

    fn stop_requested(&self) -> Option<String> {
        self.stop
            .requested()
            .then(|| "watch is shutting down".to_owned())
    }
}
