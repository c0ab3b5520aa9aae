//! Client-side limits on tokio time: a token bucket for requests per minute, and a
//! concurrency limit that halves on 429 and grows back by one per window of successes
//! (additive increase, multiplicative decrease).
//!
//! Both are shared by every request of one client. Neither holds a lock across an await.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// A token bucket that never lets more than `per_minute` requests through in any 60 seconds.
///
/// Servers count against a window (Genesys Cloud: 300 requests a minute per token), and a
/// bucket that refilled at the full rate on top of its burst would overshoot every window by
/// that burst and collect 429s. This one holds a small burst (a fiftieth of the allowance, at
/// least 1) and refills at the allowance minus the burst, so burst plus a minute's refill is
/// the allowance itself: for 300 a minute, 6 at once and then 294 a minute (98 %).
///
/// The allowance follows the server's own announcement ([`TokenBucket::follow`]): an org
/// whose limit was lowered (Genesys's `inin-ratelimit-allowed: 180`) is paced at that
/// limit, never above the configured one, and a window the server says is used up is waited
/// out instead of being spent on 429s.
#[derive(Debug)]
pub struct TokenBucket {
    configured: u32,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// Requests a minute now allowed: the configured rate or a lower one the server
    /// announced.
    allowance: u32,
    per_second: f64,
    burst: f64,
    /// No request before this instant: the server said its window is used up.
    hold_until: Option<Instant>,
    /// Requests waiting for a token now, and since when at least one has been.
    waiters: usize,
    waiting_since: Instant,
    /// Wall-clock time during which at least one request waited (parallel waits count
    /// once: summing them reported 431 s of waiting in a 28 s run).
    waited: Duration,
}

/// The longest a used-up window is waited out on the server's word; a longer
/// `inin-ratelimit-reset` is not believed (the 429 path still honours `Retry-After`).
const MAX_HOLD: Duration = Duration::from_secs(60);

/// Burst and refill per second for an allowance of `per_minute`.
fn shape(per_minute: u32) -> (f64, f64) {
    let per_minute = f64::from(per_minute.max(1));
    let burst = (per_minute / 50.0).floor().max(1.0);
    // With an allowance of 1 the refill would be 0: refill at half instead (one request
    // every two minutes after the first), which still keeps any 60 s to one request.
    let refill = (per_minute - burst).max(per_minute / 2.0);
    (burst, refill / 60.0)
}

