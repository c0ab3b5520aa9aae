//! Probes of what the public Genesys material leaves open (genesys-audit.md §5): each is a
//! read (a handful of GETs at most) whose answer either confirms what scimctl assumes, shows
//! that the org differs, or cannot be tested on this org (and says why). The verdicts are
//! worked out by the pure `classify_*` functions, so they are tested without a server.

use std::collections::BTreeSet;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::scim::wire::GENESYS_SCHEMA;
use crate::scim::{ScimClient, ScimError};

/// How a probe came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub enum ProbeStatus {
    /// The org behaves as scimctl assumes.
    #[serde(rename = "confirmed")]
    Confirmed,
    /// The org behaves otherwise: the detail says what scimctl does about it.
    #[serde(rename = "differs")]
    Differs,
    /// This org cannot show it (no suitable object, too few users, or it needs a write).
    #[serde(rename = "not testable")]
    NotTestable,
}

impl ProbeStatus {
    /// The word printed before the probe.
    #[must_use]
    pub fn mark(self) -> &'static str {
        match self {
            ProbeStatus::Confirmed => "confirmed",
            ProbeStatus::Differs => "differs",
            ProbeStatus::NotTestable => "not testable",
        }
    }
}

/// One probe's outcome.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Probe {
    /// What was probed.
    pub name: &'static str,
    /// How it came out.
    pub status: ProbeStatus,
    /// What was seen, in one line.
    pub detail: String,
}

type Verdict = (ProbeStatus, String);

const SCIM_USERS: &str = "/api/v2/scim/v2/users";
/// The page the default list answers (docs/genesys.md §7).
const PAGE: &str = "25";
/// Genesys documents no deep-paging limit; 10,000 is where many APIs stop (audit §5).
const DEEP: u64 = 10_000;

fn skills_path() -> String {
    format!("{GENESYS_SCHEMA}:routingSkills")
}

/// Runs every probe; none writes, none fails the report.
pub(super) async fn run(client: &ScimClient) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut push = |name: &'static str, (status, detail): Verdict| {
        probes.push(Probe {
            name,
            status,
            detail,
        });
    };
    let page: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            SCIM_USERS,
            &[("count", PAGE.into())],
            None::<&()>,
            true,
        )
        .await;
    match &page {
        Ok(page) => {
            let users = resources(page);
            push("version vs etag", etag(client, users).await);
            push("extension in default list", extension(client, users).await);
            push("deep paging", deep_paging(client, page).await);
            push("roles vs grants", roles(client, users).await);
        }
        Err(e) => {
            let why = format!("the user list could not be read: {e}");
            for name in [
                "version vs etag",
                "extension in default list",
                "deep paging",
                "roles vs grants",
            ] {
                push(name, (ProbeStatus::NotTestable, why.clone()));
            }
        }
    }
    push("members vs individuals", members(client).await);
    push(
        "serviceproviderconfig values",
        provider_config(client).await,
    );
    push(
        "group put semantics",
        (
            ProbeStatus::NotTestable,
            "whether PUT /api/v2/groups/{id} resets the fields it omits needs a write; doctor only reads (try it in a test org; scimctl sends every field back either way)".into(),
        ),
    );
    probes
}

