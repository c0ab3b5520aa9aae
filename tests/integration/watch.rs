//! `scimctl watch` as a child process against a sandbox (and scim2-server): file edits and
//! drift healed, report mode writing nothing, an invalid edit keeping the last valid state,
//! SIGTERM in the middle of an apply.
//!
//! Progress is read from watch's own log lines on stderr, each awaited with a deadline; the
//! tenant is read through scimctl's client. Nothing sleeps.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

use scimctl::scim::wire::{PatchOpKind, PatchOperation, User};
use scimctl::scim::{ScimClient, ScimRead};
use serde_json::json;
use tokio::sync::mpsc;

use crate::support::bearer_client;
use crate::support::watch::{Spawned, WatchArgs, spawn_watch};

const LIMIT: Duration = Duration::from_secs(30);

/// A running `scimctl watch` whose stderr lines arrive on a channel.
pub(crate) struct Watch {
    child: Option<Child>,
    lines: mpsc::UnboundedReceiver<String>,
    pub(crate) seen: Vec<String>,
    base: String,
}

impl Watch {
    fn start(cwd: &Path, dir: &Path, url: &str, token: &str, extra: &[&str], log: &str) -> Watch {
        Watch::start_with(cwd, dir, url, token, extra, log, &[])
    }

    pub(crate) fn start_with(
        cwd: &Path,
        dir: &Path,
        url: &str,
        token: &str,
        extra: &[&str],
        log: &str,
        env: &[(&str, &str)],
    ) -> Watch {
        let (tx, lines) = mpsc::unbounded_channel();
        let Spawned { child, base } = spawn_watch(
            &WatchArgs {
                cwd,
                dir,
                url,
                token: Some(token),
                log,
                extra,
                env,
            },
            move |line| tx.send(line).is_ok(),
        );
        Watch {
            child: Some(child),
            lines,
            seen: Vec::new(),
            base,
        }
    }

    /// The next log line for which `want` holds, within [`LIMIT`].
    pub(crate) async fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + LIMIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Ok(None) => panic!("watch ended before {what}:\n{}", self.seen.join("\n")),
                Err(elapsed) => panic!(
                    "no {what} within {LIMIT:?} ({elapsed}):\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next `reconciled` line of `trigger`.
    pub(crate) async fn reconciled(&mut self, trigger: &str) -> String {
        let needle = format!("trigger=\"{trigger}\"");
        self.wait_for(&format!("a {trigger} reconcile"), |l| {
            l.contains(" reconciled ") && l.contains(&needle)
        })
        .await
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{path}", self.base)).await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// SIGTERM; waits (bounded) for the exit and returns its code and the last log lines.
    pub(crate) async fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let waited = tokio::time::timeout(
            LIMIT,
            tokio::task::spawn_blocking(move || child.wait().unwrap()),
        )
        .await;
        let status = waited.unwrap_or_else(|_| {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("watch did not stop on SIGTERM")
        });
        let mut rest = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.try_recv() {
            rest.push(line);
        }
        (status.unwrap().code(), rest)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn org(titles: &[(&str, &str)]) -> String {
    let mut yaml = String::from("users:\n");
    for (name, title) in titles {
        let _ = write!(yaml, "  - userName: {name}@w.example\n    title: {title}\n");
    }
    yaml.push_str("groups:\n  - displayName: Watchers\n    members: [ana@w.example]\n");
    yaml
}

async fn title_of(client: &ScimClient, name: &str) -> Option<String> {
    user_of(client, name).await.title
}

async fn user_of(client: &ScimClient, name: &str) -> User {
    client
        .find_by_key(&format!("{name}@w.example"))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{name} is not on the tenant"))
}

async fn set_title(client: &ScimClient, name: &str, title: &str) {
    let user: User = client
        .find_by_key(&format!("{name}@w.example"))
        .await
        .unwrap()
        .unwrap();
    let op = PatchOperation {
        op: PatchOpKind::Replace,
        path: Some("title".into()),
        value: Some(json!(title)),
    };
    client
        .patch::<User>(user.id.as_deref().unwrap(), None, &[op])
        .await
        .unwrap();
}

/// Heal mode end to end: the start applies everything; an edit is applied (and only it);
/// drift made on the tenant is healed by the next resync; an invalid edit changes nothing,
/// shows on /readyz with path:line:col and in metrics, and the fix makes watch ready again;
/// SIGTERM exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn heals_edits_and_drift() {
    let token = "watch-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "org.yaml", &org(&[("ana", "Agent"), ("bo", "Agent")]));
    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        &running.base_url,
        token,
        &["--interval", "2s"],
        "scimctl=info",
    );
    let line = watch.reconciled("start").await;
    assert!(
        line.contains("drift=3") && line.contains("applied=3"),
        "{line}"
    );
    assert_eq!(title_of(&client, "ana").await.as_deref(), Some("Agent"));
    assert_eq!(watch.get("/readyz").await.0, 200);

    // An edit: only bo changes.
    write(&dir, "org.yaml", &org(&[("ana", "Agent"), ("bo", "Lead")]));
    let line = watch.reconciled("files").await;
    assert!(
        line.contains("drift=1") && line.contains("applied=1"),
        "{line}"
    );
    assert_eq!(title_of(&client, "bo").await.as_deref(), Some("Lead"));

    // Drift on the tenant: healed by the next resync.
    set_title(&client, "ana", "Changed Elsewhere").await;
    let line = watch
        .wait_for("the drift healed", |l| {
            l.contains(" reconciled ") && l.contains("trigger=\"resync\"") && l.contains("drift=1")
        })
        .await;
    assert!(line.contains("applied=1"), "{line}");
    assert_eq!(title_of(&client, "ana").await.as_deref(), Some("Agent"));

    // An invalid edit: nothing reaches the tenant, /readyz and metrics say why.
    write(
        &dir,
        "org.yaml",
        &org(&[("ana", "Agent"), ("bo", "Lead")]).replace("title: Agent", "titel: Boss"),
    );
    let line = watch
        .wait_for("the invalid edit reported", |l| l.contains("org.yaml:"))
        .await;
    assert!(
        line.contains("ERROR") && line.contains("org.yaml:3:5"),
        "{line}"
    );
    watch.reconciled("files").await;
    let (status, body) = watch.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("org.yaml:3:5"), "{body}");
    assert!(body.contains("last valid one"), "{body}");
    let (_, metrics) = watch.get("/metrics").await;
    assert!(
        metrics.contains("scimctl_desired_state_valid 0"),
        "{metrics}"
    );
    // The reconcile of the last valid state is not a success: the edit is not applied.
    assert!(
        metrics.contains("scimctl_reconciles_total{trigger=\"files\",result=\"invalid\"} 1"),
        "{metrics}"
    );
    assert_eq!(
        title_of(&client, "ana").await.as_deref(),
        Some("Agent"),
        "the last valid state stays in force"
    );
    // A resync meanwhile heals with the last valid state.
    set_title(&client, "bo", "Changed Again").await;
    watch
        .wait_for("a resync with the last valid state", |l| {
            l.contains(" reconciled ")
                && l.contains("trigger=\"resync\"")
                && l.contains("applied=1")
        })
        .await;
    assert_eq!(title_of(&client, "bo").await.as_deref(), Some("Lead"));

