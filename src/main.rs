//! The `scimctl` binary: logging to stderr, then [`scimctl::cli::run`], then the exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    init_logging();
    // The handles lock per write, never for the whole command: log events from tokio worker
    // threads also write to stderr, and holding its lock here would block them forever.
    let mut stdout = std::io::LineWriter::new(std::io::stdout());
    let status = scimctl::cli::run(std::env::args_os(), &mut stdout, &mut std::io::stderr());
    let _ = std::io::Write::flush(&mut stdout);
    ExitCode::from(status.code())
}

/// Logs go to stderr only; stdout carries results. `SCIMCTL_LOG` (tracing filter syntax)
/// overrides the level chosen by `-v`/`-q`.
fn init_logging() {
    // `args_os`: a path that is not UTF-8 is an argument like any other (`args` panics on it).
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let verbosity = args
        .iter()
        .take_while(|a| *a != "--")
        .map(|a| match a.as_str() {
            "--verbose" => 1,
            s if s.starts_with('-') && !s.starts_with("--") && s[1..].chars().all(|c| c == 'v') => {
                s.len() - 1
            }
            _ => 0,
        })
        .sum::<usize>();
    let quiet = args.iter().any(|a| a == "-q" || a == "--quiet");
    let level = match (quiet, verbosity) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCIMCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("scimctl={level}")));
    // Colour only for a person at a terminal: log files and CI logs get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}
