//! Loading desired state: the only place that reads the desired-state directory.
//!
//! [`load_dir`] finds every `*.yaml`/`*.yml` file under the directory (recursively, skipping
//! hidden entries and refusing, never skipping, anything it cannot read; see `discover`),
//! parses them in parallel, merges them in path order, reads `scimctl.yaml`,
//! and validates the whole. It returns a [`DesiredState`] only when no error remains; every
//! problem is reported at once with its `path:line:col`.

pub mod confine;
mod diagnostic;
mod document;
mod intern;
mod lookalike;
mod names;
mod state;
pub mod validate;
pub mod yaml;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};

pub use diagnostic::{
    Diagnostic, JsonDiagnostic, MAX_TEXT_LINES, Report, Severity, ValidateDocument,
};
pub use state::{Counts, DesiredState};
pub use validate::{Collected, Environment};
pub use yaml::Limits;

use crate::model::{FileId, SourceMap, Span};

use confine::{SecretDirs, io_reason};
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

    fn reads_passwords(&self) -> bool {
        true
    }
}

/// An environment in which every password source counts as resolvable, so that loading
/// for a plan reads no secret: a plan resolves a source only for a user it creates, or one
/// whose password it checks for rotation (issue 20), and says then if it cannot.
/// (A `fromFile` path is still checked against the allowed directories.)
#[derive(Clone, Copy, Debug, Default)]
pub struct SecretsDeferred;

impl Environment for SecretsDeferred {
    fn var_is_set(&self, _: &str) -> bool {
        true
    }

