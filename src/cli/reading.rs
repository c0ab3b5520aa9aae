//! Progress of a long read on stderr (`plan`, `apply`, `export`, `explain --live`, `doctor`):
//! a spinner with the counts so far on a terminal; otherwise (CI logs, pipes) a plain line
//! every five seconds once the read has taken that long, and a last line with the time it
//! took; nothing under `-q`. A read that ends within five seconds leaves no plain line, so
//! short runs stay as quiet as before.
//!
//! What the counts are is the caller's: a closure gives the body of the line (for a tenant
//! read, [`crate::scim::reading::ReadCounts::line`]). A ticker task on the runtime draws; it
//! decides nothing, and a failure to draw never fails the command. Time comes from
//! `tokio::time`, so the cadence is tested with a paused clock.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::apply::progress::{PLAIN_INTERVAL, human};

/// How often the spinner's counts are refreshed on a terminal.
const SPIN_INTERVAL: Duration = Duration::from_millis(120);

/// The body of a progress line, or `None` while there is nothing to count yet.
type Line = Box<dyn Fn() -> Option<String> + Send + Sync>;

/// A running progress display; [`ReadProgress::finish`] ends it, and dropping it (a failed
/// read) stops it without a last line.
pub(super) struct ReadProgress {
    shared: Arc<Shared>,
    ticker: Option<JoinHandle<()>>,
}

struct Shared {
    label: &'static str,
    line: Line,
    started: Instant,
    draw: Mutex<Draw>,
}

enum Draw {
    Hidden,
    Spinner(ProgressBar),
    Plain {
        out: Box<dyn Write + Send>,
        /// Whether a line was written (the read has taken five seconds or more).
        written: bool,
    },
}

impl ReadProgress {
    /// Starts the display for a read: a spinner on a terminal, plain lines otherwise, nothing
    /// when `quiet`. `label` starts each line (`plan`).
    pub(super) fn start(
        runtime: &tokio::runtime::Handle,
        label: &'static str,
        quiet: bool,
        line: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> ReadProgress {
        use std::io::IsTerminal;
        let draw = if quiet {
            Draw::Hidden
        } else if std::io::stderr().is_terminal() {
            // Styled before it is shown, so the first frame is already complete.
            let spinner = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            // The template is fixed and tested, so the fallback only keeps this infallible.
            spinner.set_style(spinner_style().unwrap_or_else(|_| ProgressStyle::default_spinner()));
            spinner.set_message("reading the tenant");
            spinner.set_prefix(label);
            spinner.set_draw_target(ProgressDrawTarget::stderr());
            Draw::Spinner(spinner)
        } else {
            Draw::Plain {
                out: Box::new(std::io::stderr()),
                written: false,
            }
        };
        ReadProgress::with_draw(runtime, label, draw, Box::new(line))
    }

    /// [`ReadProgress::start`] for a read of the whole tenant through `client`: users and
    /// groups listed, role grants read.
    pub(super) fn tenant(
        runtime: &tokio::runtime::Handle,
        label: &'static str,
        quiet: bool,
        client: &crate::scim::ScimClient,
    ) -> ReadProgress {
        let counts = client.read_counts();
        ReadProgress::start(runtime, label, quiet, move || counts.line())
    }

    /// Plain-line progress written to `out`.
    #[cfg(test)]
    fn with_writer(
        runtime: &tokio::runtime::Handle,
        label: &'static str,
        out: Box<dyn Write + Send>,
        line: Line,
    ) -> ReadProgress {
        let draw = Draw::Plain {
            out,
            written: false,
        };
        ReadProgress::with_draw(runtime, label, draw, line)
    }

    fn with_draw(
        runtime: &tokio::runtime::Handle,
        label: &'static str,
        draw: Draw,
        line: Line,
    ) -> ReadProgress {
        let every = match draw {
            Draw::Hidden => None,
            Draw::Spinner(_) => Some(SPIN_INTERVAL),
            Draw::Plain { .. } => Some(PLAIN_INTERVAL),
        };
        let shared = Arc::new(Shared {
            label,
            line,
            started: Instant::now(),
            draw: Mutex::new(draw),
        });
        let ticker = every.map(|every| {
            let shared = Arc::clone(&shared);
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
                loop {
                    ticks.tick().await;
                    shared.draw_now();
                }
            })
        });
        ReadProgress { shared, ticker }
    }

    /// Ends the display: the spinner is cleared (what follows is the command's output), and a
    /// plain display that wrote a line writes the last one with the time taken.
    pub(super) fn finish(mut self) {
        self.stop();
        let shared = &self.shared;
        let mut draw = lock(&shared.draw);
        match &mut *draw {
            Draw::Hidden => {}
            Draw::Spinner(spinner) => spinner.finish_and_clear(),
            Draw::Plain { out, written } => {
                if *written {
                    let what = (shared.line)().map_or_else(String::new, |c| format!(": {c}"));
                    let took = human(shared.started.elapsed());
                    let _ = writeln!(out, "{}: read the tenant{what}, took {took}", shared.label)
                        .and_then(|()| out.flush());
                }
            }
        }
    }

    fn stop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

