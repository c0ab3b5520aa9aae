//! `scimctl doctor`: read-only checks of a target, printed as a checklist, so that an
//! operator can confirm on their own org what docs/genesys.md marks UNCONFIRMED (page-size
//! limits, rate-limit headers, what the OAuth client may do, which divisions it sees)
//! before anything is written.
//!
//! Every request here is a GET (and the token request). A check that cannot be made says
//! why and is skipped; a failed token stops the rest, which would all fail the same way.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::DesiredState;
use crate::model::tenant::LiveUser;
use crate::plan::roles::live_permissions;
use crate::scim::{Dialect, PlatformRole, ScimClient, ScimError};

mod licenses;
mod probes;

pub use probes::{Probe, ProbeStatus};

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As scimctl needs it.
    Pass,
    /// Works, with something to know or fix.
    Warn,
    /// scimctl cannot work this way.
    Fail,
    /// Not checked (it needed something that failed, or does not apply).
    Skip,
}

impl Status {
    /// The mark printed before the check.
    #[must_use]
    pub fn mark(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the checklist.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was seen, and what to do when it is not a pass.
    pub detail: String,
    /// The permissions the OAuth client's role lacks for this check, when that is why it
    /// did not pass (named in `detail` too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub needed_permissions: Vec<String>,
}

/// `doctor --format json`: the checklist, versioned (`schemas/doctor.schema.json`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Document<'a> {
    /// Format version, 1.
    pub version: u32,
    /// The target, as plans name it.
    pub target: &'a str,
    /// The checks, in the order made.
    pub checks: &'a [Check],
    /// The probes of what the public Genesys material leaves open (Genesys targets only).
    pub probes: &'a [Probe],
    /// Whether any check failed (the exit status is then 1).
    pub failed: bool,
}

/// The whole checklist.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Report {
    /// The target, as plans name it.
    pub target: String,
    /// The checks, in the order made.
    pub checks: Vec<Check>,
    /// The probes of what the public Genesys material leaves open (Genesys targets only).
    pub probes: Vec<Probe>,
}

impl Report {
    /// Whether any check failed.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    fn push(&mut self, name: &'static str, status: Status, detail: impl Into<String>) {
        self.push_needing(name, status, detail, Vec::new());
    }

    fn push_needing(
        &mut self,
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        needed_permissions: Vec<String>,
    ) {
        self.checks.push(Check {
            name,
            status,
            detail: detail.into(),
            needed_permissions,
        });
    }

    /// The report as `doctor --format json` prints it (docs/genesys.md, "doctor", documents the shape).
    #[must_use]
    pub fn json(&self) -> Document<'_> {
        Document {
            version: 1,
            target: &self.target,
            checks: &self.checks,
            probes: &self.probes,
            failed: self.failed(),
        }
    }

    /// The checklist for a terminal: one line per check.
    #[must_use]
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = format!("doctor: {}\n", self.target);
        for c in &self.checks {
            let _ = writeln!(
                out,
                "  [{:<4}] {:<width$}  {}",
                c.status.mark(),
                c.name,
                c.detail
            );
        }
        if !self.probes.is_empty() {
            let pwidth = self.probes.iter().map(|p| p.name.len()).max().unwrap_or(0);
            out.push_str("probes (what the public Genesys docs leave open; send these back):\n");
            for p in &self.probes {
                let _ = writeln!(
                    out,
                    "  [{:<12}] {:<pwidth$}  {}",
                    p.status.mark(),
                    p.name,
                    p.detail
                );
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} passed, {} warnings, {} failed, {} skipped",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip)
        );
        out
    }
}

