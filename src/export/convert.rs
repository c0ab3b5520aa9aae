//! Conversion: a live [`Snapshot`] (SCIM JSON) to desired-state model values
//! ([`Exported`]): only the attributes the planner manages, ids resolved to the names desired
//! state uses, sorted by name case-insensitively, and every value desired state could not
//! hold left out and explained in a warning. Knows nothing of files or YAML.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::filter::{Attribute, GroupAttr, UserAttr};
use super::licenses::LicenseUse;
use super::{DEFAULT_MAX_DEPTH, ExportOptions, Exported, MAX_ROUTING_ENTRIES};
use crate::desired::validate::{check_date, check_email, check_phone};
use crate::model::Kind;
use crate::model::{
    Email, EmailType, Group, PhoneNumber, PhoneType, Proficiency, Role, RoleGrant, Spanned, Text,
    User,
};
use crate::plan::{AttributeSupport, ResourceSchema};
use crate::scim::wire::{self, MultiValue};
use crate::scim::{Resource, Snapshot};

/// Problems found on the way, counted per kind with the first example.
#[derive(Default)]
pub(super) struct Notes(BTreeMap<&'static str, (usize, String)>);

impl Notes {
    pub(super) fn add(&mut self, what: &'static str, example: impl FnOnce() -> String) {
        self.0
            .entry(what)
            .and_modify(|(n, _)| *n += 1)
            .or_insert_with(|| (1, example()));
    }

    fn into_lines(self) -> Vec<String> {
        self.0
            .into_iter()
            .map(|(what, (n, first))| {
                if n == 1 {
                    format!("{what}: {first}")
                } else {
                    format!("{what} ({n} times; first: {first})")
                }
            })
            .collect()
    }
}

/// Writes into `out` the Genesys Cloud settings of a live group that differ from what a
/// create gives a group whose YAML leaves them out: `type: official`, `visibility: public`
/// and `rulesVisible: true`, which scimctl sends, and `false` for the three flags it does
/// not send. What an omitted flag becomes on a real Genesys create is UNCONFIRMED (the
/// simulator makes it `false`); leaving a setting out of YAML leaves it alone, so an export
/// that omits one still reads back to an empty plan. Owners are written by `userName`, and
/// all of them or none: a partial list would remove the owners left out.
fn write_settings(
    out: &mut Group,
    live: &wire::GroupSettings,
    owner_name: &dyn Fn(&str) -> Option<String>,
    notes: &mut Notes,
) {
    use crate::model::{GroupType, GroupVisibility};
    out.kind = match live.kind.as_deref() {
        Some("social") => Some(Spanned::unspanned(GroupType::Social)),
        _ => None,
    };
    out.visibility = match live.visibility.as_deref() {
        Some("owners") => Some(Spanned::unspanned(GroupVisibility::Owners)),
        Some("members") => Some(Spanned::unspanned(GroupVisibility::Members)),
        _ => None,
    };
    out.rules_visible = (live.rules_visible == Some(false)).then(|| Spanned::unspanned(false));
    let set = |flag: Option<bool>| (flag == Some(true)).then(|| Spanned::unspanned(true));
    out.roles_enabled = set(live.roles_enabled);
    out.calls_enabled = set(live.calls_enabled);
    out.include_owners = set(live.include_owners);
    let ids = live.owner_ids.as_deref().unwrap_or_default();
    if ids.is_empty() {
        return;
    }
    let names: Option<Vec<String>> = ids.iter().map(|id| owner_name(id)).collect();
    match names {
        Some(mut names) => {
            names.sort_by(|a, b| name_order(a, b));
            out.owners = Some(names.iter().map(|n| text(n)).collect());
        }
        None => notes.add(
            "group owners left out: an owner is not exported (filtered out, skipped, or not in the tenant)",
            || out.display_name.value.to_string(),
        ),
    }
}

/// The roles granted to live group `id` (Genesys Cloud, read into
/// [`Snapshot::group_grants`]), as YAML writes them: a role held in the home division alone
/// is its name, otherwise `{name, divisions}` (`*` for all divisions); sorted by name. A grant
/// whose role or division has no name is left out.
fn group_roles(snapshot: &Snapshot, id: &str) -> Vec<RoleGrant> {
    let Some(grants) = snapshot.group_grants.as_ref().and_then(|g| g.get(id)) else {
        return Vec::new();
    };
    let divisions = snapshot.divisions.as_deref().unwrap_or_default();
    let mut by_role: std::collections::BTreeMap<String, (String, Vec<String>)> =
        std::collections::BTreeMap::new();
    for g in grants {
        let role = snapshot
            .roles
            .iter()
            .flatten()
            .find(|r| r.id == g.role_id)
            .map_or_else(|| g.role_name.clone(), |r| r.name.clone());
        let division = if g.division_id == crate::model::tenant::ALL_DIVISIONS {
            crate::model::tenant::ALL_DIVISIONS.to_owned()
        } else {
            divisions
                .iter()
                .find(|d| d.id == g.division_id)
                .map_or_else(|| g.division_name.clone(), |d| d.name.clone())
        };
        if role.is_empty() || division.is_empty() {
            continue;
        }
        let entry = by_role
            .entry(fold(&role))
            .or_insert_with(|| (role.clone(), Vec::new()));
        if !entry.1.contains(&division) {
            entry.1.push(division);
        }
    }
    let home = divisions.iter().find(|d| d.home).map(|d| d.name.as_str());
    by_role
        .into_values()
        .map(|(name, mut list)| {
            if list.len() == 1 && Some(list[0].as_str()) == home {
                RoleGrant::named(name.as_str())
            } else {
                list.sort_by(|a, b| name_order(a, b));
                RoleGrant {
                    name: Text::from(name.as_str()),
                    divisions: Some(list.iter().map(|d| Text::from(d.as_str())).collect()),
                }
            }
        })
        .collect()
}

pub(super) fn text(s: &str) -> Spanned<Text> {
    Spanned::unspanned(Text::from(s))
}

pub(super) fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Case-insensitive, then exact, so the order is total and stable; compares character by
/// character, so sorting 100,000 names allocates nothing.
pub(super) fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    let primary = if a.is_ascii() && b.is_ascii() {
        a.bytes()
            .map(|c| c.to_ascii_lowercase())
            .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .cmp(b.chars().flat_map(char::to_lowercase))
    };
    primary.then_with(|| a.cmp(b))
}

