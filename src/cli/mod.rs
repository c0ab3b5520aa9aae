//! The command line: parse once, run the command, print its error once, return the exit
//! status (docs/contract.md §2).
//!
//! `run` writes results to `out` and diagnostics to `err`, and returns the exit status; the
//! binary only wires it to the real streams. The flags live in `args.rs` (clap
//! derive), each command in a file of its own (`validate.rs`, `schema.rs`, `plan.rs`,
//! `apply.rs`, `watch.rs`, `explain.rs`, `export.rs`, `doctor.rs`, `sandbox.rs`). The one
//! tokio runtime of a run and the guard that closes a connection on every exit path are in
//! `runtime.rs`; the read-only tenant read `explain` and `export` share is in `tenant.rs`.

use std::io::{self, Write};

use clap::{CommandFactory as _, Parser as _};

use crate::desired::LoadError;
use crate::error::{Error, ExitStatus};

mod apply;
mod args;
mod doctor;
mod explain;
mod export;
mod plan;
mod reading;
mod runtime;
mod sandbox;
mod schema;
mod tenant;
mod validate;
mod watch;

pub use args::{
    Cli, Command, DoctorFormat, ExplainFormat, LogFormat, PlanFormat, SandboxCommand, ServeArgs,
    ServeFlavor, TargetArgs, ValidateFormat, WatchArgs,
};
use runtime::Runtime;

/// Parses `args` and runs the command. Usage errors exit 64; `--help` and `--version` exit 0.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    match parse(args, out, err) {
        Ok(cli) => execute(&cli, out, err),
        Err(status) => status,
    }
}

/// Parses `args` (any bytes: a path need not be UTF-8), the first half of [`run`]. On a
/// usage error, `--help` or `--version` it prints what clap says and returns the exit status
/// instead (64, or 0). The binary calls the two halves itself, to set up logging from the
/// parsed flags in between.
pub fn parse<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> Result<Cli, ExitStatus>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map_err(|e| {
        let (status, stream): (ExitStatus, &mut dyn Write) = if e.use_stderr() {
            (ExitStatus::Usage, err)
        } else {
            (ExitStatus::Success, out)
        };
        let _ = write!(stream, "{}", e.render());
        status
    })
}

