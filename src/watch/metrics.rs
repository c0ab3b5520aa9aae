//! What watch knows about itself: counters and gauges for `/metrics` (Prometheus text
//! format 0.0.4) and the state behind `/readyz`.
//!
//! One mutex over plain numbers, held only to update or to render. The client's own counters
//! (requests by status, 429s, time waiting for the rate limit) are read from the client at
//! render time, so they are never copied and never stale.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::scim::{ClientStats, ScimClient};
use crate::webhook::Webhooks;

/// Upper bounds of the reconcile-duration histogram, in seconds.
const BUCKETS: [f64; 11] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Shared by the loop (writer) and the HTTP endpoints (readers).
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    client: Mutex<Option<ScimClient>>,
    webhooks: Mutex<Option<Arc<Webhooks>>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (trigger, result) → count.
    reconciles: BTreeMap<(&'static str, &'static str), u64>,
    duration_buckets: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    last_success_unix: Option<f64>,
    /// kind → changes the last plan found (blocked ones included).
    drift: BTreeMap<&'static str, u64>,
    /// Changes the last plan held back by a safety rule.
    blocked: u64,
    /// (action, outcome) → operations.
    operations: BTreeMap<(&'static str, &'static str), u64>,
    quarantined: bool,
    failures: u32,
    /// The desired state's problems, as `path:line:col: message` lines, while invalid.
    invalid: Option<String>,
    /// Why the last reconcile failed, while it stays failed.
    last_error: Option<String>,
    /// Whether any reconcile has finished yet.
    reconciled: bool,
}

/// Why `/readyz` says no.
#[derive(Debug, PartialEq, Eq)]
pub struct NotReady(pub Vec<String>);

impl Metrics {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The client whose counters `/metrics` shows (replaced on reconnect).
    pub fn set_client(&self, client: Option<ScimClient>) {
        *self.client.lock().unwrap_or_else(PoisonError::into_inner) = client;
    }

