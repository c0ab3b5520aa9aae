//! Putting an export's files into a directory, the only filesystem code of `export`.
//!
//! A directory that already holds anything is refused unless forced, so an export never
//! silently mixes with or overwrites someone's desired state. Forced, the export replaces
//! the directory's desired state: every YAML file the loader would read (`*.yaml`, `*.yml`,
//! outside hidden directories) that the export does not write is removed, since a stale
//! file would otherwise still be loaded; other files (`.git`, a README) stay. Every file is
//! written to a hidden temporary file first (which the loader skips), and renamed into place
//! only once all of them are written, so a failure leaves the old files, not half of them.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The directory holds files and `--force` was not given.
    #[error(
        "{} is not empty; export into a new or empty directory, or pass --force to replace the YAML files in it",
        path.display()
    )]
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{}: {message}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl WriteError {
    /// Whether this is a refusal (a safety rule: exit 4) rather than a failure.
    #[must_use]
    pub fn is_refusal(&self) -> bool {
        matches!(self, WriteError::NotEmpty { .. })
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WriteError + '_ {
    move |e| WriteError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Checks that `dir` may be written: absent, empty, or `force`.
pub fn check_dir(dir: &Path, force: bool) -> Result<(), WriteError> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(WriteError::Io {
                path: dir.to_path_buf(),
                message: "not a directory".into(),
            });
        }
        Ok(_) => {}
    }
    let empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
    if empty || force {
        Ok(())
    } else {
        Err(WriteError::NotEmpty {
            path: dir.to_path_buf(),
        })
    }
}

/// What [`write_files`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Files written.
    pub written: usize,
    /// Stale YAML files removed (only with `force`).
    pub removed: usize,
}

/// Writes `files` (relative path with `/` → content) under `dir`, atomically per file and
/// all-or-nothing before the renames (see the module docs).
pub fn write_files(
    dir: &Path,
    files: &BTreeMap<String, String>,
    force: bool,
) -> Result<Written, WriteError> {
    let mut stager = Stager::new(dir, force)?;
    for (rel, content) in files {
        stager.stage(rel, content)?;
    }
    stager.commit()
}

/// Files being written under a directory one at a time, each to a hidden temporary file,
/// and put in place together by [`Stager::commit`] (see the module docs). Dropped before the
/// commit, or after a file failed, it removes the temporary files: the directory keeps its
/// old files, not half of the new ones.
#[derive(Debug)]
pub struct Stager {
    dir: PathBuf,
    force: bool,
    /// (temporary file, final path) of every file staged so far.
    staged: Vec<(PathBuf, PathBuf)>,
}

impl Stager {
    /// Checks that `dir` may be written ([`check_dir`]) and creates it.
    pub fn new(dir: &Path, force: bool) -> Result<Stager, WriteError> {
        check_dir(dir, force)?;
        fs::create_dir_all(dir).map_err(io(dir))?;
        Ok(Stager {
            dir: dir.to_path_buf(),
            force,
            staged: Vec::new(),
        })
    }

    /// Writes `content` to the temporary file of `rel` (a relative path with `/`).
    pub fn stage(&mut self, rel: &str, content: &str) -> Result<(), WriteError> {
        let path = self.dir.join(rel);
        let parent = path.parent().unwrap_or(&self.dir);
        fs::create_dir_all(parent).map_err(io(parent))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.export-tmp"));
        let mut file = fs::File::create(&tmp).map_err(io(&tmp))?;
        self.staged.push((tmp.clone(), path));
        file.write_all(content.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))
    }

    /// Renames every staged file into place, then (forced) removes the stale YAML files.
    pub fn commit(mut self) -> Result<Written, WriteError> {
        let staged = std::mem::take(&mut self.staged);
        for (tmp, path) in &staged {
            fs::rename(tmp, path).map_err(io(path))?;
        }
        let mut removed = 0;
        if self.force {
            let keep: std::collections::HashSet<&PathBuf> =
                staged.iter().map(|(_, path)| path).collect();
            let mut stale = Vec::new();
            yaml_files(&self.dir, &mut stale).map_err(io(&self.dir))?;
            for path in stale.into_iter().filter(|p| !keep.contains(p)) {
                fs::remove_file(&path).map_err(io(&path))?;
                removed += 1;
            }
        }
        Ok(Written {
            written: staged.len(),
            removed,
        })
    }
}

