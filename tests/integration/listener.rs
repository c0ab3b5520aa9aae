//! `scimctl watch`'s listener under slow clients: with every connection slot and the health
//! reserve held by clients that never finish a request line, `/healthz` still answers once
//! the reserve's short header timeout frees a slot, long before the regular header timeout;
//! connections past the cap and the reserve are closed at once.
//!
//! Everything waits on deadlines; nothing sleeps.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

use crate::support::scimctl;

/// The listener's regular header timeout (`watch::listener::Limits::default`).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `GET path` on a fresh connection: the whole response, or `None` when the server closed
/// the connection without one (or did not answer within a second).
async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.ok()?;
        (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
    };
    timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_slow_clients_hold_every_connection() {
    let token = "listener-token";
    let running = crate::support::bearer_sandbox(token).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("org.yaml"), "users: []\ngroups: []\n").unwrap();
    let mut child = scimctl()
        .arg("watch")
        .arg(&dir)
        .args(["--target", &running.base_url, "--listen", "127.0.0.1:0"])
        .args(["--max-connections", "4"])
        .env("SCIMCTL_TOKEN", token)
        .env("SCIMCTL_LOG", "scimctl=warn")
        .current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start scimctl watch");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let _running = Running(child);
    let first = tokio::task::spawn_blocking(move || {
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        first
    });
    let first = timeout(Duration::from_secs(60), first)
        .await
        .expect("watch printed no address")
        .unwrap();
    let addr: SocketAddr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .parse()
        .unwrap();
    // No request before the slow clients: the listener frees a connection's slot only after
    // the client has seen it closed, so a slot an earlier request held could still be taken
    // when the first slow clients arrive, and one of the connections counted as over the
    // limit below would get it and be held for the regular header timeout. The answer at the
    // end checks /healthz.

    // The 4 regular slots, the 8 reserve slots and 20 more, each with half a request line.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..32 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /metr").await.unwrap();
        slow.push(stream);
    }
    // The last ones are over every limit: closed at once, not left in the backlog.
    let mut over = slow.split_off(12);
    for stream in &mut over {
        let mut buf = [0u8; 64];
        let read = timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a connection over the limit was left open");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }

    // /healthz answers once a reserve slot is free (its header timeout is 2 s), long before
    // the slow clients on the regular slots are cut off.
    let deadline = started + HEADER_TIMEOUT - Duration::from_secs(1);
    let answer = loop {
        if let Some(answer) = get(addr, "/healthz").await {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz did not answer within {:?}",
            started.elapsed()
        );
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok\n"), "{answer}");
    drop(slow);
}
