//! What a saved plan may do: never more than a plan made now would.
//!
//! A saved plan is input like any other: anyone who can write the file can edit it and
//! recompute its checksum (which only detects accidents). So `apply --plan` plans afresh from
//! the desired state (whose hash the saved plan must match) and the tenant as read at apply
//! time, and the saved plan only *selects* among the fresh changes:
//!
//! - When the tenant is exactly as it was when the plan was saved (its `liveHash` matches),
//!   the saved changes must be the fresh ones, edit for edit; the first difference refuses
//!   the whole plan (exit 4), naming it.
//! - When the tenant moved since, each saved change is carried out only as far as the fresh
//!   change for the same object and action goes, restricted to what the saved change meant to
//!   touch (the applier's merge rules): what a fresh plan no longer proposes is dropped, and
//!   an attribute someone else changed since the plan fails that operation alone.
//!
//! The content written always comes from the planner, never from the file, and the safety
//! rules are evaluated again on the result by [`crate::plan::Vetted`].

use std::collections::{BTreeMap, BTreeSet};

use crate::apply::merge::{Merge, merge};
use crate::plan::saved::PlanDocument;
use crate::plan::{Action, Change, Edit, Kind, Plan};
use crate::scim::{Resource, Snapshot};

/// Why a saved plan is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The tenant is as it was, yet the plan differs from what the planner makes.
    #[error(
        "the saved plan is not what `scimctl plan` makes from this desired state against this \
         tenant (unchanged since the plan was saved): {0}. It was edited after it was saved, or \
         made by another scimctl version; plan again"
    )]
    Differs(String),
}

/// What may be carried out of a saved plan.
#[derive(Debug)]
pub(super) struct Authorized {
    /// The changes to carry out, taken from the fresh plan.
    pub(super) plan: Plan,
    /// Saved changes that overlap what someone else changed since: failed, with the reason.
    pub(super) failed: Vec<(Change, String)>,
    /// Saved changes no longer needed or no longer proposed: why, for the report.
    pub(super) dropped: Vec<String>,
}

/// The object a change writes and what it does to it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Target {
    kind: Kind,
    action: Action,
    /// `id:<live id>`, or `name:<lower-cased name>` for a create.
    object: String,
}

impl Target {
    fn of(c: &Change) -> Target {
        Target {
            kind: c.kind,
            action: c.action,
            object: match &c.id {
                Some(id) if c.action != Action::Create => format!("id:{id}"),
                _ => format!("name:{}", c.key.to_lowercase()),
            },
        }
    }
}

/// A change's edits as atoms (one member per membership edit), each as JSON.
fn atoms(edits: &[Edit]) -> Vec<String> {
    let json = |e: &Edit| serde_json::to_string(e).unwrap_or_default();
    let mut out = Vec::with_capacity(edits.len());
    for e in edits {
        match e {
            Edit::AddMembers { members } => out.extend(members.iter().map(|m| {
                json(&Edit::AddMembers {
                    members: vec![m.clone()],
                })
            })),
            Edit::RemoveMembers { members } => out.extend(members.iter().map(|m| {
                json(&Edit::RemoveMembers {
                    members: vec![m.clone()],
                })
            })),
            other => out.push(json(other)),
        }
    }
    out
}

/// Per object and action: the display name and the sorted atoms of every row.
fn canonical(changes: &[Change]) -> BTreeMap<Target, (String, Vec<String>)> {
    let mut out: BTreeMap<Target, (String, Vec<String>)> = BTreeMap::new();
    for c in changes {
        let entry = out
            .entry(Target::of(c))
            .or_insert_with(|| (format!("{} {:?}", c.kind, c.key), Vec::new()));
        entry.1.extend(atoms(&c.edits));
    }
    for (_, atoms) in out.values_mut() {
        atoms.sort();
    }
    out
}

/// At most `n` characters of `s`, for a message.
fn clip(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n).collect();
    if s.chars().count() > n {
        out.push('…');
    }
    // Data from a file or the tenant: no control character reaches a terminal.
    out.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The first difference between the saved and the fresh canonical forms, if any.
fn first_difference(
    saved: &BTreeMap<Target, (String, Vec<String>)>,
    fresh: &BTreeMap<Target, (String, Vec<String>)>,
) -> Option<String> {
    let keys: BTreeSet<&Target> = saved.keys().chain(fresh.keys()).collect();
    for key in keys {
        let action = key.action.name();
        match (saved.get(key), fresh.get(key)) {
            (Some((name, _)), None) => {
                return Some(format!(
                    "it would {action} {}, which a plan made now does not",
                    clip(name, 120)
                ));
            }
            (None, Some((name, _))) => {
                return Some(format!(
                    "a plan made now would {action} {}, which it does not",
                    clip(name, 120)
                ));
            }
            (Some((name, a)), Some((_, b))) if a != b => {
                let extra = a.iter().find(|x| !b.contains(x));
                let missing = b.iter().find(|x| !a.contains(x));
                let what = match (extra, missing) {
                    (Some(x), _) => format!("writes {} as well", clip(x, 200)),
                    (None, Some(m)) => format!("leaves out {}", clip(m, 200)),
                    (None, None) => "repeats an edit".to_owned(),
                };
                return Some(format!("its {action} of {} {what}", clip(name, 120)));
            }
            _ => {}
        }
    }
    None
}

