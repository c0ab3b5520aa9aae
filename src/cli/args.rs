//! The command line's shape: every command, flag and value parser (clap derive), and
//! nothing that runs a command. Usage errors found here exit 64 (see [`super::run`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::model::Kind;
use crate::watch::{self, Mode};

/// The end of `scimctl --help`: the exit codes, and every environment variable the program
/// reads (a test scans the sources for them, so a new one cannot be left out).
const AFTER_HELP: &str = "\
Exit codes: 0 ok / no changes, 1 runtime failure, 2 changes found (plan --detailed-exitcode),
3 invalid desired state or configuration, 4 refused by a safety rule, 64 usage error.

Environment:
  SCIMCTL_TARGET               --target: a plain SCIM 2.0 base URL over scimctl.yaml's target
  SCIMCTL_TOKEN                bearer token for --target (export also writes it as fromEnv)
  SCIMCTL_REQUESTS_PER_MINUTE  --requests-per-minute
  SCIMCTL_AUDIT_LOG            --audit-log of apply and watch
  SCIMCTL_NO_BULK              --no-bulk of apply and watch: each write alone, no /Bulk
  SCIMCTL_PASSWORD_FINGERPRINTS  --password-fingerprints of plan, apply and watch
  SCIMCTL_OVERRIDES            the overrides file (HRIS terminations; .scimctl/overrides.json)
  SCIMCTL_ACTOR                who the audit log names; else github:$GITHUB_ACTOR, else
                               $USER (or $USERNAME)
  SCIMCTL_LOCK_DIR             where one-writer locks live; else $XDG_RUNTIME_DIR/scimctl,
                               else scimctl-locks in the temporary directory
  SCIMCTL_LOG                  log filter (tracing syntax, e.g. scimctl=debug), over -v/-q
  SCIMCTL_LOG_FORMAT           --log-format: text or json
  NO_COLOR                     set: no colour, even on a terminal
  and every variable a `fromEnv:` in the desired state or scimctl.yaml names.";

/// Where the fingerprints of the passwords scimctl set are kept (issue 19): one flag for
/// `plan`, `apply` and `watch`.
#[derive(Clone, Debug, clap::Args)]
pub struct FingerprintArgs {
    /// The password fingerprint file (Argon2id hashes of the passwords scimctl last set, per
    /// target and user; mode 0600): read to find `fromEnv`/`fromFile` sources that changed,
    /// written when a password is set. Under `watch`, put it on a persistent volume.
    #[arg(
        long,
        env = "SCIMCTL_PASSWORD_FINGERPRINTS",
        default_value = crate::apply::fingerprint::DEFAULT_FINGERPRINTS,
        value_name = "FILE"
    )]
    pub password_fingerprints: PathBuf,
}

/// Password rotation (issue 19): where the fingerprints are kept, and first-run adoption.
#[derive(Clone, Debug, clap::Args)]
pub struct PasswordArgs {
    /// The fingerprint file.
    #[command(flatten)]
    pub fingerprints: FingerprintArgs,
    /// Take the current `fromEnv`/`fromFile` passwords of live users that have no fingerprint
    /// as already set (apply records them; plan counts them): for the first run against a
    /// tenant whose passwords were set before scimctl kept fingerprints.
    #[arg(long)]
    pub adopt_passwords: bool,
}

/// Keep an identity tenant (Genesys Cloud, any SCIM 2.0 server) in line with a directory of
/// YAML files.
#[derive(Debug, Parser)]
#[command(name = "scimctl", version, about, long_about = None, propagate_version = true)]
#[command(after_help = AFTER_HELP)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace). Env `SCIMCTL_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log lines on stderr as text, or as one JSON object per line for log pipelines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SCIMCTL_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log level `-v`/`-q` ask for (`SCIMCTL_LOG`, read by the binary, overrides it):
    /// `error` with `-q`, else `warn`, `info`, `debug`, `trace` for none to three `-v`.
    #[must_use]
    pub fn log_level(&self) -> &'static str {
        match (self.quiet, self.verbose) {
            (true, _) => "error",
            // A daemon says what it did: each reconcile (drift, applied, blocked) at info.
            (false, 0) if matches!(self.command, Command::Watch(_)) => "info",
            (false, 0) => "warn",
            (false, 1) => "info",
            (false, 2) => "debug",
            _ => "trace",
        }
    }
}

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (time, level, message, fields).
    Json,
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

