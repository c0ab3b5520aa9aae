//! Password rotation (issue 19) end to end: the real binary against the embedded sandbox
//! (which accepts password changes) and an in-process one that refuses them, and the same
//! rotation story against scim2-server (the peer; run by `.ci/run`).
//!
//! Every output of every run (stdout and stderr at `-vvv`, plan JSON, saved plan, audit log,
//! fingerprint file) is scanned for the passwords.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{run_bounded_with, text};

const OLD: &str = "Orig1nal-Passw0rd!x";
const NEW: &str = "R0tated-Passw0rd!yz";

/// A desired state of two users: `rot@x.example` with its password from `PW_ROT`, and
/// `gen@x.example` with a generated one. `config`: scimctl.yaml's text.
fn desired(root: &Path, config: &str) -> std::path::PathBuf {
    let dir = root.join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("scimctl.yaml"), config).unwrap();
    std::fs::write(
        dir.join("users.yaml"),
        "users:\n  - userName: rot@x.example\n    displayName: Rot Ation\n    password: {fromEnv: PW_ROT}\n  - userName: gen@x.example\n    displayName: Gen Erated\n    password: generate\n",
    )
    .unwrap();
    dir
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

/// `scimctl -vvv args...` in `cwd` with `PW_ROT` set to `password` (unset when `None`).
fn run(cwd: &Path, args: &[&str], password: Option<&str>, extra: &[(&str, &str)]) -> Run {
    let mut all = vec!["-vvv"];
    all.extend_from_slice(args);
    let mut env: Vec<(&str, &str)> = extra.to_vec();
    if let Some(p) = password {
        env.push(("PW_ROT", p));
    }
    let output = run_bounded_with(cwd, &all, &env, Duration::from_secs(120));
    let (out, err) = text(&output);
    for secret in [OLD, NEW] {
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "a password leaked at -vvv from {args:?}:\n{out}\n{err}"
        );
    }
    Run {
        code: output.status.code().unwrap_or(-1),
        out,
        err,
    }
}

fn no_secret_in(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    for secret in [OLD, NEW] {
        assert!(
            !text.contains(secret),
            "{} holds a password",
            path.display()
        );
    }
}

/// The `password` diff rows of a JSON plan, by user.
fn rotations(plan: &Value) -> Vec<String> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["diff"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["attribute"] == "password" && d["note"] == "changed at source")
        })
        .map(|c| c["key"].as_str().unwrap().to_owned())
        .collect()
}

fn plan_json(
    cwd: &Path,
    dir: &str,
    password: Option<&str>,
    extra: &[(&str, &str)],
    flags: &[&str],
) -> (i32, Value) {
    let mut args = vec!["plan", dir, "--format", "json", "--detailed-exitcode"];
    args.extend_from_slice(flags);
    let r = run(cwd, &args, password, extra);
    let json = serde_json::from_str(&r.out)
        .unwrap_or_else(|e| panic!("plan did not print JSON ({e}): {}\n{}", r.out, r.err));
    (r.code, json)
}

