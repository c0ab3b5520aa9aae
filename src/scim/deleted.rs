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
/// Pages of one search after which the answer is refused: 10,000 results for 25 emails is
/// not a tenant but a server that pages without end (a hostile or broken `pageCount`).
const MAX_SEARCH_PAGES: u32 = 100;

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
        // Every id any page has named, deleted or not: a page that names none anew ends the
        // search, so a server that repeats its pages cannot keep it going.
        let mut seen = std::collections::HashSet::new();
        for chunk in emails.chunks(EMAILS_PER_SEARCH) {
            let mut page = 1;
            loop {
                if page > MAX_SEARCH_PAGES {
                    return Err(ScimError::Decode {
                        method: Method::POST.to_string(),
                        path: USERS_SEARCH_PATH.to_owned(),
                        message: format!(
                            "more than {MAX_SEARCH_PAGES} pages of users for {} email(s)",
                            chunk.len()
                        ),
                    });
                }
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
                let mut fresh = false;
                for user in &answer.results {
                    fresh |= seen.insert(user.id.clone());
                }
                let last = answer.page_count.is_none_or(|n| page >= n) || !fresh;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::test_server::TestServer;

    // A server that repeats one page under an endless pageCount ends the search after the
    // first page that names no user anew (the deleted user found once), and one that names
    // new users on every page is refused after MAX_SEARCH_PAGES pages, instead of being
    // asked without end. Users not in the `deleted` state, or of emails not asked for, are
    // never taken, whatever the server says.
    #[tokio::test]
    async fn a_search_that_pages_without_end_is_bounded() {
        let server = TestServer::start(USERS_SEARCH_PATH, |_| {
            json!({"pageCount": 1_000_000, "results": [
                {"id": "d-1", "email": "Ana@x.example", "state": "deleted", "version": 2},
                {"id": "a-1", "email": "ana@x.example", "state": "active", "version": 5},
                {"id": "d-9", "email": "other@x.example", "state": "deleted", "version": 1},
            ]})
        })
        .await;
        let found = server
            .client
            .find_deleted_users(&["ana@x.example".to_owned()])
            .await
            .expect("found");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].id.as_str(), found[0].version), ("d-1", 2));
        assert_eq!(server.calls(), 2, "the repeated page ends it");

        let server = TestServer::start(USERS_SEARCH_PATH, |n| {
            json!({"pageCount": 1_000_000, "results": [
                {"id": format!("d-{n}"), "email": "ana@x.example", "state": "deleted"},
            ]})
        })
        .await;
        let error = server
            .client
            .find_deleted_users(&["ana@x.example".to_owned()])
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("more than 100 pages"), "{error}");
        assert_eq!(server.calls(), MAX_SEARCH_PAGES);
    }
}