/// Output format of `doctor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    /// A checklist, one line per check with its verdict, for a terminal.
    Text,
    /// One versioned JSON document with every check and its verdict.
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
    pub(super) fn overrides(&self) -> crate::target::Overrides<'_> {
        crate::target::Overrides {
            url: self.target.as_deref(),
            requests_per_minute: self.requests_per_minute,
            no_bulk: false,
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
        /// Password rotation.
        #[command(flatten)]
        passwords: PasswordArgs,
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
        /// Password rotation.
        #[command(flatten)]
        passwords: PasswordArgs,
        /// How long to wait for another scimctl run writing to the same target (seconds, or
        /// a duration such as 5m); 0: do not wait, exit 4.
        #[arg(long, default_value = "5m", value_name = "SECS", value_parser = parse_lock_timeout)]
        lock_timeout: std::time::Duration,
        /// Send each write alone, even where the server announces `/Bulk` (by default
        /// writes go in Bulk requests within its maxOperations and maxPayloadSize).
        #[arg(long, env = "SCIMCTL_NO_BULK")]
        no_bulk: bool,
    },
    /// Reconcile continuously on file changes and on a drift timer.
    Watch(WatchArgs),
    /// Write the live tenant as desired-state YAML (`plan` on it then shows no changes).
    Export {
        /// Target override.
        #[command(flatten)]
        target: TargetArgs,
        /// Directory to write; must be new or empty unless --force.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Read the tenant that this desired-state directory's scimctl.yaml names (a Genesys
        /// Cloud org, OAuth, a sandbox file), and write the same target into the export.
        /// Without it: --target, or the embedded sandbox.
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
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
        kind: Kind,
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
    /// Write the JSON Schemas of the YAML files and of the JSON outputs.
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
        #[arg(long, value_enum, default_value_t = DoctorFormat::Text)]
        format: DoctorFormat,
    },
    /// Print a shell completion script: `scimctl completions bash > /etc/bash_completion.d/scimctl`.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `scimctl man > scimctl.1; man ./scimctl.1`.
    Man,
    /// The embedded SCIM 2.0 server.
    Sandbox {
        /// What to do with the sandbox.
        #[command(subcommand)]
        command: SandboxCommand,
    },
}

/// `explain`'s KIND is the model's [`Kind`], the one kind enum of scimctl; this says how
/// the command line spells each.
impl ValueEnum for Kind {
    fn value_variants<'a>() -> &'a [Self] {
        &[Kind::User, Kind::Group, Kind::Role]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            Kind::User => "A user, by userName",
            Kind::Group => "A group, by displayName",
            Kind::Role => "A role, by name",
        };
        Some(clap::builder::PossibleValue::new(self.name()).help(help))
    }
}

/// `scimctl sandbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox store as a standalone SCIM 2.0 server.
    Serve(Box<ServeArgs>),
}

/// Options of `scimctl sandbox serve`.
#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // one flag per server behaviour imitated
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
    /// Fault: the status of injected errors (500, 502, 503 or 504); 500 and 503,
    /// alternating, when absent.
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
    /// Genesys flavour: how many DELETEs of each group answer as if done and change nothing
    /// (Genesys deletes groups asynchronously, and that can fail after the 200).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub group_delete_misses: u32,
    /// Genesys flavour: milliseconds a newly created role answers 404 to `bulkadd` (the
    /// authorization cache has not seen it yet).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub auth_cache_lag_ms: u64,
    /// Genesys flavour: requests a minute per token, announced in `inin-ratelimit-allowed`
    /// and enforced with 429 and `Retry-After`.
    #[arg(long, default_value_t = 300, value_name = "N")]
    pub requests_per_minute: u32,
    /// Genesys flavour: answer single users and groups with a weak `ETag` (`W/"n"`) beside
    /// the bare `meta.version` `n`, a server whose header and body disagree.
    #[arg(long)]
    pub weak_etags: bool,
    /// Genesys flavour: answer `GET /api/v2/tokens/me` without naming the OAuth client, so
    /// `doctor` has to read the client's roles through `/api/v2/oauth/clients/{id}`.
    #[arg(long)]
    pub tokens_me_without_client: bool,
    /// Genesys flavour: a division besides Home (repeatable).
    #[arg(long = "division", value_name = "NAME")]
    pub divisions: Vec<String>,
    /// Append one JSON line per request (method, path, status) to this file.
    #[arg(long, value_name = "FILE")]
    pub request_log: Option<PathBuf>,
    /// Say `changePassword.supported: false` and refuse a PATCH that sets `password`, as
    /// servers that do not let clients change passwords do (plain flavour).
    #[arg(long)]
    pub no_change_password: bool,
    /// Do not announce `/Bulk` (and answer it 501), as servers without it do (plain
    /// flavour; the Genesys flavour never has it).
    #[arg(long)]
    pub no_bulk: bool,
    /// Most operations one `/Bulk` request may carry (announced as maxOperations).
    #[arg(long, default_value_t = 1_000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub bulk_max_operations: u32,
    /// Largest `/Bulk` request body in bytes (announced as maxPayloadSize).
    #[arg(long, default_value_t = 1_048_576, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..))]
    pub bulk_max_payload: u32,
    /// Imitate a behaviour of other SCIM servers (repeatable): no-common-attributes,
    /// no-filter, no-email-type, drop-group-members-on-create, integer-ids,
    /// no-value-filter-patch. Without any, the sandbox is strict and conformant.
    #[arg(long = "quirk", value_name = "NAME")]
    pub quirks: Vec<crate::sandbox::Quirk>,
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
        "502" => Ok(502),
        "503" => Ok(503),
        "504" => Ok(504),
        _ => Err(format!("`{s}` is not 500, 502, 503 or 504")),
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