    fn file_readable(&self, _: &Path) -> Result<(), String> {
        Ok(())
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
    let root = fs::canonicalize(dir).map_err(|e| LoadError::Directory {
        path: dir.to_path_buf(),
        why: io_reason(&e),
    })?;
    let mut diagnostics = Vec::new();
    let mut sources = SourceMap::new();
    let Found {
        mut files,
        config: config_path,
    } = discover(dir, &root, &mut diagnostics, &mut sources);
    files.sort();
    let ids: Vec<FileId> = files.iter().map(|p| sources.add(p.clone())).collect();

    let mut collected = Collected::default();
    let mut digests = Vec::with_capacity(files.len());
    parse_all(&files, &ids, limits, READ_AHEAD_BYTES, |file| {
        digests.push(file.digest);
        collected.users.extend(file.users);
        collected.groups.extend(file.groups);
        collected.roles.extend(file.roles);
        collected.licenses.extend(file.licenses);
        diagnostics.extend(file.diagnostics);
    });
    // Files are merged in path order, the order of `ids`.
    for (id, digest) in ids.iter().zip(digests) {
        if let Some(d) = digest {
            sources.set_digest(*id, d);
        }
    }
    // The lists grew by doubling; what stays loaded should not keep the spare room.
    collected.users.shrink_to_fit();
    collected.groups.shrink_to_fit();
    collected.roles.shrink_to_fit();
    collected.licenses.shrink_to_fit();
    if let Some(path) = config_path {
        let id = sources.add(path.clone());
        match read_limited(&path, limits) {
            Ok(bytes) => {
                sources.set_digest(id, digest(&bytes));
                let parsed = document::parse_config_file(id, &bytes, limits);
                collected.config = parsed.config;
                collected.target_span = parsed.target_span;
                diagnostics.extend(parsed.diagnostics);
            }
            Err(message) => diagnostics.push(Diagnostic::error(Span::file(id), message)),
        }
    }

    let allowed = &collected.config.secrets.allowed_dirs;
    let (secret_dirs, bad_dirs) = SecretDirs::new(dir, allowed.iter().map(|d| d.value.as_str()));
    for (i, why) in bad_dirs {
        diagnostics.push(Diagnostic::error(
            allowed[i].span,
            format!("secrets.allowedDirs: `{}`: {why}", allowed[i].value),
        ));
    }
    let (found, indexes) = validate::check(&collected, &sources, env, Some(&secret_dirs));
    diagnostics.extend(found);
    let (errors, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    if !errors.is_empty() {
        // Warnings ride along so that one run shows everything.
        let mut all = errors;
        all.extend(warnings);
        return Err(LoadError::Invalid(Report::new(sources, all)));
    }
    let mut state = DesiredState::new(collected, sources.clone(), indexes);
    state.set_secret_dirs(secret_dirs);
    Ok(Loaded {
        state,
        warnings: Report::new(sources, warnings),
    })
}

/// An empty desired state with the default configuration: what `doctor --target URL`
/// checks against when there is no desired-state directory.
#[must_use]
pub fn empty() -> DesiredState {
    struct Nothing;
    impl Environment for Nothing {
        fn var_is_set(&self, _: &str) -> bool {
            false
        }
        fn file_readable(&self, _: &Path) -> Result<(), String> {
            Err("no such file".into())
        }
    }
    let collected = Collected::default();
    let sources = SourceMap::new();
    let (_, indexes) = validate::check(&collected, &sources, &Nothing, None);
    DesiredState::new(collected, sources, indexes)
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
        sources.set_digest(id, digest(text.as_bytes()));
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
    let (found, indexes) = validate::check(&collected, &sources, &Empty, None);
    diagnostics.extend(found);
    let (errors, warnings): (Vec<_>, Vec<_>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    if !errors.is_empty() {
        return Err(LoadError::Invalid(Report::new(sources, errors)));
    }
    Ok(Loaded {
        state: DesiredState::new(collected, sources.clone(), indexes),
        warnings: Report::new(sources, warnings),
    })
}

/// Most directory levels below the desired-state directory that are read; a deeper directory
/// is an error rather than skipped.
pub const MAX_DEPTH: usize = 32;

/// Whether `name` is a YAML file name: `.yaml` or `.yml`, in any case.
fn is_yaml_name(name: &str) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Whether `name` (at the top of the directory) names the configuration, in any case.
fn is_config_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == CONFIG_FILE || lower == "scimctl.yml"
}

/// What [`discover`] found: the resource files, and the configuration file if there is one.
#[derive(Debug, Default)]
struct Found {
    files: Vec<PathBuf>,
    config: Option<PathBuf>,
}

/// Collects the YAML files under `dir` (whose canonical form is `root`), skipping hidden
/// entries, and finds the configuration file at the top. Nothing else is skipped silently:
///
/// - a symlink that stays inside the directory is followed, each real directory and file
///   once (so a cycle ends, and a file reached twice is read once);
/// - a symlink that leaves the directory (to a directory, or with a YAML name), a dangling
///   symlink and a symlink loop are errors;
/// - an entry with a YAML name that is not a regular file (a FIFO, socket or device), or a
///   configuration file that is not one, is an error;
/// - a directory more than [`MAX_DEPTH`] levels down is an error.
#[allow(clippy::too_many_lines)] // one walk, one decision per kind of entry
fn discover(
    dir: &Path,
    root: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    sources: &mut SourceMap,
) -> Found {
    let mut found = Found::default();
    let mut problem = |path: PathBuf, message: String| {
        let id = sources.add(path);
        diagnostics.push(Diagnostic::error(Span::file(id), message));
    };
    let mut seen_dirs = HashSet::from([root.to_path_buf()]);
    let mut seen_files = HashSet::new();
    // (path as named, its canonical form, depth)
    let mut pending = vec![(dir.to_path_buf(), root.to_path_buf(), 0_usize)];
    while let Some((current, real_dir, depth)) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                problem(current, format!("cannot read directory: {}", io_reason(&e)));
                continue;
            }
        };
        let mut entries: Vec<_> = entries
            .filter_map(|entry| match entry {
                Ok(entry) => Some(entry),
                Err(e) => {
                    problem(
                        current.clone(),
                        format!("cannot read directory: {}", io_reason(&e)),
                    );
                    None
                }
            })
            .collect();
        // Reverse order on the stack: directories are read in name order, so which of two
        // names for one file is used does not depend on the filesystem.
        entries.sort_by_key(|e| std::cmp::Reverse(e.file_name()));
        for entry in entries {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let yaml = is_yaml_name(&name);
            let is_config = depth == 0 && is_config_name(&name);
            let Ok(kind) = entry.file_type().map_err(|e| {
                problem(path.clone(), format!("cannot read: {}", io_reason(&e)));
            }) else {
                continue;
            };
            let (meta, real, leaves) = if kind.is_symlink() {
                let real = match fs::canonicalize(&path) {
                    Ok(real) => real,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        problem(path, "dangling symlink: its target does not exist".into());
                        continue;
                    }
                    Err(e) => {
                        problem(path, format!("cannot follow symlink: {}", io_reason(&e)));
                        continue;
                    }
                };
                match fs::metadata(&real) {
                    Ok(meta) => {
                        let leaves = !real.starts_with(root);
                        (meta, real, leaves)
                    }
                    Err(e) => {
                        problem(path, format!("cannot follow symlink: {}", io_reason(&e)));
                        continue;
                    }
                }
            } else {
                match entry.metadata() {
                    Ok(meta) => (meta, real_dir.join(&*name), false),
                    Err(e) => {
                        problem(path, format!("cannot read: {}", io_reason(&e)));
                        continue;
                    }
                }
            };
            let outside = || {
                format!(
                    "symlink leads outside the desired-state directory, to {}; scimctl reads \
                     nothing outside it",
                    real.display()
                )
            };
            if meta.is_dir() && !is_config {
                if leaves {
                    problem(path, outside());
                } else if depth >= MAX_DEPTH {
                    problem(
                        path,
                        format!(
                            "directory is more than {MAX_DEPTH} levels deep; scimctl reads \
                             {MAX_DEPTH} levels"
                        ),
                    );
                } else if seen_dirs.insert(real.clone()) {
                    pending.push((path, real, depth + 1));
                }
                // A directory seen before (a symlink back up the tree, or a second name for
                // one directory) has been or will be read under its first name.
            } else if !(yaml || is_config) {
                // Not YAML: not read, whatever it is.
            } else if leaves {
                problem(path, outside());
            } else if !meta.is_file() {
                problem(
                    path,
                    "not a regular file (a directory, FIFO, socket or device); scimctl reads \
                     only regular YAML files"
                        .into(),
                );
            } else if is_config {
                if let Some(first) = &found.config {
                    let first = first.display().to_string();
                    problem(
                        path,
                        format!("a second configuration file; {first} is the configuration"),
                    );
                } else {
                    found.config = Some(path);
                }
            } else if seen_files.insert(real) {
                found.files.push(path);
            }
        }
    }
    found
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

