//! Outbound webhooks: events about what the reconciler did, sent as signed JSON `POST`s to
//! the configured URLs, without ever holding the reconciler up.
//!
//! [`start`] spawns one delivery task per URL, each behind its own bounded queue, so a slow or
//! dead receiver delays only its own deliveries. [`Webhooks::emit`] serialises the event once
//! and offers it to every queue with `try_send`: it never awaits, and an event that finds a
//! queue full is dropped for that URL and counted. A task sends its queue in order; a
//! delivery that fails with a transport error, 429 or 5xx is retried with exponential backoff
//! and jitter on tokio's clock, a bounded number of times, and other 4xx answers are not
//! retried. Every delivery ends counted in [`WebhookStats`].
//!
//! URLs are never logged whole (many webhook URLs carry a token in their path): logs name a
//! receiver by its position in the list and its host. Bodies and signatures are not logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use rand::RngExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::scim::Secret;

/// Something the reconciler did or found, as sent to webhook receivers.
///
/// On the wire each event is one JSON object with `event` naming the variant (`applied`,
/// `driftFound`, `deletesBlocked`, `quarantineEntered`, `quarantineLeft`), an `id` unique to
/// the event (the same for every receiver and every retry, so a receiver can drop
/// duplicates), the `time` it was emitted (RFC 3339 UTC), and the variant's fields in
/// camelCase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// A plan was carried out.
    Applied {
        /// The target, as plans name it.
        target: String,
        /// The checksum of the plan that was applied.
        plan_checksum: String,
        /// How the operations ended.
        outcomes: Outcomes,
    },
    /// A reconcile found the tenant different from desired state.
    DriftFound {
        /// The target, as plans name it.
        target: String,
        /// Whether the reconciler only reports drift or also heals it.
        mode: Mode,
        /// Changes the plan holds, by action (`create`, `patch`, `deactivate`, `delete`),
        /// then by kind (`user`, `group`).
        changes: BTreeMap<String, BTreeMap<String, u64>>,
    },
    /// A plan was held back by a safety brake; nothing destructive was written.
    DeletesBlocked {
        /// The target, as plans name it.
        target: String,
        /// How many deactivations and deletes were blocked.
        count: u64,
        /// The brake's reason, as the plan states it.
        reason: String,
    },
    /// Reconciles kept failing, so the reconciler stopped trying for a while.
    QuarantineEntered {
        /// The target, as plans name it.
        target: String,
        /// Failures in a row that led here.
        consecutive_failures: u32,
        /// The last failure, as scimctl words it (never a secret).
        last_error: String,
    },
    /// A reconcile succeeded again after a quarantine.
    QuarantineLeft {
        /// The target, as plans name it.
        target: String,
        /// Failures in a row before this success.
        consecutive_failures: u32,
    },
}

/// How the operations of an applied plan ended (the apply report's counts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcomes {
    /// Carried out as planned.
    pub done: u64,
    /// Found already in place.
    pub already_done: u64,
    /// Merged with a change made since the plan.
    pub merged: u64,
    /// Failed.
    pub failed: u64,
    /// Not attempted because something they needed failed.
    pub skipped: u64,
}

/// Whether the reconciler writes what it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Drift is reported, never applied.
    Report,
    /// Drift is applied.
    Heal,
}

/// The wire form: the event with its id and time.
#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    time: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// How a failed delivery is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Most attempts per delivery, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each later one.
    pub base: Duration,
    /// Largest delay before jitter, and most a `Retry-After` is honoured.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            attempts: 6,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait after attempt `attempt` (1-based) failed: the capped exponential delay with
    /// "equal jitter" (half fixed, half scaled by `jitter` in `[0, 1)`; see
    /// [`crate::backoff::Backoff`]).
    #[must_use]
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        crate::backoff::Backoff::new(self.base, self.cap).delay(attempt, jitter)
    }
}

/// Where events go and how.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Receivers; every event goes to each. Empty: events are discarded without counting.
    pub urls: Vec<String>,
    /// Signs every delivery when given (see [`super::signature`]).
    pub secret: Option<Secret>,
    /// Events waiting per receiver before new ones are dropped.
    pub queue: usize,
    /// Retries of a failed delivery.
    pub backoff: Backoff,
    /// How long [`Webhooks::shutdown`] waits for queued deliveries.
    pub drain: Duration,
    /// The wall clock in Unix seconds, read when a delivery is signed (each retry is signed
    /// afresh). Tests replace it.
    pub now_unix: fn() -> i64,
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            urls: Vec::new(),
            secret: None,
            queue: 256,
            backoff: Backoff::default(),
            drain: Duration::from_secs(10),
            now_unix: crate::apply::audit::now_unix,
        }
    }
}

