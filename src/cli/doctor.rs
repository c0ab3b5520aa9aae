//! `scimctl doctor`: read-only checks of a target (auth, permissions, limits) as a checklist.

use std::io::{self, Write};

use super::Failure;
use super::args::DoctorFormat;
use super::explain::SecretsNotRead;
use super::runtime::{self, Runtime};
use crate::desired;
use crate::error::{Error, ExitStatus};

/// `scimctl doctor`: connects, runs the read-only checks, prints the checklist; exit 1 when
/// a check failed.
pub(super) fn doctor_cmd(
    dir: &std::path::Path,
    overrides: &crate::target::Overrides<'_>,
    format: DoctorFormat,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    // `--target URL` names everything doctor needs; a directory only adds which
    // permissions and divisions matter, so doctor runs without one.
    let state = if overrides.url.is_some() && !dir.exists() {
        desired::empty()
    } else {
        let loaded = desired::load_dir_with(dir, &SecretsNotRead, desired::Limits::DEFAULT)
            .map_err(Error::from)?;
        loaded.warnings.write_text(err)?;
        loaded.state
    };
    let runtime = runtime.get()?;
    let connection = runtime::connect(runtime, &state.config, dir, overrides)?;
    let report = runtime.block_on(crate::doctor::run(
        &connection.client,
        &connection.description,
        &state,
    ));
    connection.close()?;
    match format {
        DoctorFormat::Text => out.write_all(report.text().as_bytes())?,
        DoctorFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &report.json()).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if report.failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