fn resources(page: &Value) -> &[Value] {
    page.get("Resources")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn id_of(doc: &Value) -> Option<&str> {
    doc.get("id").and_then(Value::as_str)
}

fn not_testable(why: impl Into<String>) -> Verdict {
    (ProbeStatus::NotTestable, why.into())
}

/// `meta.version` (as text; Genesys documents a string) of a SCIM document.
fn version_of(doc: &Value) -> Option<String> {
    match doc.get("meta")?.get("version")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The body's `meta.version` against the `ETag` header. scimctl sends the header's value as
/// `If-Match`, or the version in double quotes when only the version is known
/// (`if_match_value`); that works when both name the same tag.
#[must_use]
pub(super) fn classify_etag(version: Option<&str>, etag: Option<&str>) -> Verdict {
    match (version, etag) {
        (None, None) => (
            ProbeStatus::Differs,
            "neither meta.version nor an ETag header: scimctl's writes cannot be conditional"
                .into(),
        ),
        (None, Some(tag)) => (
            ProbeStatus::Differs,
            format!("no meta.version in the body; ETag {tag}: scimctl uses the header"),
        ),
        (Some(v), None) => (
            ProbeStatus::Differs,
            format!(
                "meta.version {v:?} but no ETag header: scimctl quotes the version, unconfirmed"
            ),
        ),
        (Some(v), Some(tag)) if v == tag => (
            ProbeStatus::Confirmed,
            format!("meta.version and ETag are both {tag}"),
        ),
        (Some(v), Some(tag)) if tag == format!("\"{v}\"") => (
            ProbeStatus::Confirmed,
            format!(
                "meta.version is the bare {v:?}, ETag {tag}: the quoted version scimctl sends is the ETag"
            ),
        ),
        (Some(v), Some(tag)) => (
            ProbeStatus::Differs,
            format!(
                "meta.version {v:?} and ETag {tag} differ: If-Match built from the version may be refused (invalidVers)"
            ),
        ),
    }
}

async fn etag(client: &ScimClient, users: &[Value]) -> Verdict {
    let Some(id) = users.iter().find_map(id_of) else {
        return not_testable("no user to read");
    };
    match client
        .get_json_tagged(&format!("{SCIM_USERS}/{id}"), &[])
        .await
    {
        Ok((doc, tag)) => classify_etag(version_of(&doc).as_deref(), tag.as_deref()),
        Err(e) => not_testable(format!("GET of one user failed: {e}")),
    }
}

/// Whether `doc` holds at least one routing skill.
fn has_skills(doc: &Value) -> bool {
    doc.get(GENESYS_SCHEMA)
        .and_then(|ext| ext.get("routingSkills"))
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
}

/// The default list (`default`) against the same page asking for the Genesys extension
/// (`asked`), for the first user the latter shows with skills.
#[must_use]
pub(super) fn classify_extension(default: &[Value], asked: &[Value]) -> Verdict {
    let Some(id) = asked.iter().filter(|u| has_skills(u)).find_map(id_of) else {
        return not_testable("no user on the first page has routing skills");
    };
    let listed = default.iter().find(|u| id_of(u) == Some(id));
    if listed.is_some_and(has_skills) {
        (
            ProbeStatus::Confirmed,
            format!("the default list returns routingSkills (user {id})"),
        )
    } else {
        (
            ProbeStatus::Differs,
            format!(
                "the default list leaves out routingSkills of user {id}, which asking for the extension returns: scimctl must ask for it explicitly (attributes), else every run re-adds skills"
            ),
        )
    }
}

async fn extension(client: &ScimClient, users: &[Value]) -> Verdict {
    let asked: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            SCIM_USERS,
            &[
                ("count", PAGE.into()),
                ("attributes", format!("id,userName,{}", skills_path())),
            ],
            None::<&()>,
            true,
        )
        .await;
    match asked {
        Ok(page) => classify_extension(users, resources(&page)),
        Err(e) => not_testable(format!("the list asking for the extension failed: {e}")),
    }
}

async fn deep_paging(client: &ScimClient, page: &Value) -> Verdict {
    let total = page
        .get("totalResults")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if total <= DEEP {
        return not_testable(format!(
            "{total} active users: paging past {DEEP} needs more than {DEEP}"
        ));
    }
    let deep: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            SCIM_USERS,
            &[
                ("startIndex", (DEEP + 1).to_string()),
                ("count", "1".into()),
            ],
            None::<&()>,
            true,
        )
        .await;
    match deep {
        Ok(p) if !resources(&p).is_empty() => (
            ProbeStatus::Confirmed,
            format!("startIndex={} answered a user ({total} in all)", DEEP + 1),
        ),
        Ok(_) => (
            ProbeStatus::Differs,
            format!(
                "startIndex={} answered no user although {total} exist: listings stop early",
                DEEP + 1
            ),
        ),
        Err(e) => (
            ProbeStatus::Differs,
            format!("startIndex={} was refused: {e}", DEEP + 1),
        ),
    }
}

