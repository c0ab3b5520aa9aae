//! The Genesys Cloud flavour of the sandbox: the SCIM API as Genesys serves it at
//! `/api/v2/scim/v2` (lower-case paths, no group create/delete, the required group filter,
//! active-only default user lists, the 25 rule, roles by name, integer versions with 400
//! `invalidVers`, read-after-write lag) and the subset of the Platform API a provisioning
//! client needs beside it (groups, roles, divisions, grants, licenses, the OAuth client), with
//! Platform-style error bodies and the `inin-*` response headers. Facts come from
//! `docs/genesys.md`; behaviour marked UNCONFIRMED there is a choice made here, not a fact.
//!
//! Users and groups live in the shared [`Store`] (per-resource versions); roles, divisions,
//! grants and the Platform-only group fields live in [`Data`], saved as the state file's
//! `genesys` section. Every write goes through one lock so the two never disagree for long.
//! Permissions are not enforced.

mod authz;
mod catalogue;
mod deleted;
mod groups;
mod licenses;
mod schemas;
mod users;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::RngExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use super::GenesysOptions;
use super::resource::ResourceKind;
use super::store::Store;

/// Where the SCIM API lives, below the origin.
pub(crate) const SCIM_BASE: &str = "/api/v2/scim/v2";
/// The name of the home division.
const HOME: &str = "Home";
/// The division id meaning "all divisions" in grants.
const ALL_DIVISIONS: &str = "*";

/// A Platform role.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Role {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: Vec<Value>,
    #[serde(default, rename = "permissionPolicies")]
    policies: Vec<Value>,
    #[serde(default)]
    default: bool,
    /// Whether the backfill rule has run on this role (catalogue.rs): it runs once.
    #[serde(default)]
    backfilled: bool,
}

/// A division.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Division {
    id: String,
    name: String,
    #[serde(default)]
    home: bool,
}

/// A role granted to a subject (a user) in a division (`*`: all divisions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Grant {
    subject: String,
    role: String,
    division: String,
    #[serde(rename = "madeAt")]
    made_at: String,
}

/// The Platform-only fields of a group (the SCIM group has none of them). The flags and
/// lists default to false and empty, which is what a PUT that omits them leaves (§5).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(clippy::struct_excessive_bools)] // the four flags are the API's own booleans
struct GroupInfo {
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    visibility: String,
    #[serde(default)]
    rules_visible: bool,
    #[serde(default)]
    roles_enabled: bool,
    #[serde(default)]
    calls_enabled: bool,
    #[serde(default)]
    include_owners: bool,
    /// User ids.
    #[serde(default)]
    owners: Vec<String>,
    /// `GroupContact` objects, kept as given.
    #[serde(default)]
    addresses: Vec<Value>,
}

impl Default for GroupInfo {
    fn default() -> Self {
        GroupInfo {
            description: None,
            kind: "official".to_owned(),
            visibility: "public".to_owned(),
            rules_visible: false,
            roles_enabled: false,
            calls_enabled: false,
            include_owners: false,
            owners: Vec::new(),
            addresses: Vec::new(),
        }
    }
}

/// Everything the flavour keeps beside the store; the state file's `genesys` section.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Data {
    #[serde(default)]
    roles: Vec<Role>,
    #[serde(default)]
    divisions: Vec<Division>,
    #[serde(default)]
    grants: Vec<Grant>,
    #[serde(default)]
    groups: BTreeMap<String, GroupInfo>,
    /// Users in the `deleted` state (deleted.rs).
    #[serde(default)]
    deleted: Vec<deleted::Deleted>,
    /// The org's license definitions (licenses.rs).
    #[serde(default, rename = "licenseDefinitions")]
    license_definitions: Vec<licenses::Definition>,
    /// Which user holds which license, sorted.
    #[serde(default, rename = "licenseAssignments")]
    assignments: Vec<licenses::Assignment>,
}

impl Data {
    fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    fn role_named(&self, name: &str) -> Option<&Role> {
        self.roles
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
    }

    fn home(&self) -> &Division {
        self.divisions
            .iter()
            .find(|d| d.home)
            .or_else(|| self.divisions.first())
            .expect("the home division is always seeded")
    }

    fn division(&self, id: &str) -> Option<&Division> {
        self.divisions.iter().find(|d| d.id == id)
    }

