//! The client against the sandbox's fault injection, on tokio's paused clock: server and
//! client share one runtime whose clock jumps whenever both wait, so `Retry-After`, backoff,
//! latency and token expiry take no real time. The client runs without a request timeout
//! here, since a paused clock would fire it while the server is still working.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimctl::sandbox::{self, Faults, RateLimit, RunningSandbox, SandboxAuth, SandboxConfig};
use scimctl::scim::retry::RetryPolicy;
use scimctl::scim::wire::User;
use scimctl::scim::{
    ClientConfig, Credentials, OAuthSettings, Resource, ScimClient, ScimRead, Secret,
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
/// every 30 s: the snapshot is still exact, every fault was met, retries stay within the
/// budget, and no log line carries the client secret or a token.
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
        seed: 42,
    };
    let sandbox = start(faults, Duration::from_secs(30)).await;
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
        started.elapsed() > Duration::from_secs(30),
        "on the paused clock"
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
            .contains("retry budget exhausted (5 retries)"),
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
    // The sandbox drops before acting, so every lookup finds nothing and the POST is resent;
    // lookups did happen (a create alone never GETs).
    assert_eq!(recovered, 0);
    let stats = sandbox.stats();
    assert!(
        stats.faults.drops > 0 && stats.by_method.get > 0,
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
