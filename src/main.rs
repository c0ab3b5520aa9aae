//! The `scimctl` binary: parse the arguments once, set up logging to stderr from them, run
//! the command ([`scimctl::cli::parse`], then [`scimctl::cli::execute`]), return the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The handles lock per write, never for the whole command: log events from tokio worker
    // threads also write to stderr, and holding its lock here would block them forever.
    let mut stdout = std::io::LineWriter::new(std::io::stdout());
    // `args_os`: a path that is not UTF-8 is an argument like any other (`args` panics on it).
    let status = match scimctl::cli::parse(std::env::args_os(), &mut stdout, &mut std::io::stderr())
    {
        Ok(cli) => {
            init_logging(cli.log_level(), cli.log_format);
            scimctl::cli::execute(&cli, &mut stdout, &mut std::io::stderr())
        }
        Err(status) => status,
    };
    let _ = std::io::Write::flush(&mut stdout);
    ExitCode::from(status.code())
}

/// Logs go to stderr only; stdout carries results. `SCIMCTL_LOG` (tracing filter syntax)
/// overrides `level`, the one `-v`/`-q` chose; `format` is `--log-format`.
fn init_logging(level: &str, format: scimctl::cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("scimctl={level}")));
    // Colour only for a person at a terminal: log files and CI logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        scimctl::cli::LogFormat::Text => builder.with_ansi(ansi).try_init(),
        scimctl::cli::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}
