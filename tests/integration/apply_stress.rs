//! `scimctl apply` under stress, against a separate `scimctl sandbox serve` process: killed
//! with SIGKILL part-way through a 2,000-user apply and run again, and against a server that
//! injects 503s, dropped connections (before and after acting) and 429 storms.
//!
//! What the tenant holds is read from the sandbox's own state file after a SIGTERM (which
//! saves it), not through scimctl's client: the check does not share the code under test,
//! and the faulty server cannot disturb it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use serde_json::Value;

use crate::support::{run_bounded_with, scimctl, text};

const TOKEN: &str = "apply-stress-token";
const TOKEN_ENV: &str = "SCIMCTL_TEST_STRESS_TOKEN";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A `scimctl sandbox serve` child on a state file; killed on drop if still running.
struct Served {
    child: Option<Child>,
    stdout: Option<BufReader<ChildStdout>>,
    url: String,
    state: PathBuf,
}

impl Served {
    /// Starts the server with extra (fault) flags and reads the URL it prints.
    fn start(state: &Path, flags: &[&str]) -> Served {
        let mut child = scimctl()
            .args(["sandbox", "serve", "--listen", "127.0.0.1:0"])
            .args(["--token-env", TOKEN_ENV, "--state"])
            .arg(state)
            .args(flags)
            .env(TOKEN_ENV, TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start scimctl sandbox serve");
        let (stdout, url) = crate::support::served_url(&mut child);
        Served {
            child: Some(child),
            stdout: Some(stdout),
            url,
            state: state.to_path_buf(),
        }
    }

    /// SIGTERM (the server saves its state), wait for it (bounded), and read the state file.
    fn stop(mut self) -> Tenant {
        let mut child = self.child.take().expect("running");
        let mut stdout = self.stdout.take().expect("piped");
        let pid = pid_of(&child);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest);
            let _ = tx.send((child.wait().unwrap().code(), rest));
        });
        let (code, rest) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                panic!("sandbox serve did not stop on SIGTERM");
            });
        assert_eq!(code, Some(0), "sandbox serve: {rest}");
        Tenant::read(&self.state)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn pid_of(child: &Child) -> nix::unistd::Pid {
    nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"))
}

/// The users and groups of a sandbox state file, by name, with references resolved to names.
#[derive(Debug)]
struct Tenant {
    /// Every userName, duplicates included.
    user_names: Vec<String>,
    /// Every group displayName, duplicates included.
    group_names: Vec<String>,
    /// userName → the manager's userName.
    managers: BTreeMap<String, String>,
    /// displayName → member names (userNames and group names).
    members: BTreeMap<String, BTreeSet<String>>,
}

impl Tenant {
    fn read(state: &Path) -> Tenant {
        let text = std::fs::read_to_string(state).expect("the state file");
        let doc: Value = serde_json::from_str(&text).expect("the state file is JSON");
        let list = |k: &str| doc[k].as_array().cloned().unwrap_or_default();
        let (users, groups) = (list("users"), list("groups"));
        let str_of = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let mut names: HashMap<String, String> = HashMap::new();
        for r in users.iter().chain(&groups) {
            let name = if r["userName"].is_string() {
                str_of(r, "userName")
            } else {
                str_of(r, "displayName")
            };
            names.insert(str_of(r, "id"), name);
        }
        let name_of = |id: &str| {
            names
                .get(id)
                .cloned()
                .unwrap_or_else(|| panic!("a reference to {id}, which is not in the tenant"))
        };
        let managers = users
            .iter()
            .filter_map(|u| {
                let id = u[ENTERPRISE]["manager"]["value"].as_str()?;
                Some((str_of(u, "userName"), name_of(id)))
            })
            .collect();
        let members = groups
            .iter()
            .map(|g| {
                let of = g["members"].as_array().cloned().unwrap_or_default();
                let names = of
                    .iter()
                    .map(|m| name_of(m["value"].as_str().expect("member value")))
                    .collect();
                (str_of(g, "displayName"), names)
            })
            .collect();
        Tenant {
            user_names: users.iter().map(|u| str_of(u, "userName")).collect(),
            group_names: groups.iter().map(|g| str_of(g, "displayName")).collect(),
            managers,
            members,
        }
    }

