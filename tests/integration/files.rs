//! Issue 14 (3, 4): nothing under the directory is skipped without a word, and `fromFile`
//! secrets stay inside the directory, small and one line, with errors that never show them.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::support::{run_bounded, text};

fn users(path: &Path, prefix: &str, n: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut yaml = String::from("users:\n");
    for i in 0..n {
        let _ = writeln!(yaml, "  - userName: {prefix}{i}@x.example");
    }
    fs::write(path, yaml).unwrap();
}

fn validate(cwd: &Path) -> (Option<i32>, String, String) {
    let output = run_bounded(cwd, &["validate", "desired-state"], Duration::from_secs(10));
    let (stdout, stderr) = text(&output);
    (output.status.code(), stdout, stderr)
}

// The repro: users/contractors -> ../../shared/contractors (outside) is an error, never
// silently dropped; the same link inside the directory is followed and counted.
#[cfg(unix)]
#[test]
fn contractors_symlink_is_counted_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    users(&dir.join("users/staff.yaml"), "staff", 260);
    users(
        &tmp.path().join("shared/contractors/c.yaml"),
        "contractor",
        20,
    );
    std::os::unix::fs::symlink("../../shared/contractors", dir.join("users/contractors")).unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("contractors: symlink leads outside the desired-state directory"),
        "{stderr}"
    );

    // Inside the directory the same link is followed.
    fs::remove_file(dir.join("users/contractors")).unwrap();
    fs::rename(tmp.path().join("shared"), dir.join("shared")).unwrap();
    std::os::unix::fs::symlink("../shared/contractors", dir.join("users/contractors")).unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("280 users"), "{stdout}");
}

// fromFile outside the directory, by absolute path or by `..`: exit 3 at path:line:col, and no
// line of the file is shown.
#[test]
fn from_file_outside_is_refused_without_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    fs::create_dir_all(dir.join("users")).unwrap();
    let depth = dir.join("users").components().count();
    let up = "../".repeat(depth);
    let yaml = format!(
        "users:\n  - userName: a@x.example\n    password: {{fromFile: /etc/passwd}}\n  - userName: b@x.example\n    password: {{fromFile: {up}etc/passwd}}\n"
    );
    fs::write(dir.join("users/u.yaml"), yaml).unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains("u.yaml:3:15: password file `/etc/passwd` is refused"),
        "{stderr}"
    );
    assert!(
        stderr.contains("u.yaml:5:15: password file `../"),
        "{stderr}"
    );
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines().filter(|l| l.len() > 3) {
            assert!(!stderr.contains(line) && !stdout.contains(line), "{line}");
        }
    }
}

// A 5 KiB secret file is refused.
#[test]
fn a_large_secret_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("big.txt"), "Aa1!".repeat(1280)).unwrap();
    fs::write(
        dir.join("u.yaml"),
        "users:\n  - userName: a@x.example\n    password: {fromFile: big.txt}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("u.yaml:3:15:"), "{stderr}");
    assert!(stderr.contains("larger than 4 KiB"), "{stderr}");
    assert!(!stderr.contains("Aa1!"), "{stderr}");
}

// A symlink to a secret outside the directory, named like YAML: an error that does not show
// the secret (before, its lines came back as "unknown top-level key").
#[cfg(unix)]
#[test]
fn a_yaml_symlink_to_a_secret_does_not_echo_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("desired-state");
    users(&dir.join("users/a.yaml"), "a", 1);
    fs::write(
        tmp.path().join("shadow"),
        "root:Hunter2-Secret-Hash:19000:0:99999:7:::\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("shadow"), dir.join("users/x.yaml")).unwrap();
    let (code, stdout, stderr) = validate(tmp.path());
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stderr.contains("x.yaml: symlink leads outside"), "{stderr}");
    assert!(
        !stderr.contains("Hunter2") && !stdout.contains("Hunter2"),
        "{stderr}"
    );
}
