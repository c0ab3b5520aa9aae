//! Bulk benchmark (issue 21): creating 1,000 users and 10 groups of 100 of them, side by side
//! on the same server, three ways, and the floor the server sets:
//!
//! - `seeds`: the provisioning programs scimctl replaces (`seeds.md` §5): for each user a
//!   uniqueness GET (`filter=userName eq "..."`) and then a POST, one at a time; for each
//!   group the same, its members named in the POST.
//! - `scimctl --no-bulk`: `scimctl apply --yes --no-bulk`, each write a request of its own.
//! - `scimctl`: `scimctl apply --yes`, writes in `/Bulk` requests (the server announces it).
//! - `server floor`: the same creates as raw Bulk requests within the server's
//!   `maxOperations` (users, then groups naming their ids), with no discovery, no read of the
//!   tenant and no plan: the fastest any Bulk client could be on that server.
//!
//! Servers: python-scim's scim2-server (installed and started by
//! `tests/peer/scim2-server.sh`, skipped with a notice when Python is missing) and
//! `scimctl sandbox serve`, both on loopback, fresh for every run. Each figure is the median
//! of three runs: wall time from process start (or first request) to the end, and the
//! requests the server saw (the seeds' own count, scimctl's report). The target on
//! scim2-server: scimctl with Bulk at least 5 times as fast as the seeds, in at most 60
//! requests.
//!
//! Run with `cargo bench --bench bulk`; `SCIMCTL_BENCH_SERVER=sandbox` or `=scim2-server`
//! runs one server only.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use tokio::time::Instant;

#[allow(
    dead_code,
    reason = "shared by the benchmarks; this one seeds no state file"
)]
mod common;

const USERS: usize = 1_000;
const GROUPS: usize = 10;
const RUNS: usize = 3;

fn user_name(i: usize) -> String {
    format!("agent{i:04}@northwind.example")
}

/// The desired state: the users, with the attributes a real org carries, and the groups.
fn write_desired(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("scimctl.yaml"),
        "ownership: {users: listed, groups: listed}\n",
    )
    .unwrap();
    let mut yaml = String::from("users:\n");
    for i in 0..USERS {
        let _ = write!(
            yaml,
            "  - userName: {name}\n    displayName: Agent {i}\n    \
             emails: [{{value: {name}, type: work, primary: true}}]\n    \
             title: Support Agent\n    department: Support\n",
            name = user_name(i)
        );
    }
    yaml.push_str("groups:\n");
    for g in 0..GROUPS {
        let members: Vec<String> = (0..USERS / GROUPS)
            .map(|m| user_name(g * (USERS / GROUPS) + m))
            .collect();
        let _ = writeln!(
            yaml,
            "  - displayName: Team {g:02}\n    members: [{}]",
            members.join(", ")
        );
    }
    std::fs::write(dir.join("org.yaml"), yaml).unwrap();
}

/// One way of creating the org: wall seconds and requests.
struct Run {
    wall_s: f64,
    requests: u64,
}

/// `scimctl apply` with `extra` flags: its wall time and the requests of its summary.
fn scimctl(cwd: &Path, dir: &Path, url: &str, extra: &[&str]) -> Run {
    let applied = common::apply(cwd, dir, url, extra);
    assert_eq!(
        applied.done,
        (USERS + GROUPS) as u64,
        "every object created"
    );
    Run {
        wall_s: applied.wall_s,
        requests: applied.requests,
    }
}