/// Delivery counts since [`start`], per (event, receiver) pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Delivered: the receiver answered 2xx.
    pub delivered: u64,
    /// Given up: a non-retryable answer, or the last attempt failed.
    pub failed: u64,
    /// Attempts after the first (each retry once).
    pub retried: u64,
    /// Never attempted: the queue was full, or shutdown's drain time ran out.
    pub dropped: u64,
    /// Waiting or in flight now.
    pub queued: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
        }
    }
}

/// Running webhook delivery. Dropping it stops accepting events; [`Webhooks::shutdown`]
/// also waits for what is queued.
#[derive(Debug)]
pub struct Webhooks {
    queues: Vec<mpsc::Sender<Bytes>>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    drain: Duration,
}

/// One receiver's delivery task settings.
struct Receiver {
    client: reqwest::Client,
    url: String,
    /// How logs name it: position and host, never the whole URL.
    label: String,
    secret: Option<Secret>,
    backoff: Backoff,
    now_unix: fn() -> i64,
    counters: Arc<Counters>,
}

/// Starts one delivery task per URL on the current tokio runtime (none when there are no
/// URLs, so a configuration without webhooks needs no runtime). Each task sends with a clone
/// of `client` (connection pool, timeouts and TLS settings as the caller configured them).
#[must_use]
pub fn start(config: WebhookConfig, client: &reqwest::Client) -> Webhooks {
    let counters = Arc::new(Counters::default());
    let mut queues = Vec::with_capacity(config.urls.len());
    let mut tasks = Vec::with_capacity(config.urls.len());
    for (i, url) in config.urls.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
        let receiver = Receiver {
            client: client.clone(),
            url,
            label: format!("#{} ({host})", i + 1),
            secret: config.secret.clone(),
            backoff: config.backoff,
            now_unix: config.now_unix,
            counters: Arc::clone(&counters),
        };
        queues.push(tx);
        tasks.push(tokio::spawn(receiver.run(rx)));
    }
    Webhooks {
        queues,
        tasks,
        counters,
        drain: config.drain,
    }
}

impl Webhooks {
    /// Queues `event` for every receiver and returns at once: never awaits, never blocks. A
    /// receiver whose queue is full misses the event, which is counted as dropped.
    pub fn emit(&self, event: &Event) {
        if self.queues.is_empty() {
            return;
        }
        let envelope = Envelope {
            id: event_id(),
            time: crate::apply::audit::now_rfc3339(),
            event,
        };
        let body = match serde_json::to_vec(&envelope) {
            Ok(body) => Bytes::from(body),
            Err(e) => {
                // Plain data with string keys: this cannot happen, but must not panic.
                tracing::error!(error = %e, "webhook: event could not be encoded");
                Counters::add(&self.counters.dropped, self.queues.len() as u64);
                return;
            }
        };
        for (i, queue) in self.queues.iter().enumerate() {
            // Counted before it is sent, so the task never decrements below zero.
            Counters::add(&self.counters.queued, 1);
            if queue.try_send(body.clone()).is_err() {
                self.counters.queued.fetch_sub(1, Ordering::Relaxed);
                Counters::add(&self.counters.dropped, 1);
                tracing::warn!(receiver = i + 1, "webhook: queue full; event dropped");
            }
        }
    }

    /// The counts so far.
    #[must_use]
    pub fn stats(&self) -> WebhookStats {
        self.counters.snapshot()
    }

    /// Stops accepting events and waits, at most the configured drain time, for the queued
    /// ones to be delivered (or given up). What is still queued then is counted as dropped.
    /// Returns the final counts.
    pub async fn shutdown(self) -> WebhookStats {
        let Webhooks {
            queues,
            tasks,
            counters,
            drain,
        } = self;
        // Closing the queues ends each task once it has sent what they hold.
        drop(queues);
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let drained = tokio::time::timeout(drain, futures_util::future::join_all(tasks)).await;
        if drained.is_err() {
            for abort in aborts {
                abort.abort();
            }
            let left = counters.queued.swap(0, Ordering::Relaxed);
            Counters::add(&counters.dropped, left);
            tracing::warn!(
                dropped = left,
                "webhook: drain time ran out; undelivered events dropped"
            );
        }
        counters.snapshot()
    }
}

