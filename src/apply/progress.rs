//! Progress of a long apply, on stderr (docs/contract.md §5): a bar with counts and ETA on a
//! terminal, a plain line at most every five seconds otherwise (CI logs, pipes), nothing
//! under `-q`.
//!
//! A [`Progress`] is shared by every task of an apply (behind an `Arc`), so all its methods
//! take `&self`. It only counts and draws: it decides nothing, and a failure to draw never
//! fails the apply. The plain mode reads time from `tokio::time`, so its cadence is tested with
//! a paused clock; the bar's rate and ETA are indicatif's own.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

/// The shortest gap between two plain progress lines.
pub const PLAIN_INTERVAL: Duration = Duration::from_secs(5);

/// How one operation ended, as the progress display counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tally {
    /// Applied as planned.
    Done,
    /// The tenant was already in the desired state.
    AlreadyDone,
    /// Applied after re-reading a resource that changed since the plan.
    Merged,
    /// Gave up.
    Failed,
    /// Not attempted (a dependency failed, or the run is stopping).
    Skipped,
}

/// How many operations ended each way so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// [`Tally::Done`].
    pub done: u64,
    /// [`Tally::AlreadyDone`].
    pub already_done: u64,
    /// [`Tally::Merged`].
    pub merged: u64,
    /// [`Tally::Failed`].
    pub failed: u64,
    /// [`Tally::Skipped`].
    pub skipped: u64,
}

impl Counts {
    /// Every operation that has ended, whichever way.
    #[must_use]
    pub fn processed(&self) -> u64 {
        self.done + self.already_done + self.merged + self.failed + self.skipped
    }
}

/// Progress of one apply (or fetch) of `total` operations. See the module docs.
pub struct Progress {
    total: u64,
    tallies: [AtomicU64; 5],
    finished: AtomicBool,
    display: Display,
}

enum Display {
    Hidden,
    Bar(ProgressBar),
    Plain(Mutex<Plain>),
}

struct Plain {
    out: Box<dyn Write + Send>,
    label: String,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// Progress over `total` operations, drawn as a bar when `terminal` (the caller checks
    /// `std::io::stderr().is_terminal()`), else as plain lines on stderr. `label` starts each
    /// line, e.g. `apply`.
    #[must_use]
    pub fn new(total: u64, terminal: bool, label: &str) -> Progress {
        if !terminal {
            return Progress::with_writer(total, label, Box::new(std::io::stderr()));
        }
        Progress::bar(total, label, ProgressDrawTarget::stderr())
    }

    fn bar(total: u64, label: &str, target: ProgressDrawTarget) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is fixed and tested, so the fallback only keeps this infallible.
        bar.set_style(bar_style().unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar.set_prefix(label.to_owned());
        Progress::with_display(total, Display::Bar(bar))
    }

    /// Plain-line progress written to `out` instead of stderr. Write errors are ignored.
    #[must_use]
    pub fn with_writer(total: u64, label: &str, out: Box<dyn Write + Send>) -> Progress {
        let now = Instant::now();
        Progress::with_display(
            total,
            Display::Plain(Mutex::new(Plain {
                out,
                label: label.to_owned(),
                started: now,
                last_line: now,
            })),
        )
    }

    /// Progress that counts but draws nothing (`-q`).
    #[must_use]
    pub fn hidden(total: u64) -> Progress {
        Progress::with_display(total, Display::Hidden)
    }

    fn with_display(total: u64, display: Display) -> Progress {
        Progress {
            total,
            tallies: Default::default(),
            finished: AtomicBool::new(false),
            display,
        }
    }

    /// Counts one finished operation and redraws if it is time to.
    pub fn record(&self, outcome: Tally) {
        let slot = match outcome {
            Tally::Done => 0,
            Tally::AlreadyDone => 1,
            Tally::Merged => 2,
            Tally::Failed => 3,
            Tally::Skipped => 4,
        };
        self.tallies[slot].fetch_add(1, Ordering::Relaxed);
        match &self.display {
            Display::Hidden => {}
            Display::Bar(bar) => {
                if outcome == Tally::Failed {
                    bar.set_message(format!(", {} failed", self.counts().failed));
                }
                bar.inc(1);
            }
            Display::Plain(plain) => {
                let mut plain = lock(plain);
                let now = Instant::now();
                if now.duration_since(plain.last_line) >= PLAIN_INTERVAL {
                    plain.last_line = now;
                    let elapsed = now.duration_since(plain.started);
                    let line = self.line(&plain.label, elapsed, false);
                    plain.emit(&line);
                }
            }
        }
    }

