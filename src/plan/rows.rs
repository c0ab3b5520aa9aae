//! A create's diff rows, told by its edits rather than stored (issue 21: a plan of 100,000
//! creates held a `Vec<AttrDiff>` beside the edits of every one, each value twice).
//!
//! Every edit of a user or group create sets something that was not there: its rows are
//! the natural key, then one row per edit, `after` or `added`, never `before` or `removed`.
//! The planner checks that the rows it built are exactly those [`create_rows`] gives back
//! before it drops them ([`Change::derived`]); a create whose rows say something the edits
//! do not (a default role's `(policy.defaultRoles)` label) keeps them stored. Everything
//! that reads rows goes through [`Change::rows`]; everything that changes them or the edits
//! of a change first gives it its own rows ([`Change::rows_mut`]), so a derived change
//! always shows what the planner built. Serialised plans hold the rows as they always did.

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use super::{AttrDiff, Change, Complex, Edit, Kind, Multi};

impl Change {
    /// The attribute-level rows: the stored ones, or those of a create told by its edits.
    #[must_use]
    pub fn rows(&self) -> Cow<'_, [AttrDiff]> {
        if self.derived {
            Cow::Owned(create_rows(self.kind, &self.key, &self.edits).unwrap_or_default())
        } else {
            Cow::Borrowed(&self.diff)
        }
    }

    /// The rows, stored from now on, to change them (or before changing the edits, which
    /// would otherwise change the rows with them).
    pub fn rows_mut(&mut self) -> &mut Vec<AttrDiff> {
        if self.derived {
            self.diff = self.rows().into_owned();
            self.derived = false;
        }
        &mut self.diff
    }

    /// Drops the rows of a create when its edits tell them exactly (checked here).
    pub(super) fn derive_rows(&mut self) {
        #[cfg(test)]
        if KEEP_ROWS.with(std::cell::Cell::get) {
            return;
        }
        if self.derived || !matches!(self.kind, Kind::User | Kind::Group) {
            return;
        }
        if create_rows(self.kind, &self.key, &self.edits).as_deref() == Some(&self.diff[..]) {
            self.diff = Vec::new();
            self.derived = true;
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests only: when set, the planner keeps every create's rows stored, as it always did
    /// before rows were derived, to compare with.
    static KEEP_ROWS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tests only: `f` with every create's rows kept stored by the planner.
#[cfg(test)]
pub(crate) fn keeping_rows<T>(f: impl FnOnce() -> T) -> T {
    KEEP_ROWS.with(|k| k.set(true));
    let out = f();
    KEEP_ROWS.with(|k| k.set(false));
    out
}

/// The rows of a create of `kind` named `key` with `edits`: the natural key, then a row per
/// edit in order (the natural key's own `Set` aside); `None` when an edit is one no create
/// of the planner makes.
pub(crate) fn create_rows(kind: Kind, key: &str, edits: &[Edit]) -> Option<Vec<AttrDiff>> {
    let mut rows = Vec::with_capacity(1 + edits.len());
    rows.push(AttrDiff {
        attribute: kind.natural_key().into(),
        after: Some(Value::from(key)),
        ..AttrDiff::default()
    });
    for edit in edits {
        let row = match edit {
            Edit::Set { attr, .. } if attr.name() == kind.natural_key() => continue,
            Edit::Set { attr, value } => AttrDiff {
                attribute: attr.name().to_owned(),
                after: Some(value.to_value()),
                ..AttrDiff::default()
            },
            Edit::SetManager { to } => AttrDiff {
                attribute: "manager".into(),
                after: Some(Value::from(to.name.as_str())),
                ..AttrDiff::default()
            },
            Edit::Add { attr, values } => AttrDiff {
                attribute: attr.name().to_owned(),
                added: values
                    .iter()
                    .map(|v| label(*attr, v))
                    .collect::<Option<_>>()?,
                ..AttrDiff::default()
            },
            Edit::AddMembers { members } => AttrDiff {
                attribute: "members".into(),
                added: members.iter().map(|m| m.name.to_string()).collect(),
                ..AttrDiff::default()
            },
            Edit::Grants { add, remove } if remove.is_empty() => AttrDiff {
                attribute: "roleGrants".into(),
                added: add.iter().map(super::GrantRef::label).collect(),
                ..AttrDiff::default()
            },
            Edit::Licenses { add, remove } if remove.is_empty() => AttrDiff {
                attribute: "license".into(),
                added: add.iter().map(super::licenses::LicenseRef::label).collect(),
                ..AttrDiff::default()
            },
            _ => return None,
        };
        rows.push(row);
    }
    Some(rows)
}

/// How a value a create adds shows in its row, as the planner labels it.
fn label(attr: Multi, value: &Complex) -> Option<String> {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    match attr {
        Multi::Emails | Multi::PhoneNumbers => {
            let address = text("value")?;
            Some(match text("type") {
                Some(t) => format!("{address} ({t})"),
                None => address.to_owned(),
            })
        }
        Multi::Roles => text("value").map(str::to_owned),
        Multi::RoutingSkills | Multi::RoutingLanguages => {
            let proficiency = value.get("proficiency").and_then(Value::as_f64)?;
            Some(format!("{} ({proficiency})", text("name")?))
        }
    }
}

impl PartialEq for Change {
    fn eq(&self, other: &Change) -> bool {
        self.action == other.action
            && self.kind == other.kind
            && self.key == other.key
            && self.id == other.id
            && self.version == other.version
            && self.source == other.source
            && self.edits == other.edits
            && self.present == other.present
            && self.blocked == other.blocked
            && self.held_by == other.held_by
            && self.rows() == other.rows()
    }
}

impl Serialize for Change {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Change", 11)?;
        s.serialize_field("action", &self.action)?;
        s.serialize_field("kind", &self.kind)?;
        s.serialize_field("key", &self.key)?;
        match &self.id {
            Some(id) => s.serialize_field("id", id)?,
            None => s.skip_field("id")?,
        }
        match &self.version {
            Some(version) => s.serialize_field("version", version)?,
            None => s.skip_field("version")?,
        }
        s.serialize_field("source", &self.source)?;
        s.serialize_field("diff", &self.rows())?;
        s.serialize_field("edits", &self.edits)?;
        if self.present.is_empty() {
            s.skip_field("present")?;
        } else {
            s.serialize_field("present", &self.present)?;
        }
        match &self.blocked {
            Some(blocked) => s.serialize_field("blocked", blocked)?,
            None => s.skip_field("blocked")?,
        }
        match &self.held_by {
            Some(rule) => s.serialize_field("heldBy", rule)?,
            None => s.skip_field("heldBy")?,
        }
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::keeping_rows;
    use crate::plan::tests::{desired_with, genesys_target, plan_ok, snapshot};
    use crate::plan::{Action, Kind, PlanOptions};

    const RESOURCES: &str = r#"
users:
  - userName: ann@x.example
    displayName: Ann
    title: Lead
    active: true
    emails: [{value: ann@x.example, type: work, primary: true}, {value: ann@home.example}]
    phoneNumbers: [{value: "+14155550100", type: mobile}]
    routingSkills: [{name: Billing, proficiency: 3}, {name: Sales, proficiency: 4.5}]
  - userName: bob@x.example
    manager: ann@x.example
    employeeNumber: "7"
    department: Support
groups:
  - displayName: Ops
    description: Operations
    externalId: ops-1
    members: [ann@x.example, bob@x.example, Sub]
  - displayName: Sub
"#;

    // Creates of users and groups keep no rows of their own: their edits tell them, and
    // the rows, the changes and the JSON are those of the plan that stores every row.
    #[test]
    fn creates_derive_the_rows_the_planner_built() {
        for genesys in [false, true] {
            let options = PlanOptions {
                target: if genesys {
                    genesys_target()
                } else {
                    PlanOptions::default().target
                },
                ..PlanOptions::default()
            };
            let desired = desired_with("", RESOURCES);
            let live = snapshot(&[], &[]);
            let derived = plan_ok(&desired, &live, &options);
            let stored = keeping_rows(|| plan_ok(&desired, &live, &options));
            assert_eq!(derived.changes.len(), 4, "{derived:#?}");
            for (d, s) in derived.changes.iter().zip(&stored.changes) {
                assert!(d.action == Action::Create && matches!(d.kind, Kind::User | Kind::Group));
                assert!(d.derived && d.diff.is_empty(), "{d:#?}");
                assert!(!s.derived && !s.diff.is_empty(), "{s:#?}");
                assert_eq!(d.rows(), s.rows());
                assert_eq!(d, s);
            }
            assert_eq!(
                serde_json::to_string(&derived).unwrap(),
                serde_json::to_string(&stored).unwrap()
            );
        }
    }

    // A change made from a derived one keeps the rows the planner built, whatever is later
    // done to its edits.
    #[test]
    fn rows_mut_stores_the_rows_before_edits_change() {
        let desired = desired_with("", RESOURCES);
        let plan = plan_ok(&desired, &snapshot(&[], &[]), &PlanOptions::default());
        let mut c = plan.changes[0].clone();
        let rows = c.rows().into_owned();
        c.rows_mut();
        assert!(!c.derived);
        c.edits.clear();
        assert_eq!(c.rows(), rows);
    }

    // Every edit takes the room of the biggest variant, and a plan of 100,000 creates
    // holds six or so per create until it is carried out: the rare big ones (a role's
    // body, a value filter) are boxed so that this does not creep back up (it was 104).
    #[test]
    fn edits_stay_small() {
        let size = std::mem::size_of::<crate::plan::Edit>();
        assert!(size <= 64, "Edit is {size} bytes");
    }
}