/// SCIM `members` (`scim`) against the Platform direct members (`individuals`) of a group
/// with `owners`.
#[must_use]
pub(super) fn classify_members(
    group: &str,
    scim: &BTreeSet<String>,
    individuals: &BTreeSet<String>,
    owners: &BTreeSet<String>,
) -> Verdict {
    if scim == individuals {
        return (
            ProbeStatus::Confirmed,
            format!(
                "group {group}: SCIM members are its {} direct members; its {} owner(s) are not listed unless members",
                scim.len(),
                owners.len()
            ),
        );
    }
    let extra: Vec<&String> = scim.difference(individuals).collect();
    let missing = individuals.difference(scim).count();
    let extra_owners = extra.iter().filter(|id| owners.contains(**id)).count();
    (
        ProbeStatus::Differs,
        format!(
            "group {group}: SCIM members has {} not among /individuals ({extra_owners} of them owners) and lacks {missing}: authoritative membership would remove them every run",
            extra.len()
        ),
    )
}

fn ids(list: Option<&Value>, key: &str) -> BTreeSet<String> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get(key).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn members(client: &ScimClient) -> Verdict {
    let groups: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            "/api/v2/groups",
            &[("pageSize", "100".into())],
            None::<&()>,
            true,
        )
        .await;
    let groups = match groups {
        Ok(g) => g,
        Err(e) => return not_testable(format!("the Platform group list failed: {e}")),
    };
    let owned = groups
        .get("entities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|g| !ids(g.get("owners"), "id").is_empty());
    let Some(group) = owned else {
        return not_testable(
            "no group on the first page has owners (rule-based members are not visible in the list)",
        );
    };
    let Some(id) = id_of(group) else {
        return not_testable("a group without an id");
    };
    let owners = ids(group.get("owners"), "id");
    let scim: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            &format!("/api/v2/scim/v2/groups/{id}"),
            &[],
            None::<&()>,
            true,
        )
        .await;
    let direct: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            &format!("/api/v2/groups/{id}/individuals"),
            &[("pageSize", "100".into())],
            None::<&()>,
            true,
        )
        .await;
    match (scim, direct) {
        (Ok(scim), Ok(direct)) => {
            let listed = direct
                .get("entities")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if direct.get("total").and_then(Value::as_u64).unwrap_or(0) > listed as u64 {
                return not_testable(format!("group {id} has more than 100 direct members"));
            }
            classify_members(
                id,
                &ids(scim.get("members"), "value"),
                &ids(direct.get("entities"), "id"),
                &owners,
            )
        }
        (Err(e), _) => not_testable(format!(
            "the SCIM group read failed (it needs directory:group:edit): {e}"
        )),
        (_, Err(e)) => not_testable(format!("the group's /individuals read failed: {e}")),
    }
}

/// One user's SCIM `roles` (names) against its grants from
/// `/api/v2/authorization/subjects/{id}`: direct ones (`subjectId` is the user) and others
/// (held through a group).
#[must_use]
pub(super) fn classify_roles(
    user: &str,
    scim: &BTreeSet<String>,
    direct: &BTreeSet<String>,
    inherited: &BTreeSet<String>,
) -> Verdict {
    let lower =
        |s: &BTreeSet<String>| -> BTreeSet<String> { s.iter().map(|n| n.to_lowercase()).collect() };
    let (scim_l, direct_l) = (lower(scim), lower(direct));
    if scim_l == direct_l {
        return (
            ProbeStatus::Confirmed,
            format!(
                "user {user}: SCIM roles are the {} role(s) granted directly{}",
                direct.len(),
                if inherited.is_empty() {
                    String::new()
                } else {
                    format!("; the {} held through groups are left out", inherited.len())
                }
            ),
        );
    }
    let extra: Vec<&String> = scim
        .iter()
        .filter(|n| !direct_l.contains(&n.to_lowercase()))
        .collect();
    let missing: Vec<&String> = direct
        .iter()
        .filter(|n| !scim_l.contains(&n.to_lowercase()))
        .collect();
    let through_groups = extra
        .iter()
        .filter(|n| lower(inherited).contains(&n.to_lowercase()))
        .count();
    (
        ProbeStatus::Differs,
        format!(
            "user {user}: SCIM roles has {} not granted directly ({through_groups} held through groups) and lacks {} granted directly: authoritative roles would plan removals that never take effect",
            extra.len(),
            missing.len()
        ),
    )
}

