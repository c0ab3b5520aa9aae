//! `scimctl export`: read the whole tenant once, write it as desired-state YAML.
//!
//! The output directory is checked before the tenant is contacted, so a refusal costs no
//! request. Reading is the snapshot `plan` uses (pages + 2 requests: `/ServiceProviderConfig`
//! and `/Schemas`); turning it into files is pure ([`crate::export`]); the files are written
//! atomically. Warnings and the summary go to `err`; nothing goes to stdout.

use std::io::Write;
use std::path::Path;

use super::Failure;
use super::runtime::Runtime;
use super::tenant::{Shown, TenantRead, read_tenant};
use crate::error::{Error, ExitStatus};
use crate::export::write::{self, WriteError};
use crate::export::{ExportOptions, Filters};
use crate::model::{Config, SecretSource, Target};

/// Warnings printed before the rest are only counted.
const MAX_WARNINGS: usize = 50;

/// What `scimctl export` was asked.
pub(super) struct ExportArgs<'a> {
    pub(super) dir: &'a Path,
    pub(super) target: crate::target::Overrides<'a>,
    pub(super) filters: Filters,
    pub(super) force: bool,
    pub(super) quiet: bool,
}

fn write_error(e: WriteError) -> Error {
    match e {
        e @ WriteError::NotEmpty { .. } => Error::Refused(e.to_string()),
        WriteError::Io { path, message } => Error::File { path, message },
    }
}

/// The `target:` the generated `scimctl.yaml` names: the `--target` URL, with the token
/// variable it was read from when one was set; `None` (the default sandbox) otherwise.
fn target_of(args: &ExportArgs<'_>) -> Option<Target> {
    let url = args.target.url?;
    let token_set = std::env::var_os("SCIMCTL_TOKEN").is_some_and(|t| !t.is_empty());
    Some(Target::Scim {
        url: url.to_owned(),
        token: token_set.then(|| SecretSource::FromEnv("SCIMCTL_TOKEN".into())),
        oauth: None,
        requests_per_minute: args.target.requests_per_minute,
    })
}

pub(super) fn export_cmd(
    args: &ExportArgs<'_>,
    runtime: &Runtime,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let started = tokio::time::Instant::now();
    write::check_dir(args.dir, args.force).map_err(write_error)?;
    let TenantRead {
        support,
        mut snapshot,
        target: description,
        requests,
    } = read_tenant(
        runtime,
        &Config::default(),
        Path::new("."),
        &args.target,
        Shown {
            label: "export",
            quiet: args.quiet,
        },
    )?;
    let options = ExportOptions {
        filters: args.filters.clone(),
        support,
        target: target_of(args),
        description: description.clone(),
    };
    let read_at = started.elapsed();
    // Each file is written (to its temporary name) as soon as it is laid out, and the users
    // are rendered one by one as they are converted: at 100,000 users, holding them or the
    // files' text would be most of the export's memory.
    let mut stager = write::Stager::new(args.dir, args.force).map_err(write_error)?;
    let spill = write::Spill::new(args.dir).map_err(write_error)?;
    let export = crate::export::export_into(&mut snapshot, &options, spill, &mut |rel, text| {
        stager.stage(&rel, &text)
    })
    .map_err(write_error)?;
    drop(snapshot);
    let written = stager.commit().map_err(write_error)?;
    tracing::debug!(
        read_ms = read_at.as_millis(),
        write_ms = started.elapsed().saturating_sub(read_at).as_millis(),
        files = written.written,
        "exported"
    );
    if !args.quiet {
        for w in export.warnings.iter().take(MAX_WARNINGS) {
            writeln!(err, "warning: {w}")?;
        }
        if export.warnings.len() > MAX_WARNINGS {
            writeln!(
                err,
                "warning: ... and {} more kinds of problem",
                export.warnings.len() - MAX_WARNINGS
            )?;
        }
        let roles = if export.roles > 0 {
            format!(", {} role names", export.roles)
        } else {
            String::new()
        };
        writeln!(
            err,
            "Exported {} users in {} {}, {} groups{roles} to {} ({requests} requests in {:.2} s).",
            export.users,
            export.user_files,
            if export.user_files == 1 {
                "file"
            } else {
                "files"
            },
            export.groups,
            args.dir.display(),
            started.elapsed().as_secs_f64()
        )?;
    }
    Ok(ExitStatus::Success)
}
