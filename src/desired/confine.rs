//! What "inside the desired-state directory" means, decided once.
//!
//! A path is inside a root when its canonical form (every symlink resolved, `..` removed)
//! starts with the root's canonical form. Discovery uses this to follow symlinks that stay in
//! the directory and to refuse those that leave it; `{fromFile: PATH}` secrets use it to refuse
//! files outside the directory and outside `secrets.allowedDirs`.
//!
//! Secret files are read here and nowhere else: at most [`MAX_SECRET_FILE_BYTES`] (plus one
//! byte, to tell a file that is too large), regular files only, one line. No error carries any
//! of the file's content.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest secret file `fromFile` reads: 4 KiB.
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Why a `fromFile` secret cannot be used. Never carries the file's content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretFileError {
    /// The file (or a symlink's target) does not exist.
    #[error("no such file (or a dangling symlink)")]
    Missing,
    /// The operating system refused; its reason, lower-cased.
    #[error("{0}")]
    Io(String),
    /// The file resolves outside every allowed directory.
    #[error("it is outside the desired-state directory and every `secrets.allowedDirs` directory")]
    Outside,
    /// A directory, FIFO, device or socket.
    #[error("not a regular file")]
    NotRegular,
    /// Over [`MAX_SECRET_FILE_BYTES`].
    #[error("the file is larger than 4 KiB")]
    TooLarge,
    /// Not UTF-8.
    #[error("the file is not valid UTF-8")]
    NotUtf8,
    /// Something follows the first line.
    #[error("the file holds more than one line; a secret file holds one line")]
    SeveralLines,
    /// Nothing before the line break.
    #[error("the file is empty")]
    Empty,
}

/// The directories `fromFile` secrets may be read from, canonical: the desired-state
/// directory and each `secrets.allowedDirs` entry. The default holds none, so every file is
/// refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretDirs {
    roots: Vec<PathBuf>,
}

impl SecretDirs {
    /// `dir` (the desired-state directory) and `allowed` (relative to `dir`, or absolute).
    /// Returns, beside the set, the entries of `allowed` that are not directories, with why.
    #[must_use]
    pub fn new<'a>(
        dir: &Path,
        allowed: impl IntoIterator<Item = &'a str>,
    ) -> (SecretDirs, Vec<(usize, String)>) {
        let mut roots = Vec::new();
        let mut problems = Vec::new();
        if let Ok(root) = fs::canonicalize(dir) {
            roots.push(root);
        }
        for (i, entry) in allowed.into_iter().enumerate() {
            match fs::canonicalize(dir.join(entry)) {
                Ok(path) if path.is_dir() => roots.push(path),
                Ok(_) => problems.push((i, "not a directory".to_owned())),
                Err(e) => problems.push((i, io_reason(&e))),
            }
        }
        (SecretDirs { roots }, problems)
    }

    /// The directories `config` allows, beside `dir` (the desired-state directory, where
    /// `scimctl.yaml` is). Entries that are not directories are left out; validation reports
    /// them.
    #[must_use]
    pub fn for_config(dir: &Path, config: &crate::model::Config) -> SecretDirs {
        let allowed = &config.secrets.allowed_dirs;
        SecretDirs::new(dir, allowed.iter().map(|d| d.value.as_str())).0
    }

    /// Where `path` really is, when it is a regular file of at most 4 KiB inside an allowed
    /// directory. Reads nothing from the file.
    pub fn check(&self, path: &Path) -> Result<PathBuf, SecretFileError> {
        let real = fs::canonicalize(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SecretFileError::Missing,
            _ => SecretFileError::Io(io_reason(&e)),
        })?;
        if !self.roots.iter().any(|root| real.starts_with(root)) {
            return Err(SecretFileError::Outside);
        }
        let meta = fs::metadata(&real).map_err(|e| SecretFileError::Io(io_reason(&e)))?;
        if !meta.is_file() {
            return Err(SecretFileError::NotRegular);
        }
        if meta.len() > MAX_SECRET_FILE_BYTES {
            return Err(SecretFileError::TooLarge);
        }
        Ok(real)
    }

    /// The secret in `path`: its one line, without the line break (`\n` or `\r\n`).
    pub fn read(&self, path: &Path) -> Result<String, SecretFileError> {
        let real = self.check(path)?;
        let file = fs::File::open(&real).map_err(|e| SecretFileError::Io(io_reason(&e)))?;
        // The file may have been swapped since `check`: look again at what was opened.
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(SecretFileError::NotRegular);
        }
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SecretFileError::Io(io_reason(&e)))?;
        if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(SecretFileError::TooLarge);
        }
        let text = String::from_utf8(bytes).map_err(|_| SecretFileError::NotUtf8)?;
        one_line(&text).map(str::to_owned)
    }
}

