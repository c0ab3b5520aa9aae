//! Apply benchmark: `scimctl apply --yes` end to end (process start to exit) against a separate
//! `scimctl sandbox serve` process over loopback.
//!
//! 1. Creates: 10,000 users (100 a file) into an empty sandbox, a fresh server and state file
//!    each run; median of 3 runs, with `/Bulk` (the default: the sandbox announces it) and
//!    with `--no-bulk`. The bound of the issue is 10 s.
//! 2. Throttled: the sandbox adds 100 ms to every response and answers 429 beyond 300 requests
//!    in a 60 s window; `scimctl apply --requests-per-minute 300` creates 720 users, which
//!    takes a little over two minutes (`--no-bulk`: each create a request of its own, since
//!    the sandbox announces `/Bulk`, which would carry them all in one). Sustained throughput is the SCIM requests the client
//!    sent (its own count, from the report) over the apply's own elapsed time; the 429 count
//!    is the client's too. The bounds are at least 95 % of the limit and at most 1 % of
//!    requests answered 429. One run: it is long, and its figures hardly vary.
//!
//! 3. Groups: 10,000 users and 1,000 groups of 10 of them into an empty sandbox, one run: the
//!    requests the client counted against the objects created. A group is created after its
//!    members and names them, so the bound is one write per object (issue 21: a create and a
//!    member PATCH per group before), plus the run's reads: discovery and listing, and the
//!    twin check after each group create (`src/apply/twins.rs`: a GET by name, which finds
//!    a group of the same name another machine's run created at the same time).
//!
//! 4. Memory: 100,000 users and 10,000 groups of 10 of them into an empty sandbox (`/Bulk`);
//!    the apply runs under a small wrapper process (this binary re-run with
//!    `SCIMCTL_BENCH_MEASURE`) whose only child it is, so the wrapper's `RUSAGE_CHILDREN`
//!    maximum resident set is the apply's own peak. Median of 3 runs, a fresh server each;
//!    the bound is 300 MB.
//!
//! Run with `cargo bench --bench apply`; `SCIMCTL_BENCH_PART=creates`, `=throttled`,
//! `=groups` or `=memory` runs one part only.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;

#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one seeds no state file"
)]
mod common;

const CREATE_RUNS: usize = 3;
const CREATE_USERS: usize = 10_000;
const THROTTLED_USERS: usize = 720;
const LIMIT_PER_MINUTE: u32 = 300;
const PER_FILE: usize = 100;

/// Writes `users` users in files of [`PER_FILE`], with the attributes a real org carries.
fn write_desired(dir: &Path, users: usize) {
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(dir.join("scimctl.yaml"), "ownership: {users: listed}\n").unwrap();
    for file in 0..users.div_ceil(PER_FILE) {
        let mut yaml = String::from("users:\n");
        for i in file * PER_FILE..((file + 1) * PER_FILE).min(users) {
            let _ = write!(
                yaml,
                "  - userName: agent{i:06}@northwind.example\n    \
                 displayName: Agent {i}\n    \
                 emails: [{{value: agent{i:06}@northwind.example, type: work, primary: true}}]\n    \
                 title: Support Agent\n    \
                 department: Support\n    \
                 employeeNumber: \"{i:06}\"\n"
            );
        }
        std::fs::write(dir.join(format!("users/users-{file:03}.yaml")), yaml).unwrap();
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "within bound" } else { "OVER BOUND" }
}

fn creates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    write_desired(&dir, CREATE_USERS);
    for (how, extra) in [
        ("in Bulk requests", &[][..]),
        ("--no-bulk", &["--no-bulk"][..]),
    ] {
        let mut walls = Vec::new();
        let mut engine = Vec::new();
        let mut requests = 0;
        for run in 0..CREATE_RUNS {
            let cwd = tmp.path().join(format!("run-{}-{run}", extra.len()));
            std::fs::create_dir_all(&cwd).unwrap();
            let (server, url) = common::serve(&cwd.join("sandbox.json"));
            let applied = common::apply(&cwd, &dir, &url, extra);
            common::stop(server);
            assert_eq!(applied.done, CREATE_USERS as u64, "every user created");
            walls.push(applied.wall_s);
            engine.push(applied.elapsed_s);
            requests = applied.requests;
        }
        let wall = median(walls);
        println!(
            "creates ({how}): {CREATE_USERS} users into an empty sandbox: median {wall:.2} s \
             end to end ({:.2} s applying, {requests} requests; {CREATE_RUNS} runs); bound 10 s: {}",
            median(engine),
            verdict(wall <= 10.0)
        );
    }
}

fn throttled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    write_desired(&dir, THROTTLED_USERS);
    let limit = format!("{LIMIT_PER_MINUTE}/60");
    let (server, url) = common::serve_with(
        &tmp.path().join("sandbox.json"),
        &["--latency-ms", "100", "--rate-limit", &limit],
    );
    let rpm = LIMIT_PER_MINUTE.to_string();
    // Each write alone: in Bulk requests, 720 creates would be one request.
    let applied = common::apply(
        tmp.path(),
        &dir,
        &url,
        &["--requests-per-minute", &rpm, "--no-bulk"],
    );
    common::stop(server);
    assert_eq!(applied.done, THROTTLED_USERS as u64, "every user created");
    #[allow(clippy::cast_precision_loss, reason = "counts below a million")]
    let (requests, limited) = (applied.requests as f64, applied.rate_limited as f64);
    let per_minute = requests / applied.elapsed_s * 60.0;
    let share = per_minute / f64::from(LIMIT_PER_MINUTE);
    let limited_share = limited / requests;
    println!(
        "throttled: {THROTTLED_USERS} users, 100 ms latency, {LIMIT_PER_MINUTE}/min limit: \
         {} requests in {:.1} s = {per_minute:.1}/min ({:.1} % of the limit; bound 95 %: {}), \
         {} answered 429 ({:.2} %; bound 1 %: {}); {:.1} s end to end",
        applied.requests,
        applied.elapsed_s,
        share * 100.0,
        verdict(share >= 0.95),
        applied.rate_limited,
        limited_share * 100.0,
        verdict(limited_share <= 0.01),
        applied.wall_s,
    );
}

