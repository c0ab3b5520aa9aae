//! The sandbox survives `kill -9` (issue 15, item 3): every write it answered is in its
//! journal before the answer, so it is still there when the sandbox starts again from the same
//! state file. Checked for the standalone `scimctl sandbox serve` (creates, patches and
//! deletes over HTTP, killed while they are coming in) and for the embedded sandbox an
//! `apply` with no target uses (killed mid-run; the rerun creates none of the users the audit
//! log records as created).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use scimctl::sandbox::{self, ResourceKind, SandboxConfig};

/// How many users the apply would create, and how many it must have recorded before the kill.
const USERS: usize = 2_000;
const KILL_AFTER: usize = 300;

/// How often a test looks again at what it waits for.
const POLL: Duration = Duration::from_millis(5);

fn sigkill(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// Waits (bounded) for `child` to exit and returns how it ended.
async fn reap(mut child: Child) -> std::process::ExitStatus {
    tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || child.wait().unwrap()),
    )
    .await
    .expect("the process ends")
    .unwrap()
}

/// `scimctl sandbox serve --state STATE` on a free port; the child and its base URL.
async fn serve(state: &Path) -> (Child, String) {
    let mut child = crate::support::scimctl()
        .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        }),
    )
    .await;
    let Ok(Ok(line)) = line else {
        sigkill(&child);
        panic!("sandbox serve printed no URL");
    };
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

/// Every user the server at `url` holds, by `userName`.
async fn all_users(
    client: &reqwest::Client,
    url: &str,
) -> std::collections::HashMap<String, Value> {
    let mut users = std::collections::HashMap::new();
    let mut start = 1;
    loop {
        let page: Value = client
            .get(format!("{url}/Users?startIndex={start}&count=1000"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let resources = page["Resources"].as_array().cloned().unwrap_or_default();
        if resources.is_empty() {
            return users;
        }
        start += resources.len();
        for user in resources {
            users.insert(user["userName"].as_str().unwrap().to_owned(), user);
        }
    }
}

/// The last write the server answered for one user, and whether another was under way when
/// the server died (then either outcome is right).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Answered {
    Created,
    Patched,
    Deleted,
}

#[derive(Debug)]
struct Tracked {
    name: String,
    answered: Option<Answered>,
    in_flight: bool,
}

/// One client connection's work: create a user, patch it, delete every third, one request at
/// a time, until the server stops answering. Counts answered writes in `answered`.
async fn writer(
    client: reqwest::Client,
    url: String,
    task: usize,
    answered: Arc<AtomicUsize>,
) -> Vec<Tracked> {
    let mut tracked = Vec::new();
    for i in 0.. {
        let name = format!("t{task}-u{i:05}@crash.example");
        tracked.push(Tracked {
            name: name.clone(),
            answered: None,
            in_flight: true,
        });
        let created = client
            .post(format!("{url}/Users"))
            .header("content-type", "application/scim+json")
            .body(json!({"userName": name}).to_string())
            .send()
            .await;
        let Ok(created) = created else { break };
        let Ok(body) = created.json::<Value>().await else {
            break;
        };
        let id = body["id"]
            .as_str()
            .expect("an answered create has an id")
            .to_owned();
        let last = tracked.last_mut().unwrap();
        last.answered = Some(Answered::Created);
        answered.fetch_add(1, Ordering::Relaxed);
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "patched"}]
        });
        let patched = client
            .patch(format!("{url}/Users/{id}"))
            .header("content-type", "application/scim+json")
            .body(patch.to_string())
            .send()
            .await;
        let Ok(patched) = patched else { break };
        assert_eq!(patched.status(), 200, "patch");
        if patched.bytes().await.is_err() {
            break;
        }
        last.answered = Some(Answered::Patched);
        answered.fetch_add(1, Ordering::Relaxed);
        if i % 3 == 2 {
            match client.delete(format!("{url}/Users/{id}")).send().await {
                Ok(r) if r.status() == 204 => {
                    last.answered = Some(Answered::Deleted);
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("delete answered {}", r.status()),
                Err(_) => break,
            }
        }
        last.in_flight = false;
    }
    tracked
}