/// Runs a parsed command, printing its error once.
pub fn execute(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitStatus {
    let runtime = Runtime::lazy();
    match dispatch(cli, &runtime, out, err) {
        Ok(status) => status,
        // A closed pipe (`scimctl ... | head`) is not an error worth a message: the reader
        // has all it wanted, and the program ends quietly with 0, as ripgrep does.
        Err(Failure::Io(e)) if is_broken_pipe(&e) => ExitStatus::Success,
        Err(Failure::Io(e)) => {
            let _ = writeln!(err, "error: {e}");
            ExitStatus::Failure
        }
        Err(Failure::Error(e)) => {
            if let Error::Load(LoadError::Invalid(report)) = &e {
                let _ = report.write_text(err);
            }
            let _ = writeln!(err, "error: {e}");
            e.exit_status()
        }
    }
}

/// Whether `e` is a write to a closed pipe, also when a JSON serialiser wrapped it (writers
/// convert its errors with `io::Error::from`, which keeps the kind; this also sees through
/// one wrapped with `io::Error::other`).
fn is_broken_pipe(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<serde_json::Error>())
            .is_some_and(|json| json.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
}

/// `scimctl plan`, its flags turned into [`plan::PlanArgs`].
fn plan_command(
    cli: &Cli,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    let Command::Plan {
        dir,
        target,
        format,
        out: save,
        detailed_exitcode,
        allow_deletes,
        passwords,
    } = &cli.command
    else {
        unreachable!("plan_command is called for plan only")
    };
    plan::plan_cmd(
        &plan::PlanArgs {
            dir,
            target: target.overrides(),
            format: *format,
            save: save.as_deref(),
            detailed_exitcode: *detailed_exitcode,
            allow_deletes: *allow_deletes,
            quiet: cli.quiet,
            passwords,
        },
        runtime,
        out,
        err,
    )
}

/// Runs the command `cli` names.
fn dispatch(
    cli: &Cli,
    runtime: &Runtime,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, Failure> {
    match &cli.command {
        Command::Validate { dir, format } => validate::validate_cmd(dir, *format, out, err),
        Command::Schema { out: dir, check } => schema::schema_cmd(dir, *check, out),
        generated @ (Command::Completions { .. } | Command::Man) => completions(generated, out),
        Command::Sandbox {
            command: SandboxCommand::Serve(args),
        } => sandbox::sandbox_serve(args, runtime, out),
        Command::Plan { .. } => plan_command(cli, runtime, out, err),
        Command::Apply {
            dir,
            plan,
            target,
            yes,
            allow_deletes,
            audit_log,
            password_file,
            lock_timeout,
            passwords,
            no_bulk,
        } => apply::apply_cmd(
            &apply::ApplyArgs {
                dir,
                saved: plan.as_deref(),
                target: crate::target::Overrides {
                    no_bulk: *no_bulk,
                    ..target.overrides()
                },
                yes: *yes,
                allow_deletes: *allow_deletes,
                audit_log,
                password_file: password_file.as_deref(),
                lock_timeout: *lock_timeout,
                quiet: cli.quiet,
                passwords,
            },
            runtime,
            out,
            err,
        ),
        Command::Watch(args) => watch::watch_cmd(args, runtime, out),
        Command::Explain {
            kind,
            name,
            dir,
            format,
            live,
            target,
        } => explain::explain_cmd(
            &explain::ExplainArgs {
                kind: *kind,
                name,
                dir,
                format: *format,
                live: *live || target.target.is_some(),
                target: target.overrides(),
                quiet: cli.quiet,
            },
            runtime,
            out,
            err,
        ),
        Command::Export {
            target,
            out: dir,
            from,
            include,
            exclude,
            force,
        } => export::export_cmd(
            &export::ExportArgs {
                dir,
                from: from.as_deref(),
                target: target.overrides(),
                filters: crate::export::Filters {
                    include: include.clone(),
                    exclude: exclude.clone(),
                },
                force: *force,
                quiet: cli.quiet,
            },
            &Runtime::lazy_one_thread(),
            err,
        ),
        Command::Doctor {
            dir,
            target,
            format,
        } => doctor::doctor_cmd(
            &doctor::DoctorArgs {
                dir,
                target: target.overrides(),
                format: *format,
                quiet: cli.quiet,
            },
            runtime,
            out,
            err,
        ),
    }
}

/// `completions SHELL` (by `clap_complete`) or `man` (by `clap_mangen`), on `out`.
fn completions(command: &Command, out: &mut dyn Write) -> Result<ExitStatus, Failure> {
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "scimctl", out);
        }
        _ => clap_mangen::Man::new(Cli::command()).render(out)?,
    }
    out.flush()?;
    Ok(ExitStatus::Success)
}

/// An error from a command, or a failed write to the output streams.
pub(crate) enum Failure {
    Error(Error),
    Io(io::Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Error(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Io(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(args: &[&str]) -> (ExitStatus, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let status = run(
            std::iter::once("scimctl").chain(args.iter().copied()),
            &mut out,
            &mut err,
        );
        (
            status,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    // Usage errors exit 64, help exits 0, unfinished commands exit 1 with a clear message.
    #[test]
    fn exit_codes_for_usage() {
        assert_eq!(run_args(&["frobnicate"]).0, ExitStatus::Usage);
        assert_eq!(run_args(&["plan", "--format", "yaml"]).0, ExitStatus::Usage);
        for rate in ["1.5", "-0.1", "NaN", "often"] {
            for flag in ["--error-rate", "--drop-rate", "--drop-after-rate"] {
                let arg = format!("{flag}={rate}");
                let (status, _, err) = run_args(&["sandbox", "serve", &arg]);
                assert_eq!(status, ExitStatus::Usage, "{flag} {rate}");
                assert!(err.contains("is not a fraction between 0 and 1"), "{err}");
            }
        }
        let (status, out, _) = run_args(&["--help"]);
        assert_eq!(status, ExitStatus::Success);
        assert!(out.contains("validate"));
        let (status, _, _) = run_args(&["doctor", "--format", "yaml"]);
        assert_eq!(status, ExitStatus::Usage);
    }
}
