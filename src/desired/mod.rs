//! Loading desired state: the only place that reads the desired-state directory.
//!
//! [`load_dir`] finds every `*.yaml`/`*.yml` file under the directory (recursively, skipping
//! hidden entries), parses them in parallel, merges them in path order, reads `scimctl.yaml`,
//! and validates the whole. It returns a [`DesiredState`] only when no error remains; every
//! problem is reported at once with its `path:line:col`.

mod diagnostic;
mod document;
mod state;
pub mod validate;
pub mod yaml;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub use diagnostic::{Diagnostic, JsonDiagnostic, MAX_TEXT_LINES, Report, Severity};
pub use state::{Counts, DesiredState};
pub use validate::{Collected, Environment};
pub use yaml::Limits;

use crate::model::{FileId, SourceMap, Span};

use document::ParsedFile;

/// The configuration file's name, at the top of the directory.
pub const CONFIG_FILE: &str = "scimctl.yaml";

/// Why a directory could not be loaded. Every variant means "invalid desired state or
/// configuration" (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory does not exist or is not a directory.
    #[error("{path}: {why}")]
    Directory {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The directory holds problems; see the report.
    #[error("desired state is invalid: {} in {} {}", plural(.0.error_count(), "problem"), .0.files_with_errors(), if .0.files_with_errors() == 1 { "file" } else { "files" })]
    Invalid(Report),
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// A loaded, valid desired state and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The validated state.
    pub state: DesiredState,
    /// Warnings (never errors), sorted.
    pub warnings: Report,
}

/// The real process environment and filesystem, for password-source checks.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var_is_set(&self, name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }

    fn file_readable(&self, path: &Path) -> Result<(), String> {
        let meta = fs::metadata(path).map_err(|e| io_reason(&e))?;
        if !meta.is_file() {
            return Err("not a regular file".into());
        }
        fs::File::open(path).map(drop).map_err(|e| io_reason(&e))
    }
}

fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string().to_lowercase(),
    }
}

/// Loads and validates `dir` with the real environment and default limits.
pub fn load_dir(dir: &Path) -> Result<Loaded, LoadError> {
    load_dir_with(dir, &ProcessEnvironment, Limits::DEFAULT)
}

