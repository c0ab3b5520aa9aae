//! `scimctl watch`: serve health and metrics, watch the files, reconcile until a signal.
//!
//! The listen address is printed on stdout once the socket is bound (port 0 picks one), so
//! whoever started watch can find it. SIGTERM or SIGINT lets the operation in flight finish,
//! starts no new one, closes the target (an embedded sandbox saves its state) and exits 0.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::{Failure, ShutdownSignal, TargetArgs};
use crate::desired::LoadError;
use crate::error::{Error, ExitStatus};
use crate::watch::events::WebhookEvents;
use crate::watch::{
    self, Backoff, Events, LoopSink, Metrics, Mode, NoEvents, Reconciler, Stop, Timing,
};
use crate::webhook::{Verifier, Webhooks};

/// `scimctl watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Desired-state directory.
    #[arg(default_value = "desired-state", value_name = "DIR")]
    pub dir: PathBuf,
    /// Target override.
    #[command(flatten)]
    pub target: TargetArgs,
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
pub(super) fn parse_lock_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(secs) => Ok(Duration::from_secs(secs)),
        Err(_) => parse_duration(text),
    }
}

/// Parses `90s`, `5m`, `1h30m`, `250ms`: one or more numbers each with a unit.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
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

#[allow(clippy::too_many_lines)] // one command, read top to bottom
pub(super) fn watch_cmd(args: &WatchArgs, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    if !args.dir.is_dir() {
        return Err(Error::Load(LoadError::Directory {
            path: args.dir.clone(),
            why: "not a directory".into(),
        })
        .into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let signal = runtime.block_on(async { ShutdownSignal::arm() })?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!("watch: listening on {addr}, which is not a loopback address");
    }
    let metrics = Arc::new(Metrics::default());
    let stop = Stop::default();
    let mut reconciler = Reconciler::new(
        watch::reconcile::Config {
            dir: args.dir.clone(),
            mode: args.mode,
            target_url: args.target.target.clone(),
            requests_per_minute: args.target.requests_per_minute,
            audit_log: args.audit_log.clone(),
            overrides: crate::overrides::default_path(),
            lock_dir: crate::session::lock::default_dir(),
            lock_timeout: args.lock_timeout,
        },
        metrics.clone(),
        stop.clone(),
    )
    .map_err(|e| Error::File {
        path: args.audit_log.clone(),
        message: e.to_string(),
    })?;
    let hooks = runtime.block_on(async {
        let config = reconciler.preload().await;
        Hooks::configure(config, &args.dir)
    })?;
    // The watcher re-arms itself from a task when the directory is replaced.
    let (_watcher, files) = runtime
        .block_on(async { watch::files::watch(&args.dir) })
        .map_err(|e| io::Error::other(format!("watching {}: {e}", args.dir.display())))?;

    let (sink, jobs) = LoopSink::new();
    let server = {
        let stop = stop.clone();
        let mut app = watch::http::router(metrics.clone());
        if let Some(verifier) = hooks.hris {
            app = app.merge(crate::webhook::router(Arc::new(verifier), Arc::new(sink)));
        }
        let limits = watch::listener::Limits {
            max_connections: args.max_connections,
            ..watch::listener::Limits::default()
        };
        runtime.spawn(async move {
            watch::listener::serve(listener, app, limits, async move { stop.wait().await }).await;
        })
    };
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            signal.received().await;
            tracing::info!("signal received: finishing the operations in flight, starting none");
            stop.request();
        });
    }
    writeln!(
        out,
        "watch: reconciling {} every {} ({}); health, readiness and metrics at http://{addr}",
        args.dir.display(),
        humane(args.interval),
        match args.mode {
            Mode::Heal => "heal",
            Mode::Report => "report",
        }
    )?;
    out.flush()?;

    let timing = Timing {
        interval: args.interval,
        debounce: Duration::from_millis(200),
        backoff: Backoff {
            quarantine_after: args.quarantine_after,
            ..Backoff::default()
        },
    };
    let target = args
        .target
        .target
        .clone()
        .unwrap_or_else(|| "the configured target".into());
    let mut events: Box<dyn Events> = match &hooks.webhooks {
        Some(webhooks) => {
            metrics.set_webhooks(webhooks.clone());
            Box::new(WebhookEvents::new(webhooks.clone(), args.mode, target))
        }
        None => Box::new(NoEvents),
    };
    runtime.block_on(watch::run_loop(
        &mut reconciler,
        files,
        jobs,
        timing,
        &metrics,
        events.as_mut(),
        &stop,
    ));
    drop(events);
    runtime.block_on(reconciler.close());

    stop.request();
    if let Err(e) = runtime.block_on(server) {
        tracing::error!(error = %e, "the HTTP server task failed");
    }
    metrics.clear_webhooks();
    if let Some(webhooks) = hooks.webhooks.and_then(|w| Arc::try_unwrap(w).ok()) {
        let stats = runtime.block_on(webhooks.shutdown());
        tracing::info!(
            delivered = stats.delivered,
            failed = stats.failed,
            dropped = stats.dropped,
            "webhooks drained"
        );
    }
    writeln!(out, "watch: stopped")?;
    Ok(ExitStatus::Success)
}

/// `300 s` as `5m`, for the start line.
fn humane(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_millis() != 0 || secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// The webhooks `scimctl.yaml` configures, built once at start from the desired state the
/// reconciler preloaded. Their secrets must be there: watch refuses to start without them. A
/// desired state that does not load at start leaves both off (with a warning) until watch is
/// restarted.
struct Hooks {
    webhooks: Option<Arc<Webhooks>>,
    hris: Option<Verifier>,
}

impl Hooks {
    /// Must run inside the runtime (the delivery tasks are spawned on it).
    fn configure(
        config: Option<&crate::model::Config>,
        dir: &std::path::Path,
    ) -> Result<Hooks, Error> {
        let Some(config) = config else {
            tracing::warn!(
                "webhooks and the HRIS endpoint stay off until watch restarts with a valid desired state"
            );
            return Ok(Hooks {
                webhooks: None,
                hris: None,
            });
        };
        let dirs = crate::desired::confine::SecretDirs::for_config(dir, config);
        let webhooks = match &config.watch.webhooks {
            Some(settings) if !settings.value.urls.is_empty() => {
                let outbound = crate::webhook::outbound_config(&settings.value, dir, &dirs)
                    .map_err(|e| Error::Config(format!("watch.webhooks: {e}")))?;
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .map_err(|e| Error::Config(format!("watch.webhooks: {e}")))?;
                Some(Arc::new(crate::webhook::start(outbound, &client)))
            }
            _ => None,
        };
        let hris = config
            .watch
            .hris
            .as_ref()
            .map(|settings| crate::webhook::hris_verifier(&settings.value, dir, &dirs))
            .transpose()
            .map_err(|e| Error::Config(format!("watch.hris: {e}")))?;
        Ok(Hooks { webhooks, hris })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        for bad in ["", "5", "m", "5x", "0s", "-1s", "1.5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(humane(Duration::from_secs(300)), "5m");
        assert_eq!(humane(Duration::from_secs(90)), "90s");
        assert_eq!(humane(Duration::from_millis(1500)), "1500ms");
    }
}
