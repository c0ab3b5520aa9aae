//! The local overrides file: facts from outside the YAML that reconciles must respect until
//! the YAML catches up. Today that is one kind, users terminated through the HRIS webhook.
//!
//! The file is `.scimctl/overrides.json` in the working directory (like the audit log), or
//! `$SCIMCTL_OVERRIDES`. An absent file means no overrides. It is written whole to a
//! temporary file created with mode 0600 and renamed over the old one, so a reader never sees
//! half of it.
//!
//! [`Overrides::fold`] applies the file to loaded desired state: a terminated user whom the
//! YAML still lists as active (or without `active`) is made inactive, so the planner
//! deactivates them and never activates them again, and a warning at the user's YAML says
//! how to settle it. Folding changes only the in-memory state, never the files, so a saved
//! plan's desired-state hash (taken over the files) is the same with or without overrides.
//! Once the YAML marks the user inactive or no longer lists them, the override has nothing
//! left to do: [`Overrides::prune_settled`] forgets it, so a later rehire written as
//! `active: true` is honoured.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::desired::{DesiredState, Diagnostic};
use crate::disk::atomic::{self, Mode};
use crate::model::Spanned;

/// Where the overrides file is unless `SCIMCTL_OVERRIDES` says otherwise, relative to the
/// working directory.
pub const DEFAULT_OVERRIDES: &str = ".scimctl/overrides.json";
/// The environment variable naming another overrides file.
pub const OVERRIDES_ENV: &str = "SCIMCTL_OVERRIDES";
/// The file format's version.
const VERSION: u32 = 1;

/// The overrides file could not be read or written. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum OverridesError {
    /// The file exists but could not be read.
    #[error("cannot read overrides file {}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
    /// The file is not an overrides file this version understands.
    #[error("{} is not a valid overrides file: {cause}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        cause: String,
    },
    /// The file (or its directory) could not be written.
    #[error("cannot write overrides file {}: {cause}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        cause: io::Error,
    },
}

/// One user terminated from outside the YAML.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Termination {
    /// The userName as the HRIS sent it.
    pub user_name: String,
    /// When the termination was received, RFC 3339.
    pub at: String,
    /// Why, as the HRIS said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The file's form.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FileForm {
    version: u32,
    #[serde(default)]
    terminations: Vec<Termination>,
}

/// The overrides in effect, keyed by case-folded userName.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    terminations: BTreeMap<String, Termination>,
}

/// The overrides file to use: `$SCIMCTL_OVERRIDES` when set and non-empty, else
/// [`DEFAULT_OVERRIDES`].
#[must_use]
pub fn default_path() -> PathBuf {
    std::env::var_os(OVERRIDES_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_OVERRIDES), PathBuf::from)
}

fn fold_name(name: &str) -> String {
    name.trim().to_lowercase()
}