/// The permissions scimctl's writes need on Genesys Cloud (docs/genesys.md §2), for what
/// `desired` manages.
#[must_use]
pub fn needed_permissions(desired: &DesiredState) -> BTreeSet<&'static str> {
    let mut needed: BTreeSet<&'static str> = [
        "directory:user:add",
        "directory:user:edit",
        "directory:user:delete",
        "directory:user:view",
        "directory:group:add",
        "directory:group:edit",
        "directory:group:delete",
        "authorization:grant:add",
        "authorization:grant:delete",
        "authorization:grant:view",
        "authorization:role:view",
    ]
    .into_iter()
    .collect();
    if desired.roles.iter().any(|r| r.permissions.is_some()) {
        needed.extend([
            "authorization:role:add",
            "authorization:role:edit",
            "authorization:role:delete",
        ]);
    }
    if desired.users.iter().any(|u| u.routing_skills.is_some()) {
        needed.insert("routing:skill:assign");
    }
    if desired.users.iter().any(|u| u.routing_languages.is_some()) {
        needed.insert("routing:language:assign");
    }
    // PATCH and PUT of users list both [PY SCIMApi.md]; an extension is a phone number
    // with `;ext=` (tel URI, RFC 3966).
    if desired.users.iter().any(|u| {
        u.phone_numbers
            .iter()
            .flatten()
            .any(|p| sets_extension(p.value.value.as_str()))
    }) {
        needed.insert("telephony:extension:assign");
    }
    if desired.users.iter().any(|u| u.password.is_some()) {
        needed.insert("directory:user:setPassword");
    }
    needed
}

/// Whether a phone number value carries an extension (`tel:+1-415-555-0123;ext=12`).
fn sets_extension(value: &str) -> bool {
    value.to_ascii_lowercase().contains(";ext=")
}

