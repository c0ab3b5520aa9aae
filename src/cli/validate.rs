//! `scimctl validate`: load and check the desired-state directory, contacting nothing; the
//! summary (or one JSON document) on `out`, diagnostics on `err`.

use std::io::Write;

use super::Failure;
use super::args::ValidateFormat;
use crate::desired::{self, LoadError};
use crate::error::{Error, ExitStatus};

pub(super) fn validate_cmd(
    dir: &std::path::Path,
    format: ValidateFormat,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let result = desired::load_dir(dir);
    if format == ValidateFormat::Json {
        let (valid, counts, report) = match &result {
            Ok(loaded) => (true, Some(loaded.state.counts()), &loaded.warnings),
            Err(LoadError::Invalid(report)) => (false, None, report),
            Err(e @ LoadError::Directory { .. }) => {
                return Err(Error::Load(LoadError::Directory {
                    path: dir.to_path_buf(),
                    why: strip_path(e, dir),
                })
                .into());
            }
        };
        let doc = desired::ValidateDocument {
            version: 1,
            valid,
            counts,
            diagnostics: report.to_json(),
        };
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )?;
        return Ok(if valid {
            ExitStatus::Success
        } else {
            ExitStatus::Invalid
        });
    }
    let loaded = result.map_err(Error::from)?;
    loaded.warnings.write_text(err)?;
    let c = loaded.state.counts();
    let files = loaded.state.sources.len();
    writeln!(
        out,
        "{}: valid: {} users, {} groups, {} roles, {} licenses ({} {})",
        dir.display(),
        c.users,
        c.groups,
        c.roles,
        c.licenses,
        files,
        if files == 1 { "file" } else { "files" }
    )?;
    for note in platform_notes(&loaded.state) {
        writeln!(out, "note: {note}")?;
    }
    Ok(ExitStatus::Success)
}

/// What desired state declares that only a Genesys Cloud target carries out, when the
/// configured target is another: information about the target, on stdout with the summary
/// (not a warning: the files are right, and the example org, which declares both, validates
/// without a word on stderr). `plan` warns about the same once, against the target it reads.
fn platform_notes(state: &desired::DesiredState) -> Vec<String> {
    if matches!(
        state.config.target,
        Some(crate::model::Target::Genesys { .. })
    ) {
        return Vec::new();
    }
    let mut notes = Vec::new();
    let mapped = state
        .licenses
        .iter()
        .filter(|l| l.value.genesys_license.is_some())
        .count();
    if mapped > 0 {
        notes.push(format!(
            "{mapped} license(s) name a Genesys Cloud license definition (genesysLicense), which \
             only a Genesys Cloud target assigns; on this target they stay a local rule about roles"
        ));
    }
    let granting = state
        .groups
        .iter()
        .filter(|g| g.value.roles.as_ref().is_some_and(|r| !r.is_empty()))
        .count();
    if granting > 0 {
        notes.push(format!(
            "{granting} group(s) grant roles, which only a Genesys Cloud target writes; on this \
             target they are not managed and never sent"
        ));
    }
    notes
}

fn strip_path(e: &LoadError, dir: &std::path::Path) -> String {
    match e {
        LoadError::Directory { why, .. } => why.clone(),
        LoadError::Invalid(_) => format!("{} is invalid", dir.display()),
    }
}
