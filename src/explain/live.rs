//! Where the live tenant differs from desired state for the one object `explain` is asked
//! about. Objects are matched by the planner's own rules (externalId, then name, then
//! `previously`). Only attributes both sides have are compared: an attribute absent from
//! YAML is not managed, and one the live resource lacks (a server without `roles`) is named
//! in a note instead of reported as a difference. Group memberships are compared direct
//! ones only, as SCIM lists them.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use serde_json::Value;

use super::graph::{Node, role_index};
use super::{Context, ExplainError, LiveInput};
use crate::plan::licenses::{LicenseRef, license_ref, mapped, user_licenses};
use crate::plan::{Edit, Kind, Matched, PlanError, match_all};
use crate::scim::wire::{Group, User};
use crate::scim::{Live, Resource, Snapshot};

/// How the tenant compares with desired state for one object.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveDiff {
    /// The target that was read.
    pub target: String,
    /// Whether the object exists live (for a role: always true, holders are compared).
    pub found: bool,
    /// The live id, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The attributes compared (the ones both sides have).
    pub compared: Vec<String>,
    /// The attributes that differ.
    pub differences: Vec<Difference>,
    /// What could not be compared, and live facts outside desired state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// A user's Genesys Cloud licenses, when the target's were read (explain user only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub licenses: Option<UserLicenses>,
}

/// The license definitions a live user holds (Genesys Cloud), the one its YAML license maps,
/// and what a plan would change: the planner's own decision
/// (`plan::licenses::user_licenses`), so the two always agree.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserLicenses {
    /// The definitions the live user holds, each named as a plan names it (the YAML license
    /// that maps it, or its id).
    pub held: Vec<LicenseRef>,
    /// The definition the user's YAML license maps (`genesysLicense`), if it maps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped: Option<LicenseRef>,
    /// Whether the live user holds the mapped definition (absent when none is mapped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapped_held: Option<bool>,
    /// Whether a plan manages this user's licenses: some YAML license maps a definition and
    /// the user has a `license`. Otherwise it keeps what it holds.
    pub managed: bool,
    /// The definitions a plan would assign.
    pub add: Vec<LicenseRef>,
    /// The definitions a plan would take away (which `ownership.licenses` decides).
    pub remove: Vec<LicenseRef>,
}

/// One attribute that differs: a single value (`desired`, `live`), or a set (`onlyDesired`,
/// `onlyLive`).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The attribute, as SCIM names it (`groups` and `holders` are derived).
    pub attribute: String,
    /// The desired value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<Value>,
    /// The live value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<Value>,
    /// Entries desired but not live.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_desired: Vec<String>,
    /// Entries live but not desired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub only_live: Vec<String>,
}

impl LiveDiff {
    fn new(target: &str) -> LiveDiff {
        LiveDiff {
            target: target.to_owned(),
            found: false,
            id: None,
            compared: Vec::new(),
            differences: Vec::new(),
            notes: Vec::new(),
            licenses: None,
        }
    }

    /// Compares one value; `same` decides equality.
    fn value(&mut self, attribute: &str, desired: Value, live: Value, same: bool) {
        self.compared.push(attribute.to_owned());
        if !same {
            self.differences.push(Difference {
                attribute: attribute.to_owned(),
                desired: Some(desired),
                live: Some(live),
                only_desired: Vec::new(),
                only_live: Vec::new(),
            });
        }
    }

    /// Compares two sets of names, case-insensitively; keeps the desired spelling.
    fn set(&mut self, attribute: &str, desired: &[String], live: &[String]) {
        self.compared.push(attribute.to_owned());
        let folded = |names: &[String]| -> BTreeSet<String> {
            names.iter().map(|n| n.to_lowercase()).collect()
        };
        let (want, have) = (folded(desired), folded(live));
        let mut only_desired: Vec<String> = desired
            .iter()
            .filter(|n| !have.contains(&n.to_lowercase()))
            .cloned()
            .collect();
        let mut only_live: Vec<String> = live
            .iter()
            .filter(|n| !want.contains(&n.to_lowercase()))
            .cloned()
            .collect();
        only_desired.sort();
        only_desired.dedup();
        only_live.sort();
        only_live.dedup();
        if !only_desired.is_empty() || !only_live.is_empty() {
            self.differences.push(Difference {
                attribute: attribute.to_owned(),
                desired: None,
                live: None,
                only_desired,
                only_live,
            });
        }
    }
}

