//! `scimctl explain`: why a user, group or role has the roles, permissions and memberships it
//! has (issue 8), worked out from the desired state alone. Every answer carries the chain of
//! YAML entries that leads to it, each link with the `path:line` that writes it. Given a live
//! [`Snapshot`], it also says where the tenant differs for that one object, comparing only
//! attributes both sides have. Pure: no I/O, no clock; the CLI reads the files and the
//! tenant, and [`render`] turns a report into text.
//!
//! How chains are chosen: a permission reached in several ways is listed once, with the
//! shortest chain (ties go to the role written first on the user), and the other roles of
//! the user that also grant it are named in `alsoVia`. Memberships and holders likewise get
//! one shortest chain each. A group may grant roles (Genesys Cloud): a user holds them through
//! its membership, shown as user → group → role, and their permissions count.

mod graph;
mod live;
pub mod render;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::desired::DesiredState;
use crate::model::Span;
use crate::model::permission::{RoleIndex, effective_permissions};
use crate::scim::Snapshot;

use graph::{Inheritance, Memberships, Node, Reached, role_index};
pub use live::{Difference, LiveDiff, UserLicenses};

/// Version of the JSON document; bumped when a field changes meaning or goes away.
pub const VERSION: u32 = 1;

/// What is explained: a user by `userName`, a group by `displayName`, a role by name.
pub use crate::model::Kind;

/// Why a question cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No object of that kind has that name (compared case-insensitively).
    #[error("no {} named `{name}` in the desired state{}", kind.name(), hint.text())]
    NotFound {
        /// The kind asked about.
        kind: Kind,
        /// The name asked about.
        name: String,
        /// What to try instead.
        hint: Hint,
    },
    /// Live objects cannot be matched to desired ones unambiguously, or cannot be read.
    #[error(transparent)]
    Live(#[from] crate::plan::PlanError),
}

/// What an unknown name may have meant.
#[derive(Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Hint {
    /// Nothing close.
    None,
    /// A name a typo away.
    Close(String),
    /// The name is a former name (`previously`) of this object.
    Renamed(String),
}

impl Hint {
    fn text(&self) -> String {
        match self {
            Hint::None => String::new(),
            Hint::Close(name) => format!(" (did you mean `{name}`?)"),
            Hint::Renamed(name) => format!(" (it was renamed to `{name}`)"),
        }
    }
}

/// The object a question is about: its kind and position in the desired state's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    /// Its kind.
    pub kind: Kind,
    /// Its position in [`DesiredState::users`], [`DesiredState::groups`] or
    /// [`DesiredState::roles`].
    pub index: usize,
}

/// The live tenant to compare with, and how to name it.
#[derive(Clone, Copy, Debug)]
pub struct LiveInput<'a> {
    /// Every live user and group.
    pub snapshot: &'a Snapshot,
    /// The target, for the report (a URL or `sandbox (<path>)`).
    pub target: &'a str,
}

/// Where something is written: a file and a 1-based line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Origin {
    /// The file, as the desired-state directory was given.
    pub file: String,
    /// 1-based line.
    pub line: u32,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What a link of a chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A user.
    User,
    /// A group.
    Group,
    /// A role.
    Role,
    /// A permission.
    Permission,
}

/// One link of a chain. `source` is where the edge into this link is written (a `members`
/// or `groups` entry, a user's `roles` entry, an `inherits` entry, a permission of a role);
/// for the first link, where the object itself is defined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Link {
    /// What the link is.
    pub kind: LinkKind,
    /// Its name as defined.
    pub name: String,
    /// Where it is written; absent for values not read from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Origin>,
}

/// A report, tagged by `kind` in JSON.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Explanation {
    /// About a user.
    User(UserExplanation),
    /// About a group.
    Group(GroupExplanation),
    /// About a role.
    Role(RoleExplanation),
}

/// The JSON document: the report with its `version`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Document<'a> {
    /// [`VERSION`].
    pub version: u32,
    /// The report, flattened.
    #[serde(flatten)]
    pub explanation: &'a Explanation,
}

impl Explanation {
    /// The versioned JSON document of this report.
    #[must_use]
    pub fn document(&self) -> Document<'_> {
        Document {
            version: VERSION,
            explanation: self,
        }
    }
}