/// Loads and validates `dir`, asking `env` about password sources.
pub fn load_dir_with(
    dir: &Path,
    env: &dyn Environment,
    limits: Limits,
) -> Result<Loaded, LoadError> {
    let meta = fs::metadata(dir).map_err(|e| LoadError::Directory {
        path: dir.to_path_buf(),
        why: io_reason(&e),
    })?;
    if !meta.is_dir() {
        return Err(LoadError::Directory {
            path: dir.to_path_buf(),
            why: "not a directory".into(),
        });
    }
    let mut diagnostics = Vec::new();
    let mut sources = SourceMap::new();
    let mut files = Vec::new();
    discover(dir, &mut files, &mut diagnostics, &mut sources);
    files.sort();
    let config_path = [CONFIG_FILE, "scimctl.yml"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    let ids: Vec<FileId> = files.iter().map(|p| sources.add(p.clone())).collect();

    let parsed = parse_all(&files, &ids, limits);
    let mut collected = Collected::default();
    for file in parsed {
        collected.users.extend(file.users);
        collected.groups.extend(file.groups);
        collected.roles.extend(file.roles);
        collected.licenses.extend(file.licenses);
        diagnostics.extend(file.diagnostics);
    }
    if let Some(path) = config_path {
        let id = sources.add(path.clone());
        match read_limited(&path, limits) {
            Ok(bytes) => {
                let parsed = document::parse_config_file(id, &bytes, limits);
                collected.config = parsed.config;
                collected.target_span = parsed.target_span;
                diagnostics.extend(parsed.diagnostics);
            }
            Err(message) => diagnostics.push(Diagnostic::error(Span::file(id), message)),
        }
    }

    diagnostics.extend(validate::validate(&collected, &sources, env));
    let (errors, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    if !errors.is_empty() {
        // Warnings ride along so that one run shows everything.
        let mut all = errors;
        all.extend(warnings);
        return Err(LoadError::Invalid(Report::new(sources, all)));
    }
    let state = DesiredState::new(collected, sources.clone());
    Ok(Loaded {
        state,
        warnings: Report::new(sources, warnings),
    })
}

/// Loads desired state from files held in memory, as [`load_dir`] would load a directory
/// holding them: `(path, text)` pairs, where the path `scimctl.yaml` is the configuration.
/// Paths are kept as given, so plans made from it name stable sources. No password source
/// resolves (the environment is empty), so tests that need one use [`load_dir_with`].
#[cfg(test)]
pub(crate) fn load_texts(files: &[(&str, &str)]) -> Result<Loaded, LoadError> {
    struct Empty;
    impl Environment for Empty {
        fn var_is_set(&self, _: &str) -> bool {
            false
        }
        fn file_readable(&self, _: &Path) -> Result<(), String> {
            Err("no such file".into())
        }
    }
    let mut files = files.to_vec();
    files.sort_unstable();
    let mut sources = SourceMap::new();
    let mut collected = Collected::default();
    let mut diagnostics = Vec::new();
    for (path, text) in files {
        let id = sources.add(PathBuf::from(path));
        if path == CONFIG_FILE {
            let parsed = document::parse_config_file(id, text.as_bytes(), Limits::DEFAULT);
            collected.config = parsed.config;
            collected.target_span = parsed.target_span;
            diagnostics.extend(parsed.diagnostics);
        } else {
            let parsed = document::parse_resource_file(id, text.as_bytes(), Limits::DEFAULT);
            collected.users.extend(parsed.users);
            collected.groups.extend(parsed.groups);
            collected.roles.extend(parsed.roles);
            collected.licenses.extend(parsed.licenses);
            diagnostics.extend(parsed.diagnostics);
        }
    }
    diagnostics.extend(validate::validate(&collected, &sources, &Empty));
    let (errors, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    if !errors.is_empty() {
        return Err(LoadError::Invalid(Report::new(sources, errors)));
    }
    Ok(Loaded {
        state: DesiredState::new(collected, sources.clone()),
        warnings: Report::new(sources, warnings),
    })
}

/// Collects `*.yaml` / `*.yml` files under `dir`, skipping hidden entries and the
/// configuration file at the top. Symlinked directories are not followed (no loops); symlinked
/// files are read.
fn discover(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
    sources: &mut SourceMap,
) {
    let mut pending = vec![(dir.to_path_buf(), 0_usize)];
    while let Some((current, depth)) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                let id = sources.add(current.clone());
                diagnostics.push(Diagnostic::error(
                    Span::file(id),
                    format!("cannot read directory: {}", io_reason(&e)),
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < 32 {
                    pending.push((path, depth + 1));
                }
                continue;
            }
            let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            let is_config = depth == 0 && (name == CONFIG_FILE || name == "scimctl.yml");
            if is_yaml && !is_config && (kind.is_file() || path.is_file()) {
                files.push(path);
            }
        }
    }
}

/// Reads a file, refusing anything over the size limit before reading it.
fn read_limited(path: &Path, limits: Limits) -> Result<Vec<u8>, String> {
    let too_big = |len: u64| {
        #[allow(clippy::cast_precision_loss)] // sizes are shown rounded to 0.1 MiB
        let mib = |n: u64| n as f64 / f64::from(1 << 20);
        format!(
            "file is {:.1} MiB; the limit is {:.0} MiB per file, so split it into several files",
            mib(len),
            mib(limits.max_file_bytes)
        )
    };
    let file = fs::File::open(path).map_err(|e| format!("cannot read file: {}", io_reason(&e)))?;
    let len = file.metadata().map_or(0, |m| m.len());
    if len > limits.max_file_bytes {
        return Err(too_big(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` guards against a file that grows while it is read.
    file.take(limits.max_file_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {}", io_reason(&e)))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

fn parse_one(path: &Path, id: FileId, limits: Limits) -> ParsedFile {
    match read_limited(path, limits) {
        Ok(bytes) => document::parse_resource_file(id, &bytes, limits),
        Err(message) => ParsedFile {
            diagnostics: vec![Diagnostic::error(Span::file(id), message)],
            ..ParsedFile::default()
        },
    }
}

/// Parses every file, on as many threads as there are cores when there is enough to share.
/// Results come back in input order, so the merge is deterministic.
fn parse_all(files: &[PathBuf], ids: &[FileId], limits: Limits) -> Vec<ParsedFile> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
        .min(files.len() / 2)
        .max(1);
    if threads == 1 {
        return files
            .iter()
            .zip(ids)
            .map(|(p, id)| parse_one(p, *id, limits))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut slots: Vec<(usize, ParsedFile)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        done.push((i, parse_one(path, ids[i], limits)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                // A worker only panics on a bug; surface it rather than lose files silently.
                w.join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
            })
            .collect()
    });
    slots.sort_by_key(|(i, _)| *i);
    slots.into_iter().map(|(_, parsed)| parsed).collect()
}
