//! What the benchmarks share: a `scimctl sandbox serve` child on a state file, seeding that
//! file in a child process, and stopping the server.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts `scimctl sandbox serve` on `state` and returns it with the base URL it printed.
pub(crate) fn serve(state: &Path) -> (Child, String) {
    serve_with(state, &[])
}

/// [`serve`] with extra flags (faults: latency, rate limit).
pub(crate) fn serve_with(state: &Path, flags: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimctl"))
        .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(state)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start scimctl sandbox serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the URL line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

/// Stops a server started by [`serve`] with SIGTERM (it saves its state) and waits for it.
pub(crate) fn stop(mut server: Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = server.wait();
}

/// Writes the state file by re-running this benchmark with `SCIMCTL_BENCH_SEED=users,groups`
/// and `SCIMCTL_BENCH_STATE`, so that building 110,000 JSON values does not count in this
/// process's peak memory. The benchmark's `main` answers that mode with [`seed_mode`].
pub(crate) fn seed_in_child(state: &Path, users: usize, groups: usize) {
    let status = Command::new(std::env::current_exe().expect("own path"))
        .env("SCIMCTL_BENCH_SEED", format!("{users},{groups}"))
        .env("SCIMCTL_BENCH_STATE", state)
        .status()
        .expect("run the seeding child");
    assert!(status.success(), "seeding failed");
}

/// In the seeding child: the requested sizes and state path, if this is that child.
pub(crate) fn seed_mode() -> Option<(usize, usize, std::path::PathBuf)> {
    let spec = std::env::var("SCIMCTL_BENCH_SEED").ok()?;
    let (u, g) = spec.split_once(',').expect("users,groups");
    let state = std::env::var_os("SCIMCTL_BENCH_STATE").expect("state path");
    Some((
        u.parse().expect("users"),
        g.parse().expect("groups"),
        state.into(),
    ))
}

/// What one apply printed: its summary figures.
#[allow(dead_code, reason = "used by the apply and bulk benchmarks only")]
pub(crate) struct Applied {
    pub(crate) wall_s: f64,
    pub(crate) done: u64,
    pub(crate) requests: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) rate_limited: u64,
}

/// Runs `scimctl apply DIR --target URL --yes extra...` in `cwd` and reads its report.
#[allow(dead_code, reason = "used by the apply and bulk benchmarks only")]
pub(crate) fn apply(cwd: &Path, dir: &Path, url: &str, extra: &[&str]) -> Applied {
    let started = tokio::time::Instant::now();
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimctl"));
    command
        .arg("apply")
        .arg(dir)
        .args(["--target", url, "--yes"])
        .args(extra);
    run_apply(cwd, command, started).0
}

/// Marks the line the measuring wrapper ([`measure_child`]) adds to its child's output.
const PEAK_LINE: &str = "bench-wrapper peak KiB: ";

/// [`apply`] through a wrapper process (this benchmark re-run with `SCIMCTL_BENCH_MEASURE`,
/// answered by [`measure_child`]) whose only child is the apply, so that the wrapper's
/// `RUSAGE_CHILDREN` maximum resident set is the apply's own peak. Returns it in KiB too.
#[allow(dead_code, reason = "used by the apply benchmark only")]
pub(crate) fn apply_measured(cwd: &Path, dir: &Path, url: &str, extra: &[&str]) -> (Applied, u64) {
    let started = tokio::time::Instant::now();
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .env("SCIMCTL_BENCH_MEASURE", "1")
        .arg("apply")
        .arg(dir)
        .args(["--target", url, "--yes"])
        .args(extra);
    let (applied, out) = run_apply(cwd, command, started);
    let peak = out
        .lines()
        .find_map(|l| l.strip_prefix(PEAK_LINE))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the wrapper printed no peak: {out}"));
    (applied, peak)
}

/// In the wrapper process of [`apply_measured`]: runs scimctl with `args`, passing its output
/// through, then prints its peak resident set; returns its status, for the wrapper to exit
/// with.
#[allow(dead_code, reason = "used by the apply benchmark only")]
pub(crate) fn measure_child(args: &[String]) -> std::process::ExitCode {
    let status = Command::new(env!("CARGO_BIN_EXE_scimctl"))
        .args(args)
        .stdin(Stdio::null())
        .status()
        .expect("run scimctl");
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!("{PEAK_LINE}{}", usage.max_rss());
    std::process::ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
}

/// Runs an apply `command` in `cwd` and reads its report; also returns its standard output.
fn run_apply(cwd: &Path, mut command: Command, started: tokio::time::Instant) -> (Applied, String) {
    let output = command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run scimctl apply");
    let wall_s = started.elapsed().as_secs_f64();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "apply failed: {out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("Applied to "))
        .unwrap_or_else(|| panic!("no summary in {out}"));
    // "Applied to URL: N done, ... (R requests in S s)."
    let number_before = |text: &str, word: &str| -> f64 {
        let at = text
            .find(word)
            .unwrap_or_else(|| panic!("no {word:?} in {text}"));
        text[..at]
            .split_whitespace()
            .next_back()
            .and_then(|n| n.trim_start_matches('(').parse().ok())
            .unwrap_or_else(|| panic!("no number before {word:?} in {text}"))
    };
    let rate_limited = out
        .lines()
        .find(|l| l.starts_with("Throttling: "))
        .map_or(0.0, |l| number_before(l, " answered 429"));
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "counts printed as integers"
    )]
    let count = |f: f64| f as u64;
    let applied = Applied {
        wall_s,
        done: count(number_before(summary, " done,")),
        requests: count(number_before(summary, " requests in")),
        elapsed_s: number_before(summary, " s)."),
        rate_limited: count(rate_limited),
    };
    (applied, out.into_owned())
}
