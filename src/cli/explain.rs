//! `scimctl explain`: load the desired state, find the object (before contacting anything),
//! read the tenant when asked (`--live`, `--target`), and print the report as text or JSON.
//!
//! Secret sources (`fromEnv`, `fromFile`) are not checked: explain reads no secret, and a
//! reviewer should not need the break-glass password to ask who holds a role. A target's
//! credentials are still read, by `connect`, when the tenant is asked for.
//!
//! An unknown name exits 1 with a "did you mean" hint: the desired state is valid and the
//! command was well formed, the object just is not there (as `kubectl get` answers a missing
//! name). An invalid desired state exits 3, as everywhere.

use std::io::{self, Write};
use std::path::Path;

use super::Failure;
use super::args::ExplainFormat;
use super::runtime::Runtime;
use super::tenant::{Shown, TenantRead, read_tenant};
use crate::desired;
use crate::error::{Error, ExitStatus};
use crate::explain::{self, Kind, LiveInput};

/// What `scimctl explain` was asked.
pub(super) struct ExplainArgs<'a> {
    pub(super) kind: Kind,
    pub(super) name: &'a str,
    pub(super) dir: &'a Path,
    pub(super) format: ExplainFormat,
    /// Whether to read the tenant and compare.
    pub(super) live: bool,
    pub(super) target: crate::target::Overrides<'a>,
    /// `-q`: no read progress.
    pub(super) quiet: bool,
}

/// An environment in which every secret source resolves, so validation leaves them alone.
pub(super) struct SecretsNotRead;

impl desired::Environment for SecretsNotRead {
    fn var_is_set(&self, _: &str) -> bool {
        true
    }

    fn file_readable(&self, _: &Path) -> Result<(), String> {
        Ok(())
    }
}

pub(super) fn explain_cmd(
    args: &ExplainArgs<'_>,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let loaded = desired::load_dir_with(args.dir, &SecretsNotRead, desired::Limits::DEFAULT)
        .map_err(Error::from)?;
    loaded.warnings.write_text(err)?;
    let state = loaded.state;
    let kind = args.kind;
    let subject = explain::find(&state, kind, args.name).map_err(Error::from)?;
    let explanation = if args.live {
        let TenantRead {
            snapshot, target, ..
        } = read_tenant(
            runtime,
            &state.config,
            args.dir,
            &args.target,
            Shown {
                label: "explain",
                quiet: args.quiet,
            },
        )?;
        let input = LiveInput {
            snapshot: &snapshot,
            target: &target,
        };
        explain::explain(&state, subject, Some(input)).map_err(Error::from)?
    } else {
        explain::explain(&state, subject, None).map_err(Error::from)?
    };
    match args.format {
        ExplainFormat::Text => {
            // Names come from YAML and the tenant: shown escaped, as every text output.
            let mut text = Vec::new();
            explain::render::text(&explanation, &mut text)?;
            let text = String::from_utf8_lossy(&text);
            out.write_all(crate::model::escape_lines(&text).as_bytes())?;
        }
        ExplainFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &explanation.document())
                .map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitStatus::Success)
}
