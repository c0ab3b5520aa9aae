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
    Ok(ExitStatus::Success)
}

fn strip_path(e: &LoadError, dir: &std::path::Path) -> String {
    match e {
        LoadError::Directory { why, .. } => why.clone(),
        LoadError::Invalid(_) => format!("{} is invalid", dir.display()),
    }
}