/// `names` in [`name_order`], keeping the first of names equal once folded (as validation
/// folds them: `str::to_lowercase`).
pub(super) fn sorted_distinct<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let exact: HashSet<&str> = names.into_iter().collect();
    let mut names: Vec<&str> = exact.into_iter().collect();
    names.sort_by(|a, b| name_order(a, b));
    let mut seen = HashSet::new();
    names.retain(|n| seen.insert(fold(n)));
    names
}

/// The target's answer for every attribute an export writes, asked once per export rather
/// than once per user.
struct Supported(Vec<(ResourceSchema, &'static str, bool)>);

impl Supported {
    fn new(support: &AttributeSupport) -> Supported {
        use ResourceSchema::{Enterprise, Genesys, Group, User};
        let asked = [
            (User, "displayName"),
            (User, "externalId"),
            (User, "active"),
            (User, "title"),
            (User, "emails"),
            (User, "phoneNumbers"),
            (User, "roles"),
            (Enterprise, "department"),
            (Enterprise, "division"),
            (Enterprise, "employeeNumber"),
            (Enterprise, "dateHire"),
            (Enterprise, "manager"),
            (Genesys, "routingSkills"),
            (Genesys, "routingLanguages"),
            (Group, "externalId"),
            (Group, "description"),
        ];
        Supported(
            asked
                .into_iter()
                .map(|(schema, name)| (schema, name, support.has(schema, name)))
                .collect(),
        )
    }

    fn has(&self, schema: ResourceSchema, name: &str) -> bool {
        self.0
            .iter()
            .find(|(s, n, _)| *s == schema && *n == name)
            .is_some_and(|(_, _, ok)| *ok)
    }
}

/// How many live objects hold each folded name and each non-empty externalId.
fn counts<R: Resource>(
    live: &[crate::scim::Live<R>],
) -> (HashMap<String, usize>, HashMap<&str, usize>) {
    let mut names: HashMap<String, usize> = HashMap::with_capacity(live.len());
    let mut external: HashMap<&str, usize> = HashMap::with_capacity(live.len());
    for l in live {
        *names.entry(fold(l.natural_key())).or_default() += 1;
        if let Some(e) = l.external_id().filter(|e| !e.is_empty()) {
            *external.entry(e).or_default() += 1;
        }
    }
    (names, external)
}

fn user_value(user: &wire::User, attr: Attribute) -> Option<String> {
    let ent = user.enterprise.as_ref();
    match attr {
        Attribute::User(a) => match a {
            UserAttr::UserName => Some(user.user_name.clone()),
            UserAttr::DisplayName => user.display_name.clone(),
            UserAttr::ExternalId => user.external_id.clone(),
            UserAttr::Title => user.title.clone(),
            UserAttr::Department => ent.and_then(|e| e.department.clone()),
            UserAttr::Division => ent.and_then(|e| e.division.clone()),
            UserAttr::EmployeeNumber => ent.and_then(|e| e.employee_number.clone()),
            UserAttr::Active => Some(user.active.unwrap_or(true).to_string()),
        },
        Attribute::Group(_) => None,
    }
}

fn group_value(group: &wire::Group, attr: Attribute) -> Option<String> {
    match attr {
        Attribute::Group(GroupAttr::DisplayName) => Some(group.display_name.clone()),
        Attribute::Group(GroupAttr::ExternalId) => group.external_id.clone(),
        Attribute::User(_) => None,
    }
}

/// Parses resources' JSON, on up to 4 threads: at 100,000 users, parsing the server's JSON
/// is most of an export's CPU time. The order is kept.
fn parse_all<R: serde::de::DeserializeOwned + Send>(
    json: &[&str],
) -> Vec<Result<R, serde_json::Error>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(4);
    if threads < 2 || json.len() < 2_000 {
        return json.iter().map(|j| serde_json::from_str(j)).collect();
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = json
            .chunks(json.len().div_ceil(threads))
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|j| serde_json::from_str(j))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Where the users' JSON is read: in the snapshot, or taken out of it
/// ([`crate::scim::Live::take_raw`]), by snapshot index, each freed as soon as its user is
/// converted.
pub(super) enum UsersJson {
    /// In the snapshot, kept.
    InPlace,
    /// Taken out of the snapshot; `None` once converted.
    Taken(Vec<Option<Box<serde_json::value::RawValue>>>),
}

impl UsersJson {
    fn get<'s>(&'s self, snapshot: &'s Snapshot, i: usize) -> &'s str {
        match self {
            UsersJson::InPlace => snapshot.users[i].raw(),
            UsersJson::Taken(json) => json[i].as_deref().map_or("{}", |j| j.get()),
        }
    }

    fn free(&mut self, i: usize) {
        if let UsersJson::Taken(json) = self {
            json[i] = None;
        }
    }
}

/// Users parsed at once: each pass over the users parses them this many at a time and keeps
/// only what it needs of each, so that 100,000 parsed users are never held together.
#[cfg(not(test))]
const PARSE_CHUNK: usize = 8_192;
/// Small in tests, so that their few hundred users span several parts.
#[cfg(test)]
const PARSE_CHUNK: usize = 64;

/// A live user chosen for export, as the first pass keeps it: where it is in the snapshot,
/// its id and its userName.
struct UserKey<'a> {
    index: usize,
    id: Option<&'a str>,
    name: String,
}

/// A live object chosen for export: its id and parsed value.
struct Chosen<'a, T> {
    id: Option<&'a str>,
    value: T,
}

