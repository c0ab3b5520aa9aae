//! The client against the sandbox's fault injection, on tokio's paused clock: server and
//! client share one runtime whose clock jumps whenever both wait, so `Retry-After`, backoff,
//! latency and token expiry take no real time. The client runs without a request timeout
//! here, since a paused clock would fire it while the server is still working.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimctl::model::Kind;
use scimctl::sandbox::{self, Faults, RateLimit, RunningSandbox, SandboxAuth, SandboxConfig};
use scimctl::scim::retry::RetryPolicy;
use scimctl::scim::wire::{PatchOpKind, User};
use scimctl::scim::{
    ClientConfig, Credentials, OAuthSettings, PatchOperation, Resource, ScimClient, ScimRead,
    Secret,
};
use serde_json::{Value, json};

const CLIENT_ID: &str = "scimctl-fault-tests";
const CLIENT_SECRET: &str = "client-secret-7f3a9c2e-do-not-print";

async fn start(faults: Faults, token_ttl: Duration) -> RunningSandbox {
    sandbox::start(
        SandboxConfig {
            state_path: None,
            auth: SandboxAuth::OAuth {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                token_ttl,
            },
            faults,
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// A client whose retry budget earns nothing back (no share of requests, nothing per
/// minute): `budget` is then a hard bound on its retries, which these tests check.
fn client(sandbox: &RunningSandbox, page_size: usize, budget: u32) -> ScimClient {
    let mut config = ClientConfig::new(sandbox.base_url.clone());
    config.credentials = Credentials::OAuth(OAuthSettings {
        token_url: sandbox.token_url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        scope: None,
    });
    config.timeout = None;
    config.page_size = Some(page_size);
    config.jitter_seed = Some(7);
    config.retry = RetryPolicy {
        budget,
        budget_percent: 0,
        budget_per_minute: 0,
        max_attempts: 10,
        ..RetryPolicy::default()
    };
    ScimClient::new(config).unwrap()
}

fn seed(sandbox: &RunningSandbox, users: usize, groups: usize) -> Vec<String> {
    let users: Vec<Value> = (0..users)
        .map(|i| json!({"userName": format!("u{i:05}@northwind.example"), "displayName": format!("U {i}")}))
        .collect();
    let groups: Vec<Value> = (0..groups)
        .map(|g| json!({"displayName": format!("G {g:04}")}))
        .collect();
    sandbox.store().seed(users, groups).unwrap().users
}

/// Captures every log line (all targets, trace level) written while the guard lives.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The process-wide capture. Global rather than per-thread: a thread-local subscriber
    /// misses events whose callsites other test threads registered first. Other tests' logs
    /// land here too, and are scanned as well.
    fn global() -> &'static Captured {
        static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
        CAPTURED.get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            captured
        })
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// 20 % 503, 429 storms with Retry-After, dropped connections and a token that expires
/// every 5 s: the snapshot is still exact, every fault was met, retries stay within the
/// budget, and no log line carries the client secret or a token.
///
/// The run lasts about as long as the rate limit makes it (20 requests per 10 s of paused
/// time); 503s retry on the normal backoff, not at the rate window's reset, so the token
/// lifetime is set well below that for the expiry to happen mid-run.
#[tokio::test(start_paused = true)]
async fn snapshot_is_exact_under_faults() {
    let logs = Captured::global();
    let faults = Faults {
        latency: Duration::from_millis(400),
        rate_limit: Some(RateLimit {
            requests: 20,
            window: Duration::from_secs(10),
        }),
        error_rate: 0.2,
        error_status: Some(503),
        drop_rate: 0.05,
        drop_after_rate: 0.0,
        seed: 42,
        token_rate_limit: None,
    };
    let token_lifetime = Duration::from_secs(5);
    let sandbox = start(faults, token_lifetime).await;
    let ids = seed(&sandbox, 1_500, 120);
    let budget = 400;
    let client = client(&sandbox, 50, budget);
    let started = tokio::time::Instant::now();
    let snap = client.snapshot().await.expect("snapshot completes");
    let mut got: Vec<&str> = snap.users.iter().filter_map(Resource::id).collect();
    got.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "exactly the seeded users");
    assert_eq!(snap.groups.len(), 120);

    let server = sandbox.stats();
    let stats = client.stats();
    assert!(
        server.faults.errors > 0 && server.faults.drops > 0 && server.faults.rate_limited > 0,
        "{server:?}"
    );
    assert!(
        server.tokens_issued >= 2,
        "the token expired mid-run: {server:?}"
    );
    assert!(stats.retries <= u64::from(budget), "{stats:?}");
    let faults_met = server.faults.errors + server.faults.drops + server.faults.rate_limited;
    assert!(
        stats.retries >= faults_met,
        "each fault was retried: {stats:?} {server:?}"
    );
    assert!(
        started.elapsed() > 2 * token_lifetime,
        "on the paused clock, through more than one token lifetime: {:?}",
        started.elapsed()
    );

    let text = logs.text();
    assert!(
        text.contains("retrying"),
        "logs were captured: {}",
        &text[..text.len().min(2000)]
    );
    assert!(!text.contains(CLIENT_SECRET));
    assert!(
        !text.to_lowercase().contains("bearer "),
        "no Authorization header in logs"
    );
    assert!(!text.contains("access_token"));
    sandbox.shutdown().await.unwrap();
}

