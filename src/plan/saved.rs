//! The JSON plan document: what `plan --format json` prints and `plan --out` saves.
//!
//! Version 1 holds `version`, `summary` (a count per action), `desiredHash` (SHA-256 over
//! each desired-state file's relative path and SHA-256, in path order), `checksum` (SHA-256
//! of `desiredHash`, `changes` and `warnings` as written), `warnings`, and
//! `changes`: per change `action`, `kind`, `key`, live `id` and `version` (the `meta.version`
//! it was computed against), `source`, the attribute-level `diff`, the `edits` to send, and
//! `blocked` with the reason when a safety rule holds it back, and the `target` it was made
//! against. `apply --plan` verifies the checksum, the hash and the target before sending
//! anything.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::render::JSON_VERSION;
use super::{Change, Plan, Summary, Warning};

/// The versioned JSON form of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument {
    /// Format version ([`JSON_VERSION`]).
    pub version: u32,
    /// Count per action.
    pub summary: Summary,
    /// SHA-256 of the desired-state files the plan was made from.
    pub desired_hash: String,
    /// SHA-256 of `desiredHash`, `changes` and `warnings` as serialized here (the summary is
    /// derived from the changes again when a plan is read).
    pub checksum: String,
    /// Changes in plan order.
    pub changes: Vec<Change>,
    /// Warnings.
    pub warnings: Vec<Warning>,
    /// The target the plan was made against (a URL, or the sandbox and its state file), so
    /// `apply --plan` can refuse to send it anywhere else. Covered by the checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// SHA-256 of the tenant as read for the plan (`session::live_hash`): when the tenant
    /// still hashes the same at apply time, the saved changes must be exactly the ones a plan
    /// made then gives. Covered by the checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_hash: Option<String>,
}

/// Why a saved plan cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// Not a plan document.
    #[error("not a scimctl plan: {0}")]
    Format(String),
    /// Written by another format version.
    #[error("plan format version {found} is not supported (this scimctl reads {JSON_VERSION})")]
    Version {
        /// The version found.
        found: u32,
    },
    /// Edited after it was written.
    #[error("the plan's checksum does not match its changes: it was edited or truncated")]
    Checksum,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// SHA-256 over what a saved plan's meaning rests on: the desired-state hash, the changes
/// and the warnings.
fn checksum(
    desired_hash: &str,
    changes: &[Change],
    warnings: &[Warning],
    target: Option<&str>,
    live_hash: Option<&str>,
) -> String {
    // Streamed into the hash: the JSON of 100,000 changes is some 130 MB, which apply used
    // to hold at once (issue 21, memory).
    let mut hashing = Hashing(Sha256::new());
    let written = match (target, live_hash) {
        (None, None) => serde_json::to_writer(&mut hashing, &(desired_hash, changes, warnings)),
        (Some(t), None) => {
            serde_json::to_writer(&mut hashing, &(desired_hash, changes, warnings, t))
        }
        (t, Some(l)) => {
            serde_json::to_writer(&mut hashing, &(desired_hash, changes, warnings, t, l))
        }
    };
    if written.is_err() {
        // As before: what cannot be serialized hashes as nothing (it never happens: every
        // field is plain data).
        return hex(&Sha256::digest([]));
    }
    hex(&hashing.0.finalize())
}

/// A writer that feeds a SHA-256.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `/`-separated path of `path` relative to `root`.
fn relative_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// SHA-256 over desired-state files: each file's path (relative to `root`, `/`-separated)
/// and contents, in path order, so the hash does not depend on where the checkout lives.
pub fn desired_hash<'a>(
    root: &Path,
    files: impl IntoIterator<Item = (&'a Path, &'a [u8])>,
) -> String {
    let digests: Vec<(&Path, [u8; 32])> = files
        .into_iter()
        .map(|(path, bytes)| (path, Sha256::digest(bytes).into()))
        .collect();
    combine(root, digests.iter().map(|(p, d)| (*p, Some(d))))
}

/// [`desired_hash`] of the files a desired state was loaded from, from the digests the
/// loader recorded as it read them: no file is read again.
#[must_use]
pub fn desired_hash_of(root: &Path, sources: &crate::model::SourceMap) -> String {
    combine(root, sources.files())
}

/// Hashes (relative name, length-prefixed; file digest) pairs in name order. A file that
/// could not be read has no digest and counts by its name alone.
fn combine<'a>(
    root: &Path,
    files: impl IntoIterator<Item = (&'a Path, Option<&'a [u8; 32]>)>,
) -> String {
    let mut named: Vec<(String, Option<&[u8; 32]>)> = files
        .into_iter()
        .map(|(path, digest)| (relative_name(root, path), digest))
        .collect();
    named.sort();
    let mut hasher = Sha256::new();
    for (name, digest) in named {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(digest.map_or(&[0u8; 32][..], |d| &d[..]));
    }
    hex(&hasher.finalize())
}

