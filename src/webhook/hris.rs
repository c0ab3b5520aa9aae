//! The inbound HRIS termination webhook: `POST /webhooks/hris/termination`.
//!
//! A request is checked in this order, and each check that fails answers with its own status
//! and changes nothing: the body fits in [`MAX_BODY`] bytes (413) and arrives in time (408,
//! the listener's body timeout), the signature and timestamp pass the [`Verifier`] on the raw
//! bytes (401, or 409 for a replay), the body is a JSON object with a usable `userName`
//! (400). Only then is the [`TerminationSink`] asked to act; it answers whether the user was
//! deactivated, or why not (404 for a user scimctl does not know, 502/503 when the tenant
//! could not be changed). This module owns the HTTP surface; what "terminate" means
//! (deactivate through the applier, record the override) is the sink's business.
//!
//! The body is `{"userName": "...", "reason": "..."}`, `reason` optional. Other fields are
//! ignored, so an HRIS that sends more (an employee id, an effective date) still works; the
//! two fields that are read are checked strictly (strings, no control characters, bounded
//! length), because they end up in logs, the overrides file and plan warnings.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::inbound::{check_user_name, error, verified_body};
use super::signature::Verifier;

/// Where the endpoint is served.
pub const TERMINATION_PATH: &str = "/webhooks/hris/termination";
/// Largest accepted body, in bytes: a termination is a few hundred.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest accepted `reason`, in characters.
const MAX_REASON: usize = 1000;

/// What the sink did with a termination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Terminated {
    /// The user was deactivated on the tenant and the override recorded (200).
    Deactivated,
    /// The user was already inactive on the tenant; the override is recorded (200).
    AlreadyInactive,
    /// The override is recorded and the deactivation will be carried out shortly, for
    /// example by the next reconcile (202).
    Accepted,
}

impl Terminated {
    fn status(self) -> (StatusCode, &'static str) {
        match self {
            Terminated::Deactivated => (StatusCode::OK, "deactivated"),
            Terminated::AlreadyInactive => (StatusCode::OK, "alreadyInactive"),
            Terminated::Accepted => (StatusCode::ACCEPTED, "accepted"),
        }
    }
}

/// Why a termination was not carried out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TerminateError {
    /// scimctl manages no such user (404). Nothing was changed or recorded.
    #[error("unknown user `{0}`: not in desired state and not on the target")]
    UnknownUser(String),
    /// The deactivation was attempted and failed (502). The sender may try again.
    #[error("the deactivation failed: {0}")]
    Failed(String),
    /// The deactivation cannot be attempted now, e.g. while shutting down (503). The sender
    /// may try again.
    #[error("cannot deactivate now: {0}")]
    Unavailable(String),
    /// A safety rule holds the deactivation back, e.g. the user is `protected` (409). The
    /// termination is recorded; a person has to decide. Trying again changes nothing.
    #[error("the deactivation is held back by a safety rule: {0}")]
    Refused(String),
}

impl TerminateError {
    fn status(&self) -> StatusCode {
        match self {
            TerminateError::UnknownUser(_) => StatusCode::NOT_FOUND,
            TerminateError::Failed(_) => StatusCode::BAD_GATEWAY,
            TerminateError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            TerminateError::Refused(_) => StatusCode::CONFLICT,
        }
    }
}

/// Carries out a verified termination. `scimctl watch` implements it by deactivating the user
/// through the applier and recording the override; tests use fakes.
pub trait TerminationSink: Send + Sync + 'static {
    /// Deactivates `user_name` (as the HRIS wrote it; matched case-insensitively by the
    /// implementation) for `reason`.
    fn terminate<'a>(
        &'a self,
        user_name: &'a str,
        reason: Option<&'a str>,
    ) -> Pin<Box<dyn Future<Output = Result<Terminated, TerminateError>> + Send + 'a>>;
}

/// The request body. Unknown fields are ignored (see the module docs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TerminationRequest {
    user_name: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Clone)]
struct Hris {
    verifier: Arc<Verifier>,
    sink: Arc<dyn TerminationSink>,
    now_unix: fn() -> i64,
}

/// The endpoint, checking signatures against the wall clock.
pub fn router(verifier: Arc<Verifier>, sink: Arc<dyn TerminationSink>) -> Router {
    router_with_clock(verifier, sink, crate::apply::audit::now_unix)
}

/// [`router`] with the clock timestamps are checked against (Unix seconds), for tests.
pub fn router_with_clock(
    verifier: Arc<Verifier>,
    sink: Arc<dyn TerminationSink>,
    now_unix: fn() -> i64,
) -> Router {
    Router::new()
        .route(TERMINATION_PATH, post(terminate))
        .with_state(Hris {
            verifier,
            sink,
            now_unix,
        })
}

