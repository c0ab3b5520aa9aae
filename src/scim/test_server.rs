//! A loopback server for the client's unit tests: one route, answering JSON the test makes
//! from the request's number, counting requests; or the routes a test builds. The client's base is the server's SCIM
//! root (`/api/v2/scim/v2`), so Platform API paths land on the same host, as on Genesys.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::client::{ClientConfig, ScimClient};

/// A running server: the client that reaches it and how many requests it has answered.
pub(crate) struct TestServer {
    pub(crate) client: ScimClient,
    pub(crate) calls: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves `path` (any method), answering `answer(n)` to the n-th request (from 1).
    pub(crate) async fn start(path: &'static str, answer: fn(u32) -> Value) -> TestServer {
        let calls = Arc::new(AtomicU32::new(0));
        let app = axum::Router::new()
            .route(
                path,
                axum::routing::any(move |State(calls): State<Arc<AtomicU32>>| async move {
                    Json(answer(calls.fetch_add(1, Ordering::SeqCst) + 1))
                }),
            )
            .with_state(Arc::clone(&calls));
        TestServer::serve(app, calls).await
    }

    /// Serves the routes of `app` as they are (its request count stays 0).
    pub(crate) async fn routes(app: axum::Router) -> TestServer {
        TestServer::serve(app, Arc::default()).await
    }

    async fn serve(app: axum::Router, calls: Arc<AtomicU32>) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        let client = ScimClient::new(ClientConfig::new(format!("http://{addr}/api/v2/scim/v2")))
            .expect("client");
        TestServer {
            client,
            calls,
            task,
        }
    }

    /// How many requests it has answered.
    pub(crate) fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