    fn division_named(&self, name: &str) -> Option<&Division> {
        self.divisions
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Distinct names of the roles a user holds through direct grants, in grant order.
    fn role_names(&self, user: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for grant in self.grants.iter().filter(|g| g.subject == user) {
            if let Some(role) = self.role(&grant.role)
                && !names.iter().any(|n| n == &role.name)
            {
                names.push(role.name.clone());
            }
        }
        names
    }

    /// Whether the OAuth client's role (`CLIENT_ROLE`) holds `domain:entity:action`; `*`
    /// in a policy's domain, entity or action covers any.
    fn client_holds(&self, domain: &str, entity: &str, action: &str) -> bool {
        let is = |v: Option<&Value>, want: &str| {
            v.and_then(Value::as_str)
                .is_some_and(|s| s == "*" || s.eq_ignore_ascii_case(want))
        };
        self.role_named(CLIENT_ROLE).is_some_and(|role| {
            role.policies.iter().any(|p| {
                is(p.get("domain"), domain)
                    && is(p.get("entityName"), entity)
                    && p.get("actionSet")
                        .and_then(Value::as_array)
                        .is_some_and(|set| set.iter().any(|a| is(Some(a), action)))
            })
        })
    }

    /// Adds a grant unless it exists.
    fn grant(&mut self, subject: &str, role: &str, division: &str, now: &str) {
        let exists = self
            .grants
            .iter()
            .any(|g| g.subject == subject && g.role == role && g.division == division);
        if !exists {
            self.grants.push(Grant {
                subject: subject.to_owned(),
                role: role.to_owned(),
                division: division.to_owned(),
                made_at: now.to_owned(),
            });
        }
    }

    /// Seeds what a fresh org has: the home division (and `extra` divisions), the built-in
    /// roles `employee` and `Master Admin`, and the `scimctl` role of the OAuth client.
    fn seed(&mut self, extra: &[String]) {
        self.seed_licenses();
        if !self.divisions.iter().any(|d| d.home) {
            self.divisions.insert(
                0,
                Division {
                    id: uuid(),
                    name: HOME.to_owned(),
                    home: true,
                },
            );
        }
        for name in extra {
            if self.division_named(name).is_none() {
                self.divisions.push(Division {
                    id: uuid(),
                    name: name.clone(),
                    home: false,
                });
            }
        }
        if self.roles.is_empty() {
            let policy = |domain: &str, entity: &str, actions: &[&str]| serde_json::json!({"domain": domain, "entityName": entity, "actionSet": actions});
            self.roles.push(Role {
                id: uuid(),
                name: "employee".to_owned(),
                description: "Default role for every user".to_owned(),
                permissions: Vec::new(),
                policies: vec![policy("directory", "user", &["view"])],
                default: true,
                backfilled: false,
            });
            self.roles.push(Role {
                id: uuid(),
                name: "Master Admin".to_owned(),
                description: "Every permission".to_owned(),
                permissions: Vec::new(),
                policies: vec![policy("*", "*", &["*"])],
                default: true,
                backfilled: false,
            });
        }
        if self.role_named(CLIENT_ROLE).is_none() {
            self.roles.push(Role {
                id: uuid(),
                name: CLIENT_ROLE.to_owned(),
                description: "The sandbox OAuth client's role (docs/genesys.md §2)".to_owned(),
                permissions: Vec::new(),
                policies: vec![
                    serde_json::json!({"domain": "directory", "entityName": "user",
                        "actionSet": ["add", "edit", "delete", "view"]}),
                    serde_json::json!({"domain": "directory", "entityName": "group",
                        "actionSet": ["add", "edit", "delete"]}),
                    serde_json::json!({"domain": "authorization", "entityName": "grant",
                        "actionSet": ["add", "delete", "view"]}),
                    serde_json::json!({"domain": "authorization", "entityName": "role",
                        "actionSet": ["view", "add", "edit", "delete"]}),
                    serde_json::json!({"domain": "routing", "entityName": "skill",
                        "actionSet": ["assign"]}),
                    serde_json::json!({"domain": "routing", "entityName": "language",
                        "actionSet": ["assign"]}),
                    serde_json::json!({"domain": "telephony", "entityName": "extension",
                        "actionSet": ["assign"]}),
                    serde_json::json!({"domain": "directory", "entityName": "user",
                        "actionSet": ["setPassword"]}),
                ],
                default: false,
                backfilled: false,
            });
        }
    }
}

/// The role of the sandbox's OAuth client.
const CLIENT_ROLE: &str = "scimctl";

/// A fresh UUID-shaped random id.
fn uuid() -> String {
    let n: u128 = rand::rng().random();
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The flavour's state; one per sandbox.
#[derive(Debug)]
pub(crate) struct Genesys {
    store: Arc<Store>,
    data: Mutex<Data>,
    /// Serializes writes, so the store and `data` change together.
    writes: Mutex<()>,
    /// Resources invisible until the instant given (read-after-write lag), by id.
    hidden: Mutex<HashMap<String, Instant>>,
    lag: Duration,
    /// DELETEs of each group answered without effect so far, by id.
    delete_misses: Mutex<HashMap<String, u32>>,
    /// How many DELETEs of each group to answer without effect.
    group_delete_misses: u32,
    /// Roles the authorization cache has not seen yet: `bulkadd` answers 404 until the
    /// instant given, by role id.
    fresh_roles: Mutex<HashMap<String, Instant>>,
    auth_cache_lag: Duration,
    /// Weak `ETag` headers beside bare versions (`GenesysOptions::weak_etags`).
    weak_etags: bool,
    /// `GenesysOptions::tokens_me_without_client`.
    tokens_me_without_client: bool,
    /// `http://host:port`.
    origin: String,
    client_id: String,
    /// Per-token request windows of a minute, announced in `inin-ratelimit-*` and enforced
    /// (no rate-limit fault set).
    windows: Mutex<HashMap<String, (Instant, u32)>>,
    /// Requests a minute per token before 429.
    requests_per_minute: u32,
    discovery: schemas::Discovery,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Genesys {
    /// The flavour over `store`, whose loaded `genesys` section (if any) it takes over.
    pub(crate) fn new(
        store: &Arc<Store>,
        options: &GenesysOptions,
        origin: &str,
        client_id: String,
    ) -> Self {
        let mut data: Data = store
            .extension()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        data.seed(&options.divisions);
        let genesys = Genesys {
            store: store.clone(),
            data: Mutex::new(data),
            writes: Mutex::new(()),
            hidden: Mutex::new(HashMap::new()),
            lag: options.read_lag,
            delete_misses: Mutex::new(HashMap::new()),
            group_delete_misses: options.group_delete_misses,
            fresh_roles: Mutex::new(HashMap::new()),
            auth_cache_lag: options.auth_cache_lag,
            weak_etags: options.weak_etags,
            tokens_me_without_client: options.tokens_me_without_client,
            origin: origin.to_owned(),
            client_id,
            windows: Mutex::new(HashMap::new()),
            requests_per_minute: options.requests_per_minute.max(1),
            discovery: schemas::Discovery::new(&format!("{origin}{SCIM_BASE}")),
        };
        genesys.save(&lock(&genesys.data));
        genesys
    }

    /// The `ETag` header of a resource at `version`: Genesys documents the quoted version
    /// (`"42"`); `weak_etags` makes it `W/"42"`.
    fn etag(&self, version: u64) -> String {
        if self.weak_etags {
            format!("W/\"{version}\"")
        } else {
            format!("\"{version}\"")
        }
    }

    /// `If-Match` against `version` (400 `invalidVers` unless it is `"version"`); with weak
    /// ETags on, the weak form the server itself sent is accepted too.
    fn check_version(
        &self,
        if_match: Option<&str>,
        version: u64,
    ) -> Result<(), super::error::ScimError> {
        let tag = if_match.map(|t| {
            let t = t.trim();
            if self.weak_etags {
                t.strip_prefix("W/").unwrap_or(t)
            } else {
                t
            }
        });
        wire::check_if_match(tag, version)
    }

    /// Puts `data` into the store's state-file section.
    fn save(&self, data: &Data) {
        if let Ok(value) = serde_json::to_value(data) {
            self.store.set_extension(value);
        }
    }

    /// Changes `data` and saves it.
    fn change<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        let mut data = lock(&self.data);
        let result = f(&mut data);
        self.save(&data);
        result
    }

    fn now(&self) -> String {
        self.store.now()
    }

    /// Hides `id` from reads for the configured lag.
    fn hide(&self, id: &str) {
        if !self.lag.is_zero() {
            lock(&self.hidden).insert(id.to_owned(), Instant::now() + self.lag);
        }
    }

    /// Whether `id` is still within its read-after-write lag.
    fn is_hidden(&self, id: &str) -> bool {
        let mut hidden = lock(&self.hidden);
        match hidden.get(id) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                hidden.remove(id);
                false
            }
            None => false,
        }
    }

