//! When to try again: exponential backoff after failed reconciles, and quarantine after too
//! many in a row.
//!
//! Pure bookkeeping over durations; the loop in [`super`] owns the clock. A failure schedules
//! a retry after `base`, doubling per consecutive failure up to `cap`. After
//! `quarantine_after` failures in a row the controller enters quarantine: retries wait
//! `quarantine_delay` instead, and the drift timer is suspended, until the first success.

use std::time::Duration;

/// Backoff and quarantine settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait outside quarantine.
    pub cap: Duration,
    /// Consecutive failures that put the reconciler in quarantine (at least 1).
    pub quarantine_after: u32,
    /// Wait between attempts while quarantined.
    pub quarantine_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(5 * 60),
            quarantine_after: 5,
            quarantine_delay: Duration::from_secs(30 * 60),
        }
    }
}

/// What a result changed about quarantine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Nothing.
    None,
    /// This failure was one too many: quarantine starts.
    Entered,
    /// This success ended a quarantine.
    Left,
}

/// Consecutive failures and quarantine state.
#[derive(Clone, Copy, Debug)]
pub struct Controller {
    backoff: Backoff,
    failures: u32,
    quarantined: bool,
}

impl Controller {
    /// A controller with no failures yet.
    #[must_use]
    pub fn new(backoff: Backoff) -> Controller {
        Controller {
            backoff: Backoff {
                quarantine_after: backoff.quarantine_after.max(1),
                ..backoff
            },
            failures: 0,
            quarantined: false,
        }
    }

    /// Failures in a row so far.
    #[must_use]
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the reconciler is quarantined.
    #[must_use]
    pub fn quarantined(&self) -> bool {
        self.quarantined
    }

    /// Records a success: failures reset, quarantine left.
    pub fn succeeded(&mut self) -> Transition {
        self.failures = 0;
        if std::mem::take(&mut self.quarantined) {
            Transition::Left
        } else {
            Transition::None
        }
    }

    /// Records a failure; returns how long to wait before the retry.
    pub fn failed(&mut self) -> (Duration, Transition) {
        self.failures = self.failures.saturating_add(1);
        let mut transition = Transition::None;
        if !self.quarantined && self.failures >= self.backoff.quarantine_after {
            self.quarantined = true;
            transition = Transition::Entered;
        }
        if self.quarantined {
            return (self.backoff.quarantine_delay, transition);
        }
        // Unjittered: one reconciler per process, and its waits are reported as they are.
        let wait = crate::backoff::Backoff::new(self.backoff.base, self.backoff.cap)
            .ceiling(self.failures);
        (wait, transition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(5),
            quarantine_after: 5,
            quarantine_delay: Duration::from_secs(600),
        }
    }

    /// 1, 2, 4, 5 (capped), then quarantine at the fifth failure with the long delay.
    #[test]
    fn doubles_to_the_cap_then_quarantines() {
        let mut c = Controller::new(backoff());
        let waits: Vec<(u64, Transition)> = (0..6)
            .map(|_| {
                let (wait, t) = c.failed();
                (wait.as_secs(), t)
            })
            .collect();
        assert_eq!(
            waits,
            [
                (1, Transition::None),
                (2, Transition::None),
                (4, Transition::None),
                (5, Transition::None),
                (600, Transition::Entered),
                (600, Transition::None),
            ]
        );
        assert!(c.quarantined());
        assert_eq!(c.failures(), 6);
    }

    /// The first success leaves quarantine and starts the backoff over.
    #[test]
    fn a_success_leaves_quarantine() {
        let mut c = Controller::new(backoff());
        for _ in 0..5 {
            c.failed();
        }
        assert_eq!(c.succeeded(), Transition::Left);
        assert_eq!(c.succeeded(), Transition::None);
        assert!(!c.quarantined());
        assert_eq!(c.failed(), (Duration::from_secs(1), Transition::None));
    }
}
