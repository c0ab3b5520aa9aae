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

mod apply;
mod explain;
mod export;
mod watch;

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

/// Output format of `explain`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExplainFormat {
    /// Sections with indented chains, for a terminal.
    Text,
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
    /// Client-side rate limit in requests per minute, over the configured one (Genesys
    /// Cloud: 300 per token).
    #[arg(long, env = "SCIMCTL_REQUESTS_PER_MINUTE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub requests_per_minute: Option<u32>,
}

impl TargetArgs {
    fn overrides(&self) -> crate::target::Overrides<'_> {
        crate::target::Overrides {
            url: self.target.as_deref(),
            requests_per_minute: self.requests_per_minute,
        }
    }
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
        /// Lift the safety brakes when the plan has exactly N deactivations and deletes.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
    },
    /// Execute a plan (fresh or saved) against the tenant.
    Apply {
        /// Desired-state directory (with `--plan`: the one the plan was made from).
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// A plan saved by `plan --out`; refused if the desired state changed since.
        #[arg(long, value_name = "PLAN.json")]
        plan: Option<PathBuf>,
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Do not ask for confirmation (required when not on a terminal).
        #[arg(long)]
        yes: bool,
        /// Lift the safety brakes when the plan has exactly N destructive changes
        /// (deactivations, deletes, and removals when they are over their own brake). With
        /// `--plan` too: the brakes are evaluated again at apply time, and only this flag
        /// lifts them.
        #[arg(long, value_name = "N")]
        allow_deletes: Option<usize>,
        /// Audit log: one JSON line per operation, appended.
        #[arg(
            long,
            env = "SCIMCTL_AUDIT_LOG",
            default_value = ".scimctl/audit.jsonl",
            value_name = "FILE"
        )]
        audit_log: PathBuf,
        /// Where generated initial passwords are written (mode 0600; default a new file
        /// under `.scimctl/`).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// How long to wait for another scimctl run writing to the same target (seconds, or
        /// a duration such as 5m); 0: do not wait, exit 4.
        #[arg(long, default_value = "5m", value_name = "SECS", value_parser = watch::parse_lock_timeout)]
        lock_timeout: std::time::Duration,
    },
    /// Reconcile continuously on file changes and on a drift timer.
    Watch(watch::WatchArgs),
    /// Write the live tenant as desired-state YAML (`plan` on it then shows no changes).
    Export {
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Directory to write; must be new or empty unless --force.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Export only objects matching one of these: `[user.|group.]ATTRIBUTE=GLOB`, e.g.
        /// `department=Support` or `group.displayName=Support*` (case-insensitive; `*`, `?`).
        #[arg(long, value_name = "FILTER")]
        include: Vec<crate::export::Filter>,
        /// Leave out objects matching any of these, e.g. `userName=*@contractor.example`.
        #[arg(long, value_name = "FILTER")]
        exclude: Vec<crate::export::Filter>,
        /// Write into a non-empty directory, replacing its YAML files (others stay).
        #[arg(long)]
        force: bool,
    },
    /// Show effective roles, permissions and memberships, and why; from desired state alone,
    /// or also against the tenant with --live or --target.
    Explain {
        /// What to explain.
        #[arg(value_enum)]
        kind: ExplainKind,
        /// Its name (userName, group displayName or role name; case-insensitive).
        name: String,
        /// Desired-state directory.
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
        /// Also read the configured target (scimctl.yaml, default the embedded sandbox) and
        /// show where it differs; implied by --target.
        #[arg(long)]
        live: bool,
        /// Target override; giving one also shows where the tenant differs.
        #[command(flatten)]
        target: TargetArgs,
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
        /// Desired-state directory (its scimctl.yaml names the target; its YAML says which
        /// permissions and divisions matter).
        #[arg(default_value = "desired-state", value_name = "DIR")]
        dir: PathBuf,
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
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
    Serve(Box<ServeArgs>),
}

