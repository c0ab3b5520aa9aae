//! `scimctl apply`: plan (or read a saved plan), show it, confirm, execute, report.
//!
//! Nothing is written unless the plan holds no blocked change, the desired state is the one
//! a saved plan was made from, and the user said yes (`--yes`, or `yes` typed on a
//! terminal). The audit log is opened before the first write, so a run that cannot record
//! what it does never starts.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Failure;
use super::reading::ReadProgress;
use super::runtime::{self, Runtime, ShutdownSignal};
use crate::apply::audit::{self, AuditLog};
use crate::apply::engine::{Observer, OpReport, Outcome, Stage, StepName};
use crate::apply::progress::{Progress, Tally};
use crate::apply::record::{self, Recorder};
use crate::error::{Error, ExitStatus};
use crate::model::escape;
use crate::overrides::Overrides;
use crate::plan::saved::PlanDocument;
use crate::plan::{Plan, render};
use crate::scim::Secret;
use crate::session;

/// What `scimctl apply` was asked.
pub(super) struct ApplyArgs<'a> {
    pub(super) dir: &'a Path,
    pub(super) saved: Option<&'a Path>,
    pub(super) target: crate::target::Overrides<'a>,
    pub(super) yes: bool,
    pub(super) allow_deletes: Option<usize>,
    pub(super) audit_log: &'a Path,
    pub(super) password_file: Option<&'a Path>,
    pub(super) lock_timeout: std::time::Duration,
    pub(super) quiet: bool,
    /// Password rotation: the fingerprint file, `--adopt-passwords`.
    pub(super) passwords: &'a super::args::PasswordArgs,
}

/// Records each operation and draws progress as the engine reports them.
struct CliObserver<'a> {
    recorder: Recorder<'a>,
    progress: Progress,
    /// Set by the first SIGINT or SIGTERM: nothing new starts.
    interrupted: Arc<AtomicBool>,
    /// Where the fingerprint of each password the server accepts is recorded.
    fingerprints: crate::apply::fingerprint::Fingerprints,
}

impl Observer for CliObserver<'_> {
    fn finished(&mut self, op: &OpReport) -> Result<(), String> {
        self.progress.record(match op.outcome {
            Outcome::Done => Tally::Done,
            Outcome::AlreadyDone => Tally::AlreadyDone,
            Outcome::Merged => Tally::Merged,
            Outcome::Failed => Tally::Failed,
            Outcome::Skipped => Tally::Skipped,
        });
        self.recorder.finished(op)
    }

    fn stop_requested(&self) -> Option<String> {
        self.interrupted
            .load(Ordering::Relaxed)
            .then(|| "interrupted by a signal before it started".to_owned())
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
        let phc = crate::apply::fingerprint::fingerprint(password).map_err(|e| e.to_string())?;
        self.fingerprints.set(user_name, phc);
        self.fingerprints.save().map_err(|e| e.to_string())
    }
}

/// Listens for SIGINT and SIGTERM while operations run, as Terraform does: the first sets
/// `interrupted` (what is in flight finishes and is recorded, nothing new starts, the rest is
/// reported skipped, the summary is printed, exit 1); a second exits at once (130).
fn interruptions(
    runtime: &tokio::runtime::Runtime,
    interrupted: &Arc<AtomicBool>,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let mut signal = {
        let _entered = runtime.enter();
        ShutdownSignal::arm()?
    };
    let interrupted = Arc::clone(interrupted);
    Ok(runtime.spawn(async move {
        signal.next().await;
        interrupted.store(true, Ordering::Relaxed);
        tracing::warn!(
            "interrupted: operations in flight finish and are recorded, nothing new starts; \
             signal again to exit at once"
        );
        signal.next().await;
        tracing::warn!("interrupted again: exiting now; the audit log has what finished");
        // A second signal means now, as in Terraform: no unwinding through the run.
        #[allow(clippy::disallowed_methods)]
        std::process::exit(130);
    }))
}

/// What was read and decided before anything is written.
struct Prepared {
    live: session::LiveRead,
    decision: session::Decision,
    checksum: String,
    fingerprints: crate::apply::fingerprint::Fingerprints,
}

fn read_saved(path: &Path, hash: &str) -> Result<PlanDocument, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let doc = PlanDocument::from_json(&text).map_err(|e| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if doc.desired_hash != hash {
        return Err(Error::Refused(format!(
            "the desired state changed since {} was saved; plan again",
            path.display()
        )));
    }
    Ok(doc)
}