    // The fix: ready again.
    write(&dir, "org.yaml", &org(&[("ana", "Agent"), ("bo", "Lead")]));
    watch.reconciled("files").await;
    let (status, body) = watch.get("/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));
    let (status, metrics) = watch.get("/metrics").await;
    assert_eq!(status, 200);
    for line in [
        "scimctl_desired_state_valid 1",
        "scimctl_quarantined 0",
        "scimctl_drift{kind=\"user\"} 0",
        "scimctl_operations_total{action=\"create\",outcome=\"done\"} 3",
        "scimctl_operations_total{action=\"patch\",outcome=\"done\"} 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("scimctl_http_requests_total{status=\"200\"}"));
    // Every metric the Grafana dashboard queries is exported (the webhook ones once webhooks
    // are configured: hris_termination_and_outbound_webhooks) and documented.
    let watch_doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/watch.md"))
            .unwrap();
    let queried = dashboard_metrics();
    assert!(queried.len() >= 15, "{queried:?}");
    for name in &queried {
        assert!(
            name.starts_with(WEBHOOK) || exported(&metrics, name),
            "the dashboard queries {name}, which watch does not export:\n{metrics}"
        );
        let documented = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name.as_str(), |n, suffix| n.trim_end_matches(suffix));
        assert!(
            watch_doc.contains(&format!("`{documented}")),
            "{documented} is not in docs/watch.md"
        );
    }

    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
    let audit = std::fs::read_to_string(tmp.path().join(".scimctl/audit.jsonl")).unwrap();
    // One final record per operation; each write was announced first (`phase: sending`).
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (finals, steps): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.get("phase").is_none());
    assert_eq!(finals.len(), 6, "{audit}");
    for record in finals {
        assert_eq!(record["outcome"], "done", "{record}");
    }
    assert!(
        steps.iter().filter(|r| r["phase"] == "sending").count() >= 6,
        "{audit}"
    );
}

/// Report mode: drift is found, logged and shown in metrics, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_only_reports() {
    let token = "watch-report-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(&dir, "org.yaml", &org(&[("ana", "Agent")]));
    let (code, out, err) = {
        let output = crate::support::run_bounded_with(
            tmp.path(),
            &[
                "apply",
                dir.to_str().unwrap(),
                "--target",
                &running.base_url,
                "--yes",
            ],
            &[("SCIMCTL_TOKEN", token)],
            LIMIT,
        );
        let (out, err) = crate::support::text(&output);
        (output.status.code(), out, err)
    };
    assert_eq!(code, Some(0), "{out}\n{err}");
    set_title(&client, "ana", "Changed Elsewhere").await;

    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        &running.base_url,
        token,
        &["--interval", "1s", "--mode", "report"],
        "scimctl=info",
    );
    let line = watch.reconciled("start").await;
    assert!(
        line.contains("drift=1") && line.contains("applied=0"),
        "{line}"
    );
    let line = watch.reconciled("resync").await;
    assert!(
        line.contains("drift=1") && line.contains("applied=0"),
        "{line}"
    );
    let (_, metrics) = watch.get("/metrics").await;
    assert!(
        metrics.contains("scimctl_drift{kind=\"user\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("scimctl_operations_total{"), "{metrics}");
    assert_eq!(
        title_of(&client, "ana").await.as_deref(),
        Some("Changed Elsewhere")
    );
    let (code, lines) = watch.terminate().await;
    assert_eq!(code, Some(0));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("drift found") || l.contains("title")),
        "the drift is logged: {lines:#?}"
    );
}

