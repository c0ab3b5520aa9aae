//! Fault injection for SCIM requests: a fixed-window rate limit (429 with `Retry-After`),
//! seeded random 500/503 answers and dropped connections, all decided before the request does
//! anything, and dropped connections after a write was carried out (decided before, acted on
//! by the caller once the write succeeded). Decisions come from one `StdRng` seeded from
//! [`Faults::seed`](super::Faults), so a run with the same seed and the same request order
//! injects the same faults. Time is `tokio::time` (pausable).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::Faults;

/// What to do with one SCIM request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Serve it.
    Pass,
    /// 429; retry after this many whole seconds.
    RateLimited { retry_after: u64 },
    /// Close the connection without an answer.
    Drop,
    /// Serve it (a write), then close the connection instead of answering, if it succeeded.
    DropAfter,
    /// Answer this 5xx status.
    Error(u16),
}

/// Where the current rate window stands, for the `inin-ratelimit-*` headers Genesys sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateWindow {
    pub(crate) count: u32,
    pub(crate) allowed: u32,
    /// Whole seconds until the window resets (at least 1).
    pub(crate) reset: u64,
}

#[derive(Debug)]
struct State {
    rng: StdRng,
    window_start: Option<Instant>,
    in_window: u32,
    errors: u64,
    token_window_start: Option<Instant>,
    token_in_window: u32,
}

/// Decides faults; one per sandbox.
#[derive(Debug)]
pub(crate) struct FaultInjector {
    faults: Faults,
    state: Mutex<State>,
}

/// Whole seconds in `d`, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

impl FaultInjector {
    pub(crate) fn new(faults: Faults) -> Self {
        let rng = StdRng::seed_from_u64(faults.seed);
        FaultInjector {
            faults,
            state: Mutex::new(State {
                rng,
                window_start: None,
                in_window: 0,
                errors: 0,
                token_window_start: None,
                token_in_window: 0,
            }),
        }
    }

    /// Counts a token request arriving at `now` against [`Faults::token_rate_limit`]:
    /// `Some(seconds)` to answer 429 with that `Retry-After`, `None` to serve it.
    pub(crate) fn token_verdict(&self, now: Instant) -> Option<u64> {
        let limit = self.faults.token_rate_limit?;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let start = match state.token_window_start {
            Some(start) if now < start + limit.window => start,
            _ => {
                state.token_in_window = 0;
                state.token_window_start = Some(now);
                now
            }
        };
        state.token_in_window = state.token_in_window.saturating_add(1);
        (state.token_in_window > limit.requests)
            .then(|| ceil_secs((start + limit.window).saturating_duration_since(now)))
    }

