//! The retry decision: given a failed attempt, wait how long before the next one, or stop.
//!
//! Pure and synchronous, so every branch is unit-tested without a clock: the caller passes
//! the attempt number and a jitter draw in `[0, 1)`, and sleeps on tokio time itself.
//! `Retry-After` is read in both RFC 9110 forms (delay seconds or an HTTP date; a date is
//! measured against the response's own `Date` header, never the local clock), and Genesys
//! Cloud's `inin-ratelimit-reset` (seconds) is honoured when `Retry-After` is absent.

use std::time::Duration;

use super::error::ScimError;

/// How failed requests are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry; doubled for each later one.
    pub base: Duration,
    /// Largest backoff delay (before jitter).
    pub cap: Duration,
    /// Most attempts for one request, the first included.
    pub max_attempts: u32,
    /// Most retries over the client's lifetime (all requests together). A budget rather than
    /// only a per-request maximum keeps an outage from multiplying load.
    pub budget: u32,
    /// A server asking to wait longer than this is not waited for: the error surfaces.
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_attempts: 8,
            budget: 1_000,
            max_server_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`, after attempt `attempt` (1-based) failed with
    /// `error`; `None` when the error must surface. `idempotent` says whether the request may
    /// safely be sent twice. `jitter` is a uniform draw in `[0, 1)`.
    #[must_use]
    pub fn classify(
        &self,
        error: &ScimError,
        attempt: u32,
        idempotent: bool,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || !error.is_retryable(idempotent) {
            return None;
        }
        let backoff = self.backoff(attempt, jitter);
        match error.retry_after() {
            Some(secs) => {
                let asked = Duration::from_secs(secs);
                if asked > self.max_server_delay {
                    return None;
                }
                // Wait what the server asked, plus a little jitter so that concurrent
                // callers do not all return in the same instant.
                Some(asked + self.base.mul_f64(jitter.clamp(0.0, 1.0)))
            }
            None => Some(backoff),
        }
    }

    /// Exponential backoff with "equal jitter": half the capped delay is fixed, half random,
    /// so a retry never comes instantly and never all at once.
    #[must_use]
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1 << exp).min(self.cap);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Reads a `Retry-After` value: delay seconds, or an HTTP date measured against the
/// response's `Date` header. A date without a `Date` header to compare with gives `None`
/// (the caller then backs off by its own schedule).
#[must_use]
pub fn parse_retry_after(value: &str, response_date: Option<&str>) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    if let Ok(secs) = value.parse::<f64>() {
        // Not RFC 9110, but seen in the wild: fractional seconds, rounded up.
        return (secs.is_finite() && secs >= 0.0).then(|| {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let whole = secs.ceil() as u64;
            whole
        });
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now = httpdate::parse_http_date(response_date?.trim()).ok()?;
    Some(at.duration_since(now).map_or(0, |d| d.as_secs()))
}

/// The server-requested delay from a response's headers: `Retry-After`, else Genesys
/// Cloud's `inin-ratelimit-reset` (seconds until the window resets). `header` looks a header up by lower-case name.
#[must_use]
pub fn server_delay<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Option<u64> {
    let text = header;
    text("retry-after")
        .and_then(|v| parse_retry_after(v, text("date")))
        .or_else(|| text("inin-ratelimit-reset").and_then(|v| v.trim().parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::TransportKind;
    use reqwest::StatusCode;

    fn answer(code: u16, retry_after: Option<u64>) -> ScimError {
        ScimError::Status {
            method: "GET".into(),
            path: "/Users".into(),
            status: StatusCode::from_u16(code).expect("valid"),
            scim_type: None,
            detail: None,
            retry_after,
        }
    }

    /// Backoff doubles from the base, is capped, and jitter moves it within [half, full].
    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(125));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(250));
        assert_eq!(p.backoff(3, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(30, 1.0), Duration::from_secs(30));
        assert_eq!(p.backoff(30, 0.0), Duration::from_secs(15));
    }

    /// Retry-After wins over the schedule; too long a wait surfaces the error instead.
    #[test]
    fn server_delay_is_honoured() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.classify(&answer(429, Some(7)), 1, false, 0.0),
            Some(Duration::from_secs(7))
        );
        assert_eq!(p.classify(&answer(429, Some(3600)), 1, true, 0.0), None);
        assert_eq!(
            p.classify(&answer(503, None), 2, false, 1.0),
            Some(Duration::from_millis(500))
        );
    }

    /// Only safe failures are retried, and never past `max_attempts`.
    #[test]
    fn what_is_retried() {
        let p = RetryPolicy::default();
        assert!(p.classify(&answer(500, None), 1, true, 0.5).is_none());
        assert!(p.classify(&answer(404, None), 1, true, 0.5).is_none());
        assert!(p.classify(&answer(504, None), 1, false, 0.5).is_none());
        assert!(p.classify(&answer(504, None), 1, true, 0.5).is_some());
        assert!(
            p.classify(&answer(429, None), p.max_attempts, true, 0.5)
                .is_none()
        );
        let timeout = ScimError::Transport {
            method: "POST".into(),
            path: "/Users".into(),
            kind: TransportKind::Timeout,
            message: "t".into(),
        };
        assert!(p.classify(&timeout, 1, false, 0.5).is_none());
        assert!(p.classify(&timeout, 1, true, 0.5).is_some());
    }

    /// Both Retry-After forms, and the Genesys header as a fallback.
    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120", None), Some(120));
        assert_eq!(parse_retry_after(" 1.2 ", None), Some(2));
        assert_eq!(
            parse_retry_after(
                "Wed, 21 Oct 2026 07:28:30 GMT",
                Some("Wed, 21 Oct 2026 07:28:00 GMT")
            ),
            Some(30)
        );
        assert_eq!(
            parse_retry_after(
                "Wed, 21 Oct 2026 07:27:00 GMT",
                Some("Wed, 21 Oct 2026 07:28:00 GMT")
            ),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", None),
            None
        );
        assert_eq!(parse_retry_after("soon", None), None);
        assert_eq!(parse_retry_after("-3", None), None);

        let genesys = |name: &str| (name == "inin-ratelimit-reset").then_some("12");
        assert_eq!(server_delay(genesys), Some(12));
        let both = |name: &str| match name {
            "retry-after" => Some("4"),
            "inin-ratelimit-reset" => Some("12"),
            _ => None,
        };
        assert_eq!(server_delay(both), Some(4));
    }
}