/// Reads the snapshot into desired-state values (see the module docs).
#[must_use]
pub fn desired_of(snapshot: &Snapshot, options: &ExportOptions) -> Exported {
    let mut users = Vec::new();
    let mut exported = convert(snapshot, UsersJson::InPlace, options, &mut |u| {
        users.push(u);
    });
    exported.users = users;
    exported
}

/// [`desired_of`], handing each exported user to `sink` as soon as it is converted, in export
/// order, rather than keeping them: the [`Exported`] it returns has no users.
#[allow(clippy::too_many_lines)] // one pass per kind, each step a few lines
pub(super) fn convert(
    snapshot: &Snapshot,
    mut json: UsersJson,
    options: &ExportOptions,
    sink: &mut dyn FnMut(User),
) -> Exported {
    let mut notes = Notes::default();
    let (user_names, user_external) = counts(&snapshot.users);
    let (group_names, group_external) = counts(&snapshot.groups);

    let mut users: Vec<UserKey<'_>> = Vec::new();
    for (at, part) in snapshot.users.chunks(PARSE_CHUNK).enumerate() {
        let texts: Vec<&str> = (0..part.len())
            .map(|i| json.get(snapshot, at * PARSE_CHUNK + i))
            .collect();
        let parsed_part = parse_all::<wire::User>(&texts);
        drop(texts);
        for (i, (live, parsed)) in part.iter().zip(parsed_part).enumerate() {
            let user = match parsed {
                Ok(u) => u,
                Err(e) => {
                    notes.add(
                        "users not exported: the server's JSON cannot be read",
                        || {
                            format!(
                                "{} (id {}): {e}",
                                live.natural_key(),
                                live.id().unwrap_or("?")
                            )
                        },
                    );
                    continue;
                }
            };
            if !options.filters.keeps(Kind::User, |a| user_value(&user, a)) {
                continue;
            }
            let name = user.user_name.as_str();
            if name.trim().is_empty() || name.trim() != name {
                notes.add(
                    "users not exported: blank userName, or one with leading or trailing spaces",
                    || format!("{name:?} (id {})", live.id().unwrap_or("?")),
                );
                continue;
            }
            if user_names.get(&fold(name)).copied().unwrap_or(0) > 1 {
                notes.add(
                    "users not exported: their userName is held by another live user too (case-insensitively), so no plan could tell them apart",
                    || name.to_owned(),
                );
                continue;
            }
            users.push(UserKey {
                index: at * PARSE_CHUNK + i,
                id: live.id(),
                name: user.user_name,
            });
        }
    }
    users.sort_by(|a, b| name_order(&a.name, &b.name));

    // Ids to the names desired state refers by. A member name that is both a user's and a
    // group's cannot be written: validation refuses it as ambiguous.
    let user_by_id: HashMap<&str, usize> = users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| u.id.map(|id| (id, i)))
        .collect();
    // Every live object by id, exported or not, so a member left out is named, not numbered.
    let live_names: HashMap<&str, &str> = snapshot
        .users
        .iter()
        .filter_map(|u| u.id().map(|id| (id, u.natural_key())))
        .chain(
            snapshot
                .groups
                .iter()
                .filter_map(|g| g.id().map(|id| (id, g.natural_key()))),
        )
        .collect();
    let user_folds: HashSet<String> = users.iter().map(|u| fold(&u.name)).collect();

    // From here on users are needed by id and name only: each user is parsed again as its
    // turn comes and dropped as soon as it is converted, which at 100,000 users is most of
    // the export's memory.
    let (order, user_keys): (Vec<usize>, Vec<(Option<&str>, String)>) =
        users.into_iter().map(|u| (u.index, (u.id, u.name))).unzip();
    let support = &Supported::new(&options.support);
    let ctx = UserContext {
        support,
        user_external: &user_external,
        by_id: &user_by_id,
        users: &user_keys,
        username_email: options.username_email,
    };
    let mut held_roles: HashSet<String> = HashSet::new();
    let mut licenses = LicenseUse::default();
    for (at, part) in order.chunks(PARSE_CHUNK).enumerate() {
        let texts: Vec<&str> = part.iter().map(|&i| json.get(snapshot, i)).collect();
        let parsed_part = parse_all::<wire::User>(&texts);
        drop(texts);
        for &i in part {
            json.free(i);
        }
        for (i, parsed) in parsed_part.into_iter().enumerate() {
            // It parsed in the first pass; the same JSON parses the same way.
            let Ok(user) = parsed else { continue };
            let id = user_keys[at * PARSE_CHUNK + i].0;
            let mut converted = user_of(&user, id, &ctx, &mut notes);
            converted.license =
                licenses.user(snapshot.licenses.as_ref(), id, &converted, &mut notes);
            for role in converted.roles.iter().flatten() {
                if !held_roles.contains(role.name.as_str()) {
                    held_roles.insert(role.name.as_str().to_owned());
                }
            }
            sink(converted);
        }
    }

    // Groups after the users' conversion, which frees the users' JSON: the two are never
    // held together.
    let mut groups: Vec<Chosen<'_, wire::Group>> = Vec::new();
    let texts: Vec<&str> = snapshot.groups.iter().map(crate::scim::Live::raw).collect();
    let parsed_groups = parse_all::<wire::Group>(&texts);
    drop(texts);
    for (live, parsed) in snapshot.groups.iter().zip(parsed_groups) {
        let group = match parsed {
            Ok(g) => g,
            Err(e) => {
                notes.add(
                    "groups not exported: the server's JSON cannot be read",
                    || {
                        format!(
                            "{} (id {}): {e}",
                            live.natural_key(),
                            live.id().unwrap_or("?")
                        )
                    },
                );
                continue;
            }
        };
        if !options
            .filters
            .keeps(Kind::Group, |a| group_value(&group, a))
        {
            continue;
        }
        let name = group.display_name.as_str();
        if name.trim().is_empty() {
            notes.add("groups not exported: blank displayName", || {
                format!("id {}", live.id().unwrap_or("?"))
            });
            continue;
        }
        if group_names.get(&fold(name)).copied().unwrap_or(0) > 1 {
            notes.add(
                "groups not exported: their displayName is held by another live group too (case-insensitively), so no plan could tell them apart",
                || name.to_owned(),
            );
            continue;
        }
        groups.push(Chosen {
            id: live.id(),
            value: group,
        });
    }
    groups.sort_by(|a, b| name_order(&a.value.display_name, &b.value.display_name));
    let group_by_id: HashMap<&str, usize> = groups
        .iter()
        .enumerate()
        .filter_map(|(i, g)| g.id.map(|id| (id, i)))
        .collect();
    let ambiguous: HashSet<String> = groups
        .iter()
        .map(|g| fold(&g.value.display_name))
        .filter(|n| user_folds.contains(n))
        .collect();

    // Members, then nesting: cycles cannot be written and depth may need a policy.
    let mut dropped_members = 0usize;
    let mut members: Vec<Vec<(String, Option<usize>)>> = Vec::with_capacity(groups.len());
    for g in &groups {
        let mut list: Vec<(String, Option<usize>)> = Vec::new();
        let mut seen = HashSet::new();
        for m in &g.value.members {
            let as_group = || group_by_id.get(m.value.as_str()).copied();
            let as_user = || user_by_id.get(m.value.as_str()).copied();
            let resolved = if m.kind.as_deref() == Some("Group") {
                as_group()
                    .map(|i| (groups[i].value.display_name.clone(), Some(i)))
                    .or_else(|| as_user().map(|i| (user_keys[i].1.clone(), None)))
            } else {
                as_user()
                    .map(|i| (user_keys[i].1.clone(), None))
                    .or_else(|| as_group().map(|i| (groups[i].value.display_name.clone(), Some(i))))
            };
            let group_name = &g.value.display_name;
            match resolved {
                Some((name, _)) if ambiguous.contains(&fold(&name)) => {
                    dropped_members += 1;
                    notes.add(
                        "group members left out: the name is both a user's and a group's, which desired state cannot refer to",
                        || format!("{name} in {group_name}"),
                    );
                }
                Some((name, nested)) => {
                    if seen.insert(fold(&name)) {
                        list.push((name, nested));
                    }
                }
                None if live_names.contains_key(m.value.as_str()) => {
                    dropped_members += 1;
                    let name = live_names[m.value.as_str()];
                    notes.add(
                        "group members left out: the member is not exported (filtered out, or skipped as above)",
                        || format!("{name} in {group_name}"),
                    );
                }
                None => {
                    dropped_members += 1;
                    notes.add(
                        "group members left out: the member is not in the tenant (a dangling reference)",
                        || format!("id {} in {group_name}", m.value),
                    );
                }
            }
        }
        members.push(list);
    }
    let dropped_cycles = break_cycles(&mut members, &groups, &mut notes);
    let depth = deepest_nesting(&members);

    let mut out_groups: Vec<Group> = Vec::with_capacity(groups.len());
    for (chosen, list) in groups.iter().zip(members) {
        let g = &chosen.value;
        let group_roles = chosen
            .id
            .map(|id| group_roles(snapshot, id))
            .unwrap_or_default();
        for role in &group_roles {
            if !held_roles.contains(role.name.as_str()) {
                held_roles.insert(role.name.as_str().to_owned());
            }
        }
        let mut names: Vec<String> = list.into_iter().map(|(n, _)| n).collect();
        names.sort_by(|a, b| name_order(a, b));
        let granted: Vec<String> = group_roles.iter().map(|r| r.name.to_string()).collect();
        licenses.group(&names, &granted);
        let external_id = g
            .external_id
            .as_deref()
            .filter(|e| !e.trim().is_empty() && support.has(ResourceSchema::Group, "externalId"));
        let external_id = match external_id {
            Some(e) if group_external.get(e).copied().unwrap_or(0) > 1 => {
                notes.add(
                    "group externalIds left out: held by more than one live group, so matching by it would be ambiguous",
                    || format!("{e} of {}", g.display_name),
                );
                None
            }
            other => other,
        };
        out_groups.push(Group {
            display_name: text(&g.display_name),
            description: g
                .description
                .as_deref()
                .filter(|_| support.has(ResourceSchema::Group, "description"))
                .map(text),
            external_id: external_id.map(text),
            members: Some(names.iter().map(|n| text(n)).collect()),
            previously: Vec::new(),
            kind: None,
            visibility: None,
            rules_visible: None,
            roles_enabled: None,
            calls_enabled: None,
            include_owners: None,
            owners: None,
            roles: (!group_roles.is_empty())
                .then(|| group_roles.into_iter().map(Spanned::unspanned).collect()),
        });
        if let Some(out) = out_groups.last_mut() {
            let owner_name = |id: &str| user_by_id.get(id).map(|&i| user_keys[i].1.clone());
            write_settings(out, &g.settings, &owner_name, &mut notes);
        }
    }

    // Role names users hold, one spelling per folded name (the first in sort order).
    let role_names = sorted_distinct(held_roles.iter().map(String::as_str));
    let roles = role_names
        .into_iter()
        .map(|name| Role {
            name: text(name),
            description: None,
            permissions: None,
            inherits: Vec::new(),
            allow_denied_permissions: None,
        })
        .collect();

    let dropped = dropped_members + dropped_cycles;
    Exported {
        users: Vec::new(),
        groups: out_groups,
        roles,
        licenses: licenses.licenses(snapshot.licenses.as_ref()),
        additive_members: (dropped > 0).then(|| {
            format!(
                "{dropped} group member(s) could not be written (see the warnings of the export); \
                 with authoritative members a plan would remove them"
            )
        }),
        max_group_depth: (depth > DEFAULT_MAX_DEPTH)
            .then(|| u32::try_from(depth).unwrap_or(u32::MAX)),
        warnings: notes.into_lines(),
    }
}