    /// The verdict for one SCIM request arriving at `now`, and the rate window after counting
    /// it (when a rate limit is configured). `write` says whether the request changes the
    /// store (POST to a collection, PUT, PATCH, DELETE): only writes can get
    /// [`Verdict::DropAfter`], and only they draw for it, so adding `drop_after_rate` leaves the
    /// verdicts of reads as they were for the same seed.
    pub(crate) fn decide(&self, now: Instant, write: bool) -> (Verdict, Option<RateWindow>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut window = None;
        if let Some(limit) = &self.faults.rate_limit {
            let start = match state.window_start {
                Some(start) if now < start + limit.window => start,
                _ => {
                    state.in_window = 0;
                    state.window_start = Some(now);
                    now
                }
            };
            state.in_window = state.in_window.saturating_add(1);
            let reset = ceil_secs((start + limit.window).saturating_duration_since(now));
            window = Some(RateWindow {
                count: state.in_window,
                allowed: limit.requests,
                reset,
            });
            if state.in_window > limit.requests {
                return (Verdict::RateLimited { retry_after: reset }, window);
            }
        }
        // `random::<f64>() < rate` rather than `random_bool`, which panics outside 0..=1.
        if self.faults.drop_rate > 0.0 && state.rng.random::<f64>() < self.faults.drop_rate {
            return (Verdict::Drop, window);
        }
        if self.faults.error_rate > 0.0 && state.rng.random::<f64>() < self.faults.error_rate {
            state.errors += 1;
            let status = match self.faults.error_status {
                Some(status) => status,
                None if state.errors % 2 == 1 => 503,
                None => 500,
            };
            return (Verdict::Error(status), window);
        }
        if write
            && self.faults.drop_after_rate > 0.0
            && state.rng.random::<f64>() < self.faults.drop_after_rate
        {
            return (Verdict::DropAfter, window);
        }
        (Verdict::Pass, window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::RateLimit;

    // More than `requests` in a window is refused until the window ends; Retry-After counts down.
    #[tokio::test(start_paused = true)]
    async fn fixed_window() {
        let f = FaultInjector::new(Faults {
            rate_limit: Some(RateLimit {
                requests: 3,
                window: Duration::from_secs(10),
            }),
            ..Faults::default()
        });
        for _ in 0..3 {
            assert_eq!(f.decide(Instant::now(), false).0, Verdict::Pass);
        }
        let (verdict, window) = f.decide(Instant::now(), false);
        assert_eq!(verdict, Verdict::RateLimited { retry_after: 10 });
        assert_eq!(
            window,
            Some(RateWindow {
                count: 4,
                allowed: 3,
                reset: 10
            })
        );
        tokio::time::advance(Duration::from_millis(7_500)).await;
        assert_eq!(
            f.decide(Instant::now(), false).0,
            Verdict::RateLimited { retry_after: 3 }
        );
        tokio::time::advance(Duration::from_millis(2_499)).await;
        assert_eq!(
            f.decide(Instant::now(), false).0,
            Verdict::RateLimited { retry_after: 1 }
        );
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(f.decide(Instant::now(), false).0, Verdict::Pass);
    }

    // A fixed error_status replaces the 503/500 alternation.
    #[test]
    fn fixed_error_status() {
        let f = FaultInjector::new(Faults {
            error_rate: 1.0,
            error_status: Some(502),
            ..Faults::default()
        });
        let now = Instant::now();
        assert!((0..5).all(|_| f.decide(now, false).0 == Verdict::Error(502)));
    }

    // Error and drop fractions are roughly right, alternate 503/500, and repeat with the seed.
    #[test]
    fn rates_and_reproducibility() {
        let run = |seed| {
            let f = FaultInjector::new(Faults {
                error_rate: 0.2,
                drop_rate: 0.1,
                seed,
                ..Faults::default()
            });
            let now = Instant::now();
            (0..2000)
                .map(|_| f.decide(now, false).0)
                .collect::<Vec<_>>()
        };
        let verdicts = run(7);
        assert_eq!(verdicts, run(7));
        assert_ne!(verdicts, run(8));
        let drops = verdicts.iter().filter(|v| **v == Verdict::Drop).count();
        let errors: Vec<u16> = verdicts
            .iter()
            .filter_map(|v| {
                if let Verdict::Error(s) = v {
                    Some(*s)
                } else {
                    None
                }
            })
            .collect();
        assert!((150..250).contains(&drops), "{drops}");
        // 20 % of the 90 % not dropped
        assert!((300..420).contains(&errors.len()), "{}", errors.len());
        assert_eq!(&errors[..4], &[503, 500, 503, 500]);
        let none = FaultInjector::new(Faults {
            error_rate: 7.0,
            drop_rate: f64::NAN,
            ..Faults::default()
        });
        assert!(matches!(
            none.decide(Instant::now(), false).0,
            Verdict::Error(_)
        ));
    }

    // Only writes are dropped after acting, at about the configured rate, reproducibly; reads
    // never draw for it, so their verdicts are those of a run without the fault.
    #[test]
    fn drop_after_acting_is_for_writes() {
        let injector = |drop_after_rate| {
            FaultInjector::new(Faults {
                drop_rate: 0.1,
                drop_after_rate,
                seed: 11,
                ..Faults::default()
            })
        };
        let now = Instant::now();
        let reads =
            |f: &FaultInjector| (0..500).map(|_| f.decide(now, false).0).collect::<Vec<_>>();
        assert_eq!(reads(&injector(0.0)), reads(&injector(0.5)));
        assert!(!reads(&injector(1.0)).contains(&Verdict::DropAfter));

        let writes =
            |f: &FaultInjector| (0..2000).map(|_| f.decide(now, true).0).collect::<Vec<_>>();
        let verdicts = writes(&injector(0.3));
        assert_eq!(verdicts, writes(&injector(0.3)));
        let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
        // 30 % of the 90 % not dropped before acting
        assert!(
            (470..620).contains(&count(Verdict::DropAfter)),
            "{}",
            count(Verdict::DropAfter)
        );
        assert!(
            (150..250).contains(&count(Verdict::Drop)),
            "{}",
            count(Verdict::Drop)
        );
        assert_eq!(
            count(Verdict::Pass) + count(Verdict::Drop) + count(Verdict::DropAfter),
            2000
        );

        // At 1.0 every write that is not refused first is dropped after acting; a refusal
        // (429 here) still comes first and is answered.
        let all = FaultInjector::new(Faults {
            drop_after_rate: 1.0,
            rate_limit: Some(RateLimit {
                requests: 2,
                window: Duration::from_secs(60),
            }),
            ..Faults::default()
        });
        assert_eq!(all.decide(now, true).0, Verdict::DropAfter);
        assert_eq!(all.decide(now, false).0, Verdict::Pass);
        assert!(matches!(
            all.decide(now, true).0,
            Verdict::RateLimited { .. }
        ));
    }
}
