//! The loop on a paused clock, with a reconciler that fails as told.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::webhook::{TerminateError, Terminated, TerminationSink};

/// Answers from a script, recording when it was called (seconds since the start).
struct Scripted {
    start: Instant,
    answers: VecDeque<bool>,
    calls: Vec<u64>,
    stop_after: Option<(usize, Stop)>,
}

impl Reconcile for Scripted {
    async fn reconcile(&mut self) -> Result<Reconciled, ReconcileError> {
        self.calls.push(self.start.elapsed().as_secs());
        if let Some((n, stop)) = &self.stop_after
            && self.calls.len() >= *n
        {
            stop.request();
        }
        if self.answers.pop_front().unwrap_or(true) {
            Ok(Reconciled::default())
        } else {
            Err(ReconcileError::Target("connection refused".into()))
        }
    }

    async fn terminate(
        &mut self,
        user_name: &str,
        _reason: Option<&str>,
    ) -> Result<Terminated, TerminateError> {
        self.calls.push(self.start.elapsed().as_secs());
        if user_name == "nobody" {
            Err(TerminateError::UnknownUser(user_name.into()))
        } else {
            Ok(Terminated::Deactivated)
        }
    }

    async fn set_password(
        &mut self,
        user_name: &str,
        _password: Secret,
    ) -> Result<PasswordSet, PasswordSyncError> {
        self.calls.push(self.start.elapsed().as_secs());
        if user_name == "nobody" {
            Err(PasswordSyncError::UnknownUser(user_name.into()))
        } else {
            Ok(PasswordSet::Set)
        }
    }
}

fn no_jobs() -> mpsc::Receiver<Job> {
    LoopSink::new().1
}

#[derive(Default)]
struct Heard {
    quarantine: Vec<(Transition, u32)>,
    results: Vec<(Trigger, bool)>,
}

impl Events for Heard {
    fn reconciled(&mut self, trigger: Trigger, result: &Result<Reconciled, ReconcileError>) {
        self.results.push((trigger, result.is_ok()));
    }
    fn quarantine(&mut self, transition: Transition, failures: u32, _last_error: Option<&str>) {
        self.quarantine.push((transition, failures));
    }
}

fn timing() -> Timing {
    Timing {
        interval: Duration::from_secs(300),
        debounce: Duration::from_millis(200),
        backoff: Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            quarantine_after: 4,
            quarantine_delay: Duration::from_secs(1_000),
        },
    }
}

/// Failures back off 1, 2, 4 s; the fourth enters quarantine (event, metric, readiness),
/// whose retry waits 1,000 s with the drift timer suspended; the first success leaves it.
#[tokio::test(start_paused = true)]
async fn quarantine_is_entered_and_left() {
    let stop = Stop::default();
    let mut fake = Scripted {
        start: Instant::now(),
        answers: [false, false, false, false, false, true].into(),
        calls: Vec::new(),
        stop_after: Some((7, stop.clone())),
    };
    let (_tx, rx) = mpsc::unbounded_channel();
    let metrics = Metrics::default();
    let mut heard = Heard::default();
    run_loop(
        &mut fake,
        rx,
        no_jobs(),
        timing(),
        &metrics,
        &mut heard,
        &stop,
    )
    .await;

    // start, +1, +2, +4, then quarantined: +1000 (no resync at 300), +1000 succeeds, then
    // the drift timer again: +300.
    assert_eq!(fake.calls, [0, 1, 3, 7, 1_007, 2_007, 2_307]);
    assert_eq!(
        heard.quarantine,
        [(Transition::Entered, 4), (Transition::Left, 5)]
    );
    assert_eq!(
        heard.results.iter().map(|r| r.0).collect::<Vec<_>>(),
        [
            Trigger::Start,
            Trigger::Retry,
            Trigger::Retry,
            Trigger::Retry,
            Trigger::Retry,
            Trigger::Retry
        ]
    );
    let text = metrics.render();
    assert!(text.contains("scimctl_quarantined 0"), "{text}");
    assert!(text.contains("scimctl_consecutive_failures 0"), "{text}");
    assert!(
        text.contains("scimctl_reconciles_total{trigger=\"retry\",result=\"failure\"} 4"),
        "{text}"
    );
}

