//! Snapshot benchmark: read every user and group from the sandbox over loopback.
//!
//! The sandbox runs as a separate `scimctl sandbox serve` process on a pre-written state file,
//! so the figures are the client's own: wall time of `snapshot` (discovery included, a fresh
//! client each run), HTTP requests sent, and the peak resident memory of this process. The
//! server's peak is printed beside it, and then the start time and peak of a sandbox embedded
//! in a fresh process (`sandbox::start`) loading the same state file. Run with
//! `cargo bench --bench snapshot`; the bounds of the issue are 0.5 s for 10,000 users + 1,000
//! groups and 3 s / 250 MB for 100,000 + 10,000.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use scimctl::scim::{ClientConfig, ScimClient, ScimRead};
use serde_json::{Value, json};
use std::process::{Command, Stdio};

mod common;

const RUNS: usize = 5;

fn users(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
                ],
                "id": format!("u{i:07}"),
                "userName": format!("agent{i:06}@northwind.example"),
                "externalId": format!("hr-{i:06}"),
                "displayName": format!("Agent {i}"),
                "active": true,
                "title": "Support Agent",
                "emails": [{"value": format!("agent{i:06}@northwind.example"), "type": "work", "primary": true}],
                "phoneNumbers": [{"value": format!("+1415555{:04}", i % 10_000), "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": format!("{i:06}"),
                    "department": "Support",
                    "division": "Home"
                },
                "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User": {
                    "routingSkills": [{"name": "Billing", "proficiency": 3}]
                }
            })
        })
        .collect()
}

fn groups(n: usize, users: usize) -> Vec<Value> {
    (0..n)
        .map(|g| {
            let members: Vec<Value> = (0..10)
                .map(|k| json!({"value": format!("u{:07}", (g * 10 + k) % users), "type": "User"}))
                .collect();
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("Team {g:05}"),
                "externalId": format!("grp-{g:05}"),
                "members": members
            })
        })
        .collect()
}

fn peak_kib(pid: Option<u32>) -> u64 {
    let path = pid.map_or_else(
        || "/proc/self/status".to_owned(),
        |p| format!("/proc/{p}/status"),
    );
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts the sandbox in a child process (`sandbox::start`, as tests embed it) on the state
/// file, and returns the child's start time (load included) and peak RSS in KiB.
fn start_in_child(state: &std::path::Path) -> (f64, u64) {
    let output = Command::new(std::env::current_exe().expect("own path"))
        .env("SCIMCTL_BENCH_START", state)
        .stderr(Stdio::inherit())
        .output()
        .expect("run the in-process child");
    assert!(output.status.success(), "in-process start failed");
    let text = String::from_utf8(output.stdout).expect("utf-8");
    let (ms, kib) = text.trim().split_once(' ').expect("`ms kib`");
    (ms.parse().expect("ms"), kib.parse().expect("kib"))
}

fn main() {
    if let Some(state) = std::env::var_os("SCIMCTL_BENCH_START") {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let config = scimctl::sandbox::SandboxConfig::default().with_state_path(state);
        let addr = "127.0.0.1:0".parse().expect("addr");
        let (running, ms) = runtime.block_on(async {
            let started = tokio::time::Instant::now();
            let running = scimctl::sandbox::start(config, addr).await.expect("start");
            (running, started.elapsed().as_secs_f64() * 1000.0)
        });
        runtime.block_on(running.shutdown()).expect("stop");
        println!("{ms:.0} {}", peak_kib(None));
        return;
    }
    if let Some((u, g, state)) = common::seed_mode() {
        scimctl::sandbox::write_state_file(&state, users(u), groups(g, u)).expect("seed");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("snapshot benchmark: {RUNS} runs each, median shown");
    for (n_users, n_groups) in [(10_000usize, 1_000usize), (100_000, 10_000)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("sandbox.json");
        common::seed_in_child(&state, n_users, n_groups);
        let (server, url) = common::serve(&state);
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..RUNS {
            let (elapsed, sent) = runtime.block_on(async {
                let client = ScimClient::new(ClientConfig::new(url.clone())).expect("client");
                let start = tokio::time::Instant::now();
                let snap = client.snapshot().await.expect("snapshot");
                let elapsed = start.elapsed();
                assert_eq!(snap.users.len(), n_users);
                assert_eq!(snap.groups.len(), n_groups);
                (elapsed, client.stats().requests)
            });
            times.push(elapsed);
            requests = sent;
        }
        times.sort();
        let pages = n_users.div_ceil(1000) + n_groups.div_ceil(1000);
        println!(
            "{n_users:>7} users + {n_groups:>6} groups: median {:>6.0} ms (min {:.0} ms), {requests} requests = {pages} pages + {}, client peak RSS {} MiB, server peak RSS {} MiB",
            times[RUNS / 2].as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            requests - pages as u64,
            peak_kib(None) / 1024,
            peak_kib(Some(server.id())) / 1024,
        );
        common::stop(server);
        let (ms, kib) = start_in_child(&state);
        println!(
            "{:>31}  in-process sandbox::start on the same state: {ms:.0} ms, peak RSS {} MiB",
            "",
            kib / 1024
        );
    }
}