/// A live resource parsed, or the planner's error for one that cannot be read.
fn parse<R: Resource>(live: &Live<R>, kind: Kind) -> Result<R, PlanError> {
    live.parse().map_err(|e| PlanError::Live {
        kind,
        id: live.id().unwrap_or("?").to_owned(),
        error: e.to_string(),
    })
}

/// Whether the live resource's JSON has the attribute at all.
fn has_attribute<R: Resource>(live: &Live<R>, name: &str) -> bool {
    serde_json::from_str::<serde_json::Map<String, Value>>(live.raw())
        .is_ok_and(|m| m.contains_key(name))
}

/// Live resources by id, named as desired state names them when matched, else as the
/// tenant does.
struct Names<'a> {
    by_id: HashMap<&'a str, String>,
}

impl<'a> Names<'a> {
    fn new(ctx: &Context<'_>, snapshot: &'a Snapshot, matched: &Matched) -> Names<'a> {
        let mut by_id = HashMap::new();
        let desired_user: HashMap<usize, usize> = invert(&matched.users);
        let desired_group: HashMap<usize, usize> = invert(&matched.groups);
        for (l, user) in snapshot.users.iter().enumerate() {
            if let Some(id) = user.id() {
                let name = desired_user.get(&l).map_or_else(
                    || user.natural_key().to_owned(),
                    |&u| ctx.state.users[u].user_name.to_string(),
                );
                by_id.insert(id, name);
            }
        }
        for (l, group) in snapshot.groups.iter().enumerate() {
            if let Some(id) = group.id() {
                let name = desired_group.get(&l).map_or_else(
                    || group.natural_key().to_owned(),
                    |&g| ctx.state.groups[g].display_name.to_string(),
                );
                by_id.insert(id, name);
            }
        }
        Names { by_id }
    }

    fn of(&self, id: &str) -> String {
        self.by_id
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("unknown id {id}"))
    }
}

/// Live position → desired position.
fn invert(matches: &[Option<usize>]) -> HashMap<usize, usize> {
    matches
        .iter()
        .enumerate()
        .filter_map(|(d, l)| l.map(|l| (l, d)))
        .collect()
}

const NOT_LIVE: &str = "not on the target: `scimctl apply` would create it";

/// The user's live differences: `userName`, `active`, `roles`, direct group memberships.
pub(super) fn user(
    ctx: &Context<'_>,
    u: usize,
    input: LiveInput<'_>,
) -> Result<LiveDiff, ExplainError> {
    let matched = match_all(ctx.state, input.snapshot)?;
    let mut diff = LiveDiff::new(input.target);
    let desired = &ctx.state.users[u];
    let Some(l) = matched.users.get(u).copied().flatten() else {
        diff.notes.push(NOT_LIVE.to_owned());
        user_licenses_of(ctx, u, None, input.snapshot, &mut diff);
        return Ok(diff);
    };
    let live = &input.snapshot.users[l];
    let parsed: User = parse(live, Kind::User)?;
    diff.found = true;
    diff.id = live.id().map(str::to_owned);
    diff.value(
        "userName",
        Value::from(desired.user_name.as_str()),
        Value::from(parsed.user_name.as_str()),
        desired.user_name.eq_ignore_ascii_case(&parsed.user_name),
    );
    if let Some(active) = &desired.active {
        match parsed.active {
            Some(have) => diff.value(
                "active",
                Value::from(active.value),
                Value::from(have),
                active.value == have,
            ),
            None => diff
                .notes
                .push("the live user has no `active`: not compared".to_owned()),
        }
    }
    if let Some(roles) = &desired.roles {
        if has_attribute(live, "roles") {
            let want: Vec<String> = roles
                .iter()
                .map(|g| {
                    role_index(ctx.state, &g.name).map_or_else(
                        || g.name.to_string(),
                        |r| ctx.state.roles[r].name.to_string(),
                    )
                })
                .collect();
            let have: Vec<String> = parsed.roles.iter().map(|r| r.value.clone()).collect();
            diff.set("roles", &want, &have);
        } else {
            diff.notes
                .push("the live user has no `roles`: roles not compared".to_owned());
        }
    }
    user_groups(ctx, u, live, &matched, input.snapshot, &mut diff)?;
    user_licenses_of(ctx, u, live.id(), input.snapshot, &mut diff);
    Ok(diff)
}

