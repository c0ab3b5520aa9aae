//! The inbound password-sync endpoint: `POST /webhooks/password` (issue 19).
//!
//! An upstream system (the seeds' password-synchronisation service, an HR portal) sends
//! `{"userName": "...", "password": "..."}`, signed like the HRIS endpoint with its own
//! secret (`watch.passwordSync.secret`). A request is checked in this order, and each check
//! that fails answers with its own status and changes nothing:
//!
//! 1. the body fits in [`MAX_BODY`] bytes (413), arrives in time (408), and its signature and
//!    timestamp verify on the raw bytes (401, 409 for a replay): the checks the HRIS endpoint
//!    makes, in one shared function;
//! 2. the body is a JSON object with a usable `userName` and a string `password` (400);
//! 3. the [`PasswordSink`] decides: a user scimctl does not manage (404), a password that
//!    breaks `policy.password` (422, naming the rules it breaks), a rule that holds it back
//!    (409: a protected user, a user whose password comes from the desired state, a target
//!    that does not let clients change passwords), the tenant failing (502/503). A password
//!    whose fingerprint matches the one last set answers 200 `unchanged` without a request
//!    to the tenant; otherwise it is set and answers 200 `set`.
//!
//! The password lives in memory only for the request: the raw body and the parsed value are
//! overwritten (`zeroize`) once they are no longer needed, and no answer, log line, error or
//! `Debug` output contains it. (Copies the HTTP stack makes while reading the socket are out
//! of reach; they are freed with the request.)

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
use zeroize::Zeroize;

use super::inbound::{check_user_name, error, verified_body};
use super::signature::Verifier;
use crate::scim::Secret;

/// Where the endpoint is served.
pub const PASSWORD_PATH: &str = "/webhooks/password";
/// Largest accepted body, in bytes: a userName and a password are a few hundred.
pub const MAX_BODY: usize = 16 * 1024;

/// What the sink did with a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordSet {
    /// The tenant accepted the password and its fingerprint is recorded (200 `set`).
    Set,
    /// The password is the one last set (its fingerprint matches): nothing was sent to the
    /// tenant (200 `unchanged`).
    Unchanged,
}

impl PasswordSet {
    fn word(self) -> &'static str {
        match self {
            PasswordSet::Set => "set",
            PasswordSet::Unchanged => "unchanged",
        }
    }
}

/// Why a password was not set. Never carries the password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordSyncError {
    /// scimctl manages no such user (404).
    #[error("unknown user `{0}`: not in the desired state")]
    UnknownUser(String),
    /// The password breaks `policy.password` (422); the rules it breaks, by name.
    #[error("the password does not meet policy.password: it breaks {}", .0.join(", "))]
    Weak(Vec<&'static str>),
    /// A rule holds the change back (409): trying the same request again changes nothing.
    #[error("the password is not set: {0}")]
    Refused(String),
    /// Setting it was attempted and failed (502). The sender may try again.
    #[error("setting the password failed: {0}")]
    Failed(String),
    /// It cannot be attempted now, e.g. while shutting down (503). The sender may try again.
    #[error("cannot set the password now: {0}")]
    Unavailable(String),
}

impl PasswordSyncError {
    fn status(&self) -> StatusCode {
        match self {
            PasswordSyncError::UnknownUser(_) => StatusCode::NOT_FOUND,
            PasswordSyncError::Weak(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PasswordSyncError::Refused(_) => StatusCode::CONFLICT,
            PasswordSyncError::Failed(_) => StatusCode::BAD_GATEWAY,
            PasswordSyncError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Whether the very same signed request may come again (nothing was decided about it).
    fn retryable(&self) -> bool {
        matches!(
            self,
            PasswordSyncError::Failed(_) | PasswordSyncError::Unavailable(_)
        )
    }
}

/// Carries out a verified password. `scimctl watch` implements it through the one pipeline
/// (managed and protected checks, policy, fingerprint, the applier); tests use fakes.
pub trait PasswordSink: Send + Sync + 'static {
    /// Sets the password of `user_name` (as the sender wrote it; matched case-insensitively
    /// by the implementation).
    fn set_password<'a>(
        &'a self,
        user_name: &'a str,
        password: Secret,
    ) -> Pin<Box<dyn Future<Output = Result<PasswordSet, PasswordSyncError>> + Send + 'a>>;
}

/// The request body. Unknown fields are ignored. Its `Debug` shows no password.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordRequest {
    user_name: String,
    password: String,
}

