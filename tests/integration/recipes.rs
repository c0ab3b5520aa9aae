//! The CI recipes in `examples/ci/` (issue 20, item 1), run for real: their shell steps, taken
//! from the recipe files themselves, against the example org on the embedded sandbox, with a
//! loopback stand-in for the GitHub and GitLab comment APIs. A recipe that cannot post its
//! sticky comment, mistakes "changes" for "failed", or applies nothing fails here.
//!
//! Only `run:` steps (GitHub) and `script:` lines (GitLab) are run; `uses:` actions and the
//! install step (`id: install`, `before_script`) are the CI system's business. Each `${{ }}`
//! expression a step's `env:` names is given a value here, and an unknown one fails the test,
//! so a new expression in a recipe is a decision, not an accident.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use serde_json::{Value, json};

use crate::support::copy_example;

const TOKEN: &str = "recipe-test-token";
const MARKER: &str = "<!-- scimctl-plan -->";

/// The comments the stand-in API holds, and what was asked of it.
#[derive(Default)]
struct Comments {
    bodies: BTreeMap<u64, String>,
    next: u64,
    creates: usize,
    edits: usize,
    unauthorised: usize,
}

type Shared = Arc<Mutex<Comments>>;

fn authorised(comments: &Shared, headers: &HeaderMap) -> bool {
    let bearer = format!("Bearer {TOKEN}");
    let ok = headers.get("authorization").is_some_and(|v| *v == *bearer)
        || headers.get("private-token").is_some_and(|v| *v == *TOKEN);
    if !ok {
        comments.lock().unwrap().unauthorised += 1;
    }
    ok
}

async fn list(State(c): State<Shared>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    if !authorised(&c, &headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "401"})));
    }
    let c = c.lock().unwrap();
    let all: Vec<Value> = c
        .bodies
        .iter()
        .map(|(id, body)| json!({"id": id, "body": body}))
        .collect();
    (StatusCode::OK, Json(Value::Array(all)))
}

async fn create(
    State(c): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if !authorised(&c, &headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "401"})));
    }
    let mut c = c.lock().unwrap();
    c.next += 1;
    let id = c.next;
    c.creates += 1;
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    c.bodies.insert(id, text);
    (StatusCode::CREATED, Json(json!({"id": id})))
}

fn edit(c: &Shared, headers: &HeaderMap, id: u64, body: &Value) -> (StatusCode, Json<Value>) {
    if !authorised(c, headers) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "401"})));
    }
    let mut c = c.lock().unwrap();
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    match c.bodies.get_mut(&id) {
        Some(slot) => {
            *slot = text;
            c.edits += 1;
            (StatusCode::OK, Json(json!({"id": id})))
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "404"}))),
    }
}

/// A loopback stand-in for the two comment APIs the recipes call: GitHub's issue comments
/// (`GET`/`POST .../issues/{n}/comments`, `PATCH .../issues/comments/{id}`) and GitLab's
/// merge-request notes (`GET`/`POST .../notes`, `PUT .../notes/{id}`).
struct FakeApi {
    url: String,
    comments: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    fn start() -> FakeApi {
        let comments = Shared::default();
        let app = Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{n}/comments",
                get(list).post(create),
            )
            .route(
                "/repos/{owner}/{repo}/issues/comments/{id}",
                axum::routing::patch(
                    |s: State<Shared>,
                     h: HeaderMap,
                     UrlPath((_, _, id)): UrlPath<(String, String, u64)>,
                     Json(b): Json<Value>| async move { edit(&s.0, &h, id, &b) },
                ),
            )
            .route(
                "/api/v4/projects/{project}/merge_requests/{iid}/notes",
                get(list).post(create),
            )
            .route(
                "/api/v4/projects/{project}/merge_requests/{iid}/notes/{id}",
                put(
                    |s: State<Shared>,
                     h: HeaderMap,
                     UrlPath((_, _, id)): UrlPath<(String, String, u64)>,
                     Json(b): Json<Value>| async move { edit(&s.0, &h, id, &b) },
                ),
            )
            .with_state(comments.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        FakeApi {
            url,
            comments,
            _runtime: runtime,
        }
    }

    /// The one scimctl comment's body, checking there is exactly one.
    fn sticky(&self) -> String {
        let c = self.comments.lock().unwrap();
        assert_eq!(c.bodies.len(), 1, "one sticky comment, not one per push");
        assert_eq!(c.unauthorised, 0, "every call carries the token");
        let body = c.bodies.values().next().unwrap().clone();
        assert!(body.starts_with(MARKER), "{body}");
        body
    }

