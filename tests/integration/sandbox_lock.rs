//! Two processes never share the sandbox's state file (issue 17): each would save over the
//! other's writes. A second `scimctl sandbox serve` of a file in use is refused at once with an
//! error naming the file and its holder; a command using the embedded sandbox waits for it
//! (saying so) and goes ahead once the holder has stopped; a killed holder frees it.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// How long any one step may take before the test fails.
const LIMIT: Duration = Duration::from_secs(60);

/// `scimctl sandbox serve --state STATE` on a free port: the child, its URL and its stdout.
fn serve(state: &Path) -> (Child, String, BufReader<ChildStdout>) {
    let mut child = crate::support::scimctl()
        .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.starts_with("sandbox: serving SCIM 2.0 at "), "{line}");
    let url = line.split_whitespace().nth(5).unwrap().to_owned();
    (child, url, stdout)
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, signal).unwrap();
}

/// Waits (bounded) for `child` to end; its exit code and the rest of its stdout.
fn reap(mut child: Child, mut stdout: BufReader<ChildStdout>) -> (i32, String) {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let status = child.wait().unwrap();
        let _ = tx.send((status.code().unwrap_or(-1), out));
    });
    rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("scimctl did not stop");
    })
}

/// The users in a state file, by `userName`.
fn users_in(state: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(state).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    value["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_owned())
        .collect()
}

/// A second `sandbox serve` of a state file in use exits 1 at once, naming the file and the
/// holder's pid, and changes nothing; the first keeps serving and saves on stop. Afterwards
/// the file is free; a holder killed with SIGKILL frees it too (the lock is the kernel's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_of_one_state_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state.json");
    let (first, url, stdout) = serve(&state);
    let output = crate::support::run_bounded(
        tmp.path(),
        &[
            "sandbox",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--state",
            state.to_str().unwrap(),
        ],
        LIMIT,
    );
    let (out, err) = crate::support::text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}\n{err}");
    assert!(out.is_empty(), "never served: {out}");
    assert!(
        err.contains(&format!("state file {} is in use", state.display())),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");

    // The first still serves, and what it was told is saved when it stops.
    let reply = reqwest::Client::new()
        .post(format!("{url}/Users"))
        .json(&json!({"userName": "ann@lock.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    signal(&first, nix::sys::signal::Signal::SIGTERM);
    let (code, out) = tokio::task::block_in_place(|| reap(first, stdout));
    assert_eq!(code, 0, "{out}");
    assert_eq!(users_in(&state), ["ann@lock.example"]);

    // Free again; and a holder killed outright does not leave it locked.
    let (killed, _, stdout) = serve(&state);
    signal(&killed, nix::sys::signal::Signal::SIGKILL);
    tokio::task::block_in_place(|| reap(killed, stdout));
    let (last, _, stdout) = serve(&state);
    signal(&last, nix::sys::signal::Signal::SIGTERM);
    let (code, out) = tokio::task::block_in_place(|| reap(last, stdout));
    assert_eq!(code, 0, "{out}");
    assert_eq!(users_in(&state), ["ann@lock.example"]);
}

/// `plan` with the embedded sandbox (`.scimctl/sandbox.json`) while `sandbox serve` uses that
/// file: it says it waits, naming the file and the holder, and once the server has stopped
/// (saving what it was told) it plans against what the server saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_sandbox_waits_for_the_state_file() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dir = cwd.join("desired-state");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("org.yaml"),
        "users:\n  - userName: ann@lock.example\n  - userName: bob@lock.example\n",
    )
    .unwrap();
    let state = cwd.join(".scimctl/sandbox.json");
    let (server, url, stdout) = serve(&state);
    let reply = reqwest::Client::new()
        .post(format!("{url}/Users"))
        .json(&json!({"userName": "ann@lock.example", "active": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);

    let mut plan = crate::support::scimctl()
        .args(["plan", dir.to_str().unwrap()])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read stderr until the plan says it waits (bounded), keeping the rest for later.
    let stderr = plan.stderr.take().unwrap();
    let (lines, told) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let waiting = tokio::task::block_in_place(|| {
        loop {
            match told.recv_timeout(LIMIT) {
                Ok(line) if line.contains("waiting up to") => break line,
                Ok(_) => {}
                Err(e) => {
                    let _ = plan.kill();
                    panic!("the plan never said it waits: {e}");
                }
            }
        }
    });
    assert!(waiting.contains(".scimctl/sandbox.json"), "{waiting}");
    assert!(
        waiting.contains(&format!("pid {}", server.id())),
        "{waiting}"
    );
    assert!(
        plan.try_wait().unwrap().is_none(),
        "the plan waits for the server"
    );

    signal(&server, nix::sys::signal::Signal::SIGTERM);
    let (code, out) = tokio::task::block_in_place(|| reap(server, stdout));
    assert_eq!(code, 0, "{out}");
    let plan_out = plan.stdout.take().unwrap();
    let (code, out) = tokio::task::block_in_place(|| reap(plan, BufReader::new(plan_out)));
    assert_eq!(code, 0, "{out}");
    // ann was created through the server: only bob is left to create.
    assert!(out.contains("+ create user bob@lock.example"), "{out}");
    assert!(!out.contains("create user ann@lock.example"), "{out}");
    assert!(out.contains("1 to create"), "{out}");
}
