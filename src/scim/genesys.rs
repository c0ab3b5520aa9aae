//! Genesys Cloud's side of the client layer: where its SCIM differs from RFC 7644 and where
//! the Platform API takes over (facts from docs/genesys.md; the section is named at each use).
//!
//! - Hosts: `https://api.<domain>` and `https://login.<domain>` per region (§1).
//! - Users are listed in two passes, active and then `active eq false`, since the default list
//!   holds active users only (§6), 25 per page: larger pages with the default attributes "may
//!   exceed internal resource limits and return a 429" (§7).
//! - Groups cannot be created or deleted over SCIM (§5): that goes through `/api/v2/groups`,
//!   as does a group's description, which SCIM groups lack. The SCIM v2 group list requires a
//!   filter in the swagger (§7), so groups are enumerated with the `/api/v2/scim/groups` list,
//!   whose filter is optional and whose payloads are the same SCIM 2.0 ones, and their
//!   descriptions with the Platform list.
//! - Member changes go out at most 50 members per request, the Platform API's documented limit
//!   (§5); whether SCIM PATCH has the same limit is UNCONFIRMED, so it gets it too.
//! - A new object can be invisible for a moment (§9, eventual consistency): a read or write of
//!   an object this client created that answers 404 is retried for a bounded time.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::client::{Capabilities, Created, Patched, Resource, ScimClient, resource_path};
use super::error::ScimError;
use super::platform::Entity;
use super::snapshot::list_all_at;
use super::wire::{self, PatchOpKind, PatchOperation};
use crate::backoff::Backoff;
use crate::model::Kind;
use crate::model::tenant::{GroupSettings, LiveGroup, LiveUser};

/// AWS region names and their Genesys Cloud domains (§1; the last one only in the Terraform
/// provider's table).
pub const REGIONS: &[(&str, &str)] = &[
    ("us-east-1", "mypurecloud.com"),
    ("us-east-2", "use2.us-gov-pure.cloud"),
    ("us-west-2", "usw2.pure.cloud"),
    ("ca-central-1", "cac1.pure.cloud"),
    ("sa-east-1", "sae1.pure.cloud"),
    ("mx-central-1", "mxc1.pure.cloud"),
    ("eu-west-1", "mypurecloud.ie"),
    ("eu-west-2", "euw2.pure.cloud"),
    ("eu-central-1", "mypurecloud.de"),
    ("eu-central-2", "euc2.pure.cloud"),
    ("me-central-1", "mec1.pure.cloud"),
    ("ap-south-1", "aps1.pure.cloud"),
    ("ap-southeast-1", "apse1.pure.cloud"),
    ("ap-southeast-2", "mypurecloud.com.au"),
    ("ap-northeast-1", "mypurecloud.jp"),
    ("ap-northeast-2", "apne2.pure.cloud"),
    ("ap-northeast-3", "apne3.pure.cloud"),
    ("eusc-de-east-1", "edee1.eusc-pure.cloud"),
];

/// Where the SCIM API lives under the API host.
pub const SCIM_PATH: &str = "/api/v2/scim/v2";
/// Where the token endpoint lives under the login host.
pub const TOKEN_PATH: &str = "/oauth/token";
/// The SCIM group list whose filter is optional (§1, "v1-ish" family, same payloads).
pub(super) const GROUP_LIST_PATH: &str = "/api/v2/scim/groups";
/// Platform API groups.
const PLATFORM_GROUPS: &str = "/api/v2/groups";
/// The default client-side limit: 300 requests a minute per client-credentials token (§9).
pub const REQUESTS_PER_MINUTE: u32 = 300;
/// Users and groups per SCIM page (§7).
pub const PAGE_SIZE: usize = 25;
/// Most member ids per membership change (§5).
pub const MEMBER_CHUNK: usize = 50;
/// How long after creating an object a 404 for it is taken for eventual consistency. The
/// Terraform provider waits up to 5 minutes (§9); a minute keeps a run from hanging on an
/// object that really is gone.
pub const SETTLE_WINDOW: Duration = Duration::from_secs(60);
/// How long after a group DELETE the group is read to confirm it is gone (Genesys deletes
/// asynchronously, §5; the Terraform provider polls for up to a minute).
pub const DELETE_CHECK_DELAY: Duration = Duration::from_secs(1);
/// Tries of a Platform write that meets a version mismatch (someone else changed the group).
const VERSION_ATTEMPTS: u32 = 5;