/// With every SCIM answer a 503, the client stops after exactly its budget of retries.
#[tokio::test(start_paused = true)]
async fn retries_never_exceed_the_budget() {
    let faults = Faults {
        error_rate: 1.0,
        error_status: Some(503),
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let client = client(&sandbox, 100, 5);
    let err = client.snapshot().await.expect_err("nothing but 503");
    assert!(
        err.to_string()
            .contains("retry budget exhausted (the client retries at most 5 in a burst"),
        "{err}"
    );
    assert_eq!(client.stats().retries, 5);
    let errors = sandbox.stats().faults.errors;
    assert!(
        errors == 6 || errors == 7,
        "first tries plus five retries (users and groups in parallel): {errors}"
    );
    sandbox.shutdown().await.unwrap();
}

/// A 500 is surfaced at once: the server failed, and a retry is not known to be safe.
#[tokio::test(start_paused = true)]
async fn server_errors_surface_without_retry() {
    let faults = Faults {
        error_rate: 1.0,
        error_status: Some(500),
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let client = client(&sandbox, 100, 50);
    let err = client.get::<User>("anything").await.expect_err("500");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(500), "{err}");
    assert_eq!(client.stats().retries, 0);
    sandbox.shutdown().await.unwrap();
}

/// A 429 is waited out for at least its Retry-After before the retry.
#[tokio::test(start_paused = true)]
async fn rate_limit_waits_for_retry_after() {
    let faults = Faults {
        rate_limit: Some(RateLimit {
            requests: 2,
            window: Duration::from_secs(20),
        }),
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    seed(&sandbox, 3, 0);
    let client = client(&sandbox, 1, 50);
    let started = tokio::time::Instant::now();
    // Discovery is not limited; three one-user pages are: the third waits for the window.
    let users =
        scimctl::scim::snapshot::list_all::<User>(&client, &client.capabilities().await.unwrap())
            .await
            .unwrap();
    assert_eq!(users.len(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(client.stats().rate_limited >= 1);
    sandbox.shutdown().await.unwrap();
}

/// Under a long throttle with many requests in flight, one request can be sent back window
/// after window: 12 reads at once against one request per 5 s window leave the last one
/// answered 429 (with Retry-After) eleven times. A server that says when to come back is
/// pacing, not failing: those waits do not use up the 8 attempts, and every read succeeds.
#[tokio::test(start_paused = true)]
async fn a_long_throttle_does_not_use_up_the_attempts() {
    let faults = Faults {
        rate_limit: Some(RateLimit {
            requests: 1,
            window: Duration::from_secs(5),
        }),
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let ids = seed(&sandbox, 12, 0);
    let client = client(&sandbox, 10, 1_000);
    client.capabilities().await.unwrap();
    let reads = ids.iter().map(|id| {
        let client = client.clone();
        async move { client.get::<User>(id).await }
    });
    for read in futures_util::future::join_all(reads).await {
        read.expect("every read completes");
    }
    let paced = sandbox.stats().faults.rate_limited;
    assert!(paced > 8 * 2, "the throttle was long: {paced} 429s");
    sandbox.shutdown().await.unwrap();
}

/// A create whose connection is dropped is looked up, not blindly resent: never a
/// duplicate, whatever the drops hit (the POST or the lookups).
#[tokio::test(start_paused = true)]
async fn dropped_creates_are_looked_up_not_duplicated() {
    let faults = Faults {
        drop_rate: 0.4,
        seed: 3,
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let client = client(&sandbox, 100, 500);
    let mut recovered = 0;
    for n in 0..40 {
        let user = crate::scenarios::user("drops", n);
        let created = client.create(&user).await.expect("create converges");
        recovered += usize::from(created.recovered);
    }
    assert_eq!(
        sandbox.store().count(sandbox::ResourceKind::User),
        40,
        "no duplicates"
    );
    // `drop_rate` drops before acting, so every lookup finds nothing and the POST is resent;
    // lookups did happen (a create alone never GETs). Answers lost after acting are
    // `creates_dropped_after_acting_are_recovered`.
    assert_eq!(recovered, 0);
    let stats = sandbox.stats();
    assert!(
        stats.faults.drops > 0 && stats.by_method.get > 0,
        "{stats:?}"
    );
    sandbox.shutdown().await.unwrap();
}

/// A create carried out by the server whose answer is lost (the connection dropped after
/// acting) is found by its natural key and reported as recovered, never sent again: every
/// user exists exactly once, with the id the client was given. Drops before acting are mixed
/// in, so some lookups find nothing and the POST is rightly resent.
#[tokio::test(start_paused = true)]
async fn creates_dropped_after_acting_are_recovered() {
    let faults = Faults {
        drop_rate: 0.15,
        drop_after_rate: 0.5,
        seed: 5,
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let client = client(&sandbox, 100, 500);
    let n = 40;
    let mut recovered = 0;
    for i in 0..n {
        let user = crate::scenarios::user("after", i);
        let created = client.create(&user).await.expect("create converges");
        recovered += u64::from(created.recovered);
        let stored = sandbox
            .store()
            .find(sandbox::ResourceKind::User, &user.user_name)
            .expect("stored");
        assert_eq!(
            created.resource.id.as_deref(),
            stored["id"].as_str(),
            "the client holds the one stored object"
        );
    }
    let store = sandbox.store();
    assert_eq!(store.count(sandbox::ResourceKind::User), n, "no duplicates");
    let mut names: Vec<String> = store
        .all(sandbox::ResourceKind::User)
        .iter()
        .filter_map(|u| u["userName"].as_str().map(str::to_lowercase))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
    let stats = sandbox.stats();
    // Each answer lost after acting made exactly one create recovered: nothing else can.
    assert!(recovered > 0, "{stats:?}");
    assert_eq!(recovered, stats.faults.drops_after, "{stats:?}");
    assert!(stats.faults.drops > 0, "{stats:?}");
    // A POST is resent only after a drop before acting (which may also hit a lookup); token
    // requests are POSTs too.
    let n = u64::try_from(n).unwrap();
    let creates = stats.by_method.post - stats.tokens_issued;
    assert!(
        creates >= n && creates <= n + stats.faults.drops,
        "{stats:?}"
    );
    // Nothing the client asked for was refused as a duplicate.
    assert_eq!(stats.status(409), 0, "{stats:?}");
    sandbox.shutdown().await.unwrap();
}

/// Every write dropped after acting: a DELETE (idempotent, so retried) is carried out, and
/// its retry meets 404. The client surfaces that 404 as an error, the documented contract
/// being that callers treat a 404 on delete as done; with or without `If-Match`.
#[tokio::test(start_paused = true)]
async fn deletes_dropped_after_acting_meet_404_on_retry() {
    let faults = Faults {
        drop_after_rate: 1.0,
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let ids = seed(&sandbox, 2, 0);
    let client = client(&sandbox, 100, 50);
    let version = client.get::<User>(&ids[1]).await.unwrap().meta.version;
    assert!(version.is_some());
    for (id, version) in [(&ids[0], None), (&ids[1], version.as_deref())] {
        match client.delete(Kind::User, id, version).await {
            Ok(()) => {}
            Err(e) => assert!(e.is_not_found(), "only a 404 may surface: {e}"),
        }
    }
    assert_eq!(sandbox.store().count(sandbox::ResourceKind::User), 0);
    let stats = sandbox.stats();
    assert_eq!(stats.faults.drops_after, 2, "{stats:?}");
    assert_eq!(
        stats.by_method.delete, 4,
        "each DELETE retried once: {stats:?}"
    );
    assert_eq!(stats.status(404), 2, "{stats:?}");
    sandbox.shutdown().await.unwrap();
}

/// Every write dropped after acting: a PATCH with `If-Match` is applied once, and its retry
/// is refused with 412 (the version moved), which the client surfaces; a PATCH without
/// `If-Match` is not idempotent, so it is not retried, and its outcome surfaces as unknown.
#[tokio::test(start_paused = true)]
async fn patches_dropped_after_acting_are_applied_once() {
    let faults = Faults {
        drop_after_rate: 1.0,
        ..Faults::default()
    };
    let sandbox = start(faults, Duration::from_secs(3600)).await;
    let ids = seed(&sandbox, 1, 0);
    let client = client(&sandbox, 100, 50);
    let before = client.get::<User>(&ids[0]).await.unwrap();
    let set_title = |title: &str| {
        vec![PatchOperation {
            op: PatchOpKind::Replace,
            path: Some("title".into()),
            value: Some(json!(title)),
        }]
    };

    let err = client
        .patch::<User>(&ids[0], before.meta.version.as_deref(), &set_title("Lead"))
        .await
        .expect_err("the retry finds the version moved");
    assert!(err.is_precondition_failed(), "{err}");
    let stored = sandbox
        .store()
        .get(sandbox::ResourceKind::User, &ids[0])
        .unwrap();
    assert_eq!(stored["title"], "Lead");
    let stats = sandbox.stats();
    assert_eq!(
        (stats.by_method.patch, stats.status(412)),
        (2, 1),
        "{stats:?}"
    );

    let err = client
        .patch::<User>(&ids[0], None, &set_title("Chief"))
        .await
        .expect_err("answer lost");
    assert!(err.is_ambiguous(), "{err}");
    let stored = sandbox
        .store()
        .get(sandbox::ResourceKind::User, &ids[0])
        .unwrap();
    assert_eq!(stored["title"], "Chief");
    let stats = sandbox.stats();
    assert_eq!(
        (stats.by_method.patch, stats.faults.drops_after),
        (3, 2),
        "{stats:?}"
    );
    sandbox.shutdown().await.unwrap();
}

/// An expired token is refreshed once and the request retried; concurrent requests share
/// the refresh.
#[tokio::test(start_paused = true)]
async fn expired_token_is_refreshed_once_for_all() {
    let sandbox = start(Faults::default(), Duration::from_secs(60)).await;
    seed(&sandbox, 10, 0);
    let client = client(&sandbox, 100, 50);
    client.snapshot().await.unwrap();
    assert_eq!(sandbox.stats().tokens_issued, 1);
    tokio::time::advance(Duration::from_secs(120)).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = client.clone();
        tasks.spawn(async move { client.snapshot().await.map(|s| s.users.len()) });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), 10);
    }
    assert_eq!(
        sandbox.stats().tokens_issued,
        2,
        "one refresh shared by all"
    );
    sandbox.shutdown().await.unwrap();
}
