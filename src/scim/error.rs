//! `ScimError`: the one error type of the client layer, and the predicates callers decide on
//! (retryable, conflict, precondition failed, not found).
//!
//! Messages name the request as `METHOD /path → status scimType: detail`. The path never
//! carries the query string (filters may hold personal data) and no message ever carries a
//! request body, a header or a token.

use reqwest::StatusCode;

/// What went wrong talking to a SCIM server.
#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    /// The server answered with an error status.
    #[error("{method} {path} → {status}{}{}", scim_type.as_ref().map(|t| format!(" {t}")).unwrap_or_default(), detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        /// HTTP method.
        method: String,
        /// URL path, without the query.
        path: String,
        /// HTTP status.
        status: StatusCode,
        /// RFC 7644 `scimType`, when the body had one.
        scim_type: Option<String>,
        /// The body's detail or message.
        detail: Option<String>,
        /// `Retry-After` (or rate-limit reset) the server asked for, in seconds.
        retry_after: Option<u64>,
    },
    /// The request did not complete: connect failure, timeout, connection dropped.
    #[error("{method} {path}: {kind}: {message}")]
    Transport {
        /// HTTP method.
        method: String,
        /// URL path, without the query.
        path: String,
        /// What kind of failure.
        kind: TransportKind,
        /// The transport's own description (never contains headers or bodies).
        message: String,
    },
    /// The server answered 2xx with a body that is not the expected SCIM JSON.
    #[error("{method} {path}: unexpected response body: {message}")]
    Decode {
        /// HTTP method.
        method: String,
        /// URL path, without the query.
        path: String,
        /// What did not parse.
        message: String,
    },
    /// Getting an OAuth token failed.
    #[error("oauth token request to {path} failed: {message}")]
    Auth {
        /// Token URL path.
        path: String,
        /// What failed (never the secret).
        message: String,
    },
    /// The client's configuration is unusable (bad URL, plain http to a remote host).
    #[error("{0}")]
    Config(String),
    /// The retry budget of this client is spent for now; the last error is attached.
    #[error(
        "retry budget exhausted (the client retries at most {budget} in a burst, then {percent} \
         % of its requests and {per_minute} a minute); last error: {last}"
    )]
    BudgetExhausted {
        /// Most retries saved up.
        budget: u32,
        /// Retries earned per 100 requests.
        percent: u32,
        /// Retries earned per minute.
        per_minute: u32,
        /// The error that would have been retried.
        last: Box<ScimError>,
    },
    /// The `/Bulk` request that carried this write failed as a whole (or its answer had no
    /// result for it).
    #[error("{method} {path} (sent in a Bulk request): {why}")]
    BulkFailed {
        /// The write's HTTP method.
        method: String,
        /// The write's URL path.
        path: String,
        /// Whether the server may have carried it out.
        unsure: bool,
        /// What failed.
        why: String,
    },
    /// A listing kept changing under us: totals or ids disagreed between pages.
    #[error("listing {endpoint} did not settle after {attempts} attempts: {why}")]
    Unstable {
        /// `Users` or `Groups`.
        endpoint: &'static str,
        /// How many full listings were tried.
        attempts: u32,
        /// What disagreed.
        why: String,
    },
}

/// Kinds of transport failure, which decide whether a retry is safe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection was never made: the request was not sent.
    Connect,
    /// No answer within the timeout: the server may have acted.
    Timeout,
    /// The connection broke mid-request or mid-response: the server may have acted.
    Interrupted,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connect error",
            TransportKind::Timeout => "timed out",
            TransportKind::Interrupted => "connection interrupted",
        })
    }
}