/// The rotation story on one target (`target`: `--target URL` and its token, or the
/// embedded sandbox): create records a fingerprint; an unchanged source plans nothing; a
/// changed one plans one value-less row (text, Markdown, JSON) that apply carries out, fresh
/// and from a saved plan; afterwards nothing is planned; generated passwords never rotate.
#[allow(clippy::too_many_lines)] // one story, top to bottom
fn rotation_story(cwd: &Path, dir: &Path, target: &[&str], env: &[(&str, &str)]) {
    let d = dir.to_str().unwrap();
    let fp = cwd.join(".scimctl/password-fingerprints.json");
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(target).map(|s| (*s).to_owned()).collect()
    };
    let apply = |password: &str, extra: &[&str]| {
        let mut a = vec!["apply", d, "--yes"];
        a.extend_from_slice(extra);
        let a = with(&a);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run(cwd, &a, Some(password), env)
    };
    let r = apply(OLD, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(fp.exists(), "the create recorded no fingerprint");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&fp).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "fingerprint file mode");
    }
    no_secret_in(&fp);
    let stored: Value = serde_json::from_slice(&std::fs::read(&fp).unwrap()).unwrap();
    let users: Vec<String> = stored["targets"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|t| t.as_object().unwrap().keys().cloned())
        .collect();
    assert_eq!(
        users,
        ["rot@x.example"],
        "only the fromEnv user has a fingerprint"
    );

    let flags = with(&[]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (code, plan) = plan_json(cwd, d, Some(OLD), env, &flags);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");

    let (code, plan) = plan_json(cwd, d, Some(NEW), env, &flags);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(rotations(&plan), ["rot@x.example"], "{plan}");
    assert_eq!(plan["changes"].as_array().unwrap().len(), 1, "{plan}");
    let text_args = with(&["plan", d]);
    let text_args: Vec<&str> = text_args.iter().map(String::as_str).collect();
    let r = run(cwd, &text_args, Some(NEW), env);
    assert!(
        r.out.contains("~ password (changed at source)"),
        "{}",
        r.out
    );
    let md_args = with(&["plan", d, "--format", "markdown"]);
    let md_args: Vec<&str> = md_args.iter().map(String::as_str).collect();
    let r = run(cwd, &md_args, Some(NEW), env);
    assert!(
        r.out.contains("~ password (changed at source)"),
        "{}",
        r.out
    );

    // Saved plan: carries no password; apply --plan reads the source again.
    let saved = cwd.join("rotate.json");
    let save_args = with(&["plan", d, "--out", saved.to_str().unwrap()]);
    let save_args: Vec<&str> = save_args.iter().map(String::as_str).collect();
    assert_eq!(run(cwd, &save_args, Some(NEW), env).code, 0);
    no_secret_in(&saved);
    let before = std::fs::read(&fp).unwrap();
    let r = apply(NEW, &["--plan", saved.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("password set"), "{}", r.out);
    assert_ne!(
        std::fs::read(&fp).unwrap(),
        before,
        "the new fingerprint was not recorded"
    );
    no_secret_in(&fp);
    no_secret_in(&cwd.join(".scimctl/audit.jsonl"));

    let (code, plan) = plan_json(cwd, d, Some(NEW), env, &flags);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
    // And back, through a fresh apply this time.
    let r = apply(OLD, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("password set"), "{}", r.out);
    let (code, plan) = plan_json(cwd, d, Some(OLD), env, &flags);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
    no_secret_in(&cwd.join(".scimctl/audit.jsonl"));
}

/// The story against the embedded sandbox (which says `changePassword.supported: true`).
#[test]
fn changed_source_rotates_on_the_sandbox() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    rotation_story(cwd.path(), &dir, &[], &[]);
}

/// The story against the Genesys Cloud simulator: OAuth, lower-case paths, and a
/// `ServiceProviderConfig` that says `changePassword.supported: false` (the live value is
/// unconfirmed), while Genesys documents setting `password` by PATCH with
/// `directory:user:setPassword`; the simulator's request log holds no password.
#[test]
fn changed_source_rotates_on_the_genesys_simulator() {
    let cwd = tempfile::tempdir().unwrap();
    // No read lag: the story plans right after each apply, and waiting out a lag would
    // mean sleeping (the lag's own handling is tested in genesys.rs).
    let server = crate::genesys::serve_with(cwd.path(), &["--read-lag-ms", "0"]);
    let target = format!(
        "ownership: {{users: listed}}\ntarget:\n  kind: genesys\n  apiUrl: {0}\n  loginUrl: {0}\n  clientId: {1}\n  clientSecret: {{fromEnv: GENESYS_TEST_SECRET}}\n  requestsPerMinute: 6000\n",
        server.url,
        crate::genesys::CLIENT_ID
    );
    let dir = desired(cwd.path(), &target);
    rotation_story(
        cwd.path(),
        &dir,
        &[],
        &[("GENESYS_TEST_SECRET", crate::genesys::SECRET)],
    );
    let log = cwd.path().join("requests.log");
    assert!(
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("PATCH")),
        "the rotation is in the simulator's request log"
    );
    no_secret_in(&log);
}