/// Options of `scimctl sandbox serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// State file (JSON), loaded at start and saved atomically after changes.
    #[arg(long, default_value = ".scimctl/sandbox.json", value_name = "FILE")]
    pub state: PathBuf,
    /// Listen address; port 0 picks a free port (the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8930", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require `Authorization: Bearer <token>`, the token read from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "oauth_client_id")]
    pub token_env: Option<String>,
    /// Serve OAuth2 client credentials at /oauth/token for this client id and require its tokens.
    #[arg(long, value_name = "ID", requires = "oauth_secret_env")]
    pub oauth_client_id: Option<String>,
    /// Environment variable holding the OAuth client secret.
    #[arg(long, value_name = "VAR", requires = "oauth_client_id")]
    pub oauth_secret_env: Option<String>,
    /// Lifetime of issued OAuth tokens, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub token_ttl: u64,
    /// Fault: latency added to every SCIM response, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fault: answer 429 + Retry-After beyond N requests per window of SECS seconds.
    #[arg(long, value_name = "N/SECS", value_parser = parse_rate_limit)]
    pub rate_limit: Option<crate::sandbox::RateLimit>,
    /// Fault: fraction (0 to 1) of SCIM requests answered with an error status.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", value_parser = parse_fraction)]
    pub error_rate: f64,
    /// Fault: the status of injected errors (500 or 503); both, alternating, when absent.
    #[arg(long, value_name = "STATUS", value_parser = parse_error_status)]
    pub error_status: Option<u16>,
    /// Fault: fraction (0 to 1) of SCIM requests whose connection is dropped unanswered.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", value_parser = parse_fraction)]
    pub drop_rate: f64,
    /// Fault: fraction (0 to 1) of SCIM writes (POST, PUT, PATCH, DELETE) carried out and then
    /// answered by dropping the connection, so the client never learns they succeeded.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION", value_parser = parse_fraction)]
    pub drop_after_rate: f64,
    /// Seed of the fault decisions, for reproducible runs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u64,
    /// Which server to imitate: a standard SCIM 2.0 server, or Genesys Cloud (SCIM at
    /// /api/v2/scim/v2 plus the Platform API subset; needs --oauth-client-id).
    #[arg(long, value_enum, default_value_t = ServeFlavor::Standard)]
    pub flavor: ServeFlavor,
    /// Genesys flavour: milliseconds a newly created user or group stays invisible to reads.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub read_lag_ms: u64,
    /// Genesys flavour: a division besides Home (repeatable).
    #[arg(long = "division", value_name = "NAME")]
    pub divisions: Vec<String>,
    /// Append one JSON line per request (method, path, status) to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// Answer `GET /Me` with this user (the one the credentials belong to); without it `/Me`
    /// answers 501, as most servers do.
    #[arg(long, value_name = "USERNAME")]
    pub me: Option<String>,
}

/// `--flavor` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeFlavor {
    /// A standard SCIM 2.0 server.
    Standard,
    /// Genesys Cloud.
    Genesys,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("`{s}` is not a fraction between 0 and 1")),
    }
}

fn parse_error_status(s: &str) -> Result<u16, String> {
    match s {
        "500" => Ok(500),
        "503" => Ok(503),
        _ => Err(format!("`{s}` is not 500 or 503")),
    }
}

