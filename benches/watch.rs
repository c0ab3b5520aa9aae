//! Watch benchmark: `scimctl watch` against a separate `scimctl sandbox serve` on loopback,
//! with 10,000 users in 100 files.
//!
//! 1. Edit latency: 50 times, one user's title is changed in its file; the time from the
//!    write to watch's `reconciled` log line for that change (the tenant is then checked to
//!    hold the new title). Every reconcile loads all 10,000 users and reads the whole tenant,
//!    so this is the full cost, debounce (200 ms) included. p50, p95 and max; the bound of
//!    the issue is 1 s at p95.
//! 2. Idle: CPU time of the watch process (from `/proc/PID/stat`) over 60 s with no change
//!    and no resync due, and over 60 s with a resync every 20 s, from which the cost of one
//!    resync and the average at the default 5-minute interval follow. The requests watch
//!    sent while idle come from its `/metrics`; writes must be zero. Bound: under 1 % CPU.
//!
//! Run with `cargo bench --bench watch` (about four minutes).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Duration;
use tokio::time::Instant;

#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one seeds no state file"
)]
mod common;
/// The watch start-up the integration tests use, so the benchmark starts watch the same way.
#[path = "../tests/integration/support/watch.rs"]
mod watch_process;

use watch_process::{Spawned, WatchArgs, spawn_watch};

const USERS: usize = 10_000;
const PER_FILE: usize = 100;
const EDITS: usize = 50;

fn file_text(file: usize, edited: Option<(usize, usize)>) -> String {
    let mut yaml = String::from("users:\n");
    for i in file * PER_FILE..(file + 1) * PER_FILE {
        let title = match edited {
            Some((user, round)) if user == i => format!("Agent Round {round}"),
            _ => "Support Agent".to_owned(),
        };
        let _ = write!(
            yaml,
            "  - userName: agent{i:06}@northwind.example\n    displayName: Agent {i}\n    \
             title: {title}\n    department: Support\n"
        );
    }
    yaml
}

fn write_file(dir: &Path, file: usize, edited: Option<(usize, usize)>) {
    // Written through a temporary file and a rename, as editors do.
    let path = dir.join(format!("users/users-{file:03}.yaml"));
    let tmp = dir.join(format!("users/.users-{file:03}.yaml.tmp"));
    std::fs::write(&tmp, file_text(file, edited)).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// A watch child whose stderr lines arrive on a channel.
struct Watch {
    child: Child,
    lines: mpsc::Receiver<String>,
    base: String,
}

impl Watch {
    fn start(cwd: &Path, dir: &Path, url: &str, interval: &str) -> Watch {
        let (tx, lines) = mpsc::channel();
        let Spawned { child, base } = spawn_watch(
            &WatchArgs {
                cwd,
                dir,
                url,
                token: None,
                log: "scimctl=info",
                extra: &["--interval", interval],
                env: &[],
            },
            move |line| tx.send(line).is_ok(),
        );
        Watch { child, lines, base }
    }

    fn wait_for(&self, want: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .expect("watch went quiet");
            if want(&line) {
                return line;
            }
        }
    }

    /// utime + stime of the watch process, in seconds.
    fn cpu_seconds(&self, ticks_per_second: f64) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name; utime and stime are 14 and 15.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks as f64 / ticks_per_second
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

async fn metric_lines(base: &str, prefix: &str) -> Vec<String> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn edit_latency(tmp: &Path, url: &str) -> String {
    let dir = tmp.join("desired");
    let watch = Watch::start(tmp, &dir, url, "1h");
    watch.wait_for(|l| l.contains(" reconciled ") && l.contains("trigger=\"start\""));
    let mut times = Vec::with_capacity(EDITS);
    for round in 0..EDITS {
        let user = (round * 197) % USERS;
        let file = user / PER_FILE;
        let started = Instant::now();
        write_file(&dir, file, Some((user, round)));
        let line =
            watch.wait_for(|l| l.contains(" reconciled ") && l.contains("trigger=\"files\""));
        times.push(started.elapsed().as_secs_f64());
        assert!(line.contains("applied=1"), "{line}");
        write_file(&dir, file, None);
        let line =
            watch.wait_for(|l| l.contains(" reconciled ") && l.contains("trigger=\"files\""));
        assert!(line.contains("applied=1"), "{line}");
    }
    let base = watch.base.clone();
    let ops = metric_lines(&base, "scimctl_operations_total{").await;
    watch.stop();
    times.sort_by(f64::total_cmp);
    let p95 = percentile(&times, 0.95);
    format!(
        "edit latency over {EDITS} edits (10,000 users): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms; \
         bound 1 s at p95: {}; operations: {}",
        percentile(&times, 0.5) * 1000.0,
        p95 * 1000.0,
        times[times.len() - 1] * 1000.0,
        if p95 <= 1.0 {
            "within bound"
        } else {
            "OVER BOUND"
        },
        ops.join(", ")
    )
}

async fn idle(tmp: &Path, url: &str, interval: &str, window: Duration) -> (f64, Vec<String>) {
    let dir = tmp.join("desired");
    let watch = Watch::start(tmp, &dir, url, interval);
    watch.wait_for(|l| l.contains(" reconciled ") && l.contains("trigger=\"start\""));
    let tps = ticks_per_second();
    let before = watch.cpu_seconds(tps);
    tokio::time::sleep(window).await;
    let used = watch.cpu_seconds(tps) - before;
    let mut seen = metric_lines(&watch.base, "scimctl_http_requests_total{").await;
    seen.extend(metric_lines(&watch.base, "scimctl_operations_total{").await);
    seen.extend(metric_lines(&watch.base, "scimctl_reconciles_total{").await);
    watch.stop();
    (used, seen)
}

#[tokio::main]
async fn main() {
    println!("watch benchmark (scimctl watch against scimctl sandbox serve on loopback)");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(dir.join("users")).unwrap();
    for file in 0..USERS / PER_FILE {
        write_file(&dir, file, None);
    }
    let (server, url) = common::serve(&tmp.path().join("sandbox.json"));
    println!("{}", edit_latency(tmp.path(), &url).await);

    let window = Duration::from_secs(60);
    let (quiet, seen) = idle(tmp.path(), &url, "1h", window).await;
    println!(
        "idle, no resync due: {:.3} s CPU in {} s = {:.2} % (bound 1 %); {}",
        quiet,
        window.as_secs(),
        quiet / window.as_secs_f64() * 100.0,
        seen.join(", ")
    );
    let (busy, seen) = idle(tmp.path(), &url, "20s", window).await;
    let resyncs: f64 = seen
        .iter()
        .filter(|l| l.contains("trigger=\"resync\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let per_resync = (busy - quiet).max(0.0) / resyncs.max(1.0);
    println!(
        "idle with a resync every 20 s: {:.3} s CPU in {} s = {:.2} % over {resyncs} resyncs; one \
         resync of 10,000 users costs about {:.3} s CPU, so the default 5-minute interval \
         averages {:.2} % (bound 1 %); {}",
        busy,
        window.as_secs(),
        busy / window.as_secs_f64() * 100.0,
        per_resync,
        (quiet / window.as_secs_f64() + per_resync / 300.0) * 100.0,
        seen.join(", ")
    );
    common::stop(server);
}
