//! Comparing values: scalar attributes, and multi-valued ones (emails, phone numbers,
//! roles, routing skills and languages) matched value by value on a key, so that an edit
//! targets exactly the value meant and a repeated value settles instead of flapping.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Context;
use crate::model::Spanned;
use crate::model::tenant::{self, MultiValue};
use crate::plan::{Attr, AttrDiff, Complex, Edit, Multi, Scalar, ValueKey, ValuePaths};

/// A scalar string attribute's comparison.
pub(super) fn scalar(
    ctx: &mut Context<'_>,
    attr: Attr,
    want: Option<&Spanned<crate::model::Text>>,
    have: Option<&str>,
    out: &mut Diffs,
) {
    let Some(want) = want else { return };
    if !ctx.supported(attr.schema(), attr.name(), want.span) {
        return;
    }
    if have == Some(want.value.as_str()) {
        return;
    }
    out.set(attr, have.map(Value::from), Scalar::from(&want.value));
}

/// Diffs and edits being collected for one object.
#[derive(Default)]
pub(super) struct Diffs {
    pub(super) diff: Vec<AttrDiff>,
    pub(super) edits: Vec<Edit>,
    pub(super) present: Vec<Attr>,
}

impl Diffs {
    pub(super) fn set(&mut self, attr: Attr, before: Option<Value>, after: Scalar) {
        if before.is_some() {
            self.present.push(attr);
        }
        self.diff.push(AttrDiff {
            attribute: attr.name().to_owned(),
            before,
            after: Some(after.to_value()),
            ..AttrDiff::default()
        });
        self.edits.push(Edit::Set { attr, value: after });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }
}

/// One keyed value of a multi-valued attribute, desired or live.
pub(super) struct Keyed {
    pub(super) key: ValueKey,
    pub(super) value: Complex,
    /// How it shows in a diff.
    pub(super) label: String,
}

/// A contact (email or phone number) as SCIM writes it.
fn contact(value: &str, kind: Option<&str>, primary: Option<bool>) -> Complex {
    let value = Some(("value", Value::from(value)));
    let kind = kind.map(|t| ("type", Value::from(t)));
    let primary = primary.map(|p| ("primary", Value::from(p)));
    Complex::new([value, kind, primary].into_iter().flatten())
}

fn contact_label(value: &str, kind: Option<&str>) -> String {
    match kind {
        Some(t) => format!("{value} ({t})"),
        None => value.to_owned(),
    }
}

/// Desired contacts as keyed values: one per address (the first where one is listed twice),
/// keyed by `type` where no other desired value has that type, else by the address. A key
/// two desired values shared would have both fight over the same live values forever.
pub(super) fn desired_contacts<'a>(
    items: impl Iterator<Item = (&'a str, Option<String>, Option<bool>)>,
) -> Vec<Keyed> {
    let mut seen = HashSet::new();
    let items: Vec<_> = items
        .filter(|(value, _, _)| seen.insert(value.to_lowercase()))
        .collect();
    let shared = |t: &str| {
        items
            .iter()
            .filter(|(_, k, _)| k.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(t)))
            .count()
            > 1
    };
    items
        .iter()
        .map(|(value, kind, primary)| {
            let key = match kind {
                Some(t) if !shared(t) => ValueKey::new("type", t),
                _ => ValueKey::new("value", value),
            };
            Keyed {
                key,
                value: contact(value, kind.as_deref(), *primary),
                label: contact_label(value, kind.as_deref()),
            }
        })
        .collect()
}

/// Live contacts as keyed values: by address where desired state keys that address, else by
/// `type` (by address when untyped). The value keeps everything a filter can test.
pub(super) fn live_contacts(values: &[MultiValue], want: &[Keyed]) -> Vec<Keyed> {
    let by_value: HashSet<String> = want
        .iter()
        .filter(|w| w.key.sub == "value")
        .map(|w| w.key.equals.to_lowercase())
        .collect();
    values
        .iter()
        .map(|m| {
            let key = match &m.kind {
                Some(t) if !by_value.contains(&m.value.to_lowercase()) => ValueKey::new("type", t),
                _ => ValueKey::new("value", &m.value),
            };
            Keyed {
                key,
                value: contact(&m.value, m.kind.as_deref(), m.primary),
                label: contact_label(&m.value, m.kind.as_deref()),
            }
        })
        .collect()
}

