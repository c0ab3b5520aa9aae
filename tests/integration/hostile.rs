//! Issue 2: hostile input fails cleanly: exit code 3, an error with its location, within 2 s
//! and 200 MB, never a panic.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{run_bounded, text};

/// One hostile file, and what the error must say about it.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: &'static str,
}

fn billion_laughs() -> Vec<u8> {
    let mut s = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..10_u8 {
        let (name, prev) = (char::from(b'a' + level), char::from(b'a' + level - 1));
        let refs = vec![format!("*{prev}"); 9].join(", ");
        let _ = writeln!(s, "{name}: &{name} [{refs}]");
    }
    s.push_str("users: *j\n");
    s.into_bytes()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "empty.yaml",
            bytes: Vec::new(),
            expect: "empty.yaml: file is empty",
        },
        Case {
            name: "comments.yaml",
            bytes: b"# only a comment\n".to_vec(),
            expect: "comments.yaml: file is empty",
        },
        Case {
            name: "latin1.yaml",
            bytes: b"users:\n  - userName: jos\xe9@example.com\n".to_vec(),
            expect: "latin1.yaml:2:18: file is not valid UTF-8 (byte 0xE9)",
        },
        Case {
            name: "list.yaml",
            bytes: b"- userName: a\n".to_vec(),
            expect: "list.yaml:1:1: expected a mapping",
        },
        Case {
            name: "scalar.yaml",
            bytes: b"just text\n".to_vec(),
            expect: "scalar.yaml:1:1: expected a mapping",
        },
        Case {
            name: "bomb.yaml",
            bytes: billion_laughs(),
            expect: "bomb.yaml:6:36: document expands to more than 500000 values",
        },
        Case {
            name: "huge.yaml",
            bytes: {
                let mut v = b"users:\n".to_vec();
                let line = b"  - userName: padding-padding-padding-padding@example.com\n";
                while v.len() < 50 << 20 {
                    v.extend_from_slice(line);
                }
                v
            },
            expect: "huge.yaml: file is 50.0 MiB; the limit is 8 MiB per file",
        },
        Case {
            name: "deep-flow.yaml",
            bytes: format!("users: {}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            expect: "deep-flow.yaml:1:",
        },
        Case {
            name: "deep-block.yaml",
            bytes: (0..1_000)
                .fold(String::new(), |mut s, i| {
                    let _ = writeln!(s, "{}k:", " ".repeat(i));
                    s
                })
                .into_bytes(),
            expect: "deep-block.yaml:65:65: nesting is deeper than 64 levels",
        },
        Case {
            name: "long-list.yaml",
            bytes: format!("users: [{}a]", "a,".repeat(2_000_000)).into_bytes(),
            expect: "long-list.yaml:1:1000003: document expands to more than 500000 values",
        },
        Case {
            name: "dup.yaml",
            bytes: b"users:\n  - userName: a@example.com\n    userName: b@example.com\n".to_vec(),
            expect: "dup.yaml:3:5: duplicate key `userName` (first at line 2:5)",
        },
        Case {
            name: "tabs.yaml",
            bytes: b"users:\n\t- userName: a@example.com\n".to_vec(),
            expect: "tabs.yaml:2:2: tabs disallowed within this context (block indentation) (YAML does not allow tabs for indentation; use spaces)",
        },
        Case {
            name: "docs.yaml",
            bytes: b"users: []\n---\nusers: []\n".to_vec(),
            expect: "docs.yaml:2:1: a file may hold only one YAML document",
        },
    ]
}

/// Set, to a directory, in the copy of this test binary that [`validate_measured`] starts:
/// there [`measured_validate`] runs `scimctl validate desired` in it (elsewhere it does
/// nothing) and leaves what it saw in [`MEASURED`].
const MEASURE_DIR: &str = "SCIMCTL_TEST_MEASURE_DIR";
const MEASURED: &str = "measured.json";