/// SIGTERM in the middle of an apply: the operations in flight finish, none starts after,
/// the process exits 0, the audit log is whole, and the next apply finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_apply_finishes_in_flight_and_stops() {
    let token = "watch-term-token";
    // Bulk requests of 5 operations: the apply is many requests long.
    let running = scimctl::sandbox::start(
        scimctl::sandbox::SandboxConfig {
            auth: scimctl::sandbox::SandboxAuth::Bearer(token.into()),
            bulk: Some(scimctl::sandbox::BulkLimits {
                max_operations: 5,
                ..scimctl::sandbox::BulkLimits::default()
            }),
            ..scimctl::sandbox::SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let client = bearer_client(&running.base_url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    let names: Vec<String> = (0..400).map(|i| format!("u{i:03}")).collect();
    let titles: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "Agent")).collect();
    write(&dir, "org.yaml", &org(&titles).replace("ana@", "u000@"));
    // One request at a time, 40 a second: the apply takes ten seconds.
    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        &running.base_url,
        token,
        &["--requests-per-minute", "2400"],
        "scimctl=debug",
    );
    watch
        .wait_for("the first finished operation", |l| {
            l.contains("operation finished")
        })
        .await;
    let (code, lines) = watch.terminate().await;
    assert_eq!(code, Some(0), "{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("no new operation starts")),
        "{}",
        lines.join("\n")
    );

    let audit = std::fs::read_to_string(tmp.path().join(".scimctl/audit.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r.get("phase").is_none())
        .collect();
    assert_eq!(records.len(), 401, "every operation has one final record");
    let users_done = records
        .iter()
        .filter(|r| r["kind"] == "user" && r["outcome"] == "done")
        .count();
    let users_skipped = records
        .iter()
        .filter(|r| r["kind"] == "user" && r["outcome"] == "skipped")
        .count();
    assert!((1..400).contains(&users_done), "{users_done} users created");
    assert_eq!(users_done + users_skipped, 400, "{audit}");
    assert!(
        records
            .iter()
            .filter(|r| r["outcome"] == "skipped")
            .all(|r| r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("shutting down") || d.contains("did not succeed"))),
        "{audit}"
    );
    let live = client.snapshot().await.unwrap();
    assert_eq!(
        live.users.len(),
        users_done,
        "only what was done is on the tenant"
    );

    let output = crate::support::run_bounded_with(
        tmp.path(),
        &[
            "apply",
            dir.to_str().unwrap(),
            "--target",
            &running.base_url,
            "--yes",
        ],
        &[("SCIMCTL_TOKEN", token)],
        LIMIT,
    );
    let (out, err) = crate::support::text(&output);
    assert_eq!(output.status.code(), Some(0), "{out}\n{err}");
    let live = client.snapshot().await.unwrap();
    assert_eq!(live.users.len(), 400, "no duplicates, none missing");
}

/// Drift on scim2-server is healed by the next resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heals_drift_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let client = bearer_client(&url, &token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    let suffix = std::process::id();
    let name = format!("watcher{suffix}");
    write(
        &dir,
        "org.yaml",
        &format!("users:\n  - userName: {name}@w.example\n    title: Agent\n"),
    );
    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        &url,
        &token,
        &["--interval", "1s"],
        "scimctl=info",
    );
    let line = watch.reconciled("start").await;
    assert!(line.contains("applied=1"), "{line}");
    set_title(&client, &name, "Changed Elsewhere").await;
    watch
        .wait_for("the drift healed", |l| {
            l.contains(" reconciled ")
                && l.contains("trigger=\"resync\"")
                && l.contains("applied=1")
        })
        .await;
    assert_eq!(title_of(&client, &name).await.as_deref(), Some("Agent"));
    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
}

/// What a loopback webhook receiver got: each body, and whether its signature verified.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(serde_json::Value, bool)>>>;

