//! Plan benchmark: `scimctl plan` end to end (process start to exit) against the sandbox over
//! loopback, for 10,000 users + 1,000 groups and 100,000 users + 10,000 groups.
//!
//! Desired state is generated as YAML (100 users a file, 10 members a group); the live tenant
//! is the same org with 1 % of users' titles changed and 0.5 % of users missing, written as a
//! sandbox state file and served by a separate `scimctl sandbox serve`. Each run starts
//! `scimctl plan DIR --target URL --format json` through a small wrapper process (this binary
//! re-run with `SCIMCTL_BENCH_MEASURE`), whose only child is the plan, so the wrapper's
//! `RUSAGE_CHILDREN` maximum resident set is exactly the plan process's peak memory. Medians
//! of 5 runs. Run with `cargo bench --bench plan`; the bounds are 1 s, and 3 s with 250 MB.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

use serde_json::{Value, json};

mod common;

const RUNS: usize = 5;
const PER_FILE: usize = 100;
const MEMBERS: usize = 10;

fn name(i: usize) -> String {
    format!("agent{i:06}@northwind.example")
}

fn title(i: usize, live: bool) -> &'static str {
    if live && i % 100 == 7 {
        "Trainee"
    } else {
        "Support Agent"
    }
}

fn write_desired(dir: &Path, users: usize, groups: usize) {
    std::fs::create_dir_all(dir.join("users")).unwrap();
    for file in 0..users.div_ceil(PER_FILE) {
        let mut text = String::from("users:\n");
        for i in file * PER_FILE..((file + 1) * PER_FILE).min(users) {
            let _ = write!(
                text,
                "  - userName: {n}\n    displayName: Agent {i}\n    externalId: hr-{i:06}\n    \
                 title: {t}\n    department: Support\n    active: true\n    \
                 emails: [{{value: {n}, type: work, primary: true}}]\n    \
                 phoneNumbers: [{{value: \"+1415555{p:04}\", type: work}}]\n",
                n = name(i),
                t = title(i, false),
                p = i % 10_000
            );
        }
        std::fs::write(dir.join(format!("users/users-{file:05}.yaml")), text).unwrap();
    }
    let mut text = String::from("groups:\n");
    for g in 0..groups {
        let members: Vec<String> = (0..MEMBERS)
            .map(|k| name((g * MEMBERS + k) % users))
            .collect();
        let _ = write!(
            text,
            "  - displayName: Team {g:05}\n    externalId: grp-{g:05}\n    members: [{}]\n",
            members.join(", ")
        );
    }
    std::fs::write(dir.join("groups.yaml"), text).unwrap();
}

fn live_users(users: usize) -> Vec<Value> {
    (0..users)
        .filter(|i| i % 200 != 3)
        .map(|i| {
            json!({
                "id": format!("u{i:07}"),
                "userName": name(i),
                "displayName": format!("Agent {i}"),
                "externalId": format!("hr-{i:06}"),
                "title": title(i, true),
                "active": true,
                "emails": [{"value": name(i), "type": "work", "primary": true}],
                "phoneNumbers": [{"value": format!("+1415555{:04}", i % 10_000), "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Support"}
            })
        })
        .collect()
}

fn live_groups(groups: usize, users: usize) -> Vec<Value> {
    (0..groups)
        .map(|g| {
            let members: Vec<Value> = (0..MEMBERS)
                .map(|k| (g * MEMBERS + k) % users)
                .filter(|i| i % 200 != 3)
                .map(|i| json!({"value": format!("u{i:07}"), "type": "User"}))
                .collect();
            json!({
                "displayName": format!("Team {g:05}"),
                "externalId": format!("grp-{g:05}"),
                "members": members
            })
        })
        .collect()
}

/// Wrapper mode: runs the plan (args after the first), prints `elapsed_us peak_kib exit`.
fn measure(args: &[String]) {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_scimctl"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("run scimctl plan");
    let elapsed = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!(
        "{} {} {}",
        elapsed.as_micros(),
        usage.max_rss(),
        status.code().unwrap_or(-1)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if std::env::var_os("SCIMCTL_BENCH_MEASURE").is_some() {
        measure(&args[1..]);
        return;
    }
    if let Some((u, g, state)) = common::seed_mode() {
        scimctl::sandbox::write_state_file(&state, live_users(u), live_groups(g, u)).expect("seed");
        return;
    }
    println!("plan benchmark: {RUNS} runs each, median shown (process start to exit)");
    let only_large = std::env::var_os("SCIMCTL_BENCH_LARGE_ONLY").is_some();
    for (users, groups) in [(10_000usize, 1_000usize), (100_000, 10_000)] {
        if only_large && users < 100_000 {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let desired = tmp.path().join("desired-state");
        write_desired(&desired, users, groups);
        let state = tmp.path().join("sandbox.json");
        common::seed_in_child(&state, users, groups);
        let (server, url) = common::serve(&state);
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        for _ in 0..RUNS {
            let out = Command::new(std::env::current_exe().unwrap())
                .env("SCIMCTL_BENCH_MEASURE", "1")
                .args(["plan", desired.to_str().unwrap(), "--target", &url])
                .args(["--format", "json", "--detailed-exitcode"])
                .output()
                .unwrap();
            let line = String::from_utf8_lossy(&out.stdout);
            let fields: Vec<u64> = line
                .split_whitespace()
                .map(|f| f.parse().unwrap())
                .collect();
            assert_eq!(fields[2], 2, "the plan finds the seeded differences");
            times.push(Duration::from_micros(fields[0]));
            peaks.push(fields[1]);
        }
        times.sort();
        peaks.sort_unstable();
        println!(
            "{users:>7} users + {groups:>6} groups: median {:>6.0} ms (min {:.0}, max {:.0}), plan peak RSS median {} MiB (max {} MiB)",
            times[RUNS / 2].as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            times[RUNS - 1].as_secs_f64() * 1000.0,
            peaks[RUNS / 2] / 1024,
            peaks[RUNS - 1] / 1024,
        );
        if let Some(keep) = std::env::var_os("SCIMCTL_BENCH_KEEP") {
            // For profiling: leave the files and the server running, and say where.
            let kept = tmp.keep();
            let _ = std::fs::write(keep, format!("{} {url} {}\n", kept.display(), server.id()));
            continue;
        }
        common::stop(server);
    }
}
