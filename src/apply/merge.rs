//! Merging a planned change with what a fresh copy of the object needs now.
//!
//! When an object moved between plan and write, the applier re-plans it
//! ([`Replanner`](crate::plan::Replanner)) and sends only the part of the fresh change that
//! carries out what was planned: attributes the plan did not touch are left as the other
//! writer left them (an unmanaged attribute is never in a change anyway), members, roles,
//! role grants and licenses the plan did not add or remove stay as they are, and a single-valued attribute that the
//! other writer changed to something else than the plan's `before` is an overlap: that
//! operation fails, reported with both values. Pure.

use std::collections::HashSet;

use serde_json::Value;

use crate::plan::{AttrDiff, Change, Complex, Edit, Multi};

/// What to do after a re-read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Merge {
    /// The object is already as planned.
    Nothing,
    /// Send this change (against the fresh version it carries).
    Send(Change),
    /// Someone else changed an attribute this change sets: the reason, with both values.
    Overlap(String),
}

fn diff_root(d: &AttrDiff) -> &str {
    d.attribute
        .split_once('[')
        .map_or(d.attribute.as_str(), |(root, _)| root)
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(unset)".to_owned(), Value::to_string)
}

/// Lower-cased names a set diff of `planned` adds and removes, per attribute root.
fn planned_elements(planned: &Change, root: &str) -> (HashSet<String>, HashSet<String>) {
    let mut added = HashSet::new();
    let mut removed = HashSet::new();
    for d in planned.rows().iter().filter(|d| diff_root(d) == root) {
        added.extend(d.added.iter().map(|s| s.to_lowercase()));
        removed.extend(d.removed.iter().map(|s| s.to_lowercase()));
    }
    (added, removed)
}

/// Keeps of `edit` only the members, roles, grants or licenses the plan meant to add or
/// remove; `None` when nothing is left.
fn restrict(edit: Edit, planned: &Change) -> Option<Edit> {
    let keep = |names: &HashSet<String>, name: &str| names.contains(&name.to_lowercase());
    match edit {
        Edit::AddMembers { members } => {
            let (added, _) = planned_elements(planned, "members");
            let members: Vec<_> = members
                .into_iter()
                .filter(|m| keep(&added, &m.name))
                .collect();
            (!members.is_empty()).then_some(Edit::AddMembers { members })
        }
        Edit::RemoveMembers { members } => {
            let (_, removed) = planned_elements(planned, "members");
            let members: Vec<_> = members
                .into_iter()
                .filter(|m| {
                    keep(&removed, &m.name) || m.id.as_deref().is_some_and(|id| keep(&removed, id))
                })
                .collect();
            (!members.is_empty()).then_some(Edit::RemoveMembers { members })
        }
        Edit::Add {
            attr: Multi::Roles,
            values,
        } => {
            let (added, _) = planned_elements(planned, "roles");
            let values: Vec<Complex> = values
                .into_iter()
                .filter(|v| {
                    v.get("value")
                        .and_then(Value::as_str)
                        .is_some_and(|n| keep(&added, n))
                })
                .collect();
            (!values.is_empty()).then_some(Edit::Add {
                attr: Multi::Roles,
                values,
            })
        }
        Edit::Remove {
            attr: Multi::Roles,
            key,
        } => {
            let (_, removed) = planned_elements(planned, "roles");
            keep(&removed, &key.equals).then_some(Edit::Remove {
                attr: Multi::Roles,
                key,
            })
        }
        Edit::Grants { add, remove } => {
            let (added, removed) = planned_elements(planned, "roleGrants");
            let add = only(add, |g| keep(&added, &g.label()));
            let remove = only(remove, |g| keep(&removed, &g.label()));
            (!add.is_empty() || !remove.is_empty()).then_some(Edit::Grants { add, remove })
        }
        Edit::Licenses { add, remove } => {
            let (added, removed) = planned_elements(planned, "license");
            let add = only(add, |l| keep(&added, &l.label()));
            let remove = only(remove, |l| keep(&removed, &l.label()));
            (!add.is_empty() || !remove.is_empty()).then_some(Edit::Licenses { add, remove })
        }
        other => Some(other),
    }
}

/// The elements of `list` for which `keep` holds.
fn only<T>(list: Box<[T]>, keep: impl Fn(&T) -> bool) -> Box<[T]> {
    list.into_vec().into_iter().filter(|x| keep(x)).collect()
}

/// `edit` without what it takes away: an adopted object's member and role removals go, and
/// so do its revoked grants and licenses; `None` when nothing is left.
fn without_removals(edit: Edit) -> Option<Edit> {
    match edit {
        Edit::RemoveMembers { .. }
        | Edit::Remove {
            attr: Multi::Roles, ..
        } => None,
        Edit::Grants { add, .. } => (!add.is_empty()).then(|| Edit::Grants {
            add,
            remove: Box::default(),
        }),
        Edit::Licenses { add, .. } => (!add.is_empty()).then(|| Edit::Licenses {
            add,
            remove: Box::default(),
        }),
        other => Some(other),
    }
}

