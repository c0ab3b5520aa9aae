//! Property tests of the planner (issue: "planner properties"): on random small pairs of
//! desired state and a live tenant,
//!
//! * applying a plan with a conforming server ([`simulate`]) and planning again gives an empty
//!   plan, unless a safety rule held something back, in which case exactly the held-back
//!   changes remain;
//! * a plan never changes an object outside ownership or a protected one;
//! * a plan's edits touch only attributes written in YAML, and additive collections lose
//!   nothing;
//! * desired state applied to an empty tenant needs no further change.
//!
//! A [`World`] describes a tenant in slots: each user or group slot may have a desired side, a
//! live side, or both, with attributes drawn from small pools so that equal and different
//! values both come up often. Names are derived from the slot, so they never collide, and the
//! live side may use the same name, another case, an old name listed in `previously`, or an
//! unrelated name (matched only by `externalId`, if at all).

use std::collections::{HashMap, HashSet};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::desired::validate::{Collected, Environment};
use crate::desired::{DesiredState, Diagnostic};
use crate::model::tenant::{
    Division, ENTERPRISE_SCHEMA, Grant, LicenseDefinition, LiveLicenses, PermissionPolicy,
    PlatformRole, Resource, Snapshot,
};
use crate::model::{
    CollectionMode, Collections, Config, Email, EmailType, Group, GroupPrune, License, Ownership,
    OwnershipMode, PhoneNumber, PhoneType, Policy, Protected, Prune, Role, RoleGrant, Safety,
    Selector, SourceMap, Spanned, User, UserPrune,
};
use crate::plan::{
    Action, AttributeSupport, Change, Edit, Kind, Multi, Plan, PlanError, PlanOptions,
    ResourceSchema, Source, TargetCapabilities, plan,
};

use super::{simulate, snapshot};

const MAX_USERS: usize = 6;
const MAX_GROUPS: usize = 4;
const DOMAINS: [&str; 2] = ["x.example", "y.example"];
const GROUP_PREFIXES: [&str; 2] = ["Team", "Squad"];
/// Role names desired state may grant; the last two may be `policy.adminRoles`.
const ROLES: [&str; 3] = ["Agent", "Supervisor", "Admin"];
/// Roles live users may hold: the desired ones and a case variant.
const LIVE_ROLES: [&str; 4] = ["Agent", "Supervisor", "Admin", "admin"];
/// Permissions roles may grant, desired or live; some overlap through wildcards.
const PERMS: [&str; 6] = [
    "directory:user:view",
    "directory:user:edit",
    "routing:queue:*",
    "routing:queue:join",
    "analytics:*:view",
    "*",
];
/// Names of live roles desired state does not list; the first two are owned by the prefix
/// selector.
const EXTRA_ROLES: [&str; 3] = ["Old Agent", "Old Lead", "Partner"];
/// Scalar values; two differ only in case (scalars compare case-sensitively).
const WORDS: [&str; 3] = ["Alpha", "Beta", "alpha"];
/// Email addresses; two differ only in case (emails compare case-insensitively).
const EMAILS: [&str; 3] = ["one@mail.example", "ONE@mail.example", "two@mail.example"];
const EMAIL_TYPES: [EmailType; 3] = [EmailType::Work, EmailType::Home, EmailType::Other];
/// Email types as servers send them, one in another case.
const LIVE_EMAIL_TYPES: [&str; 4] = ["work", "home", "other", "Work"];
const PHONES: [&str; 2] = ["+14155550100", "+14155550111"];
/// Divisions of a Genesys-like target (id, name); the first is the home division.
const DIVISIONS: [(&str, &str); 2] = [("d-home", "Home"), ("d-field", "Field")];
/// How a desired grant names its divisions (an index into this): a plain role name (the home
/// division), one division, both, or all divisions (`"*"`).
const SCOPES: [Option<&[&str]>; 4] = [
    None,
    Some(&["Field"]),
    Some(&["home", "Field"]),
    Some(&["*"]),
];
/// The org's license definitions (Genesys-like targets); YAML maps the first two, and the
/// licenses selector (`ownership.licenses: {namePrefix: def-e}`) takes the last.
const DEFINITIONS: [&str; 3] = ["def-basic", "def-full", "def-extra"];
/// YAML licenses: name, the roles it allows (indexes into [`ROLES`]), the definition it maps.
const LICENSES: [(&str, &[usize], Option<usize>); 3] = [
    ("Basic", &[0], Some(0)),
    ("Full", &[0, 1, 2], Some(1)),
    ("Local", &[0, 1, 2], None),
];
const PHONE_TYPES: [PhoneType; 3] = [PhoneType::Work, PhoneType::Mobile, PhoneType::Home];
const LIVE_PHONE_TYPES: [&str; 3] = ["work", "mobile", "home"];
/// Attributes a target may lack (`AttributeSupport::only`).
const SUPPORTABLE: [(ResourceSchema, &str); 13] = [
    (ResourceSchema::User, "displayName"),
    (ResourceSchema::User, "externalId"),
    (ResourceSchema::User, "active"),
    (ResourceSchema::User, "title"),
    (ResourceSchema::User, "emails"),
    (ResourceSchema::User, "phoneNumbers"),
    (ResourceSchema::User, "roles"),
    (ResourceSchema::Enterprise, "employeeNumber"),
    (ResourceSchema::Enterprise, "department"),
    (ResourceSchema::Enterprise, "division"),
    (ResourceSchema::Enterprise, "manager"),
    (ResourceSchema::Group, "externalId"),
    (ResourceSchema::Group, "description"),
];

/// One value of `emails` or `phoneNumbers`, as indexes into the pools.
#[derive(Clone, Debug)]
struct Contact {
    value: usize,
    kind: Option<usize>,
    primary: Option<bool>,
}

/// A user's attributes on one side. On the desired side `None` means "not written"; on the
/// live side, "not set". `external_id`: 0 none; 1 the slot's; 2 (live only) another one.
#[derive(Clone, Debug)]
struct Attrs {
    external_id: u8,
    display_name: Option<usize>,
    title: Option<usize>,
    department: Option<usize>,
    division: Option<usize>,
    employee_number: Option<usize>,
    active: Option<bool>,
    emails: Option<Vec<Contact>>,
    phones: Option<Vec<Contact>>,
    roles: Option<Vec<usize>>,
    /// Another user slot.
    manager: Option<usize>,
    /// Group slots (desired side only: the `groups:` sugar).
    groups: Option<Vec<usize>>,
    /// Genesys-like targets, desired side: per entry of `roles`, an index into [`SCOPES`]
    /// (cycled); live side: direct grants (see [`LiveGrant`]).
    scopes: Vec<usize>,
    grants: Vec<LiveGrant>,
    /// Genesys-like targets: the YAML license (an index into [`LICENSES`], desired side) and
    /// the definitions held (indexes into [`DEFINITIONS`], live side).
    license: Option<usize>,
    held: Vec<usize>,
}

/// A live role grant: a role (an index into [`ROLES`] then [`EXTRA_ROLES`]; only live roles
/// are granted) in a division (an index into [`DIVISIONS`], or all divisions past them).
type LiveGrant = (usize, usize);

/// How the live side of a slot is named, relative to the desired name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Naming {
    /// The same name.
    Same,
    /// The same name in upper case.
    Case,
    /// The old name, which desired state lists under `previously` when the slot says so.
    Renamed,
    /// An unrelated name.
    Legacy,
}

#[derive(Clone, Debug)]
struct UserSlot {
    domain: usize,
    naming: Naming,
    /// Whether desired state lists the old name under `previously`.
    previously: bool,
    desired: Option<Attrs>,
    live: Option<Attrs>,
    /// With no live user: whether a user of its live name is in the `deleted` state
    /// (Genesys Cloud), which a create of that name must restore instead.
    deleted: bool,
}

/// A group member: (is a group, slot).
type Member = (bool, usize);

#[derive(Clone, Debug)]
struct GroupAttrs {
    external_id: u8,
    description: Option<usize>,
    members: Option<Vec<Member>>,
    /// Genesys-like targets, desired side: `roles` as (index into [`ROLES`], index into
    /// [`SCOPES`]); live side: the grants the group holds.
    roles: Option<Vec<(usize, usize)>>,
    grants: Vec<LiveGrant>,
    /// `rolesEnabled` (desired: written, never `false` beside roles; live: as the org has it).
    roles_enabled: Option<bool>,
}

#[derive(Clone, Debug)]
struct GroupSlot {
    prefix: usize,
    naming: Naming,
    previously: bool,
    desired: Option<GroupAttrs>,
    live: Option<GroupAttrs>,
}