impl TokenBucket {
    /// A bucket for at most `per_minute` requests (at least 1) in any 60 seconds, starting
    /// full.
    #[must_use]
    pub fn per_minute(per_minute: u32) -> TokenBucket {
        let per_minute = per_minute.max(1);
        let (burst, per_second) = shape(per_minute);
        TokenBucket {
            configured: per_minute,
            state: Mutex::new(Bucket {
                tokens: burst,
                last: Instant::now(),
                allowance: per_minute,
                per_second,
                burst,
                hold_until: None,
                waiters: 0,
                waiting_since: Instant::now(),
                waited: Duration::ZERO,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Follows the server's announced window: `allowed` requests a minute, `count` of them
    /// spent, `reset_secs` until it starts again. Paces at `min(configured, allowed)` from
    /// now on, and when the window is used up holds every request until it resets (at most
    /// a minute). Returns the new allowance when it changed, for the caller to report.
    pub fn follow(&self, allowed: u64, count: u64, reset_secs: u64) -> Option<u32> {
        let target = u32::try_from(allowed)
            .unwrap_or(u32::MAX)
            .clamp(1, self.configured);
        let mut bucket = self.lock();
        if count >= allowed && reset_secs > 0 {
            let until = Instant::now() + Duration::from_secs(reset_secs).min(MAX_HOLD);
            bucket.hold_until = Some(bucket.hold_until.map_or(until, |h| h.max(until)));
        }
        if target == bucket.allowance {
            return None;
        }
        let (burst, per_second) = shape(target);
        // Refill up to now at the old rate, then keep no more than the new burst.
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * bucket.per_second)
            .min(bucket.burst)
            .min(burst);
        bucket.last = now;
        bucket.allowance = target;
        bucket.burst = burst;
        bucket.per_second = per_second;
        Some(target)
    }

    /// The requests a minute the bucket paces at now.
    #[must_use]
    pub fn allowance(&self) -> u32 {
        self.lock().allowance
    }

    /// Waits until a request may be sent, and takes its token.
    pub async fn acquire(&self) {
        let mut counted = false;
        loop {
            let wait = {
                let mut bucket = self.lock();
                let now = Instant::now();
                let wait = match bucket.hold_until {
                    Some(until) if until > now => Some(until - now),
                    _ => {
                        bucket.hold_until = None;
                        let elapsed = now.duration_since(bucket.last).as_secs_f64();
                        bucket.tokens =
                            (bucket.tokens + elapsed * bucket.per_second).min(bucket.burst);
                        bucket.last = now;
                        // The refill is computed in floating point: a sleep of exactly the
                        // missing time can come back a rounding error short, and a wait that
                        // rounds to zero nanoseconds would spin (forever, on a paused
                        // clock). Accept that error and never wait less than a millisecond.
                        if bucket.tokens >= 1.0 - 1e-9 {
                            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
                            None
                        } else {
                            Some(
                                Duration::from_secs_f64((1.0 - bucket.tokens) / bucket.per_second)
                                    .max(Duration::from_millis(1)),
                            )
                        }
                    }
                };
                match (wait.is_some(), counted) {
                    (true, false) => {
                        counted = true;
                        bucket.waiters += 1;
                        if bucket.waiters == 1 {
                            bucket.waiting_since = now;
                        }
                    }
                    (false, true) => {
                        bucket.waiters -= 1;
                        if bucket.waiters == 0 {
                            let since = bucket.waiting_since;
                            bucket.waited += now.duration_since(since);
                        }
                    }
                    _ => {}
                }
                wait
            };
            let Some(wait) = wait else { return };
            tokio::time::sleep(wait).await;
        }
    }

    /// Wall-clock time during which at least one request waited for a token (parallel
    /// waits count once), for metrics and the throttling line.
    #[must_use]
    pub fn waited(&self) -> Duration {
        let bucket = self.lock();
        if bucket.waiters > 0 {
            bucket.waited + Instant::now().duration_since(bucket.waiting_since)
        } else {
            bucket.waited
        }
    }
}

/// A concurrency limit that adapts to the server: halved on 429 (at most once a second, so
/// one burst of 429s counts once), raised by one after `limit` successes, never above the
/// configured maximum nor below 1.
#[derive(Debug)]
pub struct AdaptiveConcurrency {
    max: usize,
    state: Mutex<Window>,
    freed: Notify,
}

#[derive(Debug)]
struct Window {
    limit: usize,
    in_flight: usize,
    successes: usize,
    last_decrease: Option<Instant>,
}

/// A slot of [`AdaptiveConcurrency`]; the slot is freed on drop.
#[derive(Debug)]
pub struct Slot<'a> {
    owner: &'a AdaptiveConcurrency,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut w = self.owner.lock();
        w.in_flight = w.in_flight.saturating_sub(1);
        drop(w);
        self.owner.freed.notify_waiters();
    }
}

impl AdaptiveConcurrency {
    /// At most `max` requests in flight (at least 1).
    #[must_use]
    pub fn new(max: usize) -> AdaptiveConcurrency {
        let max = max.max(1);
        AdaptiveConcurrency {
            max,
            state: Mutex::new(Window {
                limit: max,
                in_flight: 0,
                successes: 0,
                last_decrease: None,
            }),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot.
    pub async fn acquire(&self) -> Slot<'_> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut w = self.lock();
                if w.in_flight < w.limit {
                    w.in_flight += 1;
                    return Slot { owner: self };
                }
            }
            notified.await;
        }
    }