/// The API and login base URLs of a region, given as a domain (`mypurecloud.com`,
/// `euw2.pure.cloud`) or an AWS region name (`eu-west-2`), or `None` for an unknown one.
#[must_use]
pub fn region_hosts(region: &str) -> Option<(String, String)> {
    let region = region.trim().trim_end_matches('/').to_ascii_lowercase();
    let domain = REGIONS
        .iter()
        .find(|(aws, domain)| *aws == region || *domain == region)
        .map(|(_, d)| *d)?;
    Some((
        format!("https://api.{domain}"),
        format!("https://login.{domain}"),
    ))
}

/// A Platform API group: every field a `GroupUpdate` carries, so that a PUT can send each
/// one back (a PUT may reset what it omits, §5).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlatformGroup {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    visibility: Option<String>,
    #[serde(default)]
    rules_visible: Option<bool>,
    #[serde(default)]
    roles_enabled: Option<bool>,
    #[serde(default)]
    calls_enabled: Option<bool>,
    #[serde(default)]
    include_owners: Option<bool>,
    /// Users (`{id, …}`); a PUT names them as `ownerIds`.
    #[serde(default)]
    owners: Option<Vec<Value>>,
    #[serde(default)]
    addresses: Option<Vec<Value>>,
    #[serde(default)]
    images: Option<Vec<Value>>,
    #[serde(default)]
    version: Option<Value>,
}

/// The Platform-only fields scimctl manages on a group, as a PATCH names them (the
/// `GroupUpdate` names): they go out in a Platform PUT, never over SCIM.
const PLATFORM_FIELDS: [&str; 8] = [
    "description",
    "type",
    "visibility",
    "rulesVisible",
    "rolesEnabled",
    "callsEnabled",
    "includeOwners",
    "ownerIds",
];

/// Whether a PATCH operation is on a Platform-only field.
fn is_platform_field(op: &PatchOperation) -> bool {
    op.path
        .as_deref()
        .is_some_and(|p| PLATFORM_FIELDS.iter().any(|f| p.eq_ignore_ascii_case(f)))
}

impl PlatformGroup {
    /// The group's settings as the planner reads them (owners by user id).
    fn settings(&self) -> GroupSettings {
        GroupSettings {
            kind: self.kind.clone(),
            visibility: self.visibility.clone(),
            rules_visible: self.rules_visible,
            roles_enabled: self.roles_enabled,
            calls_enabled: self.calls_enabled,
            include_owners: self.include_owners,
            owner_ids: Some(self.owner_ids()),
        }
    }

