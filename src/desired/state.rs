//! [`DesiredState`]: validated desired state with lookups by name. Only the loader builds one,
//! and only from input that passed validation.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::permission::{Grant, RoleIndex, effective_permissions};
use crate::model::{Config, Group, License, Role, SourceMap, Spanned, User};

use super::confine::SecretDirs;
use super::validate::{Collected, Indexes};

/// Group displayName → member names (userNames and displayNames as defined).
pub(crate) type Memberships = BTreeMap<String, BTreeSet<String>>;

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
    /// Positions by folded name, as validation built them from these very lists.
    index: Indexes,
    /// Where `fromFile` secrets may be read from (none when not loaded from a directory).
    secret_dirs: SecretDirs,
}

impl DesiredState {
    pub(crate) fn new(collected: Collected, sources: SourceMap, index: Indexes) -> DesiredState {
        let Collected {
            users,
            groups,
            roles,
            licenses,
            config,
            ..
        } = collected;
        DesiredState {
            sources,
            config,
            users,
            groups,
            roles,
            licenses,
            index,
            secret_dirs: SecretDirs::default(),
        }
    }

    /// Where `fromFile` secrets may be read from: the desired-state directory and
    /// `secrets.allowedDirs`. Empty (every file refused) when the state was not loaded from a
    /// directory.
    #[must_use]
    pub fn secret_dirs(&self) -> &SecretDirs {
        &self.secret_dirs
    }

    pub(crate) fn set_secret_dirs(&mut self, dirs: SecretDirs) {
        self.secret_dirs = dirs;
    }

    /// The user with this userName (case-insensitive).
    #[must_use]
    pub fn user(&self, user_name: &str) -> Option<&Spanned<User>> {
        self.index
            .users
            .get(user_name, |i| &self.users[i].user_name)
            .map(|i| &self.users[i])
    }

    /// Position in [`DesiredState::users`] of the user with this userName (case-insensitive).
    #[must_use]
    pub fn user_index(&self, user_name: &str) -> Option<usize> {
        self.index
            .users
            .get(user_name, |i| &self.users[i].user_name)
    }

    /// Position in [`DesiredState::groups`] of the group with this displayName
    /// (case-insensitive).
    #[must_use]
    pub fn group_index(&self, name: &str) -> Option<usize> {
        self.index
            .groups
            .get(name, |i| &self.groups[i].display_name)
    }

    /// The group with this displayName (case-insensitive).
    #[must_use]
    pub fn group(&self, name: &str) -> Option<&Spanned<Group>> {
        self.index
            .groups
            .get(name, |i| &self.groups[i].display_name)
            .map(|i| &self.groups[i])
    }

    /// The role with this name (case-insensitive).
    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Spanned<Role>> {
        self.index
            .roles
            .get(name, |i| &self.roles[i].name)
            .map(|i| &self.roles[i])
    }

    /// The license with this name (case-insensitive).
    #[must_use]
    pub fn license(&self, name: &str) -> Option<&Spanned<License>> {
        self.index
            .licenses
            .get(name, |i| &self.licenses[i].name)
            .map(|i| &self.licenses[i])
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
    pub fn memberships(&self) -> Memberships {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for group in &self.groups {
            if let Some(members) = &group.members {
                let entry = out
                    .entry(group.display_name.as_str().to_owned())
                    .or_default();
                for member in members {
                    let canonical = self
                        .user(member)
                        .map(|u| u.user_name.as_str())
                        .or_else(|| self.group(member).map(|g| g.display_name.as_str()))
                        .unwrap_or(member.as_str());
                    entry.insert(canonical.to_owned());
                }
            }
        }
        for user in &self.users {
            for name in user.groups.iter().flatten() {
                if let Some(group) = self.group(name) {
                    out.entry(group.display_name.as_str().to_owned())
                        .or_default()
                        .insert(user.user_name.as_str().to_owned());
                }
            }
        }
        out
    }

    /// [`Self::memberships`] for a target whose groups cannot contain groups (Genesys
    /// Cloud): a member group is replaced by its own members, transitively, so the users of
    /// a nested group become direct members of every group above it. Also returns the
    /// (group, nested group) pairs that were flattened, for the plan to say so.
    #[must_use]
    pub fn flattened_memberships(&self) -> (Memberships, Vec<(String, String)>) {
        let direct = self.memberships();
        let mut flattened = Vec::new();
        let mut out = BTreeMap::new();
        for (group, members) in &direct {
            let mut users = BTreeSet::new();
            let mut seen = BTreeSet::from([group.clone()]);
            let mut stack: Vec<&String> = members.iter().collect();
            while let Some(member) = stack.pop() {
                match self.group(member) {
                    Some(nested) => {
                        let name = nested.display_name.as_str().to_owned();
                        if members.contains(&name) {
                            flattened.push((group.clone(), name.clone()));
                        }
                        if seen.insert(name.clone())
                            && let Some(inner) = direct.get(&name)
                        {
                            stack.extend(inner.iter());
                        }
                    }
                    None => {
                        users.insert(member.clone());
                    }
                }
            }
            out.insert(group.clone(), users);
        }
        (out, flattened)
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
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
