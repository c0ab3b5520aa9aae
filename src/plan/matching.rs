//! Matching desired objects to live ones (product.md §4): by `externalId` when both have
//! one, else by name case-insensitively, else by a `previously` name. Every ambiguity is an
//! error, reported all at once; nothing is guessed.

use std::collections::HashMap;

use crate::desired::DesiredState;
use crate::scim::{Live, Resource, Snapshot};

use super::{Kind, PlanError};

/// Per desired object (in desired order), the index of its live match.
#[derive(Debug, Default)]
pub(super) struct Matched {
    pub(super) users: Vec<Option<usize>>,
    pub(super) groups: Vec<Option<usize>>,
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

#[allow(clippy::too_many_lines)] // one pass per rule of product.md §4, kept together
fn match_kind<R: Resource>(
    kind: Kind,
    wanted: &[Wanted<'_>],
    live: &[Live<R>],
    problems: &mut Vec<String>,
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
                problems.push(format!(
                    "{kind} {:?}: externalId {e:?} is held by {}",
                    w.name,
                    all.join(" and ")
                ));
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
                        problems.push(format!(
                            "{kind} {:?}: the name is taken by {}, whose externalId differs from {:?}",
                            w.name,
                            describe(hits[0]),
                            w.external_id.unwrap_or_default()
                        ));
                        out.push(None);
                        continue;
                    }
                    many => {
                        let all: Vec<String> = many.iter().map(|&i| describe(i)).collect();
                        problems.push(format!("{kind} {:?} matches {}", w.name, all.join(" and ")));
                        out.push(None);
                        continue;
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
                    problems.push(format!(
                        "{kind} {:?}: its previous names match {}",
                        w.name,
                        all.join(" and ")
                    ));
                    out.push(None);
                    continue;
                }
            }
        }
        if let Some(i) = found
            && let Some(&other) = claimed.get(&i)
        {
            problems.push(format!(
                "{kind} {:?} and {kind} {:?} both match {}",
                wanted[other].name,
                w.name,
                describe(i)
            ));
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

/// Matches every desired user and group.
pub(super) fn match_all(desired: &DesiredState, live: &Snapshot) -> Result<Matched, PlanError> {
    let mut problems = Vec::new();
    let users: Vec<Wanted<'_>> = desired
        .users
        .iter()
        .map(|u| Wanted {
            name: &u.user_name.value,
            external_id: u.external_id.as_ref().map(|e| e.value.as_str()),
            previously: u.previously.iter().map(|p| p.value.as_str()).collect(),
        })
        .collect();
    let groups: Vec<Wanted<'_>> = desired
        .groups
        .iter()
        .map(|g| Wanted {
            name: &g.display_name.value,
            external_id: g.external_id.as_ref().map(|e| e.value.as_str()),
            previously: g.previously.iter().map(|p| p.value.as_str()).collect(),
        })
        .collect();
    let matched = Matched {
        users: match_kind(Kind::User, &users, &live.users, &mut problems),
        groups: match_kind(Kind::Group, &groups, &live.groups, &mut problems),
    };
    if problems.is_empty() {
        Ok(matched)
    } else {
        Err(PlanError::Ambiguous(problems))
    }
}