/// `scimctl watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Desired-state directory.
    #[arg(default_value = "desired-state", value_name = "DIR")]
    pub dir: PathBuf,
    /// Target override.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Send each write alone, even where the server announces `/Bulk`.
    #[arg(long, env = "SCIMCTL_NO_BULK")]
    pub no_bulk: bool,
    /// Drift resync interval: a number with a unit, e.g. 90s, 5m, 1h30m.
    #[arg(long, default_value = "5m", value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Duration,
    /// `heal` applies the plan; `report` only logs it and shows it in metrics.
    #[arg(long, value_enum, default_value_t = Mode::Heal)]
    pub mode: Mode,
    /// Address for /healthz, /readyz and /metrics (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Connections served at once; a few more beyond it answer only /healthz and /readyz,
    /// and connections past those are closed at once.
    #[arg(long, default_value_t = watch::listener::DEFAULT_MAX_CONNECTIONS, value_name = "N", value_parser = parse_max_connections)]
    pub max_connections: usize,
    /// Failed reconciles in a row before quarantine (retries every 30 minutes until one
    /// succeeds).
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub quarantine_after: u32,
    /// Audit log: one JSON line per operation, appended.
    #[arg(
        long,
        env = "SCIMCTL_AUDIT_LOG",
        default_value = ".scimctl/audit.jsonl",
        value_name = "FILE"
    )]
    pub audit_log: PathBuf,
    /// How long a reconcile that may write waits for another scimctl run writing to the same
    /// target (seconds, or a duration such as 5m); 0: do not wait.
    #[arg(long, default_value = "5m", value_name = "SECS", value_parser = parse_lock_timeout)]
    pub lock_timeout: Duration,
    /// The password fingerprint file.
    #[command(flatten)]
    pub fingerprints: FingerprintArgs,
}

/// `--max-connections`: at least 1.
fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of connections (1 or more)"
        )),
    }
}

/// `--lock-timeout`: whole seconds (`0`, `300`) or a duration (`5m`).
fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_duration(text),
    }
}

/// Parses `90s`, `5m`, `1h30m`, `250ms`: one or more numbers each with a unit.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration such as 30s, 5m or 1h30m");
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        total =
            total.saturating_add(unit.saturating_mul(u32::try_from(number).map_err(|_| bad())?));
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(format!("`{text}`: the interval must be longer than zero"));
    }
    Ok(total)
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

    // The log level comes from the parsed flags, wherever they stand, and never from a value
    // that only looks like one (a directory named `-v` after `--`).
    #[test]
    fn log_level_from_parsed_flags() {
        let level = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("scimctl").chain(args.iter().copied()))
                .unwrap()
                .log_level()
        };
        assert_eq!(level(&["validate"]), "warn");
        assert_eq!(level(&["-v", "validate"]), "info");
        assert_eq!(level(&["watch"]), "info", "a daemon logs what it did");
        assert_eq!(level(&["-q", "watch"]), "error");
        assert_eq!(level(&["validate", "--verbose"]), "info");
        assert_eq!(level(&["validate", "-vv"]), "debug");
        assert_eq!(level(&["validate", "-vvv"]), "trace");
        assert_eq!(level(&["validate", "-q"]), "error");
        assert_eq!(level(&["validate", "--", "-vv"]), "warn");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "5", "m", "5x", "0s", "-1s", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