impl Drop for ReadProgress {
    fn drop(&mut self) {
        self.stop();
        if let Draw::Spinner(spinner) = &*lock(&self.shared.draw) {
            spinner.finish_and_clear();
        }
    }
}

impl Shared {
    fn draw_now(&self) {
        let counts = (self.line)();
        let mut draw = lock(&self.draw);
        match &mut *draw {
            Draw::Hidden => {}
            Draw::Spinner(spinner) => {
                if let Some(counts) = counts {
                    spinner.set_message(format!("reading the tenant: {counts}"));
                }
                spinner.tick();
            }
            Draw::Plain { out, written } => {
                let counts = counts.unwrap_or_else(|| "no answer yet".into());
                let elapsed = human(self.started.elapsed());
                *written = true;
                // Best effort: a closed or full stderr must not stop the command.
                let _ = writeln!(
                    out,
                    "{}: reading the tenant: {counts} ({elapsed})",
                    self.label
                )
                .and_then(|()| out.flush());
            }
        }
    }
}

/// `plan: ⠋ reading the tenant: 12000/100000 users, 300/10000 groups (12s)`.
fn spinner_style() -> Result<ProgressStyle, indicatif::style::TemplateError> {
    ProgressStyle::with_template("{prefix}: {spinner} {msg} ({elapsed})")
}

/// The lock, even if a task panicked holding it: it guards only a writer and a flag.
fn lock(draw: &Mutex<Draw>) -> std::sync::MutexGuard<'_, Draw> {
    draw.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn counting(read: &Arc<AtomicU64>) -> Line {
        let read = Arc::clone(read);
        Box::new(move || match read.load(Ordering::Relaxed) {
            0 => None,
            n => Some(format!("{n}/100000 users")),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_read_writes_nothing() {
        let out = Captured::default();
        let read = Arc::new(AtomicU64::new(0));
        let progress = ReadProgress::with_writer(
            &tokio::runtime::Handle::current(),
            "plan",
            Box::new(out.clone()),
            counting(&read),
        );
        read.store(100_000, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        progress.finish();
        assert_eq!(out.text(), "");
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_read_writes_a_line_every_five_seconds_and_the_time_it_took() {
        let out = Captured::default();
        let read = Arc::new(AtomicU64::new(0));
        let progress = ReadProgress::with_writer(
            &tokio::runtime::Handle::current(),
            "export",
            Box::new(out.clone()),
            counting(&read),
        );
        // Nothing answered within five seconds: the line says so.
        tokio::time::sleep(Duration::from_millis(5_050)).await;
        read.store(40_000, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(5)).await;
        read.store(100_000, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        progress.finish();
        assert_eq!(
            out.text(),
            "export: reading the tenant: no answer yet (5s)\n\
             export: reading the tenant: 40000/100000 users (10s)\n\
             export: read the tenant: 100000/100000 users, took 12s\n"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_stops_without_a_last_line() {
        let out = Captured::default();
        let read = Arc::new(AtomicU64::new(7));
        let progress = ReadProgress::with_writer(
            &tokio::runtime::Handle::current(),
            "plan",
            Box::new(out.clone()),
            counting(&read),
        );
        tokio::time::sleep(Duration::from_millis(5_050)).await;
        drop(progress);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(
            out.text(),
            "plan: reading the tenant: 7/100000 users (5s)\n"
        );
    }

    #[test]
    fn the_spinner_template_is_valid() {
        assert!(spinner_style().is_ok());
    }
}