/// Everything about one user.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserExplanation {
    /// The `userName`.
    pub name: String,
    /// The `displayName`, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `active`, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    /// Where the user is defined.
    pub source: Option<Origin>,
    /// Whether the user's `roles` are written (absent: not managed, and none are explained).
    pub roles_managed: bool,
    /// Roles granted to the user, in the order written.
    pub roles: Vec<HeldRole>,
    /// The user's license, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseFit>,
    /// Effective permissions through the roles and their inheritance, deduplicated, sorted.
    pub permissions: Vec<EffectivePermission>,
    /// Groups the user is in, directly or through nested groups, nearest first.
    pub groups: Vec<Membership>,
    /// Where the tenant differs, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveDiff>,
}

/// A role granted to a user.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldRole {
    /// The role's name as defined.
    pub role: String,
    /// Divisions the grant is limited to, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub divisions: Option<Vec<String>>,
    /// User → role, with the `roles` entry; for a role held through a group, user → group
    /// (with the membership's entry) → role (with the group's `roles` entry).
    pub chain: Vec<Link>,
    /// The group the role is granted to, when the user holds it through one (Genesys Cloud
    /// `PC_GROUP` grants); absent for the user's own roles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_group: Option<String>,
    /// Whether the user's license allows it (absent when the user has no license).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_by_license: Option<bool>,
}

/// A user's license, what it allows, and whether the user's roles fit it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseFit {
    /// The license's name.
    pub name: String,
    /// Where the user names it.
    pub assigned: Option<Origin>,
    /// Where the license is defined.
    pub source: Option<Origin>,
    /// The roles it allows, as written.
    pub allowed_roles: Vec<String>,
    /// Whether every role of the user is allowed.
    pub fits: bool,
    /// The user's roles it does not allow (empty in a valid desired state).
    pub not_allowed: Vec<String>,
}

/// One effective permission and how it is granted.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectivePermission {
    /// The permission as the declaring role writes it.
    pub permission: String,
    /// The shortest chain that grants it, ending at the permission.
    pub chain: Vec<Link>,
    /// Other roles of the user that grant it too (explain user only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_via: Vec<String>,
}

/// A group something belongs to.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// The group's `displayName`.
    pub group: String,
    /// Whether the membership is direct rather than through nested groups.
    pub direct: bool,
    /// From the member up to the group, each link with its `members`/`groups` entry.
    pub chain: Vec<Link>,
}

/// Everything about one group.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupExplanation {
    /// The `displayName`.
    pub name: String,
    /// The description, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the group is defined.
    pub source: Option<Origin>,
    /// The Genesys Cloud group settings written in YAML (`type`, `visibility`, the flags,
    /// `owners`), in that order; the others are not managed. Left out of JSON when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<GroupSetting>,
    /// The roles granted to the group (Genesys Cloud), which its members hold through it.
    /// Left out of JSON when none are written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<HeldRole>,
    /// Whether its membership is written anywhere (and so managed).
    pub membership_managed: bool,
    /// Members, directly or through nested groups, nearest first.
    pub members: Vec<Member>,
    /// Groups holding this one, directly or through nested groups, nearest first.
    pub parents: Vec<Membership>,
    /// Where the tenant differs, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveDiff>,
}

/// A Genesys Cloud group setting written in YAML.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupSetting {
    /// Its YAML name (`visibility`, `owners`, …).
    pub name: String,
    /// Its value as written: a word, `true`/`false`, or owners' userNames joined by `, `.
    pub value: String,
    /// Where it is written.
    pub source: Option<Origin>,
}

/// A member of a group.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// `user` or `group`.
    pub kind: LinkKind,
    /// Its `userName` or `displayName`.
    pub name: String,
    /// Whether it is a member directly rather than through a nested group.
    pub direct: bool,
    /// From the group down to the member.
    pub chain: Vec<Link>,
}

/// Everything about one role.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleExplanation {
    /// The role's name.
    pub name: String,
    /// The description, if written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the role is defined.
    pub source: Option<Origin>,
    /// Roles it inherits, transitively, nearest first; chains go from this role up.
    pub inherits: Vec<RelatedRole>,
    /// Roles that inherit it, transitively, nearest first; chains go from them to this role.
    pub inherited_by: Vec<RelatedRole>,
    /// Its effective permissions, each with the chain of roles that grants it.
    pub permissions: Vec<EffectivePermission>,
    /// Users who hold it: directly, or through a role that inherits it.
    pub holders: Vec<Holder>,
    /// Licenses that allow it.
    pub licenses: Vec<LicenseRef>,
    /// Where the tenant differs, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveDiff>,
}