const GROUPS: usize = 1_000;
const GROUP_SIZE: usize = 10;
/// The reads of a run into an empty sandbox besides the twin checks: `ServiceProviderConfig`,
/// Schemas, `/Me`, and one page each of Users and Groups.
const READS: u64 = 5;

/// Writes `groups` groups of [`GROUP_SIZE`] of the `users` users of [`write_desired`], in
/// files of [`PER_FILE`] groups, and claims groups as listed.
fn write_groups(dir: &Path, groups: usize, users: usize) {
    std::fs::create_dir_all(dir.join("groups")).unwrap();
    for file in 0..groups.div_ceil(PER_FILE) {
        let mut yaml = String::from("groups:\n");
        for g in file * PER_FILE..((file + 1) * PER_FILE).min(groups) {
            let members: Vec<String> = (0..GROUP_SIZE)
                .map(|m| format!("agent{:06}@northwind.example", (g * GROUP_SIZE + m) % users))
                .collect();
            let _ = writeln!(
                yaml,
                "  - displayName: Team {g:05}\n    members: [{}]",
                members.join(", ")
            );
        }
        std::fs::write(dir.join(format!("groups/groups-{file:03}.yaml")), yaml).unwrap();
    }
    std::fs::write(
        dir.join("scimctl.yaml"),
        "ownership: {users: listed, groups: listed}\n",
    )
    .unwrap();
}

fn groups() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    write_desired(&dir, CREATE_USERS);
    write_groups(&dir, GROUPS, CREATE_USERS);
    let cwd = tmp.path().join("run");
    std::fs::create_dir_all(&cwd).unwrap();
    let (server, url) = common::serve(&cwd.join("sandbox.json"));
    let applied = common::apply(&cwd, &dir, &url, &[]);
    common::stop(server);
    let objects = (CREATE_USERS + GROUPS) as u64;
    let twin_checks = GROUPS as u64;
    assert_eq!(applied.done, objects, "every object created");
    println!(
        "groups: {CREATE_USERS} users + {GROUPS} groups of {GROUP_SIZE} into an empty sandbox: \
         {:.2} s end to end ({:.2} s applying), {} requests for {objects} objects; bound \
         {objects} writes + {twin_checks} twin checks + {READS} reads: {}",
        applied.wall_s,
        applied.elapsed_s,
        applied.requests,
        verdict(applied.requests <= objects + twin_checks + READS)
    );
}

const MEMORY_USERS: usize = 100_000;
const MEMORY_GROUPS: usize = 10_000;
const MEMORY_RUNS: usize = 3;
/// The bound on the apply's peak resident set, in bytes.
const MEMORY_BOUND: u64 = 300_000_000;

fn memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    write_desired(&dir, MEMORY_USERS);
    write_groups(&dir, MEMORY_GROUPS, MEMORY_USERS);
    let mut peaks = Vec::new();
    let mut walls = Vec::new();
    let mut requests = 0;
    for run in 0..MEMORY_RUNS {
        let cwd = tmp.path().join(format!("memory-{run}"));
        std::fs::create_dir_all(&cwd).unwrap();
        let (server, url) = common::serve(&cwd.join("sandbox.json"));
        let (applied, peak_kib) = common::apply_measured(&cwd, &dir, &url, &[]);
        common::stop(server);
        assert_eq!(
            applied.done,
            (MEMORY_USERS + MEMORY_GROUPS) as u64,
            "every object created"
        );
        peaks.push(peak_kib);
        walls.push(applied.wall_s);
        requests = applied.requests;
    }
    peaks.sort_unstable();
    let peak = peaks[MEMORY_RUNS / 2];
    println!(
        "memory: {MEMORY_USERS} users + {MEMORY_GROUPS} groups of {GROUP_SIZE} into an empty \
         sandbox: apply peak RSS median {} MiB ({} MB; max {} MiB), {:.2} s end to end, \
         {requests} requests ({MEMORY_RUNS} runs); bound 300 MB: {}",
        peak / 1024,
        peak * 1024 / 1_000_000,
        peaks[MEMORY_RUNS - 1] / 1024,
        median(walls),
        verdict(peak * 1024 <= MEMORY_BOUND)
    );
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("SCIMCTL_BENCH_MEASURE").is_some() {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return common::measure_child(&args);
    }
    let part = std::env::var("SCIMCTL_BENCH_PART").unwrap_or_default();
    println!("apply benchmark (scimctl apply --yes against scimctl sandbox serve on loopback)");
    if part.is_empty() || part == "creates" {
        creates();
    }
    if part.is_empty() || part == "throttled" {
        throttled();
    }
    if part.is_empty() || part == "groups" {
        groups();
    }
    if part.is_empty() || part == "memory" {
        memory();
    }
    std::process::ExitCode::SUCCESS
}