/// The story against scim2-server, whose `changePassword` is supported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_source_rotates_on_scim2_server() {
    let Some((url, token)) = crate::peer::peer() else {
        return;
    };
    let cwd = tempfile::tempdir().unwrap();
    // Names unique to this run: the peer may hold other tests' data.
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    let users = std::fs::read_to_string(dir.join("users.yaml"))
        .unwrap()
        .replace("@x.example", "@pwsync-peer.example");
    std::fs::write(dir.join("users.yaml"), users).unwrap();
    let cwd2 = cwd.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        rotation_story_renamed(&cwd2, &dir, &url, &token);
    })
    .await
    .unwrap();
}

fn rotation_story_renamed(cwd: &Path, dir: &Path, url: &str, token: &str) {
    // The story's assertions name `rot@x.example`; the peer run checks the same steps.
    let d = dir.to_str().unwrap();
    let env = [("SCIMCTL_TOKEN", token)];
    let target = ["--target", url];
    let mut a = vec!["apply", d, "--yes"];
    a.extend_from_slice(&target);
    assert_eq!(run(cwd, &a, Some(OLD), &env).code, 0);
    let (code, plan) = plan_json(cwd, d, Some(OLD), &env, &target);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
    let (code, plan) = plan_json(cwd, d, Some(NEW), &env, &target);
    assert_eq!(code, 2, "{plan}");
    assert_eq!(rotations(&plan), ["rot@pwsync-peer.example"], "{plan}");
    let r = run(cwd, &a, Some(NEW), &env);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.out.contains("password set"), "{}", r.out);
    let (code, plan) = plan_json(cwd, d, Some(NEW), &env, &target);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
    no_secret_in(&cwd.join(".scimctl/audit.jsonl"));
    no_secret_in(&cwd.join(".scimctl/password-fingerprints.json"));
}

