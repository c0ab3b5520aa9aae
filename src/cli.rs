//! The command line: clap definitions (product.md §2) and the dispatch of each command.
//!
//! `run` writes results to `out` and diagnostics to `err`, and returns the exit status; the
//! binary only wires it to the real streams. Commands whose issues have not landed answer
//! "not implemented yet" with exit code 1.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::desired::{self, LoadError};
use crate::error::{Error, ExitStatus};
use crate::schema;

/// Keep an identity tenant (Genesys Cloud, any SCIM 2.0 server) in line with a directory of
/// YAML files.
#[derive(Debug, Parser)]
#[command(name = "scimctl", version, about, long_about = None, propagate_version = true)]
#[command(
    after_help = "Exit codes: 0 ok / no changes, 1 runtime failure, 2 changes found (plan --detailed-exitcode),\n3 invalid desired state or configuration, 4 refused by a safety rule, 64 usage error."
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Env `SCIMCTL_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format of `validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// `path:line:col: message` lines and a summary.
    Text,
    /// One JSON document with counts and diagnostics.
    Json,
}

/// Output format of `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    /// A readable diff for a terminal.
    Text,
    /// Markdown for a pull-request comment.
    Markdown,
    /// One versioned JSON document.
    Json,
}

/// Options shared by commands that contact a tenant.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Plain SCIM 2.0 base URL overriding the configured target (bearer token from
    /// `SCIMCTL_TOKEN`).
    #[arg(long, env = "SCIMCTL_TARGET", value_name = "URL")]
    pub target: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check desired state; contacts nothing.
    Validate {
        /// Desired-state directory.
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ValidateFormat::Text)]
        format: ValidateFormat,
    },
    /// Diff desired state against the live tenant and print the plan; never writes.
    Plan {
        /// Desired-state directory.
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
        /// Save the plan for `apply --plan`.
        #[arg(long, value_name = "PLAN.json")]
        out: Option<PathBuf>,
        /// Exit 2 when the plan has changes.
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Execute a plan (fresh or saved) against the tenant.
    Apply {
        /// Desired-state directory.
        #[arg(
            default_value = "desired-state",
            value_name = "DIR",
            conflicts_with = "plan"
        )]
        dir: PathBuf,
        /// A plan saved by `plan --out`.
        #[arg(long, value_name = "PLAN.json")]
        plan: Option<PathBuf>,
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// Lift the safety brake for exactly this many deletes/deactivations.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<u32>,
    },
    /// Reconcile continuously on file changes and on a drift timer.
    Watch {
        /// Desired-state directory.
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Drift resync interval, e.g. 5m.
        #[arg(long, default_value = "5m", value_name = "DURATION")]
        interval: String,
        /// Address for /healthz, /readyz and /metrics.
        #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
        listen: String,
    },
    /// Write the live tenant as desired-state YAML.
    Export {
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Show effective roles, permissions and memberships, and why.
    Explain {
        /// What to explain.
        #[arg(value_enum)]
        kind: ExplainKind,
        /// Its name.
        name: String,
        /// Desired-state directory.
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write the JSON Schemas of the YAML files.
    Schema {
        /// Directory to write to.
        #[arg(long, default_value = "schemas", value_name = "DIR")]
        out: PathBuf,
        /// Only check that the files in DIR are current; exit 1 when stale.
        #[arg(long)]
        check: bool,
    },
    /// Read-only checks of a target: auth, permissions, limits.
    Doctor {
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// The embedded SCIM 2.0 server.
    Sandbox {
        /// What to do with the sandbox.
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

/// Kinds `explain` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainKind {
    /// A user, by userName.
    User,
    /// A group, by displayName.
    Group,
    /// A role, by name.
    Role,
}

/// `scimctl sandbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox store as a standalone SCIM 2.0 server.
    Serve {
        /// State file.
        #[arg(long, default_value = ".scimctl/sandbox.json", value_name = "FILE")]
        state: PathBuf,
        /// Listen address (loopback by default).
        #[arg(long, default_value = "127.0.0.1:8930", value_name = "ADDR")]
        listen: String,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Validate { .. } => "validate",
            Command::Plan { .. } => "plan",
            Command::Apply { .. } => "apply",
            Command::Watch { .. } => "watch",
            Command::Export { .. } => "export",
            Command::Explain { .. } => "explain",
            Command::Schema { .. } => "schema",
            Command::Doctor { .. } => "doctor",
            Command::Sandbox { .. } => "sandbox serve",
        }
    }
}

/// Parses `args` and runs the command. Usage errors exit 64; `--help` and `--version` exit 0.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => execute(&cli, out, err),
        Err(e) => {
            let (status, stream): (ExitStatus, &mut dyn Write) = if e.use_stderr() {
                (ExitStatus::Usage, err)
            } else {
                (ExitStatus::Success, out)
            };
            let _ = write!(stream, "{}", e.render());
            status
        }
    }
}

