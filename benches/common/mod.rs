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
