//! One writer per target on a machine: an advisory file lock that `apply` holds from reading
//! the tenant to its last write, and `watch` holds around each reconcile that may write.
//!
//! Two runs that both read the tenant before either writes plan the same creates, and a
//! server that allows duplicate names (scim2-server does) ends up with twins. The lock makes
//! the second run wait (or give up after `--lock-timeout`), so it reads what the first wrote.
//! It is an OS lock (`flock` on Unix, through [`crate::disk::lock`]): the kernel releases it
//! when the process ends, however it ends, so a killed run never leaves a stale lock behind. It does not reach across
//! machines: CI systems serialise applies with their own concurrency controls (see docs/plans-and-safety.md, "One writer per target").

use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::disk::lock::{self, FileLock, FileLockError};

/// Where lock files live unless `SCIMCTL_LOCK_DIR` says otherwise: the user's runtime
/// directory, else a `scimctl-locks` directory in the system's temporary directory.
#[must_use]
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SCIMCTL_LOCK_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("scimctl");
    }
    std::env::temp_dir().join("scimctl-locks")
}

/// The lock file of `target` (its description, as plans record it) in `dir`.
#[must_use]
pub fn path_for(dir: &Path, target: &str) -> PathBuf {
    let digest = Sha256::digest(target.as_bytes());
    let name = digest[..12]
        .iter()
        .fold(String::with_capacity(24), |mut name, b| {
            use std::fmt::Write as _;
            let _ = write!(name, "{b:02x}");
            name
        });
    dir.join(format!("{name}.lock"))
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it and did not let go in time.
    #[error(
        "another scimctl run is writing to {target} ({holder}); waited {waited} s \
         (--lock-timeout); nothing was written"
    )]
    Busy {
        /// The target.
        target: String,
        /// Who holds it, as its lock file says.
        holder: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The lock file cannot be opened or locked.
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
pub struct TargetLock {
    _lock: FileLock,
}

/// Takes the lock of `target` in `dir`, waiting up to `timeout` (tokio's clock) while another
/// process holds it. `waiting` is called once, with the holder, when the lock is busy.
pub async fn acquire(
    dir: &Path,
    target: &str,
    timeout: Duration,
    waiting: impl FnOnce(&str),
) -> Result<TargetLock, LockError> {
    let path = path_for(dir, target);
    create_private_dir(dir).map_err(|cause| LockError::Io {
        path: path.clone(),
        cause,
    })?;
    // Who holds it, for whoever waits: the pid and the target (never a credential: the
    // description is redacted).
    let note = format!("pid {} writing to {target}", std::process::id());
    match lock::acquire(&path, &note, timeout, waiting).await {
        Ok(lock) => Ok(TargetLock { _lock: lock }),
        Err(FileLockError::Busy { holder, waited, .. }) => Err(LockError::Busy {
            target: target.to_owned(),
            holder,
            waited: waited.as_secs(),
        }),
        Err(FileLockError::Io { path, cause }) => Err(LockError::Io { path, cause }),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The second taker waits, is told who holds the lock, and gives up after the timeout;
    /// once the first lets go, the lock is free again. Paused clock: nothing waits for real.
    #[tokio::test(start_paused = true)]
    async fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = "https://idp.example.com/scim/v2";
        let first = acquire(dir.path(), target, Duration::ZERO, |_| panic!("free"))
            .await
            .expect("free");
        let mut told = None;
        let err = acquire(dir.path(), target, Duration::from_secs(3), |h| {
            told = Some(h.to_owned());
        })
        .await
        .expect_err("held");
        let told = told.expect("told once");
        assert!(
            told.contains(&format!("pid {}", std::process::id())),
            "{told}"
        );
        let message = err.to_string();
        assert!(message.contains("waited 3 s"), "{message}");
        assert!(message.contains("nothing was written"), "{message}");
        // Another target is another lock.
        drop(
            acquire(dir.path(), "sandbox (x)", Duration::ZERO, |_| {
                panic!("free")
            })
            .await
            .expect("other target"),
        );
        drop(first);
        acquire(dir.path(), target, Duration::ZERO, |_| panic!("released"))
            .await
            .expect("released");
    }

    #[test]
    fn paths_differ_by_target_and_hide_it() {
        let dir = Path::new("/locks");
        let a = path_for(dir, "https://a.example/scim?access_token=redacted");
        let b = path_for(dir, "https://b.example/scim");
        assert_ne!(a, b);
        assert!(!a.to_string_lossy().contains("a.example"));
    }
}
