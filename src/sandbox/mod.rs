//! The embedded SCIM 2.0 sandbox: an in-memory (optionally file-backed) user and group store
//! served over HTTP on loopback, compatible for a client with the third-party peer (the Python
//! package `scim2-server` 0.8.3, which the integration tests also run against), plus fault
//! injection (latency, rate limit, 5xx, connections dropped before or after acting) and
//! counters for tests and benchmarks. This module owns the public API and the server's
//! lifecycle (bind, load, serve, flush, stop); the request handling lives in `http`, the data
//! in `store`, the state file in `persist`. It knows nothing of the SCIM client or the CLI.
//!
//! Where it differs from the peer, on purpose: deleting a resource removes it from every
//! group's members; group `displayName` is unique; PATCH answers 200 with the resource (the
//! peer answers 204); unknown attributes are kept rather than refused; the default list order
//! is creation order (stable while paging) rather than by id; `count` defaults to 100; bulk and
//! root-level search are not offered.
//!
//! [`Flavor::Genesys`] swaps the routing for an imitation of Genesys Cloud's SCIM and Platform
//! APIs (module `genesys`) over the same store.

mod auth;
mod bulk;
mod clock;
mod connection;
mod discovery;
mod error;
mod faults;
mod filter;
mod genesys;
mod http;
mod journal;
pub(crate) mod patch;
mod persist;
mod quirks;
mod resource;
mod stats;
mod store;
mod types;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use bulk::BulkLimits;
pub use clock::Clock;
pub use error::{SandboxError, ScimError};
pub use persist::write_state_file;
pub use quirks::{Quirk, Quirks};
pub use resource::ResourceKind;
pub use stats::{FaultCounts, MethodCounts, StatsSnapshot};
pub use store::{SeedIds, Store};

use crate::disk::{self, lock::FileLock, lock::FileLockError};
use connection::{SeverableListener, Severer};
use http::{App, Outcome};

/// How long [`RunningSandbox::shutdown`] waits for requests in flight before cutting them off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How to run a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// `None`: memory only. `Some`: loaded at start if the file exists; every change is
    /// appended to a journal beside it (`<file>.journal`) before the request that made it is
    /// answered, so an answered write survives a crash of the process, and synced within
    /// 0.2 s; the journal is folded into the file (written atomically) when it grows large and
    /// on shutdown. The file is locked (`<file>.lock`) while the sandbox runs: a second
    /// process given the same file is refused, or waits (see [`start_waiting`]).
    pub state_path: Option<PathBuf>,
    /// What SCIM requests must present.
    pub auth: SandboxAuth,
    /// Injected latency and failures.
    pub faults: Faults,
    /// The wall clock stamped into `meta.created`/`lastModified` (default: the system clock).
    pub clock: Clock,
    /// Which server the sandbox imitates (default: a standard SCIM 2.0 server).
    pub flavor: Flavor,
    /// When set, one JSON line per answered request is appended to this file
    /// (`{"method":"GET","path":"/scim/v2/Users","status":200}`, path without the query),
    /// flushed line by line so a test can read it while the server runs.
    pub request_log: Option<PathBuf>,
    /// The userName the credentials belong to: `GET /Me` (RFC 7644 §3.11) answers that user
    /// (404 while it does not exist). `None`: `/Me` answers 501, as most servers do.
    pub me: Option<String>,
    /// Whether `/ServiceProviderConfig` says `changePassword.supported: true` (the default:
    /// a PATCH of `password` is accepted and, like a create's, never stored or returned).
    /// `false` imitates a server that refuses password changes, so that scimctl's refusal
    /// to plan a rotation there can be tested. The Genesys flavor keeps its own answer.
    pub change_password: bool,
    /// Behaviours of other servers to imitate (default none: strict and conformant).
    pub quirks: Quirks,
    /// What `/Bulk` takes (default: 1,000 operations, 1 MiB, as scim2-server); `None`: Bulk
    /// is not announced and `/Bulk` answers 501. The Genesys flavour has none.
    pub bulk: Option<BulkLimits>,
}

/// Which server the sandbox imitates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Flavor {
    /// A standard SCIM 2.0 server at `/scim/v2` (the default).
    #[default]
    Standard,
    /// Genesys Cloud: SCIM at `/api/v2/scim/v2` with Genesys's rules, plus the Platform API
    /// subset for groups, roles, divisions and grants. Needs [`SandboxAuth::OAuth`].
    Genesys(GenesysOptions),
}

