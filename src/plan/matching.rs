//! Matching desired objects to live ones (docs/contract.md §4): by `externalId` when both have
//! one, else by name case-insensitively, else by a `previously` name. Every ambiguity is an
//! error, reported all at once; nothing is guessed.

use std::collections::HashMap;

use crate::desired::DesiredState;
use crate::model::tenant::{Live, Resource, Snapshot};

use super::{Kind, PlanError};

/// Per desired object (in desired order), the index of its live match.
#[derive(Debug, Default)]
pub(crate) struct Matched {
    pub(crate) users: Vec<Option<usize>>,
    pub(crate) groups: Vec<Option<usize>>,
    /// Per desired role, its live role definition; all `None` when the target has no role
    /// definitions (`Snapshot::roles` is `None`).
    pub(crate) roles: Vec<Option<usize>>,
    /// Objects left out of a partial match ([`match_partial`]) because their match is
    /// ambiguous: neither changed nor pruned, and nothing that refers to them is planned.
    pub(crate) held: Held,
    /// Desired groups that several live groups match by name alone (twins made by two runs
    /// at once, or by hand): the one with the lowest id is the match, the others are merged
    /// into it and deleted by explicit plan rows.
    pub(crate) twins: Vec<Twins>,
}

/// One desired group's twins.
#[derive(Debug)]
pub(crate) struct Twins {
    /// The desired group (position in desired order).
    pub(crate) desired: usize,
    /// The live groups that go: all but the match, in survivor order.
    pub(crate) others: Vec<usize>,
}

/// Of live candidates that all carry one name, the survivor and the others, when they are
/// twins: every one has an id and at most one externalId is set among them (two different
/// externalIds are two different groups from elsewhere, not twins).
fn twin_set<R: Resource>(live: &[Live<R>], candidates: &[usize]) -> Option<(usize, Vec<usize>)> {
    let mut external = candidates
        .iter()
        .filter_map(|&i| live[i].external_id().filter(|e| !e.is_empty()));
    let first = external.next();
    if external.any(|e| Some(e) != first) {
        return None;
    }
    let mut ids: Vec<(&str, usize)> = candidates
        .iter()
        .map(|&i| live[i].id().map(|id| (id, i)))
        .collect::<Option<_>>()?;
    ids.sort_by(|a, b| super::survivor_order(a.0, b.0));
    let keep = ids[0].1;
    Some((keep, ids[1..].iter().map(|(_, i)| *i).collect()))
}

/// What a partial match leaves alone.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Desired objects (kind, position) with the reason their match is ambiguous.
    pub(crate) desired: Vec<(Kind, usize, String)>,
    /// Per live user: whether it is a candidate of an ambiguous match.
    pub(crate) users: Vec<bool>,
    /// Per live group: whether it is a candidate of an ambiguous match.
    pub(crate) groups: Vec<bool>,
}

/// One ambiguity: which desired objects and which live candidates it involves.
#[derive(Debug)]
pub(crate) struct Problem {
    wanted: Vec<usize>,
    live: Vec<usize>,
    message: String,
}

/// Live objects by lower-cased name and by externalId.
struct Index<'a> {
    by_name: HashMap<String, Vec<usize>>,
    by_external: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Index<'a> {
    fn new<R: Resource>(live: &'a [Live<R>]) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::with_capacity(live.len());
        let mut by_external: HashMap<&str, Vec<usize>> = HashMap::with_capacity(live.len());
        for (i, l) in live.iter().enumerate() {
            by_name
                .entry(l.natural_key().to_lowercase())
                .or_default()
                .push(i);
            if let Some(e) = l.external_id().filter(|e| !e.is_empty()) {
                by_external.entry(e).or_default().push(i);
            }
        }
        Index {
            by_name,
            by_external,
        }
    }
}

/// One desired object's identity.
struct Wanted<'a> {
    name: &'a str,
    external_id: Option<&'a str>,
    previously: Vec<&'a str>,
}

