//! Replacing a file atomically: a reader (or a crash) sees either the old file or the new one,
//! never a torn one. The content goes to a temporary file in the same directory (so the rename
//! stays on one file system), which is fsynced, renamed over the target, and the directory is
//! fsynced so the rename itself survives a power loss. On any error the temporary file is
//! removed (the `tempfile` crate removes it when dropped) and the target is left as it was.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// How much is buffered between the caller's writes and the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// Who may read the written file (Unix permission bits; ignored elsewhere).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Readable and writable by the owner only (0600): files naming people or holding the
    /// tenant's data.
    Private,
    /// As `File::create` makes it (0666 less the umask), for files meant to be shared, such as
    /// a saved plan.
    Shared,
}

impl Mode {
    #[cfg(unix)]
    fn bits(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Shared => 0o666,
        }
    }
}

/// Writes what `write` produces to `path` atomically (see the module documentation), with
/// `mode`. The directory is created if needed. `write` gets a buffered writer.
pub fn write_with(
    path: &Path,
    mode: Mode,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(mode.bits()));
    }
    #[cfg(not(unix))]
    let _ = mode;
    // Dropped on every early return below, which removes the temporary file.
    let temp = builder.tempfile_in(&dir)?;
    {
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, temp.as_file());
        write(&mut out)?;
        out.flush()?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_dir(&dir);
    Ok(())
}

/// Writes `bytes` to `path` atomically with `mode` (see [`write_with`]).
pub fn write(path: &Path, mode: Mode, bytes: &[u8]) -> io::Result<()> {
    write_with(path, mode, |out| out.write_all(bytes))
}

/// Syncs `dir`, so a file created, renamed or removed in it stays so after a power loss. Not
/// every platform or file system lets a directory be opened and synced; the data is already
/// safe by then, so a failure is not reported.
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // The content lands, replacing the old file, in a directory created on the way; nothing
    // else is left beside it.
    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/plan.json");
        write(&path, Mode::Shared, b"old").expect("written");
        write_with(&path, Mode::Shared, |out| {
            out.write_all(b"new ")?;
            out.write_all(b"content")
        })
        .expect("written");
        assert_eq!(fs::read(&path).expect("read"), b"new content");
        assert_eq!(names(path.parent().expect("dir")), ["plan.json"]);
    }

    // While being written the content sits in a hidden temporary file beside the target, with
    // a name of its own each time (two writers never share one).
    #[test]
    fn the_temporary_file_is_beside_the_target_and_unique() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let mut seen = Vec::new();
        for _ in 0..2 {
            write_with(&path, Mode::Private, |out| {
                let temps: Vec<String> = names(dir.path())
                    .into_iter()
                    .filter(|n| {
                        n.starts_with(".state.json.")
                            && Path::new(n).extension().is_some_and(|e| e == "tmp")
                    })
                    .collect();
                assert_eq!(temps.len(), 1, "{temps:?}");
                seen.extend(temps);
                out.write_all(b"x")
            })
            .expect("written");
        }
        assert_ne!(seen[0], seen[1]);
    }

    // A failed write leaves the old file untouched and no temporary file behind; so does a
    // failed rename (the target is a directory).
    #[test]
    fn an_error_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("overrides.json");
        write(&path, Mode::Private, b"old").expect("written");
        let err = write_with(&path, Mode::Private, |out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .expect_err("fails");
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["overrides.json"]);

        let taken = dir.path().join("taken");
        fs::create_dir(&taken).expect("dir");
        fs::write(taken.join("inside"), b"x").expect("file");
        write(&taken, Mode::Private, b"new").expect_err("a directory is in the way");
        assert_eq!(names(dir.path()), ["overrides.json", "taken"]);
    }

    // Private files are 0600 whatever the umask; shared ones get what `File::create` gives.
    #[cfg(unix)]
    #[test]
    fn modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        let private = dir.path().join("private");
        write(&private, Mode::Private, b"secret").expect("written");
        assert_eq!(mode(&private), 0o600);
        // Replacing an existing, more open file makes it private too.
        fs::set_permissions(&private, fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&private, Mode::Private, b"secret").expect("written");
        assert_eq!(mode(&private), 0o600);
        let shared = dir.path().join("shared");
        write(&shared, Mode::Shared, b"plan").expect("written");
        let plain = dir.path().join("plain");
        File::create(&plain).expect("created");
        assert_eq!(mode(&shared), mode(&plain));
    }
}