/// Options of the Genesys Cloud flavour. The defaults take the pessimistic reading of what
/// the public sources leave open (docs/genesys.md §4, §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesysOptions {
    /// How long a user created over SCIM, or a group created over the Platform API, stays
    /// invisible to reads (measured on `tokio::time`).
    pub read_lag: Duration,
    /// Divisions besides `Home` (which always exists and is the home division).
    pub divisions: Vec<String>,
    /// How many `DELETE /api/v2/groups/{id}` of each group answer as if done and change
    /// nothing (Genesys answers 200 and can fail asynchronously afterwards). Default 1.
    pub group_delete_misses: u32,
    /// How long a role created through the Platform API answers 404 to `bulkadd` (the
    /// authorization service's cache has not seen it yet; measured on `tokio::time`).
    /// Default 1 s.
    pub auth_cache_lag: Duration,
    /// Requests a minute per token, announced in `inin-ratelimit-allowed` and enforced with
    /// 429 (Genesys's default is 300; an org can have it lowered, docs/genesys.md §9).
    pub requests_per_minute: u32,
    /// Send weak `ETag` headers (`W/"n"`) on single users and groups, while `meta.version`
    /// stays the bare `n`: a server whose header and body disagree, so that `doctor`'s
    /// version/ETag probe can be seen to report `differs`. Default false (strong `"n"`).
    pub weak_etags: bool,
    /// Answer `GET /api/v2/tokens/me` without the `OAuthClient` part (a token whose info
    /// does not name its client, the reading under which `doctor` must fall back to
    /// `GET /api/v2/oauth/clients/{id}`). Default false.
    pub tokens_me_without_client: bool,
}

impl Default for GenesysOptions {
    fn default() -> Self {
        GenesysOptions {
            read_lag: Duration::ZERO,
            divisions: Vec::new(),
            group_delete_misses: 1,
            auth_cache_lag: Duration::from_secs(1),
            requests_per_minute: 300,
            weak_etags: false,
            tokens_me_without_client: false,
        }
    }
}

impl Default for SandboxConfig {
    /// Memory only, no auth, no faults, system clock.
    fn default() -> Self {
        SandboxConfig {
            state_path: None,
            auth: SandboxAuth::None,
            faults: Faults::default(),
            clock: Clock::system(),
            flavor: Flavor::Standard,
            request_log: None,
            me: None,
            change_password: true,
            quirks: Quirks::default(),
            bulk: Some(BulkLimits::default()),
        }
    }
}

impl SandboxConfig {
    /// Persists to `path`.
    #[must_use]
    pub fn with_state_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_path = Some(path.into());
        self
    }

    /// Requires `auth`.
    #[must_use]
    pub fn with_auth(mut self, auth: SandboxAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Injects `faults`.
    #[must_use]
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Stamps times from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Runs with `quirks` (behaviours of other servers).
    #[must_use]
    pub fn with_quirks(mut self, quirks: Quirks) -> Self {
        self.quirks = quirks;
        self
    }

    /// Imitates `flavor`.
    #[must_use]
    pub fn with_flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// Logs every request to `path` (one JSON line each).
    #[must_use]
    pub fn with_request_log(mut self, path: impl Into<PathBuf>) -> Self {
        self.request_log = Some(path.into());
        self
    }
}

/// What SCIM requests must present. Discovery endpoints never need anything.
#[derive(Clone, Default)]
pub enum SandboxAuth {
    /// Nothing.
    #[default]
    None,
    /// `Authorization: Bearer <this token>`.
    Bearer(String),
    /// OAuth 2.0 client credentials: tokens from `POST /oauth/token` (HTTP Basic
    /// `client_id:client_secret`, `grant_type=client_credentials`), valid for `token_ttl`.
    OAuth {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: String,
        /// Lifetime of issued tokens (measured on `tokio::time`).
        token_ttl: Duration,
    },
}

impl fmt::Debug for SandboxAuth {
    /// Secrets are redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SandboxAuth::None => f.write_str("None"),
            SandboxAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            SandboxAuth::OAuth {
                client_id,
                token_ttl,
                ..
            } => f
                .debug_struct("OAuth")
                .field("client_id", client_id)
                .field("client_secret", &"<redacted>")
                .field("token_ttl", token_ttl)
                .finish(),
        }
    }
}

