//! Loader benchmark: generates desired-state directories of 10,000 and 100,000 users (100
//! users per file, realistic attributes, references to roles, groups and licenses), then times
//! `scimctl::desired::load_dir` (discover, parallel parse, validate) and reports the median of
//! several runs, the spread and throughput, and the memory of one load.
//!
//! Memory is measured in a fresh child process per size (this same binary, re-run with
//! `SCIMCTL_LOAD_BENCH_MEASURE` naming the directory), so the figures of one size never mix
//! with another's or with the timing runs. The child reads `/proc/self/status` three times:
//! `VmRSS` before loading, then `VmHWM` (the process's peak resident memory, the figure a
//! memory bound is about) and `VmRSS` again while it still holds the loaded, validated state.
//! "Retained" is that second `VmRSS` minus the first: what the desired state keeps in memory
//! once loading is over, allocator overhead and fragmentation included (memory the allocator
//! took from the system during loading and did not give back is counted; it is the process
//! that has to fit in a bound).
//!
//! Heap figures without allocator overhead come from heaptrack running that child: write an
//! org with `cargo bench --bench load -- --write-org DIR 100000`, then run
//! `SCIMCTL_LOAD_BENCH_MEASURE=DIR heaptrack target/release/deps/load-HASH` (the benchmark
//! binary cargo built). Its "peak heap memory consumption" is the load's heap peak, and its
//! "total memory leaked" is the heap the loaded state retains: the child never frees the state,
//! on purpose, since it exits right after measuring.
//!
//! Run: `cargo bench --bench load` (release build). Issue 2's bound: 100,000 users over 1,000
//! files in at most 1.5 s on a 2-core machine, and linear in input size.

#![allow(clippy::print_stdout, clippy::cast_precision_loss, clippy::unwrap_used)] // a benchmark: reports on stdout, and fails loudly

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const USERS_PER_FILE: usize = 100;
const RUNS: usize = 7;
/// Set in the child process: the directory to load once and measure.
const MEASURE_VAR: &str = "SCIMCTL_LOAD_BENCH_MEASURE";

fn write_org(dir: &Path, users: usize) -> u64 {
    let groups = ["Support", "Billing", "Sales", "Night Shift"];
    let mut bytes = 0_u64;
    let mut shared = String::from("roles:\n");
    for (name, perms) in [
        ("Agent", "routing:queue:view"),
        ("Queue Member", "routing:queue:join"),
        ("Supervisor", "analytics:report:view"),
    ] {
        let _ = write!(shared, "  - name: {name}\n    permissions: [\"{perms}\"]\n");
    }
    shared.push_str(
        "licenses:\n  - name: Standard Agent\n    allowedRoles: [Agent, Queue Member]\ngroups:\n",
    );
    for g in groups {
        let _ = write!(shared, "  - displayName: {g}\n    description: generated\n");
    }
    fs::write(dir.join("shared.yaml"), &shared).unwrap();
    bytes += shared.len() as u64;
    let users_dir = dir.join("users");
    fs::create_dir_all(&users_dir).unwrap();
    for file in 0..users.div_ceil(USERS_PER_FILE) {
        let mut text = String::from(
            "# yaml-language-server: $schema=../schemas/desired-state.schema.json\nusers:\n",
        );
        for i in file * USERS_PER_FILE..((file + 1) * USERS_PER_FILE).min(users) {
            let _ = write!(
                text,
                "  - userName: agent{i}@bench.example\n    displayName: Agent Number {i}\n    externalId: hr-{i:07}\n    active: true\n    title: Contact Centre Agent\n    department: Support\n    employeeNumber: \"{i:07}\"\n    emails:\n      - {{value: agent{i}@bench.example, type: work, primary: true}}\n    phoneNumbers:\n      - {{value: \"+1415{:07}\", type: work}}\n    roles: [Agent, Queue Member]\n    groups: [{}]\n    license: Standard Agent\n    routingSkills:\n      - {{name: Billing, proficiency: 3}}\n",
                i % 10_000_000,
                groups[i % groups.len()]
            );
        }
        fs::write(users_dir.join(format!("users-{file:05}.yaml")), &text).unwrap();
        bytes += text.len() as u64;
    }
    bytes
}

/// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`, ...).
fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The child's side: load `dir` once and print `before peak loaded` resident memory in KiB.
/// The state is leaked rather than dropped, so that heaptrack reports it as what it retains.
fn measure_child(dir: &Path) {
    let before = status_kib("VmRSS");
    let loaded = scimctl::desired::load_dir(dir).expect("generated org is valid");
    let peak = status_kib("VmHWM");
    let held = status_kib("VmRSS");
    assert!(!loaded.state.users.is_empty());
    println!("{before} {peak} {held}");
    std::mem::forget(loaded);
}

/// Peak and retained resident memory of one load of `dir`, in MiB, from a fresh process.
fn measure_memory(dir: &Path) -> (f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(MEASURE_VAR, dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "measuring child failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let kib: Vec<f64> = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap() as f64)
        .collect();
    let [before, peak, held] = kib[..] else {
        panic!("unexpected child output {text:?}")
    };
    (peak / 1024.0, (held - before) / 1024.0)
}

#[allow(clippy::disallowed_methods)] // wall-clock timing is what a benchmark measures
fn time_load(dir: &Path, expect_users: usize) -> Vec<Duration> {
    (0..RUNS)
        .map(|_| {
            let start = std::time::Instant::now();
            let loaded = scimctl::desired::load_dir(dir).expect("generated org is valid");
            let elapsed = start.elapsed();
            assert_eq!(loaded.state.users.len(), expect_users);
            elapsed
        })
        .collect()
}

fn main() {
    if let Some(dir) = std::env::var_os(MEASURE_VAR) {
        measure_child(Path::new(&dir));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--write-org") {
        let dir = Path::new(args.get(at + 1).expect("--write-org DIR USERS"));
        let users = args.get(at + 2).map_or(100_000, |n| n.parse().unwrap());
        fs::create_dir_all(dir).unwrap();
        let bytes = write_org(dir, users);
        println!("wrote {users} users ({bytes} bytes) to {}", dir.display());
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "loader benchmark: {RUNS} runs per size, {USERS_PER_FILE} users per file, {cores} cores"
    );
    let mut medians = Vec::new();
    for users in [10_000, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = write_org(tmp.path(), users);
        let (peak, retained) = measure_memory(tmp.path());
        let mut times = time_load(tmp.path(), users);
        times.sort();
        let median = times[RUNS / 2];
        let mib = bytes as f64 / f64::from(1 << 20);
        println!(
            "{users:>7} users, {:>5} files, {mib:6.1} MiB: median {:7.1} ms (min {:.1}, max {:.1}), {:.1} MiB/s; one load in a fresh process: peak RSS {peak:.0} MiB, retained {retained:.0} MiB",
            users / USERS_PER_FILE + 1,
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3,
            mib / median.as_secs_f64(),
        );
        medians.push(median);
    }
    let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
    println!("scaling 100k/10k: {ratio:.2}x (linear = 10x)");
}
