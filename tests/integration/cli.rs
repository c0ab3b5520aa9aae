//! CLI contract cases (exact stdout, stderr and exit code) in `tests/cmd/*.toml`, each with an
//! optional `<case>.in/` directory that is the working directory of the run.

/// Runs every trycmd case; `TRYCMD=overwrite cargo test` refreshes expectations for review.
#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .register_bin(
            "scimctl",
            std::path::Path::new(env!("CARGO_BIN_EXE_scimctl")),
        )
        .case("tests/cmd/*.toml");
}