    fn counts(&self) -> (usize, usize) {
        let c = self.comments.lock().unwrap();
        (c.creates, c.edits)
    }
}

fn recipe(name: &str) -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/ci")
        .join(name);
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A checked-out repository holding the example org, with `scimctl` (this build) on PATH.
struct Repo {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    path: String,
}

impl Repo {
    fn new() -> Repo {
        for tool in ["bash", "curl", "jq"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap();
            assert!(found.status.success(), "the recipe test needs `{tool}`");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        copy_example(&dir.join("desired-state"));
        let bin = Path::new(env!("CARGO_BIN_EXE_scimctl")).parent().unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        Repo {
            _tmp: tmp,
            dir,
            path,
        }
    }

    /// Runs `script` as the CI system would (bash, stop at the first failure).
    fn run(&self, script: &str, env: &BTreeMap<String, String>) -> Output {
        assert!(
            !script.contains("${{"),
            "expressions reach scripts through env, never pasted in:\n{script}"
        );
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", &self.path)
            .env("HOME", self.dir.parent().unwrap())
            .envs(env)
            .output()
            .unwrap()
    }
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A GitHub Actions job of the recipe, run step by step.
struct GithubJob<'a> {
    repo: &'a Repo,
    api: &'a FakeApi,
    steps: Vec<serde_yaml::Value>,
}

impl GithubJob<'_> {
    /// The value of one `${{ }}` expression; an unknown one fails the test.
    fn expression(expr: &str, outputs: &BTreeMap<String, String>) -> String {
        match expr {
            // The sandbox needs no credentials; installing is skipped.
            "secrets.GENESYS_CLIENT_ID"
            | "secrets.GENESYS_CLIENT_SECRET"
            | "vars.SCIMCTL_GIT"
            | "vars.SCIMCTL_VERSION" => String::new(),
            "secrets.GITHUB_TOKEN" => TOKEN.into(),
            "github.event.pull_request.number" => "7".into(),
            other => match other.strip_prefix("steps.plan.outputs.") {
                Some(key) => outputs.get(key).cloned().unwrap_or_default(),
                None => panic!("the recipe uses `${{{{ {other} }}}}`, unknown to this test"),
            },
        }
    }

