//! Initial passwords (docs/contract.md §5): generated from a CSPRNG or read from the environment or a
//! file at apply time, and delivered once to a private file.
//!
//! A password is held in a [`Secret`] from the moment it is generated or read, so it cannot be
//! logged, serialised into a plan or an audit record, or shown by `Debug`. Errors name the
//! environment variable, the file or the user, never the value. Generated passwords are
//! written to a [`PasswordDrop`], a tab-separated file created with mode 0600 that is never
//! overwritten; passwords from `fromEnv`/`fromFile` are already known to whoever set them and
//! are not written anywhere.
//!
//! This module does not decide when a password is needed (only on create); the applier does.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{CryptoRng, RngExt};

use crate::desired::confine::{SecretDirs, SecretFileError};
use crate::model::PasswordSource;
use crate::scim::Secret;

/// Length of a generated password: about 129 bits of entropy over a 90-character alphabet.
pub const GENERATED_LENGTH: usize = 20;

/// The shortest password [`meets_policy`] accepts.
pub const MIN_LENGTH: usize = 16;

const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &[u8] = b"0123456789";
/// Punctuation that survives shells, CSV/TSV, JSON and YAML without quoting trouble: no quotes
/// of any kind, no backslash, no whitespace.
const SYMBOLS: &[u8] = b"!#$%&()*+,-./:;<=>?@[]^_{|}~";

/// A password could not be resolved or delivered. No variant carries a password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// `fromEnv` names a variable that is unset or empty.
    #[error("password environment variable `{var}` is not set (or is empty)")]
    EnvUnset {
        /// The variable.
        var: String,
    },
    /// `fromEnv` names a variable whose value is not UTF-8.
    #[error("password environment variable `{var}` is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable.
        var: String,
    },
    /// `fromFile` names a file that cannot be used: missing, outside the allowed directories,
    /// not a regular file, over 4 KiB, not UTF-8 or more than one line.
    #[error("cannot read password file {}: {cause}", path.display())]
    FileUnreadable {
        /// The file, resolved against the YAML file that names it.
        path: PathBuf,
        /// Why; never the contents.
        cause: SecretFileError,
    },
    /// `fromFile` names an empty file.
    #[error("password file {} is empty", path.display())]
    FileEmpty {
        /// The file, resolved against the YAML file that names it.
        path: PathBuf,
    },
    /// The delivery file already exists; it may hold passwords not yet handed out.
    #[error("{} already exists; refusing to overwrite a password file", path.display())]
    DropExists {
        /// The delivery file.
        path: PathBuf,
    },
    /// The delivery file could not be created or written.
    #[error("cannot write password file {}: {cause}", path.display())]
    DropWrite {
        /// The delivery file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
    /// A userName or password contains a tab or line break, which would corrupt the
    /// tab-separated delivery file.
    #[error(
        "cannot write the password for {user_name:?} to {}: {what} contains a tab or line break",
        path.display()
    )]
    DropUnsafe {
        /// The user.
        user_name: String,
        /// `userName` or `password`.
        what: &'static str,
        /// The delivery file.
        path: PathBuf,
    },
}

/// A new random password of [`GENERATED_LENGTH`] characters that meets [`meets_policy`].
///
/// Characters come from `rand`'s thread-local generator: a `ChaCha12` stream cipher seeded from
/// the operating system and reseeded periodically. That it is a CSPRNG is checked at compile
/// time, so a future swap to a fast insecure generator would not build. One character of each
/// class is placed first, the rest are drawn from all classes, and the whole is shuffled so the
/// guaranteed characters sit at random positions.
///
/// # Panics
///
/// Only if the operating system cannot supply randomness at all, in which case no safe
/// password can be made.
#[must_use]
pub fn generate() -> Secret {
    let mut rng = rand::rng();
    require_crypto(&rng);
    let classes = [LOWER, UPPER, DIGITS, SYMBOLS];
    let all: Vec<u8> = classes.concat();
    let mut chars: Vec<u8> = classes
        .iter()
        .map(|class| class[rng.random_range(..class.len())])
        .collect();
    while chars.len() < GENERATED_LENGTH {
        chars.push(all[rng.random_range(..all.len())]);
    }
    chars.shuffle(&mut rng);
    Secret::new(chars.iter().copied().map(char::from).collect::<String>())
}

