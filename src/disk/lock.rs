//! An advisory lock on a file, held by one process at a time: `flock` on Unix (the standard
//! library's `File::try_lock`), so the kernel releases it when the process ends, however it
//! ends, and a killed process never leaves a stale lock behind. The file holds one line saying
//! who holds it (never a secret), which a process that finds the lock busy reports.
//!
//! The lock file is never removed: removing it while another process waits on the old inode
//! would let two processes hold "the" lock at once.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a busy lock is tried again while waiting.
const RETRY_EVERY: Duration = Duration::from_millis(100);

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FileLockError {
    /// Another process holds it and did not let go in time.
    #[error("{} is locked by another process ({holder})", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as the lock file says.
        holder: String,
        /// How long this process waited.
        waited: Duration,
    },
    /// The lock file cannot be opened, locked or written.
    #[error("cannot take the lock {}: {cause}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes the lock on `path` (created, mode 0600 on Unix, if missing; its directory must
/// exist), waiting up to `timeout` on tokio's clock while another process holds it.
/// `waiting` is called once, with the holder's line, when the lock is busy. Once held, the
/// file's line becomes `note` (who holds it, for whoever waits: never a credential).
pub async fn acquire(
    path: &Path,
    note: &str,
    timeout: Duration,
    waiting: impl FnOnce(&str),
) -> Result<FileLock, FileLockError> {
    let io = |cause| FileLockError::Io {
        path: path.to_owned(),
        cause,
    };
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    let started = tokio::time::Instant::now();
    let mut waiting = Some(waiting);
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = holder(&mut file);
        if let Some(tell) = waiting.take() {
            tell(&holder);
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(FileLockError::Busy {
                path: path.to_owned(),
                holder,
                waited,
            });
        }
        tokio::time::sleep(RETRY_EVERY.min(timeout.saturating_sub(waited))).await;
    }
    let line = format!("{}\n", note.trim_end());
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|()| file.write_all(line.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(io)?;
    Ok(FileLock {
        file,
        path: path.to_owned(),
    })
}

/// What the lock file says about its holder, cut to one short line.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(200).read_to_string(&mut text));
    let line = text.lines().next().unwrap_or_default().trim();
    if line.is_empty() {
        "holder unknown".to_owned()
    } else {
        line.chars().filter(|c| !c.is_control()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One holder at a time: the second waits (paused clock), is told who holds the lock, and
    /// gives up after the timeout; once the first lets go the lock is free again.
    #[tokio::test(start_paused = true)]
    async fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.lock");
        let first = acquire(&path, "pid 1 first", Duration::ZERO, |_| panic!("free"))
            .await
            .expect("free");
        assert_eq!(first.path(), path);
        let mut told = None;
        let err = acquire(&path, "second", Duration::from_secs(2), |h| {
            told = Some(h.to_owned());
        })
        .await
        .expect_err("held");
        assert_eq!(told.as_deref(), Some("pid 1 first"));
        match &err {
            FileLockError::Busy { waited, holder, .. } => {
                assert_eq!(*waited, Duration::from_secs(2));
                assert_eq!(holder, "pid 1 first");
            }
            FileLockError::Io { .. } => panic!("{err}"),
        }
        assert!(err.to_string().contains("state.lock"), "{err}");
        drop(first);
        let again = acquire(&path, "second", Duration::ZERO, |_| panic!("released"))
            .await
            .expect("released");
        drop(again);
        assert_eq!(
            std::fs::read_to_string(&path).expect("lock file"),
            "second\n"
        );
    }

    /// A waiter gets the lock as soon as the holder lets go, before its timeout.
    #[tokio::test(start_paused = true)]
    async fn a_waiter_gets_the_lock_when_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.lock");
        let first = acquire(&path, "first", Duration::ZERO, |_| panic!("free"))
            .await
            .expect("free");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(first);
        });
        let started = tokio::time::Instant::now();
        acquire(&path, "second", Duration::from_secs(60), |_| {})
            .await
            .expect("taken after the release");
        assert!(started.elapsed() < Duration::from_secs(2));
        release.await.expect("released");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.lock");
        let _held = acquire(&path, "me", Duration::ZERO, |_| {})
            .await
            .expect("free");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
