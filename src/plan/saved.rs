//! The JSON plan document: what `plan --format json` prints and `plan --out` saves.
//!
//! Version 1 holds `version`, `summary` (a count per action), `desiredHash` (SHA-256 of the
//! desired-state files), `checksum` (SHA-256 of the changes as written), `warnings`, and
//! `changes`: per change `action`, `kind`, `key`, live `id` and `version` (the `meta.version`
//! it was computed against), `source`, the attribute-level `diff`, the `edits` to send, and
//! `blocked` with the reason when a safety rule holds it back. `apply --plan` verifies the
//! checksum and the hash before sending anything.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::render::JSON_VERSION;
use super::{Change, Plan, Summary, Warning};

/// The versioned JSON form of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanDocument {
    /// Format version ([`JSON_VERSION`]).
    pub version: u32,
    /// Count per action.
    pub summary: Summary,
    /// SHA-256 of the desired-state files the plan was made from.
    pub desired_hash: String,
    /// SHA-256 of `changes` as serialized here.
    pub checksum: String,
    /// Changes in plan order.
    pub changes: Vec<Change>,
    /// Warnings.
    pub warnings: Vec<Warning>,
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

/// SHA-256 over the changes' JSON.
fn checksum(changes: &[Change]) -> String {
    let bytes = serde_json::to_vec(changes).unwrap_or_default();
    hex(&Sha256::digest(bytes))
}

/// SHA-256 over desired-state files: each file's path (relative to `root`, `/`-separated)
/// and contents, in path order, so the hash does not depend on where the checkout lives.
pub fn desired_hash<'a>(
    root: &Path,
    files: impl IntoIterator<Item = (&'a Path, &'a [u8])>,
) -> String {
    let mut named: Vec<(String, &[u8])> = files
        .into_iter()
        .map(|(path, bytes)| {
            let rel = path.strip_prefix(root).unwrap_or(path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            (name, bytes)
        })
        .collect();
    named.sort();
    let mut hasher = Sha256::new();
    for (name, bytes) in named {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    hex(&hasher.finalize())
}

impl PlanDocument {
    /// The document of `plan`, made from desired state with hash `desired_hash`.
    #[must_use]
    pub fn new(plan: &Plan, desired_hash: String) -> PlanDocument {
        PlanDocument {
            version: JSON_VERSION,
            summary: plan.summary(),
            desired_hash,
            checksum: checksum(&plan.changes),
            changes: plan.changes.clone(),
            warnings: plan.warnings.clone(),
        }
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
        let doc: PlanDocument =
            serde_json::from_value(value).map_err(|e| SavedPlanError::Format(e.to_string()))?;
        if checksum(&doc.changes) != doc.checksum {
            return Err(SavedPlanError::Checksum);
        }
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
