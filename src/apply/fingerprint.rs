//! Password fingerprints: per target and user, an Argon2id hash (a PHC string: algorithm,
//! parameters, random salt, hash) of the password scimctl last set, so a later run can tell
//! whether a `fromEnv`/`fromFile` source changed without ever storing the password.
//!
//! The state file (`.scimctl/password-fingerprints.json` by default) is JSON,
//! `{"version": 1, "targets": {TARGET: {userName (lowercased): PHC}}}`, written atomically
//! with mode 0600 through [`crate::disk::atomic`]. The parameters follow the OWASP password
//! storage recommendation for Argon2id: m = 19 MiB, t = 2, p = 1.
//!
//! Verifying is deliberately slow (that is what makes a stolen file costly to attack), so a
//! plan verifies users in parallel across the machine's cores ([`changed_at_source`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::disk::atomic::{self, Mode};
use crate::scim::Secret;

/// Where the fingerprints are kept unless `--password-fingerprints` says otherwise.
pub const DEFAULT_FINGERPRINTS: &str = ".scimctl/password-fingerprints.json";

/// OWASP's Argon2id memory cost, in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// OWASP's Argon2id iteration count.
pub const ITERATIONS: u32 = 2;
/// OWASP's Argon2id parallelism.
pub const PARALLELISM: u32 = 1;

const VERSION: u32 = 1;

/// The fingerprint file could not be read, parsed or written. Never carries a password.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// Reading or writing the file failed.
    #[error("password fingerprints {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
    /// The file is not a fingerprint file of a version this build reads.
    #[error("password fingerprints {}: not a fingerprint file: {why}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// Why (names no password: the file holds none).
        why: String,
    },
    /// Hashing failed (Argon2 refused its parameters; should not happen).
    #[error("cannot fingerprint a password: {0}")]
    Hash(String),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    version: u32,
    #[serde(default)]
    targets: BTreeMap<String, BTreeMap<String, String>>,
}

/// The fingerprints of one target, as read from the state file, and the file's other targets
/// (kept as they are when it is written back).
#[derive(Debug)]
pub struct Fingerprints {
    path: PathBuf,
    target: String,
    file: File,
}