    /// A reconcile finished: how it was triggered, its result (`success`, `failure`, or
    /// `invalid`: the files on disk are invalid, so only the last valid state, if any, was
    /// reconciled), how long it took.
    pub fn reconciled(
        &self,
        trigger: &'static str,
        result: &'static str,
        took: Duration,
        now_unix: f64,
    ) {
        let ok = result == "success";
        let mut m = self.lock();
        *m.reconciles.entry((trigger, result)).or_default() += 1;
        let secs = took.as_secs_f64();
        for (bucket, bound) in m.duration_buckets.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *bucket += 1;
            }
        }
        m.duration_sum += secs;
        m.duration_count += 1;
        m.reconciled = true;
        if ok {
            m.last_success_unix = Some(now_unix);
            m.last_error = None;
        }
    }

    /// Why the last reconcile failed.
    pub fn failed(&self, why: String) {
        self.lock().last_error = Some(why);
    }

    /// What the last plan found, per kind, and how much of it a safety rule held back.
    pub fn drift(&self, per_kind: &[(&'static str, u64)], blocked: u64) {
        let mut m = self.lock();
        for (kind, n) in per_kind {
            m.drift.insert(kind, *n);
        }
        m.blocked = blocked;
    }

    /// One operation carried out (or skipped) by the applier.
    pub fn operation(&self, action: &'static str, outcome: &'static str) {
        *self.lock().operations.entry((action, outcome)).or_default() += 1;
    }

    /// Quarantine state and failures in a row.
    pub fn health(&self, quarantined: bool, failures: u32) {
        let mut m = self.lock();
        m.quarantined = quarantined;
        m.failures = failures;
    }

    /// The desired state on disk is invalid (`Some(report)`) or valid again (`None`).
    pub fn desired_invalid(&self, report: Option<String>) {
        self.lock().invalid = report;
    }

    /// Lets go of the webhooks (before they are drained at shutdown).
    pub fn clear_webhooks(&self) {
        self.webhooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// The outbound webhooks whose counters `/metrics` shows.
    pub fn set_webhooks(&self, webhooks: Arc<Webhooks>) {
        *self.webhooks.lock().unwrap_or_else(PoisonError::into_inner) = Some(webhooks);
    }

    /// `Ok` when the last reconcile succeeded, the desired state on disk is valid and the
    /// reconciler is not quarantined; otherwise every reason.
    pub fn readiness(&self) -> Result<(), NotReady> {
        let m = self.lock();
        let mut why = Vec::new();
        if !m.reconciled {
            why.push("no reconcile has finished yet".to_owned());
        }
        if let Some(report) = &m.invalid {
            why.push(format!(
                "the desired state is invalid; the last valid one (if any) stays in force:\n{}",
                capped(report.trim_end(), READYZ_LINES)
            ));
        }
        if m.quarantined {
            why.push(format!(
                "quarantined after {} failed reconciles",
                m.failures
            ));
        }
        if let Some(e) = &m.last_error {
            why.push(format!("the last reconcile failed: {e}"));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(NotReady(why))
        }
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let stats = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(ScimClient::stats);
        let m = self.lock();
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP scimctl_reconciles_total Reconciles by trigger and result.\n\
             # TYPE scimctl_reconciles_total counter"
        );
        for ((trigger, result), n) in &m.reconciles {
            let _ = writeln!(
                out,
                "scimctl_reconciles_total{{trigger=\"{trigger}\",result=\"{result}\"}} {n}"
            );
        }
        render_histogram(&mut out, &m);
        gauge(
            &mut out,
            "last_success_timestamp_seconds",
            "Unix time of the last successful reconcile (0: none yet).",
            m.last_success_unix.unwrap_or(0.0),
        );
        let _ = writeln!(
            out,
            "# HELP scimctl_drift Changes the last plan found, per kind.\n# TYPE scimctl_drift gauge"
        );
        for kind in ["user", "group"] {
            let n = m.drift.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "scimctl_drift{{kind=\"{kind}\"}} {n}");
        }
        gauge(
            &mut out,
            "blocked_changes",
            "Changes the last plan held back by a safety rule.",
            m.blocked,
        );
        let _ = writeln!(
            out,
            "# HELP scimctl_operations_total Operations by action and outcome.\n# TYPE scimctl_operations_total counter"
        );
        for ((action, outcome), n) in &m.operations {
            let _ = writeln!(
                out,
                "scimctl_operations_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        gauge(
            &mut out,
            "quarantined",
            "1 while quarantined after repeated failures.",
            u8::from(m.quarantined),
        );
        gauge(
            &mut out,
            "consecutive_failures",
            "Failed reconciles in a row.",
            m.failures,
        );
        gauge(
            &mut out,
            "desired_state_valid",
            "0 while the desired state on disk is invalid (the last valid one is in force).",
            u8::from(m.invalid.is_none()),
        );
        render_client(&mut out, stats.as_ref());
        drop(m);
        let hooks = self
            .webhooks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|w| w.stats());
        if let Some(h) = hooks {
            let _ = writeln!(
                out,
                "# HELP scimctl_webhook_events_total Outbound webhook events by result.\n\
                 # TYPE scimctl_webhook_events_total counter\n\
                 scimctl_webhook_events_total{{result=\"delivered\"}} {}\n\
                 scimctl_webhook_events_total{{result=\"failed\"}} {}\n\
                 scimctl_webhook_events_total{{result=\"dropped\"}} {}\n\
                 # HELP scimctl_webhook_retries_total Outbound webhook deliveries retried.\n\
                 # TYPE scimctl_webhook_retries_total counter\n\
                 scimctl_webhook_retries_total {}\n\
                 # HELP scimctl_webhook_queued Outbound webhook events waiting.\n\
                 # TYPE scimctl_webhook_queued gauge\n\
                 scimctl_webhook_queued {}",
                h.delivered, h.failed, h.dropped, h.retried, h.queued
            );
        }
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP scimctl_{name} {help}\n# TYPE scimctl_{name} gauge\nscimctl_{name} {value}"
    );
}