impl Overrides {
    /// Reads `path`; an absent file is no overrides.
    pub fn load(path: &Path) -> Result<Overrides, OverridesError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Overrides::default()),
            Err(cause) => {
                return Err(OverridesError::Read {
                    path: path.to_path_buf(),
                    cause,
                });
            }
        };
        let parse_error = |cause: String| OverridesError::Parse {
            path: path.to_path_buf(),
            cause,
        };
        let form: FileForm =
            serde_json::from_slice(&bytes).map_err(|e| parse_error(e.to_string()))?;
        if form.version != VERSION {
            return Err(parse_error(format!(
                "version {} is not supported (this scimctl reads version {VERSION})",
                form.version
            )));
        }
        let terminations = form
            .terminations
            .into_iter()
            .map(|t| (fold_name(&t.user_name), t))
            .collect();
        Ok(Overrides { terminations })
    }

    /// Writes the overrides to `path` atomically, creating its directory if needed; the file
    /// has mode 0600 on unix (it names people who left).
    pub fn save(&self, path: &Path) -> Result<(), OverridesError> {
        let write_error = |cause| OverridesError::Write {
            path: path.to_path_buf(),
            cause,
        };
        let form = FileForm {
            version: VERSION,
            terminations: self.terminations.values().cloned().collect(),
        };
        let mut json = serde_json::to_vec_pretty(&form).map_err(|e| write_error(e.into()))?;
        json.push(b'\n');
        atomic::write(path, Mode::Private, &json).map_err(write_error)
    }

    /// Records that `user_name` was terminated at `at` (RFC 3339, e.g.
    /// `crate::apply::audit::now_rfc3339()`), for `reason`. A user already recorded keeps the
    /// first record; returns whether this one is new.
    pub fn record_termination(&mut self, user_name: &str, at: &str, reason: Option<&str>) -> bool {
        let key = fold_name(user_name);
        if self.terminations.contains_key(&key) {
            return false;
        }
        self.terminations.insert(
            key,
            Termination {
                user_name: user_name.trim().to_owned(),
                at: at.to_owned(),
                reason: reason.map(str::to_owned),
            },
        );
        true
    }

    /// The termination recorded for `user_name` (case-insensitive), if any.
    #[must_use]
    pub fn termination(&self, user_name: &str) -> Option<&Termination> {
        self.terminations.get(&fold_name(user_name))
    }

    /// Forgets the termination of `user_name` (case-insensitive); returns whether there was one.
    pub fn forget(&mut self, user_name: &str) -> bool {
        self.terminations.remove(&fold_name(user_name)).is_some()
    }

    /// Every recorded termination, by userName.
    pub fn terminations(&self) -> impl Iterator<Item = &Termination> {
        self.terminations.values()
    }

    /// Whether nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.terminations.is_empty()
    }

    /// Makes every terminated user that `state` lists as active (or without `active`)
    /// inactive, and returns one warning for each, at the user's `active:` line when it is
    /// written, else at the user. Users the YAML marks inactive, or does not list, are left
    /// alone without a warning. A user is found by userName or by a `previously` name, so a
    /// rename in the YAML does not lose the override.
    pub fn fold(&self, state: &mut DesiredState) -> Vec<Diagnostic> {
        let mut warnings = Vec::new();
        for termination in self.terminations.values() {
            let Some(i) = find_user(state, &termination.user_name) else {
                continue;
            };
            let user = &mut state.users[i];
            if user.active.as_ref().is_some_and(|a| !a.value) {
                continue;
            }
            let span = user.active.as_ref().map_or(user.span, |a| a.span);
            user.value.active = Some(Spanned::new(false, span));
            let reason = termination
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            warnings.push(Diagnostic::warning(
                span,
                format!(
                    "{}: terminated by the HRIS webhook at {}{reason}, so it stays inactive; \
                     mark the user `active: false` or remove them to settle this",
                    user.user_name.as_str(),
                    termination.at
                ),
            ));
        }
        warnings
    }

    /// Forgets the terminations `state` has caught up with (the user is marked inactive or is
    /// no longer listed) and returns their userNames. Call it with the state as loaded, before
    /// [`Overrides::fold`].
    pub fn prune_settled(&mut self, state: &DesiredState) -> Vec<String> {
        let mut settled = Vec::new();
        self.terminations.retain(|_, t| {
            let open = find_user(state, &t.user_name)
                .is_some_and(|i| state.users[i].active.as_ref().is_none_or(|a| a.value));
            if !open {
                settled.push(t.user_name.clone());
            }
            open
        });
        settled
    }
}