/// A role related to another through `inherits`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedRole {
    /// The role's name.
    pub role: String,
    /// Whether the relation is direct (one `inherits` entry).
    pub direct: bool,
    /// The chain of roles, each with its `inherits` entry.
    pub chain: Vec<Link>,
}

/// A user holding a role.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Holder {
    /// The user's `userName`.
    pub user: String,
    /// Whether the user is granted this very role (not only a role that inherits it).
    pub direct: bool,
    /// User → granted role → inherited roles → this role.
    pub chain: Vec<Link>,
}

/// A license allowing a role.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LicenseRef {
    /// The license's name.
    pub license: String,
    /// Where its `allowedRoles` names the role.
    pub source: Option<Origin>,
}

/// Finds the object a question is about, by name, case-insensitively. An unknown name gets a
/// hint: for a former name (`previously`), the current one; else a close name, if any.
pub fn find(state: &DesiredState, kind: Kind, name: &str) -> Result<Subject, ExplainError> {
    let found = match kind {
        Kind::User => state.user_index(name),
        Kind::Group => state.group_index(name),
        Kind::Role => role_index(state, name),
    };
    if let Some(index) = found {
        return Ok(Subject { kind, index });
    }
    let renamed = match kind {
        Kind::User => state
            .users
            .iter()
            .find(|u| u.previously.iter().any(|p| p.eq_ignore_ascii_case(name)))
            .map(|u| u.user_name.to_string()),
        Kind::Group => state
            .groups
            .iter()
            .find(|g| g.previously.iter().any(|p| p.eq_ignore_ascii_case(name)))
            .map(|g| g.display_name.to_string()),
        Kind::Role => None,
    };
    if let Some(current) = renamed {
        return Err(ExplainError::NotFound {
            kind,
            name: name.to_owned(),
            hint: Hint::Renamed(current),
        });
    }
    let close = {
        let names: Vec<&str> = match kind {
            Kind::User => state.users.iter().map(|u| u.user_name.as_str()).collect(),
            Kind::Group => state
                .groups
                .iter()
                .map(|g| g.display_name.as_str())
                .collect(),
            Kind::Role => state.roles.iter().map(|r| r.name.as_str()).collect(),
        };
        crate::desired::yaml::suggest(name, names).map(str::to_owned)
    };
    Err(ExplainError::NotFound {
        kind,
        name: name.to_owned(),
        hint: close.map_or(Hint::None, Hint::Close),
    })
}

/// Explains `subject` from desired state, and compares it with `live` when given.
pub fn explain(
    state: &DesiredState,
    subject: Subject,
    live: Option<LiveInput<'_>>,
) -> Result<Explanation, ExplainError> {
    let ctx = Context::new(state);
    Ok(match subject.kind {
        Kind::User => Explanation::User(ctx.user(subject.index, live)?),
        Kind::Group => Explanation::Group(ctx.group(subject.index, live)?),
        Kind::Role => Explanation::Role(ctx.role(subject.index, live)?),
    })
}

/// The desired state with the graphs every question walks.
struct Context<'a> {
    state: &'a DesiredState,
    memberships: Memberships,
    inheritance: Inheritance,
    roles: RoleIndex<'a>,
}