impl Drop for PasswordRequest {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

#[derive(Clone)]
struct Endpoint {
    verifier: Arc<Verifier>,
    sink: Arc<dyn PasswordSink>,
    now_unix: fn() -> i64,
}

/// The endpoint, checking signatures against the wall clock.
pub fn router(verifier: Arc<Verifier>, sink: Arc<dyn PasswordSink>) -> Router {
    router_with_clock(verifier, sink, crate::apply::audit::now_unix)
}

/// [`router`] with the clock timestamps are checked against (Unix seconds), for tests.
pub fn router_with_clock(
    verifier: Arc<Verifier>,
    sink: Arc<dyn PasswordSink>,
    now_unix: fn() -> i64,
) -> Router {
    Router::new()
        .route(PASSWORD_PATH, post(receive))
        .with_state(Endpoint {
            verifier,
            sink,
            now_unix,
        })
}

async fn receive(State(sync): State<Endpoint>, headers: HeaderMap, body: Body) -> Response {
    let (body, verified) = match verified_body(
        &sync.verifier,
        &headers,
        body,
        MAX_BODY,
        (sync.now_unix)(),
        "password-sync",
    )
    .await
    {
        Ok(verified) => verified,
        Err(answer) => return answer,
    };
    // The only reference left: taken over without a copy, so overwriting it reaches the
    // bytes the signature was checked on.
    let mut raw = Vec::from(body);
    let parsed = parse(&raw);
    raw.zeroize();
    let (user_name, password) = match parsed {
        Ok(request) => {
            let mut request = request;
            let password = Secret::new(std::mem::take(&mut request.password));
            (request.user_name.trim().to_owned(), password)
        }
        Err(message) => {
            tracing::warn!(reason = %message, "password-sync: request refused");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    match sync.sink.set_password(&user_name, password).await {
        Ok(done) => {
            tracing::info!(user = %user_name, status = done.word(), "password-sync: done");
            (
                StatusCode::OK,
                axum::Json(json!({ "status": done.word(), "userName": user_name })),
            )
                .into_response()
        }
        Err(e) => {
            if e.retryable() {
                sync.verifier.release(&verified);
            }
            tracing::warn!(user = %user_name, error = %e, "password-sync: password not set");
            let mut answer = json!({ "error": e.to_string() });
            if let PasswordSyncError::Weak(rules) = &e {
                answer["failed"] = json!(rules);
            }
            (e.status(), axum::Json(answer)).into_response()
        }
    }
}

/// The body as a request, or what is wrong with it. The message never quotes the body (a
/// JSON error can echo a value, and the value may be the password): only where it failed.
fn parse(body: &[u8]) -> Result<PasswordRequest, String> {
    let request: PasswordRequest = serde_json::from_slice(body).map_err(|e| {
        // "missing field `x`" and "duplicate field `x`" name a field; every other message
        // ("invalid type: string \"...\"", ...) may quote a value, so only its place is said.
        let text = e.to_string();
        let what = if text.starts_with("missing field") || text.starts_with("duplicate field") {
            text
        } else {
            format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            )
        };
        format!(
            "the body is not a password-sync request ({{\"userName\": \"...\", \"password\": \
             \"...\"}}): {what}"
        )
    })?;
    check_user_name(&request.user_name)?;
    if request.password.is_empty() {
        return Err("`password` is empty".into());
    }
    Ok(request)
}

#[cfg(test)]
mod tests;