    fn owner_ids(&self) -> Vec<String> {
        self.owners
            .iter()
            .flatten()
            .filter_map(|o| o.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect()
    }

    /// The `GroupUpdate` body that changes only what `changes` names (by `GroupUpdate`
    /// field; a `null` description removes it): every other field as read, so that a PUT,
    /// which may reset what it omits (§5), resets nothing YAML leaves out. A field the read
    /// did not return is left out rather than guessed. `type` is never sent: `GroupUpdate`
    /// has no such field (PY GroupUpdate.md), a group's type is fixed at its create.
    fn update_body(&self, changes: &Map<String, Value>) -> Value {
        let mut body = json!({
            "name": self.name,
            "description": self.description,
            "version": self.version,
        });
        let optional = [
            ("visibility", self.visibility.clone().map(Value::String)),
            ("rulesVisible", self.rules_visible.map(Value::Bool)),
            ("rolesEnabled", self.roles_enabled.map(Value::Bool)),
            ("callsEnabled", self.calls_enabled.map(Value::Bool)),
            ("includeOwners", self.include_owners.map(Value::Bool)),
            (
                "ownerIds",
                self.owners.as_ref().map(|owners| {
                    owners
                        .iter()
                        .filter_map(|o| o.get("id").cloned())
                        .collect::<Value>()
                }),
            ),
            ("addresses", self.addresses.clone().map(Value::Array)),
            ("images", self.images.clone().map(Value::Array)),
        ];
        if let Some(object) = body.as_object_mut() {
            for (key, value) in optional {
                if let Some(value) = value {
                    object.insert(key.to_owned(), value);
                }
            }
            for (key, value) in changes.iter().filter(|(k, _)| k.as_str() != "type") {
                object.insert(key.clone(), value.clone());
            }
        }
        body
    }
}

impl Entity for PlatformGroup {
    fn entity_id(&self) -> &str {
        &self.id
    }
}

/// A Platform version mismatch: 409, or 400 "does not match the current version" (§5, §8).
fn is_version_mismatch(e: &ScimError) -> bool {
    e.is_conflict()
        || (e.status().is_some_and(|s| s.as_u16() == 400)
            && e.to_string().contains("does not match the current version"))
}

/// A create refused because the name is taken: 409, or a `general.conflict` code (§10).
fn is_name_taken(e: &ScimError) -> bool {
    e.is_conflict() || e.to_string().contains("general.conflict")
}

/// Every user: the active ones, then the inactive ones (`active eq false`). A user that
/// changed state between the two reads is kept once, as the second read saw it.
pub(super) async fn list_users(
    client: &ScimClient,
    caps: &Capabilities,
) -> Result<Vec<LiveUser>, ScimError> {
    let endpoint = client.endpoint(Kind::User);
    let active = list_all_at::<LiveUser>(client, endpoint, None, caps.page_size).await?;
    let inactive =
        list_all_at::<LiveUser>(client, endpoint, Some("active eq false"), caps.page_size).await?;
    let (active, inactive) = if client.external_id_authority().is_some() {
        let view = |users: Vec<LiveUser>| -> Result<Vec<LiveUser>, ScimError> {
            users
                .into_iter()
                .map(|u| client.authority_view(u))
                .collect()
        };
        (view(active)?, view(inactive)?)
    } else {
        (active, inactive)
    };
    let mut index: HashMap<String, usize> = HashMap::with_capacity(active.len() + inactive.len());
    let mut all = Vec::with_capacity(active.len() + inactive.len());
    for user in active.into_iter().chain(inactive) {
        let id = user.id().unwrap_or_default().to_owned();
        if let Some(&at) = index.get(&id) {
            all[at] = user;
        } else {
            index.insert(id, all.len());
            all.push(user);
        }
    }
    Ok(all)
}

/// Every group: the SCIM list without a filter (members, `externalId`, version) joined by id
/// with the Platform list (description and settings).
pub(super) async fn list_groups(
    client: &ScimClient,
    caps: &Capabilities,
) -> Result<Vec<LiveGroup>, ScimError> {
    let (scim, platform) = tokio::join!(
        list_all_at::<LiveGroup>(client, GROUP_LIST_PATH, None, caps.page_size),
        client.platform_list::<PlatformGroup>(PLATFORM_GROUPS, &[])
    );
    let platform: HashMap<String, PlatformGroup> =
        platform?.into_iter().map(|g| (g.id.clone(), g)).collect();
    scim?
        .into_iter()
        .map(|group| match group.id().and_then(|id| platform.get(id)) {
            None => Ok(group),
            Some(found) => with_platform(&group, found),
        })
        .collect()
}

/// `resource` with the Platform group's description (set, or removed when it has none) and
/// settings, under their `GroupUpdate` names.
fn with_platform<R: Resource>(resource: &R, platform: &PlatformGroup) -> Result<R, ScimError> {
    let mut value = serde_json::to_value(resource).map_err(|e| encode_error(&e))?;
    let settings = serde_json::to_value(platform.settings()).map_err(|e| encode_error(&e))?;
    if let Some(object) = value.as_object_mut() {
        // `meta` is not serialised (it is read-only): carry the version over, or the next
        // write of this group would have no `If-Match` to send.
        if let Some(version) = resource.version() {
            object.insert("meta".into(), json!({ "version": version }));
        }
        match platform.description.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => object.insert("description".into(), Value::from(d)),
            None => object.remove("description"),
        };
        if let Value::Object(settings) = settings {
            object.extend(settings);
        }
    }
    serde_json::from_value(value).map_err(|e| encode_error(&e))
}

fn encode_error(e: &serde_json::Error) -> ScimError {
    ScimError::Config(format!("re-encoding a group: {e}"))
}