/// `scimctl validate desired` in `cwd`, within 2 s: its exit code, standard error and peak
/// resident set size in bytes. Run from a fresh copy of this test binary, whose
/// `RUSAGE_CHILDREN` then covers that one scimctl; in this process it would cover every child
/// any test in the binary ever reaped (an apply killed mid-run, a sandbox server), so it would
/// measure them too.
fn validate_measured(cwd: &Path) -> (Option<i32>, String, u64) {
    let exe = std::env::current_exe().expect("the test binary");
    let copy = Command::new(exe)
        .args([
            "hostile::measured_validate",
            "--exact",
            "--test-threads=1",
            "--quiet",
        ])
        .env(MEASURE_DIR, cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a copy of the test binary");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(copy.id()).expect("pid fits in i32"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(copy.wait_with_output());
    });
    let Ok(output) = rx.recv_timeout(Duration::from_secs(60)) else {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        panic!("the measuring copy of the test binary did not finish within 60 s");
    };
    let output = output.expect("wait for the measuring copy");
    let (out, err) = text(&output);
    assert!(
        output.status.success(),
        "the measuring copy failed:\n{out}\n{err}"
    );
    let measured: Value = serde_json::from_slice(&fs::read(cwd.join(MEASURED)).expect(MEASURED))
        .expect("what the copy measured");
    (
        measured["code"]
            .as_i64()
            .and_then(|c| i32::try_from(c).ok()),
        measured["stderr"].as_str().unwrap_or_default().to_owned(),
        measured["peakRss"].as_u64().expect("peakRss"),
    )
}

/// Not a test of its own: does nothing unless [`validate_measured`] started this process.
#[test]
fn measured_validate() {
    let Some(dir) = std::env::var_os(MEASURE_DIR) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let output = run_bounded(&dir, &["validate", "desired"], Duration::from_secs(2));
    // This process is fresh and has reaped no other child.
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    // Linux reports ru_maxrss in KiB.
    let peak = u64::try_from(usage.max_rss()).unwrap_or(0) * 1024;
    let (_, stderr) = text(&output);
    let measured = json!({"code": output.status.code(), "stderr": stderr, "peakRss": peak});
    fs::write(
        dir.join(MEASURED),
        serde_json::to_vec(&measured).expect("JSON"),
    )
    .expect("write what was measured");
}

/// Each hostile file alone: exit 3, its located error, no panic, within 2 s and 200 MiB.
#[test]
fn each_hostile_file_fails_cleanly() {
    let mut peak = (0, "");
    for case in cases() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("desired");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join(case.name), &case.bytes).unwrap();
        let (code, stderr, rss) = validate_measured(tmp.path());
        assert_eq!(code, Some(3), "{}: {stderr}", case.name);
        let expected = format!("desired{}{}", std::path::MAIN_SEPARATOR, case.expect);
        assert!(
            stderr.starts_with(&expected),
            "{}: expected {expected:?}, got {stderr:?}",
            case.name
        );
        assert!(!stderr.contains("panicked"), "{}: {stderr}", case.name);
        peak = peak.max((rss, case.name));
    }
    assert!(
        peak.0 < 200 << 20,
        "{} peaked at {} MiB",
        peak.1,
        peak.0 >> 20
    );
    all_hostile_files_together();
}

/// All hostile files at once: every one is reported, still in bounded time. Called after the
/// memory check above because it parses several hostile files at the same time.
fn all_hostile_files_together() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired");
    fs::create_dir(&dir).unwrap();
    let cases = cases();
    for case in &cases {
        fs::write(dir.join(case.name), &case.bytes).unwrap();
    }
    let output = run_bounded(tmp.path(), &["validate", "desired"], Duration::from_secs(4));
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for case in &cases {
        let expected = format!(
            "{}{}",
            Path::new("desired").display(),
            std::path::MAIN_SEPARATOR
        );
        assert!(
            stderr.contains(&format!("{expected}{}", case.expect)),
            "{} missing from {stderr}",
            case.name
        );
    }
    assert!(
        stderr.ends_with(&format!(
            "error: desired state is invalid: {} problems in {} files\n",
            cases.len(),
            cases.len()
        )),
        "{stderr}"
    );
}

/// A directory argument that is not UTF-8 is a path like any other: validate says it is
/// missing (exit 3) instead of panicking (exit 101) while counting `-v` flags.
#[cfg(unix)]
#[test]
fn non_utf8_arguments_do_not_panic() {
    use std::os::unix::ffi::OsStrExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scimctl"))
        .arg("validate")
        .arg(std::ffi::OsStr::from_bytes(b"dir\xff"))
        .arg("-v")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("dir\u{fffd}"),
        "names the directory: {stderr}"
    );
}