/// Whether `held` (a `domain:entity:action` permission, any segment `*`) covers `wanted`.
fn covers(held: &str, wanted: &str) -> bool {
    if held == "*" {
        return true;
    }
    let mut h = held.split(':');
    let mut w = wanted.split(':');
    loop {
        match (h.next(), w.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == "*" || a.eq_ignore_ascii_case(b) => {}
            _ => return false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OAuthClientInfo {
    #[serde(default)]
    role_divisions: Vec<RoleDivision>,
}

/// `TokenInfo` of `/api/v2/tokens/me`: only the client is read. The swagger key is
/// `OAuthClient`; SDK docs also show `oAuthClient` (UNCONFIRMED which is on the wire), so
/// both are read.
#[derive(Debug, Deserialize)]
struct TokenInfo {
    #[serde(default, rename = "OAuthClient", alias = "oAuthClient")]
    oauth_client: Option<OAuthClientInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleDivision {
    role_id: String,
    #[serde(default)]
    division_id: String,
}

/// A page total, read from a SCIM list or a Platform list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Totals {
    #[serde(default, alias = "totalResults")]
    total: Option<u64>,
    #[serde(default)]
    items_per_page: Option<u64>,
    #[serde(default, rename = "Resources")]
    resources: Vec<Value>,
}

/// Why a read failed, in one line, with the permission it needs on a 403 (`None`: the
/// call needs no permission, so a 403 has another cause).
fn failure(e: &ScimError, permission: Option<&str>) -> String {
    match (e.status().map(|s| s.as_u16()), permission) {
        (Some(403), Some(p)) => format!("403 forbidden: the OAuth client's role needs {p}"),
        (Some(403), None) => {
            format!("403 forbidden, although this call needs no permission (Genesys API docs): {e}")
        }
        _ => e.to_string(),
    }
}

/// The permission a failed read names, for the JSON report: only when it was refused.
fn needing(e: &ScimError, permission: &str) -> Vec<String> {
    if e.status().map(|s| s.as_u16()) == Some(403) {
        vec![permission.to_owned()]
    } else {
        Vec::new()
    }
}

/// Runs every check against `client`. `desired` says what scimctl will manage (which
/// permissions and divisions matter). `made` counts the checks and probes made so far, for
/// a progress display.
pub async fn run(
    client: &ScimClient,
    target: &str,
    desired: &DesiredState,
    made: &AtomicUsize,
) -> Report {
    let mut report = Report {
        target: target.to_owned(),
        checks: Vec::new(),
        probes: Vec::new(),
    };
    match client.capabilities().await {
        Err(e) => {
            let name = if matches!(e, ScimError::Auth { .. }) {
                "token"
            } else {
                "connection"
            };
            report.push(name, Status::Fail, e.to_string());
            return report;
        }
        Ok(caps) => {
            if client.stats().tokens_fetched > 0 {
                report.push(
                    "token",
                    Status::Pass,
                    "OAuth client credentials accepted (HTTP Basic at the token endpoint)",
                );
            }
            let status = if caps.discovered && caps.patch {
                Status::Pass
            } else {
                Status::Warn
            };
            report.push(
                "serviceproviderconfig",
                status,
                format!(
                    "patch {}, etag {}, bulk {}, sort {}, filter {}, page size used {}{}{}",
                    yes(caps.patch),
                    yes(caps.etag),
                    yes(caps.bulk),
                    yes(caps.sort),
                    yes(caps.filter),
                    caps.page_size,
                    if caps.filter || !caps.discovered {
                        ""
                    } else {
                        " (lookups by name list and match locally, which costs a full listing each)"
                    },
                    if caps.discovered {
                        ""
                    } else {
                        " (no usable config: defaults assumed)"
                    }
                ),
            );
        }
    }
    let count = |report: &Report| made.store(report.checks.len(), Ordering::Relaxed);
    count(&report);
    schemas(client, &mut report).await;
    count(&report);
    users(client, &mut report).await;
    count(&report);
    if client.dialect() == Dialect::Genesys {
        genesys(client, desired, &mut report).await;
        count(&report);
        report.probes = probes::run(client).await;
        made.store(report.checks.len() + report.probes.len(), Ordering::Relaxed);
    }
    let stats = client.stats();
    match stats.server_limit {
        Some(limit) => report.push(
            "rate limit",
            Status::Pass,
            format!(
                "inin-ratelimit headers seen: {} of {} used, window resets in {} s; scimctl sends at most {} a minute",
                limit.count,
                limit.allowed,
                limit.reset_secs,
                client.requests_per_minute().map_or_else(|| "unlimited".into(), |n| n.to_string())
            ),
        ),
        None if client.dialect() == Dialect::Genesys => report.push(
            "rate limit",
            Status::Warn,
            "no inin-ratelimit-* headers were seen; the 300/min default limit is assumed",
        ),
        None => {}
    }
    report
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

async fn schemas(client: &ScimClient, report: &mut Report) {
    use crate::scim::wire::{ENTERPRISE_SCHEMA, GENESYS_SCHEMA};
    match client.schemas().await {
        Ok(Some(list)) => {
            let has = |urn: &str| list.iter().any(|s| s.id.eq_ignore_ascii_case(urn));
            let mut missing = Vec::new();
            if !has(ENTERPRISE_SCHEMA) {
                missing.push("enterprise User extension");
            }
            if client.dialect() == Dialect::Genesys && !has(GENESYS_SCHEMA) {
                missing.push("Genesys User extension");
            }
            let status = if missing.is_empty() {
                Status::Pass
            } else {
                Status::Warn
            };
            let mut detail = format!("{} schemas published", list.len());
            if !missing.is_empty() {
                let _ = write!(
                    detail,
                    "; missing: {} (its attributes are not written)",
                    missing.join(", ")
                );
            }
            report.push("schemas", status, detail);
        }
        Ok(None) => report.push(
            "schemas",
            Status::Warn,
            "none published: every attribute is assumed supported",
        ),
        Err(e) => report.push("schemas", Status::Fail, e.to_string()),
    }
}

async fn users(client: &ScimClient, report: &mut Report) {
    let size = client.capabilities().await.map_or(25, |c| c.page_size);
    let active = client.list_page::<LiveUser>(1, size, None).await;
    let inactive = if client.dialect() == Dialect::Genesys {
        Some(
            client
                .list_page::<LiveUser>(1, 1, Some("active eq false"))
                .await,
        )
    } else {
        None
    };
    match (active, inactive) {
        (Err(e), _) | (_, Some(Err(e))) => {
            // Current docs: "Requires no permissions"; 2019 docs: directory:user:view.
            report.push_needing(
                "users",
                Status::Fail,
                failure(&e, Some("directory:user:view")),
                needing(&e, "directory:user:view"),
            );
        }
        (Ok(page), inactive) => {
            let mut detail = format!(
                "{} users listed ({} on a page of {size})",
                page.total,
                page.resources.len()
            );
            if let Some(Ok(i)) = inactive {
                detail = format!(
                    "{} active and {} inactive users (two listings: the default one holds active users only); pages of {size}",
                    page.total, i.total
                );
            }
            report.push("users", Status::Pass, detail);
        }
    }
}

async fn genesys(client: &ScimClient, desired: &DesiredState, report: &mut Report) {
    page_limit(client, report).await;
    let groups: Result<Totals, ScimError> = client
        .platform_json(
            Method::GET,
            "/api/v2/groups",
            &[("pageSize", "1".into())],
            None::<&()>,
            true,
        )
        .await;
    match groups {
        Ok(t) => report.push(
            "groups",
            Status::Pass,
            format!(
                "{} groups through the Platform API (SCIM cannot create or delete groups)",
                t.total.unwrap_or(0)
            ),
        ),
        Err(e) => report.push_needing(
            "groups",
            Status::Fail,
            failure(&e, Some("directory:group:view")),
            needing(&e, "directory:group:view"),
        ),
    }
    let roles = client.list_roles().await;
    match &roles {
        Ok(r) => report.push("roles", Status::Pass, format!("{} roles readable", r.len())),
        Err(e) => report.push_needing(
            "roles",
            Status::Fail,
            failure(e, Some("authorization:role:view")),
            needing(e, "authorization:role:view"),
        ),
    }
    divisions(client, desired, report).await;
    let definitions = licenses(client, report).await;
    let held = permissions(client, desired, roles.ok().as_deref(), report).await;
    let (status, detail, needed) = licenses::classify(
        &licenses::mapped_ids(desired),
        definitions.as_deref(),
        held.as_deref().map_err(String::as_str),
    );
    report.push_needing("license assignment", status, detail, needed);
}

/// Whether the client can read the org's license definitions and its users' licenses
/// (`authorization:license:view`, or `authorization:grant:add`, which assigning needs anyway
/// [.NET/PY SDK LicenseApi.md]).
/// The definitions, when they could be read.
async fn licenses(
    client: &ScimClient,
    report: &mut Report,
) -> Option<Vec<crate::scim::licenses::LicenseDefinition>> {
    const NEEDS: &str = "authorization:license:view";
    let read = match client.list_license_definitions().await {
        Ok(definitions) => client
            .list_user_licenses()
            .await
            .map(|holders| (definitions, holders)),
        Err(e) => Err(e),
    };
    match read {
        Ok((definitions, holders)) => {
            let mut ids: Vec<&str> = definitions.iter().map(|d| d.id.as_str()).collect();
            ids.sort_unstable();
            let holders = holders.iter().filter(|u| !u.licenses.is_empty()).count();
            report.push(
                "licenses",
                Status::Pass,
                format!(
                    "{} license definitions readable ({}); {holders} users hold a license",
                    ids.len(),
                    ids.join(", ")
                ),
            );
            Some(definitions)
        }
        Err(e) => {
            report.push_needing(
                "licenses",
                Status::Warn,
                format!(
                    "{} (or authorization:grant:add); licenses cannot be read",
                    failure(&e, Some(NEEDS))
                ),
                needing(&e, NEEDS),
            );
            None
        }
    }
}

/// The page-size rule (docs/genesys.md §7): 25 with the default attributes, more only with
/// the expensive ones excluded. Only the allowed forms are sent; nothing is provoked.
async fn page_limit(client: &ScimClient, report: &mut Report) {
    let excluded = "externalId,roles,urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingSkills,urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User:routingLanguages";
    let page: Result<Totals, ScimError> = client
        .platform_json(
            Method::GET,
            "/api/v2/scim/v2/users",
            &[
                ("count", "100".into()),
                ("excludedAttributes", excluded.into()),
            ],
            None::<&()>,
            true,
        )
        .await;
    match page {
        Ok(t) => report.push(
            "page size",
            Status::Pass,
            format!(
                "pages of 25 with every attribute (the documented limit); a page of 100 without the expensive attributes gave {} users (itemsPerPage {})",
                t.resources.len(),
                t.items_per_page.map_or_else(|| "absent".into(), |n| n.to_string())
            ),
        ),
        Err(e) if e.is_rate_limited() => report.push(
            "page size",
            Status::Warn,
            "a page of 100 without the expensive attributes was answered 429: only pages of 25 work on this org",
        ),
        Err(e) => report.push("page size", Status::Warn, e.to_string()),
    }
}

async fn divisions(client: &ScimClient, desired: &DesiredState, report: &mut Report) {
    let listed = client.list_divisions().await;
    let visible = match listed {
        Ok(d) => d,
        Err(e) => {
            // GET /api/v2/authorization/divisions "Requires no permissions" [PY
            // AuthorizationApi.md], so no permission is named.
            report.push("divisions", Status::Fail, failure(&e, None));
            return;
        }
    };
    let mut used: BTreeSet<String> = desired
        .users
        .iter()
        .filter_map(|u| u.division.as_ref().map(|d| d.value.to_string()))
        .collect();
    for user in &desired.users {
        for grant in user.roles.iter().flatten() {
            used.extend(grant.divisions.iter().flatten().map(ToString::to_string));
        }
    }
    let missing: Vec<&String> = used
        .iter()
        .filter(|d| !visible.iter().any(|v| v.name.eq_ignore_ascii_case(d)))
        .collect();
    let homes: Vec<&str> = visible
        .iter()
        .filter(|d| d.home)
        .map(|d| d.name.as_str())
        .collect();
    let home = match homes.as_slice() {
        [] => "none marked".to_owned(),
        [one] => (*one).to_owned(),
        many => format!("{} marked: {}", many.len(), many.join(", ")),
    };
    let names: Vec<&str> = visible.iter().map(|d| d.name.as_str()).collect();
    if missing.is_empty() && homes.len() != 1 {
        // A plain role name is a grant in the home division: with none, or several, plan
        // leaves such roles' grants alone (plan::grants).
        report.push(
            "divisions",
            Status::Warn,
            format!(
                "{} visible, but not one home division (home: {home}): roles given by name \
                 alone in grants are left as they are",
                visible.len()
            ),
        );
    } else if missing.is_empty() {
        report.push(
            "divisions",
            Status::Pass,
            format!(
                "{} visible (home: {home}): {}",
                visible.len(),
                names.join(", ")
            ),
        );
    } else {
        report.push(
            "divisions",
            Status::Fail,
            format!(
                "YAML names divisions this client cannot see: {}; grant the client's role on all divisions (*)",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

/// The client's own role grants, and where they were read: `GET /api/v2/tokens/me` first,
/// which "requires no permissions" and tells the client's `roleDivisions` [PY TokensApi.md,
/// TokenInfo.md, OrgOAuthClient.md]; then `GET /api/v2/oauth/clients/{id}`, which needs
/// `oauth:client:view` [PY OAuthApi.md]. Err: why neither could be read.
async fn own_grants(
    client: &ScimClient,
    id: &str,
) -> Result<(OAuthClientInfo, &'static str), String> {
    let me: Result<TokenInfo, ScimError> = client
        .platform_json(Method::GET, "/api/v2/tokens/me", &[], None::<&()>, true)
        .await;
    let why_me = match me {
        Ok(TokenInfo {
            oauth_client: Some(info),
        }) => return Ok((info, "/api/v2/tokens/me")),
        Ok(TokenInfo { oauth_client: None }) => {
            "/api/v2/tokens/me named no OAuth client".to_owned()
        }
        Err(e) => format!("/api/v2/tokens/me: {}", failure(&e, None)),
    };
    let path = format!("/api/v2/oauth/clients/{id}");
    let info: Result<OAuthClientInfo, ScimError> = client
        .platform_json(Method::GET, &path, &[], None::<&()>, true)
        .await;
    match info {
        Ok(i) => Ok((i, "/api/v2/oauth/clients/{id}")),
        Err(e) => Err(format!(
            "{why_me}; /api/v2/oauth/clients/{{id}}: {}",
            failure(&e, Some("oauth:client:view"))
        )),
    }
}

/// The `permissions` check; gives the permissions the client's role grants hold, or why
/// they could not be read.
async fn permissions(
    client: &ScimClient,
    desired: &DesiredState,
    roles: Option<&[PlatformRole]>,
    report: &mut Report,
) -> Result<Vec<String>, String> {
    let Some(id) = client.oauth_client_id() else {
        report.push("permissions", Status::Skip, "no OAuth client id");
        return Err("no OAuth client id".into());
    };
    let Some(roles) = roles else {
        report.push("permissions", Status::Skip, "the roles could not be read");
        return Err("the roles could not be read".into());
    };
    let (info, source) = match own_grants(client, id).await {
        Ok(found) => found,
        Err(why) => {
            report.push(
                "permissions",
                Status::Warn,
                format!(
                    "cannot read this OAuth client's roles ({why}); its write permissions are not verified"
                ),
            );
            return Err(why);
        }
    };
    let held: Vec<String> = info
        .role_divisions
        .iter()
        .filter_map(|rd| roles.iter().find(|r| r.id == rd.role_id))
        .flat_map(|r| live_permissions(&r.permission_policies))
        .collect();
    let lacking: Vec<&str> = needed_permissions(desired)
        .into_iter()
        .filter(|want| !held.iter().any(|h| covers(h, want)))
        .collect();
    let all_divisions = info.role_divisions.iter().any(|rd| rd.division_id == "*");
    if lacking.is_empty() {
        report.push(
            "permissions",
            if all_divisions {
                Status::Pass
            } else {
                Status::Warn
            },
            format!(
                "the client's {} role grant(s) (read through {source}) cover every permission scimctl needs{}",
                info.role_divisions.len(),
                if all_divisions {
                    ""
                } else {
                    "; none is on all divisions (*), so objects in other divisions stay invisible"
                }
            ),
        );
    } else {
        report.push_needing(
            "permissions",
            Status::Fail,
            format!(
                "the OAuth client's roles (read through {source}) lack: {}",
                lacking.join(", ")
            ),
            lacking.iter().map(|p| (*p).to_owned()).collect(),
        );
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wildcards in any segment cover; other segments compare case-insensitively.
    #[test]
    fn permission_coverage() {
        assert!(covers("*", "directory:user:add"));
        assert!(covers("directory:*:*", "directory:user:add"));
        assert!(covers("directory:user:*", "directory:user:add"));
        assert!(covers("Directory:User:Add", "directory:user:add"));
        assert!(!covers("directory:user:view", "directory:user:add"));
        assert!(!covers("directory:group:*", "directory:user:add"));
        assert!(!covers("directory:user", "directory:user:add"));
    }

    /// A plain role name is a grant in the home division, so a target that marks none, or
    /// several, is a warning (plan leaves those grants alone); exactly one is a pass.
    #[tokio::test]
    async fn divisions_warn_without_one_home() {
        type Answer = fn(u32) -> serde_json::Value;
        let desired = crate::desired::load_texts(&[("org.yaml", "users: []\n")])
            .expect("loads")
            .state;
        let answers: [(Answer, Status, &str); 3] = [
            (
                |_| {
                    serde_json::json!({"pageCount": 1, "total": 2, "entities": [
                    {"id": "a", "name": "Home"}, {"id": "b", "name": "Sales"}]})
                },
                Status::Warn,
                "home: none marked",
            ),
            (
                |_| {
                    serde_json::json!({"pageCount": 1, "total": 2, "entities": [
                    {"id": "a", "name": "Home", "homeDivision": true},
                    {"id": "b", "name": "Sales", "homeDivision": true}]})
                },
                Status::Warn,
                "home: 2 marked: Home, Sales",
            ),
            (
                |_| {
                    serde_json::json!({"pageCount": 1, "total": 2, "entities": [
                    {"id": "a", "name": "Home", "homeDivision": true},
                    {"id": "b", "name": "Sales"}]})
                },
                Status::Pass,
                "home: Home",
            ),
        ];
        for (answer, status, says) in answers {
            let server = crate::scim::test_server::TestServer::start(
                crate::scim::grants::DIVISIONS_PATH,
                answer,
            )
            .await;
            let mut report = Report {
                target: "Genesys Cloud".into(),
                checks: Vec::new(),
                probes: Vec::new(),
            };
            divisions(&server.client, &desired, &mut report).await;
            let check = &report.checks[0];
            assert_eq!(check.status, status, "{}", check.detail);
            assert!(check.detail.contains(says), "{}", check.detail);
        }
    }

    /// The checklist prints one line per check and a tally; a failure marks the report.
    #[test]
    fn text_and_failure() {
        let mut report = Report {
            target: "Genesys Cloud (https://api.example)".into(),
            checks: Vec::new(),
            probes: Vec::new(),
        };
        report.push("token", Status::Pass, "accepted");
        report.push("permissions", Status::Fail, "lack: directory:user:add");
        assert!(report.failed());
        let text = report.text();
        assert!(text.contains("[ok  ] token"), "{text}");
        assert!(
            text.contains("[FAIL] permissions  lack: directory:user:add"),
            "{text}"
        );
        assert!(
            text.ends_with("1 passed, 0 warnings, 1 failed, 0 skipped\n"),
            "{text}"
        );
    }

    fn forbidden() -> ScimError {
        ScimError::Status {
            method: "GET".into(),
            path: "/api/v2/authorization/divisions".into(),
            status: reqwest::StatusCode::FORBIDDEN,
            scim_type: None,
            detail: Some("missing permission".into()),
            retry_after: None,
        }
    }

    /// A 403 on a call that needs no permission (divisions) names none; one that does names
    /// exactly that permission, in the text and in the JSON field.
    #[test]
    fn refusals_name_the_exact_permission() {
        let e = forbidden();
        let none = failure(&e, None);
        assert!(none.contains("needs no permission"), "{none}");
        assert!(!none.contains("division:view"), "{none}");
        let some = failure(&e, Some("authorization:role:view"));
        assert!(some.ends_with("needs authorization:role:view"), "{some}");
        assert_eq!(
            needing(&e, "authorization:role:view"),
            ["authorization:role:view"]
        );
    }

    /// Extensions are `;ext=` in a tel URI, in any case.
    #[test]
    fn phone_extensions() {
        assert!(sets_extension("tel:+1-415-555-0123;ext=12"));
        assert!(sets_extension("tel:+14155550123;EXT=7"));
        assert!(!sets_extension("+14155550123"));
    }

    /// Probes print after the checks, one line each, with their status word; the JSON has
    /// both lists and the needed permissions.
    #[test]
    fn probes_in_text_and_json() {
        let mut report = Report {
            target: "t".into(),
            checks: Vec::new(),
            probes: vec![Probe {
                name: "deep paging",
                status: ProbeStatus::NotTestable,
                detail: "12 active users".into(),
            }],
        };
        report.push_needing(
            "permissions",
            Status::Fail,
            "lack: x:y:z",
            vec!["x:y:z".into()],
        );
        let text = report.text();
        assert!(
            text.contains("  [not testable] deep paging  12 active users\n"),
            "{text}"
        );
        let json = serde_json::to_value(report.json()).unwrap();
        assert_eq!(json["probes"][0]["status"], "not testable");
        assert_eq!(json["checks"][0]["needed_permissions"][0], "x:y:z");
        assert_eq!(json["failed"], true);
    }
}