impl ScimClient {
    /// Remembers that this client created `id`, so that a 404 for it soon after is retried.
    pub(super) fn note_created(&self, id: &str) {
        let mut ids = self.created_ids();
        // A long-running watch keeps one client: forget what is past the window.
        ids.retain(|_, at| at.elapsed() < SETTLE_WINDOW);
        ids.insert(id.to_owned(), tokio::time::Instant::now());
    }

    /// Whether `id` was created by this client within [`SETTLE_WINDOW`].
    pub(super) fn settling(&self, id: &str) -> bool {
        self.created_ids()
            .get(id)
            .is_some_and(|at| at.elapsed() < SETTLE_WINDOW)
    }

    /// Runs `call` on object `id`, again (with backoff) while it answers 404 and the object
    /// is one this client created moments ago.
    pub(super) async fn settle<T, F, Fut>(&self, id: &str, mut call: F) -> Result<T, ScimError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ScimError>>,
    {
        let backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(4));
        let mut misses = 0;
        loop {
            match call().await {
                Err(e) if e.is_not_found() && self.settling(id) => {
                    misses += 1;
                    // Unjittered: waiting on this client's own new object, not competing
                    // with other clients, and the settle window is measured against it.
                    let wait = backoff.ceiling(misses);
                    tracing::debug!(
                        id,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "not visible yet; reading again"
                    );
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Creates a group through the Platform API with the settings YAML writes, then sets what
    /// SCIM holds (`externalId`, members) and the description (a PUT, since a create drops
    /// it), and reads it back. A name already taken adopts that group, as an unknown outcome
    /// does once the group is found by name; the adopted group's settings are then the
    /// next plan's business.
    pub(super) async fn genesys_create_group<R: Resource>(
        &self,
        resource: &R,
    ) -> Result<Created<R>, ScimError> {
        let value = serde_json::to_value(resource).map_err(|e| encode_error(&e))?;
        let name = resource.natural_key();
        // `official` groups are the ones SCIM and the admin UI manage; `social` ones belong
        // to people. Public visibility matches what the admin UI creates by default.
        // `rulesVisible` is required by `GroupCreate`, and `true` is what the Terraform
        // provider and Genesys's own installers send. The description is not sent: the API
        // drops it on create, so a PUT sets it below (§5).
        let mut body = json!({
            "name": name,
            "type": "official",
            "visibility": "public",
            "rulesVisible": true,
        });
        // Settings YAML writes replace those defaults. `GroupCreate` takes the three flags
        // and `ownerIds` too [PY GroupCreate.md, genesys-audit.md §4]; whether a real create
        // applies every one of them is UNCONFIRMED, and the next plan would show any it
        // dropped.
        if let (Some(body), Some(given)) = (body.as_object_mut(), value.as_object()) {
            for field in PLATFORM_FIELDS.iter().filter(|f| **f != "description") {
                if let Some(v) = given.get(*field).filter(|v| !v.is_null()) {
                    body.insert((*field).to_owned(), v.clone());
                }
            }
        }
        let mut lookups = 0;
        let (id, recovered) = loop {
            match self
                .platform_json::<PlatformGroup, _>(
                    Method::POST,
                    PLATFORM_GROUPS,
                    &[],
                    Some(&body),
                    false,
                )
                .await
            {
                Ok(group) => break (group.id, false),
                Err(e) if is_name_taken(&e) || e.is_ambiguous() => {
                    let found = self.find_by_key::<wire::Group>(name).await?;
                    if let Some(id) = found.as_ref().and_then(|g| g.id.clone()) {
                        break (id, true);
                    }
                    if !e.is_ambiguous() || lookups >= self.retry_policy().max_attempts {
                        return Err(e);
                    }
                    lookups += 1;
                    self.spend_retry(e)?;
                }
                Err(e) => return Err(e),
            }
        };
        self.note_created(&id);
        let mut ops = Vec::new();
        if let Some(external) = value.get("externalId").filter(|v| !v.is_null()) {
            ops.push(PatchOperation {
                op: PatchOpKind::Replace,
                path: Some("externalId".into()),
                value: Some(external.clone()),
            });
        }
        if let Some(members) = value
            .get("members")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
        {
            ops.push(PatchOperation {
                op: PatchOpKind::Add,
                path: Some("members".into()),
                value: Some(Value::Array(members.clone())),
            });
        }
        if !ops.is_empty() {
            self.genesys_patch_group::<wire::Group>(&id, None, &ops)
                .await?;
        }
        if let Some(description) = value
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            let changes = Map::from_iter([("description".to_owned(), Value::from(description))]);
            self.put_platform_group(&id, &changes).await?;
        }
        let resource = self.genesys_get_group::<R>(&id).await?;
        Ok(Created {
            resource,
            recovered,
        })
    }

    /// A group as SCIM has it, with its description and settings from the Platform API.
    pub(super) async fn genesys_get_group<R: Resource>(&self, id: &str) -> Result<R, ScimError> {
        let scim: R = self.settle(id, || self.scim_get::<R>(id)).await?;
        let platform = self.platform_group(id).await?;
        with_platform(&scim, &platform)
    }

    async fn platform_group(&self, id: &str) -> Result<PlatformGroup, ScimError> {
        let path = resource_path(PLATFORM_GROUPS, id);
        self.settle(id, || {
            self.platform_json::<PlatformGroup, ()>(Method::GET, &path, &[], None, true)
        })
        .await
    }

    /// Deletes a group through the Platform API (SCIM has no group DELETE, §5). Genesys
    /// answers the DELETE at once and can fail afterwards, so the group is read again after
    /// [`DELETE_CHECK_DELAY`]; one still there is deleted once more and checked again, as the
    /// Terraform provider does, and one there after that is an error.
    pub(super) async fn genesys_delete_group(&self, id: &str) -> Result<(), ScimError> {
        let path = resource_path(PLATFORM_GROUPS, id);
        for attempt in 1..=2 {
            match self
                .platform_send::<()>(Method::DELETE, &path, &[], None, true)
                .await
            {
                Ok(_) => {}
                // Gone already: the previous attempt took effect late.
                Err(e) if e.is_not_found() && attempt > 1 => return Ok(()),
                Err(e) => return Err(e),
            }
            tokio::time::sleep(DELETE_CHECK_DELAY).await;
            match self
                .platform_send::<()>(Method::GET, &path, &[], None, true)
                .await
            {
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => tracing::debug!(id, attempt, "group still there after its delete"),
            }
        }
        Err(ScimError::Config(format!(
            "group {id} is still there after two deletes that were answered as done; Genesys \
             deletes groups asynchronously and this one failed: delete it in the admin UI or \
             run again"
        )))
    }

    /// Sends a group PATCH the Genesys way: the description and settings through one
    /// Platform API PUT, everything else over SCIM with at most [`MEMBER_CHUNK`] members per
    /// request, each request carrying the version the previous one left.
    pub(super) async fn genesys_patch_group<R: Resource>(
        &self,
        id: &str,
        version: Option<&str>,
        operations: &[PatchOperation],
    ) -> Result<Patched<R>, ScimError> {
        let (platform, scim): (Vec<&PatchOperation>, Vec<&PatchOperation>) =
            operations.iter().partition(|op| is_platform_field(op));
        let mut version = version.map(str::to_owned);
        let mut last = None;
        for batch in member_batches(&scim) {
            let patched: Patched<R> = self
                .settle(id, || self.scim_patch::<R>(id, version.as_deref(), &batch))
                .await?;
            let had = version.is_some();
            version = patched.version.clone().or_else(|| {
                patched
                    .resource
                    .as_ref()
                    .and_then(|r| r.version().map(str::to_owned))
            });
            if had && version.is_none() {
                // The answer named no version: the next batch must not go without one.
                let group: R = self.scim_get(id).await?;
                version = Some(group.version().map(str::to_owned).ok_or_else(|| {
                    ScimError::Config(format!(
                        "group {id} was read back without a version; the rest of its member \
                         changes are not sent without If-Match"
                    ))
                })?);
            }
            last = Some(patched);
        }
        if !platform.is_empty() {
            self.put_platform_group(id, &platform_changes(&platform))
                .await?;
            // The Platform write moved the version; read the group back whole.
            let resource: R = self.genesys_get_group(id).await?;
            return Ok(Patched {
                version: resource.version().map(str::to_owned),
                resource: Some(resource),
            });
        }
        Ok(last.unwrap_or(Patched {
            version,
            resource: None,
        }))
    }

    /// Changes a group's Platform fields (`changes`, by `GroupUpdate` name) with a PUT of
    /// the whole group as read, at its current version, reading again when someone else
    /// moved it in between.
    async fn put_platform_group(
        &self,
        id: &str,
        changes: &Map<String, Value>,
    ) -> Result<(), ScimError> {
        let path = resource_path(PLATFORM_GROUPS, id);
        let mut attempt = 1;
        loop {
            let group = self.platform_group(id).await?;
            let body = group.update_body(changes);
            match self
                .platform_send(Method::PUT, &path, &[], Some(&body), true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_version_mismatch(&e) && attempt < VERSION_ATTEMPTS => {
                    tracing::debug!(id, attempt, "group version moved; reading it again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The user with `userName` `key`: looked for among active users, then among inactive
    /// ones, since a filter without `active` sees active users only (§6). Whether the server
    /// takes the `and` form and quoted values is UNCONFIRMED; the documented examples are
    /// unquoted single comparisons.
    pub(super) async fn genesys_find_user<R: Resource>(
        &self,
        key: &str,
    ) -> Result<Option<R>, ScimError> {
        let literal = wire::filter_literal(key);
        for filter in [
            format!("userName eq {literal}"),
            format!("userName eq {literal} and active eq false"),
        ] {
            let page = self.list_page::<R>(1, 10, Some(&filter)).await?;
            if let Some(found) = page
                .resources
                .into_iter()
                .find(|r| r.natural_key().eq_ignore_ascii_case(key))
            {
                return self.authority_view(found).map(Some);
            }
        }
        Ok(None)
    }
}

/// The Platform fields PATCH operations change, by `GroupUpdate` name (the last operation on
/// a field wins; a removed description is `null`, a removed setting is left as it is).
fn platform_changes(ops: &[&PatchOperation]) -> Map<String, Value> {
    let mut changes = Map::new();
    for op in ops {
        let Some(field) = op
            .path
            .as_deref()
            .and_then(|p| PLATFORM_FIELDS.iter().find(|f| p.eq_ignore_ascii_case(f)))
        else {
            continue;
        };
        match (op.op, &op.value) {
            (PatchOpKind::Remove, _) | (_, None) if *field == "description" => {
                changes.insert((*field).to_owned(), Value::Null);
            }
            (PatchOpKind::Remove, _) | (_, None) => {}
            (_, Some(value)) => {
                changes.insert((*field).to_owned(), value.clone());
            }
        }
    }
    changes
}

/// Splits PATCH operations so that no request adds or removes more than [`MEMBER_CHUNK`]
/// members; other operations ride in the first request. Never empty when `ops` is not.
fn member_batches(ops: &[&PatchOperation]) -> Vec<Vec<PatchOperation>> {
    let is_members = |op: &PatchOperation| {
        op.path
            .as_deref()
            .is_some_and(|p| p.len() >= 7 && p[..7].eq_ignore_ascii_case("members"))
    };
    let mut batches: Vec<Vec<PatchOperation>> = vec![Vec::new()];
    let mut room = MEMBER_CHUNK;
    let mut push = |op: PatchOperation, weight: usize, batches: &mut Vec<Vec<PatchOperation>>| {
        if weight > room {
            batches.push(Vec::new());
            room = MEMBER_CHUNK;
        }
        room -= weight.min(room);
        if let Some(b) = batches.last_mut() {
            b.push(op);
        }
    };
    for op in ops.iter().filter(|op| !is_members(op)) {
        batches[0].push((*op).clone());
    }
    for op in ops.iter().filter(|op| is_members(op)) {
        match (op.op, op.value.as_ref().and_then(Value::as_array)) {
            (PatchOpKind::Add | PatchOpKind::Replace, Some(values)) if values.len() > 1 => {
                for chunk in values.chunks(MEMBER_CHUNK) {
                    let part = PatchOperation {
                        op: op.op,
                        path: op.path.clone(),
                        value: Some(Value::Array(chunk.to_vec())),
                    };
                    push(part, chunk.len(), &mut batches);
                }
            }
            _ => push((*op).clone(), 1, &mut batches),
        }
    }
    batches.retain(|b| !b.is_empty());
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Domains and AWS names both find a region; hosts follow the SDKs' api./login. rule.
    #[test]
    fn regions() {
        assert_eq!(
            region_hosts("euw2.pure.cloud"),
            Some((
                "https://api.euw2.pure.cloud".into(),
                "https://login.euw2.pure.cloud".into()
            ))
        );
        assert_eq!(region_hosts("us-east-1"), region_hosts("mypurecloud.com"));
        assert_eq!(region_hosts("MyPureCloud.DE"), region_hosts("eu-central-1"));
        assert!(region_hosts("scim.mypurecloud.com").is_none());
        assert_eq!(REGIONS.len(), 18);
    }

    /// A PUT changes what the PATCH names and sends every other field as read, so a
    /// server that resets what a PUT omits resets nothing; a removed description is `null`,
    /// and a removed setting is not sent as a change at all.
    #[test]
    fn update_body_keeps_undeclared_fields() {
        let read: PlatformGroup = serde_json::from_value(json!({
            "id": "g1", "name": "Support", "description": "Queue", "type": "official",
            "visibility": "public", "rulesVisible": true, "rolesEnabled": true,
            "callsEnabled": false, "includeOwners": true,
            "owners": [{"id": "u1", "selfUri": "/api/v2/users/u1"}],
            "addresses": [{"address": "3001", "mediaType": "PHONE"}], "version": 7
        }))
        .expect("a Platform group");
        let set = |path: &str, value: Option<Value>| PatchOperation {
            op: if value.is_some() {
                PatchOpKind::Replace
            } else {
                PatchOpKind::Remove
            },
            path: Some(path.into()),
            value,
        };
        let ops = [
            set("visibility", Some(json!("members"))),
            set("ownerIds", Some(json!(["u2"]))),
            set("rolesEnabled", None),
        ];
        let refs: Vec<&PatchOperation> = ops.iter().collect();
        let body = read.update_body(&platform_changes(&refs));
        assert_eq!(
            body,
            json!({
                "name": "Support", "description": "Queue",
                "visibility": "members", "rulesVisible": true, "rolesEnabled": true,
                "callsEnabled": false, "includeOwners": true, "ownerIds": ["u2"],
                "addresses": [{"address": "3001", "mediaType": "PHONE"}], "version": 7
            })
        );
        let gone = [set("description", None)];
        let refs: Vec<&PatchOperation> = gone.iter().collect();
        let body = read.update_body(&platform_changes(&refs));
        assert_eq!(body["description"], Value::Null);
        assert_eq!(body["ownerIds"], json!(["u1"]), "owners as read");
        assert!(refs.iter().all(|op| is_platform_field(op)));
        assert!(!is_platform_field(&set("members", Some(json!([])))));
    }

    fn add(n: usize) -> PatchOperation {
        PatchOperation {
            op: PatchOpKind::Add,
            path: Some("members".into()),
            value: Some(Value::Array(
                (0..n).map(|i| json!({"value": i.to_string()})).collect(),
            )),
        }
    }

    fn remove(id: &str) -> PatchOperation {
        PatchOperation {
            op: PatchOpKind::Remove,
            path: Some(format!("members[value eq \"{id}\"]")),
            value: None,
        }
    }

    fn weight(batch: &[PatchOperation]) -> usize {
        batch
            .iter()
            .filter(|o| o.path.as_deref().is_some_and(|p| p.starts_with("members")))
            .map(|o| {
                o.value
                    .as_ref()
                    .and_then(Value::as_array)
                    .map_or(1, Vec::len)
            })
            .sum()
    }

    /// 120 adds and 30 removes go out as batches of at most 50 members, nothing lost, and
    /// a non-member operation rides in the first.
    #[test]
    fn member_changes_are_chunked() {
        let external = PatchOperation {
            op: PatchOpKind::Replace,
            path: Some("externalId".into()),
            value: Some(json!("x")),
        };
        let removes: Vec<PatchOperation> = (0..30).map(|i| remove(&format!("r{i}"))).collect();
        let big = add(120);
        let mut ops: Vec<&PatchOperation> = vec![&external, &big];
        ops.extend(removes.iter());
        let batches = member_batches(&ops);
        assert!(
            batches.iter().all(|b| weight(b) <= MEMBER_CHUNK),
            "{batches:?}"
        );
        assert_eq!(batches.iter().map(|b| weight(b)).sum::<usize>(), 150);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0][0].path.as_deref(), Some("externalId"));
        assert!(member_batches(&[]).is_empty());
        let small = add(3);
        assert_eq!(member_batches(&[&small]).len(), 1);
    }
}