fn render_histogram(out: &mut String, m: &Inner) {
    let _ = writeln!(
        out,
        "# HELP scimctl_reconcile_duration_seconds Time per reconcile (load, read, plan, apply).\n\
         # TYPE scimctl_reconcile_duration_seconds histogram"
    );
    for (bound, n) in BUCKETS.iter().zip(m.duration_buckets) {
        let _ = writeln!(
            out,
            "scimctl_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "scimctl_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {count}\n\
         scimctl_reconcile_duration_seconds_sum {sum}\n\
         scimctl_reconcile_duration_seconds_count {count}",
        count = m.duration_count,
        sum = m.duration_sum
    );
}

fn render_client(out: &mut String, stats: Option<&ClientStats>) {
    let _ = writeln!(
        out,
        "# HELP scimctl_http_requests_total SCIM requests by response status (0: no response).\n\
         # TYPE scimctl_http_requests_total counter"
    );
    let Some(stats) = stats else {
        return;
    };
    for (status, n) in &stats.by_status {
        let _ = writeln!(
            out,
            "scimctl_http_requests_total{{status=\"{status}\"}} {n}"
        );
    }
    if stats.transport_errors > 0 {
        let _ = writeln!(
            out,
            "scimctl_http_requests_total{{status=\"0\"}} {}",
            stats.transport_errors
        );
    }
    let _ = writeln!(
        out,
        "# HELP scimctl_http_retries_total Requests retried.\n# TYPE scimctl_http_retries_total counter\n\
         scimctl_http_retries_total {}\n\
         # HELP scimctl_rate_limited_total Requests answered 429.\n# TYPE scimctl_rate_limited_total counter\n\
         scimctl_rate_limited_total {}\n\
         # HELP scimctl_rate_limit_wait_seconds_total Time spent waiting for the client rate limit.\n\
         # TYPE scimctl_rate_limit_wait_seconds_total counter\n\
         scimctl_rate_limit_wait_seconds_total {}",
        stats.retries,
        stats.rate_limited,
        stats.rate_limit_wait.as_secs_f64()
    );
}

/// Lines of the validation report `/readyz` shows; `scimctl validate` lists them all.
const READYZ_LINES: usize = 20;

/// The first `most` lines of `text`, then how many more there are.
fn capped(text: &str, most: usize) -> String {
    let total = text.lines().count();
    if total <= most {
        return text.to_owned();
    }
    let mut shown: Vec<&str> = text.lines().take(most).collect();
    let more = format!(
        "... and {} more line(s): run `scimctl validate` for all of them",
        total - most
    );
    shown.push(&more);
    shown.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every family is rendered with HELP and TYPE; values follow what was recorded.
    #[test]
    fn renders_what_was_recorded() {
        let m = Metrics::default();
        m.reconciled(
            "files",
            "success",
            Duration::from_millis(300),
            1_700_000_000.0,
        );
        m.reconciled("resync", "failure", Duration::from_secs(2), 1_700_000_060.0);
        m.drift(&[("user", 3), ("group", 1)], 2);
        m.operation("create", "done");
        m.operation("create", "done");
        m.health(true, 5);
        m.desired_invalid(Some("users.yaml:3:5: bad".into()));
        let text = m.render();
        for line in [
            "scimctl_reconciles_total{trigger=\"files\",result=\"success\"} 1",
            "scimctl_reconciles_total{trigger=\"resync\",result=\"failure\"} 1",
            "scimctl_reconcile_duration_seconds_bucket{le=\"0.5\"} 1",
            "scimctl_reconcile_duration_seconds_bucket{le=\"2.5\"} 2",
            "scimctl_reconcile_duration_seconds_count 2",
            "scimctl_last_success_timestamp_seconds 1700000000",
            "scimctl_drift{kind=\"user\"} 3",
            "scimctl_drift{kind=\"group\"} 1",
            "scimctl_blocked_changes 2",
            "scimctl_operations_total{action=\"create\",outcome=\"done\"} 2",
            "scimctl_quarantined 1",
            "scimctl_consecutive_failures 5",
            "scimctl_desired_state_valid 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap_or_default();
            assert!(
                text.contains(&format!(
                    "# TYPE {}",
                    name.trim_end_matches("_bucket")
                        .trim_end_matches("_sum")
                        .trim_end_matches("_count")
                )),
                "no TYPE for {l}"
            );
        }
    }

    /// Ready only after a successful reconcile with a valid desired state, outside quarantine.
    #[test]
    fn readiness_caps_a_long_report() {
        let metrics = Metrics::default();
        let report: Vec<String> = (1..=200)
            .map(|n| format!("users.yaml:{n}:1: bad"))
            .collect();
        metrics.desired_invalid(Some(report.join("\n")));
        let why = metrics.readiness().expect_err("invalid").0.join("\n");
        assert!(why.contains("users.yaml:20:1: bad"), "{why}");
        assert!(!why.contains("users.yaml:21:1: bad"), "{why}");
        assert!(why.contains("and 180 more line(s)"), "{why}");
        assert!(why.lines().count() < 30, "{why}");
    }

    #[test]
    fn readiness_names_every_reason() {
        let m = Metrics::default();
        assert_eq!(m.readiness().unwrap_err().0.len(), 1, "not yet reconciled");
        m.reconciled("start", "success", Duration::ZERO, 0.0);
        assert_eq!(m.readiness(), Ok(()));
        m.desired_invalid(Some("a.yaml:1:1: oops".into()));
        m.health(true, 5);
        m.failed("connection refused".into());
        let why = m.readiness().unwrap_err().0;
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].contains("a.yaml:1:1: oops"));
        m.desired_invalid(None);
        m.health(false, 0);
        m.reconciled("files", "success", Duration::ZERO, 1.0);
        assert_eq!(m.readiness(), Ok(()));
    }
}