/// Merges `planned` (what was planned, or what was last sent) with `fresh`, the change the
/// fresh object needs (`None`: nothing).
pub(crate) fn merge(planned: &Change, fresh: Option<Change>) -> Merge {
    let Some(fresh) = fresh else {
        return Merge::Nothing;
    };
    // An adopted object (a create answered "already exists"): the plan had no `before`, so
    // everything desired is sent, but nothing is taken away. Members, roles, grants and
    // licenses the object holds beyond the desired state were in no plan, so no brake,
    // protected-principal or last-admin rule has seen their removal: the next plan shows
    // it, vetted.
    if planned.action.brings_in() {
        let mut fresh = fresh;
        let rows = fresh.rows_mut();
        for d in rows.iter_mut() {
            d.removed.clear();
        }
        rows.retain(|d| d.before.is_some() || d.after.is_some() || !d.added.is_empty());
        fresh.edits = std::mem::take(&mut fresh.edits)
            .into_iter()
            .filter_map(without_removals)
            .collect();
        return if fresh.edits.is_empty() {
            Merge::Nothing
        } else {
            Merge::Send(fresh)
        };
    }
    let planned_rows = planned.rows();
    let fresh_rows = fresh.rows();
    for want in planned_rows
        .iter()
        .filter(|d| d.added.is_empty() && d.removed.is_empty())
    {
        let Some(now) = fresh_rows.iter().find(|d| d.attribute == want.attribute) else {
            continue; // already as desired
        };
        if now.before != want.before {
            return Merge::Overlap(format!(
                "`{}` changed on the target since the plan: planned {} → {}, but it is now {}",
                want.attribute,
                show(want.before.as_ref()),
                show(want.after.as_ref()),
                show(now.before.as_ref()),
            ));
        }
    }
    let roots: HashSet<&str> = planned_rows.iter().map(diff_root).collect();
    let edits: Vec<Edit> = fresh
        .edits
        .iter()
        .filter(|e| roots.contains(e.attribute()))
        .cloned()
        .filter_map(|e| restrict(e, planned))
        .collect();
    if edits.is_empty() {
        return Merge::Nothing;
    }
    let kept: HashSet<&str> = edits.iter().map(Edit::attribute).collect();
    // The diff says what is sent, no more: of a set diff, only the elements the plan meant to
    // add or remove (else a second merge, after another conflict, would take the fresh
    // diff's other elements as planned).
    let diff = fresh_rows
        .iter()
        .filter(|d| kept.contains(diff_root(d)))
        .cloned()
        .map(|mut d| {
            if !d.added.is_empty() || !d.removed.is_empty() {
                let (added, removed) = planned_elements(planned, diff_root(&d));
                d.added.retain(|n| added.contains(&n.to_lowercase()));
                d.removed.retain(|n| removed.contains(&n.to_lowercase()));
            }
            d
        })
        .collect();
    drop(fresh_rows);
    Merge::Send(Change {
        diff,
        edits,
        derived: false,
        ..fresh
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Merge, merge};
    use crate::plan::{
        Action, Attr, AttrDiff, Change, Complex, Edit, Kind, Multi, Ref, Source, ValueKey,
    };

    fn title(before: &str, after: &str) -> (AttrDiff, Edit) {
        (
            AttrDiff {
                attribute: "title".into(),
                before: Some(json!(before)),
                after: Some(json!(after)),
                ..AttrDiff::default()
            },
            Edit::Set {
                attr: Attr::Title,
                value: crate::plan::Scalar::from(after),
            },
        )
    }

    fn change(parts: Vec<(AttrDiff, Edit)>) -> Change {
        let (diff, edits) = parts.into_iter().unzip();
        Change {
            action: Action::Patch,
            kind: Kind::User,
            key: "a@x.example".into(),
            id: Some("u".into()),
            version: Some("W/\"2\"".into()),
            source: Source::Absent,
            diff,
            edits,
            present: vec![Attr::Title],
            blocked: None,
            held_by: None,
            derived: false,
        }
    }

    fn members(added: &[&str], removed: &[&str]) -> (AttrDiff, Edit) {
        let refs = |names: &[&str]| {
            names
                .iter()
                .map(|n| Ref {
                    kind: Kind::User,
                    name: (*n).into(),
                    id: Some(format!("id-{n}")),
                })
                .collect::<Vec<_>>()
        };
        (
            AttrDiff {
                attribute: "members".into(),
                added: added.iter().map(|s| (*s).into()).collect(),
                removed: removed.iter().map(|s| (*s).into()).collect(),
                ..AttrDiff::default()
            },
            if added.is_empty() {
                Edit::RemoveMembers {
                    members: refs(removed),
                }
            } else {
                Edit::AddMembers {
                    members: refs(added),
                }
            },
        )
    }

    // Nothing left, the planned part of a fresh change, and an overlap with both values.
    #[test]
    fn merges_or_reports() {
        let planned = change(vec![title("Agent", "Lead")]);
        assert_eq!(merge(&planned, None), Merge::Nothing);

        // Someone changed displayName (also managed, but not in this change): left alone.
        let display = (
            AttrDiff {
                attribute: "displayName".into(),
                before: Some(json!("Theirs")),
                after: Some(json!("Ours")),
                ..AttrDiff::default()
            },
            Edit::Set {
                attr: Attr::DisplayName,
                value: crate::plan::Scalar::from("Ours"),
            },
        );
        let fresh = change(vec![title("Agent", "Lead"), display.clone()]);
        let Merge::Send(sent) = merge(&planned, Some(fresh)) else {
            panic!("sends the title");
        };
        assert_eq!(sent.edits, planned.edits);
        assert_eq!(sent.diff.len(), 1);

        // Only the unplanned attribute differs: the planned one is already done.
        assert_eq!(merge(&planned, Some(change(vec![display]))), Merge::Nothing);

        let Merge::Overlap(why) = merge(&planned, Some(change(vec![title("Manager", "Lead")])))
        else {
            panic!("an overlap");
        };
        assert!(why.contains("\"Agent\" → \"Lead\""), "{why}");
        assert!(why.contains("now \"Manager\""), "{why}");
    }

    // A member someone else added, and a role someone else granted, stay.
    #[test]
    fn sets_keep_what_others_added() {
        let planned = change(vec![members(&["ana"], &[])]);
        let (mut d, _) = members(&["ana"], &[]);
        d.removed = vec!["stranger".into()];
        let fresh = Change {
            diff: vec![d],
            edits: vec![members(&["ana"], &[]).1, members(&[], &["stranger"]).1],
            ..planned.clone()
        };
        let Merge::Send(sent) = merge(&planned, Some(fresh.clone())) else {
            panic!("sends the add");
        };
        assert_eq!(sent.edits, vec![members(&["ana"], &[]).1]);
        assert_eq!(
            sent.diff[0].removed,
            Vec::<String>::new(),
            "the diff shows what is sent"
        );
        // Merged again after another conflict, against the same fresh change: still only ana.
        let Merge::Send(again) = merge(&sent, Some(fresh)) else {
            panic!("sends the add again");
        };
        assert_eq!(again.edits, vec![members(&["ana"], &[]).1]);

        let roles = |added: &[&str], removed: &[&str]| AttrDiff {
            attribute: "roles".into(),
            added: added.iter().map(|s| (*s).into()).collect(),
            removed: removed.iter().map(|s| (*s).into()).collect(),
            ..AttrDiff::default()
        };
        let planned = Change {
            diff: vec![roles(&["Agent"], &[])],
            edits: vec![Edit::Add {
                attr: Multi::Roles,
                values: vec![Complex::of(json!({"value": "Agent"}))],
            }],
            ..planned
        };
        let fresh = Change {
            diff: vec![roles(&["Agent"], &["Admin"])],
            edits: vec![
                Edit::Remove {
                    attr: Multi::Roles,
                    key: Box::new(ValueKey::new("value", "Admin")),
                },
                Edit::Add {
                    attr: Multi::Roles,
                    values: vec![Complex::of(json!({"value": "Agent"}))],
                },
            ],
            ..planned.clone()
        };
        let Merge::Send(sent) = merge(&planned, Some(fresh)) else {
            panic!("sends the grant");
        };
        assert_eq!(
            sent.edits, planned.edits,
            "Admin, granted by someone else, stays"
        );
    }

    /// A create answered "already exists" adopts the live object: everything desired is
    /// sent, and the members and roles it holds beyond the desired state stay (their removal
    /// was in no vetted plan).
    #[test]
    fn an_adopted_object_gains_and_loses_nothing_unvetted() {
        let planned = Change {
            action: Action::Create,
            id: None,
            version: None,
            diff: vec![members(&["ann"], &[]).0],
            edits: vec![members(&["ann"], &[]).1],
            ..change(Vec::new())
        };
        let fresh = Change {
            action: Action::Patch,
            diff: vec![
                members(&["ann"], &["breakglass"]).0,
                AttrDiff {
                    attribute: "roles".into(),
                    removed: vec!["Admin".into()],
                    ..AttrDiff::default()
                },
                title("Agent", "Lead").0,
            ],
            edits: vec![
                members(&["ann"], &[]).1,
                members(&[], &["breakglass"]).1,
                Edit::Remove {
                    attr: Multi::Roles,
                    key: Box::new(ValueKey::new("value", "Admin")),
                },
                title("Agent", "Lead").1,
            ],
            ..change(Vec::new())
        };
        let Merge::Send(sent) = merge(&planned, Some(fresh)) else {
            panic!("sends what is desired");
        };
        assert_eq!(
            sent.edits,
            vec![members(&["ann"], &[]).1, title("Agent", "Lead").1],
            "no removal"
        );
        assert!(
            sent.diff.iter().all(|d| d.removed.is_empty()),
            "{:?}",
            sent.diff
        );
        assert_eq!(sent.diff.len(), 2, "{:?}", sent.diff);
    }

    fn grant(role: &str, division: &str) -> crate::plan::GrantRef {
        crate::plan::GrantRef {
            role: role.into(),
            role_id: Some(format!("r-{role}")),
            division: division.into(),
            division_id: format!("d-{division}"),
        }
    }

    fn license(name: &str, id: &str) -> crate::plan::licenses::LicenseRef {
        crate::plan::licenses::LicenseRef {
            name: name.into(),
            id: id.into(),
        }
    }

    /// The `attribute` row giving `add` and taking `remove`, labelled by `label`, and the edit
    /// `edit` makes of them, as the planner makes them.
    fn given_and_taken<T>(
        attribute: &str,
        (add, remove): (Box<[T]>, Box<[T]>),
        label: fn(&T) -> String,
        edit: fn(Box<[T]>, Box<[T]>) -> Edit,
    ) -> (AttrDiff, Edit) {
        (
            AttrDiff {
                attribute: attribute.into(),
                added: add.iter().map(label).collect(),
                removed: remove.iter().map(label).collect(),
                ..AttrDiff::default()
            },
            edit(add, remove),
        )
    }

    fn grants(add: &[(&str, &str)], remove: &[(&str, &str)]) -> (AttrDiff, Edit) {
        let refs = |l: &[(&str, &str)]| l.iter().map(|(r, d)| grant(r, d)).collect();
        given_and_taken(
            "roleGrants",
            (refs(add), refs(remove)),
            crate::plan::GrantRef::label,
            |add, remove| Edit::Grants { add, remove },
        )
    }

    fn licenses(add: &[(&str, &str)], remove: &[(&str, &str)]) -> (AttrDiff, Edit) {
        let refs = |l: &[(&str, &str)]| l.iter().map(|(n, i)| license(n, i)).collect();
        given_and_taken(
            "license",
            (refs(add), refs(remove)),
            crate::plan::licenses::LicenseRef::label,
            |add, remove| Edit::Licenses { add, remove },
        )
    }

    /// Grants and licenses merge as members and roles do: of a fresh change, only what the
    /// plan meant to give or take is sent, so a license or grant someone gave the user after
    /// the plan (which the fresh plan would take away) stays, and the row shows what is sent.
    /// An adopted object loses none of its grants or licenses either.
    #[test]
    fn grants_and_licenses_send_only_what_was_planned() {
        let planned = change(vec![
            licenses(&[("Pro", "cx2")], &[]),
            grants(&[("Coach", "Home")], &[]),
        ]);
        let fresh = change(vec![
            licenses(&[("Pro", "cx2")], &[("Basic", "cx3")]),
            grants(&[("Coach", "Home")], &[("Admin", "Sales")]),
        ]);
        let Merge::Send(sent) = merge(&planned, Some(fresh.clone())) else {
            panic!("sends the planned part");
        };
        assert_eq!(
            sent.edits,
            vec![
                licenses(&[("Pro", "cx2")], &[]).1,
                grants(&[("Coach", "Home")], &[]).1
            ]
        );
        assert!(
            sent.diff.iter().all(|d| d.removed.is_empty()),
            "{:?}",
            sent.diff
        );

        // A planned revocation that still applies is sent; nothing else is.
        let planned = change(vec![licenses(&[], &[("Basic", "cx3")])]);
        let Merge::Send(sent) = merge(&planned, Some(fresh.clone())) else {
            panic!("sends the planned part");
        };
        assert_eq!(sent.edits, vec![licenses(&[], &[("Basic", "cx3")]).1]);

        let adopted = Change {
            action: Action::Create,
            id: None,
            version: None,
            ..change(vec![licenses(&[("Pro", "cx2")], &[])])
        };
        let Merge::Send(sent) = merge(&adopted, Some(fresh)) else {
            panic!("sends what is desired");
        };
        assert_eq!(
            sent.edits,
            vec![
                licenses(&[("Pro", "cx2")], &[]).1,
                grants(&[("Coach", "Home")], &[]).1
            ],
            "no removal"
        );
    }
}
