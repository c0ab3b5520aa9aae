//! The embedded sandbox: the shared client scenarios in-process, and the real
//! `scimctl sandbox serve` binary (URL on stdout, state persisted across restarts, SIGTERM
//! handled, no secret in anything it prints).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use scimctl::scim::wire::User;

use crate::scenarios;

/// Every client scenario passes against the sandbox, paging 25 at a time (the same
/// scenarios as against scim2-server).
#[tokio::test]
async fn scenarios_pass_against_the_sandbox() {
    let token = "sandbox-scenario-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = crate::support::bearer_client(&running.base_url, token, Some(25));
    Box::pin(scenarios::run_all(&client, "sandbox-scenarios")).await;
    assert_eq!(client.stats().retries, 0);
    // Pages were really fetched: 130 users at 25 a page, plus groups, plus discovery.
    assert!(running.stats().by_method.get >= 7, "{:?}", running.stats());
    running.shutdown().await.unwrap();
}

/// Starts `scimctl -vvv sandbox serve` on a free port; returns it and the URL it printed.
fn serve(
    state: &std::path::Path,
    token: &str,
) -> (Child, String, BufReader<std::process::ChildStdout>) {
    let mut child = crate::support::scimctl()
        .args([
            "-vvv",
            "sandbox",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-env",
            "SCIMCTL_TEST_SANDBOX_TOKEN",
            "--state",
        ])
        .arg(state)
        .env("SCIMCTL_TEST_SANDBOX_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(
        line.starts_with("sandbox: serving SCIM 2.0 at http://127.0.0.1:"),
        "{line}"
    );
    // The whole line as docs/sandbox.md shows it: the SCIM base URL and the state file.
    assert!(
        line.ends_with(&format!("/scim/v2 (state {})\n", state.display())),
        "{line}"
    );
    let url = line.split_whitespace().nth(5).unwrap().to_owned();
    (child, url, stdout)
}

/// SIGTERM, then the rest of stdout and all of stderr once it exits (bounded).
fn stop(mut child: Child, mut stdout: BufReader<std::process::ChildStdout>) -> (i32, String) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        let status = child.wait().unwrap();
        let _ = tx.send((status.code().unwrap_or(-1), format!("{out}{err}")));
    });
    rx.recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("sandbox serve did not stop on SIGTERM");
        })
}

/// The binary serves, saves its state on SIGTERM (exit 0), serves the same state after a
/// restart, and never prints its token, even at trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_serve_persists_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let token = "serve-token-5c1d8e2f-never-printed";

    let (child, url, stdout) = serve(&state, token);
    let first = crate::support::bearer_client(&url, token, None);
    let created = first
        .create(&scenarios::user("serve", 1))
        .await
        .unwrap()
        .resource;
    let (code, output) = stop(child, stdout);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("state saved to"), "{output}");
    assert!(!output.contains(token), "the token was printed");
    assert!(state.is_file());

    let (child, url, stdout) = serve(&state, token);
    let second = crate::support::bearer_client(&url, token, None);
    let read: User = second.get(created.id.as_deref().unwrap()).await.unwrap();
    assert_eq!(read.user_name, created.user_name);
    let wrong = crate::support::bearer_client(&url, "wrong-token", None)
        .get::<User>("x")
        .await
        .expect_err("401");
    assert!(wrong.is_unauthorized(), "{wrong}");
    let (code, output) = stop(child, stdout);
    assert_eq!(code, 0, "{output}");
    assert!(!output.contains(token) && !output.contains("wrong-token"));
}

/// Fault flags are checked by clap: a bad fraction is a usage error (64).
#[test]
fn bad_fault_flags_are_usage_errors() {
    for flag in ["--error-rate", "--drop-after-rate"] {
        let output = crate::support::scimctl()
            .args(["sandbox", "serve", flag, "1.5"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(64), "{flag}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("not a fraction between 0 and 1"),
            "{flag}: {stderr}"
        );
    }
}