impl Fingerprints {
    /// Reads `path` (a missing file is an empty store) for `target` (the target's URL, or the
    /// sandbox's state file: whatever names the tenant).
    pub fn load(path: &Path, target: &str) -> Result<Fingerprints, FingerprintError> {
        let file = match std::fs::read(path) {
            Ok(bytes) => {
                let file: File =
                    serde_json::from_slice(&bytes).map_err(|e| FingerprintError::Format {
                        path: path.to_path_buf(),
                        why: e.to_string(),
                    })?;
                if file.version != VERSION {
                    return Err(FingerprintError::Format {
                        path: path.to_path_buf(),
                        why: format!("version {} (this build reads {VERSION})", file.version),
                    });
                }
                file
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => File {
                version: VERSION,
                targets: BTreeMap::new(),
            },
            Err(cause) => {
                return Err(FingerprintError::Io {
                    path: path.to_path_buf(),
                    cause,
                });
            }
        };
        Ok(Fingerprints {
            path: path.to_path_buf(),
            target: target.to_owned(),
            file,
        })
    }

    /// The file this store reads and writes.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The PHC string recorded for `user_name` on this target.
    #[must_use]
    pub fn get(&self, user_name: &str) -> Option<&str> {
        self.file
            .targets
            .get(&self.target)
            .and_then(|t| t.get(&user_name.to_lowercase()))
            .map(String::as_str)
    }

    /// Records `phc` as the fingerprint of the password last set for `user_name`.
    pub fn set(&mut self, user_name: &str, phc: String) {
        self.file
            .targets
            .entry(self.target.clone())
            .or_default()
            .insert(user_name.to_lowercase(), phc);
    }

    /// Writes the whole file back atomically, mode 0600.
    pub fn save(&self) -> Result<(), FingerprintError> {
        let bytes =
            serde_json::to_vec_pretty(&self.file).map_err(|e| FingerprintError::Format {
                path: self.path.clone(),
                why: e.to_string(),
            })?;
        atomic::write(&self.path, Mode::Private, &bytes).map_err(|cause| FingerprintError::Io {
            path: self.path.clone(),
            cause,
        })
    }
}

fn hasher() -> Argon2<'static> {
    // The parameters are constants within Argon2's bounds, so `new` cannot fail on them;
    // `DEFAULT` (the same OWASP values in argon2 0.5) is the fallback all the same.
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A new fingerprint of `password`: Argon2id, OWASP parameters, a random 16-byte salt from
/// the operating system's generator.
pub fn fingerprint(password: &Secret) -> Result<String, FingerprintError> {
    let mut salt = [0u8; 16];
    rand::fill(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| FingerprintError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| FingerprintError::Hash(e.to_string()))
}

/// Whether `password` is the one `phc` fingerprints. An unreadable fingerprint never
/// matches (the password is then taken as changed, and set again).
#[must_use]
pub fn matches(phc: &str, password: &Secret) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => hasher()
            .verify_password(password.expose().as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// One user to verify: the userName, the password its source resolves to now, and the
/// fingerprint of the one last set.
#[derive(Debug)]
pub struct Candidate {
    /// The user.
    pub user_name: String,
    /// The password the source gives now.
    pub password: Secret,
    /// The recorded fingerprint.
    pub phc: String,
}

/// The userNames (lowercased) of `candidates` whose password no longer matches its
/// fingerprint, verified in parallel on up to `threads` threads (at least one).
#[must_use]
pub fn changed_at_source(candidates: &[Candidate], threads: usize) -> BTreeSet<String> {
    if candidates.is_empty() {
        return BTreeSet::new();
    }
    let threads = threads.clamp(1, candidates.len());
    let chunk = candidates.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = candidates
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter(|c| !matches(&c.phc, &c.password))
                        .map(|c| c.user_name.to_lowercase())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // A verifying thread cannot panic short of a bug in argon2; a panicked chunk's
            // users are then left out (not rotated), never rotated blindly.
            .filter_map(|h| h.join().ok())
            .flatten()
            .collect()
    })
}

/// Remembers, for the life of a process, which (fingerprint, password) pairs already
/// verified, so that `watch`, which checks every source on every reconcile, pays Argon2's
/// cost once per change rather than once per reconcile (10,000 users ≈ 190 s of CPU on
/// 2 cores). It keeps an HMAC-SHA256 of each pair under a random key made at start and held
/// only in memory: no password, and nothing an attacker who reads the process's files could
/// test guesses against.
pub struct VerifyCache {
    key: [u8; 32],
    known: std::collections::HashMap<String, [u8; 32]>,
}

impl std::fmt::Debug for VerifyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyCache")
            .field("known", &self.known.len())
            .finish_non_exhaustive()
    }
}

impl Default for VerifyCache {
    fn default() -> Self {
        let mut key = [0u8; 32];
        rand::fill(&mut key);
        VerifyCache {
            key,
            known: std::collections::HashMap::new(),
        }
    }
}

