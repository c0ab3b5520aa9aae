//! `scimctl watch`: the long-running reconciler.
//!
//! [`run_loop`] waits for a trigger (the start, a settled burst of file events, the drift
//! timer, or a retry after a failure), runs one reconcile, records it, and schedules what
//! comes next with the [`controller::Controller`]: exponential backoff after failures,
//! quarantine after too many in a row. Every reconcile resets the drift timer. A stop
//! (SIGTERM, SIGINT) lets the operation in flight finish, starts no new one, and ends the
//! loop. The HTTP side ([`http`]) reads the shared [`Metrics`].

pub mod controller;
pub mod events;
pub mod files;
pub mod http;
pub mod listener;
pub mod metrics;
pub mod reconcile;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use controller::{Backoff, Controller, Transition};
pub use metrics::Metrics;
pub use reconcile::{Mode, ReconcileError, Reconciled, Reconciler};

use crate::scim::Secret;
use crate::webhook::password::{PasswordSet, PasswordSink, PasswordSyncError};
use crate::webhook::{TerminateError, Terminated, TerminationSink};

/// What started a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The first reconcile.
    Start,
    /// Files changed (after the debounce).
    Files,
    /// The drift timer.
    Resync,
    /// A retry after a failure.
    Retry,
}

impl Trigger {
    /// The metric label.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Files => "files",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
        }
    }
}

/// Timing of the loop.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Drift resync interval.
    pub interval: Duration,
    /// Quiet time after the last file event before reconciling.
    pub debounce: Duration,
    /// Backoff and quarantine.
    pub backoff: Backoff,
}

/// Something that reconciles once; [`Reconciler`] in the program, fakes in tests.
pub trait Reconcile {
    /// One reconcile.
    fn reconcile(&mut self) -> impl Future<Output = Result<Reconciled, ReconcileError>>;
    /// An HRIS termination, carried out between reconciles.
    fn terminate(
        &mut self,
        user_name: &str,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<Terminated, TerminateError>>;
    /// A password from the password-sync endpoint, set between reconciles.
    fn set_password(
        &mut self,
        user_name: &str,
        password: Secret,
    ) -> impl Future<Output = Result<PasswordSet, PasswordSyncError>>;
}

impl Reconcile for Reconciler {
    fn reconcile(&mut self) -> impl Future<Output = Result<Reconciled, ReconcileError>> {
        Reconciler::reconcile(self)
    }

    fn terminate(
        &mut self,
        user_name: &str,
        reason: Option<&str>,
    ) -> impl Future<Output = Result<Terminated, TerminateError>> {
        Reconciler::terminate(self, user_name, reason)
    }

    fn set_password(
        &mut self,
        user_name: &str,
        password: Secret,
    ) -> impl Future<Output = Result<PasswordSet, PasswordSyncError>> {
        Reconciler::set_password(self, user_name, password)
    }
}

/// A verified webhook request on its way from the HTTP handler to the loop, which carries
/// it out between reconciles (so it never races a reconcile's writes) and answers on `reply`.
#[derive(Debug)]
pub enum Job {
    /// An HRIS termination.
    Terminate {
        /// The user, as the HRIS wrote it.
        user_name: String,
        /// Why, if the HRIS said.
        reason: Option<String>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Terminated, TerminateError>>,
    },
    /// A password from the password-sync endpoint.
    Password {
        /// The user, as the sender wrote it.
        user_name: String,
        /// The password (zeroized when dropped; its `Debug` shows no value).
        password: Secret,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<PasswordSet, PasswordSyncError>>,
    },
}

/// The sink of the HRIS and password-sync endpoints: hands each request to the loop and
/// waits for the answer.
#[derive(Clone, Debug)]
pub struct LoopSink {
    jobs: mpsc::Sender<Job>,
}

impl LoopSink {
    /// A sink and the receiver [`run_loop`] takes jobs from.
    #[must_use]
    pub fn new() -> (LoopSink, mpsc::Receiver<Job>) {
        let (jobs, rx) = mpsc::channel(64);
        (LoopSink { jobs }, rx)
    }