impl Drop for Stager {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The rendered users of an export waiting for their files to be laid out
/// ([`super::layout::ItemStore`]): an unnamed temporary file in the export directory, gone
/// when dropped (or when the process ends), which the loader never sees.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    file: fs::File,
    len: u64,
}

impl Spill {
    /// A new, empty spill file in `dir` (which exists: [`Stager::new`] made it).
    pub fn new(dir: &Path) -> Result<Spill, WriteError> {
        let file = tempfile::tempfile_in(dir).map_err(io(dir))?;
        Ok(Spill {
            dir: dir.to_path_buf(),
            file,
            len: 0,
        })
    }
}

impl super::layout::ItemStore for Spill {
    type Error = WriteError;

    fn append(&mut self, text: &str) -> Result<(), WriteError> {
        use std::os::unix::fs::FileExt;
        self.file
            .write_all_at(text.as_bytes(), self.len)
            .map_err(io(&self.dir))?;
        self.len += text.len() as u64;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read(&mut self, start: u64, end: u64) -> Result<String, WriteError> {
        use std::os::unix::fs::FileExt;
        let mut bytes = vec![0; usize::try_from(end - start).unwrap_or(0)];
        self.file
            .read_exact_at(&mut bytes, start)
            .map_err(io(&self.dir))?;
        String::from_utf8(bytes).map_err(|e| WriteError::Io {
            path: self.dir.clone(),
            message: e.to_string(),
        })
    }
}

/// Every file the loader would read under `dir`: `*.yaml` and `*.yml`, skipping hidden
/// entries, recursively.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            yaml_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    // A new directory is created; a non-empty one is refused without force, and with force
    // its stale YAML goes while other files and hidden directories stay.
    #[test]
    fn refuses_then_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let first = files(&[
            ("scimctl.yaml", "a: 1\n"),
            ("users/support.yaml", "users: []\n"),
        ]);
        assert_eq!(
            write_files(&dir, &first, false).unwrap(),
            Written {
                written: 2,
                removed: 0
            }
        );
        assert_eq!(
            fs::read_to_string(dir.join("users/support.yaml")).unwrap(),
            "users: []\n"
        );
        let err = write_files(&dir, &first, false).unwrap_err();
        assert!(err.is_refusal(), "{err}");
        assert!(err.to_string().contains("is not empty"), "{err}");

        fs::write(dir.join("README.md"), "keep").unwrap();
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::write(dir.join(".git/x.yaml"), "keep").unwrap();
        let second = files(&[
            ("scimctl.yaml", "a: 2\n"),
            ("users/sales.yaml", "users: []\n"),
        ]);
        assert_eq!(
            write_files(&dir, &second, true).unwrap(),
            Written {
                written: 2,
                removed: 1
            }
        );
        assert!(!dir.join("users/support.yaml").exists());
        assert!(dir.join("README.md").exists() && dir.join(".git/x.yaml").exists());
        assert_eq!(
            fs::read_to_string(dir.join("scimctl.yaml")).unwrap(),
            "a: 2\n"
        );
        let leftovers: Vec<_> = fs::read_dir(dir.join("users"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["sales.yaml"], "no temporary file is left");
    }

    // A path that is a file is not a directory to export into.
    #[test]
    fn file_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = check_dir(&file, true).unwrap_err();
        assert!(!err.is_refusal() && err.to_string().contains("not a directory"));
    }
}
