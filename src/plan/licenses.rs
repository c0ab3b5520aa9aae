//! Genesys Cloud licenses (issue 18, item 1): a YAML license that names a license definition
//! (`genesysLicense: cloudCX2`) is assigned for real to the users whose `license` it is.
//!
//! Managed only when the snapshot holds the org's licenses ([`Snapshot::licenses`], read by
//! the caller when [`mapped`] says so, on Genesys Cloud only), and only for the desired users
//! that have a `license`. For such a user the mapped definition is added when not held; of
//! the definitions it holds and should not, `ownership.licenses` decides which go: `listed`
//! takes away only definitions some YAML license maps, `all` every one, a selector those it
//! selects by id besides the mapped ones. A user without `license` keeps what it holds. On a
//! target without licenses (plain SCIM) a mapped license stays the local rule about roles,
//! and the plan says so once. Pure.

use std::collections::BTreeSet;

use crate::desired::DesiredState;
use crate::model::tenant::{LiveLicenses, Snapshot};
use crate::model::{OwnershipMode, Spanned, User};

use super::{AttrDiff, Edit, PlanError, Warning};

/// Whether some YAML license names a license definition (what makes the client read them).
#[must_use]
pub fn mapped(desired: &DesiredState) -> bool {
    desired
        .licenses
        .iter()
        .any(|l| l.value.genesys_license.is_some())
}

/// A license definition as a plan names it: the YAML license that maps it (or the id again
/// when none does) and its id.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
pub struct LicenseRef {
    /// The YAML license's name, or the definition id when no YAML license maps it.
    pub name: String,
    /// The license definition's id (what `POST /api/v2/license/organization` names).
    pub id: String,
}

impl LicenseRef {
    /// How it shows in a diff: `Name (id)`, or the id alone.
    #[must_use]
    pub fn label(&self) -> String {
        if self.name == self.id {
            self.id.clone()
        } else {
            format!("{} ({})", self.name, self.id)
        }
    }
}

/// The YAML license name that maps definition `id`, if one does.
fn name_of(desired: &DesiredState, id: &str) -> Option<String> {
    desired
        .licenses
        .iter()
        .find(|l| l.value.genesys_license.as_ref().is_some_and(|g| **g == *id))
        .map(|l| l.value.name.to_string())
}

/// `id` as a plan names it.
#[must_use]
pub fn license_ref(desired: &DesiredState, id: &str) -> LicenseRef {
    LicenseRef {
        name: name_of(desired, id).unwrap_or_else(|| id.to_owned()),
        id: id.to_owned(),
    }
}

/// Refuses a plan whose YAML maps a license to a definition the org does not have: every such
/// license, with where it is written and the ids the org knows.
pub(super) fn check(desired: &DesiredState, live: &Snapshot) -> Result<(), PlanError> {
    let Some(licenses) = &live.licenses else {
        return Ok(());
    };
    let known: Vec<&str> = licenses.definitions.iter().map(|d| d.id.as_str()).collect();
    let unknown: Vec<String> = desired
        .licenses
        .iter()
        .filter_map(|l| l.value.genesys_license.as_ref())
        .filter(|g| !licenses.defines(g))
        .map(|g| {
            let file = desired
                .sources
                .path(g.span.file)
                .map_or_else(|| "desired state".to_owned(), |p| p.display().to_string());
            format!(
                "{file}:{}:{}: genesysLicense {:?} is not a license definition of the org",
                g.span.line, g.span.col, g.value
            )
        })
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(PlanError::UnknownLicense {
        unknown,
        known: known.join(", "),
    })
}

