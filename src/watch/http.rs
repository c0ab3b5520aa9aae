//! Watch's HTTP side: `/healthz` (the process is up), `/readyz` (the last reconcile
//! succeeded, the desired state on disk is valid, no quarantine; otherwise 503 with every
//! reason) and `/metrics` (Prometheus text format). Other routes (the HRIS webhook) are
//! merged in by the caller.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Metrics;

/// The health, readiness and metrics routes over `metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(metrics)
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(not) => {
            let mut body = String::from("not ready:\n");
            for why in not.0 {
                body.push_str("- ");
                body.push_str(&why.replace('\n', "\n  "));
                body.push('\n');
            }
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Serves `app` on an ephemeral loopback port; returns the base URL.
    async fn serve(app: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    async fn get_text(base: &str, path: &str) -> (StatusCode, String) {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.text().await.unwrap())
    }

    #[tokio::test]
    async fn endpoints_answer_from_the_metrics() {
        let metrics = Arc::new(Metrics::default());
        let app = serve(router(metrics.clone())).await;
        assert_eq!(get_text(&app, "/healthz").await.0, StatusCode::OK);
        let (status, body) = get_text(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no reconcile has finished yet"), "{body}");
        metrics.reconciled("start", "success", Duration::ZERO, 0.0);
        assert_eq!(get_text(&app, "/readyz").await.0, StatusCode::OK);
        metrics.desired_invalid(Some("users.yaml:4:7: unknown field `titel`".into()));
        let (status, body) = get_text(&app, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("users.yaml:4:7: unknown field"), "{body}");
        let (status, body) = get_text(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("scimctl_desired_state_valid 0"), "{body}");
    }
}