/// A random id for an event: 16 hex digits from the thread's CSPRNG-seeded generator.
fn event_id() -> String {
    let n: u64 = rand::rng().random();
    format!("{n:016x}")
}

/// What one attempt came to.
enum Attempt {
    Delivered,
    /// Worth another attempt, after at least this long when the receiver said so.
    Retry(Option<Duration>),
    GiveUp,
}

impl Receiver {
    async fn run(self, mut rx: mpsc::Receiver<Bytes>) {
        while let Some(body) = rx.recv().await {
            self.deliver(&body).await;
            // Saturating: shutdown may have zeroed the gauge when its drain time ran out.
            let _ = self
                .counters
                .queued
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                    Some(q.saturating_sub(1))
                });
        }
    }

    async fn deliver(&self, body: &Bytes) {
        let attempts = self.backoff.attempts.max(1);
        for attempt in 1..=attempts {
            match self.attempt(body).await {
                Attempt::Delivered => {
                    Counters::add(&self.counters.delivered, 1);
                    return;
                }
                Attempt::Retry(asked) if attempt < attempts => {
                    let jitter = crate::backoff::Backoff::jitter();
                    let wait = self
                        .backoff
                        .delay(attempt, jitter)
                        .max(asked.unwrap_or_default().min(self.backoff.cap));
                    Counters::add(&self.counters.retried, 1);
                    tracing::debug!(
                        receiver = %self.label,
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "webhook: retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Attempt::Retry(_) | Attempt::GiveUp => {
                    Counters::add(&self.counters.failed, 1);
                    tracing::warn!(receiver = %self.label, attempt, "webhook: delivery failed");
                    return;
                }
            }
        }
    }

    async fn attempt(&self, body: &Bytes) -> Attempt {
        let mut request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone());
        if let Some(secret) = &self.secret {
            let timestamp = (self.now_unix)();
            request = request
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(secret, timestamp, body));
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) => {
                let status = response.status();
                tracing::warn!(receiver = %self.label, status = status.as_u16(), "webhook: receiver refused the event");
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    Attempt::Retry(retry_after(response.headers()))
                } else {
                    Attempt::GiveUp
                }
            }
            Err(e) if e.is_builder() => {
                tracing::warn!(receiver = %self.label, error = %e.without_url(), "webhook: bad URL");
                Attempt::GiveUp
            }
            Err(e) => {
                tracing::warn!(receiver = %self.label, error = %e.without_url(), "webhook: could not reach the receiver");
                Attempt::Retry(None)
            }
        }
    }
}