/// The seeds' step for one object: a GET that filters `endpoint` on `attr` for `name`
/// (asserting nothing matches), then the POST of `body`; its id. Two requests.
async fn check_then_create(
    http: &reqwest::Client,
    base: &str,
    endpoint: &str,
    (attr, name): (&str, &str),
    body: &Value,
) -> String {
    let found: Value = http
        .get(format!("{base}/{endpoint}"))
        .query(&[("filter", format!("{attr} eq \"{name}\""))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalResults"], 0, "{name} exists already");
    let created: Value = http
        .post(format!("{base}/{endpoint}"))
        .header("content-type", "application/scim+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    created["id"].as_str().expect("an id").to_owned()
}

/// The seeds' way: a uniqueness GET and a POST per object, one at a time.
async fn seeds(url: &str) -> Run {
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let started = Instant::now();
    let mut ids = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let name = user_name(i);
        // What scimctl sends for the same user.
        let body = user_body(i);
        ids.push(check_then_create(&http, base, "Users", ("userName", &name), &body).await);
    }
    let per = USERS / GROUPS;
    for g in 0..GROUPS {
        let name = format!("Team {g:02}");
        let members: Vec<Value> = ids[g * per..(g + 1) * per]
            .iter()
            .map(|id| json!({"value": id}))
            .collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": name,
            "members": members,
        });
        check_then_create(&http, base, "Groups", ("displayName", &name), &body).await;
    }
    Run {
        wall_s: started.elapsed().as_secs_f64(),
        requests: 2 * (USERS + GROUPS) as u64,
    }
}

/// The user body scimctl sends (and the seeds, and the raw Bulk requests).
fn user_body(i: usize) -> Value {
    let name = user_name(i);
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ],
        "userName": name,
        "displayName": format!("Agent {i}"),
        "emails": [{"value": name, "type": "work", "primary": true}],
        "title": "Support Agent",
        "active": true,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Support"},
    })
}

/// Sends `ops` (`(bulkId, path, data)`) as Bulk requests of at most `most` operations; the
/// id of each created resource, in order.
async fn raw_bulk_requests(
    http: &reqwest::Client,
    base: &str,
    most: usize,
    ops: Vec<(String, &str, Value)>,
) -> (Vec<String>, u64) {
    let mut ids = Vec::with_capacity(ops.len());
    let mut requests = 0;
    for chunk in ops.chunks(most) {
        let operations: Vec<Value> = chunk
            .iter()
            .map(|(bulk_id, path, data)| {
                json!({"method": "POST", "path": path, "bulkId": bulk_id, "data": data})
            })
            .collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": operations,
        });
        let answer: Value = http
            .post(format!("{base}/Bulk"))
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        requests += 1;
        for op in answer["Operations"].as_array().expect("a BulkResponse") {
            // RFC 7644 §3.7.3 gives `status` as a string; some servers send a number.
            let status = op["status"]
                .as_str()
                .map_or_else(|| op["status"].to_string(), str::to_owned);
            assert!(status.starts_with("201"), "not created: {op}");
            let location = op["location"].as_str().expect("a location");
            ids.push(location.rsplit('/').next().unwrap_or_default().to_owned());
        }
    }
    (ids, requests)
}

/// The server's own floor: the same creates sent as raw Bulk requests (within the server's
/// `maxOperations`), with no discovery, no read of the tenant and no plan. No Bulk client can
/// be faster than this on the same server.
async fn floor(url: &str) -> Run {
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let config: Value = http
        .get(format!("{base}/ServiceProviderConfig"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let most = config["bulk"]["maxOperations"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0)
        .expect("the server announces Bulk");
    let started = Instant::now();
    let users = (0..USERS)
        .map(|i| (format!("u{i}"), "/Users", user_body(i)))
        .collect();
    let (ids, mut requests) = raw_bulk_requests(&http, base, most, users).await;
    let per = USERS / GROUPS;
    let groups = (0..GROUPS)
        .map(|g| {
            let members: Vec<Value> = ids[g * per..(g + 1) * per]
                .iter()
                .map(|id| json!({"value": id}))
                .collect();
            let body = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": format!("Team {g:02}"),
                "members": members,
            });
            (format!("g{g}"), "/Groups", body)
        })
        .collect();
    let (_, more) = raw_bulk_requests(&http, base, most, groups).await;
    requests += more;
    Run {
        wall_s: started.elapsed().as_secs_f64(),
        requests,
    }
}

/// A fresh server: started, its URL, and how to stop it.
trait Server {
    fn name(&self) -> &'static str;
    /// Starts a fresh server with its state under `dir`; its base URL.
    fn start(&mut self, dir: &Path) -> String;
    fn stop(&mut self, dir: &Path);
}

struct Sandbox(Option<std::process::Child>);

