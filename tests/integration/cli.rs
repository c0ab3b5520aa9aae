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

/// A program the README's tour runs besides scimctl, found on PATH. trycmd skips a command
/// whose program is not registered, without failing, so each one is registered here (and a
/// missing one fails the test instead of hiding the block).
fn on_path(name: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("the README's tour needs `{name}` on PATH"))
}

/// The examples in `docs/*.md` run from the repository root, as a reader runs them from a
/// clone: only commands that need no server and write nothing (validate, explain, ...).
#[test]
fn doc_examples() {
    trycmd::TestCases::new()
        .register_bin("scimctl", Path::new(env!("CARGO_BIN_EXE_scimctl")))
        .case("docs/*.md");
}

/// The README's five-minute tour writes (it applies to the embedded sandbox, and edits a
/// file), so it runs on a copy: the README beside `README.in/desired-state`, a copy of the
/// example org, with `README.out/` asking trycmd to run the whole file in a scratch copy of
/// `README.in` (the repository's own `desired-state/` and `.scimctl/` are never touched).
#[test]
fn readme_tour() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(root.join("README.md"), tmp.path().join("README.md")).unwrap();
    crate::support::copy_example(&tmp.path().join("README.in/desired-state"));
    std::fs::create_dir(tmp.path().join("README.out")).unwrap();
    let cases = trycmd::TestCases::new();
    cases
        .register_bin("scimctl", Path::new(env!("CARGO_BIN_EXE_scimctl")))
        .register_bin("sed", on_path("sed"))
        .case(tmp.path().join("README.md"));
    cases.run();
}