/// `Retry-After` in delay seconds (the HTTP-date form is not worth a clock here: the backoff
/// applies instead).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::routing::post;
    use serde_json::{Value, json};
    use tokio::time::Instant;

    use super::*;
    use crate::webhook::signature::Verifier;

    const NOW: i64 = 1_795_000_000;
    const SECRET: &str = "outbound-secret-4b1e-never-printed";

    type Script = Arc<Mutex<std::vec::IntoIter<u16>>>;

    /// What the test receiver saw: when each request arrived, its headers and body.
    #[derive(Default)]
    struct Seen {
        requests: Vec<(Instant, HeaderMap, Bytes)>,
    }

    /// A loopback receiver answering the statuses in `script` in turn (200 once it runs out).
    async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let app = axum::Router::new()
            .route(
                "/hook",
                post(
                    |State((seen, script)): State<(Arc<Mutex<Seen>>, Script)>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        seen.lock()
                            .unwrap()
                            .requests
                            .push((Instant::now(), headers, body));
                        let status = script.lock().unwrap().next().unwrap_or(200);
                        StatusCode::from_u16(status).unwrap()
                    },
                ),
            )
            .with_state((Arc::clone(&seen), script));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/hook"), seen)
    }

    /// A client with no timers of its own (no pooled idle connections, no timeouts), so that
    /// on a paused clock the only timers are the backoff's.
    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    }

    fn config(urls: Vec<String>) -> WebhookConfig {
        WebhookConfig {
            urls,
            secret: Some(Secret::new(SECRET)),
            now_unix: || NOW,
            ..WebhookConfig::default()
        }
    }

    fn applied() -> Event {
        Event::Applied {
            target: "sandbox (.scimctl/sandbox.json)".into(),
            plan_checksum: "9f2c".into(),
            outcomes: Outcomes {
                done: 3,
                failed: 1,
                ..Outcomes::default()
            },
        }
    }

    // Every variant's JSON shape, as docs/watch.md documents it.
    #[test]
    fn event_shapes() {
        let envelope = |event: &Event| {
            serde_json::to_value(Envelope {
                id: "00000000000000ff".into(),
                time: "2026-11-23T10:00:00.000Z".into(),
                event,
            })
            .unwrap()
        };
        assert_eq!(
            envelope(&applied()),
            json!({"event": "applied", "id": "00000000000000ff", "time": "2026-11-23T10:00:00.000Z",
                   "target": "sandbox (.scimctl/sandbox.json)", "planChecksum": "9f2c",
                   "outcomes": {"done": 3, "alreadyDone": 0, "merged": 0, "failed": 1, "skipped": 0}})
        );
        let changes = BTreeMap::from([(
            "deactivate".to_owned(),
            BTreeMap::from([("user".to_owned(), 2)]),
        )]);
        let drift = envelope(&Event::DriftFound {
            target: "t".into(),
            mode: Mode::Report,
            changes,
        });
        assert_eq!(drift["event"], "driftFound");
        assert_eq!(drift["mode"], "report");
        assert_eq!(drift["changes"], json!({"deactivate": {"user": 2}}));
        let blocked = envelope(&Event::DeletesBlocked {
            target: "t".into(),
            count: 30,
            reason: "30 of 40 managed users".into(),
        });
        assert_eq!(
            (&blocked["event"], &blocked["count"]),
            (&json!("deletesBlocked"), &json!(30))
        );
        let entered = envelope(&Event::QuarantineEntered {
            target: "t".into(),
            consecutive_failures: 5,
            last_error: "GET /Users → 503".into(),
        });
        assert_eq!(entered["event"], "quarantineEntered");
        assert_eq!(entered["consecutiveFailures"], 5);
        assert_eq!(entered["lastError"], "GET /Users → 503");
        let left = envelope(&Event::QuarantineLeft {
            target: "t".into(),
            consecutive_failures: 5,
        });
        assert_eq!(left["event"], "quarantineLeft");
    }

    // Backoff doubles from the base, is capped, and jitter keeps it within [half, full].
    #[test]
    fn backoff_delays() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(3, 0.0), Duration::from_secs(1));
        assert_eq!(b.delay(20, 0.999), b.delay(40, 0.999));
        assert!(b.delay(40, 1.0) <= b.cap);
    }

    // A delivery reaches a loopback receiver as JSON with a signature that `Verifier` accepts,
    // to every configured URL; without a secret no signature headers are sent.
    #[tokio::test]
    async fn delivered_signed_to_every_url() {
        let (first, seen_first) = receiver(vec![]).await;
        let (second, seen_second) = receiver(vec![]).await;
        let hooks = start(config(vec![first, second]), &client());
        hooks.emit(&applied());
        let stats = hooks.shutdown().await;
        assert_eq!(
            stats,
            WebhookStats {
                delivered: 2,
                ..WebhookStats::default()
            }
        );
        let mut ids = Vec::new();
        for seen in [seen_first, seen_second] {
            // Each receiver checks with its own verifier (one cache each): both got the same
            // signed bytes.
            let verifier = Verifier::new(Secret::new(SECRET));
            let seen = seen.lock().unwrap();
            let (_, headers, body) = &seen.requests[0];
            assert_eq!(headers["content-type"], "application/json");
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            assert_eq!(header("x-scimctl-timestamp"), Some("1795000000"));
            verifier
                .verify(
                    header("x-scimctl-timestamp"),
                    header("x-scimctl-signature"),
                    body,
                    NOW,
                )
                .unwrap();
            let json: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(json["event"], "applied");
            assert_eq!(json["outcomes"]["done"], 3);
            ids.push(json["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            ids[0], ids[1],
            "one id per event, the same for every receiver"
        );

        let (url, seen) = receiver(vec![]).await;
        let hooks = start(
            WebhookConfig {
                secret: None,
                ..config(vec![url])
            },
            &client(),
        );
        hooks.emit(&applied());
        assert_eq!(hooks.shutdown().await.delivered, 1);
        let seen = seen.lock().unwrap();
        assert!(seen.requests[0].1.get("x-scimctl-signature").is_none());
    }

    // 503, 429, then 200: delivered on the third attempt, after backoff delays within their
    // jitter ranges, measured on the paused clock; each retry is signed afresh.
    #[tokio::test(start_paused = true)]
    async fn retries_with_backoff_then_delivers() {
        let (url, seen) = receiver(vec![503, 429]).await;
        let hooks = start(config(vec![url]), &client());
        hooks.emit(&applied());
        let stats = hooks.shutdown().await;
        assert_eq!(
            stats,
            WebhookStats {
                delivered: 1,
                retried: 2,
                ..WebhookStats::default()
            }
        );
        let seen = seen.lock().unwrap();
        let times: Vec<Instant> = seen.requests.iter().map(|r| r.0).collect();
        assert_eq!(times.len(), 3);
        let first = times[1] - times[0];
        let second = times[2] - times[1];
        assert!(
            (Duration::from_millis(250)..=Duration::from_millis(500)).contains(&first),
            "{first:?}"
        );
        assert!(
            (Duration::from_millis(500)..=Duration::from_secs(1)).contains(&second),
            "{second:?}"
        );
        assert_eq!(seen.requests[0].2, seen.requests[2].2, "the same body");
    }

    // A 4xx other than 429 is not retried; a receiver that keeps failing is given up after
    // the last attempt; both count as failed.
    #[tokio::test(start_paused = true)]
    async fn client_errors_and_exhausted_retries_fail() {
        let (url, seen) = receiver(vec![400]).await;
        let hooks = start(config(vec![url]), &client());
        hooks.emit(&applied());
        let stats = hooks.shutdown().await;
        assert_eq!((stats.failed, stats.retried), (1, 0));
        assert_eq!(seen.lock().unwrap().requests.len(), 1);

        let (url, seen) = receiver(vec![500; 10]).await;
        let started = Instant::now();
        let hooks = start(
            WebhookConfig {
                drain: Duration::from_secs(120),
                ..config(vec![url])
            },
            &client(),
        );
        hooks.emit(&applied());
        let stats = hooks.shutdown().await;
        assert_eq!((stats.failed, stats.retried, stats.delivered), (1, 5, 0));
        assert_eq!(seen.lock().unwrap().requests.len(), 6);
        // 0.25–0.5 + 0.5–1 + 1–2 + 2–4 + 4–8 s of backoff.
        let waited = started.elapsed();
        assert!(
            (Duration::from_millis(7750)..=Duration::from_millis(15_500)).contains(&waited),
            "{waited:?}"
        );
    }

    // With the receiver hanging, a queue of 1 takes one event and drops the rest at once;
    // shutdown gives up after its drain time and counts the undelivered one as dropped.
    #[tokio::test(start_paused = true)]
    async fn full_queue_drops_without_waiting() {
        // Accepts connections (the kernel's backlog) and never answers.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hooks = start(
            WebhookConfig {
                queue: 1,
                drain: Duration::from_secs(5),
                ..config(vec![url])
            },
            &client(),
        );
        let before = Instant::now();
        for _ in 0..5 {
            hooks.emit(&applied());
        }
        assert_eq!(Instant::now(), before, "emit never waits");
        let stats = hooks.stats();
        assert_eq!((stats.dropped, stats.queued), (4, 1));
        let stats = hooks.shutdown().await;
        assert_eq!(
            stats,
            WebhookStats {
                dropped: 5,
                ..WebhookStats::default()
            }
        );
        assert_eq!(before.elapsed(), Duration::from_secs(5));
        drop(listener);
    }

    // No URLs: nothing is spawned (no runtime needed) and events are discarded uncounted.
    #[test]
    fn no_urls_no_tasks() {
        let hooks = start(WebhookConfig::default(), &reqwest::Client::new());
        hooks.emit(&applied());
        assert_eq!(hooks.stats(), WebhookStats::default());
    }
}