/// `scimctl sandbox serve`, killed with SIGKILL while eight connections create, patch and
/// delete users: after a restart on the same state file every answered create and patch is
/// there and every answered delete stays done; a clean stop then folds the journal into the
/// state file and removes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_every_answered_write_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let journal = dir.path().join("state.json.journal");
    let (server, url) = serve(&state).await;
    let client = reqwest::Client::new();
    let answered = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..8)
        .map(|task| tokio::spawn(writer(client.clone(), url.clone(), task, answered.clone())))
        .collect();
    let enough = tokio::time::timeout(Duration::from_secs(60), async {
        while answered.load(Ordering::Relaxed) < 400 {
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    // Killed while writes are still coming in: some answered a moment ago, some under way.
    sigkill(&server);
    enough.expect("the writes get going");
    let status = reap(server).await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let mut tracked = Vec::new();
    for task in writers {
        tracked.extend(task.await.unwrap());
    }
    assert!(journal.is_file(), "the killed server leaves its journal");

    let (server, url) = serve(&state).await;
    let users = all_users(&client, &url).await;
    let mut checked = 0;
    for user in &tracked {
        let found = users.get(&user.name);
        let title = found.map(|u| u["title"].clone());
        let ok = match (user.answered, user.in_flight) {
            (None, _) => true,
            (Some(Answered::Created), false) => title == Some(Value::Null),
            (Some(Answered::Created), true) => found.is_some(),
            (Some(Answered::Patched), false) => title == Some(json!("patched")),
            (Some(Answered::Patched), true) => found.is_none() || title == Some(json!("patched")),
            (Some(Answered::Deleted), _) => found.is_none(),
        };
        assert!(ok, "{user:?} is {found:?} after kill -9");
        checked += usize::from(user.answered.is_some());
    }
    assert!(checked >= 100, "only {checked} users were answered");

    // A clean stop folds the journal into the state file and removes it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(reap(server).await.code(), Some(0));
    assert!(!journal.exists(), "a clean stop removes the journal");
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["users"].as_array().unwrap().len(), users.len());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions())
            & 0o777,
        0o600
    );
}

/// The audit records whose outcome is `done`, from a log a killed process may have cut short.
fn done_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["outcome"] == "done" && r["action"] == "create")
        .filter_map(|r| r["key"].as_str().map(str::to_owned))
        .collect()
}

/// `scimctl apply --yes` into the default embedded sandbox (`.scimctl/sandbox.json`), killed
/// with SIGKILL once a few hundred creates are recorded; the restarted sandbox holds every
/// user the audit log records as created, and a rerun creates only the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_creates_survive_kill_9() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    std::fs::create_dir(&dir).unwrap();
    let mut users = String::from("users:\n");
    for i in 0..USERS {
        let _ = writeln!(users, "  - userName: u{i:05}@crash.example");
    }
    std::fs::write(dir.join("users.yaml"), users).unwrap();
    let child = crate::support::scimctl()
        .args(["apply", dir.to_str().unwrap(), "--yes"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let audit = cwd.path().join(".scimctl/audit.jsonl");
    let seen = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let text = std::fs::read_to_string(&audit).unwrap_or_default();
            let done = done_keys(&text).len();
            if done >= KILL_AFTER || done == USERS {
                return done;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await;
    sigkill(&child);
    let seen = seen.expect("the apply gets going");
    let status = reap(child).await;
    assert!(
        (KILL_AFTER..USERS).contains(&seen),
        "the apply recorded {seen} creates"
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed mid-run, not finished: {status:?}"
    );

    let done = done_keys(&std::fs::read_to_string(&audit).unwrap());
    assert!(
        done.len() >= KILL_AFTER && done.len() < USERS,
        "{} done",
        done.len()
    );
    let state = cwd.path().join(".scimctl/sandbox.json");
    assert!(
        cwd.path().join(".scimctl/sandbox.json.journal").is_file(),
        "the killed apply leaves the sandbox's journal"
    );
    let restarted = sandbox::start(
        SandboxConfig::default().with_state_path(&state),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let store = restarted.store();
    let missing: Vec<&String> = done
        .iter()
        .filter(|name| store.find(ResourceKind::User, name).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} users recorded as created are gone after kill -9, e.g. {:?}",
        missing.len(),
        done.len(),
        missing.first()
    );
    restarted.shutdown().await.unwrap();

    // A rerun creates only the rest: nothing recorded as done is created twice.
    let output = crate::support::run_bounded(
        cwd.path(),
        &["apply", dir.to_str().unwrap(), "--yes"],
        Duration::from_secs(120),
    );
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{out}");
    let all = done_keys(&std::fs::read_to_string(&audit).unwrap());
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a user created twice: {out}");
    let last = sandbox::start(
        SandboxConfig::default().with_state_path(&state),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(last.store().count(ResourceKind::User), USERS);
    last.shutdown().await.unwrap();
}