/// Reads the tenant and decides what may be written: the one pipeline ([`session`]), for a
/// fresh plan and a saved one alike.
async fn prepare(
    client: &crate::scim::ScimClient,
    loaded: &session::Loaded,
    saved: Option<&PlanDocument>,
    target: (&str, &str),
    allow_deletes: Option<usize>,
    fingerprints: &Path,
) -> Result<Prepared, Error> {
    let live = session::read(client, Some(&loaded.state)).await?;
    let mut options = session::options(&live, allow_deletes);
    // Saved plans carry no password: the sources are read and checked again now, and a
    // rotation is carried out only if the fresh plan still has it.
    let (fingerprints, passwords) = session::passwords(
        &loaded.state,
        fingerprints,
        target.1,
        &mut crate::apply::fingerprint::VerifyCache::default(),
    )?;
    options.rotate_passwords = passwords.rotate;
    let terminated: Vec<String> = loaded
        .overrides
        .terminations()
        .map(|t| t.user_name.clone())
        .collect();
    let source = saved.map_or(session::PlanSource::Fresh, |plan| {
        session::PlanSource::Saved {
            plan,
            terminated: &terminated,
        }
    });
    let mut decision = session::decide(&loaded.state, &live, source, &options)?;
    session::creatable(&loaded.state, &decision.plan)?;
    decision.plan.add_warnings(loaded.notices.iter().cloned());
    decision.plan.add_warnings(passwords.warnings);
    let checksum = match saved {
        Some(doc) => doc.checksum.clone(),
        None => PlanDocument::checksum_for(&decision.plan, &loaded.hash, target.0),
    };
    Ok(Prepared {
        live,
        decision,
        checksum,
        fingerprints,
    })
}

