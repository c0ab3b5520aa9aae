//! Genesys Cloud licenses in an export (issue 18, item 1): one YAML license per license
//! definition some exported user holds, named by the definition's id (the Platform API gives
//! a definition no name) and mapping it (`genesysLicense`), and each user's `license`.
//!
//! YAML gives a user one license. A user holding exactly one definition gets it as its
//! `license`; a user holding several gets no `license` at all, and a warning says so: the
//! planner leaves the licenses of a user without `license` alone under every
//! `ownership.licenses`, whereas giving it one of them would make a plan take the others away
//! (they are mapped by the other YAML licenses, which `listed` manages). A definition the org
//! does not list (`/api/v2/license/definitions`) is never written: a plan refuses a
//! `genesysLicense` the org does not define.
//!
//! A license's `allowedRoles` are the roles its holders hold, directly and through the groups
//! they are members of, so that the exported users' roles validate against their license.

use std::collections::{BTreeMap, HashMap};

use super::convert::{Notes, fold, name_order, sorted_distinct, text};
use crate::model::tenant::LiveLicenses;
use crate::model::{License, Spanned, User};

/// What the users and groups of an export say about licenses, gathered as they are converted.
#[derive(Default)]
pub(super) struct LicenseUse {
    /// Per definition id the exported users hold: the role names its holders hold.
    roles: BTreeMap<String, Vec<String>>,
    /// Per exported user holding a definition (folded userName): the definitions it holds.
    held: HashMap<String, Vec<String>>,
}

impl LicenseUse {
    /// The `license` of the exported user `id`, with its roles counted for the definitions it
    /// holds (see the module docs for the rule).
    pub(super) fn user(
        &mut self,
        licenses: Option<&LiveLicenses>,
        id: Option<&str>,
        user: &User,
        notes: &mut Notes,
    ) -> Option<Spanned<crate::model::Text>> {
        let (licenses, id) = (licenses?, id?);
        let held = licenses.of(id);
        let mut defined: Vec<String> = Vec::new();
        for definition in held {
            if licenses.defines(definition) {
                defined.push(definition.clone());
            } else {
                notes.add(
                    "user licenses left out: the org does not list the license definition",
                    || format!("{definition} of {}", user.user_name.as_str()),
                );
            }
        }
        let roles: Vec<String> = user
            .roles
            .iter()
            .flatten()
            .map(|r| r.value.name.to_string())
            .collect();
        for definition in &defined {
            self.roles
                .entry(definition.clone())
                .or_default()
                .extend(roles.iter().cloned());
        }
        if !defined.is_empty() {
            self.held
                .insert(fold(user.user_name.as_str()), defined.clone());
        }
        match held {
            [one] if defined.len() == 1 => Some(text(one)),
            [] | [_] => None,
            several => {
                notes.add(
                    "user licenses not written: the user holds several license definitions and YAML gives one license per user, so plans leave its licenses alone",
                    || format!("{} holds {}", user.user_name.as_str(), several.join(", ")),
                );
                None
            }
        }
    }

    /// Counts the roles granted to a group for the definitions its member users hold.
    pub(super) fn group(&mut self, members: &[String], roles: &[String]) {
        if roles.is_empty() {
            return;
        }
        for member in members {
            let Some(held) = self.held.get(&fold(member)) else {
                continue;
            };
            for definition in held {
                self.roles
                    .entry(definition.clone())
                    .or_default()
                    .extend(roles.iter().cloned());
            }
        }
    }

    /// The YAML licenses: one per definition an exported user holds, by id.
    pub(super) fn licenses(self, live: Option<&LiveLicenses>) -> Vec<License> {
        let Some(live) = live else {
            return Vec::new();
        };
        let mut out: Vec<License> = self
            .roles
            .into_iter()
            .map(|(id, roles)| {
                let description = live
                    .definitions
                    .iter()
                    .find(|d| d.id == id)
                    .and_then(|d| d.description.as_deref())
                    .filter(|d| !d.trim().is_empty())
                    .map(text);
                License {
                    name: text(&id),
                    description,
                    allowed_roles: sorted_distinct(roles.iter().map(String::as_str))
                        .into_iter()
                        .map(text)
                        .collect(),
                    genesys_license: Some(text(&id)),
                }
            })
            .collect();
        out.sort_by(|a, b| name_order(a.name.as_str(), b.name.as_str()));
        out
    }
}