/// Role names of a subject's grants: those made to the user, and the others.
fn grant_names(user: &str, subject: &Value) -> (BTreeSet<String>, BTreeSet<String>, usize) {
    let mut direct = BTreeSet::new();
    let mut inherited = BTreeSet::new();
    let mut divisions = BTreeSet::new();
    for grant in subject
        .get("grants")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(name) = grant.pointer("/role/name").and_then(Value::as_str) else {
            continue;
        };
        if grant
            .get("subjectId")
            .and_then(Value::as_str)
            .is_none_or(|s| s == user)
        {
            direct.insert(name.to_owned());
            if let Some(d) = grant.pointer("/division/id").and_then(Value::as_str) {
                divisions.insert(d.to_owned());
            }
        } else {
            inherited.insert(name.to_owned());
        }
    }
    (direct, inherited, divisions.len())
}

async fn roles(client: &ScimClient, users: &[Value]) -> Verdict {
    const READS: usize = 5;
    let with_roles = users
        .iter()
        .filter(|u| !ids(u.get("roles"), "value").is_empty())
        .take(READS);
    let mut best: Option<(usize, Verdict)> = None;
    for user in with_roles {
        let Some(id) = id_of(user) else { continue };
        let subject: Result<Value, ScimError> = client
            .platform_json(
                Method::GET,
                &format!("/api/v2/authorization/subjects/{id}"),
                &[("includeDuplicates", "true".into())],
                None::<&()>,
                true,
            )
            .await;
        let subject = match subject {
            Ok(s) => s,
            Err(e) => {
                return not_testable(format!(
                    "the grants read failed (it needs authorization:grant:view): {e}"
                ));
            }
        };
        let (direct, inherited, divisions) = grant_names(id, &subject);
        // The most telling user: grants through groups or in several divisions.
        let score = inherited.len() + divisions;
        let verdict = classify_roles(id, &ids(user.get("roles"), "value"), &direct, &inherited);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, verdict));
        }
    }
    best.map_or_else(
        || not_testable("no user on the first page holds a role"),
        |(_, v)| v,
    )
}

/// `ServiceProviderConfig`'s `filter.maxResults`, `etag` and `patch`, printed; scimctl
/// needs PATCH and uses ETags.
#[must_use]
pub(super) fn classify_provider_config(spc: &Value) -> Verdict {
    let flag = |key: &str| {
        spc.pointer(&format!("/{key}/supported"))
            .and_then(Value::as_bool)
    };
    let shown = |b: Option<bool>| b.map_or("absent", |b| if b { "yes" } else { "no" });
    let max = spc
        .pointer("/filter/maxResults")
        .and_then(Value::as_u64)
        .map_or_else(|| "absent".to_owned(), |n| n.to_string());
    let (patch, etag) = (flag("patch"), flag("etag"));
    let detail = format!(
        "filter.maxResults {max}, etag {}, patch {}",
        shown(etag),
        shown(patch)
    );
    if patch == Some(true) && etag == Some(true) {
        (ProbeStatus::Confirmed, detail)
    } else {
        (
            ProbeStatus::Differs,
            format!("{detail}: scimctl assumes PATCH and ETags are supported"),
        )
    }
}

