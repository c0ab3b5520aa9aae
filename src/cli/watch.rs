//! `scimctl watch`: serve health and metrics, watch the files, reconcile until a signal.
//!
//! The listen address is printed on stdout once the socket is bound (port 0 picks one), so
//! whoever started watch can find it. SIGTERM or SIGINT lets the operation in flight finish,
//! starts no new one, closes the target (an embedded sandbox saves its state) and exits 0.

use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use super::Failure;
use super::args::WatchArgs;
use super::runtime::{Runtime, ShutdownSignal};
use crate::desired::LoadError;
use crate::error::{Error, ExitStatus};
use crate::watch::events::WebhookEvents;
use crate::watch::{
    self, Backoff, Events, LoopSink, Metrics, Mode, NoEvents, Reconciler, Stop, Timing,
};
use crate::webhook::{Verifier, Webhooks};

#[allow(clippy::too_many_lines)] // one command, read top to bottom
pub(super) fn watch_cmd(
    args: &WatchArgs,
    runtime: &Runtime,
    out: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    if !args.dir.is_dir() {
        return Err(Error::Load(LoadError::Directory {
            path: args.dir.clone(),
            why: "not a directory".into(),
        })
        .into());
    }
    let runtime = runtime.get()?;
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
            no_bulk: args.no_bulk,
            audit_log: args.audit_log.clone(),
            overrides: crate::overrides::default_path(),
            lock_dir: crate::session::lock::default_dir(),
            lock_timeout: args.lock_timeout,
            fingerprints: args.fingerprints.password_fingerprints.clone(),
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
            app = app.merge(crate::webhook::router(
                Arc::new(verifier),
                Arc::new(sink.clone()),
            ));
        }
        if let Some(verifier) = hooks.password_sync {
            app = app.merge(crate::webhook::password::router(
                Arc::new(verifier),
                Arc::new(sink),
            ));
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
    password_sync: Option<Verifier>,
}

impl Hooks {
    /// Must run inside the runtime (the delivery tasks are spawned on it).
    fn configure(
        config: Option<&crate::model::Config>,
        dir: &std::path::Path,
    ) -> Result<Hooks, Error> {
        let Some(config) = config else {
            tracing::warn!(
                "webhooks, the HRIS and the password-sync endpoints stay off until watch restarts \
                 with a valid desired state"
            );
            return Ok(Hooks {
                webhooks: None,
                hris: None,
                password_sync: None,
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
            .map(|settings| crate::webhook::inbound_verifier(&settings.value, dir, &dirs))
            .transpose()
            .map_err(|e| Error::Config(format!("watch.hris: {e}")))?;
        let password_sync = config
            .watch
            .password_sync
            .as_ref()
            .map(|settings| crate::webhook::inbound_verifier(&settings.value, dir, &dirs))
            .transpose()
            .map_err(|e| Error::Config(format!("watch.passwordSync: {e}")))?;
        Ok(Hooks {
            webhooks,
            hris,
            password_sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humane_durations() {
        assert_eq!(humane(Duration::from_secs(300)), "5m");
        assert_eq!(humane(Duration::from_secs(90)), "90s");
        assert_eq!(humane(Duration::from_millis(1500)), "1500ms");
    }
}
