//! `scimctl plan`: load, read the tenant, decide through the one pipeline
//! ([`crate::session`]), print the plan (text, Markdown or JSON) and save it when asked.
//! Never writes to the tenant.

use std::io::{self, Write};
use std::path::Path;

use super::Failure;
use super::args::PlanFormat;
use super::reading::ReadProgress;
use super::runtime::{self, Runtime};
use super::tenant::log_read;
use crate::error::{Error, ExitStatus};

/// What `scimctl plan` was asked.
pub(super) struct PlanArgs<'a> {
    pub(super) dir: &'a Path,
    pub(super) target: crate::target::Overrides<'a>,
    pub(super) format: PlanFormat,
    pub(super) save: Option<&'a Path>,
    pub(super) detailed_exitcode: bool,
    pub(super) allow_deletes: Option<usize>,
    /// `-q`: no warnings on stderr.
    pub(super) quiet: bool,
    /// Password rotation: the fingerprint file, `--adopt-passwords`.
    pub(super) passwords: &'a super::args::PasswordArgs,
}

/// Writes `bytes` to `path` atomically and durably ([`crate::disk::atomic`]), so a reader
/// never sees half a plan and a crash never leaves one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    crate::disk::atomic::write(path, crate::disk::atomic::Mode::Shared, bytes).map_err(|e| {
        Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })
}

pub(super) fn plan_cmd(
    args: &PlanArgs<'_>,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    use crate::plan::{render, saved::PlanDocument};
    use std::io::IsTerminal;

    let loaded = crate::session::load(args.dir, &crate::overrides::default_path())?;
    if !args.quiet {
        loaded.warnings.write_text(err)?;
    }
    let runtime = runtime.get()?;
    let connection = runtime::connect(runtime, &loaded.state.config, args.dir, &args.target)?;
    let started = tokio::time::Instant::now();
    let progress = ReadProgress::tenant(runtime.handle(), "plan", args.quiet, &connection.client);
    let live = runtime.block_on(crate::session::read(
        &connection.client,
        Some(&loaded.state),
    ));
    let target = connection.description.clone();
    let tenant = connection.lock_key.clone();
    let requests = connection.client.stats().requests;
    connection.close()?;
    let live = live.map_err(Error::from)?;
    progress.finish();
    log_read(&target, &live.snapshot, requests, started.elapsed());
    let mut options = crate::session::options(&live, args.allow_deletes);
    let (store, passwords) = crate::session::passwords(
        &loaded.state,
        &args.passwords.fingerprints.password_fingerprints,
        &tenant,
        &mut crate::apply::fingerprint::VerifyCache::default(),
    )?;
    options.rotate_passwords = passwords.rotate;
    let decision = crate::session::decide(
        &loaded.state,
        &live,
        crate::session::PlanSource::Fresh,
        &options,
    )
    .map_err(Error::from)?;
    let mut plan = decision.plan.into_plan();
    crate::session::creatable(&loaded.state, &plan)?;
    plan.warnings.extend(loaded.notices);
    plan.warnings.extend(passwords.warnings);
    if args.passwords.adopt_passwords {
        let (adopt, warnings) = crate::apply::rotation::adoptable(&loaded.state, &plan, &store);
        plan.warnings.extend(warnings);
        if !adopt.is_empty() {
            plan.warnings.push(crate::plan::Warning {
                message: format!(
                    "{} password(s) with no fingerprint would be adopted as set by \
                     `apply --adopt-passwords` (plan records nothing)",
                    adopt.len()
                ),
                source: None,
            });
        }
    }
    let live_hash = crate::session::live_hash(&live.snapshot, &loaded.state);
    drop(live);
    let hash = loaded.hash;
    tracing::debug!(%target, changes = plan.changes.len(), "planned");
    let document = || {
        PlanDocument::new(&plan, hash.clone())
            .with_target(&target)
            .with_live_hash(live_hash.clone())
    };
    if let Some(path) = args.save {
        let mut json = serde_json::to_vec_pretty(&document()).map_err(io::Error::other)?;
        json.push(b'\n');
        write_atomic(path, &json)?;
    }
    match args.format {
        PlanFormat::Text => {
            // Warnings are diagnostics: stderr, hidden by -q. (The Markdown and JSON documents
            // carry them as data, said once, there.)
            if !args.quiet {
                render::warnings(&plan, err)?;
            }
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            render::text_without_warnings(&plan, out, color)?;
        }
        PlanFormat::Markdown => render::markdown(&plan, out)?,
        PlanFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &document()).map_err(io::Error::from)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(if args.detailed_exitcode && !plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