/// Faults injected into SCIM resource requests (not into `/oauth/token`,
/// `/ServiceProviderConfig`, `/Schemas` or `/ResourceTypes`, so discovery stays clean).
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added to every response (`tokio::time::sleep`, so paused-clock tests do not wait).
    pub latency: Duration,
    /// Fixed window: more than `requests` in `window` gets 429 and `Retry-After` (whole
    /// seconds, rounded up, until the window ends, at least 1).
    pub rate_limit: Option<RateLimit>,
    /// Fraction (0..1) of requests answered with an injected 5xx (see `error_status`) and an
    /// RFC 7644 error body, before doing anything.
    pub error_rate: f64,
    /// The status of injected errors; `None` alternates 503 and 500.
    pub error_status: Option<u16>,
    /// Fraction (0..1) of requests whose connection is closed without a response, before doing
    /// anything. The client sees a transport error.
    pub drop_rate: f64,
    /// Fraction (0..1) of writes (POST to `/Users` or `/Groups`, PUT, PATCH, DELETE) that are
    /// carried out and then answered by closing the connection, so the client never learns
    /// that they succeeded: a lost answer rather than a lost request. Writes that fail (4xx)
    /// are answered as usual, since they changed nothing. Decided after the other faults, and
    /// only for writes that none of them stopped.
    pub drop_after_rate: f64,
    /// Seed of the `StdRng` that decides, so a run is reproducible.
    pub seed: u64,
    /// A fixed window on the OAuth token endpoint, separate from `rate_limit`: more token
    /// requests than allowed get 429 with `Retry-After`, as Genesys Cloud's login service
    /// answers a client that asks for tokens too often.
    pub token_rate_limit: Option<RateLimit>,
}

/// A fixed-window rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window: Duration,
}

/// A sandbox serving in the background. Call [`RunningSandbox::shutdown`] to stop it and flush
/// the state file; dropping it stops the server too, with a best-effort final flush.
pub struct RunningSandbox {
    /// `http://127.0.0.1:PORT/scim/v2` (Genesys flavour: `http://127.0.0.1:PORT/api/v2/scim/v2`).
    pub base_url: String,
    /// The address actually bound.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/oauth/token`.
    pub token_url: String,
    app: Arc<App>,
    stop_server: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    stop_flusher: Option<oneshot::Sender<()>>,
    flusher: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("base_url", &self.base_url)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningSandbox {
    /// A copy of the request counters.
    #[must_use]
    pub fn stats(&self) -> StatsSnapshot {
        self.app.stats.snapshot()
    }

    /// The store, to seed and inspect without HTTP.
    #[must_use]
    pub fn store(&self) -> Arc<Store> {
        self.app.store.clone()
    }

    /// Stops accepting connections, lets requests in flight finish (at most 5 s), then writes
    /// the state file one last time.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(result)) => result.map_err(SandboxError::Serve)?,
                Ok(Err(join)) => {
                    return Err(SandboxError::Serve(std::io::Error::other(join.to_string())));
                }
                Err(_) => {
                    tracing::warn!(
                        "sandbox: requests still running after {SHUTDOWN_GRACE:?}; cutting them off"
                    );
                    server.abort();
                }
            }
        }
        if let Some(stop) = self.stop_flusher.take() {
            let _ = stop.send(());
        }
        if let Some(flusher) = self.flusher.take() {
            flusher
                .await
                .map_err(|join| SandboxError::Serve(std::io::Error::other(join.to_string())))??;
        }
        Ok(())
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        // Dropping the senders tells the server to stop and the flusher to write a last time;
        // neither is awaited here.
        self.stop_server.take();
        self.stop_flusher.take();
    }
}