/// A credential in the target URL's query (`?access_token=...`, RFC 6750 §2.3) never reaches the terminal, the logs, the saved plan or the audit log: they show the URL with
/// its query values redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_target_url_is_never_shown() {
    let token = "url-query-token";
    let running = crate::support::bearer_sandbox(token).await;
    let base = running.base_url.clone();
    let with_query = format!("{base}?access_token=TOPSECRET-QUERY");
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("users.yaml"),
        "users:\n  - userName: ann@url.example\n",
    )
    .unwrap();
    let dir = dir.to_str().unwrap();
    let url = &with_query;
    let plan = ["-v", "plan", dir, "--target", url, "--out", "plan.json"];
    let (code, out, err) = crate::support::scimctl_with_token(cwd.path(), &plan, token);
    assert_eq!(code, 0, "{out}\n{err}");
    let saved = fs::read_to_string(cwd.path().join("plan.json")).unwrap();
    assert!(saved.contains("redacted"), "{saved}");
    let apply = ["-v", "apply", dir, "--target", url, "--yes"];
    let (code, out2, err2) = crate::support::scimctl_with_token(cwd.path(), &apply, token);
    assert_eq!(code, 0, "{out2}\n{err2}");
    let audit = fs::read_to_string(cwd.path().join(".scimctl/audit.jsonl")).unwrap();
    for (name, text) in [
        ("plan stdout", &out),
        ("plan stderr", &err),
        ("saved plan", &saved),
        ("apply stdout", &out2),
        ("apply stderr", &err2),
        ("audit log", &audit),
    ] {
        assert!(
            !text.contains("TOPSECRET"),
            "{name} shows the credential:\n{text}"
        );
    }
    running.shutdown().await.unwrap();
}

/// Terminal control sequences from the tenant never reach the terminal raw: a live userName
/// holding `\r\e[1A\e[2K` (which would erase the line above, a `- delete` say) is shown
/// escaped in the plan (text and Markdown) and in the apply report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_sequences_from_the_tenant_are_escaped() {
    use scimctl::scim::wire::User;
    let token = "escape-token";
    let running = crate::support::bearer_sandbox(token).await;
    let url = running.base_url.clone();
    let client = crate::support::bearer_client(&url, token, None);
    let evil = "evil\r\x1b[1A\x1b[2K@esc.example";
    client
        .create(
            &User {
                user_name: evil.into(),
                ..User::default()
            }
            .with_schemas(),
        )
        .await
        .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("scimctl.yaml"),
        "ownership: {users: all}\nsafety: {maxDeletePercent: 100, maxDeleteCount: 10}\n",
    )
    .unwrap();
    fs::write(
        dir.join("users.yaml"),
        "users:\n  - userName: ann@esc.example\n",
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    for format in ["text", "markdown"] {
        let args = ["plan", d, "--target", &url, "--format", format];
        let (code, out, err) = crate::support::scimctl_with_token(cwd.path(), &args, token);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(out.contains("evil\\u{d}\\u{1b}[1A"), "{format}:\n{out}");
        assert!(
            !out.contains(['\x1b', '\r']),
            "{format} shows it raw:\n{out:?}"
        );
    }
    let args = ["apply", d, "--target", &url, "--yes"];
    let (code, out, err) = crate::support::scimctl_with_token(cwd.path(), &args, token);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("deactivate"), "{out}");
    assert!(
        !out.contains(['\x1b', '\r']),
        "the report shows it raw:\n{out:?}"
    );
    assert!(!err.contains('\x1b'), "{err:?}");
    running.shutdown().await.unwrap();
}

/// A control, bidirectional or zero-width character in a name is a validation error at its
/// `path:line:col` (exit 3), shown escaped.
#[test]
fn control_characters_in_names_are_refused() {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    fs::create_dir(&dir).unwrap();
    fs::write(
        dir.join("users.yaml"),
        "users:\n  - userName: \"a\\e[2K@x.example\"\n  - userName: b@x.example\n    displayName: \"B\\u202Eb\"\ngroups:\n  - displayName: \"G\\u200Bx\"\n",
    )
    .unwrap();
    let output = run_bounded(
        cwd.path(),
        &["validate", dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(3), "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("users.yaml:2:15"), "{all}");
    assert!(all.contains("U+001B"), "{all}");
    assert!(all.contains("U+202E"), "{all}");
    assert!(all.contains("U+200B"), "{all}");
    assert!(!all.contains('\x1b'), "{all:?}");
}