/// `scimctl.yaml`, as choices.
#[derive(Clone, Debug)]
struct ConfigSpec {
    /// 0 listed, 1 all, 2 userName suffix `@x.example`, 3 externalId prefix `hr-`.
    own_users: u8,
    /// 0 listed, 1 all, 2 displayName prefix `Team`.
    own_groups: u8,
    /// 0 deactivate, 1 delete, 2 none.
    prune_users: u8,
    prune_groups: bool,
    members_authoritative: bool,
    roles_authoritative: bool,
    /// `policy.adminRoles`: 0 none, 1 `Admin`, 2 `Admin` and `Supervisor`.
    admin_roles: u8,
    /// (slot, use the live name rather than the desired one).
    protected_users: Vec<(usize, bool)>,
    protected_groups: Vec<(usize, bool)>,
    /// `maxDeletePercent`, `maxDeleteCount`; `None`: out of the way (100 %, 1000).
    thresholds: Option<(u32, u32)>,
}

/// One of [`ROLES`] as desired state writes it: permissions (indexes into [`PERMS`]),
/// description, and which earlier roles it inherits (so there is no cycle).
#[derive(Clone, Debug)]
struct RoleSpec {
    permissions: Option<Vec<usize>>,
    description: Option<usize>,
    inherits: Vec<bool>,
}

/// A live role definition: its name in another case or not, permissions (one policy each,
/// so not in the planner's grouped shape), description, and whether it is a built-in role.
#[derive(Clone, Debug)]
struct LiveRole {
    upper: bool,
    permissions: Vec<usize>,
    description: Option<usize>,
    default: bool,
}

/// Role definitions of a Genesys-like target.
#[derive(Clone, Debug)]
struct Roles {
    /// Per [`ROLES`] entry: desired definition, live definition.
    slots: Vec<(RoleSpec, Option<LiveRole>)>,
    /// Per [`EXTRA_ROLES`] entry: a live role desired state does not list.
    extra: Vec<Option<LiveRole>>,
    /// `ownership.roles`: 0 listed, 1 all, 2 name prefix `Old`.
    own: u8,
    /// Which of [`DEFINITIONS`] the org has (one YAML maps may be missing: a plan error).
    definitions: Vec<bool>,
    /// `ownership.licenses`: 0 listed, 1 all, 2 name prefix `def-e`.
    own_licenses: u8,
}

#[derive(Clone, Debug)]
pub(crate) struct World {
    users: Vec<UserSlot>,
    groups: Vec<GroupSlot>,
    /// `None`: a plain SCIM target, without role definitions.
    roles: Option<Roles>,
    config: ConfigSpec,
    /// Which of [`SUPPORTABLE`] the target has; `None`: everything.
    support: Option<Vec<bool>>,
    /// A user slot whose name scimctl runs as.
    actor: Option<usize>,
}

fn word() -> impl Strategy<Value = Option<usize>> {
    option::of(0..WORDS.len())
}

fn contact(values: usize, kinds: usize) -> impl Strategy<Value = Contact> {
    (0..values, option::of(0..kinds), option::of(any::<bool>())).prop_map(
        |(value, kind, primary)| Contact {
            value,
            kind,
            primary,
        },
    )
}

fn attrs() -> impl Strategy<Value = Attrs> {
    (
        (
            prop_oneof![4 => Just(0_u8), 4 => Just(1), 1 => Just(2)],
            word(),
            word(),
            word(),
            word(),
            option::of(0..2_usize),
        ),
        (
            option::of(any::<bool>()),
            option::of(vec(contact(EMAILS.len(), LIVE_EMAIL_TYPES.len()), 0..4)),
            option::of(vec(contact(PHONES.len(), LIVE_PHONE_TYPES.len()), 0..3)),
            option::of(vec(0..LIVE_ROLES.len(), 0..4)),
            option::of(0..MAX_USERS),
            option::of(vec(0..MAX_GROUPS, 0..3)),
        ),
        (
            vec(prop_oneof![1 => Just(0_usize), 1 => 1..SCOPES.len()], 1..3),
            // Mostly of the roles desired users hold, so revocations come up.
            vec((0..ROLES.len(), 0..=DIVISIONS.len()), 1..4),
            option::of(0..LICENSES.len()),
            vec(0..DEFINITIONS.len(), 0..3),
        ),
    )
        .prop_map(
            |(
                (external_id, display_name, title, department, division, employee_number),
                (active, emails, phones, roles, manager, groups),
                (scopes, grants, license, held),
            )| Attrs {
                external_id,
                display_name,
                title,
                department,
                division,
                employee_number,
                active,
                emails,
                phones,
                roles,
                manager,
                groups,
                scopes,
                grants,
                license,
                held,
            },
        )
}

fn live_grants() -> impl Strategy<Value = Vec<LiveGrant>> {
    vec(
        (0..ROLES.len() + EXTRA_ROLES.len(), 0..=DIVISIONS.len()),
        0..3,
    )
}

fn naming() -> impl Strategy<Value = Naming> {
    prop_oneof![
        3 => Just(Naming::Same),
        1 => Just(Naming::Case),
        2 => Just(Naming::Renamed),
        1 => Just(Naming::Legacy),
    ]
}

fn user_slot() -> impl Strategy<Value = UserSlot> {
    (
        0..DOMAINS.len(),
        naming(),
        any::<bool>(),
        option::weighted(0.8, attrs()),
        option::weighted(0.7, attrs()),
        proptest::bool::weighted(0.3),
    )
        .prop_map(
            |(domain, naming, previously, desired, live, deleted)| UserSlot {
                domain,
                naming,
                previously,
                desired,
                live,
                deleted,
            },
        )
}

fn group_attrs() -> impl Strategy<Value = GroupAttrs> {
    (
        prop_oneof![4 => Just(0_u8), 4 => Just(1), 1 => Just(2)],
        word(),
        option::of(vec((any::<bool>(), 0..MAX_USERS), 0..5)),
        option::weighted(
            0.5,
            vec(
                (
                    0..ROLES.len(),
                    prop_oneof![3 => Just(0_usize), 1 => 1..SCOPES.len()],
                ),
                0..3,
            ),
        ),
        live_grants(),
        option::of(any::<bool>()),
    )
        .prop_map(
            |(external_id, description, members, roles, grants, roles_enabled)| GroupAttrs {
                external_id,
                description,
                members,
                roles,
                grants,
                roles_enabled,
            },
        )
}

fn group_slot() -> impl Strategy<Value = GroupSlot> {
    (
        0..GROUP_PREFIXES.len(),
        naming(),
        any::<bool>(),
        option::weighted(0.8, group_attrs()),
        option::weighted(0.7, group_attrs()),
    )
        .prop_map(|(prefix, naming, previously, desired, live)| GroupSlot {
            prefix,
            naming,
            previously,
            desired,
            live,
        })
}

fn config_spec() -> impl Strategy<Value = ConfigSpec> {
    (
        (0..4_u8, 0..3_u8, 0..3_u8, any::<bool>()),
        (any::<bool>(), any::<bool>(), 0..3_u8),
        (
            vec((0..MAX_USERS, any::<bool>()), 0..3),
            vec((0..MAX_GROUPS, any::<bool>()), 0..2),
        ),
        option::weighted(0.3, (0..60_u32, 0..4_u32)),
    )
        .prop_map(
            |(
                (own_users, own_groups, prune_users, prune_groups),
                (members_authoritative, roles_authoritative, admin_roles),
                (protected_users, protected_groups),
                thresholds,
            )| ConfigSpec {
                own_users,
                own_groups,
                prune_users,
                prune_groups,
                members_authoritative,
                roles_authoritative,
                admin_roles,
                protected_users,
                protected_groups,
                thresholds,
            },
        )
}

fn live_role() -> impl Strategy<Value = LiveRole> {
    (
        any::<bool>(),
        vec(0..PERMS.len(), 0..4),
        word(),
        prop_oneof![4 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(upper, permissions, description, default)| LiveRole {
            upper,
            permissions,
            description,
            default,
        })
}

fn role_spec() -> impl Strategy<Value = RoleSpec> {
    (
        option::weighted(0.6, vec(0..PERMS.len(), 0..4)),
        option::weighted(0.4, 0..WORDS.len()),
        vec(any::<bool>(), ROLES.len()),
    )
        .prop_map(|(permissions, description, inherits)| RoleSpec {
            permissions,
            description,
            inherits,
        })
}

fn roles() -> impl Strategy<Value = Roles> {
    (
        vec(
            (role_spec(), option::weighted(0.6, live_role())),
            ROLES.len(),
        ),
        vec(option::weighted(0.5, live_role()), EXTRA_ROLES.len()),
        0..3_u8,
        vec(proptest::bool::weighted(0.93), DEFINITIONS.len()),
        0..3_u8,
    )
        .prop_map(|(slots, extra, own, definitions, own_licenses)| Roles {
            slots,
            extra,
            own,
            definitions,
            own_licenses,
        })
}

pub(crate) fn world() -> impl Strategy<Value = World> {
    (
        vec(user_slot(), 0..=MAX_USERS),
        vec(group_slot(), 0..=MAX_GROUPS),
        option::weighted(0.5, roles()),
        config_spec(),
        option::weighted(0.25, vec(any::<bool>(), SUPPORTABLE.len())),
        option::weighted(0.2, 0..MAX_USERS),
    )
        .prop_map(|(users, groups, roles, config, support, actor)| World {
            users,
            groups,
            roles,
            config,
            support,
            actor,
        })
}

/// Validation may ask about the environment only for password sources, which worlds lack.
struct NoEnvironment;

impl Environment for NoEnvironment {
    fn var_is_set(&self, _: &str) -> bool {
        false
    }
    fn file_readable(&self, _: &std::path::Path) -> Result<(), String> {
        Err("no such file".into())
    }
}

fn sp<T, V: Into<T>>(value: V) -> Spanned<T> {
    Spanned::unspanned(value.into())
}

/// Keeps only the first `primary: true` (validation allows one).
fn one_primary(contacts: &[Contact]) -> Vec<Contact> {
    let mut seen = false;
    contacts
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if c.primary == Some(true) {
                if seen {
                    c.primary = None;
                }
                seen = true;
            }
            c
        })
        .collect()
}

