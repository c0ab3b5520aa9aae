//! What every inbound webhook checks before it reads a body: the size (413), the arrival in
//! time (408, the listener's body timeout), and the signature and timestamp on the raw bytes
//! (401, or 409 for a replay). The HRIS termination endpoint and the password-sync endpoint
//! both start with [`verified_body`], so neither can skip a check the other makes.

use axum::body::{Body, Bytes, to_bytes};
use axum::http::{HeaderMap, StatusCode, header::CONTENT_LENGTH};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::signature::{Rejection, SIGNATURE_HEADER, TIMESTAMP_HEADER, Verified, Verifier};

/// Longest accepted `userName`, in characters.
pub(crate) const MAX_USER_NAME: usize = 256;

/// A JSON error answer: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

/// The body, once it fits in `max_body` bytes, arrived in time and carries a valid, fresh,
/// unreplayed signature; otherwise the answer to send (logged at warn under `endpoint`,
/// naming the reason, never the body or the signature).
pub(crate) async fn verified_body(
    verifier: &Verifier,
    headers: &HeaderMap,
    body: Body,
    max_body: usize,
    now_unix: i64,
    endpoint: &str,
) -> Result<(Bytes, Verified), Response> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format_args!("the body is larger than {} KiB", max_body / 1024),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body as u64) {
        return Err(too_large());
    }
    // Too slow (the listener's body timeout), past the limit, or cut off: either way there is
    // no whole body to check a signature on.
    let body = match to_bytes(body, max_body).await {
        Ok(body) => body,
        Err(e) if crate::watch::listener::timed_out(&e) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the body did not arrive in time",
            ));
        }
        Err(_) => return Err(too_large()),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match verifier.verify(
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now_unix,
    ) {
        Ok(passed) => Ok((body, passed)),
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "{endpoint}: request refused");
            Err(rejected(&rejection))
        }
    }
}

fn rejected(rejection: &Rejection) -> Response {
    error(rejection.status(), rejection)
}

/// Checks a `userName` a request names: not empty (after trimming), at most
/// [`MAX_USER_NAME`] characters, no control characters (it ends up in logs and files).
pub(crate) fn check_user_name(user_name: &str) -> Result<(), String> {
    let user_name = user_name.trim();
    if user_name.is_empty() {
        return Err("`userName` is empty".into());
    }
    if user_name.chars().count() > MAX_USER_NAME {
        return Err(format!(
            "`userName` is longer than {MAX_USER_NAME} characters"
        ));
    }
    if user_name.chars().any(char::is_control) {
        return Err("`userName` contains control characters".into());
    }
    Ok(())
}

/// Serves `app` on a free loopback port for a test; returns the address.
#[cfg(test)]
pub(crate) async fn serve_for_test(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
