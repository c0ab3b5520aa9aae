//! `scimctl doctor`: read-only checks of a target (auth, permissions, limits) as a checklist.

use std::io::{self, Write};

use super::Failure;
use super::args::DoctorFormat;
use super::explain::SecretsNotRead;
use super::reading::ReadProgress;
use super::runtime::{self, Runtime};
use crate::desired;
use crate::error::{Error, ExitStatus};

/// What `scimctl doctor` was asked.
pub(super) struct DoctorArgs<'a> {
    pub(super) dir: &'a std::path::Path,
    pub(super) target: crate::target::Overrides<'a>,
    pub(super) format: DoctorFormat,
    /// `-q`: no progress.
    pub(super) quiet: bool,
}

/// `scimctl doctor`: connects, runs the read-only checks, prints the checklist; exit 1 when
/// a check failed.
pub(super) fn doctor_cmd(
    args: &DoctorArgs<'_>,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let DoctorArgs {
        dir,
        target: overrides,
        format,
        quiet,
    } = args;
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
    // The checks made so far and the requests they cost: a doctor of a slow or throttled
    // tenant may take a while.
    let checks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = {
        let checks = std::sync::Arc::clone(&checks);
        let client = connection.client.clone();
        ReadProgress::start(runtime.handle(), "doctor", *quiet, move || {
            let made = checks.load(std::sync::atomic::Ordering::Relaxed);
            let requests = client.stats().requests;
            (requests > 0).then(|| format!("{made} checks made, {requests} requests"))
        })
    };
    let report = runtime.block_on(crate::doctor::run(
        &connection.client,
        &connection.description,
        &state,
        &checks,
    ));
    progress.finish();
    connection.close()?;
    match *format {
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
