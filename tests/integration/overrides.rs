//! HRIS terminations recorded in the local overrides file, end to end through the real
//! binary and the embedded sandbox: `plan` warns at the user's YAML and deactivates, `apply`
//! carries it out and never activates the user again, a saved plan's desired-state hash does
//! not depend on the overrides, and the override is forgotten once the YAML catches up.

use std::path::Path;
use std::time::Duration;

use crate::support::{run_bounded_with, text};

const USERS: &str = "users:
  - userName: ana@northwind.example
    displayName: Ana
    active: true
  - userName: bo@northwind.example
    displayName: Bo
";

/// The warning every plan carries (text, Markdown and JSON) while the YAML disagrees.
const WARNING: &str = "ana@northwind.example: terminated by the HRIS webhook at 2026-11-23T10:00:00Z (left the company), so it stays inactive; mark the user `active: false` or remove them to settle this";

const OVERRIDES: &str = r#"{
  "version": 1,
  "terminations": [
    {"userName": "ana@northwind.example", "at": "2026-11-23T10:00:00Z", "reason": "left the company"}
  ]
}
"#;

/// Runs `scimctl args...` in `cwd` against the default (embedded sandbox) target.
fn scimctl(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let output = run_bounded_with(cwd, args, &[], Duration::from_secs(120));
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// The whole story of one termination, from plan warning to settled override.
#[test]
#[allow(clippy::too_many_lines)] // one termination's whole story, read top to bottom
fn termination_override_from_plan_to_settled() {
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    let dir = cwd.join("desired");
    std::fs::create_dir_all(&dir).unwrap();
    // One of two users deactivated is 50 %: lift the percentage brake for this small org.
    std::fs::write(
        dir.join("scimctl.yaml"),
        "safety: {maxDeletePercent: 100}\n",
    )
    .unwrap();
    std::fs::write(dir.join("users.yaml"), USERS).unwrap();
    let overrides = cwd.join(".scimctl/overrides.json");

    let (code, out, err) = scimctl(cwd, &["apply", "desired", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A plan saved before the termination arrives.
    let (code, out, err) = scimctl(cwd, &["plan", "desired", "--out", "before.json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    std::fs::write(&overrides, OVERRIDES).unwrap();
    let (code, out, err) = scimctl(
        cwd,
        &["plan", "desired", "--format", "json", "--detailed-exitcode"],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let warning = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["message"] == WARNING)
        .unwrap_or_else(|| panic!("the warning is in the plan document:\n{out}"));
    assert!(
        warning["source"].to_string().contains("users.yaml")
            && warning["source"].to_string().contains('4'),
        "at the user's `active: true`: {warning}"
    );
    assert!(!err.contains(WARNING), "said once, in the plan: {err}");
    let changes = plan["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{out}");
    assert_eq!(
        (&changes[0]["action"], &changes[0]["key"]),
        (
            &serde_json::json!("deactivate"),
            &serde_json::json!("ana@northwind.example")
        )
    );

    // The saved plan still matches the desired state: its hash is over the files, which the
    // override does not change.
    let (code, out, err) = scimctl(cwd, &["apply", "desired", "--plan", "before.json", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");

    let (code, out, err) = scimctl(cwd, &["apply", "desired", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("done          deactivate user ana@northwind.example"),
        "{out}"
    );
    // Later plans keep warning, and do not activate her again.
    let (code, out, err) = scimctl(cwd, &["plan", "desired"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    // A diagnostic: on stderr, never in the plan on stdout.
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: ") && l.ends_with(&format!("users.yaml:4: {WARNING}"))),
        "{err}"
    );
    assert!(!out.contains(WARNING), "{out}");
    let (code, out, err) = scimctl(cwd, &["plan", "desired", "-q"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    assert!(
        !err.contains(WARNING) && !out.contains(WARNING),
        "-q hides it: {out}\n{err}"
    );
    let (code, out, err) = scimctl(cwd, &["plan", "desired", "--format", "markdown"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("terminated by the HRIS webhook"),
        "a PR comment shows it: {out}"
    );

    // A plan made without the override (here: the file moved away) would activate her; with
    // the override back, apply refuses it.
    std::fs::rename(&overrides, cwd.join("aside.json")).unwrap();
    let (code, out, err) = scimctl(cwd, &["plan", "desired", "--out", "reactivate.json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("ana@northwind.example"), "{out}");
    std::fs::rename(cwd.join("aside.json"), &overrides).unwrap();
    let (code, out, err) = scimctl(
        cwd,
        &["apply", "desired", "--plan", "reactivate.json", "--yes"],
    );
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("the plan activates ana@northwind.example, whom the HRIS webhook terminated at 2026-11-23T10:00:00Z; plan again"),
        "{err}"
    );

    // The YAML catches up: no warning, no change, and apply forgets the override.
    std::fs::write(
        dir.join("users.yaml"),
        USERS.replace("active: true", "active: false"),
    )
    .unwrap();
    let (code, out, err) = scimctl(cwd, &["plan", "desired"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("No changes."), "{out}");
    assert!(!err.contains("terminated by the HRIS webhook"), "{err}");
    assert!(
        std::fs::read_to_string(&overrides)
            .unwrap()
            .contains("ana@"),
        "plan never writes"
    );
    let (code, out, err) = scimctl(cwd, &["apply", "desired", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let left = std::fs::read_to_string(&overrides).unwrap();
    assert!(!left.contains("ana@"), "{left}");
}

/// A broken overrides file stops plan before anything is contacted, naming the file.
#[test]
fn broken_overrides_file_is_an_error() {
    let cwd = tempfile::tempdir().unwrap();
    let cwd = cwd.path();
    std::fs::create_dir_all(cwd.join("desired")).unwrap();
    std::fs::write(cwd.join("desired/users.yaml"), USERS).unwrap();
    std::fs::write(
        cwd.join("elsewhere.json"),
        "{\"version\": 1, \"terminations\": 3}",
    )
    .unwrap();
    let output = run_bounded_with(
        cwd,
        &["plan", "desired"],
        &[("SCIMCTL_OVERRIDES", "elsewhere.json")],
        Duration::from_secs(60),
    );
    let (out, err) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{out}\n{err}");
    assert!(
        err.contains("error: elsewhere.json is not a valid overrides file: invalid type"),
        "{err}"
    );
    assert!(
        !cwd.join(".scimctl/sandbox.json").exists(),
        "nothing contacted"
    );
}