    /// The server said 429: halve the limit.
    pub fn on_rate_limited(&self) {
        let now = Instant::now();
        let mut w = self.lock();
        if w.last_decrease
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return;
        }
        w.limit = (w.limit / 2).max(1);
        w.successes = 0;
        w.last_decrease = Some(now);
        tracing::debug!(limit = w.limit, "rate limited: concurrency lowered");
    }

    /// A request succeeded: after a window of successes, allow one more in flight.
    pub fn on_success(&self) {
        let mut w = self.lock();
        w.successes += 1;
        if w.successes >= w.limit && w.limit < self.max {
            w.limit += 1;
            w.successes = 0;
            drop(w);
            self.freed.notify_waiters();
        }
    }

    /// The current limit.
    #[must_use]
    pub fn limit(&self) -> usize {
        self.lock().limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 60 a minute on the paused clock: one at once, then 59 a minute.
    #[tokio::test(start_paused = true)]
    async fn bucket_paces_requests() {
        // 60 a minute: a burst of 1, then 59 a minute (one every 60/59 s).
        let bucket = TokenBucket::per_minute(60);
        let start = Instant::now();
        bucket.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..4 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let want = 4.0 * 60.0 / 59.0;
        assert!((want - 0.01..want + 0.01).contains(&elapsed), "{elapsed}");
        assert!(bucket.waited() >= Duration::from_secs(4));
    }

    /// Requests waiting side by side count their wait once: ten requests queued behind an
    /// empty bucket of 60 a minute take about 10 s of wall-clock time, not the sum of their
    /// waits (about 55 s).
    #[tokio::test(start_paused = true)]
    async fn parallel_waits_count_once() {
        let bucket = std::sync::Arc::new(TokenBucket::per_minute(60));
        bucket.acquire().await;
        let start = Instant::now();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move { bucket.acquire().await })
            })
            .collect();
        for task in tasks {
            task.await.expect("acquired");
        }
        let elapsed = start.elapsed();
        let waited = bucket.waited();
        assert!(waited <= elapsed, "{waited:?} > {elapsed:?}");
        assert!(
            waited + Duration::from_millis(50) >= elapsed,
            "{waited:?} < {elapsed:?}"
        );
    }

    /// The bucket follows a lower announced limit (never a higher one than configured),
    /// and a window the server calls used up is waited out before the next request.
    #[tokio::test(start_paused = true)]
    async fn bucket_follows_the_server() {
        let bucket = TokenBucket::per_minute(300);
        assert_eq!(
            bucket.follow(1000, 1, 60),
            None,
            "never above the configured"
        );
        assert_eq!(bucket.follow(60, 1, 60), Some(60));
        assert_eq!(bucket.allowance(), 60);
        assert_eq!(bucket.follow(60, 2, 60), None, "unchanged");
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        // A burst of 1 at 60 a minute, then one every 60/59 s.
        let want = 4.0 * 60.0 / 59.0;
        let elapsed = start.elapsed().as_secs_f64();
        assert!((want - 0.01..want + 0.01).contains(&elapsed), "{elapsed}");
        bucket.follow(60, 60, 20);
        let held = Instant::now();
        bucket.acquire().await;
        assert!(
            held.elapsed() >= Duration::from_secs(20),
            "{:?}",
            held.elapsed()
        );
        bucket.follow(60, 61, 3600);
        let capped = Instant::now();
        bucket.acquire().await;
        assert!(
            capped.elapsed() <= MAX_HOLD + Duration::from_secs(2),
            "{:?}",
            capped.elapsed()
        );
        assert_eq!(
            bucket.follow(300, 1, 60),
            Some(300),
            "back up to the configured"
        );
    }

    /// 300 a minute (Genesys's per-token limit): a burst of 6, then 294 a minute, so 100
    /// requests take 94 / 4.9 s.
    #[tokio::test(start_paused = true)]
    async fn bucket_holds_the_average() {
        let bucket = TokenBucket::per_minute(300);
        let start = Instant::now();
        for _ in 0..100 {
            bucket.acquire().await;
        }
        let secs = start.elapsed().as_secs_f64();
        let want = 94.0 / 4.9;
        assert!((want - 0.05..want + 0.05).contains(&secs), "{secs}");
    }

    /// Whatever the allowance, no 60 s window (counted from any request, as a server's
    /// fixed window starts with the first request it sees) holds more than the allowance,
    /// and a long run reaches at least 97 % of it.
    #[tokio::test(start_paused = true)]
    async fn no_window_exceeds_the_allowance() {
        for per_minute in [1_u32, 2, 7, 60, 300, 1_000] {
            let bucket = TokenBucket::per_minute(per_minute);
            let start = Instant::now();
            let mut sent = Vec::new();
            while start.elapsed() < Duration::from_secs(300) {
                bucket.acquire().await;
                sent.push(start.elapsed());
            }
            for (i, at) in sent.iter().enumerate() {
                let in_window = sent[i..]
                    .iter()
                    .take_while(|t| **t < *at + Duration::from_secs(60))
                    .count();
                assert!(
                    in_window <= usize::try_from(per_minute).expect("small"),
                    "{per_minute}/min: {in_window} requests in the minute from {at:?}"
                );
            }
            if per_minute >= 60 {
                let sent = u32::try_from(sent.len()).expect("a few thousand");
                let rate = f64::from(sent) / 5.0;
                assert!(
                    rate >= 0.97 * f64::from(per_minute),
                    "{per_minute}/min: {rate} a minute"
                );
            }
        }
    }

    /// A 429 halves the limit once per second; successes grow it back to the maximum.
    #[tokio::test(start_paused = true)]
    async fn concurrency_backs_off_and_recovers() {
        let c = AdaptiveConcurrency::new(8);
        c.on_rate_limited();
        c.on_rate_limited();
        assert_eq!(c.limit(), 4, "a burst of 429s counts once");
        tokio::time::advance(Duration::from_secs(2)).await;
        c.on_rate_limited();
        assert_eq!(c.limit(), 2);
        for _ in 0..100 {
            c.on_success();
        }
        assert_eq!(c.limit(), 8);
    }

    /// Slots block at the limit and are freed on drop.
    #[tokio::test(start_paused = true)]
    async fn slots_are_bounded() {
        let c = std::sync::Arc::new(AdaptiveConcurrency::new(2));
        let a = c.acquire().await;
        let _b = c.acquire().await;
        let waiter = {
            let c = c.clone();
            tokio::spawn(async move {
                let _slot = c.acquire().await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(a);
        waiter.await.expect("third slot after a drop");
    }
}