#[allow(clippy::too_many_lines)] // one pass per rule of docs/contract.md §4, kept together
fn match_kind<R: Resource>(
    kind: Kind,
    wanted: &[Wanted<'_>],
    live: &[Live<R>],
    problems: &mut Vec<Problem>,
    mut twins: Option<&mut Vec<Twins>>,
) -> Vec<Option<usize>> {
    let index = Index::new(live);
    let describe = |i: usize| {
        let l = &live[i];
        format!(
            "live {kind} {:?} (id {}{})",
            l.natural_key(),
            l.id().unwrap_or("?"),
            l.external_id()
                .map(|e| format!(", externalId {e:?}"))
                .unwrap_or_default()
        )
    };
    // A name match is no match when both sides have different externalIds.
    let compatible = |w: &Wanted<'_>, i: usize| match (w.external_id, live[i].external_id()) {
        (Some(a), Some(b)) if !b.is_empty() => a == b,
        _ => true,
    };
    let mut claimed: HashMap<usize, usize> = HashMap::new();
    let mut out = Vec::with_capacity(wanted.len());
    for (n, w) in wanted.iter().enumerate() {
        let mut found: Option<usize> = None;
        if let Some(e) = w.external_id
            && let Some(hits) = index.by_external.get(e)
        {
            if hits.len() > 1 {
                let all: Vec<String> = hits.iter().map(|&i| describe(i)).collect();
                problems.push(Problem {
                    wanted: vec![n],
                    live: hits.clone(),
                    message: format!(
                        "{kind} {:?}: externalId {e:?} is held by {}",
                        w.name,
                        all.join(" and ")
                    ),
                });
                out.push(None);
                continue;
            }
            found = Some(hits[0]);
        }
        if found.is_none() {
            let by_name = index.by_name.get(&w.name.to_lowercase());
            if let Some(hits) = by_name {
                let fit: Vec<usize> = hits.iter().copied().filter(|&i| compatible(w, i)).collect();
                match fit.as_slice() {
                    [one] => found = Some(*one),
                    [] => {
                        problems.push(Problem {
                            wanted: vec![n],
                            live: hits.clone(),
                            message: format!(
                                "{kind} {:?}: the name is taken by {}, whose externalId differs from {:?}",
                                w.name,
                                describe(hits[0]),
                                w.external_id.unwrap_or_default()
                            ),
                        });
                        out.push(None);
                        continue;
                    }
                    many => {
                        let set = twins.as_deref_mut().zip(twin_set(live, many));
                        if let Some((twins, (keep, others))) = set {
                            for &o in &others {
                                claimed.insert(o, n);
                            }
                            twins.push(Twins { desired: n, others });
                            found = Some(keep);
                        } else {
                            let all: Vec<String> = many.iter().map(|&i| describe(i)).collect();
                            problems.push(Problem {
                                wanted: vec![n],
                                live: many.to_vec(),
                                message: format!(
                                    "{kind} {:?} matches {}",
                                    w.name,
                                    all.join(" and ")
                                ),
                            });
                            out.push(None);
                            continue;
                        }
                    }
                }
            }
        }
        if found.is_none() {
            let mut hits: Vec<usize> = w
                .previously
                .iter()
                .filter_map(|p| index.by_name.get(&p.to_lowercase()))
                .flatten()
                .copied()
                .filter(|&i| compatible(w, i))
                .collect();
            hits.sort_unstable();
            hits.dedup();
            match hits.as_slice() {
                [] => {}
                [one] => found = Some(*one),
                many => {
                    let all: Vec<String> = many.iter().map(|&i| describe(i)).collect();
                    problems.push(Problem {
                        wanted: vec![n],
                        live: many.to_vec(),
                        message: format!(
                            "{kind} {:?}: its previous names match {}",
                            w.name,
                            all.join(" and ")
                        ),
                    });
                    out.push(None);
                    continue;
                }
            }
        }
        if let Some(i) = found
            && let Some(&other) = claimed.get(&i)
        {
            problems.push(Problem {
                wanted: vec![other, n],
                live: vec![i],
                message: format!(
                    "{kind} {:?} and {kind} {:?} both match {}",
                    wanted[other].name,
                    w.name,
                    describe(i)
                ),
            });
            out.push(None);
            continue;
        }
        if let Some(i) = found {
            claimed.insert(i, n);
        }
        out.push(found);
    }
    out
}

/// Matches every desired user and group (also used by `explain` to find one object live).
pub(crate) fn match_all(desired: &DesiredState, live: &Snapshot) -> Result<Matched, PlanError> {
    let (matched, problems) = match_each(desired, live);
    if problems.is_empty() {
        Ok(matched)
    } else {
        Err(PlanError::Ambiguous(problems))
    }
}