/// A webhook receiver on a free loopback port verifying with `secret`; returns its URL.
async fn receiver(secret: &str, received: Received) -> String {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    let verifier = std::sync::Arc::new(scimctl::webhook::Verifier::new(
        scimctl::scim::Secret::new(secret.to_owned()),
    ));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let verifier = verifier.clone();
            let received = received.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let ok = verifier
                    .verify(
                        header("x-scimctl-timestamp"),
                        header("x-scimctl-signature"),
                        &body,
                        scimctl::apply::audit::now_unix(),
                    )
                    .is_ok();
                let value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                received.lock().unwrap().push((value, ok));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// POSTs a termination for `user` to watch's HRIS endpoint, signed with `secret` (or a
/// tampered body when `tamper`); returns the status and body.
async fn terminate(base: &str, secret: &str, body: &str, signed_body: &str) -> (u16, String) {
    let now = scimctl::apply::audit::now_unix();
    post_signed(
        base,
        "/webhooks/hris/termination",
        secret,
        now,
        body,
        signed_body,
    )
    .await
}

/// POSTs `body` to watch's `path` with the signature of `signed_body` under `secret` at
/// `timestamp`; returns the status and body.
async fn post_signed(
    base: &str,
    path: &str,
    secret: &str,
    timestamp: i64,
    body: &str,
    signed_body: &str,
) -> (u16, String) {
    let signature = scimctl::webhook::sign(
        &scimctl::scim::Secret::new(secret.to_owned()),
        timestamp,
        signed_body.as_bytes(),
    );
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("X-Scimctl-Timestamp", timestamp.to_string())
        .header("X-Scimctl-Signature", signature)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Outbound webhooks carry signed drift and applied events; an HRIS termination through
/// watch deactivates the user at once, is recorded in the overrides file and the audit log,
/// and later reconciles keep the user inactive although the YAML still lists them active.
/// Tampered, replayed and unknown-user requests change nothing; a protected user's
/// termination is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn hris_termination_and_outbound_webhooks() {
    let token = "watch-hris-token";
    let running = crate::support::bearer_sandbox(token).await;
    let client = bearer_client(&running.base_url, token, None);
    let received: Received = std::sync::Arc::default();
    let hook = receiver("hook-secret", received.clone()).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        &format!(
            "watch:\n  webhooks:\n    urls: [{hook}]\n    secret: {{fromEnv: TEST_HOOK_SECRET}}\n  \
             hris:\n    secret: {{fromEnv: TEST_HRIS_SECRET}}\n\
             protected: {{users: [ana@w.example]}}\n"
        ),
    );
    write(&dir, "org.yaml", &org(&[("ana", "Agent"), ("bo", "Agent")]));
    let mut watch = Watch::start_with(
        tmp.path(),
        &dir,
        &running.base_url,
        token,
        &["--interval", "1s"],
        "scimctl=info",
        &[
            ("TEST_HOOK_SECRET", "hook-secret"),
            ("TEST_HRIS_SECRET", "hris-secret"),
        ],
    );
    watch.reconciled("start").await;

    // A forged signature, then a request for a user the YAML does not have.
    let body = r#"{"userName": "bo@w.example", "reason": "left the company"}"#;
    let (status, _) = terminate(
        &watch.base,
        "hris-secret",
        body,
        r#"{"userName": "ana@w.example"}"#,
    )
    .await;
    assert_eq!(status, 401, "a tampered body");
    let (status, text) = terminate(
        &watch.base,
        "hris-secret",
        r#"{"userName": "nobody@w.example"}"#,
        r#"{"userName": "nobody@w.example"}"#,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    let bo: User = client.find_by_key("bo@w.example").await.unwrap().unwrap();
    assert_ne!(bo.active, Some(false), "nothing changed yet");

    // The real one: deactivated at once.
    let (status, text) = terminate(&watch.base, "hris-secret", body, body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("deactivated"), "{text}");
    let bo: User = client.find_by_key("bo@w.example").await.unwrap().unwrap();
    assert_eq!(bo.active, Some(false));
    let overrides = std::fs::read_to_string(tmp.path().join(".scimctl/overrides.json")).unwrap();
    assert!(overrides.contains("bo@w.example") && overrides.contains("left the company"));
    let audit = std::fs::read_to_string(tmp.path().join(".scimctl/audit.jsonl")).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("bo@w.example")
            && l.contains("\"outcome\":\"done\"")
            && !l.contains("\"action\":\"create\"")),
        "{audit}"
    );

    // A protected user: the HRIS termination goes through the same safety rules as every
    // other write, so it is refused (409) and ana stays active.
    let body = r#"{"userName": "ana@w.example", "reason": "left"}"#;
    let (status, text) = terminate(&watch.base, "hris-secret", body, body).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("protected"), "{text}");
    let ana: User = client.find_by_key("ana@w.example").await.unwrap().unwrap();
    assert_ne!(
        ana.active,
        Some(false),
        "a protected user is never deactivated"
    );

    // Later resyncs keep bo inactive; the YAML disagreeing is logged as a warning.
    let line = watch.reconciled("resync").await;
    assert!(line.contains("drift=0"), "{line}");
    let bo: User = client.find_by_key("bo@w.example").await.unwrap().unwrap();
    assert_eq!(bo.active, Some(false), "not re-activated");
    assert!(
        watch
            .seen
            .iter()
            .any(|l| l.contains("WARN") && l.contains("org.yaml:") && l.contains("HRIS")),
        "{}",
        watch.seen.join("\n")
    );

    // The dashboard's webhook panels query metrics this watch exports.
    let (_, metrics) = watch.get("/metrics").await;
    for name in dashboard_metrics()
        .iter()
        .filter(|n| n.starts_with(WEBHOOK))
    {
        assert!(exported(&metrics, name), "{name} is not in\n{metrics}");
    }

    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
    let got = received.lock().unwrap().clone();
    assert!(
        got.iter().all(|(_, ok)| *ok),
        "every event is signed: {got:#?}"
    );
    let kinds: Vec<&str> = got
        .iter()
        .filter_map(|(v, _)| v["event"].as_str())
        .collect();
    assert!(
        kinds.contains(&"driftFound") && kinds.contains(&"applied"),
        "{kinds:?}"
    );
    let applied = got.iter().find(|(v, _)| v["event"] == "applied").unwrap();
    assert_eq!(applied.0["outcomes"]["done"], 3, "{applied:?}");
}