/// What of `doc` may be carried out, given `fresh` (planned now from the same desired state)
/// and the hash of the tenant as read now.
///
/// `terminated` names the users an HRIS termination (the overrides file) made inactive. The
/// override is not part of the files the plan's `desiredHash` covers, so a plan saved before
/// it may lack their deactivation: their changes are left out of the comparison, and of what
/// is carried out (the next plan shows them).
pub(super) fn authorize(
    doc: &PlanDocument,
    fresh: &Plan,
    live: &Snapshot,
    live_hash: &str,
    terminated: &[String],
) -> Result<Authorized, Refusal> {
    let is_terminated = |c: &Change| {
        c.kind == Kind::User && terminated.iter().any(|t| t.eq_ignore_ascii_case(&c.key))
    };
    if doc.live_hash.as_deref() == Some(live_hash) {
        let others = |changes: &[Change]| -> Vec<Change> {
            changes
                .iter()
                .filter(|c| !is_terminated(c))
                .cloned()
                .collect()
        };
        if let Some(difference) = first_difference(
            &canonical(&others(&doc.changes)),
            &canonical(&others(&fresh.changes)),
        ) {
            return Err(Refusal::Differs(difference));
        }
        let mut dropped: Vec<String> = doc
            .changes
            .iter()
            .filter(|c| is_terminated(c))
            .map(|c| {
                format!(
                    "{}: terminated by the HRIS since the plan was saved; plan again",
                    clip(&format!("{} {:?}", c.kind, c.key), 120)
                )
            })
            .collect();
        dropped.dedup();
        return Ok(Authorized {
            plan: Plan {
                changes: others(&fresh.changes),
                warnings: fresh.warnings.clone(),
                unchanged: fresh.unchanged,
            },
            failed: Vec::new(),
            dropped,
        });
    }
    Ok(merge_moved(doc, fresh, live))
}

/// The saved plan against a tenant that moved since: each saved change as far as the fresh
/// change of the same object and action goes.
fn merge_moved(doc: &PlanDocument, fresh: &Plan, live: &Snapshot) -> Authorized {
    let ids: BTreeSet<(Kind, &str)> = live
        .users
        .iter()
        .filter_map(|u| u.id().map(|id| (Kind::User, id)))
        .chain(
            live.groups
                .iter()
                .filter_map(|g| g.id().map(|id| (Kind::Group, id))),
        )
        .collect();
    // The saved rows of one object and action, as one change: what the plan meant to touch.
    let mut intents: BTreeMap<Target, Change> = BTreeMap::new();
    for c in &doc.changes {
        intents
            .entry(Target::of(c))
            .and_modify(|whole| {
                whole.rows_mut().extend(c.rows().iter().cloned());
                whole.edits.extend(c.edits.iter().cloned());
            })
            .or_insert_with(|| c.clone());
    }
    let mut out = Authorized {
        plan: Plan {
            changes: Vec::new(),
            warnings: fresh.warnings.clone(),
            unchanged: fresh.unchanged,
        },
        failed: Vec::new(),
        dropped: Vec::new(),
    };
    for (target, intent) in &intents {
        let rows: Vec<&Change> = fresh
            .changes
            .iter()
            .filter(|f| Target::of(f) == *target || adopts(intent, f))
            .collect();
        let name = clip(&format!("{} {:?}", intent.kind, intent.key), 120);
        let gone = !intent.action.brings_in()
            && intent.kind != Kind::Role
            && intent
                .id
                .as_deref()
                .is_some_and(|id| !ids.contains(&(intent.kind, id)));
        if gone && intent.action.is_destructive() {
            out.dropped.push(format!(
                "{name}: already done (deleted on the target since the plan)"
            ));
            continue;
        }
        if gone {
            // The change cannot be made, and recreating the object is for a new plan to show.
            out.failed.push((
                intent.clone(),
                "deleted on the target since the plan; plan again to recreate it".to_owned(),
            ));
            continue;
        }
        if rows.is_empty() {
            out.dropped.push(format!(
                "{name}: the {} is not in a plan made now (the tenant changed since the plan)",
                intent.action.name()
            ));
            continue;
        }
        for row in rows {
            if row.action.is_destructive() {
                // Same object, same destructive action: the fresh change is the whole of it.
                out.plan.changes.push(row.clone());
                continue;
            }
            match merge(intent, Some(row.clone())) {
                Merge::Nothing => out.dropped.push(format!(
                    "{name}: already as planned (the tenant changed since the plan)"
                )),
                // Sent against the version the plan was made against, where it had one: when
                // the object moved since, the server's If-Match answer makes the applier
                // re-read it and merge again at write time, and report the change `merged`.
                Merge::Send(change) => out.plan.changes.push(Change {
                    blocked: row.blocked.clone(),
                    held_by: row.held_by,
                    version: intent.version.clone().or(change.version.clone()),
                    ..change
                }),
                Merge::Overlap(why) => out.failed.push((row.clone(), why)),
            }
        }
    }
    out
}

/// Whether fresh change `f` patches the object saved create `intent` meant to make: it was
/// created since by someone else (the applier would adopt it just the same).
fn adopts(intent: &Change, f: &Change) -> bool {
    intent.action.brings_in()
        && f.action == Action::Patch
        && f.kind == intent.kind
        && f.key.eq_ignore_ascii_case(&intent.key)
}