    /// Sends a job made around `reply` and waits for its answer; `gone` when the loop has
    /// ended.
    async fn ask<T, E>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Job,
        gone: impl Fn() -> E,
    ) -> Result<T, E> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

const SHUTTING_DOWN: &str = "watch is shutting down";

impl TerminationSink for LoopSink {
    fn terminate<'a>(
        &'a self,
        user_name: &'a str,
        reason: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<Terminated, TerminateError>> + Send + 'a>> {
        Box::pin(self.ask(
            move |reply| Job::Terminate {
                user_name: user_name.to_owned(),
                reason: reason.map(str::to_owned),
                reply,
            },
            || TerminateError::Unavailable(SHUTTING_DOWN.into()),
        ))
    }
}

impl PasswordSink for LoopSink {
    fn set_password<'a>(
        &'a self,
        user_name: &'a str,
        password: Secret,
    ) -> Pin<Box<dyn Future<Output = Result<PasswordSet, PasswordSyncError>> + Send + 'a>> {
        Box::pin(self.ask(
            move |reply| Job::Password {
                user_name: user_name.to_owned(),
                password,
                reply,
            },
            || PasswordSyncError::Unavailable(SHUTTING_DOWN.into()),
        ))
    }
}

/// A stop request shared by the signal handler, the loop and the engine: a
/// [`CancellationToken`] under the names the loop uses. Clones share one request.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    token: CancellationToken,
}

impl From<CancellationToken> for Stop {
    /// A stop requested when `token` is cancelled (and that cancels it when requested).
    fn from(token: CancellationToken) -> Stop {
        Stop { token }
    }
}

impl Stop {
    /// Requests the stop.
    pub fn request(&self) {
        self.token.cancel();
    }