/// Issue 14's watch repro: two of three user files moved away under `watch` (heal). The
/// deactivations are over the brake, and so are the member removals that go with them: the
/// team keeps all its members and nobody is deactivated, on the sandbox and on scim2-server.
async fn blocked_prunes_keep_their_members(url: &str, token: &str, tag: &str) {
    let client = bearer_client(url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(dir.join("users")).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        &format!(
            "ownership: {{users: {{selector: {{nameSuffix: \"@{tag}.example\"}}}}}}\n\
             safety: {{maxDeletePercent: 10}}\n"
        ),
    );
    write(
        &dir,
        "groups.yaml",
        &format!("groups:\n  - displayName: {tag}-team\n"),
    );
    for file in 0..3 {
        let mut yaml = String::from("users:\n");
        for i in 0..10 {
            let _ = writeln!(
                yaml,
                "  - userName: u{file}x{i}@{tag}.example\n    groups: [{tag}-team]"
            );
        }
        write(&dir.join("users"), &format!("part{file}.yaml"), &yaml);
    }
    let census = || async {
        let live = client.snapshot().await.unwrap();
        let suffix = format!("@{tag}.example");
        let active = live
            .users
            .iter()
            .map(|u| u.parse().unwrap())
            .filter(|u| u.user_name.ends_with(&suffix) && u.active != Some(false))
            .count();
        let members = live
            .groups
            .iter()
            .map(|g| g.parse().unwrap())
            .find(|g| g.display_name == format!("{tag}-team"))
            .map_or(0, |g| g.members.len());
        (active, members)
    };
    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        url,
        token,
        &["--interval", "1h"],
        "scimctl=info",
    );
    let line = watch.reconciled("start").await;
    assert!(line.contains("blocked=0"), "{line}");
    assert_eq!(census().await, (30, 30));

    let away = tmp.path().join("away");
    std::fs::create_dir(&away).unwrap();
    for file in 1..3 {
        let name = format!("part{file}.yaml");
        std::fs::rename(dir.join("users").join(&name), away.join(&name)).unwrap();
    }
    // 20 deactivations and the team's patch removing them: all held back, nothing applied,
    // in the reconcile that sees both moves and in any that saw only the first.
    let line = watch
        .wait_for("a reconcile with both moves", |l| {
            l.contains(" reconciled ")
                && l.contains("trigger=\"files\"")
                && l.contains("blocked=21")
        })
        .await;
    assert!(line.contains("applied=0"), "{line}");
    for l in watch
        .seen
        .iter()
        .filter(|l| l.contains(" reconciled ") && l.contains("trigger=\"files\""))
    {
        assert!(l.contains("applied=0"), "{l}");
    }
    assert_eq!(
        census().await,
        (30, 30),
        "no deactivation and no member removal"
    );
    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_prunes_keep_their_members_under_watch() {
    let token = "watch-cascade-token";
    let running = crate::support::bearer_sandbox(token).await;
    blocked_prunes_keep_their_members(&running.base_url, token, "wcascade-sbx").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_prunes_keep_their_members_under_watch_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let tag = format!("wcascade{}", std::process::id());
    blocked_prunes_keep_their_members(&url, &token, &tag).await;
}

/// The actor guard and the per-target lock on watch's two writers, reconciles and HRIS
/// terminations. While another run holds the target's lock, the first reconcile waits and
/// writes nothing, and so does a termination, until the lock is free. The account scimctl
/// runs as (named by the sandbox's `GET /Me`) is neither deactivated by a termination (409)
/// nor pruned by a reconcile, whose other prune goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn the_actor_and_the_lock_hold_under_watch_and_hris() {
    use scimctl::session::lock;
    let token = "watch-actor-token";
    let running = crate::support::bearer_sandbox_as(token, Some("bot@w.example")).await;
    let url = running.base_url.clone();
    let client = bearer_client(&url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    let locks = tmp.path().join("locks");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        "ownership: {users: all}\nsafety: {maxDeletePercent: 100, maxDeleteCount: 100}\n\
         watch:\n  hris:\n    secret: {fromEnv: TEST_HRIS_SECRET}\n",
    );
    let everyone = [
        ("ana", "Agent"),
        ("bo", "Agent"),
        ("bot", "Robot"),
        ("cy", "Agent"),
    ];
    write(&dir, "org.yaml", &org(&everyone));
    let active = || async {
        let mut names: Vec<String> = client
            .snapshot()
            .await
            .unwrap()
            .users
            .iter()
            .map(|u| u.parse().unwrap())
            .filter(|u| u.active != Some(false))
            .map(|u| u.user_name)
            .collect();
        names.sort();
        names
    };

    // Another run holds the lock: the start reconcile waits for it and writes nothing.
    let key = scimctl::scim::shown_url(&url);
    let held = lock::acquire(&locks, &key, Duration::ZERO, |_| panic!("free"))
        .await
        .unwrap();
    let mut watch = Watch::start_with(
        tmp.path(),
        &dir,
        &url,
        token,
        &["--interval", "1h"],
        "scimctl=info",
        &[
            ("TEST_HRIS_SECRET", "hris-secret"),
            ("SCIMCTL_LOCK_DIR", locks.to_str().unwrap()),
        ],
    );
    let waiting = |l: &str| l.contains("waiting for another scimctl run writing to the target");
    watch
        .wait_for("a reconcile waiting for the lock", waiting)
        .await;
    assert!(active().await.is_empty(), "nothing written under the lock");
    drop(held);
    watch.reconciled("start").await;
    let all = ["ana", "bo", "bot", "cy"].map(|n| format!("{n}@w.example"));
    assert_eq!(active().await, all);

    // The actor's termination: refused, bot stays active.
    let body = r#"{"userName": "bot@w.example", "reason": "left"}"#;
    let (status, text) = terminate(&watch.base, "hris-secret", body, body).await;
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("the account scimctl runs as"), "{text}");

    // A termination while another run holds the lock waits for it.
    let held = lock::acquire(&locks, &key, LIMIT, |_| {}).await.unwrap();
    let base = watch.base.clone();
    let pending = tokio::spawn(async move {
        let body = r#"{"userName": "bo@w.example"}"#;
        terminate(&base, "hris-secret", body, body).await
    });
    watch
        .wait_for("a termination waiting for the lock", waiting)
        .await;
    assert_eq!(active().await, all, "nothing written under the lock");
    drop(held);
    let (status, text) = tokio::time::timeout(LIMIT, pending).await.unwrap().unwrap();
    assert_eq!(status, 200, "{text}");
    let ana_bot_cy = ["ana", "bot", "cy"].map(|n| format!("{n}@w.example"));
    assert_eq!(active().await, ana_bot_cy);

    // bot and cy leave the YAML: cy is deactivated, bot is held back.
    write(&dir, "org.yaml", &org(&[("ana", "Agent"), ("bo", "Agent")]));
    let line = watch
        .wait_for("a reconcile of the edit", |l| {
            l.contains(" reconciled ") && l.contains("trigger=\"files\"")
        })
        .await;
    assert!(line.contains("blocked=1"), "{line}");
    assert_eq!(
        active().await,
        ["ana", "bot"].map(|n| format!("{n}@w.example"))
    );
    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
}

