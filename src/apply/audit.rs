//! The audit log (docs/contract.md §5): one JSON line per attempted operation, appended to a local
//! file and flushed before the next operation starts. Before that final record, each step
//! that writes has a record of its own (`phase`, see [`AuditRecord::phase`]): one appended
//! right before its first write goes out, and, when the operation has further steps (a
//! group's members after its create), one as soon as the server has answered, before any step
//! that needs it starts. A step that sends no write has neither. So a run killed at any point leaves a record of every object it touched.
//!
//! A record says who ran scimctl ([`actor`]), against which target, under which reviewed plan
//! (its checksum) and which commit of the desired state ([`git_commit`]), what was attempted
//! on which resource, the resource versions before and after, and how it ended. It never holds
//! a secret: no token, no password, no request or response body. The `detail` field carries a
//! reason written by scimctl, never a value copied from the tenant's answer.
//!
//! This module owns the file format and the stamp; it decides nothing about what to record.
//! It is the one place allowed to read the wall clock ([`now_rfc3339`], and [`now_unix`] for
//! webhook signatures): everything else takes its time from `tokio::time`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Where the audit log goes unless configured otherwise, relative to the working directory.
pub const DEFAULT_AUDIT_LOG: &str = ".scimctl/audit.jsonl";

/// The audit log could not be opened or written. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file (or its parent directory) could not be created or opened.
    #[error("cannot open audit log {}: {cause}", path.display())]
    Open {
        /// The audit log.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
    /// A record could not be written.
    #[error("cannot write audit log {}: {cause}", path.display())]
    Write {
        /// The audit log.
        path: PathBuf,
        /// What the operating system (or the encoder) said.
        cause: io::Error,
    },
}

/// One line of the audit log. Field names are camelCase in the file.
///
/// Every field is borrowed: a record is built, written and dropped within one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord<'a> {
    /// When the operation ended, RFC 3339 UTC with milliseconds ([`now_rfc3339`]).
    pub time: String,
    /// Who ran scimctl ([`actor`]).
    pub actor: &'a str,
    /// The target, as the plan names it (a URL or `sandbox`).
    pub target: &'a str,
    /// The checksum of the plan being applied.
    pub plan_checksum: &'a str,
    /// The commit of the desired-state directory, `-dirty` when it had local changes; left
    /// out when the directory is not in a git repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<&'a str>,
    /// `create`, `patch`, `deactivate` or `delete`.
    pub action: &'a str,
    /// `user` or `group`.
    pub kind: &'a str,
    /// The resource's natural key (userName or displayName).
    pub key: &'a str,
    /// The tenant's id for the resource, when known (not before a create succeeds).
    pub id: Option<&'a str>,
    /// `meta.version` before the operation, when known.
    pub before_version: Option<&'a str>,
    /// `meta.version` after the operation, when the tenant reported one.
    pub after_version: Option<&'a str>,
    /// `done`, `already done`, `merged`, `failed` or `skipped`.
    pub outcome: &'a str,
    /// Why it failed or was skipped, in scimctl's words; never a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'a str>,
    /// Left out on an operation's final record (every record scimctl wrote before this field
    /// existed is one). `sending`: a step of the operation is about to send its first write
    /// (`outcome` is `pending`); `written`: the step was answered and succeeded while the
    /// operation has further steps (its final record follows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'a str>,
    /// With `phase`: which step (`create`, `link`, `update`, `grants`, `delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<&'a str>,
}

/// What every record of one run shares: who, where, which plan, which commit.
#[derive(Clone, Copy, Debug)]
pub struct RunContext<'a> {
    /// Who ran scimctl ([`actor`]).
    pub actor: &'a str,
    /// The target, as the plan names it.
    pub target: &'a str,
    /// The checksum of the plan being applied.
    pub plan_checksum: &'a str,
    /// The desired state's commit ([`git_commit`]).
    pub git_commit: Option<&'a str>,
}