    /// Draws the final state: the bar is left complete on screen, or one last plain line is
    /// written with the time taken. Later calls do nothing.
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        match &self.display {
            Display::Hidden => {}
            Display::Bar(bar) => bar.finish(),
            Display::Plain(plain) => {
                let mut plain = lock(plain);
                let elapsed = Instant::now().duration_since(plain.started);
                let line = self.line(&plain.label, elapsed, true);
                plain.emit(&line);
            }
        }
    }

    /// Runs `f` with the bar cleared from the screen and redraws it afterwards, so a message
    /// written to stderr meanwhile is not torn by the bar. Plain and hidden modes just run `f`.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.display {
            Display::Bar(bar) => bar.suspend(f),
            Display::Hidden | Display::Plain(_) => f(),
        }
    }

    /// The counts so far.
    #[must_use]
    pub fn counts(&self) -> Counts {
        let [done, already_done, merged, failed, skipped] =
            self.tallies.each_ref().map(|t| t.load(Ordering::Relaxed));
        Counts {
            done,
            already_done,
            merged,
            failed,
            skipped,
        }
    }

    /// The number of operations this progress was made for.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.total
    }

    /// `apply: 1200/10000 (12%), 3 failed, ETA 41s`, or with `, took 1m22s` at the end.
    fn line(&self, label: &str, elapsed: Duration, last: bool) -> String {
        let counts = self.counts();
        let processed = counts.processed();
        let percent = processed
            .saturating_mul(100)
            .checked_div(self.total)
            .unwrap_or(100);
        let mut line = format!("{label}: {processed}/{} ({percent}%)", self.total);
        if counts.failed > 0 {
            let _ = write!(line, ", {} failed", counts.failed);
        }
        if last {
            let _ = write!(line, ", took {}", human(elapsed));
        } else if processed > 0 && processed < self.total {
            // The remaining operations at the average pace so far.
            let remaining = u128::from(self.total - processed);
            let eta_ms = elapsed.as_millis() * remaining / u128::from(processed);
            let eta = Duration::from_millis(u64::try_from(eta_ms).unwrap_or(u64::MAX));
            let _ = write!(line, ", ETA {}", human(eta));
        }
        line
    }
}

/// The bar: label, a bar as wide as the terminal allows, counts, percent, ETA, and the failed
/// count once there is one (set as the message).
fn bar_style() -> Result<ProgressStyle, indicatif::style::TemplateError> {
    Ok(ProgressStyle::with_template(
        "{prefix}: {wide_bar} {pos}/{len} ({percent}%), ETA {eta}{msg}",
    )?
    .progress_chars("=> "))
}

impl Plain {
    /// Writes one line. Progress is best effort: a closed or full stderr must not stop an apply.
    fn emit(&mut self, line: &str) {
        let _ = writeln!(self.out, "{line}").and_then(|()| self.out.flush());
    }
}