#[allow(clippy::too_many_lines)] // one command, read top to bottom
pub(super) fn apply_cmd(
    args: &ApplyArgs<'_>,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let loaded = session::load(args.dir, &crate::overrides::default_path())?;
    if !args.quiet {
        loaded.warnings.write_text(err)?;
    }
    let state = &loaded.state;
    let saved = args
        .saved
        .map(|p| read_saved(p, &loaded.hash))
        .transpose()?;

    let runtime = runtime.get()?;
    // Declared before the connection so that it is released after it: the next writer must
    // find an embedded sandbox's state saved.
    let _lock: session::lock::TargetLock;
    // Closed on every way out below: an embedded sandbox saves its state.
    let connection = runtime::connect(runtime, &state.config, args.dir, &args.target)?;
    let client = connection.client.clone();
    if let Some(planned) = saved.as_ref().and_then(|d| d.target.as_deref())
        && planned != connection.description
    {
        return Err(Error::Refused(format!(
            "the plan was made against {planned}, not {}; nothing was written",
            connection.description
        ))
        .into());
    }
    // One writer per target, from the read to the last write (see session::lock).
    _lock = runtime
        .block_on(session::lock::acquire(
            &session::lock::default_dir(),
            &connection.lock_key,
            args.lock_timeout,
            |holder| {
                let _ = writeln!(
                    err,
                    "waiting up to {} s for another scimctl run writing to {} ({holder})...",
                    args.lock_timeout.as_secs(),
                    connection.description
                );
            },
        ))
        .map_err(|e| Error::Refused(e.to_string()))?;
    let progress = ReadProgress::tenant(runtime.handle(), "apply", args.quiet, &client);
    let mut prepared = runtime.block_on(prepare(
        &client,
        &loaded,
        saved.as_ref(),
        (&connection.description, &connection.lock_key),
        args.allow_deletes,
        &args.passwords.fingerprints.password_fingerprints,
    ))?;
    progress.finish();
    if args.passwords.adopt_passwords {
        adopt_passwords(&loaded.state, &mut prepared, err)?;
    }

    let plan: &Plan = &prepared.decision.plan;
    let color = io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    // Warnings are diagnostics: stderr, hidden by -q.
    if !args.quiet {
        render::warnings(plan, err)?;
    }
    render::text_without_warnings(plan, out, color)?;
    write_saved_notes(&prepared.decision, out)?;
    out.flush()?;
    // What the saved plan asked for, not what is carried out (that comes from a fresh plan,
    // which never activates a terminated user): a person should hear it was stale.
    let asked = saved.as_ref().map_or(&[][..], |d| d.changes.as_slice());
    if let Some(refusal) = reactivates_terminated(asked, &loaded.overrides) {
        connection.close()?;
        return Err(Error::Refused(refusal).into());
    }
    let summary = plan.summary();
    if summary.blocked > 0 {
        connection.close()?;
        return Err(Error::Refused(format!(
            "{} change(s) are blocked by a safety rule; nothing was written",
            summary.blocked
        ))
        .into());
    }
    let failed_upfront = prepared.decision.failed.len();
    if summary.changes() == 0 && failed_upfront == 0 {
        connection.close()?;
        forget_settled(&loaded.overrides_path, &loaded.settled)?;
        return Ok(ExitStatus::Success);
    }
    if let Some(path) = args.password_file
        && std::fs::symlink_metadata(path).is_ok()
        && crate::apply::engine::generates_passwords(plan, state)
    {
        connection.close()?;
        return Err(Error::Refused(format!(
            "the password file {} already exists and may hold passwords nobody has handed out \
             yet; deliver and delete it, or name another with --password-file; nothing was written",
            path.display()
        ))
        .into());
    }
    if !args.yes {
        let interactive = io::stdin().is_terminal() && io::stderr().is_terminal();
        if !interactive {
            connection.close()?;
            return Err(Error::Refused(
                "not on a terminal: give --yes to apply without confirmation; nothing was written"
                    .into(),
            )
            .into());
        }
        write!(
            err,
            "\nApply {} change(s) to {}? Only `yes` is accepted: ",
            summary.changes(),
            connection.description
        )?;
        err.flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            connection.close()?;
            return Err(Error::Refused("apply cancelled; nothing was written".into()).into());
        }
    }

    let mut audit_log = AuditLog::open(args.audit_log).map_err(|e| Error::File {
        path: args.audit_log.to_path_buf(),
        message: e.to_string(),
    })?;
    let actor = audit::actor();
    let commit = audit::git_commit(args.dir);
    let terminal = io::stderr().is_terminal();
    let total = u64::try_from(summary.changes() + failed_upfront).unwrap_or(u64::MAX);
    let progress = if args.quiet {
        Progress::hidden(total)
    } else {
        Progress::new(total, terminal, "apply")
    };
    let mut observer = CliObserver {
        recorder: Recorder::new(
            &mut audit_log,
            audit::RunContext {
                actor: &actor,
                target: &connection.description,
                plan_checksum: &prepared.checksum,
                git_commit: commit.as_deref(),
            },
            record::password_path(args.audit_log, args.password_file),
        ),
        progress,
        interrupted: Arc::new(AtomicBool::new(false)),
        fingerprints: prepared.fingerprints,
    };
    let listener = interruptions(runtime, &observer.interrupted)?;
    let started = tokio::time::Instant::now();
    let report = runtime.block_on(session::execute(
        &client,
        &prepared.decision,
        state,
        &prepared.live,
        &mut observer,
    ));
    let elapsed = started.elapsed();
    listener.abort();
    observer.progress.finish();
    let client_stats = client.stats();
    let audit_error = observer.recorder.audit_error().map(str::to_owned);
    let delivered = observer
        .recorder
        .delivered()
        .map(|(path, count)| (path.to_path_buf(), count));
    let description = connection.description.clone();
    drop(observer);
    connection.close()?;

    writeln!(out)?;
    for op in &report.ops {
        write!(
            out,
            "{:<13} {:<10} {:<5} {}",
            op.outcome.name(),
            op.action.name(),
            op.kind,
            escape(&op.key)
        )?;
        match &op.detail {
            Some(d) => writeln!(out, ": {}", escape(d))?,
            None => writeln!(out)?,
        }
    }
    writeln!(
        out,
        "\nApplied to {description}: {} done, {} already done, {} merged, {} failed, {} skipped \
         ({} requests in {:.2} s).",
        report.count(Outcome::Done),
        report.count(Outcome::AlreadyDone),
        report.count(Outcome::Merged),
        report.count(Outcome::Failed),
        report.count(Outcome::Skipped),
        client_stats.requests,
        elapsed.as_secs_f64(),
    )?;
    if let Some(line) = throttling(&client_stats) {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    if let Some((path, count)) = delivered {
        writeln!(
            err,
            "{count} generated initial password(s) written to {} (mode 0600): deliver them, then delete the file.",
            path.display()
        )?;
    }
    if let Some(e) = audit_error {
        return Err(Error::File {
            path: args.audit_log.to_path_buf(),
            message: format!("the audit log is incomplete: {e}"),
        }
        .into());
    }
    if !report.all_succeeded() {
        return Ok(ExitStatus::Failure);
    }
    // Every change went through, so the YAML's word on the settled users is now the tenant's.
    forget_settled(&loaded.overrides_path, &loaded.settled)?;
    Ok(ExitStatus::Success)
}