impl Server for Sandbox {
    fn name(&self) -> &'static str {
        "scimctl sandbox serve"
    }
    fn start(&mut self, dir: &Path) -> String {
        let (child, url) = common::serve(&dir.join("sandbox.json"));
        self.0 = Some(child);
        url
    }
    fn stop(&mut self, _dir: &Path) {
        if let Some(child) = self.0.take() {
            common::stop(child);
        }
    }
}

/// scim2-server, run from one directory (its virtualenv is installed there once); stopped
/// and started again for each run, so each run meets an empty server.
struct Scim2Server;

impl Scim2Server {
    fn script() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/scim2-server.sh")
    }

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scim-peer-bench")
    }
}

impl Server for Scim2Server {
    fn name(&self) -> &'static str {
        "scim2-server 0.8.3"
    }
    fn start(&mut self, _dir: &Path) -> String {
        let output = Command::new("bash")
            .arg(Self::script())
            .arg("start")
            .arg(Self::dir())
            .stderr(Stdio::null())
            .output()
            .expect("run scim2-server.sh");
        assert!(output.status.success(), "scim2-server did not start");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
    fn stop(&mut self, _dir: &Path) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .arg("stop")
            .arg(Self::dir())
            .stderr(Stdio::null())
            .status();
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Runs the four ways on `server`, [`RUNS`] times each; (way, median seconds, requests).
fn compare(
    server: &mut dyn Server,
    runtime: &tokio::runtime::Runtime,
) -> Vec<(&'static str, f64, u64)> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    write_desired(&dir);
    let ways: [&'static str; 4] = ["seeds", "scimctl --no-bulk", "scimctl", "server floor"];
    let mut out = Vec::new();
    for way in ways {
        let mut walls = Vec::new();
        let mut requests = 0;
        for run in 0..RUNS {
            let cwd = tmp
                .path()
                .join(format!("{}-{run}", way.replace([' ', '-'], "")));
            std::fs::create_dir_all(&cwd).unwrap();
            let url = server.start(&cwd);
            let result = match way {
                "seeds" => runtime.block_on(seeds(&url)),
                "scimctl --no-bulk" => scimctl(&cwd, &dir, &url, &["--no-bulk"]),
                "server floor" => runtime.block_on(floor(&url)),
                _ => scimctl(&cwd, &dir, &url, &[]),
            };
            server.stop(&cwd);
            walls.push(result.wall_s);
            requests = result.requests;
        }
        out.push((way, median(walls), requests));
    }
    out
}

fn main() {
    let only = std::env::var("SCIMCTL_BENCH_SERVER").unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "bulk benchmark: {USERS} users + {GROUPS} groups of {} created, median of {RUNS} runs, \
         a fresh server each run",
        USERS / GROUPS
    );
    let python = Command::new("python3")
        .args([
            "-c",
            "import sys, venv; sys.exit(sys.version_info < (3, 11))",
        ])
        .status()
        .is_ok_and(|s| s.success());
    let mut servers: Vec<Box<dyn Server>> = Vec::new();
    if only.is_empty() || only == "scim2-server" {
        if python {
            servers.push(Box::new(Scim2Server));
        } else {
            println!("scim2-server: skipped (needs Python 3.11+ with venv)");
        }
    }
    if only.is_empty() || only == "sandbox" {
        servers.push(Box::new(Sandbox(None)));
    }
    for mut server in servers {
        let rows = compare(server.as_mut(), &runtime);
        let seeds = rows[0].1;
        println!("{}:", server.name());
        for (way, wall, requests) in &rows {
            println!(
                "  {way:<18} {wall:>6.2} s  {requests:>5} requests  {:>5.1}x the seeds' speed",
                seeds / wall
            );
        }
        let (_, floor, _) = rows[3];
        println!(
            "  no Bulk client can beat the server floor: at most {:.1}x the seeds' speed on this \
             server; scimctl takes {:.0}% of its time in the server's floor",
            seeds / floor,
            100.0 * floor / rows[2].1
        );
        if server.name().starts_with("scim2-server") {
            let (_, bulk, requests) = rows[2];
            let ok = seeds / bulk >= 5.0 && requests <= 60;
            println!(
                "  target: Bulk at least 5x the seeds' speed in at most 60 requests: {}",
                if ok { "met" } else { "NOT MET" }
            );
        }
    }
}
