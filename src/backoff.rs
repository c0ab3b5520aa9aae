//! The one backoff schedule: exponential from a base, capped, with "equal jitter" (half the
//! capped delay fixed, half random), so a retry never comes instantly and concurrent callers
//! do not come back all at once. The client's retries (`scim::retry`), webhook deliveries,
//! watch's reconcile retries and the Genesys read-after-write settling all take their delays
//! from it.
//!
//! The schedule itself is pure: callers that test it pass the attempt and a jitter draw. The
//! waiting is on tokio's clock ([`Backoff::sleep`]), so paused-clock tests never wait for real.

use std::time::Duration;

use rand::RngExt;

/// A capped exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure (before jitter); doubled for each later one.
    pub base: Duration,
    /// Largest delay (before jitter).
    pub cap: Duration,
}

impl Backoff {
    /// A backoff from `base`, doubling, up to `cap`.
    #[must_use]
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The capped exponential delay after attempt `attempt` (1-based) failed, without jitter:
    /// `base`, `2 × base`, `4 × base`, ... up to `cap`. For the callers whose waits must be
    /// exact (watch's reconcile retries, reported in metrics and logs).
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1 << doublings).min(self.cap)
    }

    /// The delay after attempt `attempt` (1-based) failed, with equal jitter: half of
    /// [`Backoff::ceiling`] fixed and half scaled by `jitter`, a uniform draw in `[0, 1)`.
    #[must_use]
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let half = self.ceiling(attempt) / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// A uniform jitter draw in `[0, 1)` from the thread's random generator.
    #[must_use]
    pub fn jitter() -> f64 {
        rand::rng().random()
    }

    /// Sleeps (tokio's clock) for [`Backoff::delay`] of `attempt` with a fresh jitter draw;
    /// returns how long.
    pub async fn sleep(&self, attempt: u32) -> Duration {
        let wait = self.delay(attempt, Self::jitter());
        tokio::time::sleep(wait).await;
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Doubling from the base up to the cap; jitter keeps each delay within [half, full].
    #[test]
    fn doubles_caps_and_jitters() {
        let b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let ceilings: Vec<u128> = (1..=9).map(|a| b.ceiling(a).as_millis()).collect();
        assert_eq!(
            ceilings,
            [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        assert_eq!(b.ceiling(0), Duration::from_millis(250));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(125));
        assert_eq!(b.delay(1, 0.5), Duration::from_micros(187_500));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(30));
        assert_eq!(b.delay(30, 7.0), Duration::from_secs(30), "jitter clamped");
        for _ in 0..100 {
            let j = Backoff::jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    // The sleep is on tokio's clock, within the jitter range.
    #[tokio::test(start_paused = true)]
    async fn sleeps_on_tokio_time() {
        let b = Backoff::new(Duration::from_secs(2), Duration::from_secs(60));
        let started = tokio::time::Instant::now();
        let waited = b.sleep(3).await;
        // tokio's timer rounds up to the millisecond.
        let elapsed = started.elapsed();
        assert!(
            elapsed >= waited && elapsed <= waited + Duration::from_millis(1),
            "{elapsed:?} for {waited:?}"
        );
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(8)).contains(&waited),
            "{waited:?}"
        );
    }
}
