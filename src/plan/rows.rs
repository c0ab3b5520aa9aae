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

use super::{AttrDiff, Change, Edit, Kind, Multi};

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
        if self.derived || !matches!(self.kind, Kind::User | Kind::Group) {
            return;
        }
        if create_rows(self.kind, &self.key, &self.edits).as_deref() == Some(&self.diff[..]) {
            self.diff = Vec::new();
            self.derived = true;
        }
    }
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
                after: Some(value.clone()),
                ..AttrDiff::default()
            },
            Edit::SetManager { to } => AttrDiff {
                attribute: "manager".into(),
                after: Some(Value::from(to.name.clone())),
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
                added: members.iter().map(|m| m.name.clone()).collect(),
                ..AttrDiff::default()
            },
            Edit::Grants { add, remove } if remove.is_empty() => AttrDiff {
                attribute: "roleGrants".into(),
                added: add.iter().map(super::GrantRef::label).collect(),
                ..AttrDiff::default()
            },
            _ => return None,
        };
        rows.push(row);
    }
    Some(rows)
}

/// How a value a create adds shows in its row, as the planner labels it.
fn label(attr: Multi, value: &Value) -> Option<String> {
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