/// Runs a parsed command, printing its error once.
pub fn execute(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus {
    let result = match &cli.command {
        Command::Validate { dir, format } => validate(dir, *format, out, err),
        Command::Schema { out: dir, check } => schema_cmd(dir, *check, out),
        other => Err(Error::NotImplemented(other.name()).into()),
    };
    match result {
        Ok(status) => status,
        // A closed pipe (`scimctl ... | head`) is not an error worth a message.
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitStatus::Success,
        Err(Failure::Io(e)) => {
            let _ = writeln!(err, "error: {e}");
            ExitStatus::Failure
        }
        Err(Failure::Error(e)) => {
            if let Error::Load(LoadError::Invalid(report)) = &e {
                let _ = report.write_text(err);
            }
            let _ = writeln!(err, "error: {e}");
            e.exit_status()
        }
    }
}

/// An error from a command, or a failed write to the output streams.
enum Failure {
    Error(Error),
    Io(io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

fn validate(
    dir: &std::path::Path,
    format: ValidateFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let result = desired::load_dir(dir);
    if format == ValidateFormat::Json {
        let (valid, counts, report) = match &result {
            Ok(loaded) => (true, Some(loaded.state.counts()), &loaded.warnings),
            Err(LoadError::Invalid(report)) => (false, None, report),
            Err(e @ LoadError::Directory { .. }) => {
                return Err(Error::Load(LoadError::Directory {
                    path: dir.to_path_buf(),
                    why: strip_path(e, dir),
                })
                .into());
            }
        };
        let doc = serde_json::json!({
            "version": 1,
            "valid": valid,
            "counts": counts,
            "diagnostics": report.to_json(),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )?;
        return Ok(if valid {
            ExitStatus::Success
        } else {
            ExitStatus::Invalid
        });
    }
    let loaded = result.map_err(Error::from)?;
    loaded.warnings.write_text(err)?;
    let c = loaded.state.counts();
    let files = loaded.state.sources.len();
    writeln!(
        out,
        "{}: valid: {} users, {} groups, {} roles, {} licenses ({} {})",
        dir.display(),
        c.users,
        c.groups,
        c.roles,
        c.licenses,
        files,
        if files == 1 { "file" } else { "files" }
    )?;
    Ok(ExitStatus::Success)
}

fn strip_path(e: &LoadError, dir: &std::path::Path) -> String {
    match e {
        LoadError::Directory { why, .. } => why.clone(),
        LoadError::Invalid(_) => format!("{} is invalid", dir.display()),
    }
}

fn schema_cmd(
    dir: &std::path::Path,
    check: bool,
    out: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    if check {
        let stale = schema::stale(dir);
        if !stale.is_empty() {
            return Err(Error::StaleSchemas(stale).into());
        }
        writeln!(out, "{}: schemas are current", dir.display())?;
        return Ok(ExitStatus::Success);
    }
    for name in schema::write(dir)? {
        writeln!(out, "{}", dir.join(name).display())?;
    }
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    // clap's own consistency checks over every command and flag.
    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn run_args(args: &[&str]) -> (ExitStatus, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(
            std::iter::once("scimctl").chain(args.iter().copied()),
            &mut out,
            &mut err,
        );
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    // Usage errors exit 64, help exits 0, unfinished commands exit 1 with a clear message.
    #[test]
    fn exit_codes_for_usage() {
        assert_eq!(run_args(&["frobnicate"]).0, ExitStatus::Usage);
        assert_eq!(run_args(&["plan", "--format", "yaml"]).0, ExitStatus::Usage);
        let (status, out, _) = run_args(&["--help"]);
        assert_eq!(status, ExitStatus::Success);
        assert!(out.contains("validate"));
        let (status, _, err) = run_args(&["doctor"]);
        assert_eq!(status, ExitStatus::Failure);
        assert_eq!(err, "error: `scimctl doctor` is not implemented yet\n");
    }
}
