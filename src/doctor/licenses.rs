//! Whether the OAuth client may assign the licenses YAML maps (issue 18, item 1), found out
//! without changing the tenant.
//!
//! `POST /api/v2/license/organization` "requires ANY permissions: authorization:grant:add"
//! [.NET SDK 244.0.0 `LicenseApi.md`, `PostLicenseOrganization`]. There is no read-only form of
//! that call (a batch with no entries is still a write request, and doctor only reads), so
//! the check establishes what it can from reads alone:
//! - every `genesysLicense` names a definition the org lists (else plans are refused);
//! - the client's own role grants (read as the `permissions` check reads them) hold
//!   `authorization:grant:add`.
//!
//! What it cannot establish, and says so: whether the org accepts each assignment (a
//! definition the org has no room for, or one Genesys assigns by itself, is answered per
//! user in the batch's `LicenseUpdateStatus`, which only apply sees), and whether a grant of
//! the permission limited to some divisions is enough (UNCONFIRMED: the docs name no
//! division for the call; the simulator enforces no permission at all).

use crate::desired::DesiredState;
use crate::scim::licenses::LicenseDefinition;

use super::{Status, covers};

/// The permission `POST /api/v2/license/organization` requires.
pub(super) const ASSIGN: &str = "authorization:grant:add";

/// The verdict of the license check: status, detail, and the permissions lacking.
pub(super) type Verdict = (Status, String, Vec<String>);

/// The definition ids YAML licenses map (`genesysLicense`), in file order, each once.
pub(super) fn mapped_ids(desired: &DesiredState) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for license in &desired.licenses {
        if let Some(id) = &license.value.genesys_license
            && !ids.iter().any(|i| i == id.as_str())
        {
            ids.push(id.to_string());
        }
    }
    ids
}

/// Works out the check from what was read: the ids YAML maps (`mapped`), the org's
/// definitions (`None`: they could not be read), and the permissions the client's role
/// grants hold (`Err`: why they could not be read).
pub(super) fn classify(
    mapped: &[String],
    definitions: Option<&[LicenseDefinition]>,
    held: Result<&[String], &str>,
) -> Verdict {
    if mapped.is_empty() {
        return (
            Status::Skip,
            "no YAML license names a license definition (genesysLicense): scimctl assigns none"
                .into(),
            Vec::new(),
        );
    }
    if let Some(definitions) = definitions {
        let unknown: Vec<&str> = mapped
            .iter()
            .filter(|id| !definitions.iter().any(|d| d.id == **id))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return (
                Status::Fail,
                format!(
                    "genesysLicense {} names no license definition of the org (plans are refused); the org has: {}",
                    unknown.join(", "),
                    definitions
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Vec::new(),
            );
        }
    }
    let known = if definitions.is_some() {
        format!("the {} definition(s) YAML maps exist", mapped.len())
    } else {
        "the definitions could not be read (see licenses)".to_owned()
    };
    let not_tried = "not tried, since doctor only reads: whether the org accepts each \
                     assignment shows per user when apply sends it";
    match held {
        Err(why) => (
            Status::Warn,
            format!(
                "{known}; whether the client may assign them is not established: its roles cannot be read ({why}); assigning needs {ASSIGN}"
            ),
            Vec::new(),
        ),
        Ok(held) if held.iter().any(|h| covers(h, ASSIGN)) => (
            if definitions.is_some() {
                Status::Pass
            } else {
                Status::Warn
            },
            format!(
                "{known}; the client's roles hold {ASSIGN}, which POST /api/v2/license/organization requires (Genesys API docs); {not_tried}"
            ),
            Vec::new(),
        ),
        Ok(_) => (
            Status::Fail,
            format!(
                "{known}; the client's roles lack {ASSIGN}, which POST /api/v2/license/organization requires: apply cannot assign licenses"
            ),
            vec![ASSIGN.to_owned()],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definitions(ids: &[&str]) -> Vec<LicenseDefinition> {
        ids.iter()
            .map(|id| LicenseDefinition {
                id: (*id).to_owned(),
                description: None,
            })
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    // Nothing mapped: skipped, whatever the client holds.
    #[test]
    fn nothing_mapped_is_skipped() {
        let (status, detail, needed) = classify(&[], None, Err("refused"));
        assert_eq!(status, Status::Skip);
        assert!(detail.contains("assigns none"), "{detail}");
        assert!(needed.is_empty());
    }

    // The permission held (also through a wildcard) and every mapped definition known: a
    // pass that says what was not tried.
    #[test]
    fn permission_held_passes_and_says_what_was_not_tried() {
        let defs = definitions(&["cloudCX1", "cloudCX2"]);
        for held in [
            strings(&["authorization:grant:add"]),
            strings(&["authorization:*:*"]),
        ] {
            let (status, detail, needed) =
                classify(&strings(&["cloudCX1"]), Some(&defs), Ok(&held));
            assert_eq!(status, Status::Pass, "{detail}");
            assert!(detail.contains("not tried"), "{detail}");
            assert!(needed.is_empty());
        }
    }

    // The permission lacking: a failure naming exactly it.
    #[test]
    fn permission_lacking_fails_and_names_it() {
        let defs = definitions(&["cloudCX1"]);
        let held = strings(&["authorization:grant:view", "directory:user:add"]);
        let (status, detail, needed) = classify(&strings(&["cloudCX1"]), Some(&defs), Ok(&held));
        assert_eq!(status, Status::Fail, "{detail}");
        assert_eq!(needed, ["authorization:grant:add"]);
        assert!(detail.contains("lack authorization:grant:add"), "{detail}");
    }

    // A mapped id the org does not define fails before the permission is looked at.
    #[test]
    fn unknown_definition_fails() {
        let defs = definitions(&["cloudCX1"]);
        let held = strings(&["*"]);
        let (status, detail, _) =
            classify(&strings(&["cloudCX1", "cloudCX9"]), Some(&defs), Ok(&held));
        assert_eq!(status, Status::Fail);
        assert!(
            detail.starts_with("genesysLicense cloudCX9 names no"),
            "{detail}"
        );
    }

    // Roles unreadable, or definitions unreadable: a warning that claims nothing.
    #[test]
    fn what_could_not_be_read_is_not_claimed() {
        let defs = definitions(&["cloudCX1"]);
        let (status, detail, _) = classify(&strings(&["cloudCX1"]), Some(&defs), Err("403"));
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("not established"), "{detail}");
        let held = strings(&["authorization:grant:add"]);
        let (status, detail, _) = classify(&strings(&["cloudCX1"]), None, Ok(&held));
        assert_eq!(status, Status::Warn);
        assert!(detail.contains("could not be read"), "{detail}");
    }
}