async fn terminate(State(hris): State<Hris>, headers: HeaderMap, body: Body) -> Response {
    let (body, verified) = match verified_body(
        &hris.verifier,
        &headers,
        body,
        MAX_BODY,
        (hris.now_unix)(),
        "hris",
    )
    .await
    {
        Ok(verified) => verified,
        Err(answer) => return answer,
    };
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => {
            tracing::warn!(reason = %message, "hris: termination refused");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    let user_name = request.user_name.trim();
    match hris
        .sink
        .terminate(user_name, request.reason.as_deref())
        .await
    {
        Ok(done) => {
            let (status, word) = done.status();
            tracing::info!(user = user_name, status = word, "hris: user terminated");
            (
                status,
                axum::Json(json!({ "status": word, "userName": user_name })),
            )
                .into_response()
        }
        Err(e) => {
            if !matches!(e, TerminateError::UnknownUser(_)) {
                // Nothing was done, so the very same signed request may come again.
                hris.verifier.release(&verified);
            }
            tracing::warn!(user = user_name, error = %e, "hris: termination not carried out");
            error(e.status(), &e)
        }
    }
}

/// The body as a request, or what is wrong with it.
fn parse(body: &[u8]) -> Result<TerminationRequest, String> {
    let request: TerminationRequest = serde_json::from_slice(body).map_err(|e| {
        format!(
            "the body is not a termination ({{\"userName\": \"...\", \"reason\": \"...\"}}): {e}"
        )
    })?;
    check_user_name(&request.user_name)?;
    if let Some(reason) = &request.reason {
        if reason.chars().count() > MAX_REASON {
            return Err(format!("`reason` is longer than {MAX_REASON} characters"));
        }
        if reason.chars().any(char::is_control) {
            return Err("`reason` contains control characters".into());
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::Value;

    use super::*;
    use crate::scim::Secret;
    use crate::webhook::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

    const NOW: i64 = 1_795_000_000;
    const SECRET: &str = "hris-secret-77aa-never-printed";

    /// Records calls; knows only `ana@northwind.example`; can be told to fail.
    #[derive(Default)]
    struct FakeSink {
        calls: Mutex<Vec<(String, Option<String>)>>,
        fail: Mutex<Option<TerminateError>>,
    }

    impl TerminationSink for FakeSink {
        fn terminate<'a>(
            &'a self,
            user_name: &'a str,
            reason: Option<&'a str>,
        ) -> Pin<Box<dyn Future<Output = Result<Terminated, TerminateError>> + Send + 'a>> {
            Box::pin(async move {
                self.calls
                    .lock()
                    .unwrap()
                    .push((user_name.to_owned(), reason.map(str::to_owned)));
                if let Some(e) = self.fail.lock().unwrap().take() {
                    return Err(e);
                }
                if user_name.eq_ignore_ascii_case("ana@northwind.example") {
                    Ok(Terminated::Deactivated)
                } else {
                    Err(TerminateError::UnknownUser(user_name.to_owned()))
                }
            })
        }
    }

    struct Server {
        url: String,
        sink: Arc<FakeSink>,
        http: reqwest::Client,
    }

    async fn server() -> Server {
        let sink = Arc::new(FakeSink::default());
        let verifier = Arc::new(Verifier::new(Secret::new(SECRET)));
        let app = router_with_clock(verifier, sink.clone(), || NOW);
        let addr = crate::webhook::inbound::serve_for_test(app).await;
        let url = format!("http://{addr}{TERMINATION_PATH}");
        Server {
            url,
            sink,
            http: reqwest::Client::new(),
        }
    }

    impl Server {
        /// Sends `body` with `timestamp` and `signature` headers (each left out when `None`).
        async fn send(
            &self,
            body: &str,
            timestamp: Option<i64>,
            signature: Option<&str>,
        ) -> (u16, Value) {
            let mut request = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .body(body.to_owned());
            if let Some(ts) = timestamp {
                request = request.header(TIMESTAMP_HEADER, ts.to_string());
            }
            if let Some(sig) = signature {
                request = request.header(SIGNATURE_HEADER, sig);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, json)
        }

        /// Sends `body` signed with the right secret at `timestamp`.
        async fn signed(&self, body: &str, timestamp: i64) -> (u16, Value) {
            let sig = sign(&Secret::new(SECRET), timestamp, body.as_bytes());
            self.send(body, Some(timestamp), Some(&sig)).await
        }

        fn calls(&self) -> Vec<(String, Option<String>)> {
            self.sink.calls.lock().unwrap().clone()
        }
    }

    const ANA: &str = r#"{"userName": "ana@northwind.example", "reason": "left the company"}"#;

    // A valid, signed termination reaches the sink once and answers 200 with the status.
    #[tokio::test]
    async fn valid_termination() {
        let s = server().await;
        let (status, body) = s.signed(ANA, NOW - 10).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"status": "deactivated", "userName": "ana@northwind.example"})
        );
        assert_eq!(
            s.calls(),
            vec![(
                "ana@northwind.example".to_owned(),
                Some("left the company".to_owned())
            )]
        );
        // Unknown fields are ignored, and `reason` is optional.
        let extra = r#"{"userName": " ana@northwind.example ", "employeeId": 42}"#;
        let (status, _) = s.signed(extra, NOW).await;
        assert_eq!(status, 200);
        assert_eq!(s.calls()[1], ("ana@northwind.example".to_owned(), None));
    }

    // Tampered body, stale or future timestamp, wrong secret, missing headers and a replay
    // are refused with 401 (409 for the replay), and the sink is never called for them.
    #[tokio::test]
    async fn bad_signatures_change_nothing() {
        let s = server().await;
        let sig = sign(&Secret::new(SECRET), NOW, ANA.as_bytes());
        let tampered = ANA.replace("ana@", "bob@");
        let (status, body) = s.send(&tampered, Some(NOW), Some(&sig)).await;
        assert_eq!(status, 401);
        assert_eq!(
            body["error"],
            "the signature does not match the timestamp and body"
        );
        let (status, body) = s.signed(ANA, NOW - 301).await;
        assert_eq!(status, 401);
        assert!(
            body["error"].as_str().unwrap().contains("301 s ago"),
            "{body}"
        );
        assert_eq!(s.signed(ANA, NOW + 301).await.0, 401);
        let wrong = sign(&Secret::new("not-the-secret"), NOW, ANA.as_bytes());
        assert_eq!(s.send(ANA, Some(NOW), Some(&wrong)).await.0, 401);
        assert_eq!(s.send(ANA, None, Some(&sig)).await.0, 401);
        let (status, body) = s.send(ANA, Some(NOW), None).await;
        assert_eq!(status, 401);
        assert_eq!(body["error"], "missing X-Scimctl-Signature header");
        assert!(s.calls().is_empty(), "{:?}", s.calls());

        // The genuine request once, then the same bytes again: a replay.
        assert_eq!(s.send(ANA, Some(NOW), Some(&sig)).await.0, 200);
        let (status, body) = s.send(ANA, Some(NOW), Some(&sig)).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(s.calls().len(), 1);
        assert!(!body.to_string().contains(SECRET));
    }

    // Malformed bodies are 400 after the signature passed, oversize bodies 413 before it is
    // checked; the sink is not called.
    #[tokio::test]
    async fn malformed_and_oversize_bodies() {
        let s = server().await;
        for (body, expected) in [
            ("not json", "the body is not a termination"),
            ("[]", "the body is not a termination"),
            (r#"{"reason": "x"}"#, "missing field `userName`"),
            (r#"{"userName": 42}"#, "invalid type"),
            (r#"{"userName": "  "}"#, "`userName` is empty"),
            (
                r#"{"userName": "ana@northwind.example\u001b[2J"}"#,
                "control characters",
            ),
            (
                r#"{"userName": "ana@northwind.example", "reason": "a\nb"}"#,
                "control characters",
            ),
        ] {
            let (status, reply) = s.signed(body, NOW).await;
            assert_eq!(status, 400, "{body}: {reply}");
            let message = reply["error"].as_str().unwrap();
            assert!(message.contains(expected), "{body}: {message}");
        }
        let huge = format!(
            r#"{{"userName": "ana@northwind.example", "reason": "{}"}}"#,
            "x".repeat(MAX_BODY)
        );
        let (status, reply) = s.signed(&huge, NOW).await;
        assert_eq!(status, 413);
        assert_eq!(reply["error"], "the body is larger than 64 KiB");
        assert!(s.calls().is_empty());
    }

    // An unknown user is 404 and the sink changed nothing; a failed deactivation is 502 and
    // may be sent again unchanged (no 409), since nothing was done.
    #[tokio::test]
    async fn unknown_user_and_failures() {
        let s = server().await;
        let body = r#"{"userName": "ghost@northwind.example"}"#;
        let (status, reply) = s.signed(body, NOW).await;
        assert_eq!(status, 404);
        assert_eq!(
            reply["error"],
            "unknown user `ghost@northwind.example`: not in desired state and not on the target"
        );
        *s.sink.fail.lock().unwrap() = Some(TerminateError::Failed("PATCH /Users/7 → 503".into()));
        let sig = sign(&Secret::new(SECRET), NOW, ANA.as_bytes());
        let (status, reply) = s.send(ANA, Some(NOW), Some(&sig)).await;
        assert_eq!(status, 502);
        assert_eq!(
            reply["error"],
            "the deactivation failed: PATCH /Users/7 → 503"
        );
        let (status, _) = s.send(ANA, Some(NOW), Some(&sig)).await;
        assert_eq!(
            status, 200,
            "the retry of a failed termination is not a replay"
        );
        *s.sink.fail.lock().unwrap() = Some(TerminateError::Unavailable("shutting down".into()));
        let (status, _) = s.signed(ANA, NOW - 1).await;
        assert_eq!(status, 503);
    }

    // Only POST is served.
    #[tokio::test]
    async fn other_methods() {
        let s = server().await;
        let status = s.http.get(&s.url).send().await.unwrap().status();
        assert_eq!(status.as_u16(), 405);
    }
}