/// `--adopt-passwords`: records the current `fromEnv`/`fromFile` passwords of the live users
/// without a fingerprint as set (the plan does not create them), before anything else.
fn adopt_passwords(
    state: &crate::desired::DesiredState,
    prepared: &mut Prepared,
    err: &mut dyn Write,
) -> Result<(), Failure> {
    let (adopt, warnings) =
        crate::apply::rotation::adoptable(state, &prepared.decision.plan, &prepared.fingerprints);
    prepared.decision.plan.add_warnings(warnings);
    let path = prepared.fingerprints.path().to_path_buf();
    let count = crate::apply::rotation::adopt(&mut prepared.fingerprints, &adopt).map_err(|e| {
        Error::File {
            path: path.clone(),
            message: e.to_string(),
        }
    })?;
    writeln!(
        err,
        "{count} password(s) adopted as set: their fingerprints are in {} (mode 0600).",
        path.display()
    )?;
    Ok(())
}

/// What of a saved plan is not carried out as saved: no longer needed, or overlapping what
/// someone changed since (those fail).
fn write_saved_notes(decision: &session::Decision, out: &mut dyn Write) -> io::Result<()> {
    if decision.dropped.is_empty() && decision.failed.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\nThe tenant changed since the plan was saved; of the saved plan:"
    )?;
    for note in &decision.dropped {
        writeln!(out, "  not needed now: {}", escape(note))?;
    }
    for (change, why) in &decision.failed {
        writeln!(
            out,
            "  fails: {} {} {:?}: {}",
            change.action.name(),
            change.kind,
            change.key,
            escape(why)
        )?;
    }
    Ok(())
}

/// A refusal when a saved plan's `changes` (made before a termination arrived) would activate
/// a user the HRIS webhook terminated. A fresh plan never does: the overrides are folded in.
fn reactivates_terminated(
    changes: &[crate::plan::Change],
    overrides: &Overrides,
) -> Option<String> {
    use crate::plan::{Attr, Edit, Kind};
    changes.iter().find_map(|change| {
        let termination = overrides.termination(&change.key)?;
        let activates = change.kind == Kind::User
            && change.edits.iter().any(|e| {
                matches!(e, Edit::Set { attr: Attr::Active, value } if value.as_bool() == Some(true))
            });
        activates.then(|| {
            format!(
                "the plan activates {}, whom the HRIS webhook terminated at {}; plan again; \
                 nothing was written",
                change.key, termination.at
            )
        })
    })
}

/// Forgets the terminations the YAML has caught up with. The file is read again first, so a
/// termination recorded since this run started (by `scimctl watch`) is kept.
fn forget_settled(path: &Path, settled: &[String]) -> Result<(), Error> {
    if settled.is_empty() {
        return Ok(());
    }
    let mut current = Overrides::load(path)?;
    let mut forgotten = 0;
    for user_name in settled {
        forgotten += usize::from(current.forget(user_name));
    }
    if forgotten > 0 {
        current.save(path)?;
        tracing::info!(
            forgotten,
            path = %path.display(),
            "overrides: forgot terminations the desired state now settles"
        );
    }
    Ok(())
}

/// How much the server and the client's own limit slowed the run, when they did: 429 answers,
/// retries and time spent waiting for the rate limit, for whoever tunes
/// `--requests-per-minute`.
fn throttling(stats: &crate::scim::ClientStats) -> Option<String> {
    let waited = stats.rate_limit_wait.as_secs_f64();
    if stats.rate_limited == 0 && stats.retries == 0 && waited < 0.01 {
        return None;
    }
    Some(format!(
        "Throttling: {} answered 429, {} retried, {waited:.1} s (wall clock) with requests waiting for the client rate limit.",
        stats.rate_limited, stats.retries
    ))
}
