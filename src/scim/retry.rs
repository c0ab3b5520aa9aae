//! The retry decision: given a failed attempt, wait how long before the next one, or stop.
//!
//! Pure and synchronous, so every branch is unit-tested without a clock: the caller passes
//! the attempt number and a jitter draw in `[0, 1)`, and sleeps on tokio time itself.
//! `Retry-After` is read in both RFC 9110 forms (delay seconds or an HTTP date; a date is
//! measured against the response's own `Date` header, never the local clock), and Genesys
//! Cloud's `inin-ratelimit-reset` (seconds) is honoured on a 429 when `Retry-After` is absent.

use std::time::Duration;

use super::error::ScimError;
use crate::backoff::Backoff;

/// How failed requests are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry; doubled for each later one.
    pub base: Duration,
    /// Largest backoff delay (before jitter).
    pub cap: Duration,
    /// Most attempts for one request, the first included, not counting the ones the server
    /// paced (a 429 that said when to come back: see `max_paced`).
    pub max_attempts: u32,
    /// Most 429s with a server-given delay (`Retry-After`, `inin-ratelimit-reset`) waited out
    /// for one request. Kept apart from `max_attempts`: a server that says when to come back
    /// is pacing the client, not failing, and under a long throttle with many requests in
    /// flight one request can be sent back many windows in a row.
    pub max_paced: u32,
    /// Most retries saved up in the budget (see [`RetryBudget`]). A budget rather than only a
    /// per-request maximum keeps an outage from multiplying load.
    pub budget: u32,
    /// Retries each request earns for the budget, in percent of a retry.
    pub budget_percent: u32,
    /// Retries the budget earns each minute whatever the traffic, so a quiet client can still
    /// retry its few requests.
    pub budget_per_minute: u32,
    /// A server asking to wait longer than this is not waited for: the error surfaces.
    pub max_server_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            max_attempts: 8,
            max_paced: 64,
            budget: 1_000,
            budget_percent: 20,
            budget_per_minute: 60,
            max_server_delay: Duration::from_secs(300),
        }
    }
}

/// What one request has been through: the attempt now being made (1-based, not counting
/// paced ones) and how many 429s with a server-given delay it has waited out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tries {
    /// The attempt being made, the first is 1.
    pub attempt: u32,
    /// Paced 429s waited out so far.
    pub paced: u32,
}

impl Default for Tries {
    fn default() -> Tries {
        Tries {
            attempt: 1,
            paced: 0,
        }
    }
}

impl RetryPolicy {
    /// The wait before trying again after `error`, counting the try in `tries`: a 429 that
    /// says when to come back ([`ScimError::is_paced`]) against `max_paced`, anything else
    /// against `max_attempts`. `None` when the error must surface.
    #[must_use]
    pub fn next(
        &self,
        error: &ScimError,
        tries: &mut Tries,
        idempotent: bool,
        jitter: f64,
    ) -> Option<Duration> {
        let paced = error.is_paced();
        if paced && tries.paced >= self.max_paced {
            return None;
        }
        let delay = self.classify(error, tries.attempt, idempotent, jitter)?;
        if paced {
            tries.paced += 1;
        } else {
            tries.attempt += 1;
        }
        Some(delay)
    }

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

    /// Exponential backoff with "equal jitter" ([`crate::backoff::Backoff`]): half the capped
    /// delay is fixed, half random, so a retry never comes instantly and never all at once.
    #[must_use]
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        Backoff::new(self.base, self.cap).delay(attempt, jitter)
    }
}

/// The retry budget over time, after tower's: every request deposits `budget_percent` of a
/// retry, the clock deposits `budget_per_minute` retries a minute, the balance never exceeds
/// `budget` (where it also starts), and every retry withdraws one. While a server keeps
/// failing, retries fall to about a fifth of the requests; once it answers again the balance
/// refills, so a long-running `watch` never spends it for good. Pure: the caller passes the
/// time elapsed on its own (tokio) clock.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    /// Retries available, in hundredths.
    balance: u64,
    cap: u64,
    per_request: u64,
    per_minute: u64,
    /// The clock reading the balance was last brought up to date at.
    last: Duration,
}

