//! Running the built binary with a time limit, for the integration tests.

pub(crate) mod watch;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A command for the `scimctl` binary built for these tests.
pub(crate) fn scimctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scimctl"))
}

/// Runs `scimctl args...` in `cwd`, killing it and failing the test if it outlives `limit`.
/// Waiting happens on a channel with a deadline, so nothing sleeps.
pub(crate) fn run_bounded(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    run_bounded_with(cwd, args, &[], limit)
}

/// [`run_bounded`] with extra environment variables.
pub(crate) fn run_bounded_with(
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    limit: Duration,
) -> Output {
    let mut command = scimctl();
    command
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd);
    run_command_bounded(command, args, limit)
}

/// Runs a prepared `scimctl` command (arguments, environment and directory set; `args` only
/// names it in the failure) as [`run_bounded`] does.
pub(crate) fn run_command_bounded(mut command: Command, args: &[&str], limit: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn scimctl");
    let pid = i32::try_from(child.id()).expect("pid fits in i32");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(output) = rx.recv_timeout(limit) {
        output.expect("wait for scimctl")
    } else {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        panic!("scimctl {args:?} did not finish within {limit:?}");
    }
}

/// The break-glass password of [`copy_example_with_env_password`]'s copy, read from
/// `SCIMCTL_DEMO_BREAKGLASS_PASSWORD`. (The example org itself generates every password, so
/// it needs no variable; tests that pass this one to a plain copy pass something unused.)
pub(crate) const DEMO_PASSWORD: &str = "demo-only-Passw0rd!";

/// Runs `scimctl args...` in `cwd` with the demo password and `token` as `SCIMCTL_TOKEN`,
/// within two minutes; returns the exit code, stdout and stderr.
pub(crate) fn scimctl_with_token(cwd: &Path, args: &[&str], token: &str) -> (i32, String, String) {
    let output = run_bounded_with(
        cwd,
        args,
        &[
            ("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD),
            ("SCIMCTL_TOKEN", token),
        ],
        Duration::from_secs(120),
    );
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// Standard output and error of a finished run, as text.
pub(crate) fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A client for `url` with a static bearer token, paging `page_size` at a time when given.
pub(crate) fn bearer_client(
    url: &str,
    token: &str,
    page_size: Option<usize>,
) -> scimctl::scim::ScimClient {
    use scimctl::scim::{ClientConfig, Credentials, ScimClient, Secret};
    let mut config = ClientConfig::new(url);
    config.credentials = Credentials::Bearer(Secret::new(token));
    config.page_size = page_size;
    ScimClient::new(config).unwrap()
}

/// An in-memory sandbox on a free loopback port that wants `token` as a bearer token.
pub(crate) async fn bearer_sandbox(token: &str) -> scimctl::sandbox::RunningSandbox {
    bearer_sandbox_as(token, None).await
}

/// [`bearer_sandbox`] whose `GET /Me` names `me` as the token's user.
pub(crate) async fn bearer_sandbox_as(
    token: &str,
    me: Option<&str>,
) -> scimctl::sandbox::RunningSandbox {
    use scimctl::sandbox::{self, SandboxAuth, SandboxConfig};
    sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::Bearer(token.into()),
            me: me.map(str::to_owned),
            ..SandboxConfig::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap()
}

/// Copies the example org (`desired-state/`) into `to`, so a run never writes into the
/// repository.
pub(crate) fn copy_example(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                copy(&path, &to.join(entry.file_name()));
            } else {
                std::fs::copy(&path, to.join(entry.file_name())).unwrap();
            }
        }
    }
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("desired-state"),
        to,
    );
}

/// [`copy_example`], with the break-glass user's password read from the environment
/// (`{fromEnv: SCIMCTL_DEMO_BREAKGLASS_PASSWORD}`) instead of generated: the form docs/desired-state.md
/// documents for a real org, for tests of what a `fromEnv` source does.
pub(crate) fn copy_example_with_env_password(to: &Path) {
    copy_example(to);
    let file = to.join("users/admins.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let at = text
        .find("userName: breakglass.admin@northwind.example")
        .expect("the example has its break-glass user");
    let (head, tail) = text.split_at(at);
    let line = "password: generate\n";
    assert!(
        tail.contains(line),
        "the break-glass user generates its password"
    );
    let tail = tail.replacen(
        line,
        "password: {fromEnv: SCIMCTL_DEMO_BREAKGLASS_PASSWORD}\n",
        1,
    );
    std::fs::write(&file, format!("{head}{tail}")).unwrap();
}

/// The first stdout line of a spawned `scimctl sandbox serve` (or any server that announces
/// itself so): the reader, kept so the pipe stays open, and the `http://` URL in the line.
pub(crate) fn served_url(
    child: &mut std::process::Child,
) -> (std::io::BufReader<std::process::ChildStdout>, String) {
    use std::io::BufRead as _;
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the URL line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (stdout, url)
}

/// Re-seals `doc` after `edit`, as anyone who can write the file can.
pub(crate) fn forge(
    doc: &scimctl::plan::saved::PlanDocument,
    edit: impl FnOnce(&mut scimctl::plan::saved::PlanDocument),
) -> String {
    let mut forged = doc.clone();
    edit(&mut forged);
    let target = forged.target.clone().unwrap();
    let live = forged.live_hash.clone().unwrap();
    let forged = forged.with_target(&target).with_live_hash(live);
    serde_json::to_string_pretty(&forged).unwrap()
}