impl World {
    fn user_name(&self, i: usize) -> String {
        format!("u{i}@{}", DOMAINS[self.users[i].domain])
    }

    fn old_user_name(&self, i: usize) -> String {
        format!("old{i}@{}", DOMAINS[self.users[i].domain])
    }

    fn live_user_name(&self, i: usize) -> String {
        match self.users[i].naming {
            Naming::Same => self.user_name(i),
            Naming::Case => self.user_name(i).to_uppercase(),
            Naming::Renamed => self.old_user_name(i),
            Naming::Legacy => format!("legacy{i}@{}", DOMAINS[self.users[i].domain]),
        }
    }

    fn group_name(&self, j: usize) -> String {
        format!("{} {j}", GROUP_PREFIXES[self.groups[j].prefix])
    }

    fn old_group_name(&self, j: usize) -> String {
        format!("{} old {j}", GROUP_PREFIXES[self.groups[j].prefix])
    }

    fn live_group_name(&self, j: usize) -> String {
        match self.groups[j].naming {
            Naming::Same => self.group_name(j),
            Naming::Case => self.group_name(j).to_uppercase(),
            Naming::Renamed => self.old_group_name(j),
            Naming::Legacy => format!("{} legacy {j}", GROUP_PREFIXES[self.groups[j].prefix]),
        }
    }

    fn desired_user(&self, i: usize) -> bool {
        self.users.get(i).is_some_and(|s| s.desired.is_some())
    }

    fn live_user(&self, i: usize) -> bool {
        self.users.get(i).is_some_and(|s| s.live.is_some())
    }

    fn desired_group(&self, j: usize) -> bool {
        self.groups.get(j).is_some_and(|s| s.desired.is_some())
    }

    fn live_group(&self, j: usize) -> bool {
        self.groups.get(j).is_some_and(|s| s.live.is_some())
    }

    fn user(&self, i: usize, a: &Attrs) -> User {
        let slot = &self.users[i];
        let text = |w: Option<usize>| w.map(|w| sp(WORDS[w].to_owned()));
        User {
            user_name: sp(self.user_name(i)),
            display_name: text(a.display_name),
            external_id: (a.external_id != 0).then(|| sp(format!("hr-{i}"))),
            active: a.active.map(sp),
            title: text(a.title),
            emails: a.emails.as_ref().map(|list| {
                one_primary(list)
                    .into_iter()
                    .map(|c| {
                        sp(Email {
                            value: EMAILS[c.value].into(),
                            kind: c.kind.map(|k| EMAIL_TYPES[k % EMAIL_TYPES.len()]),
                            primary: c.primary,
                        })
                    })
                    .collect()
            }),
            phone_numbers: a.phones.as_ref().map(|list| {
                one_primary(list)
                    .into_iter()
                    .map(|c| {
                        sp(PhoneNumber {
                            value: PHONES[c.value].into(),
                            kind: c.kind.map(|k| PHONE_TYPES[k % PHONE_TYPES.len()]),
                            primary: c.primary,
                        })
                    })
                    .collect()
            }),
            department: text(a.department),
            division: text(a.division),
            employee_number: a.employee_number.map(|n| sp(format!("{:04}", n + 1))),
            date_hire: None,
            manager: a
                .manager
                .filter(|&m| m != i && self.desired_user(m))
                .map(|m| sp(self.user_name(m))),
            routing_skills: None,
            routing_languages: None,
            roles: a.roles.as_ref().map(|roles| {
                roles
                    .iter()
                    .enumerate()
                    .map(|(n, &r)| {
                        let scope = if self.roles.is_some() {
                            a.scopes[n % a.scopes.len()]
                        } else {
                            0
                        };
                        sp(role_grant(r % ROLES.len(), scope))
                    })
                    .collect()
            }),
            groups: a.groups.as_ref().map(|groups| {
                groups
                    .iter()
                    .filter(|&&j| self.desired_group(j))
                    .map(|&j| {
                        // Names refer case-insensitively; write some in another case.
                        let name = self.group_name(j);
                        sp(if (i + j).is_multiple_of(2) {
                            name
                        } else {
                            name.to_lowercase()
                        })
                    })
                    .collect()
            }),
            license: self.license(i, a).map(|l| sp(LICENSES[l].0)),
            password: None,
            previously: if slot.previously {
                vec![sp(self.old_user_name(i))]
            } else {
                Vec::new()
            },
        }
    }

    fn group(&self, j: usize, a: &GroupAttrs) -> Group {
        let slot = &self.groups[j];
        Group {
            display_name: sp(self.group_name(j)),
            description: a.description.map(|w| sp(WORDS[w].to_owned())),
            external_id: (a.external_id != 0).then(|| sp(format!("grp-{j}"))),
            members: a.members.as_ref().map(|members| {
                members
                    .iter()
                    .filter_map(|&(is_group, k)| {
                        if is_group {
                            // Only later groups, so nesting has no cycle.
                            (k > j && self.desired_group(k)).then(|| sp(self.group_name(k)))
                        } else {
                            self.desired_user(k)
                                .then(|| sp(self.user_name(k).to_uppercase()))
                        }
                    })
                    .collect()
            }),
            previously: if slot.previously {
                vec![sp(self.old_group_name(j))]
            } else {
                Vec::new()
            },
            kind: None,
            visibility: None,
            rules_visible: None,
            roles_enabled: self
                .roles
                .as_ref()
                .and(a.roles_enabled)
                .filter(|&on| on || a.roles.as_ref().is_none_or(Vec::is_empty))
                .map(sp),
            calls_enabled: None,
            include_owners: None,
            owners: None,
            roles: self.group_roles(a).map(|roles| {
                roles
                    .iter()
                    .map(|&(r, scope)| sp(role_grant(r, scope)))
                    .collect()
            }),
        }
    }