/// Whether two keys name the same value. Routing skill and language names (`name`) are
/// case-sensitive on Genesys Cloud (docs/genesys.md §3), as
/// validation treats them; types and values compare as SCIM's `eq` does, ignoring case.
/// (Edits still target values case-insensitively, see [`ValueKey::matches`], so a filter
/// that could also hit a differently cased twin falls back to a whole-list replace.)
fn same_key(a: &ValueKey, b: &ValueKey) -> bool {
    a.sub == b.sub
        && if a.sub == "name" {
            a.equals == b.equals
        } else {
            a.equals.eq_ignore_ascii_case(&b.equals)
        }
}

/// What a change does to one live value of a keyed set.
#[derive(Clone, Copy)]
enum Fate<'a> {
    Keep,
    Replace(&'a Complex),
    Remove,
}

/// Compares a keyed set: values to add, replace and (when `authoritative`) remove. Each
/// desired key claims every live value with that key; when they are not all as desired, one
/// is replaced, or several are removed and the desired value added.
pub(super) fn keyed_set(
    attr: Multi,
    want: &[Keyed],
    have: &[Keyed],
    same: impl Fn(&Complex, &Complex) -> bool,
    authoritative: bool,
    paths: ValuePaths,
    out: &mut Diffs,
) {
    let mut keys: Vec<&ValueKey> = Vec::with_capacity(want.len());
    let want: Vec<&Keyed> = want
        .iter()
        .filter(|w| {
            let first = !keys.iter().any(|k| same_key(k, &w.key));
            keys.push(&w.key);
            first
        })
        .collect();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut fate = vec![Fate::Keep; have.len()];
    let mut adds = Vec::new();
    for w in &want {
        let hits: Vec<usize> = (0..have.len())
            .filter(|&i| same_key(&have[i].key, &w.key))
            .collect();
        if hits.iter().all(|&i| same(&have[i].value, &w.value)) && !hits.is_empty() {
            continue;
        }
        for &i in &hits {
            removed.push(have[i].label.clone());
        }
        added.push(w.label.clone());
        if let [one] = hits.as_slice() {
            fate[*one] = Fate::Replace(&w.value);
        } else {
            for &i in &hits {
                fate[i] = Fate::Remove;
            }
            adds.push(w.value.clone());
        }
    }
    if authoritative {
        for (i, h) in have.iter().enumerate() {
            if !want.iter().any(|w| same_key(&w.key, &h.key)) {
                removed.push(h.label.clone());
                fate[i] = Fate::Remove;
            }
        }
    }
    if added.is_empty() && removed.is_empty() {
        return;
    }
    out.diff.push(AttrDiff {
        attribute: attr.name().to_owned(),
        added,
        removed,
        ..AttrDiff::default()
    });
    out.edits.extend(set_edits(attr, have, &fate, adds, paths));
}