impl PlanDocument {
    /// The document of `plan`, made from desired state with hash `desired_hash`.
    #[must_use]
    pub fn new(plan: &Plan, desired_hash: String) -> PlanDocument {
        let checksum = checksum(&desired_hash, &plan.changes, &plan.warnings, None, None);
        PlanDocument {
            version: JSON_VERSION,
            summary: plan.summary(),
            desired_hash,
            checksum,
            changes: plan.changes.clone(),
            warnings: plan.warnings.clone(),
            target: None,
            live_hash: None,
        }
    }

    /// The checksum `PlanDocument::new(plan, desired_hash).with_target(target)` carries,
    /// without copying the plan into a document (apply and watch only need the checksum,
    /// for the audit log).
    #[must_use]
    pub fn checksum_for(plan: &Plan, desired_hash: &str, target: &str) -> String {
        checksum(
            desired_hash,
            &plan.changes,
            &plan.warnings,
            Some(target),
            None,
        )
    }

    /// The same document, recording the target it was planned against.
    #[must_use]
    pub fn with_target(mut self, target: &str) -> PlanDocument {
        self.target = Some(target.to_owned());
        self.seal();
        self
    }

    /// The same document, recording the hash of the tenant it was planned against.
    #[must_use]
    pub fn with_live_hash(mut self, live_hash: String) -> PlanDocument {
        self.live_hash = Some(live_hash);
        self.seal();
        self
    }

    fn seal(&mut self) {
        self.checksum = checksum(
            &self.desired_hash,
            &self.changes,
            &self.warnings,
            self.target.as_deref(),
            self.live_hash.as_deref(),
        );
    }