/// SHA-256 of a file's bytes, recorded in the [`SourceMap`] for plans to name the state by.
fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

fn parse_one(path: &Path, id: FileId, limits: Limits) -> ParsedFile {
    match read_limited(path, limits) {
        Ok(bytes) => ParsedFile {
            digest: Some(digest(&bytes)),
            ..document::parse_resource_file(id, &bytes, limits)
        },
        Err(message) => ParsedFile {
            diagnostics: vec![Diagnostic::error(Span::file(id), message)],
            ..ParsedFile::default()
        },
    }
}

/// Most YAML, in bytes, that threads may have read ahead of the file being merged. Files are
/// merged in path order as soon as they are parsed, so memory holds the merged state plus the
/// entries of at most this much YAML waiting for their turn (plus the file the merge waits for,
/// whatever its size), however many files the directory has. 16 MiB lets two files of the
/// largest size be parsed at once, and gives 100-user files a lead of some 350 files, so a
/// slow file rarely stops the other threads.
const READ_AHEAD_BYTES: u64 = 16 << 20;

/// Parses every file, on as many threads as there are cores when there is enough to share,
/// and hands each result to `merge` in input order, so the merge is deterministic.
///
/// Each result is merged and dropped as soon as it and every file before it are done, so no
/// list of every file's values is ever built; threads wait rather than read more than
/// `read_ahead` bytes ahead of the merge ([`READ_AHEAD_BYTES`] when loading).
fn parse_all(
    files: &[PathBuf],
    ids: &[FileId],
    limits: Limits,
    read_ahead: u64,
    mut merge: impl FnMut(ParsedFile),
) {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8)
        .min(files.len() / 2)
        .max(1);
    if threads == 1 {
        for (path, id) in files.iter().zip(ids) {
            merge(parse_one(path, *id, limits));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let gate = Gate::new(read_ahead);
    let (sender, receiver) = mpsc::channel::<(usize, u64, ParsedFile)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let sender = sender.clone();
            let (next, gate) = (&next, &gate);
            scope.spawn(move || {
                // A panicking worker stops the others, so the merge below cannot wait forever.
                let _stop = gate.stop_on_drop_if_panicking();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    // A file that cannot be read costs nothing ahead; parsing reports it.
                    let bytes = fs::metadata(path).map_or(0, |m| m.len());
                    if !gate.admit(i, bytes) {
                        break;
                    }
                    if sender
                        .send((i, bytes, parse_one(path, ids[i], limits)))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // A panic in `merge` must release the workers too, or the scope would never end.
        let _stop = gate.stop_on_drop_if_panicking();
        let mut waiting: BTreeMap<usize, (u64, ParsedFile)> = BTreeMap::new();
        let mut merged = 0;
        while merged < files.len() {
            let (bytes, parsed) = if let Some(ready) = waiting.remove(&merged) {
                ready
            } else {
                // Every sender gone before the last file: a worker panicked; the scope
                // re-raises that panic once it has joined the threads.
                let Ok((i, bytes, parsed)) = receiver.recv() else {
                    break;
                };
                if i != merged {
                    waiting.insert(i, (bytes, parsed));
                    continue;
                }
                (bytes, parsed)
            };
            merge(parsed);
            merged += 1;
            gate.merged(merged, bytes);
        }
    });
}

/// Keeps parsing threads within a byte budget of the merge.
struct Gate {
    budget: u64,
    state: Mutex<GateState>,
    progress: Condvar,
}

#[derive(Debug)]
struct GateState {
    /// Files merged so far: the next file to merge is this index.
    merged: usize,
    /// Bytes of the files admitted and not merged yet.
    ahead: u64,
    /// Everything must stop (a thread panicked).
    stopped: bool,
}

impl Gate {
    fn new(budget: u64) -> Gate {
        Gate {
            budget,
            state: Mutex::new(GateState {
                merged: 0,
                ahead: 0,
                stopped: false,
            }),
            progress: Condvar::new(),
        }
    }

    /// Waits until file `index` of `bytes` may be parsed: it is the next file to merge, or it
    /// fits in the budget with the files already ahead. `false` when parsing must stop instead.
    fn admit(&self, index: usize, bytes: u64) -> bool {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return false;
            }
            if index == state.merged || state.ahead.saturating_add(bytes) <= self.budget {
                state.ahead = state.ahead.saturating_add(bytes);
                return true;
            }
            state = self
                .progress
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records that `count` files are merged, the last of them `bytes` long.
    fn merged(&self, count: usize, bytes: u64) {
        let mut state = self.lock();
        state.merged = count;
        state.ahead = state.ahead.saturating_sub(bytes);
        self.progress.notify_all();
    }

    fn stop(&self) {
        self.lock().stopped = true;
        self.progress.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A guard that stops everything if it is dropped by a panic.
    fn stop_on_drop_if_panicking(&self) -> StopOnPanic<'_> {
        StopOnPanic(self)
    }
}

struct StopOnPanic<'g>(&'g Gate);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Files come back in input order whatever thread parsed them, each exactly once, also
    // when the read-ahead budget holds threads back: none, one file (about 30 bytes), or
    // every file.
    #[test]
    fn parse_all_merges_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        let mut sources = SourceMap::new();
        for i in 0..57 {
            let path = dir.path().join(format!("r{i:02}.yaml"));
            fs::write(&path, format!("roles:\n  - name: role-{i}\n")).unwrap();
            files.push(path);
        }
        let ids: Vec<FileId> = files.iter().map(|p| sources.add(p.clone())).collect();
        let expected: Vec<String> = (0..57).map(|i| format!("role-{i}")).collect();
        for read_ahead in [0, 40, READ_AHEAD_BYTES] {
            let mut names = Vec::new();
            parse_all(&files, &ids, Limits::DEFAULT, read_ahead, |file| {
                assert!(file.diagnostics.is_empty(), "{:?}", file.diagnostics);
                names.extend(file.roles.into_iter().map(|r| r.value.name.value));
            });
            assert_eq!(names, expected, "read_ahead {read_ahead}");
        }
    }

    // A panic while merging reaches the caller instead of leaving parsing threads waiting.
    #[test]
    fn a_panicking_merge_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = (0..40)
            .map(|i| {
                let path = dir.path().join(format!("r{i:02}.yaml"));
                fs::write(&path, "roles: []\n").unwrap();
                path
            })
            .collect();
        let ids: Vec<FileId> = (0..40).map(FileId).collect();
        let result = std::panic::catch_unwind(|| {
            parse_all(&files, &ids, Limits::DEFAULT, 64, |_| {
                panic!("merge failed")
            });
        });
        assert!(result.is_err());
    }

    // The gate admits files while they fit in the budget, always admits the file the merge
    // waits for, and releases every waiter when told to stop.
    #[test]
    fn gate_budget_and_stop() {
        let gate = Gate::new(100);
        assert!(
            gate.admit(0, 500),
            "the next file to merge goes in whatever its size"
        );
        assert!(!gate.lock().stopped);
        std::thread::scope(|scope| {
            // 500 bytes are ahead: file 1 must wait until file 0 is merged.
            let waiter = scope.spawn(|| gate.admit(1, 60));
            gate.merged(1, 500);
            assert!(waiter.join().unwrap());
        });
        assert!(gate.admit(2, 40), "60 + 40 fit in 100");
        assert_eq!(gate.lock().ahead, 100);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| gate.admit(3, 1));
            gate.stop();
            assert!(!waiter.join().unwrap());
        });
        gate.merged(3, 100);
        assert!(!gate.admit(3, 1), "a stopped gate stays stopped");
    }

    /// Loads `dir` with the real environment; the error text (or the user count).
    fn load_text(dir: &Path) -> Result<usize, String> {
        match load_dir(dir) {
            Ok(loaded) => Ok(loaded.state.users.len()),
            Err(LoadError::Invalid(report)) => Err(report
                .diagnostics()
                .iter()
                .map(|d| {
                    format!(
                        "{}: {}",
                        report
                            .sources()
                            .path(d.span.file)
                            .map_or(String::new(), |p| p.display().to_string()),
                        d.message
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")),
            Err(e) => Err(e.to_string()),
        }
    }

    fn users(dir: &Path, file: &str, names: &[&str]) {
        let path = dir.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::from("users:\n");
        for n in names {
            text.push_str("  - userName: ");
            text.push_str(n);
            text.push_str("@x.example\n");
        }
        fs::write(path, text).unwrap();
    }

    #[cfg(unix)]
    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).unwrap();
    }

    // A symlinked directory that stays inside is read; its files count once.
    #[cfg(unix)]
    #[test]
    fn symlinked_directory_inside_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        users(&dir, "shared/c.yaml", &["c1", "c2"]);
        users(&dir, "users/a.yaml", &["a1"]);
        symlink("../shared", dir.join("users/contractors"));
        symlink("a.yaml", dir.join("users/same.yaml"));
        assert_eq!(load_text(&dir), Ok(3));
    }

    // A symlink leaving the directory, a dangling one and a loop are errors naming the path.
    #[cfg(unix)]
    #[test]
    fn symlinks_leaving_dangling_or_looping_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        users(&dir, "users/a.yaml", &["a1"]);
        users(tmp.path(), "shared/c.yaml", &["c1"]);
        fs::write(tmp.path().join("secret.yaml"), "Hunter2-Secret-Line\n").unwrap();
        symlink("../../shared", dir.join("users/contractors"));
        symlink(tmp.path().join("secret.yaml"), dir.join("users/x.yaml"));
        symlink("nowhere", dir.join("users/gone.yaml"));
        symlink("loop2", dir.join("users/loop1"));
        symlink("loop1", dir.join("users/loop2"));
        let err = load_text(&dir).unwrap_err();
        assert!(
            err.contains("users/contractors: symlink leads outside"),
            "{err}"
        );
        assert!(err.contains("users/x.yaml: symlink leads outside"), "{err}");
        assert!(err.contains("users/gone.yaml: dangling symlink"), "{err}");
        assert!(err.contains("users/loop1: cannot follow symlink"), "{err}");
        assert!(!err.contains("Hunter2"), "{err}");
    }

    // A symlink back up the tree is followed once: no hang, no duplicate users.
    #[cfg(unix)]
    #[test]
    fn a_cycle_is_read_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        users(&dir, "users/a.yaml", &["a1"]);
        symlink("..", dir.join("users/up"));
        assert_eq!(load_text(&dir), Ok(1));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_named_yaml_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        users(tmp.path(), "users/a.yaml", &["a1"]);
        let made = std::process::Command::new("mkfifo")
            .arg(tmp.path().join("users/x.yaml"))
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo here
        }
        let err = load_text(tmp.path()).unwrap_err();
        assert!(err.contains("users/x.yaml: not a regular file"), "{err}");
    }

    #[test]
    fn too_deep_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let ok: PathBuf = (0..MAX_DEPTH).map(|i| format!("d{i}")).collect();
        users(
            tmp.path(),
            &ok.join("a.yaml").display().to_string(),
            &["a1"],
        );
        assert_eq!(load_text(tmp.path()), Ok(1));
        users(
            tmp.path(),
            &ok.join("deeper/b.yaml").display().to_string(),
            &["b1"],
        );
        let err = load_text(tmp.path()).unwrap_err();
        assert!(
            err.contains("deeper: directory is more than 32 levels deep"),
            "{err}"
        );
    }

    #[test]
    fn upper_case_extensions_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        users(tmp.path(), "a.YAML", &["a1"]);
        users(tmp.path(), "b.YML", &["b1"]);
        users(tmp.path(), "c.Yaml", &["c1"]);
        fs::write(
            tmp.path().join("SCIMCTL.YAML"),
            "protected: {users: [a1@x.example]}\n",
        )
        .unwrap();
        let loaded = load_dir(tmp.path()).unwrap();
        assert_eq!(loaded.state.users.len(), 3);
        assert_eq!(loaded.state.config.protected.users.len(), 1);
    }

    // A configuration that cannot be read is an error, never the defaults.
    #[cfg(unix)]
    #[test]
    fn an_unreadable_configuration_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        users(tmp.path(), "a.yaml", &["a1"]);
        symlink("nowhere.yaml", tmp.path().join(CONFIG_FILE));
        let err = load_text(tmp.path()).unwrap_err();
        assert!(err.contains("scimctl.yaml: dangling symlink"), "{err}");
        fs::remove_file(tmp.path().join(CONFIG_FILE)).unwrap();
        fs::create_dir(tmp.path().join(CONFIG_FILE)).unwrap();
        let err = load_text(tmp.path()).unwrap_err();
        assert!(err.contains("scimctl.yaml: not a regular file"), "{err}");
        fs::remove_dir(tmp.path().join(CONFIG_FILE)).unwrap();
        fs::write(tmp.path().join(CONFIG_FILE), "{}\n").unwrap();
        fs::write(tmp.path().join("scimctl.yml"), "{}\n").unwrap();
        let err = load_text(tmp.path()).unwrap_err();
        assert!(err.contains("a second configuration file"), "{err}");
    }

    // fromFile: outside the directory, too large or missing is an error at the YAML position;
    // an allowed directory is accepted.
    #[test]
    fn password_files_are_confined() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir_all(tmp.path().join("secrets")).unwrap();
        fs::write(tmp.path().join("secrets/p"), "Pa55word-Secret!\n").unwrap();
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("big"), "x".repeat(5 * 1024)).unwrap();
        let yaml = "users:\n  - userName: a@x.example\n    password: {fromFile: /etc/passwd}\n  - userName: b@x.example\n    password: {fromFile: ../secrets/p}\n  - userName: c@x.example\n    password: {fromFile: big}\n";
        fs::write(dir.join("u.yaml"), yaml).unwrap();
        let err = load_text(&dir).unwrap_err();
        assert!(
            err.contains("password file `/etc/passwd` is refused: it is outside"),
            "{err}"
        );
        assert!(
            err.contains("password file `../secrets/p` is refused: it is outside"),
            "{err}"
        );
        assert!(
            err.contains("password file `big` is refused: the file is larger than 4 KiB"),
            "{err}"
        );
        fs::write(
            dir.join("u.yaml"),
            &yaml[..yaml.find("  - userName: c@").unwrap()],
        )
        .unwrap();
        fs::write(
            dir.join("u.yaml"),
            fs::read_to_string(dir.join("u.yaml"))
                .unwrap()
                .replace("/etc/passwd", "../secrets/p"),
        )
        .unwrap();
        fs::write(
            dir.join(CONFIG_FILE),
            "secrets: {allowedDirs: [../secrets]}\n",
        )
        .unwrap();
        assert_eq!(load_text(&dir), Ok(2));
        fs::write(dir.join(CONFIG_FILE), "secrets: {allowedDirs: [../nope]}\n").unwrap();
        let err = load_text(&dir).unwrap_err();
        assert!(
            err.contains("secrets.allowedDirs: `../nope`: no such file"),
            "{err}"
        );
    }
}