/// The edits that give each live value its fate, then add `adds`: removals, then
/// replacements, each through a value filter that picks out exactly the values meant at that
/// point (checked against the list as the earlier edits leave it), then one add. When no
/// filter is exact (the live set holds a type twice and an address twice, say), a filter
/// would also hit a value that must stay, so the whole attribute is replaced instead. Only
/// filters the target takes (`paths`) are used; where none fits, the same fallback applies.
fn set_edits(
    attr: Multi,
    have: &[Keyed],
    fate: &[Fate<'_>],
    adds: Vec<Complex>,
    paths: ValuePaths,
) -> Vec<Edit> {
    // The list as the server holds it while the edits apply: (live index, value).
    let mut list: Vec<(Option<usize>, Complex)> = have
        .iter()
        .enumerate()
        .map(|(i, h)| (Some(i), h.value.clone()))
        .collect();
    let intended: Vec<Complex> = have
        .iter()
        .zip(fate)
        .filter_map(|(h, f)| match f {
            Fate::Keep => Some(h.value.clone()),
            Fate::Replace(v) => Some((*v).clone()),
            Fate::Remove => None,
        })
        .chain(adds.iter().cloned())
        .collect();
    // A filter that matches exactly the entries of `list` at positions `targets`.
    let exact =
        |list: &[(Option<usize>, Complex)], targets: &[usize], candidates: Vec<ValueKey>| {
            candidates.into_iter().find(|k| {
                list.iter()
                    .enumerate()
                    .all(|(p, (_, v))| k.picks(v) == targets.contains(&p))
            })
        };
    let candidates = |h: &Keyed, alone: bool, removes: bool| {
        let mut keys = vec![h.key.clone()];
        if alone {
            for sub in ["value", "type", "name"] {
                if let Some(s) = h.value.get(sub).and_then(Value::as_str) {
                    keys.push(ValueKey::new(sub, s));
                }
            }
        }
        keys.retain(|k| paths.allows(attr.name(), &k.sub, removes));
        keys
    };
    let fallback = || {
        vec![Edit::ReplaceAll {
            attr,
            values: intended.clone(),
        }]
    };
    let mut edits = Vec::new();
    let mut done = vec![false; have.len()];
    for i in 0..have.len() {
        if !matches!(fate[i], Fate::Remove) || done[i] {
            continue;
        }
        let group: Vec<usize> = (i..have.len())
            .filter(|&j| matches!(fate[j], Fate::Remove) && same_key(&have[j].key, &have[i].key))
            .collect();
        let targets: Vec<usize> = list
            .iter()
            .enumerate()
            .filter(|(_, (origin, _))| origin.is_some_and(|o| group.contains(&o)))
            .map(|(p, _)| p)
            .collect();
        let Some(key) = exact(
            &list,
            &targets,
            candidates(&have[i], group.len() == 1, true),
        ) else {
            return fallback();
        };
        list.retain(|(_, v)| !key.picks(v));
        for j in group {
            done[j] = true;
        }
        edits.push(Edit::Remove {
            attr,
            key: Box::new(key),
        });
    }
    for (i, f) in fate.iter().enumerate() {
        let Fate::Replace(value) = f else { continue };
        let Some(p) = list.iter().position(|(origin, _)| *origin == Some(i)) else {
            return fallback();
        };
        let Some(key) = exact(&list, &[p], candidates(&have[i], true, false)) else {
            return fallback();
        };
        list[p] = (None, (*value).clone());
        edits.push(Edit::Replace {
            attr,
            key: Box::new(key),
            value: (*value).clone(),
        });
    }
    if !adds.is_empty() {
        // Sized exactly: a plan of 100,000 creates holds every one until it is carried out.
        let mut adds = adds;
        adds.shrink_to_fit();
        edits.push(Edit::Add { attr, values: adds });
    }
    edits
}

/// Whether two contact values agree: same value (emails case-insensitively) and, where the
/// desired one says, the same `type` and `primary`.
pub(super) fn same_contact(case_insensitive: bool) -> impl Fn(&Complex, &Complex) -> bool {
    move |live, want| {
        let text = |v: &Complex| {
            v.get("value")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let values_equal = if case_insensitive {
            text(live).eq_ignore_ascii_case(&text(want))
        } else {
            text(live) == text(want)
        };
        let primary_ok = match want.get("primary").and_then(Value::as_bool) {
            None => true,
            Some(p) => {
                live.get("primary")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    == p
            }
        };
        let type_ok = want.get("type").and_then(Value::as_str).is_none_or(|t| {
            live.get("type")
                .and_then(Value::as_str)
                .is_some_and(|l| l.eq_ignore_ascii_case(t))
        });
        values_equal && type_ok && primary_ok
    }
}

pub(super) fn same_proficiency(live: &Complex, want: &Complex) -> bool {
    let p = |v: &Complex| v.get("proficiency").and_then(Value::as_f64).unwrap_or(-1.0);
    (p(live) - p(want)).abs() < 1e-9
}

pub(super) fn proficiencies(values: &[crate::model::Proficiency]) -> Vec<Keyed> {
    values
        .iter()
        .map(|p| Keyed {
            key: ValueKey::new("name", &p.name),
            value: proficiency(&p.name, p.proficiency),
            label: format!("{} ({})", p.name, p.proficiency),
        })
        .collect()
}

/// A routing skill or language as SCIM writes it.
fn proficiency(name: &str, proficiency: f64) -> Complex {
    Complex::new([
        ("name", Value::from(name)),
        ("proficiency", json!(proficiency)),
    ])
}

pub(super) fn live_proficiencies(values: &[tenant::Proficiency]) -> Vec<Keyed> {
    values
        .iter()
        .map(|p| Keyed {
            key: ValueKey::new("name", &p.name),
            value: proficiency(&p.name, p.proficiency),
            label: format!("{} ({})", p.name, p.proficiency),
        })
        .collect()
}