impl<'a> Context<'a> {
    fn new(state: &'a DesiredState) -> Context<'a> {
        Context {
            state,
            memberships: Memberships::new(state),
            inheritance: Inheritance::new(state),
            roles: RoleIndex::new(state.roles.iter().map(|r| &r.value)),
        }
    }

    fn origin(&self, span: Span) -> Option<Origin> {
        let path = self.state.sources.path(span.file)?;
        Some(Origin {
            file: path.display().to_string(),
            line: span.line,
        })
    }

    fn link(&self, kind: LinkKind, name: &str, span: Span) -> Link {
        Link {
            kind,
            name: name.to_owned(),
            source: self.origin(span),
        }
    }

    fn node_link(&self, node: Node, span: Span) -> Link {
        match node {
            Node::User(u) => self.link(LinkKind::User, &self.state.users[u].user_name, span),
            Node::Group(g) => self.link(LinkKind::Group, &self.state.groups[g].display_name, span),
        }
    }

    fn node_start(&self, node: Node) -> Link {
        match node {
            Node::User(u) => self.node_link(node, self.state.users[u].span),
            Node::Group(g) => self.node_link(node, self.state.groups[g].span),
        }
    }

    fn role_link(&self, role: usize, span: Span) -> Link {
        self.link(LinkKind::Role, &self.state.roles[role].name, span)
    }

    /// The groups `node` belongs to, each with its chain from `node` up.
    fn memberships_of(&self, node: Node) -> Vec<Membership> {
        self.memberships
            .groups_holding(node)
            .into_iter()
            .map(|Reached { node: group, path }| {
                let mut chain = vec![self.node_start(node)];
                chain.extend(
                    path.iter()
                        .map(|step| self.node_link(Node::Group(step.to), step.span)),
                );
                Membership {
                    group: self.state.groups[group].display_name.to_string(),
                    direct: path.len() == 1,
                    chain,
                }
            })
            .collect()
    }

    /// Links from role `from` through `inherits` to each role named in `via` after it.
    fn inherit_links(&self, from: usize, via: &[String]) -> Vec<Link> {
        let mut links = Vec::new();
        let mut current = from;
        for name in via {
            let Some(next) = role_index(self.state, name) else {
                break;
            };
            let span = self
                .inheritance
                .edge(current, next)
                .unwrap_or(Span::UNKNOWN);
            links.push(self.role_link(next, span));
            current = next;
        }
        links
    }

    /// The effective permissions of role `role`, each chain starting with `head` (the links
    /// that lead to the role, the role's own link included).
    fn permissions_of(&self, role: usize, head: &[Link]) -> Vec<EffectivePermission> {
        let grants =
            effective_permissions(&self.roles, &self.state.roles[role].name).unwrap_or_default();
        grants
            .into_iter()
            .map(|grant| {
                let mut chain = head.to_vec();
                chain.extend(self.inherit_links(role, grant.via.get(1..).unwrap_or_default()));
                chain.push(self.link(LinkKind::Permission, &grant.permission, grant.span));
                EffectivePermission {
                    permission: grant.permission,
                    chain,
                    also_via: Vec::new(),
                }
            })
            .collect()
    }

    /// The user's own role grants (chains start at `start`), then those of the groups it
    /// is in (Genesys Cloud; chains start with the membership's), each with the group.
    fn held_grants(
        &self,
        user: &'a crate::model::User,
        start: &Link,
        groups: &[Membership],
    ) -> Vec<HeldGrant<'a>> {
        let mut held: Vec<HeldGrant<'a>> = user
            .roles
            .iter()
            .flatten()
            .map(|grant| (vec![start.clone()], None, grant))
            .collect();
        for membership in groups {
            let Some(group) = self.state.group(&membership.group) else {
                continue;
            };
            for grant in group.value.roles.iter().flatten() {
                held.push((
                    membership.chain.clone(),
                    Some(membership.group.clone()),
                    grant,
                ));
            }
        }
        held
    }

