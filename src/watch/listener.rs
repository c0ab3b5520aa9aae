//! Watch's HTTP listener, made to survive hostile clients.
//!
//! [`serve`] accepts connections itself instead of `axum::serve`, so that:
//!
//! - a client must send its whole request head within [`Limits::header_timeout`]; the same
//!   timer also closes a keep-alive connection that stays idle that long between requests;
//! - a request body must arrive within [`Limits::body_timeout`] of the head (a trickled body
//!   is cut off and its handler sees an [`io::ErrorKind::TimedOut`] error);
//! - at most [`Limits::max_connections`] connections are served at once; beyond that a small
//!   [`Limits::reserve`] serves only `GET /healthz` and `GET /readyz` (503 for anything else,
//!   one request per connection, a short header timeout), so health checks still answer while
//!   slow clients hold every regular slot; connections past both are accepted and closed at
//!   once, so the kernel's backlog never fills;
//! - on shutdown it stops accepting, lets requests in flight finish (closing idle
//!   connections), and returns, waiting at most [`Limits::shutdown_grace`].
//!
//! Only HTTP/1.1 is served.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// The listener's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once with every route. The default, 128, leaves most of the
    /// usual 1024-descriptor soft limit to the target client, the audit log and the watcher.
    pub max_connections: usize,
    /// Further connections that serve only `GET /healthz` and `GET /readyz`.
    pub reserve: usize,
    /// Time to receive a request head (and the longest idle time between requests).
    pub header_timeout: Duration,
    /// Time to receive a request head on a reserve connection.
    pub reserve_header_timeout: Duration,
    /// Time to receive a whole request body, counted from the end of the head.
    pub body_timeout: Duration,
    /// Longest wait for requests in flight at shutdown.
    pub shutdown_grace: Duration,
}

/// The default `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            reserve: 8,
            header_timeout: Duration::from_secs(10),
            reserve_header_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the
/// requests in flight finish (at most [`Limits::shutdown_grace`]) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let regular = Arc::new(Semaphore::new(limits.max_connections));
    let reserve = Arc::new(Semaphore::new(limits.reserve));
    let full_app = app.clone().layer(middleware::from_fn_with_state(
        limits.body_timeout,
        limit_body,
    ));
    let reserve_app = app.layer(middleware::from_fn(health_only));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                    // little instead of spinning, the way axum::serve does.
                    tracing::warn!(error = %e, "watch: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (permit, reserved) = if let Ok(permit) = regular.clone().try_acquire_owned() {
            (permit, false)
        } else if let Ok(permit) = reserve.clone().try_acquire_owned() {
            (permit, true)
        } else {
            tracing::debug!("watch: connection limit reached, closing a new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut builder = http1::Builder::new();
        builder.timer(TokioTimer::new());
        let service = if reserved {
            builder
                .header_read_timeout(limits.reserve_header_timeout)
                .keep_alive(false);
            TowerToHyperService::new(reserve_app.clone())
        } else {
            builder.header_read_timeout(limits.header_timeout);
            TowerToHyperService::new(full_app.clone())
        };
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "watch: HTTP connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(
                "watch: HTTP requests still in flight after {} s; stopping without them",
                limits.shutdown_grace.as_secs()
            );
        }
    }
}

/// Reserve connections: health and readiness only.
async fn health_only(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if request.method() == Method::GET && (path == "/healthz" || path == "/readyz") {
        next.run(request).await
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; only /healthz and /readyz answer now\n",
        )
            .into_response()
    }
}

/// Gives the request body [`Limits::body_timeout`] to arrive.
async fn limit_body(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let request = request.map(|body| {
        Body::new(TimeoutBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        })
    });
    next.run(request).await
}

/// A body that fails with [`io::ErrorKind::TimedOut`] once its deadline passes.
struct TimeoutBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    limit: Duration,
}

