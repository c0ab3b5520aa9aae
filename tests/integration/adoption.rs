//! Newcomer friction (issue 20, item 7): what a new user meets first, driven through the real
//! binary: a closed stdout, a mistyped `--target`, where `plan` keeps the sandbox, where
//! warnings go, how long an unreachable target takes.

use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{DEMO_PASSWORD, copy_example, run_bounded_with, scimctl, text};

/// `plan --format json | head`, `explain ... --format json | head -c 400`: stdout is closed
/// before scimctl writes a byte (the read end of the pipe is gone before it starts), so
/// every write fails with EPIPE. The program ends quietly with 0, as ripgrep does, every run.
#[test]
fn closed_stdout_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    copy_example(&dir);
    let dir = dir.to_str().unwrap();
    let runs: [&[&str]; 4] = [
        &["plan", dir, "--format", "json"],
        &["plan", dir],
        &["explain", "group", "Support", dir, "--format", "json"],
        &["validate", dir, "--format", "json"],
    ];
    for args in runs {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = scimctl()
            .args(args)
            .current_dir(tmp.path())
            .env("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe") && !stderr.contains("error"),
            "{args:?}: {stderr}"
        );
    }
}

/// A malformed `--target` (or `SCIMCTL_TARGET`) is a configuration mistake: exit 3, as the
/// same URL in scimctl.yaml, before anything is contacted.
#[test]
fn malformed_target_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    copy_example(&dir);
    let dir = dir.to_str().unwrap();
    for url in [
        "not a url",
        "ftp://idp.example.com/scim",
        "http://idp.example.com/scim",
    ] {
        let output = run_bounded_with(
            tmp.path(),
            &["plan", dir, "--target", url],
            &[("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD)],
            Duration::from_secs(30),
        );
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(3), "{url}: {stderr}");
        assert!(stderr.contains("--target"), "{url}: {stderr}");
        let output = run_bounded_with(
            tmp.path(),
            &["doctor", dir],
            &[
                ("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD),
                ("SCIMCTL_TARGET", url),
            ],
            Duration::from_secs(30),
        );
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(3), "{url}: {stderr}");
    }
}

/// The environment variables the sources read: `var("X")`, `var_os("X")`, clap's
/// `env = "X"`, `from_env("X")`, a `..._ENV: &str = "X"` constant and the actor lookup's
/// `set("X")`; test code (files named `tests.rs`, anything after `#[cfg(test)]`) left out.
fn env_vars_read(dir: &Path, found: &mut std::collections::BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                env_vars_read(&path, found);
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
            continue;
        }
        let source = fs::read_to_string(&path).unwrap();
        let code = source.split("#[cfg(test)]").next().unwrap();
        for opener in [
            "var(\"",
            "var_os(\"",
            "env = \"",
            "from_env(\"",
            "_ENV: &str = \"",
            "set(\"",
        ] {
            for (at, _) in code.match_indices(opener) {
                let rest = &code[at + opener.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                if name.chars().all(|c| c.is_ascii_uppercase() || c == '_') && !name.is_empty() {
                    found.insert(name.to_owned());
                }
            }
        }
    }
}

/// `scimctl --help` names every environment variable the program reads.
#[test]
fn help_lists_every_environment_variable() {
    let mut read = std::collections::BTreeSet::new();
    env_vars_read(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut read,
    );
    for known in [
        "SCIMCTL_ACTOR",
        "SCIMCTL_OVERRIDES",
        "NO_COLOR",
        "SCIMCTL_LOG",
        "SCIMCTL_TOKEN",
    ] {
        assert!(read.contains(known), "the scan missed {known}: {read:?}");
    }
    let output = scimctl().arg("--help").output().unwrap();
    let (help, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !help.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "--help does not mention {missing:?}:\n{help}"
    );
}