/// The user's licenses (Genesys Cloud): what the live user `id` holds (`None`: not on the
/// target yet) and what a plan would change, decided by the planner itself. On a target
/// whose licenses were not read (plain SCIM), a note when the user's license maps a
/// definition, which there stays a local rule about roles.
fn user_licenses_of(
    ctx: &Context<'_>,
    u: usize,
    id: Option<&str>,
    snapshot: &Snapshot,
    diff: &mut LiveDiff,
) {
    let state = ctx.state;
    let user = &state.users[u];
    let wanted = user
        .license
        .as_ref()
        .and_then(|name| state.license(name))
        .and_then(|l| l.value.genesys_license.as_ref())
        .map(|g| license_ref(state, g.as_str()));
    let Some(licenses) = &snapshot.licenses else {
        if let Some(w) = &wanted {
            diff.notes.push(format!(
                "license {} maps a Genesys Cloud license definition, but this target cannot \
                 assign licenses: it stays a local rule about roles",
                w.label()
            ));
        }
        return;
    };
    let held: Vec<LicenseRef> = id
        .map(|id| licenses.of(id))
        .unwrap_or_default()
        .iter()
        .map(|h| license_ref(state, h))
        .collect();
    // A plan reads licenses only when some YAML license maps a definition, and changes them
    // only for users with a `license`.
    let managed = mapped(state) && user.license.is_some();
    let (add, remove) = if managed {
        match user_licenses(state, Some(licenses), user, id) {
            Some((_, Edit::Licenses { add, remove })) => (add.into_vec(), remove.into_vec()),
            _ => (Vec::new(), Vec::new()),
        }
    } else {
        (Vec::new(), Vec::new())
    };
    if managed {
        diff.compared.push("license".to_owned());
        if !add.is_empty() || !remove.is_empty() {
            diff.differences.push(Difference {
                attribute: "license".to_owned(),
                desired: None,
                live: None,
                only_desired: add.iter().map(LicenseRef::label).collect(),
                only_live: remove.iter().map(LicenseRef::label).collect(),
            });
        }
    } else if !held.is_empty() {
        diff.notes.push(if user.license.is_none() {
            "the user has no `license` in desired state: a plan leaves the licenses it holds alone"
                .to_owned()
        } else {
            "no YAML license maps a license definition (genesysLicense): a plan leaves licenses alone"
                .to_owned()
        });
    }
    diff.licenses = Some(UserLicenses {
        mapped_held: wanted.as_ref().map(|w| held.contains(w)),
        mapped: wanted,
        held,
        managed,
        add,
        remove,
    });
}

/// Direct group memberships of a user, desired against live. Live groups whose membership
/// desired state does not manage are named in a note, not as differences.
fn user_groups(
    ctx: &Context<'_>,
    u: usize,
    live: &Live<User>,
    matched: &Matched,
    snapshot: &Snapshot,
    diff: &mut LiveDiff,
) -> Result<(), ExplainError> {
    let Some(id) = live.id() else {
        return Ok(());
    };
    let want: Vec<String> = ctx
        .memberships
        .parents_of(Node::User(u))
        .iter()
        .map(|step| ctx.state.groups[step.to].display_name.to_string())
        .collect();
    let desired_group = invert(&matched.groups);
    let mut have = Vec::new();
    let mut unmanaged = Vec::new();
    for (l, group) in snapshot.groups.iter().enumerate() {
        let parsed: Group = parse(group, Kind::Group)?;
        if !parsed.members.iter().any(|m| m.value == id) {
            continue;
        }
        match desired_group.get(&l) {
            Some(&g) if ctx.memberships.is_managed(g) => {
                have.push(ctx.state.groups[g].display_name.to_string());
            }
            Some(&g) => unmanaged.push(ctx.state.groups[g].display_name.to_string()),
            None => unmanaged.push(parsed.display_name),
        }
    }
    diff.set("groups", &want, &have);
    if !unmanaged.is_empty() {
        unmanaged.sort();
        diff.notes.push(format!(
            "also a member, live, of groups whose membership desired state does not manage: {}",
            unmanaged.join(", ")
        ));
    }
    Ok(())
}

