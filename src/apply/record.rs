//! What every real run does as operations finish, whoever runs it (`apply`, `watch`): each
//! operation is appended to the audit log, then logged at debug level (and so is each step of
//! an unfinished operation: before it sends, and once it is answered); generated passwords
//! go to the run's password file. The callers add their own around it (progress, metrics, a
//! stop).

use std::path::{Path, PathBuf};

use super::audit::{self, AuditLog, RunContext};
use super::engine::{OpReport, Stage, StepName};
use super::password::{self, PasswordDrop};
use crate::scim::Secret;

/// The audit log and password file of one run.
#[derive(Debug)]
pub struct Recorder<'a> {
    audit: &'a mut AuditLog,
    run: RunContext<'a>,
    passwords: PasswordDrop,
    audit_error: Option<String>,
}

/// Where a run's generated passwords go: `explicit`, else a new file beside the audit log.
#[must_use]
pub fn password_path(audit_log: &Path, explicit: Option<&Path>) -> PathBuf {
    if let Some(path) = explicit {
        return path.to_path_buf();
    }
    let state_dir = audit_log
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stamp = audit::now_rfc3339().replace([':', '.'], "");
    password::default_drop_path(state_dir, &stamp)
}

impl<'a> Recorder<'a> {
    /// Records into `audit` under `run`, delivering passwords to `passwords`.
    #[must_use]
    pub fn new(audit: &'a mut AuditLog, run: RunContext<'a>, passwords: PathBuf) -> Recorder<'a> {
        Recorder {
            audit,
            run,
            passwords: PasswordDrop::new(passwords),
            audit_error: None,
        }
    }

    /// Appends `op` to the audit log, then logs it. The log line comes after the record, so
    /// whoever sees it (an operator with -vv, a test that kills a run part-way) knows the
    /// operation is on disk. An error stops the engine from starting anything new.
    pub fn finished(&mut self, op: &OpReport) -> Result<(), String> {
        if let Err(e) = self.audit.record(&self.run.record(op)) {
            self.audit_error.get_or_insert_with(|| e.to_string());
            return Err(format!("the audit log cannot be written: {e}"));
        }
        tracing::debug!(
            outcome = op.outcome.name(),
            action = op.action.name(),
            kind = %op.kind,
            key = %op.key,
            "operation finished"
        );
        Ok(())
    }

    /// Appends a step of an unfinished operation to the audit log (see
    /// [`crate::apply::engine::Observer::step`]), then logs it. An error stops the engine from
    /// starting anything new.
    pub fn step(&mut self, stage: Stage, step: StepName, op: &OpReport) -> Result<(), String> {
        if let Err(e) = self.audit.record(&self.run.step_record(stage, step, op)) {
            self.audit_error.get_or_insert_with(|| e.to_string());
            return Err(format!("the audit log cannot be written: {e}"));
        }
        tracing::debug!(
            phase = stage.name(),
            step = step.name(),
            action = op.action.name(),
            kind = %op.kind,
            key = %op.key,
            "step recorded"
        );
        Ok(())
    }

    /// Makes sure generated passwords can be delivered before any is made: creates the
    /// password file now (see [`PasswordDrop::reserve`]).
    pub fn reserve_passwords(&mut self) -> Result<(), String> {
        self.passwords.reserve().map_err(|e| e.to_string())
    }

    /// Delivers one generated password.
    pub fn deliver_password(&mut self, user_name: &str, password: &Secret) -> Result<(), String> {
        self.passwords
            .deliver(user_name, password)
            .map_err(|e| e.to_string())
    }

    /// The first audit failure, if any.
    #[must_use]
    pub fn audit_error(&self) -> Option<&str> {
        self.audit_error.as_deref()
    }

    /// The password file, once a password was delivered, and how many it holds.
    #[must_use]
    pub fn delivered(&self) -> Option<(&Path, usize)> {
        self.passwords
            .path()
            .map(|path| (path, self.passwords.count()))
    }
}