/// Matches what can be matched: a user or group whose match is ambiguous is left out
/// ([`Matched::held`]) with its live candidates, instead of failing the whole match. An
/// ambiguous role still fails it (roles are few and shared by many users).
pub(crate) fn match_partial(desired: &DesiredState, live: &Snapshot) -> Result<Matched, PlanError> {
    let mut role_problems = Vec::new();
    let roles = match &live.roles {
        Some(roles) => super::roles::match_roles(desired, roles, &mut role_problems),
        None => vec![None; desired.roles.len()],
    };
    if !role_problems.is_empty() {
        return Err(PlanError::Ambiguous(role_problems));
    }
    let (users, groups) = wanted(desired);
    let mut held = Held {
        users: vec![false; live.users.len()],
        groups: vec![false; live.groups.len()],
        ..Held::default()
    };
    let mut matched = Matched {
        roles,
        ..Matched::default()
    };
    for (kind, wanted) in [(Kind::User, &users), (Kind::Group, &groups)] {
        let mut problems = Vec::new();
        let mut out = match kind {
            Kind::User => {
                let out = match_kind(kind, wanted, &live.users, &mut problems, None);
                deleted_ambiguities(wanted, &out, live, &mut problems);
                out
            }
            _ => match_kind(
                kind,
                wanted,
                &live.groups,
                &mut problems,
                Some(&mut matched.twins),
            ),
        };
        let live_held = match kind {
            Kind::User => &mut held.users,
            _ => &mut held.groups,
        };
        for problem in problems {
            for &w in &problem.wanted {
                out[w] = None;
                if !held.desired.iter().any(|(k, i, _)| *k == kind && *i == w) {
                    held.desired.push((kind, w, problem.message.clone()));
                }
            }
            for &l in &problem.live {
                live_held[l] = true;
            }
        }
        match kind {
            Kind::User => matched.users = out,
            _ => matched.groups = out,
        }
    }
    matched.held = held;
    Ok(matched)
}

/// Per desired user, its live match among the live users alone: `None` when there is none
/// or when it is ambiguous.
pub(crate) fn match_users(desired: &DesiredState, live: &Snapshot) -> Vec<Option<usize>> {
    let (users, _) = wanted(desired);
    match_kind(Kind::User, &users, &live.users, &mut Vec::new(), None)
}