/// Issue 15's termination flow end to end on scim2-server, in heal and in report mode: users
/// with a manager and a group; a signed termination answers only after the user is inactive;
/// later reconciles keep them inactive; once the YAML drops them, `apply` under
/// `prune: {users: delete}` deletes the now inactive user and forgets the termination.
async fn termination_end_to_end(url: &str, token: &str, tag: &str, mode: &str) {
    let client = bearer_client(url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        &format!(
            "ownership: {{users: {{selector: {{nameSuffix: \"@{tag}.example\"}}}}}}\n\
             prune: {{users: delete}}\n\
             safety: {{maxDeletePercent: 100, maxDeleteCount: 100}}\n\
             watch:\n  hris:\n    secret: {{fromEnv: TEST_HRIS_SECRET}}\n"
        ),
    );
    let [boss, r1, r2] = ["boss", "r1", "r2"].map(|n| format!("{n}@{tag}.example"));
    let org = |reports: &[&String]| {
        let mut yaml = format!("users:\n  - userName: {boss}\n");
        for r in reports {
            let _ = writeln!(
                yaml,
                "  - userName: {r}\n    manager: {boss}\n    groups: [{tag}-team]"
            );
        }
        let _ = writeln!(yaml, "groups:\n  - displayName: {tag}-team");
        write(&dir, "org.yaml", &yaml);
    };
    org(&[&r1, &r2]);
    let apply = || {
        let output = crate::support::run_bounded_with(
            tmp.path(),
            &["apply", dir.to_str().unwrap(), "--target", url, "--yes"],
            &[("SCIMCTL_TOKEN", token)],
            LIMIT,
        );
        let (out, err) = crate::support::text(&output);
        assert_eq!(output.status.code(), Some(0), "{out}\n{err}");
        out
    };
    tokio::task::block_in_place(apply);
    let active = |name: String| {
        let client = &client;
        async move {
            let user: Option<User> = client.find_by_key(&name).await.unwrap();
            user.map(|u| u.active != Some(false))
        }
    };

    let mut watch = Watch::start_with(
        tmp.path(),
        &dir,
        url,
        token,
        &["--interval", "1s", "--mode", mode],
        "scimctl=info",
        &[("TEST_HRIS_SECRET", "hris-secret")],
    );
    watch.reconciled("start").await;
    let body = format!(r#"{{"userName": "{r1}", "reason": "left"}}"#);
    let (status, text) = terminate(&watch.base, "hris-secret", &body, &body).await;
    assert_eq!(status, 200, "{mode}: {text}");
    assert!(text.contains("\"deactivated\""), "{mode}: {text}");
    // The answer comes after the write: the user is inactive now, not at the next resync.
    assert_eq!(active(r1.clone()).await, Some(false), "{mode}");
    assert_eq!(active(r2.clone()).await, Some(true), "{mode}");
    watch.reconciled("resync").await;
    watch.reconciled("resync").await;
    assert_eq!(
        active(r1.clone()).await,
        Some(false),
        "{mode}: stays inactive"
    );
    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));

    // The YAML catches up by dropping r1: apply deletes the inactive user and settles the
    // termination, so the overrides file no longer lists it.
    org(&[&r2]);
    let out = tokio::task::block_in_place(apply);
    assert!(out.contains(&r1), "{out}");
    assert_eq!(active(r1.clone()).await, None, "{mode}: deleted");
    assert_eq!(active(r2.clone()).await, Some(true), "{mode}");
    let overrides = std::fs::read_to_string(tmp.path().join(".scimctl/overrides.json")).unwrap();
    assert!(!overrides.contains(&r1), "{overrides}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn termination_end_to_end_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    for mode in ["heal", "report"] {
        let tag = format!("term{mode}{}", std::process::id());
        termination_end_to_end(&url, &token, &tag, mode).await;
    }
}