impl<'a> RunContext<'a> {
    /// The record of `op`, stamped now.
    #[must_use]
    pub fn record<'r>(&self, op: &'r crate::apply::engine::OpReport) -> AuditRecord<'r>
    where
        'a: 'r,
    {
        AuditRecord {
            time: now_rfc3339(),
            actor: self.actor,
            target: self.target,
            plan_checksum: self.plan_checksum,
            git_commit: self.git_commit,
            action: op.action.name(),
            kind: match op.kind {
                crate::plan::Kind::User => "user",
                crate::plan::Kind::Group => "group",
                crate::plan::Kind::Role => "role",
            },
            key: &op.key,
            id: op.id.as_deref(),
            before_version: op.before_version.as_deref(),
            after_version: op.after_version.as_deref(),
            outcome: op.outcome.name(),
            detail: op.detail.as_deref(),
            phase: None,
            step: None,
        }
    }

    /// The record of a step of `op` before the operation finished
    /// ([`crate::apply::engine::Observer::step`]), stamped now.
    #[must_use]
    pub fn step_record<'r>(
        &self,
        stage: crate::apply::engine::Stage,
        step: crate::apply::engine::StepName,
        op: &'r crate::apply::engine::OpReport,
    ) -> AuditRecord<'r>
    where
        'a: 'r,
    {
        let mut record = self.record(op);
        record.phase = Some(stage.name());
        record.step = Some(step.name());
        if stage == crate::apply::engine::Stage::Sending {
            record.outcome = "pending";
            record.after_version = None;
            record.detail = None;
        }
        record
    }
}

/// An open audit log. Each [`AuditLog::record`] is on disk (in the page cache) before it returns.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens `path` for appending, creating it and its parent directories if needed.
    ///
    /// A new file is created with mode 0600 on unix: the log names every account scimctl
    /// touched. An existing file keeps its mode, so an operator who loosened it on purpose is
    /// not overruled.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let open_error = |cause| AuditError::Open {
            path: path.to_path_buf(),
            cause,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).map_err(open_error)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file this log appends to.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line and flushes it.
    ///
    /// The line is encoded in full first and handed to the kernel in one `write_all` on a file
    /// opened with `O_APPEND`, so a process killed between operations (even with SIGKILL)
    /// leaves only whole lines, and two scimctl processes sharing a log do not interleave
    /// within a line.
    ///
    /// There is deliberately no `fsync` per record: it costs a disk round trip each (tens of
    /// seconds over a 10,000-operation apply) and only guards against the machine itself
    /// losing power, not against scimctl dying, which is the failure the log must survive.
    pub fn record(&mut self, record: &AuditRecord<'_>) -> Result<(), AuditError> {
        let mut line = Vec::with_capacity(512);
        let written = serde_json::to_writer(&mut line, record)
            .map_err(io::Error::from)
            .and_then(|()| {
                line.push(b'\n');
                self.file.write_all(&line)
            })
            .and_then(|()| self.file.flush());
        written.map_err(|cause| AuditError::Write {
            path: self.path.clone(),
            cause,
        })
    }
}

/// The current time as RFC 3339 UTC with milliseconds, e.g. `2026-11-23T10:04:05.123Z`.
///
/// This is the one wall-clock read in scimctl (see `clippy.toml`). A clock set before 1970
/// reads as the epoch rather than failing the apply.
#[must_use]
pub fn now_rfc3339() -> String {
    format_rfc3339(since_epoch())
}