    fn env(
        &self,
        step: &serde_yaml::Value,
        outputs: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("GITHUB_API_URL".to_owned(), self.api.url.clone()),
            (
                "GITHUB_REPOSITORY".to_owned(),
                "northwind/identity".to_owned(),
            ),
            ("GITHUB_ACTOR".to_owned(), "ana".to_owned()),
        ]);
        if let Some(map) = step["env"].as_mapping() {
            for (k, v) in map {
                let raw = v.as_str().unwrap();
                let expr = raw
                    .trim()
                    .strip_prefix("${{")
                    .and_then(|r| r.strip_suffix("}}"));
                let value = if let Some(expr) = expr {
                    Self::expression(expr.trim(), outputs)
                } else {
                    assert!(!raw.contains("${{"), "a partial expression: {raw}");
                    raw.to_owned()
                };
                env.insert(k.as_str().unwrap().to_owned(), value);
            }
        }
        env
    }

    /// Runs the job's shell steps; returns the step outputs and the first failure, if any.
    fn run(&self) -> (BTreeMap<String, String>, Option<Output>) {
        let output_file = self.repo.dir.parent().unwrap().join("github_output");
        let _ = std::fs::remove_file(&output_file);
        let mut outputs = BTreeMap::new();
        for step in &self.steps {
            let Some(script) = step["run"].as_str() else {
                continue;
            };
            if step["id"].as_str() == Some("install") {
                continue;
            }
            let mut env = self.env(step, &outputs);
            env.insert("GITHUB_OUTPUT".into(), output_file.display().to_string());
            let output = self.repo.run(script, &env);
            if let Ok(text) = std::fs::read_to_string(&output_file) {
                for line in text.lines() {
                    if let Some((k, v)) = line.split_once('=') {
                        outputs.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
            if !output.status.success() {
                return (outputs, Some(output));
            }
        }
        (outputs, None)
    }
}

fn github_job<'a>(repo: &'a Repo, api: &'a FakeApi, name: &str) -> GithubJob<'a> {
    let recipe = recipe("github-actions.yml");
    let steps = recipe["jobs"][name]["steps"].as_sequence().unwrap().clone();
    GithubJob { repo, api, steps }
}

fn audit_lines(repo: &Repo) -> usize {
    std::fs::read_to_string(repo.dir.join(".scimctl/audit.jsonl"))
        .unwrap()
        .lines()
        .count()
}

/// Pull request → plan posted as one comment (updated, not repeated, on the next push) →
/// merge → apply with an audit log → the next pull request's plan says "no changes"; a plan
/// that fails says so in the comment and fails the job.
#[test]
fn the_github_actions_recipe_plans_comments_and_applies() {
    let repo = Repo::new();
    let api = FakeApi::start();
    let plan = github_job(&repo, &api, "plan");

    let (outputs, failed) = plan.run();
    assert!(failed.is_none(), "{}", show(&failed.unwrap()));
    assert_eq!(outputs["exitcode"], "2", "changes are not a failure");
    assert!(
        repo.dir.join("plan.json").is_file(),
        "the saved plan for the artifact"
    );
    let body = api.sticky();
    assert!(body.contains("carlos.ruiz@northwind.example"), "{body}");
    assert!(body.contains("to create"), "{body}");

    let (outputs, failed) = plan.run();
    assert!(failed.is_none(), "{}", show(&failed.unwrap()));
    assert_eq!(outputs["exitcode"], "2");
    api.sticky();
    assert_eq!(api.counts(), (1, 1), "the second push edits the comment");

    let (_, failed) = github_job(&repo, &api, "apply").run();
    assert!(failed.is_none(), "{}", show(&failed.unwrap()));
    assert!(audit_lines(&repo) > 10, "the audit log to upload");
    let audit = std::fs::read_to_string(repo.dir.join(".scimctl/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"github:ana\""),
        "the audit log names the merge's actor"
    );

    let (outputs, failed) = plan.run();
    assert!(failed.is_none(), "{}", show(&failed.unwrap()));
    assert_eq!(outputs["exitcode"], "0", "applied: nothing left to do");
    assert!(api.sticky().contains("No changes"), "{}", api.sticky());

    std::fs::write(
        repo.dir.join("desired-state/broken.yaml"),
        "users: [{userName: }]\n",
    )
    .unwrap();
    let (outputs, failed) = plan.run();
    let failed = failed.expect("a failed plan fails the job");
    assert_eq!(failed.status.code(), Some(3), "{}", show(&failed));
    assert_eq!(outputs["exitcode"], "3");
    let body = api.sticky();
    assert!(body.contains("scimctl plan failed (exit 3)"), "{body}");
    assert!(
        body.contains("broken.yaml:1:"),
        "the error is in the comment: {body}"
    );
    assert_eq!(api.counts(), (1, 3));
}

/// The GitLab recipe's job scripts, run as the runner would (one bash, stop at a failure).
fn gitlab_script(job: &str) -> String {
    let recipe = recipe("gitlab-ci.yml");
    let lines = recipe[job]["script"].as_sequence().unwrap();
    lines
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The same life cycle through the GitLab recipe: one merge-request note, edited in place;
/// apply in its resource group with the audit log; a failed plan fails the job.
#[test]
fn the_gitlab_recipe_plans_notes_and_applies() {
    let repo = Repo::new();
    let api = FakeApi::start();
    let env = BTreeMap::from([
        ("CI_API_V4_URL".to_owned(), format!("{}/api/v4", api.url)),
        ("CI_PROJECT_ID".to_owned(), "42".to_owned()),
        ("CI_MERGE_REQUEST_IID".to_owned(), "7".to_owned()),
        ("SCIMCTL_NOTE_TOKEN".to_owned(), TOKEN.to_owned()),
        ("GITLAB_USER_LOGIN".to_owned(), "ana".to_owned()),
    ]);
    let plan = gitlab_script("scimctl-plan");

    let out = repo.run(&plan, &env);
    assert!(out.status.success(), "{}", show(&out));
    assert!(repo.dir.join("plan.json").is_file());
    assert!(api.sticky().contains("carlos.ruiz@northwind.example"));
    let out = repo.run(&plan, &env);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(api.counts(), (1, 1), "the second push edits the note");

    let out = repo.run(&gitlab_script("scimctl-apply"), &env);
    assert!(out.status.success(), "{}", show(&out));
    let audit = std::fs::read_to_string(repo.dir.join(".scimctl/audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"gitlab:ana\""),
        "the audit log names the pipeline's user"
    );

    let out = repo.run(&plan, &env);
    assert!(out.status.success(), "{}", show(&out));
    assert!(api.sticky().contains("No changes"), "{}", api.sticky());

    std::fs::write(
        repo.dir.join("desired-state/broken.yaml"),
        "users: [{userName: }]\n",
    )
    .unwrap();
    let out = repo.run(&plan, &env);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(api.sticky().contains("scimctl plan failed (exit 3)"));
    assert_eq!(api.counts(), (1, 3));
}