    /// The roles desired group attributes grant (Genesys-like targets only), as (index into
    /// [`ROLES`], index into [`SCOPES`]).
    fn group_roles<'a>(&self, a: &'a GroupAttrs) -> Option<&'a Vec<(usize, usize)>> {
        self.roles.as_ref().and(a.roles.as_ref())
    }

    /// The YAML license of desired user `i` (Genesys-like targets only): the one drawn, or
    /// `Full` when the drawn one does not allow a role the user holds, directly or through a
    /// desired group it is a direct member of (validation refuses that).
    fn license(&self, i: usize, a: &Attrs) -> Option<usize> {
        self.roles.as_ref()?;
        let drawn = a.license?;
        let mut held: Vec<usize> = a.roles.iter().flatten().map(|&r| r % ROLES.len()).collect();
        for (j, slot) in self.groups.iter().enumerate() {
            let Some(g) = &slot.desired else { continue };
            let listed = g.members.iter().flatten().any(|&m| m == (false, i));
            let joins = a.groups.iter().flatten().any(|&k| k == j);
            if listed || joins {
                held.extend(self.group_roles(g).into_iter().flatten().map(|&(r, _)| r));
            }
        }
        let allowed = LICENSES[drawn].1;
        Some(if held.iter().all(|r| allowed.contains(r)) {
            drawn
        } else {
            1
        })
    }

    fn config(&self) -> Config {
        let c = &self.config;
        let users = match c.own_users {
            0 => OwnershipMode::Listed,
            1 => OwnershipMode::All,
            2 => OwnershipMode::Selector(Selector {
                name_suffix: Some("@x.example".into()),
                ..Selector::default()
            }),
            _ => OwnershipMode::Selector(Selector {
                external_id_prefix: Some("hr-".into()),
                ..Selector::default()
            }),
        };
        // Listed, all, or the names that start with `prefix`.
        let owned = |n: u8, prefix: &str| match n {
            0 => OwnershipMode::Listed,
            1 => OwnershipMode::All,
            _ => OwnershipMode::Selector(Selector {
                name_prefix: Some(prefix.into()),
                ..Selector::default()
            }),
        };
        let groups = owned(c.own_groups, "Team");
        let mode = |authoritative| {
            if authoritative {
                CollectionMode::Authoritative
            } else {
                CollectionMode::Additive
            }
        };
        let (percent, count) = c.thresholds.unwrap_or((100, 1000));
        Config {
            target: None,
            ownership: Ownership {
                users: sp(users),
                groups: sp(groups),
                roles: sp(owned(self.roles.as_ref().map_or(0, |r| r.own), "Old")),
                licenses: sp(owned(
                    self.roles.as_ref().map_or(0, |r| r.own_licenses),
                    "def-e",
                )),
            },
            collections: Collections {
                group_members: mode(c.members_authoritative),
                user_roles: mode(c.roles_authoritative),
                ..Collections::default()
            },
            prune: Prune {
                users: [UserPrune::Deactivate, UserPrune::Delete, UserPrune::None]
                    [usize::from(c.prune_users % 3)],
                groups: if c.prune_groups {
                    GroupPrune::Delete
                } else {
                    GroupPrune::None
                },
            },
            safety: Safety {
                max_delete_percent: sp(percent),
                max_delete_count: sp(count),
                runs_as: None,
            },
            protected: Protected {
                users: self.protected_users().into_iter().map(sp).collect(),
                groups: self.protected_groups().into_iter().map(sp).collect(),
            },
            policy: Policy {
                admin_roles: match c.admin_roles {
                    0 => Vec::new(),
                    1 => vec![sp(ROLES[2].to_owned())],
                    _ => vec![sp(ROLES[2].to_owned()), sp(ROLES[1].to_owned())],
                },
                ..Policy::default()
            },
            watch: crate::model::Watch::default(),
            secrets: crate::model::Secrets::default(),
            match_by: crate::model::MatchBy::default(),
        }
    }

    fn protected_users(&self) -> Vec<String> {
        self.config
            .protected_users
            .iter()
            .filter(|(i, _)| *i < self.users.len())
            .map(|&(i, live)| {
                if live {
                    self.live_user_name(i)
                } else {
                    self.user_name(i)
                }
            })
            .collect()
    }

    fn protected_groups(&self) -> Vec<String> {
        self.config
            .protected_groups
            .iter()
            .filter(|(j, _)| *j < self.groups.len())
            .map(|&(j, live)| {
                if live {
                    self.live_group_name(j)
                } else {
                    self.group_name(j)
                }
            })
            .collect()
    }

    /// Whether ownership covers a live object absent from desired state (the oracle for the
    /// selectors [`World::config`] writes).
    fn owns(&self, kind: Kind, name: &str, external_id: Option<&str>) -> bool {
        let name = name.to_lowercase();
        match kind {
            Kind::User => match self.config.own_users {
                0 => false,
                1 => true,
                2 => name.ends_with("@x.example"),
                _ => external_id.is_some_and(|e| e.starts_with("hr-")),
            },
            Kind::Group => match self.config.own_groups {
                0 => false,
                1 => true,
                _ => name.starts_with("team"),
            },
            Kind::Role => match self.roles.as_ref().map_or(0, |r| r.own) {
                0 => false,
                1 => true,
                _ => name.starts_with("old"),
            },
        }
    }

    /// Whether `ownership.licenses` lets a plan take definition `id` from a user: the mapped
    /// ones always, the rest under `all`, and those the selector takes.
    fn owns_license(&self, id: &str) -> bool {
        let mapped = LICENSES
            .iter()
            .any(|l| l.2.is_some_and(|d| DEFINITIONS[d] == id));
        mapped
            || match self.roles.as_ref().map_or(0, |r| r.own_licenses) {
                0 => false,
                1 => true,
                _ => id.starts_with("def-e"),
            }
    }

    fn is_protected(&self, kind: Kind, name: &str) -> bool {
        let list = match kind {
            Kind::User => self.protected_users(),
            Kind::Group => self.protected_groups(),
            Kind::Role => Vec::new(),
        };
        list.iter().any(|p| p.eq_ignore_ascii_case(name))
    }

    pub(crate) fn desired(&self) -> DesiredState {
        let users: Vec<Spanned<User>> = self
            .users
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.desired.as_ref().map(|a| sp(self.user(i, a))))
            .collect();
        let groups: Vec<Spanned<Group>> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(j, s)| s.desired.as_ref().map(|a| sp(self.group(j, a))))
            .collect();
        let roles = ROLES
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let spec = self.roles.as_ref().map(|r| &r.slots[k].0);
                sp(Role {
                    name: sp((*name).to_owned()),
                    description: spec
                        .and_then(|s| s.description)
                        .map(|w| sp(WORDS[w].to_owned())),
                    permissions: spec
                        .and_then(|s| s.permissions.as_ref())
                        .map(|p| p.iter().map(|&i| sp(PERMS[i].to_owned())).collect()),
                    inherits: spec.map_or_else(Vec::new, |s| {
                        (0..k)
                            .filter(|&j| s.inherits[j])
                            .map(|j| sp(ROLES[j].to_owned()))
                            .collect()
                    }),
                    allow_denied_permissions: None,
                })
            })
            .collect();
        let licenses = if self.roles.is_some() {
            LICENSES
                .iter()
                .map(|&(name, allowed, definition)| {
                    sp(License {
                        name: sp(name),
                        description: None,
                        allowed_roles: allowed.iter().map(|&r| sp(ROLES[r])).collect(),
                        genesys_license: definition.map(|d| sp(DEFINITIONS[d])),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        let collected = Collected {
            users,
            groups,
            roles,
            licenses,
            config: self.config(),
            target_span: None,
        };
        let sources = SourceMap::new();
        let (found, indexes) =
            crate::desired::validate::check(&collected, &sources, &NoEnvironment, None);
        let errors: Vec<Diagnostic> = found.into_iter().filter(Diagnostic::is_error).collect();
        assert!(
            errors.is_empty(),
            "the generator made invalid desired state: {errors:?}"
        );
        DesiredState::new(collected, sources, indexes)
    }

    fn live_contacts(contacts: &[Contact], values: &[&str], kinds: &[&str]) -> Value {
        Value::Array(
            contacts
                .iter()
                .map(|c| {
                    let mut v = Map::new();
                    v.insert("value".into(), Value::from(values[c.value]));
                    if let Some(k) = c.kind {
                        v.insert("type".into(), Value::from(kinds[k % kinds.len()]));
                    }
                    if let Some(p) = c.primary {
                        v.insert("primary".into(), Value::from(p));
                    }
                    Value::Object(v)
                })
                .collect(),
        )
    }

    fn live_user_json(&self, i: usize, a: &Attrs) -> Value {
        let mut doc = Map::new();
        doc.insert("id".into(), Value::from(format!("lu{i}")));
        doc.insert("userName".into(), Value::from(self.live_user_name(i)));
        match a.external_id {
            1 => doc.insert("externalId".into(), Value::from(format!("hr-{i}"))),
            2 => doc.insert("externalId".into(), Value::from(format!("hr-{i}-other"))),
            _ => None,
        };
        for (key, w) in [("displayName", a.display_name), ("title", a.title)] {
            if let Some(w) = w {
                doc.insert(key.into(), Value::from(WORDS[w]));
            }
        }
        if let Some(active) = a.active {
            doc.insert("active".into(), Value::from(active));
        }
        if let Some(emails) = &a.emails {
            doc.insert(
                "emails".into(),
                Self::live_contacts(emails, &EMAILS, &LIVE_EMAIL_TYPES),
            );
        }
        if let Some(phones) = &a.phones {
            doc.insert(
                "phoneNumbers".into(),
                Self::live_contacts(phones, &PHONES, &LIVE_PHONE_TYPES),
            );
        }
        if let Some(roles) = &a.roles {
            let roles: Vec<Value> = roles
                .iter()
                .map(|&r| json!({"value": LIVE_ROLES[r]}))
                .collect();
            doc.insert("roles".into(), Value::Array(roles));
        }
        let mut ent = Map::new();
        for (key, w) in [("department", a.department), ("division", a.division)] {
            if let Some(w) = w {
                ent.insert(key.into(), Value::from(WORDS[w]));
            }
        }
        if let Some(n) = a.employee_number {
            ent.insert(
                "employeeNumber".into(),
                Value::from(format!("{:04}", n + 1)),
            );
        }
        if let Some(m) = a.manager {
            let id = if self.live_user(m) {
                format!("lu{m}")
            } else {
                format!("gone-{m}")
            };
            ent.insert("manager".into(), json!({ "value": id }));
        }
        if !ent.is_empty() {
            doc.insert(ENTERPRISE_SCHEMA.into(), Value::Object(ent));
        }
        // Something scimctl does not manage, which must survive every plan.
        doc.insert("nickName".into(), Value::from(format!("nick{i}")));
        doc.insert("meta".into(), json!({"version": "W/\"1\""}));
        Value::Object(doc)
    }

    fn live_group_json(&self, j: usize, a: &GroupAttrs) -> Value {
        let mut doc = Map::new();
        doc.insert("id".into(), Value::from(format!("lg{j}")));
        doc.insert("displayName".into(), Value::from(self.live_group_name(j)));
        match a.external_id {
            1 => doc.insert("externalId".into(), Value::from(format!("grp-{j}"))),
            2 => doc.insert("externalId".into(), Value::from(format!("grp-{j}-other"))),
            _ => None,
        };
        if let Some(w) = a.description {
            doc.insert("description".into(), Value::from(WORDS[w]));
        }
        if self.roles.is_some() {
            // Genesys grants roles only to a group with rolesEnabled.
            let enabled = if self.live_grants(&a.grants).is_empty() {
                a.roles_enabled
            } else {
                Some(true)
            };
            if let Some(on) = enabled {
                doc.insert("rolesEnabled".into(), Value::from(on));
            }
        }
        if let Some(members) = &a.members {
            let members: Vec<Value> = members
                .iter()
                .filter(|&&(is_group, k)| !(is_group && k == j))
                .map(
                    |&(is_group, k)| match (is_group, self.live_group(k), self.live_user(k)) {
                        (true, true, _) => json!({"value": format!("lg{k}"), "type": "Group"}),
                        (false, _, true) => json!({"value": format!("lu{k}"), "type": "User"}),
                        // A member id the listing does not have (deleted behind the server's back).
                        _ => json!({"value": format!("gone-{k}")}),
                    },
                )
                .collect();
            doc.insert("members".into(), Value::Array(members));
        }
        doc.insert("meta".into(), json!({"version": "W/\"1\""}));
        Value::Object(doc)
    }

    /// The tenant as the client reads it for desired state: [`World::tenant`] with only
    /// the role grants and licenses the client reads (see [`read`]).
    pub(crate) fn live(&self) -> Snapshot {
        read(&self.desired(), self.tenant())
    }

    /// The grants `list` describes that the tenant can hold (of live roles only), once each.
    fn live_grants(&self, list: &[LiveGrant]) -> Vec<Grant> {
        let Some(roles) = &self.roles else {
            return Vec::new();
        };
        let mut out: Vec<Grant> = Vec::new();
        for &(r, d) in list {
            let role = if r < ROLES.len() {
                roles.slots[r].1.as_ref().map(|l| {
                    let name = if l.upper {
                        ROLES[r].to_uppercase()
                    } else {
                        ROLES[r].to_owned()
                    };
                    (format!("lr{r}"), name)
                })
            } else {
                let k = r - ROLES.len();
                roles.extra[k]
                    .as_ref()
                    .map(|_| (format!("lx{k}"), EXTRA_ROLES[k].to_owned()))
            };
            let Some((role_id, role_name)) = role else {
                continue;
            };
            let (division_id, division_name) = DIVISIONS.get(d).copied().unwrap_or(("*", "*"));
            if out
                .iter()
                .any(|g| g.role_id == role_id && g.division_id == division_id)
            {
                continue;
            }
            out.push(Grant {
                role_id,
                role_name,
                division_id: division_id.to_owned(),
                division_name: division_name.to_owned(),
            });
        }
        out
    }

    /// The whole tenant: on a Genesys-like target, with its divisions, every role grant of
    /// every live user and group, and the org's licenses.
    pub(crate) fn tenant(&self) -> Snapshot {
        let users: Vec<Value> = self
            .users
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.live.as_ref().map(|a| self.live_user_json(i, a)))
            .collect();
        let groups: Vec<Value> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(j, s)| s.live.as_ref().map(|a| self.live_group_json(j, a)))
            .collect();
        let mut live = snapshot(&users, &groups);
        live.roles = self.roles.as_ref().map(Self::live_roles);
        live.deleted_users = (0..self.users.len())
            .filter(|&i| self.users[i].live.is_none() && self.users[i].deleted)
            .map(|i| crate::model::tenant::DeletedUser {
                id: format!("deleted-{i}"),
                email: self.live_user_name(i),
                version: 7,
            })
            .collect();
        if let Some(roles) = &self.roles {
            live.divisions = Some(
                DIVISIONS
                    .iter()
                    .enumerate()
                    .map(|(k, &(id, name))| Division {
                        id: id.to_owned(),
                        name: name.to_owned(),
                        home: k == 0,
                    })
                    .collect(),
            );
            let users = self.users.iter().enumerate();
            live.grants = Some(
                users
                    .clone()
                    .filter_map(|(i, s)| s.live.as_ref().map(|a| (format!("lu{i}"), a)))
                    .map(|(id, a)| (id, self.live_grants(&a.grants)))
                    .collect(),
            );
            live.group_grants = Some(
                self.groups
                    .iter()
                    .enumerate()
                    .filter_map(|(j, s)| s.live.as_ref().map(|a| (format!("lg{j}"), a)))
                    .map(|(id, a)| (id, self.live_grants(&a.grants)))
                    .collect(),
            );
            let defined = |&d: &usize| roles.definitions[d];
            live.licenses = Some(LiveLicenses {
                definitions: (0..DEFINITIONS.len())
                    .filter(defined)
                    .map(|d| LicenseDefinition {
                        id: DEFINITIONS[d].to_owned(),
                        description: None,
                    })
                    .collect(),
                held: users
                    .filter_map(|(i, s)| s.live.as_ref().map(|a| (format!("lu{i}"), a)))
                    .map(|(id, a)| {
                        let mut held: Vec<String> = a
                            .held
                            .iter()
                            .filter(|&&d| defined(&d))
                            .map(|&d| DEFINITIONS[d].to_owned())
                            .collect();
                        held.sort();
                        held.dedup();
                        (id, held)
                    })
                    .filter(|(_, held)| !held.is_empty())
                    .collect(),
            });
        }
        live
    }

    fn live_roles(roles: &Roles) -> Vec<PlatformRole> {
        let role = |id: String, name: String, l: &LiveRole| PlatformRole {
            id,
            name,
            description: l.description.map(|w| WORDS[w].to_owned()),
            permissions: vec!["general_permission".to_owned()],
            permission_policies: l
                .permissions
                .iter()
                .map(|&p| {
                    let parsed: Vec<&str> = if PERMS[p] == "*" {
                        vec!["*", "*", "*"]
                    } else {
                        PERMS[p].split(':').collect()
                    };
                    PermissionPolicy::new(parsed[0], parsed[1], vec![parsed[2].to_owned()])
                })
                .collect(),
            default: l.default,
            base: false,
        };
        let mut out = Vec::new();
        for (k, (_, live)) in roles.slots.iter().enumerate() {
            if let Some(l) = live {
                let name = if l.upper {
                    ROLES[k].to_uppercase()
                } else {
                    ROLES[k].to_owned()
                };
                out.push(role(format!("lr{k}"), name, l));
            }
        }
        for (k, live) in roles.extra.iter().enumerate() {
            if let Some(l) = live {
                out.push(role(format!("lx{k}"), EXTRA_ROLES[k].to_owned(), l));
            }
        }
        out
    }

    pub(crate) fn options(&self) -> PlanOptions {
        let mut target = TargetCapabilities::storing(match &self.support {
            None => AttributeSupport::all(),
            Some(mask) => AttributeSupport::only(
                SUPPORTABLE
                    .iter()
                    .zip(mask)
                    .filter(|(_, has)| **has)
                    .map(|(attr, _)| *attr)
                    .chain([
                        (ResourceSchema::User, "userName"),
                        (ResourceSchema::Group, "displayName"),
                    ]),
            ),
        });
        // A Genesys-like target: groups with settings (rolesEnabled) and divisions.
        target.group_settings = self.roles.is_some();
        target.divisions = self.roles.is_some();
        PlanOptions {
            target,
            allow_deletes: None,
            actors: self
                .actor
                .filter(|&i| i < self.users.len())
                .map(|i| self.live_user_name(i))
                .into_iter()
                .collect(),
            rotate_passwords: std::collections::BTreeSet::new(),
        }
    }
}

/// A role grant as YAML writes it: [`ROLES`] entry `r` in the divisions [`SCOPES`] entry
/// `scope` names.
fn role_grant(r: usize, scope: usize) -> RoleGrant {
    RoleGrant {
        name: ROLES[r].into(),
        divisions: SCOPES[scope].map(|list| list.iter().map(|&d| d.into()).collect()),
    }
}

/// What the client reads of `tenant` to plan `desired` (`session::read_grants` and
/// `read_licenses`): the direct grants of the users and the grants of the groups the planner
/// names as subjects (none read: `None`), and the licenses only when YAML maps one.
pub(crate) fn read(desired: &DesiredState, mut tenant: Snapshot) -> Snapshot {
    let pick = |all: Option<HashMap<String, Vec<Grant>>>,
                ids: Vec<String>|
     -> Option<HashMap<String, Vec<Grant>>> {
        let all = all.unwrap_or_default();
        (!ids.is_empty()).then(|| {
            ids.into_iter()
                .map(|id| {
                    let held = all.get(&id).cloned().unwrap_or_default();
                    (id, held)
                })
                .collect()
        })
    };
    let users = crate::plan::grants::grant_subjects(desired, &tenant);
    tenant.grants = pick(tenant.grants.take(), users);
    let groups = crate::plan::grants::group_grant_subjects(desired, &tenant);
    tenant.group_grants = pick(tenant.group_grants.take(), groups);
    if !crate::plan::licenses::mapped(desired) {
        tenant.licenses = None;
    }
    tenant
}

/// A plan as JSON, for failure messages.
fn show(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap_or_default()
}

/// What identifies a change across two plans.
fn identity(c: &Change) -> (Action, Kind, String, Option<String>) {
    (c.action, c.kind, c.key.to_lowercase(), c.id.clone())
}

/// What a change writes or takes away, one part at a time: each member, grant and license of
/// its edits on its own, every other edit whole, and the change itself when it has no edits (a
/// delete). Which rows the held parts of one object fall into depends on which rules hold
/// them (a removal held by the last-admin guard gets a row of its own, one held by the
/// brake shares one with the others it holds), so replanning compares these, not rows.
/// References are by the name their id has in `after` (the tenant after the apply), else by
/// the name they carry: a user the first plan creates has no id in it yet, and a group it
/// renames has a new name in the second.
fn parts(c: &Change, after: &Snapshot) -> Vec<(Action, Kind, String, Option<String>, String)> {
    let json = |e: &Edit| serde_json::to_string(e).expect("edits serialize");
    let named = |r: &crate::plan::Ref| {
        let id = r.id.as_deref();
        let live = match r.kind {
            Kind::User => after
                .users
                .iter()
                .find(|l| id.is_some() && l.id() == id)
                .map(Resource::natural_key),
            Kind::Group => after
                .groups
                .iter()
                .find(|l| id.is_some() && l.id() == id)
                .map(Resource::natural_key),
            Kind::Role => None,
        };
        let name = live.unwrap_or(r.name.as_str());
        crate::plan::Ref {
            name: name.to_lowercase().into(),
            id: None,
            ..r.clone()
        }
    };
    let mut out = Vec::new();
    for e in &c.edits {
        match e {
            Edit::SetManager { to } => out.push(json(&Edit::SetManager { to: named(to) })),
            Edit::AddMembers { members } | Edit::RemoveMembers { members } => {
                for m in members {
                    let one = vec![named(m)];
                    out.push(json(&match e {
                        Edit::AddMembers { .. } => Edit::AddMembers { members: one },
                        _ => Edit::RemoveMembers { members: one },
                    }));
                }
            }
            Edit::Grants { add, remove } => {
                // By role name, in any case: a role the first plan creates has no id in it
                // yet, and one it patches may have its name's case changed.
                let named = |g: &crate::plan::GrantRef| crate::plan::GrantRef {
                    role: g.role.to_lowercase(),
                    role_id: None,
                    ..g.clone()
                };
                out.extend(add.iter().map(|g| {
                    json(&Edit::Grants {
                        add: vec![named(g)].into(),
                        remove: Box::default(),
                    })
                }));
                out.extend(remove.iter().map(|g| {
                    json(&Edit::Grants {
                        add: Box::default(),
                        remove: vec![named(g)].into(),
                    })
                }));
            }
            Edit::Licenses { add, remove } => {
                out.extend(add.iter().map(|l| {
                    json(&Edit::Licenses {
                        add: vec![l.clone()].into(),
                        remove: Box::default(),
                    })
                }));
                out.extend(remove.iter().map(|l| {
                    json(&Edit::Licenses {
                        add: Box::default(),
                        remove: vec![l.clone()].into(),
                    })
                }));
            }
            _ => out.push(json(e)),
        }
    }
    if out.is_empty() {
        out.push(String::new());
    }
    let (action, kind, key, id) = identity(c);
    out.into_iter()
        .map(|p| (action, kind, key.clone(), id.clone(), p))
        .collect()
}

/// Plans, treating an ambiguity as a legitimate outcome (`None`) that must list its problems,
/// and so a YAML license mapped to a definition the org lacks, exactly when one is.
pub(crate) fn first_plan(
    desired: &DesiredState,
    live: &Snapshot,
    options: &PlanOptions,
) -> Result<Option<Plan>, TestCaseError> {
    let missing: Vec<&str> = match &live.licenses {
        Some(org) => desired
            .licenses
            .iter()
            .filter_map(|l| l.value.genesys_license.as_ref())
            .map(|g| g.value.as_str())
            .filter(|g| !org.defines(g))
            .collect(),
        None => Vec::new(),
    };
    match plan(desired, live, options) {
        Ok(p) => {
            prop_assert!(
                missing.is_empty(),
                "planned with unknown licenses {missing:?}"
            );
            Ok(Some(p))
        }
        Err(PlanError::Ambiguous(problems)) => {
            prop_assert!(!problems.is_empty(), "an ambiguity lists its problems");
            Ok(None)
        }
        Err(PlanError::UnknownLicense { unknown, .. }) => {
            prop_assert_eq!(
                unknown.len(),
                missing.len(),
                "{:?} for {:?}",
                unknown,
                missing
            );
            for (line, id) in unknown.iter().zip(&missing) {
                prop_assert!(line.contains(&format!("{id:?}")), "{line} names {id}");
            }
            Ok(None)
        }
        Err(e) => Err(TestCaseError::fail(format!("planning failed: {e}"))),
    }
}

/// The attributes of a desired object that YAML writes, as edits name them.
fn written(desired: &DesiredState, kind: Kind, key: &str) -> Option<HashSet<&'static str>> {
    match kind {
        Kind::User => {
            let u = desired.user(key)?;
            let mut out = HashSet::from(["userName"]);
            for (name, set) in [
                ("displayName", u.display_name.is_some()),
                ("externalId", u.external_id.is_some()),
                ("active", u.active.is_some()),
                ("title", u.title.is_some()),
                ("emails", u.emails.is_some()),
                ("phoneNumbers", u.phone_numbers.is_some()),
                ("department", u.department.is_some()),
                ("division", u.division.is_some()),
                ("employeeNumber", u.employee_number.is_some()),
                ("manager", u.manager.is_some()),
                ("roles", u.roles.is_some()),
                ("roleGrants", u.roles.is_some()),
                ("license", u.license.is_some()),
            ] {
                if set {
                    out.insert(name);
                }
            }
            Some(out)
        }
        Kind::Group => {
            let g = desired.group(key)?;
            let mut out = HashSet::from(["displayName"]);
            if g.external_id.is_some() {
                out.insert("externalId");
            }
            if g.description.is_some() {
                out.insert("description");
            }
            if g.roles.is_some() {
                out.insert("roleGrants");
            }
            // Switched on for roles when the live group lacks it.
            if g.roles.is_some() || g.roles_enabled.is_some() {
                out.insert("rolesEnabled");
            }
            if desired
                .memberships()
                .contains_key(g.display_name.value.as_str())
            {
                out.insert("members");
            }
            Some(out)
        }
        Kind::Role => desired.role(key).map(|_| HashSet::from(["role"])),
    }
}