impl HttpBody for TimeoutBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(io::Error::other)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the request body did not arrive within {} s",
                    this.limit.as_secs()
                ),
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` (or what caused it) is a body that did not arrive in time.
#[must_use]
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |e| e.source()).any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::task::JoinHandle;
    use tokio::time::Instant;

    use crate::watch::Stop;

    fn limits() -> Limits {
        Limits {
            max_connections: 4,
            reserve: 2,
            ..Limits::default()
        }
    }

    fn app() -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(|| async { "ready\n" }))
            .route("/metrics", get(|| async { "metrics\n" }))
            .route(
                "/echo",
                post(|body: Body| async move {
                    match axum::body::to_bytes(body, 1024).await {
                        Ok(bytes) => (StatusCode::OK, bytes).into_response(),
                        Err(e) if timed_out(&e) => {
                            (StatusCode::REQUEST_TIMEOUT, "slow\n").into_response()
                        }
                        Err(_) => StatusCode::BAD_REQUEST.into_response(),
                    }
                }),
            )
    }

    struct Server {
        addr: std::net::SocketAddr,
        stop: Stop,
        task: JoinHandle<()>,
    }

    async fn start(limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Stop::default();
        let task = {
            let stop = stop.clone();
            tokio::spawn(async move { serve(listener, app(), limits, stop.wait()).await })
        };
        Server { addr, stop, task }
    }

    /// A client that has sent half a request line and nothing more.
    async fn slow(addr: std::net::SocketAddr) -> TcpStream {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /metr").await.unwrap();
        stream
    }

    /// Reads until the server closes (within a virtual minute); what it sent.
    async fn read_to_close(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut out));
        assert!(read.await.is_ok(), "the server left the connection open");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// One `GET path` with `Connection: close`; the whole response.
    async fn fetch(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        read_to_close(&mut stream).await
    }

    // Half a request line: the connection is closed once the header timeout passes, not before.
    #[tokio::test(start_paused = true)]
    async fn half_a_request_line_is_cut_off_after_the_header_timeout() {
        let server = start(limits()).await;
        let started = Instant::now();
        let mut stream = slow(server.addr).await;
        let answer = read_to_close(&mut stream).await;
        let waited = started.elapsed();
        assert!(!answer.contains("200 OK"), "{answer}");
        assert!(waited >= limits().header_timeout, "{waited:?}");
        assert!(waited < limits().header_timeout * 2, "{waited:?}");
        server.stop.request();
        server.task.await.unwrap();
    }

    // A keep-alive connection left idle after a request is closed after the same timeout.
    #[tokio::test(start_paused = true)]
    async fn an_idle_keep_alive_connection_is_closed() {
        let server = start(limits()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let answer = read_to_close(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(started.elapsed() >= limits().header_timeout);
        server.stop.request();
        server.task.await.unwrap();
    }

    // A body sent a byte at a time slower than the body timeout allows is cut off: the handler
    // sees the timeout (408 here), then the connection closes.
    #[tokio::test(start_paused = true)]
    async fn a_trickled_body_is_cut_off() {
        let server = start(limits()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            .await
            .unwrap();
        let started = Instant::now();
        let (mut reader, mut writer) = stream.into_split();
        let trickle = tokio::spawn(async move {
            for _ in 0..99 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if writer.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut out));
        assert!(read.await.is_ok(), "the trickled body was not cut off");
        let answer = String::from_utf8_lossy(&out);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        let waited = started.elapsed();
        assert!(waited >= limits().body_timeout, "{waited:?}");
        assert!(
            waited < limits().body_timeout + Duration::from_secs(2),
            "{waited:?}"
        );
        trickle.abort();
        // A body that arrives in time is served.
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
            .await
            .unwrap();
        let answer = read_to_close(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("hi"),
            "{answer}"
        );
        server.stop.request();
        server.task.await.unwrap();
    }

    // Slow clients hold every regular slot: /healthz and /readyz still answer through the
    // reserve, well before the slow clients time out; other paths get 503 there; past the
    // reserve a connection is closed at once; once the slow clients are gone, all is served.
    #[tokio::test(start_paused = true)]
    async fn health_answers_while_the_cap_is_reached() {
        let server = start(limits()).await;
        let started = Instant::now();
        let mut held = Vec::new();
        for _ in 0..limits().max_connections {
            held.push(slow(server.addr).await);
        }
        let answer = fetch(server.addr, "/healthz").await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
            "{answer}"
        );
        let answer = fetch(server.addr, "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let answer = fetch(server.addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            started.elapsed() < limits().reserve_header_timeout,
            "{:?}",
            started.elapsed()
        );

        // Fill the reserve too: the next connection is closed without an answer, at once.
        for _ in 0..limits().reserve {
            held.push(slow(server.addr).await);
        }
        let before = Instant::now();
        let answer = fetch(server.addr, "/healthz").await;
        assert_eq!(answer, "");
        assert!(before.elapsed() < limits().reserve_header_timeout);

        // The slow clients are cut off by the header timeout; the slots come back.
        for mut stream in held {
            read_to_close(&mut stream).await;
        }
        let answer = fetch(server.addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        server.stop.request();
        server.task.await.unwrap();
    }

    // A stop lets a request in flight finish, closes the idle connections, and serve returns.
    #[tokio::test(start_paused = true)]
    async fn shutdown_finishes_requests_in_flight() {
        let server = start(limits()).await;
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 12];
        idle.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"HTTP/1.1 200");
        // A body on its way when the stop comes.
        let mut busy = TcpStream::connect(server.addr).await.unwrap();
        busy.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        server.stop.request();
        tokio::time::sleep(Duration::from_millis(100)).await;
        busy.write_all(b"cd").await.unwrap();
        let answer = read_to_close(&mut busy).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("abcd"),
            "{answer}"
        );
        read_to_close(&mut idle).await;
        server.task.await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert!(TcpStream::connect(server.addr).await.is_err());
    }
}