/// A plan that creates nobody reads no password source (issue 20): the variable may be
/// unset; a plan that creates the user names the variable (never a value) and fails.
#[test]
fn plan_reads_sources_only_for_users_it_needs() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    let d = dir.to_str().unwrap();
    let r = run(cwd.path(), &["plan", d], None, &[]);
    assert_ne!(
        r.code, 0,
        "a create without its password planned:\n{}",
        r.out
    );
    assert!(
        r.err.contains("PW_ROT") && r.err.contains("rot@x.example"),
        "{}",
        r.err
    );
    let r = run(cwd.path(), &["apply", d, "--yes"], Some(OLD), &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    let r = run(cwd.path(), &["plan", d, "--detailed-exitcode"], None, &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(
        r.err.contains("PW_ROT"),
        "the unchecked source is not reported: {}",
        r.err
    );
}

/// With no fingerprint nothing is planned, even for a changed source; `--adopt-passwords`
/// records the current one as set, after which a change is planned.
#[test]
fn adoption_records_current_sources() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    let d = dir.to_str().unwrap();
    let elsewhere = cwd.path().join("other-fingerprints.json");
    let other = [("SCIMCTL_PASSWORD_FINGERPRINTS", elsewhere.to_str().unwrap())];
    let r = run(cwd.path(), &["apply", d, "--yes"], Some(OLD), &other);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(elsewhere.exists(), "the configured path was not used");
    let fp = cwd.path().join(".scimctl/password-fingerprints.json");
    assert!(!fp.exists());
    let (code, plan) = plan_json(cwd.path(), d, Some(NEW), &[], &[]);
    assert_eq!(
        (code, rotations(&plan)),
        (0, vec![]),
        "no fingerprint, no rotation: {plan}"
    );
    let (code, plan) = plan_json(cwd.path(), d, Some(OLD), &[], &["--adopt-passwords"]);
    assert_eq!(code, 0, "{plan}");
    assert!(
        plan.to_string()
            .contains("1 password(s) with no fingerprint would be adopted"),
        "{plan}"
    );
    assert!(!fp.exists(), "plan --adopt-passwords wrote");
    let r = run(
        cwd.path(),
        &["apply", d, "--yes", "--adopt-passwords"],
        Some(OLD),
        &[],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    assert!(r.err.contains("1 password(s) adopted"), "{}", r.err);
    no_secret_in(&fp);
    let (code, plan) = plan_json(cwd.path(), d, Some(OLD), &[], &[]);
    assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
    let (code, plan) = plan_json(cwd.path(), d, Some(NEW), &[], &[]);
    assert_eq!(
        (code, rotations(&plan)),
        (2, vec!["rot@x.example".to_owned()]),
        "{plan}"
    );
}

/// A server whose `ServiceProviderConfig` says `changePassword.supported: false`: the change
/// is a plan warning, never a row, and apply sends no password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_refused_where_password_change_is_not_supported() {
    use scimctl::sandbox::{self, SandboxAuth, SandboxConfig};
    let token = "no-change-password";
    let running = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::Bearer(token.into()),
            change_password: false,
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = running.base_url.clone();
    let cwd = tempfile::tempdir().unwrap();
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    let cwd2 = cwd.path().to_path_buf();
    let (warned, patches, plan_text) = tokio::task::spawn_blocking(move || {
        let d = dir.to_str().unwrap();
        let env = [("SCIMCTL_TOKEN", token)];
        let r = run(
            &cwd2,
            &["apply", d, "--yes", "--target", &url],
            Some(OLD),
            &env,
        );
        assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
        let (code, plan) = plan_json(&cwd2, d, Some(NEW), &env, &["--target", &url]);
        assert_eq!((code, rotations(&plan)), (0, vec![]), "{plan}");
        let warned = plan["warnings"].as_array().unwrap().iter().any(|w| {
            w["message"]
                .as_str()
                .unwrap()
                .contains("changePassword.supported is false")
        });
        let r = run(
            &cwd2,
            &["apply", d, "--yes", "--target", &url],
            Some(NEW),
            &env,
        );
        assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
        assert!(!r.out.contains("password set"), "{}", r.out);
        (warned, r.out.contains("No changes."), plan.to_string())
    })
    .await
    .unwrap();
    assert!(warned, "no warning about the refused rotation: {plan_text}");
    assert!(patches, "apply did something");
    running.shutdown().await.unwrap();
}

/// `validate` checks every resolved password source against `policy.password` (defaults,
/// and the limits scimctl.yaml sets) and reports the rules broken at the source's
/// `path:line:col`, never the value.
#[test]
fn validate_checks_sources_against_the_password_policy() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = desired(cwd.path(), "ownership: {users: listed}\n");
    let d = dir.to_str().unwrap();
    let weak = "weakpassword";
    let output = run_bounded_with(
        cwd.path(),
        &["validate", d],
        &[("PW_ROT", weak)],
        Duration::from_secs(60),
    );
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(!all.contains(weak), "the value was shown: {all}");
    assert!(
        all.contains("users.yaml:4:15: the password in environment variable `PW_ROT` breaks policy.password: upper, digit, symbol"),
        "{all}"
    );
    let r = run(cwd.path(), &["validate", d], Some(OLD), &[]);
    assert_eq!(r.code, 0, "{}\n{}", r.out, r.err);
    std::fs::write(
        dir.join("scimctl.yaml"),
        "ownership: {users: listed}\npolicy:\n  password: {minLength: 24, symbol: 3}\n",
    )
    .unwrap();
    let r = run(cwd.path(), &["validate", d], Some(OLD), &[]);
    assert_eq!(r.code, 3, "{}\n{}", r.out, r.err);
    assert!(
        format!("{}{}", r.out, r.err).contains("breaks policy.password: minLength, symbol"),
        "{}\n{}",
        r.out,
        r.err
    );
}