impl ScimError {
    /// The HTTP status, when the server answered.
    #[must_use]
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ScimError::Status { status, .. } => Some(*status),
            ScimError::BudgetExhausted { last, .. } => last.status(),
            _ => None,
        }
    }

    /// The `scimType` of an error answer.
    #[must_use]
    pub fn scim_type(&self) -> Option<&str> {
        match self {
            ScimError::Status { scim_type, .. } => scim_type.as_deref(),
            _ => None,
        }
    }

    /// Whether sending the same request again could succeed and cannot do harm twice: 429,
    /// 503 (the server did not act), 502/504 and interrupted or timed-out transports (the
    /// server may have acted, so only for requests the caller marks idempotent), and connect
    /// errors (nothing was sent).
    #[must_use]
    pub fn is_retryable(&self, idempotent: bool) -> bool {
        match self {
            ScimError::Status { status, .. } => match status.as_u16() {
                429 | 503 => true,
                502 | 504 => idempotent,
                _ => false,
            },
            ScimError::Transport { kind, .. } => match kind {
                TransportKind::Connect => true,
                TransportKind::Timeout | TransportKind::Interrupted => idempotent,
            },
            _ => false,
        }
    }

    /// Whether the server may have carried out the request although no success came back
    /// (a POST that must be looked up rather than resent).
    #[must_use]
    pub fn is_ambiguous(&self) -> bool {
        match self {
            ScimError::Status { status, .. } => matches!(status.as_u16(), 502 | 504),
            ScimError::Transport { kind, .. } => *kind != TransportKind::Connect,
            ScimError::BudgetExhausted { last, .. } => last.is_ambiguous(),
            ScimError::BulkFailed { unsure, .. } => *unsure,
            _ => false,
        }
    }

    /// 409: the object already exists (uniqueness) or conflicts with another.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }

    /// The object changed since the version we sent: 412, or Genesys Cloud's 400 `invalidVers`.
    #[must_use]
    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(StatusCode::PRECONDITION_FAILED)
            || (self.status() == Some(StatusCode::BAD_REQUEST)
                && self.scim_type() == Some("invalidVers"))
    }

    /// 404: no such object.
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// 401: credentials missing, wrong or expired.
    #[must_use]
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// 429: the server's rate limit.
    #[must_use]
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(StatusCode::TOO_MANY_REQUESTS)
    }

    /// Whether the server paced the request rather than failed it: a 429 that says when to
    /// come back.
    #[must_use]
    pub fn is_paced(&self) -> bool {
        matches!(self, ScimError::Status { status, retry_after: Some(_), .. } if status.as_u16() == 429)
    }

    /// The delay the server asked for, in seconds.
    #[must_use]
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ScimError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, scim_type: Option<&str>) -> ScimError {
        ScimError::Status {
            method: "PATCH".into(),
            path: "/scim/v2/Users/1".into(),
            status: StatusCode::from_u16(code).expect("valid"),
            scim_type: scim_type.map(str::to_owned),
            detail: Some("changed".into()),
            retry_after: None,
        }
    }

    fn transport(kind: TransportKind) -> ScimError {
        ScimError::Transport {
            method: "POST".into(),
            path: "/Users".into(),
            kind,
            message: "x".into(),
        }
    }

    /// The message names method, path, status, scimType and detail on one line.
    #[test]
    fn message_shape() {
        assert_eq!(
            status(409, Some("uniqueness")).to_string(),
            "PATCH /scim/v2/Users/1 → 409 Conflict uniqueness: changed"
        );
    }

    /// Which failures are retried, for idempotent and non-idempotent requests.
    #[test]
    fn retryable_table() {
        for (code, idem, non_idem) in [
            (429, true, true),
            (503, true, true),
            (502, true, false),
            (504, true, false),
            (500, false, false),
            (400, false, false),
            (409, false, false),
            (412, false, false),
        ] {
            assert_eq!(status(code, None).is_retryable(true), idem, "{code}");
            assert_eq!(status(code, None).is_retryable(false), non_idem, "{code}");
        }
        assert!(transport(TransportKind::Connect).is_retryable(false));
        assert!(!transport(TransportKind::Timeout).is_retryable(false));
        assert!(transport(TransportKind::Interrupted).is_retryable(true));
        assert!(transport(TransportKind::Timeout).is_ambiguous());
        assert!(!transport(TransportKind::Connect).is_ambiguous());
    }

    /// 412 and Genesys's 400 invalidVers both mean "the object moved".
    #[test]
    fn precondition_predicates() {
        assert!(status(412, None).is_precondition_failed());
        assert!(status(400, Some("invalidVers")).is_precondition_failed());
        assert!(!status(400, Some("invalidValue")).is_precondition_failed());
        assert!(status(409, Some("uniqueness")).is_conflict());
        assert!(status(404, None).is_not_found());
    }
}
