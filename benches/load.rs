//! Loader benchmark: generates desired-state directories of 10,000 and 100,000 users (100
//! users per file, realistic attributes, references to roles, groups and licenses), then times
//! `scimctl::desired::load_dir` (discover, parallel parse, validate) and reports the median of
//! several runs, the spread, throughput and the process's peak RSS.
//!
//! Run: `cargo bench --bench load` (release build). Issue 2's bound: 100,000 users over 1,000
//! files in at most 1.5 s on a 2-core machine, and linear in input size.

#![allow(clippy::print_stdout, clippy::cast_precision_loss, clippy::unwrap_used)] // a benchmark: reports on stdout, and fails loudly

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

const USERS_PER_FILE: usize = 100;
const RUNS: usize = 7;

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

fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
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
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    println!(
        "loader benchmark: {RUNS} runs per size, {USERS_PER_FILE} users per file, {cores} cores"
    );
    let mut medians = Vec::new();
    for users in [10_000, 100_000] {
        let tmp = tempfile::tempdir().unwrap();
        let bytes = write_org(tmp.path(), users);
        let mut times = time_load(tmp.path(), users);
        times.sort();
        let median = times[RUNS / 2];
        let mib = bytes as f64 / f64::from(1 << 20);
        println!(
            "{users:>7} users, {:>5} files, {mib:6.1} MiB: median {:7.1} ms (min {:.1}, max {:.1}), {:.1} MiB/s, peak RSS so far {:.0} MiB",
            users / USERS_PER_FILE + 1,
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[RUNS - 1].as_secs_f64() * 1e3,
            mib / median.as_secs_f64(),
            peak_rss_mib().unwrap_or(f64::NAN),
        );
        medians.push(median);
    }
    let ratio = medians[1].as_secs_f64() / medians[0].as_secs_f64();
    println!("scaling 100k/10k: {ratio:.2}x (linear = 10x)");
}