/// The one line of a secret file: one trailing `\n` or `\r\n` is removed, and anything left
/// that breaks the line is refused.
fn one_line(text: &str) -> Result<&str, SecretFileError> {
    let value = text
        .strip_suffix('\n')
        .map_or(text, |rest| rest.strip_suffix('\r').unwrap_or(rest));
    if value.contains(['\n', '\r']) {
        return Err(SecretFileError::SeveralLines);
    }
    if value.is_empty() {
        return Err(SecretFileError::Empty);
    }
    Ok(value)
}

/// A short, lower-case reason for an I/O error, without the path.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => err.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(dir: &Path, allowed: &[&str]) -> SecretDirs {
        let (dirs, problems) = SecretDirs::new(dir, allowed.iter().copied());
        assert!(problems.is_empty(), "{problems:?}");
        dirs
    }

    #[test]
    fn one_line_rules() {
        assert_eq!(one_line("Pa55word!\n"), Ok("Pa55word!"));
        assert_eq!(one_line("Pa55word!\r\n"), Ok("Pa55word!"));
        assert_eq!(one_line(" Pa55 word! "), Ok(" Pa55 word! "));
        assert_eq!(one_line("a\n\n"), Err(SecretFileError::SeveralLines));
        assert_eq!(one_line("a\nb"), Err(SecretFileError::SeveralLines));
        assert_eq!(one_line("a\rb"), Err(SecretFileError::SeveralLines));
        assert_eq!(one_line("\n"), Err(SecretFileError::Empty));
        assert_eq!(one_line(""), Err(SecretFileError::Empty));
    }

    // Inside: read. Outside (by path, by `..`, by symlink): refused, unless an allowed dir.
    #[cfg(unix)]
    #[test]
    fn confined_to_the_directory_and_allowed_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let secrets = tmp.path().join("secrets");
        fs::create_dir_all(state.join("users")).unwrap();
        fs::create_dir_all(&secrets).unwrap();
        fs::write(state.join("users/in.txt"), "Inside-1!\n").unwrap();
        fs::write(secrets.join("out.txt"), "Outside-1!\n").unwrap();
        std::os::unix::fs::symlink(secrets.join("out.txt"), state.join("users/link.txt")).unwrap();

        let only = dirs(&state, &[]);
        assert_eq!(only.read(&state.join("users/in.txt")).unwrap(), "Inside-1!");
        assert_eq!(
            only.read(&state.join("users/../../secrets/out.txt")),
            Err(SecretFileError::Outside)
        );
        assert_eq!(
            only.read(&state.join("users/link.txt")),
            Err(SecretFileError::Outside)
        );
        assert_eq!(
            only.read(Path::new("/etc/passwd")),
            Err(SecretFileError::Outside)
        );
        assert_eq!(
            only.read(&state.join("users/missing.txt")),
            Err(SecretFileError::Missing)
        );
        assert_eq!(
            only.read(&state.join("users")),
            Err(SecretFileError::NotRegular)
        );

        let both = dirs(&state, &["../secrets"]);
        assert_eq!(
            both.read(&state.join("users/link.txt")).unwrap(),
            "Outside-1!"
        );
        assert_eq!(
            SecretDirs::default().read(&state.join("users/in.txt")),
            Err(SecretFileError::Outside)
        );

        let (_, problems) = SecretDirs::new(&state, ["nope", "users/in.txt"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn large_and_binary_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = dirs(tmp.path(), &[]);
        let big = tmp.path().join("big");
        fs::write(&big, "x".repeat(4097)).unwrap();
        assert_eq!(dirs.read(&big), Err(SecretFileError::TooLarge));
        let edge = tmp.path().join("edge");
        fs::write(&edge, "x".repeat(4096)).unwrap();
        assert_eq!(dirs.read(&edge).unwrap().len(), 4096);
        let binary = tmp.path().join("bin");
        fs::write(&binary, b"Hunter2\xff\n").unwrap();
        let err = dirs.read(&binary).unwrap_err();
        assert_eq!(err, SecretFileError::NotUtf8);
        assert!(!format!("{err} {err:?}").contains("Hunter2"));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            return; // no mkfifo on this machine
        }
        assert_eq!(
            dirs(tmp.path(), &[]).read(&fifo),
            Err(SecretFileError::NotRegular)
        );
    }
}