    /// Reads a saved plan, checking its version and checksum.
    pub fn from_json(text: &str) -> Result<PlanDocument, SavedPlanError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SavedPlanError::Format(e.to_string()))?;
        let found = value
            .get("version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| SavedPlanError::Format("no `version`".into()))?;
        if found != u64::from(JSON_VERSION) {
            return Err(SavedPlanError::Version {
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let mut doc: PlanDocument =
            serde_json::from_value(value).map_err(|e| SavedPlanError::Format(e.to_string()))?;
        let expected = checksum(
            &doc.desired_hash,
            &doc.changes,
            &doc.warnings,
            doc.target.as_deref(),
            doc.live_hash.as_deref(),
        );
        if expected != doc.checksum {
            return Err(SavedPlanError::Checksum);
        }
        // The counts are derived from the changes, not trusted.
        doc.summary = doc.plan().summary();
        Ok(doc)
    }

    /// The plan again.
    #[must_use]
    pub fn plan(&self) -> Plan {
        Plan {
            changes: self.changes.clone(),
            warnings: self.warnings.clone(),
            unchanged: self.summary.noop,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::plan::tests::mixed_plan;

    fn saved() -> (PlanDocument, String) {
        let doc = PlanDocument::new(&mixed_plan(), "ab".repeat(32));
        let text = serde_json::to_string_pretty(&doc).expect("json");
        (doc, text)
    }

    fn edited(text: &str, change: impl FnOnce(&mut Value)) -> String {
        let mut value: Value = serde_json::from_str(text).expect("json");
        change(&mut value);
        value.to_string()
    }

    // A saved plan reads back as the same document and the same plan.
    #[test]
    fn round_trip() {
        let (doc, text) = saved();
        let read = PlanDocument::from_json(&text).expect("reads");
        assert_eq!(read, doc);
        assert_eq!(read.plan(), mixed_plan());
        assert_eq!(read.summary, mixed_plan().summary());
        // Compact JSON is the same document.
        let compact = serde_json::to_string(&doc).expect("json");
        assert_eq!(PlanDocument::from_json(&compact).expect("reads"), doc);
    }

    // The checksum apply and watch record without building a document is the one the
    // document carries, and it is the SHA-256 of the same JSON bytes as ever (a plan saved
    // by an earlier build still verifies).
    #[test]
    fn the_streamed_checksum_is_the_documents() {
        let plan = mixed_plan();
        let hash = "ab".repeat(32);
        let doc = PlanDocument::new(&plan, hash.clone()).with_target("https://t.example/scim");
        assert_eq!(
            PlanDocument::checksum_for(&plan, &hash, "https://t.example/scim"),
            doc.checksum
        );
        let bytes = serde_json::to_vec(&(
            &hash,
            &plan.changes,
            &plan.warnings,
            "https://t.example/scim",
        ))
        .expect("json");
        assert_eq!(doc.checksum, hex(&Sha256::digest(bytes)));
    }

    // Any edit of the changes, however small, breaks the checksum; so does dropping one, or
    // editing the warnings or the desired-state hash.
    #[test]
    fn tampering_is_detected() {
        let (_, text) = saved();
        let tampered = [
            edited(&text, |v| {
                v["changes"][3]["edits"][0]["value"] = json!("CEO");
            }),
            edited(&text, |v| v["changes"][4]["blocked"] = Value::Null),
            edited(&text, |v| {
                v["changes"].as_array_mut().expect("changes").pop();
            }),
            edited(&text, |v| v["warnings"] = json!([])),
            edited(&text, |v| v["desiredHash"] = json!("cd".repeat(32))),
        ];
        for text in tampered {
            let err = PlanDocument::from_json(&text).expect_err("tampered");
            assert!(matches!(err, SavedPlanError::Checksum), "{err}");
            assert_eq!(
                err.to_string(),
                "the plan's checksum does not match its changes: it was edited or truncated"
            );
        }
        // The target is covered too: a plan cannot be pointed at another tenant by editing it.
        let aimed = PlanDocument::new(&mixed_plan(), "ab".repeat(32))
            .with_target("https://a.example/scim/v2");
        let aimed_text = serde_json::to_string(&aimed).expect("json");
        assert_eq!(PlanDocument::from_json(&aimed_text).expect("reads"), aimed);
        for text in [
            edited(&aimed_text, |v| {
                v["target"] = json!("https://b.example/scim/v2");
            }),
            edited(&aimed_text, |v| {
                v.as_object_mut().expect("object").remove("target");
            }),
        ] {
            assert!(matches!(
                PlanDocument::from_json(&text),
                Err(SavedPlanError::Checksum)
            ));
        }
        // The summary is derived again from the changes, so editing it changes nothing; it
        // must still parse.
        let inflated = edited(&text, |v| v["summary"]["delete"] = json!(999));
        let read = PlanDocument::from_json(&inflated).expect("reads");
        assert_eq!(read.summary, mixed_plan().summary());
        let text = edited(&text, |v| v["summary"] = json!("lots"));
        assert!(matches!(
            PlanDocument::from_json(&text),
            Err(SavedPlanError::Format(_))
        ));
    }

    // Another format version is refused before anything else is read; so is anything that
    // is not a plan.
    #[test]
    fn version_and_format() {
        let (_, text) = saved();
        let newer = edited(&text, |v| {
            v["version"] = json!(2);
            v["changes"] = json!("a shape version 1 does not know");
        });
        let err = PlanDocument::from_json(&newer).expect_err("version 2");
        assert!(matches!(err, SavedPlanError::Version { found: 2 }), "{err}");
        assert_eq!(
            err.to_string(),
            "plan format version 2 is not supported (this scimctl reads 1)"
        );
        let huge = edited(&text, |v| v["version"] = json!(u64::MAX));
        assert!(matches!(
            PlanDocument::from_json(&huge),
            Err(SavedPlanError::Version { found: u32::MAX })
        ));
        for (bad, why) in [
            (text[..text.len() / 2].to_owned(), "EOF while parsing"),
            (edited(&text, |v| v["version"] = json!("1")), "no `version`"),
            ("[]".to_owned(), "no `version`"),
        ] {
            let err = PlanDocument::from_json(&bad).expect_err("not a plan");
            assert!(matches!(err, SavedPlanError::Format(_)), "{err}");
            assert!(err.to_string().contains(why), "{err}");
        }
    }

    // The desired-state hash names files relative to the directory, in path order: the same
    // files hash the same wherever the checkout is and however they were listed; any byte or
    // name changes it.
    #[test]
    fn desired_hash_is_stable() {
        let files = |root: &str| {
            [
                (format!("{root}/users/b.yaml"), b"users: []\n".to_vec()),
                (format!("{root}/a.yaml"), b"groups: []\n".to_vec()),
            ]
        };
        let hash = |root: &str, files: &[(String, Vec<u8>)]| {
            desired_hash(
                Path::new(root),
                files
                    .iter()
                    .map(|(p, b)| (Path::new(p.as_str()), b.as_slice())),
            )
        };
        let here = hash("/srv/org", &files("/srv/org"));
        assert_eq!(here.len(), 64);
        let mut elsewhere = files("/home/ci/checkout");
        elsewhere.reverse();
        assert_eq!(hash("/home/ci/checkout", &elsewhere), here);
        let mut changed = files("/srv/org");
        changed[0].1.push(b' ');
        assert_ne!(hash("/srv/org", &changed), here);
        let mut moved = files("/srv/org");
        moved[0].0 = "/srv/org/users/c.yaml".into();
        assert_ne!(hash("/srv/org", &moved), here);
        // The loader's recorded digests give the same hash without reading files again.
        let loaded = crate::desired::load_texts(&[
            ("org/users/b.yaml", "users: []\n"),
            ("org/a.yaml", "groups: []\n"),
        ])
        .expect("loads");
        assert_eq!(
            desired_hash_of(Path::new("org"), &loaded.state.sources),
            hash("/srv/org", &files("/srv/org"))
        );
    }
}