/// The axum handler for every path: the request goes to the transport-independent
/// [`App::handle`]; a "drop" verdict severs this request's connection.
async fn entry(
    State(app): State<Arc<App>>,
    ConnectInfo(severer): ConnectInfo<Severer>,
    request: Request,
) -> Response {
    match app.handle(request).await {
        Outcome::Respond(response) => response,
        Outcome::Drop => {
            severer.sever();
            // Never reaches the client: writing it fails because the connection is severed.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `http://host:port`, with loopback standing in for an unspecified (`0.0.0.0`/`::`) address.
fn origin(addr: SocketAddr) -> String {
    let mut shown = addr;
    if addr.ip().is_unspecified() {
        shown.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        });
    }
    format!("http://{shown}")
}

/// Binds `addr` (port 0 picks a free port), loads the state file if configured, and serves in
/// the background. A state file another process is using (see [`start_waiting`]) is refused
/// at once: what `scimctl sandbox serve` does.
pub async fn start(
    config: SandboxConfig,
    addr: SocketAddr,
) -> Result<RunningSandbox, SandboxError> {
    start_waiting(config, addr, Duration::ZERO).await
}

/// Opens the request log the sandbox was asked to keep, if any.
fn open_request_log(path: Option<&PathBuf>) -> Result<Option<http::RequestLog>, SandboxError> {
    path.map(|path| {
        http::RequestLog::open(path).map_err(|source| SandboxError::WriteState {
            path: path.clone(),
            source,
        })
    })
    .transpose()
}

/// [`start`], waiting up to `wait` (tokio's clock) for a state file another process is using,
/// with a warning naming the file and its holder while it waits: what the embedded sandbox of
/// `plan` and `apply` does, so two runs in one directory take turns instead of failing.
///
/// The state file is locked (an OS lock on `<state>.lock`, see [`crate::disk::lock`]) from
/// before it is loaded until the last write to it on shutdown: two processes serving one file
/// would each save over the other's writes (the last save wins).
pub async fn start_waiting(
    config: SandboxConfig,
    addr: SocketAddr,
    wait: Duration,
) -> Result<RunningSandbox, SandboxError> {
    let state_lock = match &config.state_path {
        Some(path) => Some(lock_state(path, wait).await?),
        None => None,
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| SandboxError::Bind { addr, source })?;
    let origin = origin(bound);
    let genesys = matches!(config.flavor, Flavor::Genesys(_));
    if genesys && !matches!(config.auth, SandboxAuth::OAuth { .. }) {
        return Err(SandboxError::Config(
            "the genesys flavour needs OAuth client credentials".to_owned(),
        ));
    }
    let request_log = open_request_log(config.request_log.as_ref())?;
    let base_url = if genesys {
        format!("{origin}{}", genesys::SCIM_BASE)
    } else {
        format!("{origin}/scim/v2")
    };
    let token_url = format!("{origin}/oauth/token");
    let mut store = Store::new(base_url.clone(), config.clock.clone());
    if genesys {
        store.set_per_resource_versions();
        store.set_unique_group_names();
    }
    let store = Arc::new(store);

    let journal = match config.state_path.clone() {
        Some(path) => Some(load(path, &store).await?),
        None => None,
    };
    let (durable, durable_rx) = tokio::sync::watch::channel(store.generation());

    let mut app = App::new(
        store.clone(),
        config.auth.clone(),
        config.faults,
        &base_url,
        &config.quirks,
    );
    if let Flavor::Genesys(options) = &config.flavor {
        let client_id = match &config.auth {
            SandboxAuth::OAuth { client_id, .. } => client_id.clone(),
            _ => String::new(),
        };
        app.genesys = Some(genesys::Genesys::new(&store, options, &origin, client_id));
    }
    app.request_log = request_log;
    app.me.clone_from(&config.me);
    app.set_change_password(config.change_password);
    // Genesys Cloud has no SCIM Bulk.
    app.set_bulk(
        config
            .bulk
            .filter(|_| matches!(config.flavor, Flavor::Standard)),
    );
    if journal.is_some() {
        app.durable = Some(durable_rx);
    }
    let app = Arc::new(app);
    let router = Router::new().fallback(entry).with_state(app.clone());
    let (stop_server, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(
            SeverableListener::new(listener),
            router.into_make_service_with_connect_info::<Severer>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });
    let (stop_flusher, flusher) = match journal {
        Some(journal) => {
            let (stop, stopped) = oneshot::channel();
            // The writer holds the lock until its last write, also when the sandbox is
            // dropped without `shutdown`.
            let writer = async move {
                let _held = state_lock;
                journal::run_writer(journal, store, durable, stopped).await
            };
            (Some(stop), Some(tokio::spawn(writer)))
        }
        None => (None, None),
    };
    Ok(RunningSandbox {
        base_url,
        addr: bound,
        token_url,
        app,
        stop_server: Some(stop_server),
        server: Some(server),
        stop_flusher,
        flusher,
    })
}

/// The lock file of the state file `path`: `<state>.lock` beside it.
fn lock_path_for(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Locks the state file `path` (creating its directory if needed), waiting up to `wait`.
async fn lock_state(path: &Path, wait: Duration) -> Result<FileLock, SandboxError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::WriteState {
            path: path.to_owned(),
            source,
        })?;
    }
    let note = format!(
        "pid {} serving sandbox state {}",
        std::process::id(),
        path.display()
    );
    let waiting = |holder: &str| {
        if !wait.is_zero() {
            tracing::warn!(
                "sandbox: state file {} is in use by another process ({holder}); \
                 waiting up to {} s",
                path.display(),
                wait.as_secs()
            );
        }
    };
    disk::lock::acquire(&lock_path_for(path), &note, wait, waiting)
        .await
        .map_err(|e| match e {
            FileLockError::Busy { holder, waited, .. } => SandboxError::StateLocked {
                path: path.to_owned(),
                holder,
                waited: waited.as_secs(),
            },
            FileLockError::Io { path: lock, cause } => SandboxError::WriteState {
                path: lock,
                source: cause,
            },
        })
}