    /// Whether a stop was requested.
    #[must_use]
    pub fn requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// The token underneath, for code that takes a [`CancellationToken`].
    #[must_use]
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Hooks the loop calls as things happen (webhooks, logs); all optional.
pub trait Events {
    /// A reconcile finished.
    fn reconciled(&mut self, _trigger: Trigger, _result: &Result<Reconciled, ReconcileError>) {}
    /// Quarantine entered or left.
    fn quarantine(&mut self, _transition: Transition, _failures: u32, _last_error: Option<&str>) {}
}

/// No hooks.
#[derive(Debug, Default)]
pub struct NoEvents;

impl Events for NoEvents {}

/// Runs reconciles until `stop`: one at the start, then on settled file events, on the drift
/// timer and on retries; webhook requests from `jobs` (HRIS terminations, passwords) are
/// carried out between reconciles. Returns when a stop is requested (after the reconcile in progress
/// has stopped starting operations and finished the ones in flight).
#[allow(clippy::too_many_arguments)] // the loop's inputs, each used once
pub async fn run_loop<R: Reconcile>(
    reconciler: &mut R,
    mut files: mpsc::UnboundedReceiver<()>,
    mut jobs: mpsc::Receiver<Job>,
    timing: Timing,
    metrics: &Metrics,
    events: &mut dyn Events,
    stop: &Stop,
) {
    let mut controller = Controller::new(timing.backoff);
    let mut trigger = Trigger::Start;
    let mut files_open = true;
    loop {
        let started = Instant::now();
        let result = reconciler.reconcile().await;
        let took = started.elapsed();
        if matches!(result, Err(ReconcileError::Stopped)) || stop.requested() {
            tracing::info!("stopped");
            return;
        }
        let outcome = match &result {
            // The last valid state was reconciled, but the files on disk are not applied.
            Ok(r) if r.desired_invalid => "invalid",
            Ok(_) => "success",
            Err(ReconcileError::NoValidState) => "invalid",
            Err(_) => "failure",
        };
        metrics.reconciled(trigger.name(), outcome, took, unix_now());
        events.reconciled(trigger, &result);
        let retry_in = settle(&result, trigger, took, &mut controller, metrics, events);
        metrics.health(controller.quarantined(), controller.failures());

        let now = Instant::now();
        let retry_at = retry_in.map(|w| now + w);
        // Quarantine suspends the drift timer: only the retry (or a file change) runs.
        let resync_at = (!controller.quarantined()).then(|| now + timing.interval);
        trigger = loop {
            tokio::select! {
                () = stop.wait() => {
                    tracing::info!("stopped");
                    return;
                }
                event = files.recv(), if files_open => {
                    if event.is_none() {
                        files_open = false;
                        tracing::warn!("the file watcher stopped; only the drift timer remains");
                        continue;
                    }
                    tokio::select! {
                        () = stop.wait() => return,
                        open = files::settle(&mut files, timing.debounce) => files_open = open,
                    }
                    break Trigger::Files;
                }
                Some(job) = jobs.recv() => {
                    carry_out(reconciler, job).await;
                    if stop.requested() {
                        return;
                    }
                }
                () = sleep_until_some(resync_at) => break Trigger::Resync,
                () = sleep_until_some(retry_at) => break Trigger::Retry,
            }
        };
    }
}

/// Carries out one webhook job and answers it.
async fn carry_out<R: Reconcile>(reconciler: &mut R, job: Job) {
    match job {
        Job::Terminate {
            user_name,
            reason,
            reply,
        } => {
            let result = reconciler.terminate(&user_name, reason.as_deref()).await;
            match &result {
                Ok(done) => {
                    tracing::warn!(user = %user_name, ?done, "HRIS termination carried out");
                }
                Err(e) => tracing::error!(user = %user_name, "HRIS termination: {e}"),
            }
            let _ = reply.send(result);
        }
        Job::Password {
            user_name,
            password,
            reply,
        } => {
            let result = reconciler.set_password(&user_name, password).await;
            if let Err(e) = &result {
                tracing::warn!(user = %user_name, "password-sync: {e}");
            }
            let _ = reply.send(result);
        }
    }
}

/// Logs a reconcile's result, tells `events`, and returns how long to wait before a retry
/// (`None`: no retry needed).
fn settle(
    result: &Result<Reconciled, ReconcileError>,
    trigger: Trigger,
    took: Duration,
    controller: &mut Controller,
    metrics: &Metrics,
    events: &mut dyn Events,
) -> Option<Duration> {
    match result {
        Ok(done) => {
            tracing::info!(
                trigger = trigger.name(),
                drift = done.drift,
                applied = done.applied,
                blocked = done.blocked,
                elapsed_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                "reconciled"
            );
            let failures = controller.failures();
            if controller.succeeded() == Transition::Left {
                tracing::warn!(failures, "quarantine left: the reconcile succeeded");
                events.quarantine(Transition::Left, failures, None);
            }
            None
        }
        Err(ReconcileError::NoValidState) => {
            // Retrying cannot fix files; the next file event will.
            tracing::warn!("waiting for a valid desired state");
            None
        }
        Err(e) => {
            metrics.failed(e.to_string());
            let (wait, transition) = controller.failed();
            tracing::error!(
                trigger = trigger.name(),
                failures = controller.failures(),
                retry_in_s = wait.as_secs_f64(),
                "reconcile failed: {e}"
            );
            if transition == Transition::Entered {
                tracing::error!(
                    failures = controller.failures(),
                    retry_in_s = wait.as_secs_f64(),
                    "QUARANTINED after {} failed reconciles in a row: the drift timer is \
                     suspended; a file change or the next retry tries again",
                    controller.failures()
                );
                events.quarantine(
                    Transition::Entered,
                    controller.failures(),
                    Some(&e.to_string()),
                );
            }
            Some(wait)
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Seconds since the Unix epoch, for the last-success gauge.
fn unix_now() -> f64 {
    #[allow(clippy::disallowed_methods)] // a wall-clock gauge; never used for waiting
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests;