/// Issue 19 under watch, against an in-process sandbox whose request counters show what
/// reached the tenant: a changed `fromFile` source is rotated by the next reconcile; the password-sync endpoint sets a good signed password through the pipeline
/// (one PATCH, fingerprint recorded, audit record without the value), answers `unchanged`
/// for the same password without a single request to the tenant, and refuses tampered,
/// stale, replayed, weak, unknown-user, protected-user and source-owned requests with
/// nothing written. No password appears in watch's output at trace level, the audit log or
/// the fingerprint file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::too_many_lines)] // one story, top to bottom
async fn password_sync_and_rotation_under_watch() {
    use scimctl::apply::fingerprint;
    use scimctl::sandbox::{self, SandboxAuth, SandboxConfig};

    const SOURCE_OLD: &str = "Fi1e-source-Passw0rd!";
    const SOURCE_NEW: &str = "Fi1e-source-R0tated!!";
    const PUSHED: &str = "Pushed-by-sync-0k!";
    const WEAK: &str = "weakpassword";
    const LATER: &str = "Later-push-under-l0ck!";
    let token = "pwsync-token";
    let running = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::Bearer(token.into()),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = running.base_url.clone();
    let client = bearer_client(&url, token, None);
    // The protected user exists already; scimctl never changes it.
    client
        .create(&User {
            user_name: "prot@pw.example".into(),
            ..User::default()
        })
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let locks = tmp.path().join("locks");
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        "ownership: {users: listed}\nprotected: {users: [prot@pw.example]}\n\
         watch:\n  passwordSync:\n    secret: {fromEnv: TEST_PWSYNC_SECRET}\n",
    );
    write(&dir, "src.pw", SOURCE_OLD);
    write(
        &dir,
        "org.yaml",
        concat!(
            "users:\n",
            "  - userName: sync@pw.example\n",
            "  - userName: prot@pw.example\n",
            "  - userName: src@pw.example\n",
            "    password: {fromFile: src.pw}\n",
        ),
    );
    let mut watch = Watch::start_with(
        tmp.path(),
        &dir,
        &url,
        token,
        &["--interval", "1h"],
        "scimctl=trace",
        &[
            ("TEST_PWSYNC_SECRET", "pwsync-secret"),
            ("SCIMCTL_LOCK_DIR", locks.to_str().unwrap()),
        ],
    );
    let line = watch.reconciled("start").await;
    assert!(line.contains("applied=2"), "{line}");
    let fp = tmp.path().join(".scimctl/password-fingerprints.json");
    let phc = |user: &str| -> Option<String> {
        let stored: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&fp).unwrap()).unwrap();
        stored["targets"]
            .as_object()
            .unwrap()
            .values()
            .find_map(|t| t[user].as_str().map(str::to_owned))
    };
    let set_to = |user: &str, password: &str| {
        phc(user).is_some_and(|p| {
            fingerprint::matches(&p, &scimctl::scim::Secret::new(password.to_owned()))
        })
    };
    assert!(
        set_to("src@pw.example", SOURCE_OLD),
        "the create recorded it"
    );

    // Rotation: the source file changes; the next reconcile sets the new password. Watch
    // reacts to YAML files (a secret file is usually mounted elsewhere and is read at every
    // drift resync), so a YAML edit triggers it here, without waiting for the timer.
    // Writes alone or as operations of Bulk requests (the sandbox announces Bulk).
    let writes = || {
        let s = running.stats();
        s.by_method.patch + s.bulk_operations
    };
    let patches = writes();
    write(&dir, "src.pw", SOURCE_NEW);
    write(&dir, "touch.yaml", "users: []\n");
    let line = watch.reconciled("files").await;
    assert!(line.contains("applied=1"), "{line}");
    assert_eq!(writes(), patches + 1);
    assert!(set_to("src@pw.example", SOURCE_NEW));

    // The endpoint: a good request sets the password with one PATCH.
    let sync = |body: String, secret: &'static str, at: i64| {
        let base = watch.base.clone();
        async move { post_signed(&base, "/webhooks/password", secret, at, &body, &body).await }
    };
    let body = |user: &str, password: &str| {
        serde_json::json!({"userName": user, "password": password}).to_string()
    };
    let now = scimctl::apply::audit::now_unix;
    let patches = writes();
    let good = body("Sync@pw.example", PUSHED);
    let first = now();
    let (status, text) = sync(good.clone(), "pwsync-secret", first).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"set\""), "{text}");
    assert_eq!(writes(), patches + 1);
    assert!(set_to("sync@pw.example", PUSHED), "fingerprint recorded");

    // The same password again: `unchanged`, and not one request to the tenant.
    let requests = running.stats().requests;
    let (status, text) = sync(good.clone(), "pwsync-secret", now() + 1).await;
    assert_eq!(
        (status, text.contains("\"unchanged\"")),
        (200, true),
        "{text}"
    );
    assert_eq!(running.stats().requests, requests);

    // Every refusal writes nothing.
    let before = (writes(), std::fs::read(&fp).unwrap());
    let tampered = body("sync@pw.example", "Tampered-passw0rd!");
    let base = watch.base.clone();
    let refusals = [
        (
            "tampered",
            post_signed(
                &base,
                "/webhooks/password",
                "pwsync-secret",
                now(),
                &tampered,
                &good,
            )
            .await,
            401,
        ),
        (
            "stale",
            sync(
                body("sync@pw.example", "Stale-passw0rd-1!"),
                "pwsync-secret",
                now() - 600,
            )
            .await,
            401,
        ),
        (
            "other key",
            sync(
                body("sync@pw.example", "Other-passw0rd-1!"),
                "hris-secret",
                now(),
            )
            .await,
            401,
        ),
        (
            "replayed",
            sync(good.clone(), "pwsync-secret", first).await,
            409,
        ),
        (
            "weak",
            sync(body("sync@pw.example", WEAK), "pwsync-secret", now()).await,
            422,
        ),
        (
            "unknown",
            sync(body("nobody@pw.example", PUSHED), "pwsync-secret", now()).await,
            404,
        ),
        (
            "protected",
            sync(body("prot@pw.example", PUSHED), "pwsync-secret", now()).await,
            409,
        ),
        (
            "source-owned",
            sync(body("src@pw.example", PUSHED), "pwsync-secret", now()).await,
            409,
        ),
    ];
    for (what, (status, text), want) in &refusals {
        assert_eq!(status, want, "{what}: {text}");
        for secret in [PUSHED, WEAK, "Tampered-passw0rd!"] {
            assert!(
                !text.contains(secret),
                "{what}: the answer holds a password: {text}"
            );
        }
    }
    assert!(refusals[4].1.1.contains("digit"), "{}", refusals[4].1.1);
    assert!(refusals[6].1.1.contains("protected"), "{}", refusals[6].1.1);
    assert!(refusals[7].1.1.contains("org.yaml"), "{}", refusals[7].1.1);
    assert_eq!(
        (writes(), std::fs::read(&fp).unwrap()),
        before,
        "a refused request wrote nothing"
    );

    // Another run holds the target's lock: the password waits for it and writes nothing
    // meanwhile, then is set.
    let key = scimctl::scim::shown_url(&url);
    let held = scimctl::session::lock::acquire(&locks, &key, LIMIT, |_| {})
        .await
        .unwrap();
    let patches = writes();
    let pending = tokio::spawn(sync(body("sync@pw.example", LATER), "pwsync-secret", now()));
    watch
        .wait_for("a password waiting for the lock", |l| {
            l.contains("waiting for another scimctl run writing to the target")
        })
        .await;
    assert_eq!(writes(), patches, "nothing written under the lock");
    drop(held);
    let (status, text) = tokio::time::timeout(LIMIT, pending).await.unwrap().unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(writes(), patches + 1);
    assert!(set_to("sync@pw.example", LATER));

    let (code, lines) = watch.terminate().await;
    assert_eq!(code, Some(0));
    let audit = std::fs::read_to_string(tmp.path().join(".scimctl/audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("sync@pw.example") && l.contains("password")),
        "{audit}"
    );
    let fingerprints = std::fs::read_to_string(&fp).unwrap();
    let output = lines.join("\n");
    for secret in [
        SOURCE_OLD,
        SOURCE_NEW,
        PUSHED,
        WEAK,
        LATER,
        "Tampered-passw0rd!",
        "pwsync-secret",
    ] {
        for (name, text) in [
            ("watch's output", &output),
            ("the audit log", &audit),
            ("the fingerprints", &fingerprints),
        ] {
            assert!(!text.contains(secret), "{name} holds a secret");
        }
    }
}