/// Fails to compile unless the generator is cryptographically secure.
fn require_crypto<R: CryptoRng>(_: &R) {}

/// Whether `password` has at least [`MIN_LENGTH`] characters and at least one lowercase
/// letter, one uppercase letter, one digit and one symbol (anything else that is not
/// whitespace).
#[must_use]
pub fn meets_policy(password: &str) -> bool {
    let mut lower = false;
    let mut upper = false;
    let mut digit = false;
    let mut symbol = false;
    for c in password.chars() {
        if c.is_lowercase() {
            lower = true;
        } else if c.is_uppercase() {
            upper = true;
        } else if c.is_ascii_digit() {
            digit = true;
        } else if !c.is_alphanumeric() && !c.is_whitespace() {
            symbol = true;
        }
    }
    password.chars().count() >= MIN_LENGTH && lower && upper && digit && symbol
}

/// The complexity a password must have (`policy.password` in `scimctl.yaml`, issue 19):
/// at least `min_length` and at most `max_length` characters, and at least the given number
/// of uppercase letters, lowercase letters, digits and symbols (anything else that is not
/// whitespace). The defaults are 12, 1, 1, 1, 1 and 128.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters.
    pub min_length: usize,
    /// Fewest uppercase letters.
    pub upper: usize,
    /// Fewest lowercase letters.
    pub lower: usize,
    /// Fewest digits.
    pub digit: usize,
    /// Fewest symbols.
    pub symbol: usize,
    /// Most characters.
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            upper: 1,
            lower: 1,
            digit: 1,
            symbol: 1,
            max_length: 128,
        }
    }
}

impl From<&crate::model::PasswordRules> for PasswordPolicy {
    fn from(r: &crate::model::PasswordRules) -> Self {
        let n = |v: u32| usize::try_from(v).unwrap_or(usize::MAX);
        PasswordPolicy {
            min_length: n(r.min_length),
            upper: n(r.upper),
            lower: n(r.lower),
            digit: n(r.digit),
            symbol: n(r.symbol),
            max_length: n(r.max_length),
        }
    }
}

impl PasswordPolicy {
    /// The rules `password` breaks, by name (`minLength`, `maxLength`, `upper`, `lower`,
    /// `digit`, `symbol`): what a report or a 422 answer may show. Never the value.
    #[must_use]
    pub fn violations(&self, password: &str) -> Vec<&'static str> {
        let (mut upper, mut lower, mut digit, mut symbol, mut length) = (0, 0, 0, 0, 0);
        for c in password.chars() {
            length += 1;
            if c.is_uppercase() {
                upper += 1;
            } else if c.is_lowercase() {
                lower += 1;
            } else if c.is_ascii_digit() {
                digit += 1;
            } else if !c.is_alphanumeric() && !c.is_whitespace() {
                symbol += 1;
            }
        }
        [
            ("minLength", length < self.min_length),
            ("maxLength", length > self.max_length),
            ("upper", upper < self.upper),
            ("lower", lower < self.lower),
            ("digit", digit < self.digit),
            ("symbol", symbol < self.symbol),
        ]
        .into_iter()
        .filter_map(|(rule, broken)| broken.then_some(rule))
        .collect()
    }
}