/// `schema --check` calls a file that is not there "missing", and one that differs "stale".
#[test]
fn schema_check_names_missing_files_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("schemas");
    let out = out.to_str().unwrap();
    let written = scimctl().args(["schema", "--out", out]).output().unwrap();
    assert_eq!(written.status.code(), Some(0));
    let (listing, _) = text(&written);
    let files: Vec<&str> = listing.lines().collect();
    assert!(files.len() >= 2, "{listing}");
    fs::remove_file(files[0]).unwrap();
    fs::write(files[1], "{}").unwrap();
    let checked = scimctl()
        .args(["schema", "--check", "--out", out])
        .output()
        .unwrap();
    let (_, stderr) = text(&checked);
    assert_eq!(checked.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("missing schema files: {}", files[0])),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("stale schema files: {}", files[1])),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&format!("stale schema files: {}", files[0])),
        "{stderr}"
    );
}

/// `sandbox serve` on a busy port: one `sandbox:` prefix, the address, and the reason.
#[test]
fn sandbox_serve_on_a_busy_port_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let state = tmp.path().join("state.json");
    let output = run_bounded_with(
        tmp.path(),
        &[
            "sandbox",
            "serve",
            "--listen",
            &addr,
            "--state",
            state.to_str().unwrap(),
        ],
        &[],
        Duration::from_secs(30),
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.matches("sandbox:").count(), 1, "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("address already in use"),
        "{stderr}"
    );
}

/// `doctor --help` describes doctor's own output formats, not explain's.
#[test]
fn doctor_help_is_its_own() {
    let output = scimctl().args(["doctor", "--help"]).output().unwrap();
    let (help, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(!help.contains("indented chains"), "{help}");
    assert!(help.contains("checklist"), "{help}");
}

/// Completes the words of `line` with the script `scimctl completions bash` prints, run in a
/// real bash: the candidates `COMPREPLY` holds for the last word.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _scimctl scimctl '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let output = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash is installed");
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    stdout.split_whitespace().map(str::to_owned).collect()
}

