//! CLI contract cases (exact stdout, stderr and exit code) in `tests/cmd/*.toml`, each with an
//! optional `<case>.in/` directory that is the working directory of the run; and the
//! documentation's examples: every ```` ```console ```` block of `README.md` and `docs/*.md`
//! (a `$ command` line, then the output it prints, stdout and stderr together; `...` and `[..]`
//! match anything), run against this build, so the docs cannot drift from the binary. Blocks
//! that must not run (they need a server, or show a format) are ```` ```sh ```` or
//! ```` ```text ````.

use std::path::{Path, PathBuf};

/// Runs every trycmd case; `TRYCMD=overwrite cargo test` refreshes expectations for review.
#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin("scimctl", Path::new(env!("CARGO_BIN_EXE_scimctl")))
        .case("tests/cmd/*.toml");
}

/// A program a writing page (the README's tour) runs besides scimctl, found on PATH. trycmd skips a command
/// whose program is not registered, without failing, so each one is registered here (and a
/// missing one fails the test instead of hiding the block).
fn on_path(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the docs' examples need `{name}` on PATH"))
}

/// Pages whose examples write (they apply to the embedded sandbox, or edit a file): they run
/// in a scratch copy of the example org, never from the repository root.
const WRITING_PAGES: [&str; 2] = ["README.md", "docs/export.md"];

/// The examples in the other `docs/*.md` run from the repository root, as a reader runs them
/// from a clone: only commands that need no server and write nothing (validate, explain, ...).
#[test]
fn doc_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cases = trycmd::TestCases::new();
    cases.register_bin("scimctl", Path::new(env!("CARGO_BIN_EXE_scimctl")));
    let mut pages = 0;
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        let page = format!("docs/{}", path.file_name().unwrap().to_string_lossy());
        let markdown = path.extension().is_some_and(|e| e == "md");
        if markdown && !WRITING_PAGES.contains(&page.as_str()) {
            cases.case(&page);
            pages += 1;
        }
    }
    assert!(pages >= 10, "the docs pages were found: {pages}");
    cases.run();
}

/// The writing pages, each copied beside `PAGE.in/desired-state` (a copy of the example org)
/// and an empty `PAGE.out/`, which has trycmd run the whole page in a scratch copy of
/// `PAGE.in`; the repository's own `desired-state/` and `.scimctl/` are never touched.
#[test]
fn writing_doc_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("scimctl", Path::new(env!("CARGO_BIN_EXE_scimctl")))
        .register_bin("sed", on_path("sed"));
    for page in WRITING_PAGES {
        let dir = tmp.path().join(page.replace('/', "-"));
        let name = Path::new(page).file_name().unwrap();
        let stem = Path::new(page).file_stem().unwrap().to_string_lossy();
        std::fs::create_dir(&dir).unwrap();
        std::fs::copy(root.join(page), dir.join(name)).unwrap();
        crate::support::copy_example(&dir.join(format!("{stem}.in/desired-state")));
        std::fs::create_dir(dir.join(format!("{stem}.out"))).unwrap();
        cases.case(dir.join(name));
    }
    cases.run();
}

/// GitHub's anchor for a heading: lower case, spaces to `-`, punctuation other than `-` and
/// `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown page's headings (outside code blocks).
fn anchors(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.push(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

/// Every relative link of the README and the docs pages (a file, optionally `#anchor`) leads to
/// a file that exists and a heading it has: the reference moved out of the README into docs/,
/// and a link left pointing at the old place would fail here.
#[test]
fn doc_links_resolve() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (at, _) in text.match_indices("](") {
            let rest = &text[at + 2..];
            let link = &rest[..rest.find(')').unwrap()];
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            checked += 1;
            let Ok(target_text) = std::fs::read_to_string(&target) else {
                broken.push(format!("{}: {link}: no such file", page.display()));
                continue;
            };
            if !fragment.is_empty() && !anchors(&target_text).iter().any(|a| a == fragment) {
                broken.push(format!("{}: {link}: no such heading", page.display()));
            }
        }
    }
    assert!(checked >= 40, "the links were found: {checked}");
    assert!(broken.is_empty(), "{broken:#?}");
}