/// The warning of a plan on a target that cannot assign licenses, when YAML maps some.
pub(super) fn unassignable(desired: &DesiredState, live: &Snapshot) -> Option<Warning> {
    if live.licenses.is_some() {
        return None;
    }
    let names: Vec<&Spanned<crate::model::License>> = desired
        .licenses
        .iter()
        .filter(|l| l.value.genesys_license.is_some())
        .collect();
    let first = names.first()?;
    Some(Warning {
        message: format!(
            "license(s) {} name a Genesys Cloud license definition (genesysLicense), but this \
             target cannot assign licenses: they stay a local rule about roles",
            names
                .iter()
                .map(|l| format!("{:?}", l.value.name.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        source: Some(super::Source::at(&desired.sources, first.span)),
    })
}

/// The warning of a plan that meets licenses held under ids the org's definitions do not
/// list (a definition withdrawn, or a tenant scimctl did not shape), which
/// `ownership.licenses` would otherwise take: they are left as they are, because a license
/// batch that names an unknown license is refused whole, and would fail every other user's
/// change in it, on every run.
pub(super) fn undefined_held(desired: &DesiredState, live: &Snapshot) -> Option<Warning> {
    let licenses = live.licenses.as_ref()?;
    let mut ids = BTreeSet::new();
    let mut users = 0;
    for held in licenses.held.values() {
        let mut any = false;
        for id in held {
            if !licenses.defines(id) && owned(desired, id) {
                ids.insert(id.as_str());
                any = true;
            }
        }
        users += usize::from(any);
    }
    let first: Vec<String> = ids.iter().take(5).map(|id| format!("{id:?}")).collect();
    (!ids.is_empty()).then(|| Warning {
        message: format!(
            "{users} user(s) hold license(s) {}{} that the org's license definitions do not \
             list: ownership.licenses would take them, but they are left as they are (a \
             license request naming an unknown license is refused whole)",
            first.join(", "),
            if ids.len() > first.len() {
                format!(" and {} more", ids.len() - first.len())
            } else {
                String::new()
            }
        ),
        source: None,
    })
}

/// Whether `ownership.licenses` lets the plan take definition `id` from a user.
fn owned(desired: &DesiredState, id: &str) -> bool {
    match &desired.config.ownership.licenses.value {
        OwnershipMode::All => true,
        mode => name_of(desired, id).is_some() || super::diff::owned(mode, id, None),
    }
}

/// The license change of desired `user` (live id `live_id`, `None` for a create): the row and
/// the edit, or `None` when nothing changes or licenses are not managed for it.
pub(crate) fn user_licenses(
    desired: &DesiredState,
    licenses: Option<&LiveLicenses>,
    user: &User,
    live_id: Option<&str>,
) -> Option<(AttrDiff, Edit)> {
    let licenses = licenses?;
    let name = user.license.as_ref()?;
    // Named by the user's own license: two YAML licenses may map one definition.
    let wanted: Option<LicenseRef> = desired.license(name).and_then(|l| {
        l.value.genesys_license.as_ref().map(|g| LicenseRef {
            name: l.value.name.to_string(),
            id: g.value.to_string(),
        })
    });
    let want = wanted.as_ref().map(|w| w.id.clone());
    let held: BTreeSet<&str> = live_id
        .map(|id| licenses.of(id))
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect();
    let add: Vec<LicenseRef> = wanted
        .into_iter()
        .filter(|w| !held.contains(w.id.as_str()))
        .collect();
    // A license no definition lists is left alone (see `undefined_held`).
    let remove: Vec<LicenseRef> = held
        .iter()
        .filter(|h| want.as_deref() != Some(**h) && owned(desired, h) && licenses.defines(h))
        .map(|h| license_ref(desired, h))
        .collect();
    if add.is_empty() && remove.is_empty() {
        return None;
    }
    Some((
        AttrDiff {
            attribute: "license".into(),
            added: add.iter().map(LicenseRef::label).collect(),
            removed: remove.iter().map(LicenseRef::label).collect(),
            ..AttrDiff::default()
        },
        Edit::Licenses {
            add: add.into(),
            remove: remove.into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::model::tenant::{LicenseDefinition, LiveLicenses};
    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Edit, Kind, PlanOptions};

    // Under `ownership.licenses: all`, a license the user holds under an id no definition
    // lists (an empty one too) is left alone, with one warning for the plan, while a defined
    // license YAML does not give still goes: a batch naming an unknown license would fail
    // every other change in it. The license given is named by the user's own license, though
    // another YAML license maps the same definition first.
    #[test]
    fn licenses_no_definition_lists_are_left_alone() {
        let desired = desired_with(
            "ownership: {licenses: all}\n",
            "licenses:\n  - name: Pro\n    allowedRoles: []\n    genesysLicense: cx1\n\
             \x20 - name: Elite\n    allowedRoles: []\n    genesysLicense: cx1\n\
             users:\n  - userName: a@x.example\n    license: Elite\n",
        );
        let mut live = snapshot(&[json!({"id": "u0", "userName": "a@x.example"})], &[]);
        live.licenses = Some(LiveLicenses {
            definitions: ["cx1", "cx2"]
                .map(|id| LicenseDefinition {
                    id: id.into(),
                    description: None,
                })
                .into(),
            held: [(
                "u0".to_owned(),
                vec![String::new(), "cx2".into(), "legacyX".into()],
            )]
            .into(),
        });
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        let a = change(&plan, Kind::User, "a@x.example").expect("a change");
        assert_eq!(
            a.diff[0].added,
            ["Elite (cx1)"],
            "the user's own license names it"
        );
        let Some(Edit::Licenses { add, remove }) =
            a.edits.iter().find(|e| matches!(e, Edit::Licenses { .. }))
        else {
            panic!("{a:#?}");
        };
        let ids = |l: &[super::LicenseRef]| l.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            (ids(add), ids(remove)),
            (vec!["cx1".to_owned()], vec!["cx2".to_owned()])
        );
        let warned: Vec<_> = plan
            .warnings
            .iter()
            .filter(|w| w.message.contains("definitions do not list"))
            .collect();
        assert_eq!(warned.len(), 1, "{:#?}", plan.warnings);
        assert!(
            warned[0]
                .message
                .starts_with("1 user(s) hold license(s) \"\", \"legacyX\""),
            "{}",
            warned[0].message
        );
    }
}