proptest! {
    // Failing seeds are kept beside this file (`properties.proptest-regressions`), not in a
    // top-level directory, and replayed on every run.
    #![proptest_config(ProptestConfig {
        cases: 192,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    // Idempotence: after a conforming server applies a plan, planning again finds nothing,
    // unless a safety rule held changes back; then exactly those remain.
    #[test]
    fn replanning_after_apply_is_empty(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(first) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        // Every held change names the rule that holds it, and only held changes do.
        for c in &first.changes {
            prop_assert_eq!(c.blocked.is_some(), c.held_by.is_some(), "{:#?}", c);
        }
        let after = read(&desired, simulate(&first, &world.tenant()));
        let second = plan(&desired, &after, &options)
            .map_err(|e| TestCaseError::fail(format!("replanning failed: {e}")))?;
        let held: Vec<_> = first
            .changes
            .iter()
            .filter(|c| c.blocked.is_some())
            .flat_map(|c| parts(c, &after))
            .collect();
        if held.is_empty() {
            prop_assert!(
                second.is_empty(),
                "not idempotent.\nfirst plan: {}\nsecond plan: {}",
                show(&first),
                show(&second)
            );
        } else {
            // Only what takes something away is ever held back: a prune, a role, (the
            // removal brakes, and removals held with a blocked prune) group members, role
            // grants and licenses, or a group's roles switched off (which takes every role
            // it grants from its members).
            for c in first.changes.iter().filter(|c| c.blocked.is_some()) {
                let takes_away = c.edits.iter().any(|e| match e {
                    Edit::Remove { attr: Multi::Roles, .. }
                    | Edit::RemoveMembers { .. }
                    | Edit::Set {
                        attr: crate::plan::Attr::RolesEnabled,
                        value: crate::plan::Scalar::Bool(false),
                    } => true,
                    Edit::Grants { remove, .. } => !remove.is_empty(),
                    Edit::Licenses { remove, .. } => !remove.is_empty(),
                    _ => false,
                });
                prop_assert!(c.action.is_destructive() || takes_away, "{c:?}");
            }
            let mut again: Vec<_> = second
                .changes
                .iter()
                .flat_map(|c| parts(c, &after))
                .collect();
            let mut held = held;
            again.sort();
            held.sort();
            prop_assert_eq!(
                again,
                held,
                "the held-back parts should be all that remains.\nfirst plan: {}\nsecond plan: {}",
                show(&first),
                show(&second)
            );
        }
    }

    // A create's rows told by its edits (`Change::rows`) are exactly those the planner
    // built: the plan equals, change by change, as JSON and as text, the one that keeps
    // every row stored.
    #[test]
    fn derived_rows_are_the_built_ones(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(derived) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let stored = crate::plan::rows::keeping_rows(|| first_plan(&desired, &live, &options))?
            .expect("the same inputs plan the same way");
        prop_assert_eq!(derived.changes.len(), stored.changes.len());
        for (d, s) in derived.changes.iter().zip(&stored.changes) {
            prop_assert!(!s.derived);
            prop_assert!(!d.derived || d.diff.is_empty());
            prop_assert_eq!(d.rows(), s.rows(), "{:#?}", d);
            prop_assert_eq!(d, s);
        }
        prop_assert_eq!(
            serde_json::to_string(&derived).expect("json"),
            serde_json::to_string(&stored).expect("json")
        );
        let text = |p: &Plan| {
            let mut out = Vec::new();
            crate::plan::render::text(p, &mut out, false).expect("text");
            out
        };
        prop_assert_eq!(text(&derived), text(&stored));
    }

    // Ownership and protection: every change (blocked ones too, since --allow-deletes may
    // release them) is to a desired object or to an owned, unprotected live one, and no group
    // loses a protected member.
    #[test]
    fn never_touches_unowned_or_protected(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(plan) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let find = |kind: Kind, id: &str| -> Option<(String, Option<String>)> {
            match kind {
                Kind::User => live
                    .users
                    .iter()
                    .find(|u| u.id() == Some(id))
                    .map(|u| (u.natural_key().to_owned(), u.external_id().map(str::to_owned))),
                Kind::Group => live
                    .groups
                    .iter()
                    .find(|g| g.id() == Some(id))
                    .map(|g| (g.natural_key().to_owned(), g.external_id().map(str::to_owned))),
                Kind::Role => live
                    .roles
                    .iter()
                    .flatten()
                    .find(|r| r.id == id)
                    .map(|r| (r.name.clone(), None)),
            }
        };
        for c in &plan.changes {
            let in_desired = match c.kind {
                Kind::User => desired.user(&c.key).is_some(),
                Kind::Group => desired.group(&c.key).is_some(),
                Kind::Role => desired.role(&c.key).is_some(),
            };
            let built_in = c.kind == Kind::Role
                && live.roles.iter().flatten().any(|r| Some(&r.id) == c.id.as_ref() && r.default);
            prop_assert!(
                !(built_in && c.action == Action::Delete),
                "a built-in role is deleted: {}",
                show(&plan)
            );
            let Some(id) = &c.id else {
                prop_assert!(c.action == Action::Create && in_desired, "{c:?}");
                continue;
            };
            // A restore writes a deleted user YAML names (and only that), like a create.
            if c.action == Action::Restore {
                let deleted = live.deleted_users.iter().find(|d| &d.id == id);
                prop_assert!(
                    in_desired && deleted.is_some_and(|d| d.email.eq_ignore_ascii_case(&c.key)),
                    "{c:?}"
                );
                continue;
            }
            let live_object = find(c.kind, id);
            prop_assert!(live_object.is_some(), "the plan writes {} {id}, not live", c.kind);
            let (name, external_id) = live_object.unwrap_or_default();
            prop_assert!(
                !world.is_protected(c.kind, &name) && !world.is_protected(c.kind, &c.key),
                "protected {} {name:?} is changed: {}",
                c.kind,
                show(&plan)
            );
            match c.source {
                Source::Absent => prop_assert!(
                    c.action.is_destructive()
                        && world.owns(c.kind, &name, external_id.as_deref()),
                    "{} {name:?} is pruned outside ownership: {}",
                    c.kind,
                    show(&plan)
                ),
                Source::Yaml { .. } => prop_assert!(in_desired, "{c:?}"),
            }
            for edit in &c.edits {
                if let Edit::RemoveMembers { members } = edit {
                    for m in members {
                        let id = m.id.as_deref().unwrap_or_default();
                        if let Some((name, _)) = find(m.kind, id) {
                            prop_assert!(
                                !world.is_protected(m.kind, &name),
                                "protected {} {name:?} loses a membership: {}",
                                m.kind,
                                show(&plan)
                            );
                        }
                    }
                }
            }
        }
    }

    // Only attributes written in YAML are managed, and an additive collection never loses a
    // value: patches of desired objects edit only what YAML writes.
    #[test]
    fn edits_only_touch_attributes_written_in_yaml(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(plan) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let config = &desired.config.collections;
        for c in plan.changes.iter().filter(|c| matches!(c.source, Source::Yaml { .. })) {
            let allowed = written(&desired, c.kind, &c.key);
            prop_assert!(allowed.is_some(), "{} {} is not desired", c.kind, c.key);
            let allowed = allowed.unwrap_or_default();
            for edit in &c.edits {
                let attr = edit.attribute();
                prop_assert!(
                    allowed.contains(attr),
                    "{} {} edits {attr}, which YAML does not write: {}",
                    c.kind,
                    c.key,
                    show(&plan)
                );
                let removes_role = matches!(edit, Edit::Remove { attr: Multi::Roles, .. });
                prop_assert!(
                    !removes_role || config.user_roles == CollectionMode::Authoritative,
                    "additive roles lose a value: {}",
                    show(&plan)
                );
                let removes_member = matches!(edit, Edit::RemoveMembers { .. });
                prop_assert!(
                    !removes_member || config.group_members == CollectionMode::Authoritative,
                    "additive members lose a value: {}",
                    show(&plan)
                );
                match edit {
                    Edit::Grants { remove, .. } if !remove.is_empty() => {
                        prop_assert!(
                            remove.iter().all(|g| g.division_id != "*"),
                            "an all-divisions grant is revoked: {}",
                            show(&plan)
                        );
                        // A user's under authoritative roles; a group's when ownership of
                        // groups takes the live group.
                        let allowed = match c.kind {
                            Kind::User => config.user_roles == CollectionMode::Authoritative,
                            _ => live
                                .groups
                                .iter()
                                .find(|g| g.id() == c.id.as_deref())
                                .is_some_and(|g| {
                                    world.owns(Kind::Group, g.natural_key(), g.external_id())
                                }),
                        };
                        prop_assert!(allowed, "{} {} loses role grants: {}", c.kind, c.key, show(&plan));
                    }
                    Edit::Licenses { remove, .. } => {
                        for l in remove {
                            prop_assert!(
                                world.owns_license(&l.id),
                                "{} loses license {}, not owned: {}",
                                c.key,
                                l.id,
                                show(&plan)
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    // The last-admin guard: an admin role with an active holder before the plan still has
    // one after it is applied, holding it directly or through a group that grants it.
    #[test]
    fn admin_roles_keep_an_active_holder(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(plan) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let before = world.tenant();
        let after = simulate(&plan, &before);
        let live = before;
        let held = |tenant: &Snapshot, role: &str| {
            let granted = |g: &Grant| {
                let name = tenant
                    .roles
                    .iter()
                    .flatten()
                    .find(|r| r.id == g.role_id)
                    .map_or(g.role_name.as_str(), |r| r.name.as_str());
                name.eq_ignore_ascii_case(role)
            };
            let through: HashSet<String> = tenant
                .groups
                .iter()
                .filter(|g| {
                    g.id()
                        .and_then(|id| tenant.group_grants.as_ref()?.get(id))
                        .is_some_and(|grants| grants.iter().any(granted))
                })
                .flat_map(|g| g.parse().expect("live groups parse").members)
                .map(|m| m.value)
                .collect();
            tenant.users.iter().any(|u| {
                let user = u.parse().expect("live users parse");
                user.active != Some(false)
                    && (user.roles.iter().any(|r| r.value.eq_ignore_ascii_case(role))
                        || u.id().is_some_and(|id| through.contains(id)))
            })
        };
        for role in desired.config.policy.admin_roles.iter().map(|r| r.value.as_str()) {
            prop_assert!(
                !held(&live, role) || held(&after, role),
                "admin role {role} lost its last active holder: {}",
                show(&plan)
            );
        }
    }

    // The actor guard: the account scimctl runs as is still there, active, and holds every
    // admin role it held, once the plan is applied (found by id, so a rename cannot hide it).
    #[test]
    fn the_actor_keeps_its_account_and_admin_roles(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(plan) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let Some(actor) = options.actors.first() else { return Ok(()) };
        let admin: Vec<&str> =
            desired.config.policy.admin_roles.iter().map(|r| r.value.as_str()).collect();
        let state = |u: &crate::model::tenant::LiveUser| {
            let user = u.parse().expect("live users parse");
            let roles: Vec<String> = user
                .roles
                .iter()
                .map(|r| r.value.to_lowercase())
                .filter(|r| admin.iter().any(|a| a.eq_ignore_ascii_case(r)))
                .collect();
            (user.active != Some(false), roles)
        };
        let Some(before) = live.users.iter().find(|u| u.natural_key().eq_ignore_ascii_case(actor))
        else { return Ok(()) };
        let (was_active, held) = state(before);
        let after = simulate(&plan, &live);
        let now = after.users.iter().find(|u| u.id() == before.id());
        prop_assert!(now.is_some(), "the actor {actor} is deleted: {}", show(&plan));
        let (active, roles) = now.map(state).unwrap_or_default();
        prop_assert!(!was_active || active, "the actor {actor} is deactivated: {}", show(&plan));
        for role in held {
            prop_assert!(
                roles.contains(&role),
                "the actor {actor} loses admin role {role}: {}",
                show(&plan)
            );
        }
    }

    // A plan depends on what the tenant holds, not on the order the server lists it in, and
    // survives being saved and read back.
    #[test]
    fn plans_are_stable_and_round_trip(world in world()) {
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let Some(plan) = first_plan(&desired, &live, &options)? else { return Ok(()) };
        let mut reversed = live.clone();
        reversed.users.reverse();
        reversed.groups.reverse();
        if let Some(roles) = reversed.roles.as_mut() {
            roles.reverse();
        }
        let again = crate::plan::plan(&desired, &reversed, &options)
            .map_err(|e| TestCaseError::fail(format!("reordered listing: {e}")))?;
        prop_assert_eq!(&again, &plan, "listing order changed the plan");
        let doc = crate::plan::saved::PlanDocument::new(&plan, "0".repeat(64));
        let text = serde_json::to_string(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let read = crate::plan::saved::PlanDocument::from_json(&text)
            .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        prop_assert_eq!(read.plan(), plan);
    }

    // Desired state applied to an empty tenant is exactly desired state: planning it again
    // against the result finds every object as desired.
    #[test]
    fn desired_applied_to_empty_tenant_needs_nothing(world in world()) {
        let (desired, options) = (world.desired(), world.options());
        // On a Genesys-like target, the org's divisions and license definitions stay.
        let tenant = world.tenant();
        let empty = read(&desired, Snapshot {
            roles: world.roles.as_ref().map(|_| Vec::new()),
            divisions: tenant.divisions,
            licenses: tenant.licenses.map(|l| LiveLicenses {
                definitions: l.definitions,
                held: HashMap::new(),
            }),
            ..Snapshot::default()
        });
        let managed_roles = if world.roles.is_some() {
            desired
                .roles
                .iter()
                .filter(|r| r.permissions.is_some() || r.description.is_some())
                .count()
        } else {
            0
        };
        let objects = desired.users.len() + desired.groups.len() + managed_roles;
        let fresh = match plan(&desired, &empty, &options) {
            // Refused exactly when a YAML license maps a definition the org lacks.
            Err(PlanError::UnknownLicense { .. }) => {
                prop_assert!(first_plan(&desired, &empty, &options)?.is_none());
                return Ok(());
            }
            other => other.map_err(|e| {
                TestCaseError::fail(format!("planning against nothing failed: {e}"))
            })?,
        };
        prop_assert_eq!(fresh.changes.len(), objects);
        prop_assert!(
            fresh.changes.iter().all(|c| c.action == Action::Create && c.blocked.is_none()),
            "{}",
            show(&fresh)
        );
        let as_live = read(&desired, simulate(&fresh, &empty));
        let again = plan(&desired, &as_live, &options)
            .map_err(|e| TestCaseError::fail(format!("planning against d-as-live failed: {e}")))?;
        prop_assert!(again.is_empty(), "first: {}\nagain: {}", show(&fresh), show(&again));
        prop_assert_eq!(again.unchanged, objects);
    }
}

// The generators reach what the properties are about: without this, a change to them could
// leave the properties passing on nothing but trivial worlds.
#[test]
#[allow(clippy::too_many_lines)] // one list of what the worlds must reach, kept together
fn worlds_cover_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeMap;

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = world();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..400 {
        let world = strategy.new_tree(&mut runner).expect("a world").current();
        let (desired, live, options) = (world.desired(), world.live(), world.options());
        let plan = match plan(&desired, &live, &options) {
            Ok(plan) => plan,
            Err(PlanError::UnknownLicense { .. }) => {
                *seen.entry("unknown license").or_default() += 1;
                continue;
            }
            Err(_) => {
                *seen.entry("ambiguous").or_default() += 1;
                continue;
            }
        };
        let mut note = |what| *seen.entry(what).or_default() += 1;
        for c in &plan.changes {
            note(match (c.action, c.kind) {
                (Action::Create, Kind::User) => "create user",
                (Action::Restore, _) => "restore user",
                (Action::Create, Kind::Group) => "create group",
                (Action::Patch, Kind::User) => "patch user",
                (Action::Patch, Kind::Group) => "patch group",
                (Action::Deactivate, _) => "deactivate",
                (Action::Delete, Kind::User) => "delete user",
                (Action::Delete, Kind::Group) => "delete group",
                (Action::Create, Kind::Role) => "create role",
                (Action::Patch, Kind::Role) => "patch role",
                (Action::Delete, Kind::Role) => "delete role",
            });
            if c.blocked.is_some() {
                note("blocked");
            }
            for e in &c.edits {
                let live_group = c.kind == Kind::Group && c.id.is_some();
                match e {
                    Edit::Grants { add, remove } => {
                        let whose = if c.kind == Kind::Group {
                            "group"
                        } else {
                            "user"
                        };
                        if !add.is_empty() {
                            note(if whose == "group" {
                                "group grant added"
                            } else {
                                "user grant added"
                            });
                        }
                        if !remove.is_empty() {
                            note(if whose == "group" {
                                "group grant revoked"
                            } else {
                                "user grant revoked"
                            });
                        }
                    }
                    Edit::Licenses { add, remove } => {
                        if !add.is_empty() {
                            note("license added");
                        }
                        if !remove.is_empty() {
                            note("license removed");
                        }
                        if remove.iter().any(|l| l.id == DEFINITIONS[2]) {
                            note("unmapped license removed");
                        }
                    }
                    Edit::Set { attr, .. } if live_group && attr.name() == "rolesEnabled" => {
                        note("rolesEnabled switched on");
                    }
                    _ => {}
                }
                note(match e {
                    Edit::Set { attr, .. } if attr.name() == "userName" && c.id.is_some() => {
                        "rename user"
                    }
                    Edit::Set { attr, .. }
                        if attr.name() == "displayName"
                            && c.kind == Kind::Group
                            && c.id.is_some() =>
                    {
                        "rename group"
                    }
                    Edit::Set { .. } => "set",
                    Edit::SetManager { .. } => "manager",
                    Edit::Add { .. } => "add value",
                    Edit::Replace { .. } => "replace value",
                    Edit::Remove { .. } => "remove value",
                    Edit::ReplaceAll { .. } => "replace all values",
                    Edit::Password => "password",
                    Edit::AddMembers { .. } => "add members",
                    Edit::RemoveMembers { .. } => "remove members",
                    Edit::Role { .. } => "role body",
                    Edit::Grants { .. } => "role grants",
                    Edit::Licenses { .. } => "licenses",
                    Edit::SetOwners { .. } => "owners",
                });
            }
        }
        for w in &plan.warnings {
            if w.message.contains("is protected") {
                note("protected warning");
            } else if w.message.contains("not managed on this target") {
                note("unsupported warning");
            }
        }
        if plan.is_empty() {
            note("empty plan");
        }
    }
    for what in [
        "ambiguous",
        "create user",
        "restore user",
        "create group",
        "patch user",
        "patch group",
        "deactivate",
        "delete user",
        "delete group",
        "create role",
        "patch role",
        "delete role",
        "blocked",
        "rename user",
        "rename group",
        "set",
        "manager",
        "add value",
        "replace value",
        "remove value",
        "replace all values",
        "add members",
        "remove members",
        "protected warning",
        "unsupported warning",
        "empty plan",
        "group grant added",
        "group grant revoked",
        "user grant added",
        "user grant revoked",
        "rolesEnabled switched on",
        "license added",
        "license removed",
        "unmapped license removed",
        "unknown license",
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) > 0,
            "no world had {what}: {seen:?}"
        );
    }
}