impl RetryBudget {
    /// A full budget for `policy`, at clock reading `now`.
    #[must_use]
    pub fn new(policy: &RetryPolicy, now: Duration) -> RetryBudget {
        let cap = u64::from(policy.budget) * 100;
        RetryBudget {
            balance: cap,
            cap,
            per_request: u64::from(policy.budget_percent),
            per_minute: u64::from(policy.budget_per_minute) * 100,
            last: now,
        }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.last);
        let earned = u128::from(self.per_minute) * elapsed.as_millis() / 60_000;
        if earned > 0 {
            let earned = u64::try_from(earned).unwrap_or(u64::MAX);
            self.balance = self.balance.saturating_add(earned).min(self.cap);
            // Only whole hundredths are taken off the clock; the rest carries over.
            let used_ms = u128::from(earned) * 60_000 / u128::from(self.per_minute.max(1));
            self.last += Duration::from_millis(u64::try_from(used_ms).unwrap_or(u64::MAX));
            if self.balance == self.cap {
                self.last = now;
            }
        } else if self.per_minute == 0 {
            self.last = now;
        }
    }

    /// A request is being sent (its first attempt).
    pub fn deposit(&mut self, now: Duration) {
        self.refill(now);
        self.balance = self.balance.saturating_add(self.per_request).min(self.cap);
    }

    /// Takes one retry; `false` when the budget cannot pay for it.
    pub fn withdraw(&mut self, now: Duration) -> bool {
        self.refill(now);
        if self.balance < 100 {
            return false;
        }
        self.balance -= 100;
        true
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

/// The server-requested delay from an error response with status `status`: `Retry-After`
/// (on any status, RFC 9110 §10.2.3), else, on a 429 only, Genesys Cloud's
/// `inin-ratelimit-reset` (seconds until the rate window resets). Genesys sends the
/// `inin-ratelimit-*` headers on every answer, so on a 502/503/504 the reset says nothing
/// about when to retry: those keep the normal backoff (125 ms to 30 s) instead of waiting
/// out a window of up to a minute. `header` looks a header up by lower-case name.
#[must_use]
pub fn server_delay<'a>(status: u16, header: impl Fn(&str) -> Option<&'a str>) -> Option<u64> {
    let text = header;
    text("retry-after")
        .and_then(|v| parse_retry_after(v, text("date")))
        .or_else(|| {
            (status == 429)
                .then(|| text("inin-ratelimit-reset"))
                .flatten()
                .and_then(|v| v.trim().parse().ok())
        })
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

    /// A simulated week of a long-running client, minute by minute on its own clock: ordinary
    /// throttling (5 of 100 requests retried a minute) never spends the budget; an hour-long
    /// outage (every request retried until refused) holds retries to about a fifth of the
    /// requests plus the floor; after it the budget refills and retries are paid again.
    #[test]
    fn the_budget_is_a_rate_over_time() {
        let policy = RetryPolicy::default();
        let minute = Duration::from_secs(60);
        let mut now = Duration::ZERO;
        let mut budget = RetryBudget::new(&policy, now);
        let week = 7 * 24 * 60;
        let (outage_from, outage_to) = (3 * 24 * 60, 3 * 24 * 60 + 60);
        let mut refused_outside = 0;
        let (mut paid_in_outage, mut paid_last_minute) = (0u64, 0u64);
        for m in 0..week {
            let outage = (outage_from..outage_to).contains(&m);
            let mut paid_this_minute = 0;
            for r in 0..100 {
                budget.deposit(now);
                // In the outage every request is retried up to 7 times (all fail).
                let retries = if outage { 7 } else { u32::from(r < 5) };
                for _ in 0..retries {
                    let paid = budget.withdraw(now);
                    paid_this_minute += u64::from(paid);
                    if !paid {
                        if !outage {
                            refused_outside += 1;
                        }
                        break;
                    }
                }
            }
            if outage {
                paid_in_outage += paid_this_minute;
                paid_last_minute = paid_this_minute;
            }
            now += minute;
        }
        assert_eq!(refused_outside, 0, "ordinary throttling never runs out");
        // The outage spends the saved 1,000, then 20 per 100 requests plus 60 a minute: a
        // sustained 80 retries a minute, not the 700 the requests asked for.
        let most = 1_000 + 60 * (20 + 60);
        assert!(paid_in_outage <= most, "{paid_in_outage} > {most}");
        assert!(
            paid_last_minute <= 81,
            "{paid_last_minute} in the outage's last minute"
        );
        // After the outage: full again within the day.
        let mut after = budget.clone();
        assert!((0..1_000).all(|_| after.withdraw(now)), "refilled");
    }

    /// Without traffic the clock alone refills, and never above the cap.
    #[test]
    fn the_clock_refills_up_to_the_cap() {
        let policy = RetryPolicy {
            budget: 2,
            budget_percent: 0,
            budget_per_minute: 1,
            ..RetryPolicy::default()
        };
        let mut b = RetryBudget::new(&policy, Duration::ZERO);
        assert!(b.withdraw(Duration::ZERO) && b.withdraw(Duration::ZERO));
        assert!(
            !b.withdraw(Duration::from_secs(30)),
            "half a retry is not a retry"
        );
        assert!(b.withdraw(Duration::from_secs(60)));
        assert!(!b.withdraw(Duration::from_secs(61)));
        let mut idle = b.clone();
        assert!(
            idle.withdraw(Duration::from_secs(3_600)) && idle.withdraw(Duration::from_secs(3_600))
        );
        assert!(!idle.withdraw(Duration::from_secs(3_600)), "capped at 2");
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

    /// Paced 429s have their own limit: they do not use up the attempts, and a 503 after
    /// them still has every attempt; past `max_paced` the 429 surfaces.
    #[test]
    fn paced_waits_count_apart_from_attempts() {
        let p = RetryPolicy {
            max_attempts: 2,
            max_paced: 3,
            ..RetryPolicy::default()
        };
        let mut tries = Tries::default();
        for _ in 0..3 {
            assert!(
                p.next(&answer(429, Some(5)), &mut tries, true, 0.0)
                    .is_some()
            );
        }
        assert_eq!(
            tries,
            Tries {
                attempt: 1,
                paced: 3
            }
        );
        assert_eq!(p.next(&answer(429, Some(5)), &mut tries, true, 0.0), None);
        assert!(p.next(&answer(503, None), &mut tries, true, 0.0).is_some());
        assert_eq!(p.next(&answer(503, None), &mut tries, true, 0.0), None);
        // A 429 without a delay is not pacing: it counts as an attempt.
        let mut tries = Tries::default();
        assert!(p.next(&answer(429, None), &mut tries, true, 0.0).is_some());
        assert_eq!(p.next(&answer(429, None), &mut tries, true, 0.0), None);
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
        assert_eq!(server_delay(429, genesys), Some(12));
        // The rate window's reset is not a retry time for a server error.
        for status in [500, 502, 503, 504] {
            assert_eq!(server_delay(status, genesys), None, "{status}");
        }
        let both = |name: &str| match name {
            "retry-after" => Some("4"),
            "inin-ratelimit-reset" => Some("12"),
            _ => None,
        };
        assert_eq!(server_delay(429, both), Some(4));
        assert_eq!(server_delay(503, both), Some(4));
    }
}