    /// Starts the authorization-cache lag of a new role.
    fn note_new_role(&self, id: &str) {
        if !self.auth_cache_lag.is_zero() {
            lock(&self.fresh_roles).insert(id.to_owned(), Instant::now() + self.auth_cache_lag);
        }
    }

    /// Whether role `id` is still unknown to the authorization cache.
    fn is_fresh_role(&self, id: &str) -> bool {
        let mut fresh = lock(&self.fresh_roles);
        match fresh.get(id) {
            Some(until) if Instant::now() < *until => true,
            Some(_) => {
                fresh.remove(id);
                false
            }
            None => false,
        }
    }

    /// Whether this DELETE of group `id` is one to answer without effect (the asynchronous
    /// failure); counts it if so.
    fn misses_delete(&self, id: &str) -> bool {
        let mut misses = lock(&self.delete_misses);
        let count = misses.entry(id.to_owned()).or_insert(0);
        if *count < self.group_delete_misses {
            *count += 1;
            true
        } else {
            misses.remove(id);
            false
        }
    }

    /// A visible resource's stored entry.
    fn visible(&self, kind: ResourceKind, id: &str) -> Option<Arc<super::store::Entry>> {
        if self.is_hidden(id) {
            return None;
        }
        self.store.get_entry(kind, id)
    }

    /// `http://host:port/api/v2/scim/v2/{users|groups}/{id}`.
    fn location(&self, kind: ResourceKind, id: &str) -> String {
        let segment = match kind {
            ResourceKind::User => "users",
            ResourceKind::Group => "groups",
        };
        format!("{}{SCIM_BASE}/{segment}/{id}", self.origin)
    }

    /// A user's grants and licenses are gone with the user.
    fn forget_subject(&self, id: &str) {
        self.change(|data| {
            data.grants.retain(|g| g.subject != id);
            data.assignments.retain(|a| a.user != id);
        });
        lock(&self.hidden).remove(id);
    }
}