/// Loads the state file at `path` into `store` with its journal laid over it, and reopens the
/// journal to append to (its torn tail, if any, cut off); from then on the store records its
/// changes for the journal.
async fn load(path: PathBuf, store: &Arc<Store>) -> Result<journal::Journal, SandboxError> {
    let loading = store.clone();
    let load_path = path.clone();
    let journal = tokio::task::spawn_blocking(move || {
        let mut read = journal::read(&journal::path_for(&load_path))?;
        let mut empty = journal::Overlay::default();
        let overlay = read.as_mut().map_or(&mut empty, |r| &mut r.overlay);
        let epoch = persist::load_with(&load_path, &loading, overlay)?;
        journal::Journal::open(&load_path, read, epoch)
    })
    .await
    .map_err(|join| SandboxError::ReadState {
        path,
        source: std::io::Error::other(join.to_string()),
    })??;
    store.track_changes();
    Ok(journal)
}

/// Runs a sandbox until `shutdown_signal` resolves (`scimctl sandbox serve`), then shuts it
/// down gracefully and flushes the state file.
pub async fn serve(
    config: SandboxConfig,
    addr: SocketAddr,
    shutdown_signal: impl Future<Output = ()>,
) -> Result<(), SandboxError> {
    let state = match &config.state_path {
        Some(path) => path.display().to_string(),
        None => "in memory only".to_owned(),
    };
    let oauth = matches!(config.auth, SandboxAuth::OAuth { .. });
    let sandbox = start(config, addr).await?;
    tracing::info!(
        "sandbox: serving SCIM 2.0 at {} (state {state})",
        sandbox.base_url
    );
    if oauth {
        tracing::info!("sandbox: OAuth token endpoint at {}", sandbox.token_url);
    }
    shutdown_signal.await;
    tracing::info!("sandbox: shutting down");
    sandbox.shutdown().await
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn loopback() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
    }

    // Over real TCP: create, list, the stats, and the advertised URLs.
    #[tokio::test]
    async fn serves_over_tcp() {
        let sandbox = start(SandboxConfig::default(), loopback())
            .await
            .expect("starts");
        assert_eq!(
            sandbox.base_url,
            format!("http://127.0.0.1:{}/scim/v2", sandbox.addr.port())
        );
        assert_eq!(
            sandbox.token_url,
            format!("http://127.0.0.1:{}/oauth/token", sandbox.addr.port())
        );
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{}/Users", sandbox.base_url))
            .json(&json!({"userName": "tcp@x"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(created.status(), 201);
        assert_eq!(
            created
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/scim+json")
        );
        let list: Value = client
            .get(format!(
                "{}/Users?filter=userName%20eq%20%22TCP@X%22",
                sandbox.base_url
            ))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(list["totalResults"], 1);
        let stats = sandbox.stats();
        assert_eq!(
            (stats.requests, stats.by_method.post, stats.by_method.get),
            (2, 1, 1)
        );
        assert_eq!((stats.status(201), stats.status(200)), (1, 1));
        assert_eq!(sandbox.store().count(ResourceKind::User), 1);
        sandbox.shutdown().await.expect("stops");
    }

    // A dropped request reaches the client as a transport error, not as a status, also on a
    // reused keep-alive connection; discovery on the same client keeps working.
    #[tokio::test]
    async fn dropped_connection_is_a_transport_error() {
        let faults = Faults {
            drop_rate: 1.0,
            ..Faults::default()
        };
        let sandbox = start(SandboxConfig::default().with_faults(faults), loopback())
            .await
            .expect("starts");
        let client = reqwest::Client::new();
        let spc = format!("{}/ServiceProviderConfig", sandbox.base_url);
        // Opens the pooled connection the next request reuses.
        assert_eq!(client.get(&spc).send().await.expect("sent").status(), 200);
        for _ in 0..2 {
            let err = client
                .post(format!("{}/Users", sandbox.base_url))
                .json(&json!({"userName": "x"}))
                .send()
                .await
                .expect_err("dropped");
            assert!(err.status().is_none(), "{err:?}");
            assert!(
                err.is_request() || err.is_connect() || err.is_body(),
                "{err:?}"
            );
        }
        assert_eq!(client.get(&spc).send().await.expect("sent").status(), 200);
        let stats = sandbox.stats();
        assert_eq!((stats.faults.drops, stats.requests), (2, 4));
        assert_eq!(stats.status(200), 2);
        assert_eq!(sandbox.store().count(ResourceKind::User), 0);
        sandbox.shutdown().await.expect("stops");
    }

    // State survives a restart; the corrupt file is an error naming the path.
    #[tokio::test]
    async fn persists_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".scimctl/sandbox.json");
        let config = || SandboxConfig::default().with_state_path(&path);
        let first = start(config(), loopback()).await.expect("starts");
        let client = reqwest::Client::new();
        for i in 0..20 {
            let reply = client
                .post(format!("{}/Users", first.base_url))
                .json(&json!({"userName": format!("u{i}"), "password": "never-stored"}))
                .send()
                .await
                .expect("sent");
            assert_eq!(reply.status(), 201);
        }
        first.shutdown().await.expect("stops and flushes");
        let text = std::fs::read_to_string(&path).expect("state file");
        assert!(!text.contains("never-stored"));
        let second = start(config(), loopback()).await.expect("restarts");
        assert_eq!(second.store().count(ResourceKind::User), 20);
        let user = second.store().find(ResourceKind::User, "U7").expect("kept");
        assert!(
            user["meta"]["location"]
                .as_str()
                .is_some_and(|l| l.starts_with(&second.base_url))
        );
        second.shutdown().await.expect("stops");

        std::fs::write(&path, "{\"version\":1,\"users\":[{]}").expect("corrupt it");
        let err = start(config(), loopback()).await.expect_err("corrupt");
        assert!(matches!(err, SandboxError::CorruptState { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    // A state file in use is refused at once by `start` (naming the file and its holder),
    // waited for by `start_waiting`, and free again once its holder has shut down.
    #[tokio::test]
    async fn a_state_file_has_one_server_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/state.json");
        let config = || SandboxConfig::default().with_state_path(&path);
        let first = start(config(), loopback()).await.expect("starts");
        first
            .store()
            .create(ResourceKind::User, json!({"userName": "kept"}))
            .expect("created");
        let err = start(config(), loopback()).await.expect_err("in use");
        assert!(matches!(err, SandboxError::StateLocked { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert!(!message.contains("waited"), "{message}");
        // A waiter takes over once the first has written its last change.
        let waiter = tokio::spawn({
            let config = config();
            async move { start_waiting(config, loopback(), Duration::from_secs(60)).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while the file is in use");
        first.shutdown().await.expect("stops");
        let second = waiter
            .await
            .expect("joins")
            .expect("starts after the first");
        assert!(second.store().find(ResourceKind::User, "kept").is_some());
        second.shutdown().await.expect("stops");
    }

    // serve() runs until its signal and then flushes.
    #[tokio::test]
    async fn serve_until_signal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        persist::write_state_file(&path, &[json!({"userName": "seeded"})], &[]).expect("seeded");
        let (tx, rx) = oneshot::channel::<()>();
        let config = SandboxConfig::default().with_state_path(&path);
        let serving = tokio::spawn(serve(config, loopback(), async {
            let _ = rx.await;
        }));
        tokio::task::yield_now().await;
        tx.send(()).expect("serving");
        serving.await.expect("joins").expect("clean stop");
        let text = std::fs::read_to_string(&path).expect("state");
        assert!(text.contains("seeded"));
    }

    // Secrets stay out of Debug output.
    #[test]
    fn auth_debug_is_redacted() {
        let shown = format!(
            "{:?} {:?}",
            SandboxAuth::Bearer("tok-123".into()),
            SandboxAuth::OAuth {
                client_id: "id".into(),
                client_secret: "sec-456".into(),
                token_ttl: Duration::from_secs(1)
            }
        );
        assert!(
            !shown.contains("tok-123") && !shown.contains("sec-456"),
            "{shown}"
        );
    }

    // A busy port is a Bind error naming the address.
    #[tokio::test]
    async fn bind_error() {
        let first = start(SandboxConfig::default(), loopback())
            .await
            .expect("starts");
        let err = start(SandboxConfig::default(), first.addr)
            .await
            .expect_err("busy");
        assert!(err.to_string().contains(&first.addr.to_string()));
        first.shutdown().await.expect("stops");
    }
}