async fn provider_config(client: &ScimClient) -> Verdict {
    let spc: Result<Value, ScimError> = client
        .platform_json(
            Method::GET,
            "/api/v2/scim/v2/serviceproviderconfig",
            &[],
            None::<&()>,
            true,
        )
        .await;
    match spc {
        Ok(spc) => classify_provider_config(&spc),
        Err(e) => not_testable(format!("the read failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    // The quoted version is the ETag: confirmed; a weak or unrelated tag differs.
    #[test]
    fn version_and_etag() {
        assert_eq!(
            classify_etag(Some("42"), Some("\"42\"")).0,
            ProbeStatus::Confirmed
        );
        assert_eq!(
            classify_etag(Some("\"42\""), Some("\"42\"")).0,
            ProbeStatus::Confirmed
        );
        let (status, detail) = classify_etag(Some("42"), Some("W/\"42\""));
        assert_eq!(status, ProbeStatus::Differs);
        assert!(detail.contains("W/\"42\""), "{detail}");
        assert_eq!(classify_etag(Some("42"), None).0, ProbeStatus::Differs);
        assert_eq!(classify_etag(None, None).0, ProbeStatus::Differs);
    }

    // Skills seen only when asked for: scimctl must ask; no skills anywhere: not testable.
    #[test]
    fn extension_in_default_list() {
        let with = json!({"id": "u1", GENESYS_SCHEMA: {"routingSkills": [{"name": "Sales"}]}});
        let without = json!({"id": "u1"});
        assert_eq!(
            classify_extension(std::slice::from_ref(&with), std::slice::from_ref(&with)).0,
            ProbeStatus::Confirmed
        );
        let (status, detail) = classify_extension(std::slice::from_ref(&without), &[with]);
        assert_eq!(status, ProbeStatus::Differs);
        assert!(detail.contains("explicitly"), "{detail}");
        assert_eq!(
            classify_extension(
                std::slice::from_ref(&without),
                std::slice::from_ref(&without)
            )
            .0,
            ProbeStatus::NotTestable
        );
    }

    // Owners listed as SCIM members differ from the direct members.
    #[test]
    fn members_and_individuals() {
        let owners = set(&["o"]);
        assert_eq!(
            classify_members("g", &set(&["a"]), &set(&["a"]), &owners).0,
            ProbeStatus::Confirmed
        );
        let (status, detail) = classify_members("g", &set(&["a", "o"]), &set(&["a"]), &owners);
        assert_eq!(status, ProbeStatus::Differs);
        assert!(
            detail.contains("1 not among /individuals (1 of them owners)"),
            "{detail}"
        );
    }

    // A role held through a group and listed in SCIM roles differs; names compare
    // case-insensitively.
    #[test]
    fn roles_and_grants() {
        assert_eq!(
            classify_roles("u", &set(&["Agent"]), &set(&["agent"]), &set(&[])).0,
            ProbeStatus::Confirmed
        );
        let (status, detail) = classify_roles(
            "u",
            &set(&["Agent", "Lead"]),
            &set(&["Agent"]),
            &set(&["Lead"]),
        );
        assert_eq!(status, ProbeStatus::Differs);
        assert!(
            detail.contains("1 not granted directly (1 held through groups)"),
            "{detail}"
        );
        let subject = json!({"grants": [
            {"subjectId": "u", "role": {"name": "Agent"}, "division": {"id": "d1"}},
            {"subjectId": "g", "role": {"name": "Lead"}, "division": {"id": "d1"}},
        ]});
        let (direct, inherited, divisions) = grant_names("u", &subject);
        assert_eq!(
            (direct, inherited, divisions),
            (set(&["Agent"]), set(&["Lead"]), 1)
        );
    }

    // The three values are printed; PATCH or ETag unsupported differs.
    #[test]
    fn provider_config_values() {
        let spc = json!({"patch": {"supported": true}, "etag": {"supported": true},
            "filter": {"supported": true, "maxResults": 100}});
        let (status, detail) = classify_provider_config(&spc);
        assert_eq!(status, ProbeStatus::Confirmed);
        assert_eq!(detail, "filter.maxResults 100, etag yes, patch yes");
        let (status, detail) = classify_provider_config(&json!({"patch": {"supported": true}}));
        assert_eq!(status, ProbeStatus::Differs);
        assert!(
            detail.starts_with("filter.maxResults absent, etag absent, patch yes"),
            "{detail}"
        );
    }
}