/// The initial password a [`PasswordSource`] stands for, read now.
///
/// `fromFile` paths are relative to the directory of `yaml_file`, the YAML file that names
/// them (as validation resolves them); absolute paths, or a missing `yaml_file`, use the path
/// as written. The file must be in one of `dirs` (see [`SecretDirs::read`]): a regular file of
/// at most 4 KiB holding one line, whose trailing line break (`\n` or `\r\n`) is removed.
pub fn resolve(
    source: &PasswordSource,
    yaml_file: Option<&Path>,
    dirs: &SecretDirs,
) -> Result<Secret, PasswordError> {
    match source {
        PasswordSource::Generate => Ok(generate()),
        PasswordSource::FromEnv(var) => match std::env::var(var) {
            Ok(value) if !value.is_empty() => Ok(Secret::new(value)),
            // The value in `NotUnicode` is the secret itself: drop it unread.
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(PasswordError::EnvNotUnicode { var: var.clone() })
            }
            Ok(_) | Err(std::env::VarError::NotPresent) => {
                Err(PasswordError::EnvUnset { var: var.clone() })
            }
        },
        PasswordSource::FromFile(path) => {
            let path = relative_to(yaml_file, path);
            match dirs.read(&path) {
                Ok(value) => Ok(Secret::new(value)),
                Err(SecretFileError::Empty) => Err(PasswordError::FileEmpty { path }),
                Err(cause) => Err(PasswordError::FileUnreadable { path, cause }),
            }
        }
    }
}

/// `path` resolved against the directory of `yaml_file`, when it is relative.
fn relative_to(yaml_file: Option<&Path>, path: &str) -> PathBuf {
    let path = Path::new(path);
    match yaml_file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.to_path_buf(),
    }
}

/// Where one run's generated passwords are delivered:
/// `<state_dir>/initial-passwords-<run_stamp>.tsv`.
#[must_use]
pub fn default_drop_path(state_dir: &Path, run_stamp: &str) -> PathBuf {
    state_dir.join(format!("initial-passwords-{run_stamp}.tsv"))
}

/// The delivery file for generated passwords: one `userName<TAB>password` line per user.
///
/// Nothing is created until the first password is delivered, so a run that creates no users
/// leaves no empty file behind. The file is created with mode 0600 (on unix) and never
/// replaces an existing one: that file may hold passwords nobody has handed out yet.
#[derive(Debug)]
pub struct PasswordDrop {
    path: PathBuf,
    file: Option<File>,
    count: usize,
}

impl PasswordDrop {
    /// A delivery file at `path`, not created yet.
    #[must_use]
    pub fn new(path: PathBuf) -> PasswordDrop {
        PasswordDrop {
            path,
            file: None,
            count: 0,
        }
    }

    /// Creates the file now, before anything is written to the tenant, so a password
    /// generated later can always be delivered: a file that already exists (or cannot be
    /// created) is found while nothing has been created with a password nobody could read.
    /// A reserved file that receives nothing is removed again when the drop is dropped.
    pub fn reserve(&mut self) -> Result<(), PasswordError> {
        if self.file.is_none() {
            self.file = Some(create_private(&self.path)?);
        }
        Ok(())
    }