    fn user(&self, u: usize, live: Option<LiveInput<'_>>) -> Result<UserExplanation, ExplainError> {
        let user = &self.state.users[u];
        let start = self.node_start(Node::User(u));
        let license = user
            .license
            .as_ref()
            .and_then(|l| Some((l, self.state.license(l)?)));
        let allowed = |role: &str| {
            license.map(|(_, lic)| {
                lic.allowed_roles
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(role))
            })
        };
        let mut roles = Vec::new();
        // Per permission: the best grant so far and the other direct roles granting it.
        let mut permissions: BTreeMap<String, EffectivePermission> = BTreeMap::new();
        let groups = self.memberships_of(Node::User(u));
        for (prefix, via_group, grant) in self.held_grants(user, &start, &groups) {
            let Some(r) = role_index(self.state, &grant.name) else {
                continue;
            };
            let role_name = self.state.roles[r].name.to_string();
            let mut chain = prefix;
            chain.push(self.role_link(r, grant.span));
            for permission in self.permissions_of(r, &chain) {
                match permissions.get_mut(&permission.permission) {
                    None => {
                        permissions.insert(permission.permission.clone(), permission);
                    }
                    Some(best) if permission.chain.len() < best.chain.len() => {
                        let previous = std::mem::replace(best, permission);
                        best.also_via = previous.also_via;
                        best.also_via.push(granted_role(&previous.chain));
                        best.also_via.retain(|r| *r != role_name);
                    }
                    Some(best) => {
                        if granted_role(&best.chain) != role_name
                            && !best.also_via.contains(&role_name)
                        {
                            best.also_via.push(role_name.clone());
                        }
                    }
                }
            }
            roles.push(HeldRole {
                allowed_by_license: allowed(&role_name),
                role: role_name,
                divisions: grant
                    .divisions
                    .as_ref()
                    .map(|d| d.iter().map(ToString::to_string).collect()),
                chain,
                via_group,
            });
        }
        let license = license.map(|(assigned, lic)| {
            let not_allowed: Vec<String> = roles
                .iter()
                .filter(|r| r.allowed_by_license == Some(false))
                .map(|r| r.role.clone())
                .collect();
            LicenseFit {
                name: lic.name.to_string(),
                assigned: self.origin(assigned.span),
                source: self.origin(lic.span),
                allowed_roles: lic.allowed_roles.iter().map(|r| r.to_string()).collect(),
                fits: not_allowed.is_empty(),
                not_allowed,
            }
        });
        let live = match live {
            Some(input) => Some(live::user(self, u, input)?),
            None => None,
        };
        Ok(UserExplanation {
            name: user.user_name.to_string(),
            display_name: user.display_name.as_ref().map(|d| d.to_string()),
            active: user.active.as_ref().map(|a| a.value),
            source: start.source,
            roles_managed: user.roles.is_some(),
            roles,
            license,
            permissions: permissions.into_values().collect(),
            groups,
            live,
        })
    }

    fn group(
        &self,
        g: usize,
        live: Option<LiveInput<'_>>,
    ) -> Result<GroupExplanation, ExplainError> {
        let group = &self.state.groups[g];
        let start = self.node_start(Node::Group(g));
        let members = self
            .memberships
            .all_members(g)
            .into_iter()
            .map(|Reached { node, path }| {
                let mut chain = vec![start.clone()];
                chain.extend(path.iter().map(|step| self.node_link(step.to, step.span)));
                let (kind, name) = match node {
                    Node::User(u) => (LinkKind::User, self.state.users[u].user_name.to_string()),
                    Node::Group(m) => (
                        LinkKind::Group,
                        self.state.groups[m].display_name.to_string(),
                    ),
                };
                Member {
                    kind,
                    name,
                    direct: path.len() == 1,
                    chain,
                }
            })
            .collect();
        let live = match live {
            Some(input) => Some(live::group(self, g, input)?),
            None => None,
        };
        let roles = group
            .roles
            .iter()
            .flatten()
            .filter_map(|grant| {
                let r = role_index(self.state, &grant.name)?;
                Some(HeldRole {
                    role: self.state.roles[r].name.to_string(),
                    divisions: grant
                        .divisions
                        .as_ref()
                        .map(|d| d.iter().map(ToString::to_string).collect()),
                    chain: vec![start.clone(), self.role_link(r, grant.span)],
                    via_group: None,
                    allowed_by_license: None,
                })
            })
            .collect();
        Ok(GroupExplanation {
            name: group.display_name.to_string(),
            description: group.description.as_ref().map(|d| d.to_string()),
            source: start.source,
            settings: self.group_settings(group),
            roles,
            membership_managed: self.memberships.is_managed(g),
            members,
            parents: self.memberships_of(Node::Group(g)),
            live,
        })
    }

    /// The Genesys Cloud settings `group` writes, with where.
    fn group_settings(&self, group: &crate::model::Group) -> Vec<GroupSetting> {
        let mut out = Vec::new();
        let mut push = |name: &str, value: String, span: Span| {
            out.push(GroupSetting {
                name: name.to_owned(),
                value,
                source: self.origin(span),
            });
        };
        if let Some(k) = &group.kind {
            push("type", k.value.as_str().to_owned(), k.span);
        }
        if let Some(v) = &group.visibility {
            push("visibility", v.value.as_str().to_owned(), v.span);
        }
        for (name, flag) in [
            ("rulesVisible", &group.rules_visible),
            ("rolesEnabled", &group.roles_enabled),
            ("callsEnabled", &group.calls_enabled),
            ("includeOwners", &group.include_owners),
        ] {
            if let Some(f) = flag {
                push(name, f.value.to_string(), f.span);
            }
        }
        if let Some(owners) = &group.owners {
            let names: Vec<&str> = owners.iter().map(|o| o.as_str()).collect();
            let span = owners.first().map_or(group.display_name.span, |o| o.span);
            push("owners", names.join(", "), span);
        }
        out
    }

    /// The chain from role `start` along a path of `inherits` steps.
    fn role_chain(&self, start: usize, path: &[graph::Step<usize>]) -> Vec<Link> {
        let mut chain = vec![self.role_link(start, self.state.roles[start].span)];
        chain.extend(path.iter().map(|step| self.role_link(step.to, step.span)));
        chain
    }

    fn role(&self, r: usize, live: Option<LiveInput<'_>>) -> Result<RoleExplanation, ExplainError> {
        let role = &self.state.roles[r];
        let inherits = self
            .inheritance
            .ancestors(r)
            .into_iter()
            .map(|reached| RelatedRole {
                role: self.state.roles[reached.node].name.to_string(),
                direct: reached.path.len() == 1,
                chain: self.role_chain(r, &reached.path),
            })
            .collect();
        // Heirs' paths run from this role outwards; reversed, each runs from the heir down
        // to this role, and every step's span is the heir-side `inherits` entry.
        let heirs: Vec<(usize, Vec<Link>)> = self
            .inheritance
            .heirs(r)
            .into_iter()
            .map(|reached| (reached.node, self.heir_chain(r, &reached.path)))
            .collect();
        let inherited_by = heirs
            .iter()
            .map(|(heir, chain)| RelatedRole {
                role: self.state.roles[*heir].name.to_string(),
                direct: chain.len() == 2,
                chain: chain.clone(),
            })
            .collect();
        let start = self.role_link(r, role.span);
        let holders = self.holders(r, &heirs);
        let licenses = self
            .state
            .licenses
            .iter()
            .filter_map(|license| {
                let entry = license
                    .allowed_roles
                    .iter()
                    .find(|a| role_index(self.state, a) == Some(r))?;
                Some(LicenseRef {
                    license: license.name.to_string(),
                    source: self.origin(entry.span),
                })
            })
            .collect();
        let live = match live {
            Some(input) => Some(live::role(self, r, input)?),
            None => None,
        };
        Ok(RoleExplanation {
            name: role.name.to_string(),
            description: role.description.as_ref().map(|d| d.to_string()),
            source: start.source.clone(),
            inherits,
            inherited_by,
            permissions: self.permissions_of(r, std::slice::from_ref(&start)),
            holders,
            licenses,
            live,
        })
    }

    /// The chain from an heir down to role `r`, given the walk's path from `r` up to the heir.
    fn heir_chain(&self, r: usize, path: &[graph::Step<usize>]) -> Vec<Link> {
        // path[i] reaches role path[i].to from the role before it (path[i-1].to, or r); the
        // span is written on path[i].to, which inherits that role.
        let mut chain = Vec::with_capacity(path.len() + 1);
        let Some(last) = path.last() else {
            return chain;
        };
        chain.push(self.role_link(last.to, self.state.roles[last.to].span));
        for i in (0..path.len()).rev() {
            let below = if i == 0 { r } else { path[i - 1].to };
            chain.push(self.role_link(below, path[i].span));
        }
        chain
    }

    /// Users granted role `r` or any of its heirs, with the shortest chain each.
    fn holders(&self, r: usize, heirs: &[(usize, Vec<Link>)]) -> Vec<Holder> {
        let mut out = Vec::new();
        for (u, user) in self.state.users.iter().enumerate() {
            let mut best: Option<Holder> = None;
            for grant in user.roles.iter().flatten() {
                let Some(granted) = role_index(self.state, &grant.name) else {
                    continue;
                };
                let start = self.node_start(Node::User(u));
                let chain = if granted == r {
                    vec![start, self.role_link(r, grant.span)]
                } else if let Some((_, down)) = heirs.iter().find(|(h, _)| *h == granted) {
                    let mut chain = vec![start, self.role_link(granted, grant.span)];
                    chain.extend(down.iter().skip(1).cloned());
                    chain
                } else {
                    continue;
                };
                if best.as_ref().is_none_or(|b| chain.len() < b.chain.len()) {
                    best = Some(Holder {
                        user: user.user_name.to_string(),
                        direct: granted == r,
                        chain,
                    });
                }
            }
            out.extend(best);
        }
        out
    }
}

/// The role a permission's chain is granted through: its first role link.
fn granted_role(chain: &[Link]) -> String {
    chain
        .iter()
        .find(|l| l.kind == LinkKind::Role)
        .map(|l| l.name.clone())
        .unwrap_or_default()
}

/// A role grant as the user holds it: the chain that leads to it, the group it comes
/// through (if any) and the `roles` entry.
type HeldGrant<'a> = (
    Vec<Link>,
    Option<String>,
    &'a crate::model::Spanned<crate::model::RoleGrant>,
);
