//! Genesys Cloud users in the `deleted` state (docs/genesys.md, "Deleted users"), which only
//! the Platform API sees: a deleted user keeps its id and its email, so a SCIM create of that
//! userName is refused until the user is restored. Found with `POST /api/v2/users/search`
//! (criteria `email` and `state` = `deleted`, as the Terraform provider does on create) and
//! restored with `PATCH /api/v2/users/{id}` carrying `state` and the user's `version`.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::client::{ScimClient, resource_path};
use super::error::ScimError;
pub use crate::model::tenant::DeletedUser;

/// The Platform API user search.
pub const USERS_SEARCH_PATH: &str = "/api/v2/users/search";
/// The Platform API collection of users (the restore `PATCH` goes to one of them).
pub const USERS_PATH: &str = "/api/v2/users";
/// Emails per search request. A choice, not a documented limit: the search takes a list of
/// `values` per criterion (UNCONFIRMED how long a list it accepts), and a small batch keeps
/// each request cheap.
const EMAILS_PER_SEARCH: usize = 25;
/// Results per page of the search (`pageSize`; the documented maximum is UNCONFIRMED, the
/// SDK examples use 25 to 100).
const SEARCH_PAGE: u32 = 100;

/// One user of a search answer (`UsersSearchResponse.results[]`).
#[derive(Debug, Deserialize)]
struct Found {
    #[serde(default)]
    id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    version: Option<u64>,
}

/// `UsersSearchResponse`: a page of results.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchPage {
    #[serde(default)]
    results: Vec<Found>,
    #[serde(default)]
    page_count: Option<u32>,
}

/// The restore body (`UpdateUser`: `state` and the `version` it applies to).
#[derive(Serialize)]
struct Restore<'a> {
    state: &'a str,
    version: u64,
}

impl ScimClient {
    /// The users in the `deleted` state whose email is one of `emails` (case-insensitively),
    /// read with the Platform user search, `EMAILS_PER_SEARCH` emails a request. A search is
    /// a read: sent again after an unknown outcome.
    pub async fn find_deleted_users(
        &self,
        emails: &[String],
    ) -> Result<Vec<DeletedUser>, ScimError> {
        let mut found = Vec::new();
        for chunk in emails.chunks(EMAILS_PER_SEARCH) {
            let mut page = 1;
            loop {
                let body = json!({
                    "pageSize": SEARCH_PAGE,
                    "pageNumber": page,
                    "query": [
                        {"type": "EXACT", "fields": ["email"], "values": chunk},
                        {"type": "EXACT", "fields": ["state"], "values": ["deleted"]},
                    ],
                });
                let answer: SearchPage = self
                    .platform_json(Method::POST, USERS_SEARCH_PATH, &[], Some(&body), true)
                    .await?;
                let last = answer.page_count.is_none_or(|n| page >= n) || answer.results.is_empty();
                for user in answer.results {
                    // Only what the criteria asked for, whatever the server made of them.
                    let deleted = user.state.as_deref() == Some("deleted");
                    let Some(email) = user.email.filter(|e| {
                        deleted && chunk.iter().any(|want| want.eq_ignore_ascii_case(e))
                    }) else {
                        continue;
                    };
                    if user.id.is_empty() || found.iter().any(|f: &DeletedUser| f.id == user.id) {
                        continue;
                    }
                    found.push(DeletedUser {
                        id: user.id,
                        email,
                        version: user.version.unwrap_or_default(),
                    });
                }
                if last {
                    break;
                }
                page += 1;
            }
        }
        Ok(found)
    }

    /// Restores the deleted user `id` (`PATCH /api/v2/users/{id}` with `state: active` and
    /// its `version`). Not sent again after an unknown outcome: a second restore would carry
    /// a stale version; the applier reads the user back instead.
    pub async fn restore_user(&self, id: &str, version: u64) -> Result<(), ScimError> {
        let path = resource_path(USERS_PATH, id);
        let body = Restore {
            state: "active",
            version,
        };
        self.platform_send(Method::PATCH, &path, &[], Some(&body), false)
            .await
            .map(drop)
    }
}