/// The desired user `name` is, or was (`previously`), called.
fn find_user(state: &DesiredState, name: &str) -> Option<usize> {
    let name = name.trim();
    state.user_index(name).or_else(|| {
        let folded = name.to_lowercase();
        state
            .users
            .iter()
            .position(|u| u.previously.iter().any(|p| p.to_lowercase() == folded))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::load_texts;

    const USERS: &str = "users:
  - userName: ana@northwind.example
    active: true
  - userName: bo@northwind.example
  - userName: cy@northwind.example
    active: false
  - userName: dee@northwind.example
    previously: [dee.old@northwind.example]
";

    fn state() -> DesiredState {
        load_texts(&[("users.yaml", USERS)]).unwrap().state
    }

    fn terminated(names: &[&str]) -> Overrides {
        let mut o = Overrides::default();
        for name in names {
            o.record_termination(name, "2026-11-23T10:00:00Z", Some("left"));
        }
        o
    }

    fn active(state: &DesiredState, name: &str) -> Option<bool> {
        state.user(name).unwrap().active.as_ref().map(|a| a.value)
    }

    // A terminated user listed as active, or without `active`, becomes inactive with a
    // warning at the `active:` line or at the user; one marked inactive or not listed gets
    // neither; a rename is followed through `previously`.
    #[test]
    fn fold_deactivates_and_warns_until_settled() {
        let mut s = state();
        let overrides = terminated(&[
            "ANA@northwind.example",
            "bo@northwind.example",
            "cy@northwind.example",
            "gone@northwind.example",
            "dee.old@northwind.example",
        ]);
        let warnings = overrides.fold(&mut s);
        let report = crate::desired::Report::new(s.sources.clone(), warnings);
        let lines: Vec<String> = report
            .diagnostics()
            .iter()
            .map(|d| report.line(d))
            .collect();
        assert_eq!(
            lines,
            [
                "users.yaml:3:13: warning: ana@northwind.example: terminated by the HRIS webhook at 2026-11-23T10:00:00Z (left), so it stays inactive; mark the user `active: false` or remove them to settle this",
                "users.yaml:4:5: warning: bo@northwind.example: terminated by the HRIS webhook at 2026-11-23T10:00:00Z (left), so it stays inactive; mark the user `active: false` or remove them to settle this",
                "users.yaml:7:5: warning: dee@northwind.example: terminated by the HRIS webhook at 2026-11-23T10:00:00Z (left), so it stays inactive; mark the user `active: false` or remove them to settle this",
            ]
        );
        for name in ["ana", "bo", "cy", "dee"] {
            assert_eq!(
                active(&s, &format!("{name}@northwind.example")),
                Some(false),
                "{name}"
            );
        }
        // Nothing terminated, nothing changed.
        let mut s = state();
        assert!(Overrides::default().fold(&mut s).is_empty());
        assert_eq!(active(&s, "ana@northwind.example"), Some(true));
        assert_eq!(active(&s, "bo@northwind.example"), None);
    }

    // Settled terminations (inactive in YAML, or not listed) are forgotten; open ones stay.
    #[test]
    fn prune_settled() {
        let s = state();
        let mut overrides = terminated(&[
            "ana@northwind.example",
            "cy@northwind.example",
            "gone@northwind.example",
        ]);
        let mut settled = overrides.prune_settled(&s);
        settled.sort();
        assert_eq!(settled, ["cy@northwind.example", "gone@northwind.example"]);
        let left: Vec<&str> = overrides
            .terminations()
            .map(|t| t.user_name.as_str())
            .collect();
        assert_eq!(left, ["ana@northwind.example"]);
    }

    // Absent file: empty. Save then load round-trips, with mode 0600 and no temporary file
    // left behind; the first record of a user wins; a broken or future file is an error
    // naming it.
    #[test]
    fn load_save_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".scimctl/overrides.json");
        assert!(Overrides::load(&path).unwrap().is_empty());
        let mut o = Overrides::default();
        assert!(o.record_termination(
            " ana@northwind.example ",
            "2026-11-23T10:00:00Z",
            Some("left")
        ));
        assert!(!o.record_termination("Ana@northwind.example", "2026-11-24T10:00:00Z", None));
        o.save(&path).unwrap();
        let back = Overrides::load(&path).unwrap();
        assert_eq!(back, o);
        let t = back.termination("ANA@northwind.example").unwrap();
        assert_eq!(
            (t.user_name.as_str(), t.at.as_str()),
            ("ana@northwind.example", "2026-11-23T10:00:00Z")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1, "no temporary file left");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 1"), "{text}");

        std::fs::write(&path, "{\"version\": 1, \"terminations\": [{}]}").unwrap();
        let e = Overrides::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("overrides.json is not a valid overrides file: missing field"),
            "{e}"
        );
        std::fs::write(&path, "{\"version\": 2}").unwrap();
        let e = Overrides::load(&path).unwrap_err().to_string();
        assert!(e.contains("version 2 is not supported"), "{e}");
    }
}