fn parse_rate_limit(s: &str) -> Result<crate::sandbox::RateLimit, String> {
    let bad = || format!("`{s}` is not N/SECS, e.g. 300/60");
    let (n, secs) = s.split_once('/').ok_or_else(bad)?;
    let requests: u32 = n.trim().parse().map_err(|_| bad())?;
    let secs: u64 = secs
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| bad())?;
    if requests == 0 || secs == 0 {
        return Err(bad());
    }
    Ok(crate::sandbox::RateLimit {
        requests,
        window: std::time::Duration::from_secs(secs),
    })
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
    match dispatch(cli, out, err) {
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

/// Runs the command `cli` names.
fn dispatch(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitStatus, Failure> {
    match &cli.command {
        Command::Validate { dir, format } => validate(dir, *format, out, err),
        Command::Schema { out: dir, check } => schema_cmd(dir, *check, out),
        Command::Sandbox {
            command: SandboxCommand::Serve(args),
        } => sandbox_serve(args, out),
        Command::Plan {
            dir,
            target,
            format,
            out: save,
            detailed_exitcode,
            allow_deletes,
        } => plan_cmd(
            &PlanArgs {
                dir,
                target: target.overrides(),
                format: *format,
                save: save.as_deref(),
                detailed_exitcode: *detailed_exitcode,
                allow_deletes: *allow_deletes,
            },
            out,
            err,
        ),
        Command::Apply {
            dir,
            plan,
            target,
            yes,
            allow_deletes,
            audit_log,
            password_file,
            lock_timeout,
        } => apply::apply_cmd(
            &apply::ApplyArgs {
                dir,
                saved: plan.as_deref(),
                target: target.overrides(),
                yes: *yes,
                allow_deletes: *allow_deletes,
                audit_log,
                password_file: password_file.as_deref(),
                lock_timeout: *lock_timeout,
                quiet: cli.quiet,
            },
            out,
            err,
        ),
        Command::Watch(args) => watch::watch_cmd(args, out),
        Command::Explain {
            kind,
            name,
            dir,
            format,
            live,
            target,
        } => explain::explain_cmd(
            &explain::ExplainArgs {
                kind: *kind,
                name,
                dir,
                format: *format,
                live: *live || target.target.is_some(),
                target: target.overrides(),
            },
            out,
            err,
        ),
        Command::Export {
            target,
            out: dir,
            include,
            exclude,
            force,
        } => export::export_cmd(
            &export::ExportArgs {
                dir,
                target: target.overrides(),
                filters: crate::export::Filters {
                    include: include.clone(),
                    exclude: exclude.clone(),
                },
                force: *force,
                quiet: cli.quiet,
            },
            err,
        ),
        Command::Doctor {
            dir,
            target,
            format,
        } => doctor_cmd(dir, &target.overrides(), *format, out, err),
    }
}

/// `scimctl doctor`: connects, runs the read-only checks, prints the checklist; exit 1 when
/// a check failed.
fn doctor_cmd(
    dir: &std::path::Path,
    overrides: &crate::target::Overrides<'_>,
    format: ExplainFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let loaded = desired::load_dir_with(dir, &explain::SecretsNotRead, desired::Limits::DEFAULT)
        .map_err(Error::from)?;
    loaded.warnings.write_text(err)?;
    let state = loaded.state;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(async {
        let connection = crate::target::connect(&state.config, dir, overrides).await?;
        let report = crate::doctor::run(&connection.client, &connection.description, &state).await;
        connection.close().await?;
        Ok::<_, Error>(report)
    })?;
    match format {
        ExplainFormat::Text => out.write_all(report.text().as_bytes())?,
        ExplainFormat::Json => {
            let document = serde_json::json!({"version": 1, "target": report.target, "checks": report.checks, "failed": report.failed()});
            serde_json::to_writer_pretty(&mut *out, &document).map_err(io::Error::other)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if report.failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// What `scimctl plan` was asked.
struct PlanArgs<'a> {
    dir: &'a std::path::Path,
    target: crate::target::Overrides<'a>,
    format: PlanFormat,
    save: Option<&'a std::path::Path>,
    detailed_exitcode: bool,
    allow_deletes: Option<usize>,
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees
/// half a plan.
fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: io::Error| Error::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn plan_cmd(
    args: &PlanArgs<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    use crate::plan::{render, saved::PlanDocument};
    use std::io::IsTerminal;

    let loaded = crate::session::load(args.dir, &crate::overrides::default_path())?;
    loaded.warnings.write_text(err)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (target, live) = runtime.block_on(async {
        let connection =
            crate::target::connect(&loaded.state.config, args.dir, &args.target).await?;
        let started = tokio::time::Instant::now();
        let live = crate::session::read(&connection.client, Some(&loaded.state)).await;
        let target = connection.description.clone();
        let requests = connection.client.stats().requests;
        connection.close().await?;
        let live = live?;
        log_read(&target, &live.snapshot, requests, started.elapsed());
        Ok::<_, Error>((target, live))
    })?;
    let options = crate::session::options(&live, args.allow_deletes);
    let decision = crate::session::decide(
        &loaded.state,
        &live,
        crate::session::PlanSource::Fresh,
        &options,
    )
    .map_err(Error::from)?;
    let mut plan = decision.plan.into_plan();
    plan.warnings.extend(loaded.notices);
    let live_hash = crate::session::live_hash(&live.snapshot);
    drop(live);
    let hash = loaded.hash;
    tracing::debug!(%target, changes = plan.changes.len(), "planned");
    let document = || {
        PlanDocument::new(&plan, hash.clone())
            .with_target(&target)
            .with_live_hash(live_hash.clone())
    };
    if let Some(path) = args.save {
        let mut json = serde_json::to_vec_pretty(&document()).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(path, &json)?;
    }
    match args.format {
        PlanFormat::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            render::text(&plan, out, color)?;
        }
        PlanFormat::Markdown => render::markdown(&plan, out)?,
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &document()).map_err(io::Error::other)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// What one read of the tenant gives a command.
pub(crate) struct TenantRead {
    /// The attributes the target's `/Schemas` say it stores.
    pub(crate) support: crate::plan::AttributeSupport,
    /// Every user and group.
    pub(crate) snapshot: crate::scim::Snapshot,
    /// The target, as plans name it.
    pub(crate) target: String,
    /// SCIM requests sent.
    pub(crate) requests: u64,
}

/// Connects to the target, reads its schemas and its whole tenant side by side, and closes
/// the connection (an embedded sandbox saves its state), on a runtime of its own. For the
/// commands that only read (`explain --live`, `export`); `plan` and `apply` read through
/// [`crate::session`].
pub(crate) fn read_tenant(
    config: &crate::model::Config,
    dir: &std::path::Path,
    overrides: &crate::target::Overrides<'_>,
) -> Result<TenantRead, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let read = runtime.block_on(async {
        let connection = crate::target::connect(config, dir, overrides).await?;
        let started = tokio::time::Instant::now();
        let live = crate::session::read(&connection.client, None).await;
        let target = connection.description.clone();
        let requests = connection.client.stats().requests;
        connection.close().await?;
        let live = live?;
        log_read(&target, &live.snapshot, requests, started.elapsed());
        Ok::<_, Error>(TenantRead {
            support: live.capabilities.attributes,
            snapshot: live.snapshot,
            target,
            requests,
        })
    })?;
    Ok(read)
}

/// Logs one read of the whole tenant.
fn log_read(
    target: &str,
    snapshot: &crate::scim::Snapshot,
    requests: u64,
    elapsed: std::time::Duration,
) {
    tracing::info!(
        %target,
        users = snapshot.users.len(),
        groups = snapshot.groups.len(),
        requests,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "read the live tenant"
    );
}

/// An error from a command, or a failed write to the output streams.
pub(crate) enum Failure {
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

/// `scimctl sandbox serve`: start, print the URL, serve until SIGINT or SIGTERM, flush, stop.
fn sandbox_serve(args: &ServeArgs, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    use crate::sandbox::{self, Faults, SandboxAuth, SandboxConfig};

    let secret = |var: &str| {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::Config(format!("environment variable `{var}` is not set")))
    };
    let auth = match (
        &args.token_env,
        &args.oauth_client_id,
        &args.oauth_secret_env,
    ) {
        (Some(var), _, _) => SandboxAuth::Bearer(secret(var)?),
        (None, Some(id), Some(var)) => SandboxAuth::OAuth {
            client_id: id.clone(),
            client_secret: secret(var)?,
            token_ttl: std::time::Duration::from_secs(args.token_ttl.max(1)),
        },
        _ => SandboxAuth::None,
    };
    let flavor = match args.flavor {
        ServeFlavor::Standard => {
            if args.read_lag_ms > 0 || !args.divisions.is_empty() {
                return Err(Error::Config(
                    "--read-lag-ms and --division need --flavor genesys".to_owned(),
                )
                .into());
            }
            sandbox::Flavor::Standard
        }
        ServeFlavor::Genesys => {
            if !matches!(auth, SandboxAuth::OAuth { .. }) {
                return Err(Error::Config(
                    "--flavor genesys needs --oauth-client-id and --oauth-secret-env".to_owned(),
                )
                .into());
            }
            sandbox::Flavor::Genesys(sandbox::GenesysOptions {
                read_lag: std::time::Duration::from_millis(args.read_lag_ms),
                divisions: args.divisions.clone(),
            })
        }
    };
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            "sandbox: listening on {}, which is not a loopback address",
            args.listen
        );
    }
    let config = SandboxConfig {
        state_path: Some(args.state.clone()),
        auth,
        clock: sandbox::Clock::system(),
        faults: Faults {
            latency: std::time::Duration::from_millis(args.latency_ms),
            rate_limit: args.rate_limit,
            error_rate: args.error_rate,
            error_status: args.error_status,
            drop_rate: args.drop_rate,
            drop_after_rate: args.drop_after_rate,
            seed: args.seed,
        },
        flavor,
        request_log: args.request_log.clone(),
        me: args.me.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Armed before the address is printed: whoever reads it may signal at once.
    let stop = runtime.block_on(async { ShutdownSignal::arm() })?;
    let running = runtime
        .block_on(sandbox::start(config, args.listen))
        .map_err(|e| Error::Sandbox(e.to_string()))?;
    writeln!(
        out,
        "sandbox: serving SCIM 2.0 at {} (state {})",
        running.base_url,
        args.state.display()
    )?;
    out.flush()?;
    runtime.block_on(stop.received());
    runtime
        .block_on(running.shutdown())
        .map_err(|e| Error::Sandbox(e.to_string()))?;
    writeln!(
        out,
        "sandbox: stopped; state saved to {}",
        args.state.display()
    )?;
    Ok(ExitStatus::Success)
}

/// SIGTERM or SIGINT (Ctrl-C), listened for from the moment it is armed, so a signal sent
/// between arming and waiting is not lost.
pub(crate) struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    /// Installs the handlers; must run inside a tokio runtime.
    pub(crate) fn arm() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Resolves on the next signal; can be awaited again for the one after.
    pub(crate) async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Resolves on the first signal.
    pub(crate) async fn received(mut self) {
        self.next().await;
    }
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
        for rate in ["1.5", "-0.1", "NaN", "often"] {
            for flag in ["--error-rate", "--drop-rate", "--drop-after-rate"] {
                let arg = format!("{flag}={rate}");
                let (status, _, err) = run_args(&["sandbox", "serve", &arg]);
                assert_eq!(status, ExitStatus::Usage, "{flag} {rate}");
                assert!(err.contains("is not a fraction between 0 and 1"), "{err}");
            }
        }
        let (status, out, _) = run_args(&["--help"]);
        assert_eq!(status, ExitStatus::Success);
        assert!(out.contains("validate"));
        let (status, _, _) = run_args(&["doctor", "--format", "yaml"]);
        assert_eq!(status, ExitStatus::Usage);
    }
}