/// The group's live differences: `displayName` and direct `members`.
pub(super) fn group(
    ctx: &Context<'_>,
    g: usize,
    input: LiveInput<'_>,
) -> Result<LiveDiff, ExplainError> {
    let matched = match_all(ctx.state, input.snapshot)?;
    let mut diff = LiveDiff::new(input.target);
    let desired = &ctx.state.groups[g];
    let Some(l) = matched.groups.get(g).copied().flatten() else {
        diff.notes.push(NOT_LIVE.to_owned());
        return Ok(diff);
    };
    let live = &input.snapshot.groups[l];
    let parsed: Group = parse(live, Kind::Group)?;
    diff.found = true;
    diff.id = live.id().map(str::to_owned);
    diff.value(
        "displayName",
        Value::from(desired.display_name.as_str()),
        Value::from(parsed.display_name.as_str()),
        desired
            .display_name
            .eq_ignore_ascii_case(&parsed.display_name),
    );
    if ctx.memberships.is_managed(g) {
        let names = Names::new(ctx, input.snapshot, &matched);
        let want: Vec<String> = ctx
            .memberships
            .members_of(g)
            .iter()
            .map(|step| match step.to {
                Node::User(u) => ctx.state.users[u].user_name.to_string(),
                Node::Group(m) => ctx.state.groups[m].display_name.to_string(),
            })
            .collect();
        let have: Vec<String> = parsed.members.iter().map(|m| names.of(&m.value)).collect();
        diff.set("members", &want, &have);
    } else {
        diff.notes
            .push("membership is not written in desired state: members not compared".to_owned());
    }
    Ok(diff)
}

/// Who holds the role live, against who is granted it directly in desired state. Users
/// whose `roles` desired state does not write, or whose live resource has no `roles`, are
/// left out of the comparison and counted in a note.
pub(super) fn role(
    ctx: &Context<'_>,
    r: usize,
    input: LiveInput<'_>,
) -> Result<LiveDiff, ExplainError> {
    let matched = match_all(ctx.state, input.snapshot)?;
    let mut diff = LiveDiff::new(input.target);
    diff.found = true;
    let role_name = ctx.state.roles[r].name.as_str();
    let desired_user = invert(&matched.users);
    let (mut want, mut have, mut unmanaged) = (Vec::new(), Vec::new(), Vec::new());
    let mut unreadable = 0_usize;
    for (u, user) in ctx.state.users.iter().enumerate() {
        let Some(roles) = &user.roles else { continue };
        if !roles
            .iter()
            .any(|g| role_index(ctx.state, &g.name) == Some(r))
        {
            continue;
        }
        // Held in desired state; compared below when the user is live and readable.
        if matched.users.get(u).copied().flatten().is_none() {
            want.push(user.user_name.to_string());
        }
    }
    for (l, live) in input.snapshot.users.iter().enumerate() {
        let desired = desired_user.get(&l).map(|&u| &ctx.state.users[u]);
        let managed = desired.is_some_and(|d| d.roles.is_some());
        if !has_attribute(live, "roles") {
            unreadable += usize::from(managed);
            continue;
        }
        let parsed: User = parse(live, Kind::User)?;
        let holds = parsed
            .roles
            .iter()
            .any(|g| g.value.eq_ignore_ascii_case(role_name));
        match desired {
            Some(d) if managed => {
                let name = d.user_name.to_string();
                let wanted = d
                    .roles
                    .iter()
                    .flatten()
                    .any(|g| role_index(ctx.state, &g.name) == Some(r));
                if wanted {
                    want.push(name.clone());
                }
                if holds {
                    have.push(name);
                }
            }
            Some(d) if holds => unmanaged.push(d.user_name.to_string()),
            None if holds => unmanaged.push(parsed.user_name),
            _ => {}
        }
    }
    diff.set("holders", &want, &have);
    if unreadable > 0 {
        diff.notes.push(format!(
            "{unreadable} live user(s) have no `roles`: not compared"
        ));
    }
    if !unmanaged.is_empty() {
        unmanaged.sort();
        diff.notes.push(format!(
            "also held live by users whose roles desired state does not manage: {}",
            unmanaged.join(", ")
        ));
    }
    Ok(diff)
}
