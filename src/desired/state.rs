//! [`DesiredState`]: validated desired state with lookups by name. Only the loader builds one,
//! and only from input that passed validation.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::permission::{Grant, RoleIndex, effective_permissions};
use crate::model::{Config, Group, License, Role, SourceMap, Spanned, User};

use super::validate::Collected;

/// Valid desired state: every reference resolves, names are unique, no cycles.
#[derive(Debug)]
pub struct DesiredState {
    /// The files everything was read from.
    pub sources: SourceMap,
    /// `scimctl.yaml` (defaults when absent).
    pub config: Config,
    /// Users in file order.
    pub users: Vec<Spanned<User>>,
    /// Groups in file order.
    pub groups: Vec<Spanned<Group>>,
    /// Roles in file order.
    pub roles: Vec<Spanned<Role>>,
    /// Licenses in file order.
    pub licenses: Vec<Spanned<License>>,
    user_index: HashMap<String, usize>,
    group_index: HashMap<String, usize>,
    role_index: HashMap<String, usize>,
    license_index: HashMap<String, usize>,
}

fn index<T>(items: &[Spanned<T>], key: impl Fn(&T) -> &str) -> HashMap<String, usize> {
    let mut map = HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        map.entry(key(&item.value).to_lowercase()).or_insert(i);
    }
    map
}

impl DesiredState {
    pub(crate) fn new(collected: Collected, sources: SourceMap) -> DesiredState {
        let Collected {
            users,
            groups,
            roles,
            licenses,
            config,
            ..
        } = collected;
        DesiredState {
            user_index: index(&users, |u| &u.user_name),
            group_index: index(&groups, |g| &g.display_name),
            role_index: index(&roles, |r| &r.name),
            license_index: index(&licenses, |l| &l.name),
            sources,
            config,
            users,
            groups,
            roles,
            licenses,
        }
    }

    /// The user with this userName (case-insensitive).
    #[must_use]
    pub fn user(&self, user_name: &str) -> Option<&Spanned<User>> {
        self.user_index
            .get(&user_name.to_lowercase())
            .map(|&i| &self.users[i])
    }

    /// Position in [`DesiredState::users`] of the user with this userName (case-insensitive).
    #[must_use]
    pub fn user_index(&self, user_name: &str) -> Option<usize> {
        self.user_index.get(&user_name.to_lowercase()).copied()
    }

    /// Position in [`DesiredState::groups`] of the group with this displayName
    /// (case-insensitive).
    #[must_use]
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.group_index.get(&name.to_lowercase()).copied()
    }

    /// The group with this displayName (case-insensitive).
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Spanned<Group>> {
        self.group_index
            .get(&name.to_lowercase())
            .map(|&i| &self.groups[i])
    }

    /// The role with this name (case-insensitive).
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Spanned<Role>> {
        self.role_index
            .get(&name.to_lowercase())
            .map(|&i| &self.roles[i])
    }

    /// The license with this name (case-insensitive).
    #[must_use]
    pub fn license(&self, name: &str) -> Option<&Spanned<License>> {
        self.license_index
            .get(&name.to_lowercase())
            .map(|&i| &self.licenses[i])
    }

    /// A role's effective permissions through inheritance, each with the chain granting it.
    #[must_use]
    pub fn effective_permissions(&self, role: &str) -> Option<Vec<Grant>> {
        let index = RoleIndex::new(self.roles.iter().map(|r| &r.value));
        effective_permissions(&index, role)
    }

    /// Direct members of every group: the union of each group's `members` and the users whose
    /// `groups` name it, as (group displayName → member names as defined). Groups whose
    /// membership is written nowhere are absent (their membership is not managed).
    #[must_use]
    pub fn memberships(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for group in &self.groups {
            if let Some(members) = &group.members {
                let entry = out.entry(group.display_name.value.clone()).or_default();
                for member in members {
                    let canonical = self
                        .user(member)
                        .map(|u| u.user_name.value.clone())
                        .or_else(|| self.group(member).map(|g| g.display_name.value.clone()))
                        .unwrap_or_else(|| member.value.clone());
                    entry.insert(canonical);
                }
            }
        }
        for user in &self.users {
            for name in user.groups.iter().flatten() {
                if let Some(group) = self.group(name) {
                    out.entry(group.display_name.value.clone())
                        .or_default()
                        .insert(user.user_name.value.clone());
                }
            }
        }
        out
    }

    /// Counts per kind, for summaries.
    #[must_use]
    pub fn counts(&self) -> Counts {
        Counts {
            users: self.users.len(),
            groups: self.groups.len(),
            roles: self.roles.len(),
            licenses: self.licenses.len(),
        }
    }
}

/// Number of objects per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Users.
    pub users: usize,
    /// Groups.
    pub groups: usize,
    /// Roles.
    pub roles: usize,
    /// Licenses.
    pub licenses: usize,
}