/// The prefix of the metrics exported only when outbound webhooks are configured.
const WEBHOOK: &str = "scimctl_webhook_";

/// Every metric name the Grafana dashboard (`deploy/grafana/scimctl-watch.json`) queries.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/scimctl-watch.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("scimctl_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    names
}

/// Whether the scrape `metrics` has a sample of `name`.
fn exported(metrics: &str, name: &str) -> bool {
    metrics.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|r| r.starts_with(['{', ' ']))
    })
}

/// Under watch, the rule that keeps an admin role holds back only the removal of that role:
/// the reconcile still writes the rest of the same user's change. `bot` (the account `GET /Me`
/// names) and `ana` lose Admin in YAML and get new titles and Agent. Both titles and both
/// Agent roles land; bot keeps Admin (the account scimctl runs as), so ana, no longer the
/// only other holder that matters, loses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_role_guards_hold_back_only_the_removal_under_watch() {
    let token = "watch-split-token";
    let running = crate::support::bearer_sandbox_as(token, Some("bot@w.example")).await;
    let url = running.base_url.clone();
    let client = bearer_client(&url, token, None);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    write(
        &dir,
        "scimctl.yaml",
        "ownership: {users: all}\ncollections: {userRoles: authoritative}\n\
         policy: {adminRoles: [Admin]}\nsafety: {maxDeletePercent: 100, maxDeleteCount: 100}\n",
    );
    let org = |bot: (&str, &str), ana: (&str, &str)| {
        format!(
            "roles:\n  - name: Admin\n  - name: Agent\nusers:\n  \
             - userName: bot@w.example\n    title: {}\n    roles: [{}]\n  \
             - userName: ana@w.example\n    title: {}\n    roles: [{}]\n",
            bot.0, bot.1, ana.0, ana.1
        )
    };
    write(
        &dir,
        "org.yaml",
        &org(("Robot", "Admin"), ("Agent", "Admin")),
    );
    let mut watch = Watch::start(
        tmp.path(),
        &dir,
        &url,
        token,
        &["--interval", "1h"],
        "scimctl=info",
    );
    let line = watch.reconciled("start").await;
    assert!(line.contains("blocked=0"), "{line}");

    write(
        &dir,
        "org.yaml",
        &org(("Chief Robot", "Agent"), ("Lead", "Agent")),
    );
    let line = watch.reconciled("files").await;
    assert!(line.contains("blocked=1"), "{line}");
    for (name, title, held) in [
        ("bot", "Chief Robot", &["Admin", "Agent"][..]),
        ("ana", "Lead", &["Agent"][..]),
    ] {
        let user = user_of(&client, name).await;
        assert_eq!(user.title.as_deref(), Some(title), "{name}");
        let mut roles: Vec<&str> = user.roles.iter().map(|r| r.value.as_str()).collect();
        roles.sort_unstable();
        assert_eq!(roles, held, "{name}");
    }
    let (code, _) = watch.terminate().await;
    assert_eq!(code, Some(0));
}