/// `scimctl completions bash`: `scimctl pl<TAB>` completes to `plan`, and a flag of `plan`
/// (`--detailed-exitcode`) is offered after `scimctl plan --det`.
#[test]
fn bash_completes_commands_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let output = scimctl().args(["completions", "bash"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let script = tmp.path().join("scimctl.bash");
    fs::write(&script, &output.stdout).unwrap();
    assert_eq!(bash_complete(&script, &["scimctl", "pl"]), ["plan"]);
    assert_eq!(
        bash_complete(&script, &["scimctl", "plan", "--det"]),
        ["--detailed-exitcode"]
    );
    for shell in ["zsh", "fish", "powershell"] {
        let output = scimctl().args(["completions", shell]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{shell}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("detailed-exitcode"),
            "{shell}"
        );
    }
}

/// `scimctl man` prints a roff man page naming the commands.
#[test]
fn man_page_is_roff() {
    let output = scimctl().arg("man").output().unwrap();
    let (page, _) = text(&output);
    assert_eq!(output.status.code(), Some(0));
    assert!(
        page.starts_with(".ie") || page.contains(".TH scimctl"),
        "{page}"
    );
    for command in ["validate", "plan", "apply", "watch", "completions"] {
        assert!(page.contains(command), "{command}: {page}");
    }
}

/// `cd elsewhere && scimctl plan /path/desired-state` uses the sandbox beside the directory
/// (`/path/.scimctl/sandbox.json`), the one `apply` from the directory's parent wrote, not an
/// empty one in the current directory; and the state file, which holds personal data, is
/// readable by its owner only.
#[test]
fn the_sandbox_lives_beside_the_desired_state() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_example(&repo.join("desired-state"));
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let env = [("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD)];
    let limit = Duration::from_secs(60);

    let applied = run_bounded_with(&repo, &["apply", "desired-state", "--yes"], &env, limit);
    assert!(applied.status.success(), "{:?}", text(&applied));
    let state = repo.join(".scimctl/sandbox.json");
    let mode = fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    let dir = repo.join("desired-state");
    let args = ["plan", dir.to_str().unwrap(), "--detailed-exitcode"];
    let planned = run_bounded_with(&elsewhere, &args, &env, limit);
    let (out, err) = text(&planned);
    assert_eq!(planned.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("No changes"), "{out}");
    assert!(
        !elsewhere.join(".scimctl").exists(),
        "no sandbox made where plan ran"
    );
}

/// `watch` says what each reconcile did at its default level (no `-v`), and
/// `--log-format json` writes each log line as one JSON object for log pipelines.
#[test]
fn watch_logs_its_reconciles_as_json_by_default() {
    use std::io::BufRead as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    copy_example(&dir);
    let mut child = scimctl()
        .args(["watch", dir.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .current_dir(tmp.path())
        .env("SCIMCTL_DEMO_BREAKGLASS_PASSWORD", DEMO_PASSWORD)
        .env_remove("SCIMCTL_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut reconciled = None;
    let mut all = Vec::new();
    while let Ok(line) = seen.recv_timeout(Duration::from_secs(60)) {
        all.push(line.clone());
        let event: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        if event["fields"]["message"] == "reconciled" {
            reconciled = Some(event);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let event = reconciled.unwrap_or_else(|| panic!("no reconcile logged:\n{}", all.join("\n")));
    assert_eq!(event["level"], "INFO", "{event}");
    assert_eq!(
        event["fields"]["applied"], 48,
        "the example org, created: {event}"
    );
}

/// Issue 20, item 6: the example org works outside cargo. The built binary, run as an
/// installed one would be (from a copy of the repository's `desired-state/`, with an
/// environment holding only PATH and HOME, so no password variable and nothing cargo sets):
/// `validate` exits 0 without a warning; the quickstart's `plan` and `apply --yes` against a
/// `scimctl sandbox serve` create the org, and the plan after it has no changes; the same
/// holds for the embedded sandbox the README's tour uses.
#[test]
fn the_example_org_works_with_a_clean_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_example(&repo.join("desired-state"));
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let clean = |args: &[&str]| {
        let mut command = scimctl();
        command
            .args(args)
            .current_dir(&repo)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", &home);
        let output = crate::support::run_command_bounded(command, args, Duration::from_secs(60));
        let (out, err) = text(&output);
        (output.status.code(), out, err)
    };

    let (code, out, err) = clean(&["validate", "desired-state"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.starts_with("desired-state: valid: "), "{out}");
    assert_eq!(err, "", "no warning: every password source resolves");

    let state = tmp.path().join("served.json");
    let mut server = scimctl()
        .args(["sandbox", "serve", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (_stdout, url) = crate::support::served_url(&mut server);
    let target = ["--target", url.as_str()];
    let with = |args: &[&'static str]| [args, &target[..]].concat();

    let (code, out, err) = clean(&with(&["plan", "desired-state", "--detailed-exitcode"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("Plan: 48 to create, 0 to patch"), "{out}");
    let (code, out, err) = clean(&with(&["apply", "desired-state", "--yes"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(": 48 done, 0 already done, 0 merged, 0 failed, 0 skipped"),
        "{out}"
    );
    let (code, out, err) = clean(&with(&["plan", "desired-state", "--detailed-exitcode"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("No changes."), "{out}");
    server.kill().unwrap();
    server.wait().unwrap();

    let (code, out, err) = clean(&["apply", "desired-state", "--yes"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(": 48 done, 0 already done"), "{out}");
    let (code, out, err) = clean(&["plan", "desired-state", "--detailed-exitcode"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("No changes."), "{out}");

    // The tour's last step: `watch` starts, announcing itself as the README shows.
    let mut watch = scimctl()
        .args(["watch", "desired-state", "--listen", "127.0.0.1:0"])
        .current_dir(&repo)
        .env_clear()
        .env("PATH", &path)
        .env("HOME", &home)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(watch.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    watch.kill().unwrap();
    watch.wait().unwrap();
    // The README shows the default listener; this one picked a free port.
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = fs::read_to_string(readme).unwrap();
    let shown = "watch: reconciling desired-state every 5m (heal); health, readiness and metrics at http://127.0.0.1:";
    assert!(
        readme.contains(&format!("# {shown}9464\n")),
        "the README's tour shows the banner"
    );
    assert!(first.starts_with(shown), "{first}");
}
