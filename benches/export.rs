//! Export benchmark: `scimctl export` end to end (process start to exit) against the sandbox
//! over loopback, for 10,000 users + 1,000 groups and 100,000 users + 10,000 groups.
//!
//! The tenant is written as a sandbox state file (users in 20 departments, each with an email,
//! a phone number, a manager, two roles and the enterprise extension; groups of 10 members)
//! and served by a separate `scimctl sandbox serve`. Each run exports into a fresh directory
//! through a small wrapper process (this binary re-run with `SCIMCTL_BENCH_MEASURE`), whose
//! only child is the export, so the wrapper's `RUSAGE_CHILDREN` maximum resident set is the
//! export's peak memory. Every run must write the same bytes, the request count must be the
//! page count plus the two discovery requests, and `plan --detailed-exitcode` on the export
//! must exit 0 (run once per size, timed too). Medians of 5 runs. Run with
//! `cargo bench --bench export`; the bound is 5 s for 100,000 users + 10,000 groups.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

use serde_json::{Value, json};

mod common;

const RUNS: usize = 5;
const MEMBERS: usize = 10;
const DEPARTMENTS: usize = 20;
const PAGE: usize = 1_000;
const BOUND: Duration = Duration::from_secs(5);

fn name(i: usize) -> String {
    format!("agent{i:06}@northwind.example")
}

fn live_users(users: usize) -> Vec<Value> {
    (0..users)
        .map(|i| {
            let dept = i % DEPARTMENTS;
            json!({
                "id": format!("u{i:07}"),
                "userName": name(i),
                "displayName": format!("Agent {i}"),
                "externalId": format!("hr-{i:06}"),
                "title": "Support Agent",
                "active": true,
                "emails": [{"value": name(i), "type": "work", "primary": true}],
                "phoneNumbers": [{"value": format!("+1415555{:04}", i % 10_000), "type": "work"}],
                "roles": [{"value": "Agent"}, {"value": "Queue Member"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "department": format!("Department {dept:02}"),
                    "division": "Home",
                    "employeeNumber": format!("{i:06}"),
                    "manager": {"value": format!("u{:07}", dept)}
                }
            })
        })
        .collect()
}

fn live_groups(groups: usize, users: usize) -> Vec<Value> {
    (0..groups)
        .map(|g| {
            let members: Vec<Value> = (0..MEMBERS)
                .map(|k| json!({"value": format!("u{:07}", (g * MEMBERS + k) % users), "type": "User"}))
                .collect();
            json!({
                "displayName": format!("Team {g:05}"),
                "externalId": format!("grp-{g:05}"),
                "members": members
            })
        })
        .collect()
}

/// Wrapper mode: runs scimctl with the given args; prints `elapsed_us peak_kib exit` and then
/// scimctl's stderr.
fn measure(args: &[String]) {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_scimctl"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run scimctl");
    let elapsed = start.elapsed();
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    println!(
        "{} {} {}",
        elapsed.as_micros(),
        usage.max_rss(),
        output.status.code().unwrap_or(-1)
    );
    print!("{}", String::from_utf8_lossy(&output.stderr));
}

/// (elapsed, peak KiB, exit code, scimctl's stderr) of one measured run.
fn measured(args: &[&str]) -> (Duration, u64, i64, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env("SCIMCTL_BENCH_MEASURE", "1")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let fields: Vec<i64> = first
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    (
        Duration::from_micros(u64::try_from(fields[0]).unwrap()),
        u64::try_from(fields[1]).unwrap(),
        fields[2],
        rest.to_owned(),
    )
}

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
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
    println!("export benchmark: {RUNS} runs each, median shown (process start to exit)");
    let only_large = std::env::var_os("SCIMCTL_BENCH_LARGE_ONLY").is_some();
    for (users, groups) in [(10_000usize, 1_000usize), (100_000, 10_000)] {
        if only_large && users < 100_000 {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("sandbox.json");
        common::seed_in_child(&state, users, groups);
        let (server, url) = common::serve(&state);
        let mut times = Vec::new();
        let mut peaks = Vec::new();
        let mut requests = 0u64;
        let mut first: Option<BTreeMap<PathBuf, Vec<u8>>> = None;
        let mut bytes = 0;
        for run in 0..RUNS {
            let out = tmp.path().join(format!("export-{run}"));
            let (elapsed, peak, code, stderr) =
                measured(&["export", "--target", &url, "--out", out.to_str().unwrap()]);
            assert_eq!(code, 0, "{stderr}");
            requests = stderr
                .rsplit_once(" requests in ")
                .and_then(|(head, _)| head.rsplit_once('(').map(|(_, n)| n.parse().unwrap()))
                .unwrap_or_else(|| panic!("no request count in {stderr}"));
            let files = tree(&out);
            match &first {
                None => {
                    bytes = files.values().map(Vec::len).sum::<usize>();
                    first = Some(files);
                }
                Some(f) => assert!(*f == files, "run {run} wrote different bytes"),
            }
            if run > 0 {
                std::fs::remove_dir_all(&out).unwrap();
            }
            times.push(elapsed);
            peaks.push(peak);
        }
        times.sort();
        peaks.sort_unstable();
        let pages = users.div_ceil(PAGE) + groups.div_ceil(PAGE);
        let files = first.as_ref().map_or(0, BTreeMap::len);
        println!(
            "{users:>7} users + {groups:>6} groups: median {:>6.0} ms (min {:.0}, max {:.0}), {requests} requests = {pages} pages + {}, export peak RSS median {} MiB (max {} MiB), {files} files, {:.1} MiB of YAML, identical across runs",
            times[RUNS / 2].as_secs_f64() * 1000.0,
            times[0].as_secs_f64() * 1000.0,
            times[RUNS - 1].as_secs_f64() * 1000.0,
            requests - pages as u64,
            peaks[RUNS / 2] / 1024,
            peaks[RUNS - 1] / 1024,
            f64::from(u32::try_from(bytes >> 10).unwrap()) / 1024.0,
        );
        assert_eq!(
            requests,
            pages as u64 + 2,
            "pages + discovery, no per-object reads"
        );
        if users == 100_000 {
            assert!(times[RUNS / 2] <= BOUND, "over the {BOUND:?} bound");
        }
        let exported = tmp.path().join("export-0");
        let (elapsed, peak, code, stderr) = measured(&[
            "plan",
            exported.to_str().unwrap(),
            "--target",
            &url,
            "--detailed-exitcode",
        ]);
        assert_eq!(code, 0, "plan on the export is not empty: {stderr}");
        println!(
            "{:>31}  plan on the export: no changes, {:.0} ms, peak RSS {} MiB",
            "",
            elapsed.as_secs_f64() * 1000.0,
            peak / 1024
        );
        common::stop(server);
    }
}
