//! Twins: several live groups carry one desired group's name (two runs created it at once on a
//! server that allows duplicate displayNames, or someone made a copy by hand). Instead of
//! failing every plan, the planner keeps the twin with the lowest id
//! ([`super::super::survivor_order`]), adds to it the members only the others have (when
//! the group's members are not listed authoritatively, which would settle them anyway),
//! and deletes the others: explicit rows, counted by the brakes like any delete.

use std::collections::HashSet;

use serde_json::Value;

use crate::model::tenant::{self, Live, Resource};
use crate::model::{CollectionMode, Spanned};

use super::{Context, parse_live};
use crate::plan::{Action, AttrDiff, Change, Edit, Kind, Plan, PlanError, Ref, Source, Warning};

/// The survivor's change, with the members only its twins have added to it, and the twins'
/// delete rows and a warning pushed to `plan`. A protected group's twins are left alone.
pub(super) fn merge(
    ctx: &mut Context<'_>,
    group: &Spanned<crate::model::Group>,
    survivor: &Live<tenant::Group>,
    others: &[usize],
    members_listed: bool,
    mut change: Option<Change>,
    plan: &mut Plan,
) -> Result<Option<Change>, PlanError> {
    let name = group.value.display_name.value.to_string();
    let source = Source::at(&ctx.desired.sources, group.span);
    let twins: Vec<&Live<tenant::Group>> = others.iter().map(|&i| &ctx.live.groups[i]).collect();
    let ids: Vec<&str> = twins.iter().filter_map(|t| t.id()).collect();
    let keep = survivor.id().unwrap_or("?");
    if ctx.protected_groups.contains(&name.to_lowercase())
        || ctx
            .protected_groups
            .contains(&survivor.natural_key().to_lowercase())
    {
        plan.warnings.push(Warning {
            message: format!(
                "group {name:?} is protected: its twin(s) {} are left alone (id {keep} is the one scimctl reads)",
                ids.join(", ")
            ),
            source: Some(source),
        });
        return Ok(change);
    }
    let merge_members = !members_listed
        || ctx.desired.config.collections.group_members != CollectionMode::Authoritative;
    let added = if merge_members {
        twin_members(ctx, survivor, &twins, &ids, change.as_ref())?
    } else {
        Vec::new()
    };
    if !added.is_empty() {
        let c = change.get_or_insert_with(|| Change {
            action: Action::Patch,
            kind: Kind::Group,
            key: name.as_str().into(),
            id: survivor.id().map(str::to_owned),
            version: survivor.version().map(str::to_owned),
            source: source.clone(),
            diff: Vec::new(),
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        });
        let names = added.iter().map(|r| r.name.to_string());
        let rows = c.rows_mut();
        match rows.iter_mut().find(|d| d.attribute == "members") {
            Some(d) => d.added.extend(names),
            None => rows.push(AttrDiff {
                attribute: "members".into(),
                added: names.collect(),
                ..AttrDiff::default()
            }),
        }
        match c.edits.iter_mut().find_map(|e| match e {
            Edit::AddMembers { members } => Some(members),
            _ => None,
        }) {
            Some(members) => members.extend(added.iter().cloned()),
            None => c.edits.push(Edit::AddMembers {
                members: added.clone(),
            }),
        }
    }
    plan.warnings.push(Warning {
        message: format!(
            "group {name:?}: {} live groups have this name (twins, e.g. from two runs at once); \
             the plan keeps id {keep} (the lowest), adds {} member(s) only the others have, and \
             deletes {}",
            twins.len() + 1,
            added.len(),
            ids.join(", ")
        ),
        source: Some(source.clone()),
    });
    for twin in twins {
        plan.changes.push(Change {
            action: Action::Delete,
            kind: Kind::Group,
            key: twin.natural_key().into(),
            id: twin.id().map(str::to_owned),
            version: twin.version().map(str::to_owned),
            source: source.clone(),
            diff: vec![AttrDiff {
                attribute: "duplicateOf".into(),
                after: Some(Value::from(keep)),
                ..AttrDiff::default()
            }],
            edits: Vec::new(),
            present: Vec::new(),
            blocked: None,
            held_by: None,
            derived: false,
        });
    }
    Ok(change)
}