    /// Appends `user_name`'s password, creating the file (and its parent directories) first if
    /// this is the first delivery. The line is written in one call and flushed.
    pub fn deliver(&mut self, user_name: &str, password: &Secret) -> Result<(), PasswordError> {
        let unsafe_field = |what| PasswordError::DropUnsafe {
            user_name: user_name.to_owned(),
            what,
            path: self.path.clone(),
        };
        let breaks_line = |s: &str| s.contains(['\t', '\n', '\r']);
        if breaks_line(user_name) {
            return Err(unsafe_field("userName"));
        }
        if breaks_line(password.expose()) {
            return Err(unsafe_field("password"));
        }

        let mut line = Vec::with_capacity(user_name.len() + password.expose().len() + 2);
        line.extend_from_slice(user_name.as_bytes());
        line.push(b'\t');
        line.extend_from_slice(password.expose().as_bytes());
        line.push(b'\n');

        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(create_private(&self.path)?),
        };
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|cause| PasswordError::DropWrite {
                path: self.path.clone(),
                cause,
            })?;
        self.count += 1;
        Ok(())
    }

    /// The delivery file, once a password was written to it.
    #[must_use]
    pub fn path(&self) -> Option<&Path> {
        (self.count > 0).then_some(self.path.as_path())
    }

    /// How many passwords have been delivered.
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for PasswordDrop {
    /// Removes a file this drop reserved and never wrote to: it would only mislead.
    fn drop(&mut self) {
        if self.count == 0 && self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Creates `path` exclusively, readable and writable by its owner only.
fn create_private(path: &Path) -> Result<File, PasswordError> {
    let write_error = |cause| PasswordError::DropWrite {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(write_error)?;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|cause| {
        if cause.kind() == io::ErrorKind::AlreadyExists {
            PasswordError::DropExists {
                path: path.to_path_buf(),
            }
        } else {
            write_error(cause)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A thousand generated passwords all meet the policy, use only the documented alphabet,
    /// and are all different.
    #[test]
    fn generated_passwords_meet_the_policy_and_differ() {
        let alphabet: HashSet<u8> = [LOWER, UPPER, DIGITS, SYMBOLS]
            .concat()
            .into_iter()
            .collect();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let password = generate();
            let value = password.expose();
            assert_eq!(value.len(), GENERATED_LENGTH);
            assert!(meets_policy(value), "{value}");
            assert!(value.bytes().all(|b| alphabet.contains(&b)), "{value}");
            assert!(seen.insert(value.to_owned()), "repeated: {value}");
        }
    }

    /// The symbol set holds nothing that needs quoting or escaping.
    #[test]
    fn symbols_need_no_quoting() {
        for &b in SYMBOLS {
            assert!(b.is_ascii_punctuation(), "{}", char::from(b));
            assert!(!b"'\"`\\".contains(&b), "{}", char::from(b));
        }
    }

    /// Each rule of the policy is enforced on its own.
    #[test]
    fn policy_rules() {
        assert!(meets_policy("abcdefgH1!abcdefg"));
        assert!(meets_policy("Ünïcødé-pässwörd-1"));
        assert!(!meets_policy("abcdeH1!"), "too short");
        assert!(!meets_policy("ABCDEFGH1!ABCDEFGH"), "no lower");
        assert!(!meets_policy("abcdefgh1!abcdefgh"), "no upper");
        assert!(!meets_policy("abcdefgH!!abcdefgh"), "no digit");
        assert!(!meets_policy("abcdefgH11abcdefgh"), "no symbol");
        assert!(
            !meets_policy("abcdefgH1 abcdefgh"),
            "a space is not a symbol"
        );
    }

    /// A secret's Debug never shows the value.
    #[test]
    fn debug_is_redacted() {
        let password = generate();
        let shown = format!("{password:?}");
        assert!(!shown.contains(password.expose()), "{shown}");
        assert_eq!(shown, "Secret([redacted])");
    }

    /// `generate` resolves to a fresh password each time.
    #[test]
    fn resolve_generate() {
        let a =
            resolve(&PasswordSource::Generate, None, &SecretDirs::default()).expect("generated");
        let b =
            resolve(&PasswordSource::Generate, None, &SecretDirs::default()).expect("generated");
        assert!(meets_policy(a.expose()));
        assert_ne!(a, b);
    }

    /// `fromEnv` reads the variable; an unset one is named in the error and nothing else.
    #[test]
    fn resolve_from_env() {
        // PATH is set in any environment that can run the tests; the process environment is
        // not modified here (set_var is unsafe and tests run in parallel).
        let path = std::env::var("PATH").expect("PATH is set");
        let secret = resolve(
            &PasswordSource::FromEnv("PATH".into()),
            None,
            &SecretDirs::default(),
        )
        .expect("set");
        assert_eq!(secret.expose(), path);

        let var = "SCIMCTL_TEST_PASSWORD_SURELY_UNSET";
        let err = resolve(
            &PasswordSource::FromEnv(var.into()),
            None,
            &SecretDirs::default(),
        )
        .expect_err("unset");
        assert_eq!(
            err.to_string(),
            format!("password environment variable `{var}` is not set (or is empty)")
        );
    }

    /// `fromFile` is relative to the YAML file that names it, and loses one trailing newline.
    #[test]
    fn resolve_from_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = dir.path().join("users").join("ann.yaml");
        std::fs::create_dir_all(dir.path().join("users/secrets")).expect("mkdir");
        let file = |name: &str, contents: &str| {
            std::fs::write(dir.path().join("users/secrets").join(name), contents).expect("write");
            PasswordSource::FromFile(format!("secrets/{name}"))
        };
        let (dirs, _) = SecretDirs::new(dir.path(), []);
        let read = |source| resolve(&source, Some(&yaml), &dirs).expect("readable");

        assert_eq!(read(file("lf", "Pa55word!\n")).expose(), "Pa55word!");
        assert_eq!(read(file("crlf", "Pa55word!\r\n")).expose(), "Pa55word!");
        assert_eq!(read(file("none", " Pa55 word! ")).expose(), " Pa55 word! ");
        // One line only: a second line (even an empty one) is refused, not sent.
        let err = resolve(&file("two", "Pa55word!\n\n"), Some(&yaml), &dirs).expect_err("two");
        assert!(err.to_string().contains("more than one line"), "{err}");
        // Outside the directory, or too large: refused.
        let outside = PasswordSource::FromFile("/etc/passwd".into());
        let err = resolve(&outside, Some(&yaml), &dirs).expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
        let big = file("big", &"x".repeat(5000));
        let err = resolve(&big, Some(&yaml), &dirs).expect_err("big");
        assert!(err.to_string().contains("4 KiB"), "{err}");
        // No directory to read from: every file is refused.
        let err = resolve(
            &file("lf", "Pa55word!\n"),
            Some(&yaml),
            &SecretDirs::default(),
        )
        .expect_err("no dirs");
        assert!(err.to_string().contains("outside"), "{err}");

        // An absolute path is used as written.
        let absolute = dir.path().join("users/secrets/lf");
        let source = PasswordSource::FromFile(absolute.display().to_string());
        assert_eq!(read(source).expose(), "Pa55word!");

        let empty = file("empty", "\n");
        let err = resolve(&empty, Some(&yaml), &dirs).expect_err("empty");
        assert!(matches!(err, PasswordError::FileEmpty { .. }), "{err}");
    }

    /// Errors for unreadable or malformed files name the file, never its contents.
    #[test]
    fn resolve_errors_do_not_leak() {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = dir.path().join("users.yaml");
        let secret = b"Hunter2-Secret!";
        let mut not_utf8 = secret.to_vec();
        not_utf8.extend_from_slice(b"\xff\xfe\n");
        std::fs::write(dir.path().join("bad"), &not_utf8).expect("write");

        for source in [
            PasswordSource::FromFile("bad".into()),
            PasswordSource::FromFile("missing".into()),
        ] {
            let (dirs, _) = SecretDirs::new(dir.path(), []);
            let err = resolve(&source, Some(&yaml), &dirs).expect_err("unusable");
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains("Hunter2"), "{shown}");
                assert!(shown.contains(&dir.path().display().to_string()), "{shown}");
            }
        }
    }

    /// The default delivery path sits in the state directory and names the run.
    #[test]
    fn default_path() {
        assert_eq!(
            default_drop_path(Path::new(".scimctl"), "20261123T100405Z"),
            Path::new(".scimctl/initial-passwords-20261123T100405Z.tsv")
        );
    }

    /// Nothing is created before the first password; then one private line per user.
    #[test]
    fn drop_creates_on_first_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state/initial-passwords-x.tsv");
        let mut drop = PasswordDrop::new(path.clone());
        assert_eq!(drop.path(), None);
        assert!(!path.exists());

        drop.deliver("ann@example.com", &Secret::new("Aa1!aaaaaaaaaaaa"))
            .expect("delivered");
        drop.deliver("bob@example.com", &Secret::new("Bb2#bbbbbbbbbbbb"))
            .expect("delivered");
        assert_eq!(drop.path(), Some(path.as_path()));
        assert_eq!(drop.count(), 2);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "ann@example.com\tAa1!aaaaaaaaaaaa\nbob@example.com\tBb2#bbbbbbbbbbbb\n"
        );

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// An existing file is never overwritten, and the error says so without any password.
    #[test]
    fn a_reserved_drop_is_made_early_and_removed_if_unused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tsv");
        let mut unused = PasswordDrop::new(path.clone());
        unused.reserve().expect("reserve");
        unused.reserve().expect("twice is once");
        assert!(path.exists(), "made before any password");
        let mut second = PasswordDrop::new(path.clone());
        assert!(matches!(
            second.reserve(),
            Err(PasswordError::DropExists { .. })
        ));
        drop(unused);
        assert!(
            !path.exists(),
            "an unused reservation leaves nothing behind"
        );

        let mut used = PasswordDrop::new(path.clone());
        used.reserve().expect("reserve");
        used.deliver("ann@example.com", &Secret::new("Aa1!aaaaaaaaaaaa"))
            .expect("deliver");
        drop(used);
        assert_eq!(
            std::fs::read_to_string(&path).expect("kept"),
            "ann@example.com\tAa1!aaaaaaaaaaaa\n"
        );
        drop(second);
        assert!(
            path.exists(),
            "a drop that never made the file never removes it"
        );
    }

    #[test]
    fn drop_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("initial-passwords-x.tsv");
        std::fs::write(&path, "old\tpasswords\n").expect("write");
        let mut drop = PasswordDrop::new(path.clone());
        let err = drop
            .deliver("ann@example.com", &Secret::new("Aa1!aaaaaaaaaaaa"))
            .expect_err("exists");
        assert!(matches!(err, PasswordError::DropExists { .. }), "{err}");
        assert!(!err.to_string().contains("Aa1!"), "{err}");
        assert_eq!(drop.count(), 0);
        assert_eq!(drop.path(), None);
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "old\tpasswords\n"
        );
    }

    /// A tab or line break in a field is refused before anything is written, and the error
    /// does not show the password.
    #[test]
    fn drop_refuses_fields_that_break_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.tsv");
        let mut drop = PasswordDrop::new(path.clone());
        let err = drop
            .deliver("ann\n@example.com", &Secret::new("Aa1!aaaaaaaaaaaa"))
            .expect_err("newline in userName");
        assert!(err.to_string().contains("userName"), "{err}");
        let err = drop
            .deliver("ann@example.com", &Secret::new("Aa1!\taaaaaaaaaaa"))
            .expect_err("tab in password");
        assert!(!err.to_string().contains("Aa1!"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn policy_names_each_broken_rule_and_generated_passwords_meet_the_default() {
        let policy = PasswordPolicy::default();
        assert!(policy.violations("Abcdefgh-123").is_empty());
        assert_eq!(
            policy.violations("short"),
            ["minLength", "upper", "digit", "symbol"]
        );
        assert_eq!(policy.violations(&"aA1-".repeat(33)), ["maxLength"]);
        assert_eq!(policy.violations("ABCDEFGHIJK1!"), ["lower"]);
        let strict = PasswordPolicy {
            digit: 3,
            symbol: 2,
            ..PasswordPolicy::default()
        };
        assert_eq!(strict.violations("Abcdefgh-123"), ["symbol"]);
        for _ in 0..200 {
            let pw = generate();
            assert!(policy.violations(pw.expose()).is_empty());
        }
    }
}