impl VerifyCache {
    fn tag(&self, candidate: &Candidate) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(candidate.phc.as_bytes());
        mac.update(&[0]);
        mac.update(candidate.password.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// [`changed_at_source`], verifying with Argon2 only the pairs not seen to match before.
    #[must_use]
    pub fn changed_at_source(
        &mut self,
        candidates: Vec<Candidate>,
        threads: usize,
    ) -> BTreeSet<String> {
        let mut unknown = Vec::new();
        let mut tags = Vec::new();
        for c in candidates {
            let tag = self.tag(&c);
            let name = c.user_name.to_lowercase();
            if self.known.get(&name) != Some(&tag) {
                tags.push((name, tag));
                unknown.push(c);
            }
        }
        let changed = changed_at_source(&unknown, threads);
        for (name, tag) in tags {
            if changed.contains(&name) {
                self.known.remove(&name);
            } else {
                self.known.insert(name, tag);
            }
        }
        changed
    }
}

/// How many threads verification uses: the cores the process may run on.
#[must_use]
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// Fingerprints every `(userName, password)` in parallel (see [`changed_at_source`]).
pub fn fingerprint_all(
    set: &[(String, Secret)],
    threads: usize,
) -> Result<Vec<(String, String)>, FingerprintError> {
    if set.is_empty() {
        return Ok(Vec::new());
    }
    let threads = threads.clamp(1, set.len());
    let chunk = set.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = set
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|(u, p)| fingerprint(p).map(|phc| (u.clone(), phc)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(set.len());
        for h in handles {
            let part = h
                .join()
                .map_err(|_| FingerprintError::Hash("a hashing thread panicked".into()))??;
            out.extend(part);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_owasp_argon2id_with_a_random_salt_and_verify() {
        let pw = Secret::new("Correct-horse-9");
        let a = fingerprint(&pw).expect("hash");
        let b = fingerprint(&pw).expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "the salt is random");
        assert!(!a.contains("Correct-horse-9"));
        assert!(matches(&a, &pw));
        assert!(!matches(&a, &Secret::new("Correct-horse-0")));
        assert!(!matches("not a phc string", &pw));
    }

    #[test]
    fn changed_at_source_names_only_the_users_whose_password_moved() {
        let old = Secret::new("Old-password-1");
        let phc = fingerprint(&old).expect("hash");
        let candidates = vec![
            Candidate {
                user_name: "Same@x".into(),
                password: Secret::new("Old-password-1"),
                phc: phc.clone(),
            },
            Candidate {
                user_name: "Moved@x".into(),
                password: Secret::new("New-password-2"),
                phc: phc.clone(),
            },
            Candidate {
                user_name: "Also-same@x".into(),
                password: Secret::new("Old-password-1"),
                phc,
            },
        ];
        for threads in [1, 2, 8] {
            let changed = changed_at_source(&candidates, threads);
            assert_eq!(
                changed.into_iter().collect::<Vec<_>>(),
                ["moved@x"],
                "{threads} threads"
            );
        }
        assert!(changed_at_source(&[], 2).is_empty());
    }

    #[test]
    fn the_store_is_per_target_private_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(".scimctl/password-fingerprints.json");
        let mut a = Fingerprints::load(&path, "https://a").expect("load");
        assert_eq!(a.get("alice"), None);
        a.set("Alice", "$argon2id$a".into());
        a.save().expect("save");
        let mut b = Fingerprints::load(&path, "https://b").expect("load");
        assert_eq!(
            b.get("alice"),
            None,
            "another target's fingerprints are its own"
        );
        b.set("alice", "$argon2id$b".into());
        b.save().expect("save");
        let a = Fingerprints::load(&path, "https://a").expect("load");
        assert_eq!(a.get("ALICE"), Some("$argon2id$a"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, b"{\"version\": 9}").expect("write");
        assert!(matches!(
            Fingerprints::load(&path, "x"),
            Err(FingerprintError::Format { .. })
        ));
    }

    #[test]
    fn fingerprint_all_hashes_each_password_once() {
        let set = vec![
            ("a".to_owned(), Secret::new("Pass-word-one-1")),
            ("b".to_owned(), Secret::new("Pass-word-two-2")),
            ("c".to_owned(), Secret::new("Pass-word-three-3")),
        ];
        let out = fingerprint_all(&set, 2).expect("hash");
        assert_eq!(out.len(), 3);
        for ((u, p), (v, phc)) in set.iter().zip(&out) {
            assert_eq!(u, v);
            assert!(matches(phc, p));
        }
    }
}