/// While quarantined, readiness says so and the metric is 1.
#[tokio::test(start_paused = true)]
async fn quarantine_shows_on_readyz_and_metrics() {
    let stop = Stop::default();
    let mut fake = Scripted {
        start: Instant::now(),
        answers: [false; 4].into(),
        calls: Vec::new(),
        stop_after: Some((4, stop.clone())),
    };
    let (_tx, rx) = mpsc::unbounded_channel();
    let metrics = Metrics::default();
    // The stop comes inside the fourth reconcile, which the loop then leaves unrecorded:
    // three failures must be enough for quarantine here.
    let mut t = timing();
    t.backoff.quarantine_after = 3;
    run_loop(&mut fake, rx, no_jobs(), t, &metrics, &mut NoEvents, &stop).await;
    assert_eq!(fake.calls, [0, 1, 3, 1_003]);
    let why = metrics.readiness().unwrap_err().0;
    assert!(
        why.iter()
            .any(|w| w.contains("quarantined after 3 failed reconciles")),
        "{why:?}"
    );
    assert!(metrics.render().contains("scimctl_quarantined 1"));
}

/// A burst of file events reconciles once, after the debounce; the drift timer restarts
/// from that reconcile.
#[tokio::test(start_paused = true)]
async fn file_events_are_debounced_and_reset_the_timer() {
    let stop = Stop::default();
    let mut fake = Scripted {
        start: Instant::now(),
        answers: VecDeque::new(),
        calls: Vec::new(),
        stop_after: Some((3, stop.clone())),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(10)).await;
        for _ in 0..4 {
            tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tx
    });
    let metrics = Metrics::default();
    let mut heard = Heard::default();
    run_loop(
        &mut fake,
        rx,
        no_jobs(),
        timing(),
        &metrics,
        &mut heard,
        &stop,
    )
    .await;
    drop(sender.await);
    // start at 0; four events from 10 s, settled 200 ms after the last (10.35 s); the drift
    // timer then fires 300 s after that reconcile.
    assert_eq!(fake.calls, [0, 10, 310]);
    assert_eq!(
        heard.results.iter().map(|r| r.0).collect::<Vec<_>>(),
        [Trigger::Start, Trigger::Files]
    );
}

/// A stop while waiting ends the loop at once.
#[tokio::test(start_paused = true)]
async fn a_stop_while_waiting_ends_the_loop() {
    let stop = Stop::default();
    let mut fake = Scripted {
        start: Instant::now(),
        answers: VecDeque::new(),
        calls: Vec::new(),
        stop_after: None,
    };
    let (_tx, rx) = mpsc::unbounded_channel();
    let metrics = Metrics::default();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(42)).await;
            stop.request();
        })
    };
    let started = Instant::now();
    run_loop(
        &mut fake,
        rx,
        no_jobs(),
        timing(),
        &metrics,
        &mut NoEvents,
        &stop,
    )
    .await;
    stopper.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(42));
    assert_eq!(fake.calls, [0]);
}

/// A termination or a password arriving between reconciles is carried out at once, answered
/// through the sink, and does not disturb the drift timer.
#[tokio::test(start_paused = true)]
async fn webhook_jobs_are_carried_out_between_reconciles() {
    let stop = Stop::default();
    let mut fake = Scripted {
        start: Instant::now(),
        answers: VecDeque::new(),
        calls: Vec::new(),
        stop_after: Some((4, stop.clone())),
    };
    let (_tx, rx) = mpsc::unbounded_channel();
    let (sink, jobs) = LoopSink::new();
    let hris = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(7)).await;
        let first = sink.terminate("ana@x.example", Some("left")).await;
        let second = sink.terminate("nobody", None).await;
        let password = sink
            .set_password("ana@x.example", Secret::new("N3w-password-ok"))
            .await;
        (first, second, password)
    });
    let metrics = Metrics::default();
    run_loop(
        &mut fake,
        rx,
        jobs,
        timing(),
        &metrics,
        &mut NoEvents,
        &stop,
    )
    .await;
    let (first, second, password) = hris.await.unwrap();
    assert_eq!(first, Ok(Terminated::Deactivated));
    assert_eq!(second, Err(TerminateError::UnknownUser("nobody".into())));
    assert_eq!(password, Ok(PasswordSet::Set));
    // start, the two terminations and the password at 7 s, then the resync 300 s after the
    // start.
    assert_eq!(fake.calls, [0, 7, 7, 7, 300]);
}

/// A stop made from a cancellation token is requested when the token is cancelled, and a
/// requested stop cancels the token: one request, whichever side makes it.
#[tokio::test(start_paused = true)]
async fn stop_is_a_cancellation_token() {
    let token = tokio_util::sync::CancellationToken::new();
    let stop = Stop::from(token.clone());
    assert!(!stop.requested());
    let waiting = tokio::spawn({
        let stop = stop.clone();
        async move { stop.wait().await }
    });
    token.cancel();
    waiting.await.expect("the wait ends");
    assert!(stop.requested());
    let other = Stop::default();
    other.request();
    assert!(other.token().is_cancelled());
}