/// The current time as whole seconds since the Unix epoch: the timestamp webhook signatures
/// carry and are checked against (a receiver compares it with its own wall clock, so tokio's
/// clock cannot stand in for it).
#[must_use]
pub fn now_unix() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// The wall clock, as the time since the Unix epoch (the epoch itself for a clock set
/// before 1970).
fn since_epoch() -> Duration {
    #[allow(clippy::disallowed_methods)] // the audit stamp is the sanctioned wall-clock read
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Formats a time given as the duration since the Unix epoch, truncated to milliseconds.
fn format_rfc3339(since_epoch: Duration) -> String {
    const SECONDS_PER_DAY: u64 = 86_400;
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY);
    let of_day = seconds % SECONDS_PER_DAY;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis(),
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01.
///
/// Works in 400-year eras counted from 0000-03-01: starting the year in March puts the leap
/// day last, so the day of the year maps to a month with one linear formula, and every era
/// has exactly 146,097 days.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    /// Days from 0000-03-01 to 1970-01-01.
    const EPOCH_SHIFT: u64 = 719_468;
    const DAYS_PER_ERA: u64 = 146_097;
    let shifted = days + EPOCH_SHIFT;
    let era = shifted / DAYS_PER_ERA;
    let day_of_era = shifted % DAYS_PER_ERA;
    // Remove the leap days (every 4th year, except every 100th, except the 400th) to find the
    // year within the era.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 31, 28/29 days, a
    // pattern of 153 days per five months.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

/// Who is running scimctl: `SCIMCTL_ACTOR`, else `github:` + `GITHUB_ACTOR` (in GitHub
/// Actions), else the login name (`USER`, or `USERNAME` on Windows), else `unknown`.
///
/// Empty variables count as unset.
#[must_use]
pub fn actor() -> String {
    actor_from(|name| std::env::var(name).ok())
}

/// [`actor`] over an injected environment, so it can be tested without touching the process's.
fn actor_from(var: impl Fn(&str) -> Option<String>) -> String {
    let set = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(actor) = set("SCIMCTL_ACTOR") {
        return actor;
    }
    if let Some(github) = set("GITHUB_ACTOR") {
        return format!("github:{github}");
    }
    set("USER")
        .or_else(|| set("USERNAME"))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The commit checked out in the repository holding `dir`, as 40 (or, in a SHA-256
/// repository, 64) hex digits, with `-dirty` appended when `dir` has uncommitted changes or
/// untracked files.
///
/// `None` when git is not installed, `dir` is not inside a work tree, or HEAD has no commit
/// yet. If the status check itself fails the commit is reported as `-dirty`: the audit record
/// must not vouch for a tree that could not be checked. git's stderr is discarded.
#[must_use]
pub fn git_commit(dir: &Path) -> Option<String> {
    let head = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"])?;
    let head = head.trim();
    let is_hash = matches!(head.len(), 40 | 64) && head.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash {
        return None;
    }
    let clean = git(dir, &["status", "--porcelain", "--", "."]).is_some_and(|s| s.is_empty());
    Some(if clean {
        head.to_owned()
    } else {
        format!("{head}-dirty")
    })
}

/// Runs `git -C dir args…`; its stdout when it succeeds with UTF-8 output.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8(output.stdout).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(key: &'a str, outcome: &'a str) -> AuditRecord<'a> {
        AuditRecord {
            time: "2026-11-23T10:04:05.123Z".to_owned(),
            actor: "ci",
            target: "sandbox",
            plan_checksum: "sha256:abc",
            git_commit: None,
            action: "create",
            kind: "user",
            key,
            id: None,
            before_version: None,
            after_version: Some("W/\"1\""),
            outcome,
            detail: None,
            phase: None,
            step: None,
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .expect("read log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    /// Records written through two separate opens land in order, one JSON object per line.
    #[test]
    fn records_append_across_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state/audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        assert_eq!(log.path(), path);
        log.record(&record("ann@example.com", "done"))
            .expect("write");
        log.record(&record("bob@example.com", "failed"))
            .expect("write");
        drop(log);
        let mut log = AuditLog::open(&path).expect("reopen");
        log.record(&record("cid@example.com", "already done"))
            .expect("write");

        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.ends_with('\n'));
        let keys: Vec<_> = lines(&path)
            .iter()
            .map(|v| (v["key"].as_str().map(str::to_owned), v["outcome"].clone()))
            .collect();
        assert_eq!(
            keys,
            [
                (Some("ann@example.com".to_owned()), "done".into()),
                (Some("bob@example.com".to_owned()), "failed".into()),
                (Some("cid@example.com".to_owned()), "already done".into()),
            ]
        );
    }

    /// Field names are camelCase; absent git commit and detail are left out, absent versions
    /// are null.
    #[test]
    fn record_shape() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).expect("open");
        log.record(&record("ann@example.com", "done"))
            .expect("write");
        let mut full = record("bob@example.com", "failed");
        full.git_commit = Some("0123456789abcdef0123456789abcdef01234567-dirty");
        full.detail = Some("412 twice; gave up");
        full.id = Some("u-2");
        log.record(&full).expect("write");

        let got = lines(&path);
        let bare = got[0].as_object().expect("object");
        assert!(!bare.contains_key("gitCommit"));
        assert!(!bare.contains_key("detail"));
        assert_eq!(bare["beforeVersion"], serde_json::Value::Null);
        assert_eq!(bare["afterVersion"], "W/\"1\"");
        assert_eq!(bare["planChecksum"], "sha256:abc");
        assert_eq!(got[1]["gitCommit"], full.git_commit.expect("set"));
        assert_eq!(got[1]["detail"], "412 twice; gave up");
        assert_eq!(got[1]["id"], "u-2");
    }

    /// A new log is readable by its owner only.
    #[cfg(unix)]
    #[test]
    fn new_log_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path).expect("open");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// The error names the file that could not be opened.
    #[test]
    fn open_error_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").expect("write");
        let path = blocker.join("audit.jsonl");
        let err = AuditLog::open(&path).expect_err("parent is a file");
        assert!(
            err.to_string()
                .starts_with(&format!("cannot open audit log {}: ", path.display())),
            "{err}"
        );
    }

    /// The default location is inside the state directory.
    #[test]
    fn default_location() {
        assert_eq!(DEFAULT_AUDIT_LOG, ".scimctl/audit.jsonl");
    }

    /// Known instants format exactly, including a leap day and century boundaries.
    #[test]
    fn rfc3339_known_instants() {
        let at =
            |secs: u64, millis: u64| format_rfc3339(Duration::from_millis(secs * 1000 + millis));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(1_709_251_200, 0), "2024-03-01T00:00:00.000Z");
        assert_eq!(at(1_795_428_245, 123), "2026-11-23T10:04:05.123Z");
        assert_eq!(at(946_684_799, 0), "1999-12-31T23:59:59.000Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00.000Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00.000Z");
        // Sub-millisecond parts are truncated, not rounded up into the next second.
        assert_eq!(
            format_rfc3339(Duration::new(59, 999_999_999)),
            "1970-01-01T00:00:59.999Z"
        );
    }

    /// Consecutive days never skip or repeat a date over four centuries.
    #[test]
    fn civil_dates_are_consecutive() {
        let days_in = |y: u64, m: u64| match m {
            2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut expected = (1970, 1, 1);
        for days in 0..146_097 {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (y, m, d) = expected;
            expected = if d < days_in(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
        }
    }

    /// The stamp has the documented shape.
    #[test]
    fn now_has_the_documented_shape() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-23T10:04:05.123Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
        assert!(now.as_str() > "2024", "{now}");
    }

    /// The actor comes from the first non-empty source in the documented order.
    #[test]
    fn actor_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            actor_from(env(&[
                ("SCIMCTL_ACTOR", "ops-bot"),
                ("GITHUB_ACTOR", "ann")
            ])),
            "ops-bot"
        );
        assert_eq!(
            actor_from(env(&[
                ("SCIMCTL_ACTOR", ""),
                ("GITHUB_ACTOR", "ann"),
                ("USER", "u")
            ])),
            "github:ann"
        );
        assert_eq!(actor_from(env(&[("USER", "ann")])), "ann");
        assert_eq!(actor_from(env(&[("USER", ""), ("USERNAME", "bob")])), "bob");
        assert_eq!(actor_from(env(&[])), "unknown");
    }

    fn git_available() -> bool {
        Command::new("git")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs git in `dir` with no user or system configuration, so signing or hooks set up on
    /// the machine cannot interfere.
    fn run_git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=scimctl test",
                "-c",
                "user.email=test@example.com",
            ])
            .args([
                "-c",
                "commit.gpgsign=false",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run git");
        assert!(status.success(), "git {args:?}");
    }

    /// A clean checkout reports its commit; a change under the directory marks it dirty; a
    /// directory outside any repository reports nothing.
    #[test]
    fn git_commit_of_a_repository() {
        if !git_available() {
            return; // nothing to test without git
        }
        let repo = tempfile::tempdir().expect("tempdir");
        let desired = repo.path().join("desired");
        std::fs::create_dir(&desired).expect("mkdir");
        std::fs::write(desired.join("users.yaml"), "users: []\n").expect("write");
        run_git(repo.path(), &["init", "-q"]);
        assert_eq!(git_commit(&desired), None, "no commit yet");
        run_git(repo.path(), &["add", "."]);
        run_git(repo.path(), &["commit", "-q", "-m", "initial"]);

        let clean = git_commit(&desired).expect("a commit");
        assert_eq!(clean.len(), 40, "{clean}");
        assert!(clean.bytes().all(|b| b.is_ascii_hexdigit()), "{clean}");

        // A change outside the desired-state directory does not make it dirty.
        std::fs::write(repo.path().join("README"), "notes\n").expect("write");
        assert_eq!(git_commit(&desired), Some(clean.clone()));

        std::fs::write(desired.join("users.yaml"), "users: [ann]\n").expect("write");
        assert_eq!(git_commit(&desired), Some(format!("{clean}-dirty")));

        let outside = tempfile::tempdir().expect("tempdir");
        if git(outside.path(), &["rev-parse", "--show-toplevel"]).is_none() {
            assert_eq!(git_commit(outside.path()), None);
        }
    }
}
