//! The embedded sandbox survives `kill -9` (issue 15, item 3): every write it answered is in
//! its journal before the answer, so every user an interrupted apply recorded as created is
//! still there when the sandbox starts again from the same state file.

use std::fmt::Write as _;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use scimctl::sandbox::{self, ResourceKind, SandboxConfig};

/// How many users the apply would create, and how many it must have recorded before the kill.
const USERS: usize = 2_000;
const KILL_AFTER: usize = 300;

/// The audit records whose outcome is `done`, from a log a killed process may have cut short.
fn done_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["outcome"] == "done" && r["action"] == "create")
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect()
}

/// `scimctl apply --yes` into the default embedded sandbox (`.scimctl/sandbox.json`), killed
/// with SIGKILL once a few hundred creates are recorded; the restarted sandbox holds every
/// user the audit log records as created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_creates_survive_kill_9() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let mut users = String::from("users:\n");
    for i in 0..USERS {
        let _ = writeln!(users, "  - userName: u{i:05}@crash.example");
    }
    std::fs::write(dir.join("users.yaml"), users).unwrap();
    let mut child = crate::support::scimctl()
        .args(["apply", dir.to_str().unwrap(), "--yes"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let audit = cwd.path().join(".scimctl/audit.jsonl");
    let watch_audit = audit.clone();
    // Poll the audit log from a blocking thread (no timer in the test itself): a bounded
    // number of reads, each yielding the CPU to the apply.
    let seen = tokio::task::spawn_blocking(move || {
        for _ in 0..2_000_000 {
            let text = std::fs::read_to_string(&watch_audit).unwrap_or_default();
            let done = done_keys(&text).len();
            if done >= KILL_AFTER {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                return done;
            }
            if done == USERS {
                break;
            }
            std::thread::yield_now();
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        0
    });
    let seen = tokio::time::timeout(Duration::from_secs(120), seen)
        .await
        .expect("the apply gets going")
        .unwrap();
    let status = child.wait().unwrap();
    assert!(seen >= KILL_AFTER, "the apply recorded {seen} creates");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed mid-run, not finished: {status:?}"
    );

    let done = done_keys(&std::fs::read_to_string(&audit).unwrap());
    assert!(
        done.len() >= KILL_AFTER && done.len() < USERS,
        "{} done",
        done.len()
    );
    let state = cwd.path().join(".scimctl/sandbox.json");
    let restarted = sandbox::start(
        SandboxConfig::default().with_state_path(&state),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let store = restarted.store();
    let missing: Vec<&String> = done
        .iter()
        .filter(|name| store.find(ResourceKind::User, name).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} users recorded as created are gone after kill -9, e.g. {:?}",
        missing.len(),
        done.len(),
        missing.first()
    );
    restarted.shutdown().await.unwrap();

    // A rerun creates only the rest: nothing recorded as done is created twice.
    let output = crate::support::run_bounded(
        cwd.path(),
        &["apply", dir.to_str().unwrap(), "--yes"],
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let all = done_keys(&std::fs::read_to_string(&audit).unwrap());
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a user created twice: {out}");
    let last = sandbox::start(
        SandboxConfig::default().with_state_path(&state),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(last.store().count(ResourceKind::User), USERS);
    last.shutdown().await.unwrap();
}