/// Desired users that match no live user and whose userName is the email of more than one
/// user in the `deleted` state (Genesys Cloud): which one to restore cannot be told, so the
/// match is ambiguous, as it is when two live users match. Restoring either would bring back
/// an account's history (and, after the restore's re-plan, its roles) that may be the wrong
/// person's, so nothing is guessed.
fn deleted_ambiguities(
    wanted: &[Wanted<'_>],
    matched: &[Option<usize>],
    live: &Snapshot,
    problems: &mut Vec<Problem>,
) {
    if live.deleted_users.len() < 2 {
        return;
    }
    let mut by_email: HashMap<String, Vec<&str>> = HashMap::new();
    for d in &live.deleted_users {
        by_email
            .entry(d.email.to_ascii_lowercase())
            .or_default()
            .push(&d.id);
    }
    for (n, w) in wanted.iter().enumerate() {
        if matched[n].is_some() {
            continue;
        }
        if let Some(ids) = by_email
            .get(&w.name.to_ascii_lowercase())
            .filter(|ids| ids.len() > 1)
        {
            problems.push(Problem {
                wanted: vec![n],
                live: Vec::new(),
                message: format!(
                    "user {:?} is the email of {} deleted users (ids {ids:?}): restore the one \
                     to keep by hand; scimctl does not choose",
                    w.name,
                    ids.len()
                ),
            });
        }
    }
}

fn wanted(desired: &DesiredState) -> (Vec<Wanted<'_>>, Vec<Wanted<'_>>) {
    let users = desired
        .users
        .iter()
        .map(|u| Wanted {
            name: &u.user_name.value,
            external_id: u.external_id.as_ref().map(|e| e.value.as_str()),
            previously: u.previously.iter().map(|p| p.value.as_str()).collect(),
        })
        .collect();
    let groups = desired
        .groups
        .iter()
        .map(|g| Wanted {
            name: &g.display_name.value,
            external_id: g.external_id.as_ref().map(|e| e.value.as_str()),
            previously: g.previously.iter().map(|p| p.value.as_str()).collect(),
        })
        .collect();
    (users, groups)
}

fn match_each(desired: &DesiredState, live: &Snapshot) -> (Matched, Vec<String>) {
    let mut messages = Vec::new();
    let (users, groups) = wanted(desired);
    let roles = match &live.roles {
        Some(roles) => super::roles::match_roles(desired, roles, &mut messages),
        None => vec![None; desired.roles.len()],
    };
    let mut problems = Vec::new();
    let mut twins = Vec::new();
    let users_wanted = users;
    let users = match_kind(Kind::User, &users_wanted, &live.users, &mut problems, None);
    deleted_ambiguities(&users_wanted, &users, live, &mut problems);
    let groups = match_kind(
        Kind::Group,
        &groups,
        &live.groups,
        &mut problems,
        Some(&mut twins),
    );
    messages.extend(problems.into_iter().map(|p| p.message));
    let matched = Matched {
        users,
        groups,
        roles,
        held: Held::default(),
        twins,
    };
    (matched, messages)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::plan::tests::{change, desired_with, plan_ok, snapshot};
    use crate::plan::{Action, Attr, Edit, Kind, PlanError, PlanOptions};

    const ROLES: &str = "roles:\n  - name: Agent\n";

    // externalId decides before the name: a live user with the desired externalId is the
    // match even under another userName, and gets renamed rather than recreated.
    #[test]
    fn external_id_before_user_name() {
        let desired = desired_with(
            "",
            "users:\n  - userName: ana@x.example\n    externalId: hr-1\n",
        );
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "ana.old@x.example", "externalId": "hr-1"}),
                json!({"id": "b", "userName": "someone@x.example"}),
            ],
            &[],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(plan.changes.len(), 1, "{plan:#?}");
        let c = &plan.changes[0];
        assert_eq!((c.action, c.id.as_deref()), (Action::Patch, Some("a")));
        assert_eq!(
            c.edits,
            vec![Edit::Set {
                attr: Attr::UserName,
                value: crate::plan::Scalar::from("ana@x.example")
            }]
        );
        assert_eq!(c.present, vec![Attr::UserName], "a rename is a replace");
    }

    // Without an externalId on one side, the name decides, case-insensitively; a live
    // externalId the YAML does not write is no obstacle, and one the YAML writes is set.
    #[test]
    fn user_name_when_external_id_is_missing() {
        let desired = desired_with(
            "",
            "users:\n  - userName: Ana@X.example\n  - userName: bo@x.example\n    externalId: hr-2\n",
        );
        let live = snapshot(
            &[
                json!({"id": "a", "userName": "ana@x.example", "externalId": "hr-9"}),
                json!({"id": "b", "userName": "BO@x.example"}),
            ],
            &[],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert!(
            change(&plan, Kind::User, "Ana@X.example").is_none(),
            "{plan:#?}"
        );
        let bo = change(&plan, Kind::User, "bo@x.example").expect("bo gets its externalId");
        assert_eq!(bo.id.as_deref(), Some("b"));
        assert_eq!(
            bo.edits,
            vec![Edit::Set {
                attr: Attr::ExternalId,
                value: crate::plan::Scalar::from("hr-2")
            }],
            "userName differs only in case: not patched"
        );
        assert_eq!(plan.unchanged, 1);
    }

    // Group names match case-insensitively too; only the spelling is patched.
    #[test]
    fn group_names_case_insensitively() {
        let desired = desired_with("", "groups:\n  - displayName: Sales Team\n");
        let live = snapshot(&[], &[json!({"id": "g", "displayName": "SALES TEAM"})]);
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(plan.changes.len(), 1, "{plan:#?}");
        let c = &plan.changes[0];
        assert_eq!((c.action, c.id.as_deref()), (Action::Patch, Some("g")));
        assert_eq!(
            c.edits,
            vec![Edit::Set {
                attr: Attr::DisplayName,
                value: crate::plan::Scalar::from("Sales Team")
            }]
        );
    }

    // A name under `previously` matches when the current name does not, and the plan renames
    // (users and groups alike) instead of creating and pruning.
    #[test]
    fn previously_is_a_rename() {
        let desired = desired_with(
            "ownership: {users: all, groups: all}\n",
            "users:\n  - userName: new@x.example\n    previously: [old@x.example, older@x.example]\ngroups:\n  - displayName: Billing\n    previously: [Invoicing]\n",
        );
        let live = snapshot(
            &[json!({"id": "u", "userName": "OLD@x.example"})],
            &[json!({"id": "g", "displayName": "Invoicing"})],
        );
        let plan = plan_ok(&desired, &live, &PlanOptions::default());
        assert_eq!(plan.changes.len(), 2, "no create, no prune: {plan:#?}");
        let user = change(&plan, Kind::User, "new@x.example").expect("renamed");
        assert_eq!(
            (user.action, user.id.as_deref()),
            (Action::Patch, Some("u"))
        );
        assert_eq!(user.diff[0].before, Some(json!("OLD@x.example")));
        assert_eq!(user.diff[0].after, Some(json!("new@x.example")));
        let group = change(&plan, Kind::Group, "Billing").expect("renamed");
        assert_eq!(group.id.as_deref(), Some("g"));
        assert_eq!(
            group.edits,
            vec![Edit::Set {
                attr: Attr::DisplayName,
                value: crate::plan::Scalar::from("Billing")
            }]
        );
        // The current name wins over a previous one when both are live.
        let both = snapshot(
            &[
                json!({"id": "cur", "userName": "new@x.example"}),
                json!({"id": "old", "userName": "old@x.example"}),
            ],
            &[],
        );
        let plan = plan_ok(&desired, &both, &PlanOptions::default());
        assert!(change(&plan, Kind::User, "new@x.example").is_none());
        let prune = change(&plan, Kind::User, "old@x.example").expect("the old one is pruned");
        assert_eq!(
            (prune.action, prune.id.as_deref()),
            (Action::Deactivate, Some("old"))
        );
    }

    // Every ambiguity is reported at once, each naming the live objects involved; nothing is
    // guessed and no plan is made.
    #[test]
    fn ambiguities_are_all_listed() {
        let desired = desired_with(
            "",
            &format!(
                "{ROLES}users:
  - userName: a@x.example
    externalId: hr-a
  - userName: b@x.example
  - userName: c@x.example
    previously: [c1@x.example, c2@x.example]
  - userName: d@x.example
  - userName: e@x.example
    externalId: hr-d
  - userName: f@x.example
    externalId: hr-f
groups:
  - displayName: One
    previously: [Old]
  - displayName: Two
    previously: [OLD]
"
            ),
        );
        let live = snapshot(
            &[
                json!({"id": "a1", "userName": "a1@x.example", "externalId": "hr-a"}),
                json!({"id": "a2", "userName": "a2@x.example", "externalId": "hr-a"}),
                json!({"id": "b1", "userName": "b@x.example"}),
                json!({"id": "b2", "userName": "B@x.example"}),
                json!({"id": "c1", "userName": "c1@x.example"}),
                json!({"id": "c2", "userName": "c2@x.example"}),
                json!({"id": "d", "userName": "d@x.example", "externalId": "hr-d"}),
                json!({"id": "f", "userName": "f@x.example", "externalId": "hr-other"}),
            ],
            &[json!({"id": "g", "displayName": "Old"})],
        );
        let err =
            crate::plan::plan(&desired, &live, &PlanOptions::default()).expect_err("ambiguous");
        let PlanError::Ambiguous(problems) = &err else {
            panic!("{err}")
        };
        let expected = [
            r#"user "a@x.example": externalId "hr-a" is held by live user "a1@x.example" (id a1, externalId "hr-a") and live user "a2@x.example" (id a2, externalId "hr-a")"#,
            r#"user "b@x.example" matches live user "b@x.example" (id b1) and live user "B@x.example" (id b2)"#,
            r#"user "c@x.example": its previous names match live user "c1@x.example" (id c1) and live user "c2@x.example" (id c2)"#,
            r#"user "d@x.example" and user "e@x.example" both match live user "d@x.example" (id d, externalId "hr-d")"#,
            r#"user "f@x.example": the name is taken by live user "f@x.example" (id f, externalId "hr-other"), whose externalId differs from "hr-f""#,
            r#"group "One" and group "Two" both match live group "Old" (id g)"#,
        ];
        assert_eq!(problems, &expected, "{err}");
        assert!(err.to_string().starts_with("6 object(s) cannot be matched"));
    }
}