/// What [`user_of`] looks things up in.
struct UserContext<'s, 'a> {
    support: &'s Supported,
    user_external: &'s HashMap<&'a str, usize>,
    by_id: &'s HashMap<&'a str, usize>,
    /// Exported users' ids and userNames, in export order.
    users: &'s [(Option<&'a str>, String)],
    /// The target keeps the userName as the read-only `other` email (Genesys Cloud).
    username_email: bool,
}

/// One live user as desired state, with only what the planner manages and desired state can
/// hold.
#[allow(clippy::too_many_lines)] // one short block per attribute, in YAML order
fn user_of(u: &wire::User, id: Option<&str>, ctx: &UserContext<'_, '_>, notes: &mut Notes) -> User {
    let core = |name: &str| ctx.support.has(ResourceSchema::User, name);
    let ent_has = |name: &str| ctx.support.has(ResourceSchema::Enterprise, name);
    let gen_has = |name: &str| ctx.support.has(ResourceSchema::Genesys, name);
    let ent = u.enterprise.as_ref();
    let who = || u.user_name.clone();

    let display_name = u
        .display_name
        .as_deref()
        .filter(|d| !d.trim().is_empty() && core("displayName"))
        .map(text);
    let external_id = match u.external_id.as_deref() {
        Some(e) if e.trim().is_empty() || !core("externalId") => None,
        Some(e) if ctx.user_external.get(e).copied().unwrap_or(0) > 1 => {
            notes.add(
                "user externalIds left out: held by more than one live user, so matching by it would be ambiguous",
                || format!("{e} of {}", u.user_name),
            );
            None
        }
        other => other.map(text),
    };
    let emails = if core("emails") {
        // Genesys Cloud lists the userName as a read-only `other` email, primary: desired
        // state may not write it (validation refuses it) and plans never compare it.
        let written: Vec<MultiValue>;
        let listed = if ctx.username_email {
            written = u
                .emails
                .iter()
                .filter(|e| {
                    !e.kind
                        .as_deref()
                        .is_some_and(|k| k.eq_ignore_ascii_case("other"))
                })
                .cloned()
                .collect();
            &written
        } else {
            &u.emails
        };
        match emails_of(listed) {
            Ok(e) => e,
            Err(why) => {
                notes.add("user emails left out (kept as they are live)", || {
                    format!("{}: {why}", who())
                });
                None
            }
        }
    } else {
        None
    };
    let phone_numbers = if core("phoneNumbers") {
        match phones_of(&u.phone_numbers) {
            Ok(p) => p,
            Err(why) => {
                notes.add(
                    "user phone numbers left out (kept as they are live)",
                    || format!("{}: {why}", who()),
                );
                None
            }
        }
    } else {
        None
    };
    let date_hire = match ent.and_then(|e| e.date_hire.as_deref()) {
        Some(d) if ent_has("dateHire") => match check_date(d) {
            Ok(()) => Some(text(d)),
            Err(why) => {
                notes.add("user dateHire left out (kept as it is live)", || {
                    format!("{}: {d:?} {why}", who())
                });
                None
            }
        },
        _ => None,
    };
    let manager = match ent.and_then(|e| e.manager.as_ref()) {
        Some(m) if ent_has("manager") && !m.value.is_empty() => {
            match ctx.by_id.get(m.value.as_str()) {
                Some(&i) if ctx.users[i].0 == id => {
                    notes.add("user managers left out: the user is their own manager", who);
                    None
                }
                Some(&i) => Some(text(&ctx.users[i].1)),
                None => {
                    notes.add(
                        "user managers left out (kept as they are live): the manager is not exported, or not in the tenant",
                        || format!("{}: manager id {}", who(), m.value),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let genesys = u.genesys.as_ref();
    let mut routing = |field: &'static str, list: Option<&Vec<wire::Proficiency>>| {
        let list = list.filter(|l| !l.is_empty() && gen_has(field))?;
        match proficiencies_of(list) {
            Ok(p) => Some(p),
            Err(why) => {
                notes.add(
                    if field == "routingSkills" {
                        "user routingSkills left out (kept as they are live)"
                    } else {
                        "user routingLanguages left out (kept as they are live)"
                    },
                    || format!("{}: {why}", who()),
                );
                None
            }
        }
    };
    let routing_skills = routing("routingSkills", genesys.map(|g| &g.routing_skills));
    let routing_languages = routing("routingLanguages", genesys.map(|g| &g.routing_languages));
    let roles = if core("roles") && !u.roles.is_empty() {
        let names = sorted_distinct(
            u.roles
                .iter()
                .map(|r| r.value.as_str())
                .filter(|r| !r.trim().is_empty()),
        );
        (!names.is_empty()).then(|| {
            names
                .into_iter()
                .map(|n| Spanned::unspanned(RoleGrant::named(n)))
                .collect()
        })
    } else {
        None
    };
    let scalar = |value: Option<&str>, supported: bool| value.filter(|_| supported).map(text);
    User {
        user_name: text(&u.user_name),
        display_name,
        external_id,
        active: u.active.filter(|_| core("active")).map(Spanned::unspanned),
        title: scalar(u.title.as_deref(), core("title")),
        emails,
        phone_numbers,
        department: scalar(
            ent.and_then(|e| e.department.as_deref()),
            ent_has("department"),
        ),
        division: scalar(ent.and_then(|e| e.division.as_deref()), ent_has("division")),
        employee_number: scalar(
            ent.and_then(|e| e.employee_number.as_deref()),
            ent_has("employeeNumber"),
        ),
        date_hire,
        manager,
        routing_skills,
        routing_languages,
        roles,
        groups: None,
        license: None,
        password: None,
        previously: Vec::new(),
    }
}

/// Live emails as desired state, `Ok(None)` when there are none; `Err` when desired state
/// could not hold them as they are (so they are better left unmanaged than changed).
fn emails_of(values: &[MultiValue]) -> Result<Option<Vec<Spanned<Email>>>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    contacts_check(values, "email")?;
    for v in values {
        check_email(&v.value).map_err(|why| format!("email {:?} {why}", v.value))?;
    }
    Ok(Some(
        values
            .iter()
            .map(|v| {
                let kind = v.kind.as_deref().and_then(EmailType::parse);
                Spanned::unspanned(Email {
                    value: Text::from(v.value.as_str()),
                    kind,
                    primary: v.primary.filter(|p| *p),
                })
            })
            .collect(),
    ))
}

/// Live phone numbers as desired state (see [`emails_of`]).
fn phones_of(values: &[MultiValue]) -> Result<Option<Vec<Spanned<PhoneNumber>>>, String> {
    if values.is_empty() {
        return Ok(None);
    }
    contacts_check(values, "phone number")?;
    for v in values {
        check_phone(&v.value).map_err(|why| format!("phone number {:?} {why}", v.value))?;
    }
    Ok(Some(
        values
            .iter()
            .map(|v| {
                Spanned::unspanned(PhoneNumber {
                    value: Text::from(v.value.as_str()),
                    kind: v.kind.as_deref().and_then(PhoneType::parse),
                    primary: v.primary.filter(|p| *p),
                })
            })
            .collect(),
    ))
}

/// What emails and phone numbers share: one primary at most, no address twice (the planner
/// keeps the first of a repeated address, and the other would then be removed).
fn contacts_check(values: &[MultiValue], what: &str) -> Result<(), String> {
    if values.iter().filter(|v| v.primary == Some(true)).count() > 1 {
        return Err(format!("more than one {what} is primary"));
    }
    let mut seen = HashSet::new();
    for v in values {
        if !seen.insert(fold(&v.value)) {
            return Err(format!("{what} {:?} is listed twice", v.value));
        }
    }
    Ok(())
}

fn proficiencies_of(list: &[wire::Proficiency]) -> Result<Vec<Spanned<Proficiency>>, String> {
    if list.len() > MAX_ROUTING_ENTRIES {
        return Err(format!(
            "{} entries; at most {MAX_ROUTING_ENTRIES}",
            list.len()
        ));
    }
    let mut seen = HashSet::new();
    for p in list {
        if p.name.trim().is_empty() {
            return Err("a blank name".into());
        }
        if !(0.0..=5.0).contains(&p.proficiency) {
            return Err(format!("{} has proficiency {}", p.name, p.proficiency));
        }
        // Names are case-sensitive (as validation and the planner have them): only an exact
        // repeat is one skill listed twice.
        if !seen.insert(p.name.as_str()) {
            return Err(format!("{} is listed twice", p.name));
        }
    }
    Ok(list
        .iter()
        .map(|p| {
            Spanned::unspanned(Proficiency {
                name: Text::from(p.name.as_str()),
                proficiency: p.proficiency,
            })
        })
        .collect())
}

/// Drops the member references that close a nesting cycle (validation refuses cycles), in a
/// depth-first search in name order, so the same tenant always loses the same edges.
/// Returns how many were dropped.
fn break_cycles(
    members: &mut [Vec<(String, Option<usize>)>],
    groups: &[Chosen<'_, wire::Group>],
    notes: &mut Notes,
) -> usize {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let n = members.len();
    let mut mark = vec![Mark::New; n];
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for start in 0..n {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::Active;
        let mut stack = vec![(start, 0usize)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some((_, child)) = members[node].get(*next) {
                let position = *next;
                *next += 1;
                let Some(child) = *child else { continue };
                match mark[child] {
                    Mark::New => {
                        mark[child] = Mark::Active;
                        stack.push((child, 0));
                    }
                    Mark::Active => cut.push((node, position)),
                    Mark::Done => {}
                }
            } else {
                mark[node] = Mark::Done;
                stack.pop();
            }
        }
    }
    // Remove from the back so earlier positions stay valid.
    cut.sort_unstable();
    for &(node, position) in cut.iter().rev() {
        let (name, _) = members[node].remove(position);
        notes.add(
            "group members left out: the membership closes a nesting cycle, which desired state cannot hold",
            || format!("{name} in {}", groups[node].value.display_name),
        );
    }
    cut.len()
}

/// The longest chain of nested groups, counting the outermost as 1 (0 without groups).
/// The graph has no cycles left.
fn deepest_nesting(members: &[Vec<(String, Option<usize>)>]) -> usize {
    let n = members.len();
    let mut depth: Vec<Option<usize>> = vec![None; n];
    for start in 0..n {
        if depth[start].is_some() {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let children = &members[node];
            if let Some((_, child)) = children.get(*next) {
                *next += 1;
                if let Some(c) = *child
                    && depth[c].is_none()
                {
                    stack.push((c, 0));
                }
            } else {
                let below = children
                    .iter()
                    .filter_map(|(_, c)| c.and_then(|c| depth[c]))
                    .max()
                    .unwrap_or(0);
                depth[node] = Some(below + 1);
                stack.pop();
            }
        }
    }
    depth.into_iter().flatten().max().unwrap_or(0)
}