/// The lock, even if a task panicked while holding it: the state is only counters and a
/// writer, and losing progress lines would be worse than drawing after a panic.
fn lock(plain: &Mutex<Plain>) -> std::sync::MutexGuard<'_, Plain> {
    plain
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A duration rounded to the second: `41s`, `3m20s`, `1h02m`.
pub(crate) fn human(duration: Duration) -> String {
    let seconds = (duration.as_millis() + 500) / 1000;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A writer whose output the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let bytes = self.0.lock().expect("lock").clone();
            String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    fn plain(total: u64) -> (Progress, Captured) {
        let out = Captured::default();
        let progress = Progress::with_writer(total, "apply", Box::new(out.clone()));
        (progress, out)
    }

    /// Plain lines appear only once five seconds have passed since the last one, and carry
    /// the counts, the failures and an ETA at the pace so far.
    #[tokio::test(start_paused = true)]
    async fn plain_lines_every_five_seconds() {
        let (progress, out) = plain(10);
        for outcome in [
            Tally::Done,
            Tally::AlreadyDone,
            Tally::Merged,
            Tally::Skipped,
        ] {
            progress.record(outcome);
        }
        tokio::time::advance(Duration::from_millis(4999)).await;
        progress.record(Tally::Done);
        assert!(out.lines().is_empty(), "{:?}", out.lines());

        tokio::time::advance(Duration::from_millis(1)).await;
        progress.record(Tally::Failed);
        assert_eq!(out.lines(), ["apply: 6/10 (60%), 1 failed, ETA 3s"]);

        // Four seconds later: too soon for another line.
        tokio::time::advance(Duration::from_secs(4)).await;
        progress.record(Tally::Done);
        assert_eq!(out.lines().len(), 1);

        tokio::time::advance(Duration::from_secs(1)).await;
        progress.record(Tally::Failed);
        assert_eq!(
            out.lines()[1..],
            ["apply: 8/10 (80%), 2 failed, ETA 3s"],
            "8 done in 10 s leaves 2 for 2.5 s"
        );

        assert_eq!(
            progress.counts(),
            Counts {
                done: 3,
                already_done: 1,
                merged: 1,
                failed: 2,
                skipped: 1,
            }
        );
    }

    /// `finish` writes one last line with the time taken, once.
    #[tokio::test(start_paused = true)]
    async fn finish_prints_the_last_line_once() {
        let (progress, out) = plain(3);
        progress.record(Tally::Done);
        progress.record(Tally::Done);
        progress.record(Tally::Done);
        tokio::time::advance(Duration::from_secs(82)).await;
        progress.finish();
        progress.finish();
        assert_eq!(out.lines(), ["apply: 3/3 (100%), took 1m22s"]);
    }

    /// Without failures the line says nothing about them; with nothing to do it is complete.
    #[tokio::test(start_paused = true)]
    async fn lines_without_failures_or_work() {
        let (progress, out) = plain(4);
        tokio::time::advance(PLAIN_INTERVAL).await;
        progress.record(Tally::Done);
        assert_eq!(out.lines(), ["apply: 1/4 (25%), ETA 15s"]);

        let (empty, out) = plain(0);
        empty.finish();
        assert_eq!(out.lines(), ["apply: 0/0 (100%), took 0s"]);
    }

    /// Tasks sharing one progress through an Arc lose no counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn shared_across_tasks() {
        let progress = Arc::new(Progress::hidden(400));
        let tasks: Vec<_> = (0..400_u32)
            .map(|i| {
                let progress = Arc::clone(&progress);
                tokio::spawn(async move {
                    progress.record(if i % 4 == 0 {
                        Tally::Failed
                    } else {
                        Tally::Done
                    });
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
        progress.finish();
        let counts = progress.counts();
        assert_eq!(
            (counts.done, counts.failed, counts.processed()),
            (300, 100, 400)
        );
        assert_eq!(progress.total(), 400);
    }

    /// The bar's template parses, and the bar mode counts like the others (drawn to a hidden
    /// target so running the tests in a terminal shows no bar).
    #[test]
    fn bar_mode_counts() {
        assert!(bar_style().is_ok());
        let progress = Progress::bar(2, "apply", ProgressDrawTarget::hidden());
        progress.record(Tally::Done);
        progress.record(Tally::Failed);
        assert_eq!(progress.suspend(|| 7), 7);
        progress.finish();
        assert_eq!(progress.counts().processed(), 2);
    }

    /// Durations read naturally at every scale.
    #[test]
    fn human_durations() {
        let secs = Duration::from_secs;
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_millis(1499)), "1s");
        assert_eq!(human(secs(59)), "59s");
        assert_eq!(human(secs(60)), "1m00s");
        assert_eq!(human(secs(200)), "3m20s");
        assert_eq!(human(secs(3720)), "1h02m");
    }

    /// A progress can be shared between tasks on any thread.
    #[test]
    fn is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Progress>();
    }
}
