//! Starting `scimctl watch` as a child process: one start-up for the watch integration tests
//! and the watch benchmark (which includes this file with `#[path]`). It passes the arguments
//! every run gives (`--target` unless the directory names its target, a free loopback
//! `--listen`), reads the listen address from the first stdout line, keeps draining stdout,
//! and hands each stderr line to a callback on a thread of its own. Std only, so a benchmark without an async runtime can use it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// How to start one watch.
pub(crate) struct WatchArgs<'a> {
    /// Working directory (where `.scimctl/` state goes).
    pub(crate) cwd: &'a Path,
    /// The desired-state directory.
    pub(crate) dir: &'a Path,
    /// The target's base URL; empty: no `--target`, the target `scimctl.yaml` names.
    pub(crate) url: &'a str,
    /// A bearer token for the target (`SCIMCTL_TOKEN`), if it needs one.
    pub(crate) token: Option<&'a str>,
    /// `SCIMCTL_LOG`.
    pub(crate) log: &'a str,
    /// Further flags.
    pub(crate) extra: &'a [&'a str],
    /// Further environment.
    pub(crate) env: &'a [(&'a str, &'a str)],
}

/// A started watch: the child and the base URL of its HTTP listener.
pub(crate) struct Spawned {
    pub(crate) child: Child,
    pub(crate) base: String,
}

/// Starts `scimctl watch`; `on_line` gets each stderr line until it returns false.
pub(crate) fn spawn_watch(
    args: &WatchArgs<'_>,
    mut on_line: impl FnMut(String) -> bool + Send + 'static,
) -> Spawned {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimctl"));
    command
        .arg("watch")
        .arg(args.dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args.extra)
        .env("SCIMCTL_LOG", args.log)
        .envs(args.env.iter().copied())
        .current_dir(args.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !args.url.is_empty() {
        command.args(["--target", args.url]);
    }
    if let Some(token) = args.token {
        command.env("SCIMCTL_TOKEN", token);
    }
    let mut child = command.spawn().expect("start scimctl watch");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut first = String::new();
    stdout
        .read_line(&mut first)
        .expect("read watch's first line");
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no listen address in {first:?}"))
        .to_owned();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !on_line(line) {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    });
    Spawned { child, base }
}
