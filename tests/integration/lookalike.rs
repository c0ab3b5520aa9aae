//! Issue 14, item 7: look-alike names. Two userNames equal once NFKC-normalized and
//! case-folded are one user to a server: exit 3 at the second, naming the first. A confusable
//! spelling (Cyrillic for Latin) is a warning naming both spellings; validation passes.

use std::fs;
use std::time::Duration;

use crate::support::{run_bounded, text};

fn validate(yaml: &str) -> (Option<i32>, String) {
    let cwd = tempfile::tempdir().unwrap();
    let dir = cwd.path().join("ds");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("users.yaml"), yaml).unwrap();
    let output = run_bounded(
        cwd.path(),
        &["validate", dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let (out, err) = text(&output);
    (output.status.code(), format!("{out}{err}"))
}

#[test]
fn nfkc_equal_user_names_are_an_error() {
    // U+FB01 LATIN SMALL LIGATURE FI, and fullwidth letters in a group name.
    let (code, all) = validate(
        "users:\n  - userName: fiona@x.example\n  - userName: \"\\uFB01ona@X.example\"\ngroups:\n  - displayName: Support\n  - displayName: \"\\uFF33upport\"\n",
    );
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("users.yaml:3:15"), "{all}");
    assert!(all.contains("also at "), "{all}");
    assert!(all.contains("users.yaml:2:15"), "{all}");
    assert!(all.contains("\u{fb01}ona@X.example"), "{all}");
    assert!(all.contains("NFKC"), "{all}");
    assert!(all.contains("users.yaml:6:18"), "{all}");
    assert!(all.contains("users.yaml:5:18"), "{all}");
}

#[test]
fn confusable_user_names_warn_and_pass() {
    // The second userName starts with U+0440 CYRILLIC SMALL LETTER ER and has U+0430 for a.
    let (code, all) = validate(
        "users:\n  - userName: paypal@x.example\n  - userName: \"\\u0440\\u0430ypal@x.example\"\n",
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("users.yaml:3:15"), "{all}");
    assert!(
        all.contains("`\u{440}\u{430}ypal@x.example` looks like userName `paypal@x.example`"),
        "{all}"
    );
    assert!(all.contains("mixes scripts"), "{all}");
    assert!(all.contains("(Cyrillic and Latin)"), "{all}");
}

#[test]
fn invisible_format_characters_warn_escaped() {
    // U+200E LEFT-TO-RIGHT MARK is not refused like a zero-width space, but it is shown.
    let (code, all) =
        validate("users:\n  - userName: joe@x.example\n  - userName: \"jo\\u200Ee@x.example\"\n");
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("U+200E"), "{all}");
    assert!(all.contains("jo\\u{200e}e@x.example"), "{all}");
    assert!(!all.contains('\u{200e}'), "{all:?}");
}