    /// Fails unless the names are distinct and exactly `want`.
    fn assert_names(names: &[String], want: &BTreeSet<String>, what: &str) {
        let distinct: BTreeSet<String> = names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(distinct.len(), names.len(), "duplicate {what}");
        let got: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(&got, want, "the tenant's {what}");
    }
}

/// The lines of an audit log, each parsed; fails on a line that is not JSON.
fn audit(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// Fails if two successful creates of the same object were recorded.
fn assert_created_once(records: &[Value]) {
    let mut seen = BTreeSet::new();
    // Final records only: a `written` record of a group's create precedes its final one.
    for r in records.iter().filter(|r| r.get("phase").is_none()) {
        let ok = ["done", "merged"].contains(&r["outcome"].as_str().unwrap_or_default());
        if r["action"] == "create" && ok {
            let key = format!("{} {}", r["kind"], r["key"]).to_lowercase();
            assert!(seen.insert(key.clone()), "created twice: {key}");
        }
    }
}

/// Runs `scimctl args...` in `cwd` against the token-protected server (bounded).
fn run(cwd: &Path, args: &[&str], limit: Duration) -> (i32, String, String) {
    let output = run_bounded_with(cwd, args, &[("SCIMCTL_TOKEN", TOKEN)], limit);
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// The last line of an apply's report: `Applied to URL: N done, ... (R requests in S s).`
fn summary(out: &str) -> &str {
    out.lines()
        .rev()
        .find(|l| l.starts_with("Applied to "))
        .unwrap_or_else(|| panic!("no summary line in {out}"))
}

/// Lines of the report whose outcome is not a success.
fn unsuccessful(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with("failed ") || l.starts_with("skipped "))
        .collect()
}

const CRASH_USERS: usize = 2_000;
const CRASH_GROUPS: usize = 20;

fn crash_user(i: usize) -> String {
    format!("u{i:04}@crash.example")
}

fn crash_group(g: usize) -> String {
    format!("Crash Team {g:02}")
}

/// 2,000 users in files of 200; 20 groups of 100 members each (every user in one group);
/// group 0 also holds group 1.
fn write_crash_org(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(
        dir.join("scimctl.yaml"),
        "collections: {groupMembers: authoritative}\n",
    )
    .unwrap();
    for file in 0..CRASH_USERS / 200 {
        let mut yaml = String::from("users:\n");
        for i in file * 200..(file + 1) * 200 {
            let _ = write!(
                yaml,
                "  - userName: {}\n    displayName: Crash User {i}\n    title: Agent\n",
                crash_user(i)
            );
        }
        std::fs::write(dir.join(format!("users/users-{file:02}.yaml")), yaml).unwrap();
    }
    let per = CRASH_USERS / CRASH_GROUPS;
    let mut want = BTreeMap::new();
    let mut yaml = String::from("groups:\n");
    for g in 0..CRASH_GROUPS {
        let mut members: BTreeSet<String> = (g * per..(g + 1) * per).map(crash_user).collect();
        if g == 0 {
            members.insert(crash_group(1));
        }
        let list: Vec<&str> = members.iter().map(String::as_str).collect();
        let _ = write!(
            yaml,
            "  - displayName: {}\n    members: [{}]\n",
            crash_group(g),
            list.join(", ")
        );
        want.insert(crash_group(g), members);
    }
    std::fs::write(dir.join("groups.yaml"), yaml).unwrap();
    want
}

/// Kills a child with SIGKILL unless disarmed (dropped) within `limit`: the blocking reads
/// of its output then end.
struct Watchdog(Option<mpsc::Sender<()>>);

impl Watchdog {
    fn arm(child: &Child, limit: Duration) -> Watchdog {
        let pid = pid_of(child);
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

/// Crash safety: an apply of 2,000 users and 20 groups is killed with SIGKILL after a random
/// number of finished operations (the seed is printed; `SCIMCTL_CRASH_SEED` repeats a run).
/// The next apply completes it: exit 0, exactly the desired users (no duplicates), every
/// group with its members, an empty plan afterwards, and an audit log of whole JSON lines.
#[test]
#[allow(
    clippy::print_stdout,
    reason = "the seed is printed to reproduce a failure"
)]
fn apply_killed_midway_then_completes() {
    let seed = std::env::var("SCIMCTL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Any operation but the last (groups finish last: they wait for their members).
    let kill_after = rng.random_range(1..CRASH_USERS + CRASH_GROUPS);
    println!(
        "crash test: seed {seed}: SIGKILL after {kill_after} finished operations \
         (repeat with SCIMCTL_CRASH_SEED={seed})"
    );

    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dir = cwd.join("desired");
    let want_members = write_crash_org(&dir);
    let d = dir.to_str().unwrap();
    let server = Served::start(&cwd.join("sandbox.json"), &[]);
    let url = server.url.clone();

    // First run: count "operation finished" events on stderr, kill at the chosen one.
    let stdout = std::fs::File::create(cwd.join("first.out")).unwrap();
    let mut child = scimctl()
        .args(["apply", d, "--target", &url, "--yes"])
        .env("SCIMCTL_TOKEN", TOKEN)
        .env("SCIMCTL_LOG", "scimctl=debug")
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watchdog = Watchdog::arm(&child, Duration::from_secs(120));
    let mut finished = 0;
    let mut tail = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("operation finished") {
            finished += 1;
            if finished == kill_after {
                nix::sys::signal::kill(pid_of(&child), nix::sys::signal::Signal::SIGKILL).unwrap();
            }
        } else if !line.contains("scim request") {
            tail.push(line);
        }
    }
    drop(watchdog);
    let status = child.wait().unwrap();
    assert!(
        finished >= kill_after,
        "the apply ended ({status}) after {finished} operations: {}",
        tail.join("\n")
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed, not finished: {}",
        tail.join("\n")
    );
    let log = cwd.join(".scimctl/audit.jsonl");
    let first = audit(&log);
    assert!(
        first.len() >= kill_after,
        "every operation reported finished is in the audit log: {} < {kill_after}",
        first.len()
    );

    // Second run: completes what is left (nothing, when the kill came after the last
    // operation had gone out).
    let (code, out, err) = run(
        cwd,
        &["apply", d, "--target", &url, "--yes"],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(unsuccessful(&out).is_empty(), "{out}");
    let records = audit(&log);
    let second = if out.contains("No changes.") {
        assert_eq!(records.len(), first.len(), "nothing to do, nothing audited");
        "no changes"
    } else {
        assert!(records.len() > first.len(), "the second run was audited");
        summary(&out)
    };
    println!(
        "crash test: {} records before the kill; then {second}",
        first.len()
    );
    assert_created_once(&records);

    let (code, out, err) = run(
        cwd,
        &["plan", d, "--target", &url, "--detailed-exitcode"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    let tenant = server.stop();
    let users: BTreeSet<String> = (0..CRASH_USERS).map(crash_user).collect();
    Tenant::assert_names(&tenant.user_names, &users, "userNames");
    let groups: BTreeSet<String> = want_members.keys().cloned().collect();
    Tenant::assert_names(&tenant.group_names, &groups, "group names");
    assert_eq!(tenant.members, want_members, "group members");
}

const FAULT_USERS: usize = 60;
const FAULT_GROUPS: usize = 6;

fn fault_user(i: usize) -> String {
    format!("f{i:02}@faults.example")
}

fn fault_group(g: usize) -> String {
    format!("Fault Team {g}")
}

/// The manager of user `i`: user 0 heads the org, users 1 to 5 report to it, everyone else
/// to one of those five (a manager is sometimes created after its reports are planned).
fn fault_manager(i: usize) -> Option<usize> {
    match i {
        0 => None,
        1..=5 => Some(0),
        _ => Some(1 + i % 5),
    }
}

/// 60 users with managers; 6 groups of 10 users each, group 0 also holding group 1.
fn write_fault_org(dir: &Path) -> (BTreeMap<String, String>, BTreeMap<String, BTreeSet<String>>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("scimctl.yaml"),
        "collections: {groupMembers: authoritative}\n",
    )
    .unwrap();
    let mut managers = BTreeMap::new();
    let mut yaml = String::from("users:\n");
    for i in 0..FAULT_USERS {
        let _ = write!(
            yaml,
            "  - userName: {}\n    displayName: Fault User {i}\n    title: Agent\n",
            fault_user(i)
        );
        if let Some(m) = fault_manager(i) {
            let _ = writeln!(yaml, "    manager: {}", fault_user(m));
            managers.insert(fault_user(i), fault_user(m));
        }
    }
    std::fs::write(dir.join("users.yaml"), yaml).unwrap();
    let mut members = BTreeMap::new();
    let mut yaml = String::from("groups:\n");
    for g in 0..FAULT_GROUPS {
        let mut of: BTreeSet<String> = (0..FAULT_USERS)
            .filter(|i| i % FAULT_GROUPS == g)
            .map(fault_user)
            .collect();
        if g == 0 {
            of.insert(fault_group(1));
        }
        let list: Vec<&str> = of.iter().map(String::as_str).collect();
        let _ = write!(
            yaml,
            "  - displayName: {}\n    members: [{}]\n",
            fault_group(g),
            list.join(", ")
        );
        members.insert(fault_group(g), of);
    }
    std::fs::write(dir.join("groups.yaml"), yaml).unwrap();
    (managers, members)
}

/// Fault injection: against a server answering 20 % of requests 503, dropping 5 % of
/// connections before acting and 5 % of writes after acting, and allowing 25 requests per
/// 5 s window (429 with Retry-After beyond), an apply of 60 users with managers and 6 groups
/// with members converges: no object twice, every manager and member in place, an empty
/// plan afterwards.
#[test]
#[allow(
    clippy::print_stdout,
    reason = "the runs' summaries help read a failure"
)]
fn apply_converges_under_faults() {
    let seed = std::env::var("SCIMCTL_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_123_u64);
    println!("fault test: server seed {seed} (repeat with SCIMCTL_FAULT_SEED={seed})");
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let dir = cwd.join("desired");
    let (want_managers, want_members) = write_fault_org(&dir);
    let d = dir.to_str().unwrap();
    let seed_flag = seed.to_string();
    let server = Served::start(
        &cwd.join("sandbox.json"),
        &[
            "--error-rate",
            "0.2",
            "--error-status",
            "503",
            "--drop-rate",
            "0.05",
            "--drop-after-rate",
            "0.05",
            "--rate-limit",
            "25/5",
            "--seed",
            &seed_flag,
        ],
    );
    let url = server.url.clone();

    let (code, out, err) = run(
        cwd,
        &["apply", d, "--target", &url, "--yes"],
        Duration::from_secs(80),
    );
    println!("fault test: {}", summary(&out));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(unsuccessful(&out).is_empty(), "{out}");
    let throttling = out
        .lines()
        .find(|l| l.starts_with("Throttling: "))
        .unwrap_or_else(|| panic!("the 429s and retries are reported: {out}"));
    assert!(
        !throttling.starts_with("Throttling: 0 answered 429, 0 retried"),
        "{throttling}"
    );
    let records = audit(&cwd.join(".scimctl/audit.jsonl"));
    let finals = records.iter().filter(|r| r.get("phase").is_none()).count();
    assert_eq!(finals, FAULT_USERS + FAULT_GROUPS);
    assert_created_once(&records);

    let (code, out, err) = run(
        cwd,
        &["plan", d, "--target", &url, "--detailed-exitcode"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    let tenant = server.stop();
    let users: BTreeSet<String> = (0..FAULT_USERS).map(fault_user).collect();
    Tenant::assert_names(&tenant.user_names, &users, "userNames");
    let groups: BTreeSet<String> = want_members.keys().cloned().collect();
    Tenant::assert_names(&tenant.group_names, &groups, "group names");
    assert_eq!(tenant.managers, want_managers, "managers");
    assert_eq!(tenant.members, want_members, "group members");
}