/// The members only the twins have (not the survivor, not already added by its change).
fn twin_members(
    ctx: &mut Context<'_>,
    survivor: &Live<tenant::Group>,
    twins: &[&Live<tenant::Group>],
    ids: &[&str],
    change: Option<&Change>,
) -> Result<Vec<Ref>, PlanError> {
    let have = parse_live(Kind::Group, survivor)?;
    let mut seen: HashSet<String> = have.members.iter().map(|m| m.value.clone()).collect();
    seen.insert(survivor.id().unwrap_or("?").to_owned());
    seen.extend(ids.iter().map(|id| (*id).to_owned()));
    for e in change.iter().flat_map(|c| &c.edits) {
        if let Edit::AddMembers { members } = e {
            seen.extend(members.iter().filter_map(|m| m.id.clone()));
        }
    }
    let mut added = Vec::new();
    for twin in twins {
        for m in parse_live(Kind::Group, twin)?.members {
            if !seen.insert(m.value.clone()) {
                continue;
            }
            let (kind, shown) = match ctx.name_of(m.member_kind(), &m.value) {
                Some((kind, n)) => (kind, n.to_owned()),
                None if m.kind.as_deref() == Some("Group") => (Kind::Group, m.value.clone()),
                None => (Kind::User, m.value.clone()),
            };
            added.push(Ref {
                kind,
                name: shown.into(),
                id: Some(m.value),
            });
        }
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::plan::tests::{desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Edit, Kind, PlanError, PlanOptions};

    const LOOSE: &str = "safety: {maxDeletePercent: 100}\n";

    fn users() -> Vec<serde_json::Value> {
        vec![
            json!({"id": "u1", "userName": "a@x.example"}),
            json!({"id": "u2", "userName": "b@x.example"}),
        ]
    }

    fn rows(plan: &crate::plan::Plan) -> Vec<(Action, Option<&str>)> {
        plan.changes
            .iter()
            .filter(|c| c.kind == Kind::Group)
            .map(|c| (c.action, c.id.as_deref()))
            .collect()
    }

    // Two runs at once on a server that allows duplicate displayNames left "12" and "7":
    // "7" is the lower id (numeric ids compare as numbers), keeps the member only "12" has,
    // and "12" is deleted by an explicit row, explained by a warning.
    #[test]
    fn twins_merge_into_the_lowest_id() {
        let desired = desired_with(LOOSE, "groups:\n  - displayName: Ops\n");
        let live = snapshot(
            &users(),
            &[
                json!({"id": "12", "displayName": "Ops", "members": [{"value": "u2"}, {"value": "u1"}]}),
                json!({"id": "7", "displayName": "ops", "members": [{"value": "u1"}]}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(
            rows(&plan),
            [(Action::Patch, Some("7")), (Action::Delete, Some("12"))],
            "{plan:#?}"
        );
        let keep = &plan.changes[0];
        let Some(Edit::AddMembers { members }) = keep
            .edits
            .iter()
            .find(|e| matches!(e, Edit::AddMembers { .. }))
        else {
            panic!("{keep:#?}")
        };
        assert_eq!(members.len(), 1);
        assert_eq!(
            (members[0].name.as_str(), members[0].id.as_deref()),
            ("b@x.example", Some("u2"))
        );
        assert!(plan.changes[1].blocked.is_none());
        let warning = &plan.warnings[0].message;
        assert!(
            warning.contains("keeps id 7") && warning.contains("deletes 12"),
            "{warning}"
        );
    }

    // Members listed authoritatively settle the survivor anyway: nothing is merged, and
    // nothing in sync means no patch at all, only the twin's delete.
    #[test]
    fn listed_members_are_not_merged() {
        let desired = desired_with(
            &format!("{LOOSE}collections: {{groupMembers: authoritative}}\n"),
            "users:\n  - userName: a@x.example\ngroups:\n  - displayName: Ops\n    members: [a@x.example]\n",
        );
        let live = snapshot(
            &users()[..1],
            &[
                json!({"id": "b", "displayName": "Ops", "members": [{"value": "u1"}]}),
                json!({"id": "a", "displayName": "Ops", "members": [{"value": "u1"}]}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(rows(&plan), [(Action::Delete, Some("b"))], "{plan:#?}");
    }

    // Twin deletes count toward the brakes: under the default brakes one desired group with
    // a twin is a 50% delete, so the row is BLOCKED, while the merge patch goes through.
    #[test]
    fn twin_deletes_are_under_the_brakes() {
        let desired = desired_with("", "groups:\n  - displayName: Ops\n");
        let live = snapshot(
            &users(),
            &[
                json!({"id": "1", "displayName": "Ops"}),
                json!({"id": "2", "displayName": "Ops", "members": [{"value": "u1"}]}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(
            rows(&plan),
            [(Action::Patch, Some("1")), (Action::Delete, Some("2"))]
        );
        assert!(plan.changes[0].blocked.is_none());
        assert!(plan.changes[1].blocked.is_some(), "{plan:#?}");
    }

    // Two different externalIds are two groups from elsewhere, not twins: still ambiguous.
    // A protected group's twins are left alone, with a warning.
    #[test]
    fn not_twins_and_protected_twins() {
        let desired = desired_with(LOOSE, "groups:\n  - displayName: Ops\n");
        let live = snapshot(
            &[],
            &[
                json!({"id": "1", "displayName": "Ops", "externalId": "e1"}),
                json!({"id": "2", "displayName": "Ops", "externalId": "e2"}),
            ],
        );
        let err = crate::plan::plan(&desired, &live, &PlanOptions::default()).unwrap_err();
        assert!(matches!(err, PlanError::Ambiguous(_)), "{err:?}");

        let desired = desired_with(
            &format!("{LOOSE}ownership: {{groups: all}}\nprotected: {{groups: [Ops]}}\n"),
            "groups:\n  - displayName: Ops\n",
        );
        let live = snapshot(
            &users(),
            &[
                json!({"id": "1", "displayName": "Ops"}),
                json!({"id": "2", "displayName": "Ops", "members": [{"value": "u1"}]}),
            ],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert!(rows(&plan).is_empty(), "{plan:#?}");
        assert!(plan.warnings[0].message.contains("protected"));
    }
}
