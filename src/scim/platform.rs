//! Genesys Cloud's Platform API: the calls beside SCIM that scimctl needs (groups, roles,
//! grants, divisions), sent through the same loop as every SCIM request (rate limit, token,
//! retry, counters), as plain JSON on the API host.
//!
//! Lists page with `pageSize`/`pageNumber` and answer `{entities, pageNumber, pageCount,
//! total}` (docs/genesys.md §4). Error bodies are `{message, code, status, …}` (§10), which
//! [`super::wire::ErrorBody`] already reads.

use std::collections::HashSet;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::client::{Request, ScimClient, decode, to_body};
use super::error::ScimError;

/// A Platform API request: plain JSON, an absolute path, never `If-Match` (Platform writes
/// carry their version in the body).
fn platform_request<'a, B: Serialize>(
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, String)],
    body: Option<&B>,
    idempotent: bool,
) -> Result<Request<'a>, ScimError> {
    Ok(Request {
        method,
        path,
        query,
        body: body.map(to_body).transpose()?,
        if_match: None,
        idempotent,
        platform: true,
    })
}

/// Page size for Platform lists: the documented maximum of most list endpoints is 500
/// (terraform-provider-genesyscloud pages groups by 500); 100 keeps each answer small.
pub const PLATFORM_PAGE: usize = 100;

/// Pages of one Platform list beyond which the list is refused: a million entities at
/// [`PLATFORM_PAGE`] a page, far past any org's divisions, groups, roles or licensed users.
const MAX_PLATFORM_PAGES: u64 = 10_000;

/// One page of a Platform API list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntityPage<T> {
    #[serde(default = "Vec::new")]
    entities: Vec<T>,
    #[serde(default)]
    page_count: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
}

/// An entity with an id, so a listing can be checked for repeats.
pub(crate) trait Entity {
    /// Its id.
    fn entity_id(&self) -> &str;
}

impl ScimClient {
    /// Sends one Platform API request to `path` (absolute, e.g. `/api/v2/groups`) and
    /// returns the body (empty for 202/204).
    pub(crate) async fn platform_send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        idempotent: bool,
    ) -> Result<Vec<u8>, ScimError> {
        let request = platform_request(method, path, query, body, idempotent)?;
        Ok(self.execute(&request).await?.body)
    }

    /// A Platform API request whose answer is JSON of type `T`.
    pub(crate) async fn platform_json<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        idempotent: bool,
    ) -> Result<T, ScimError> {
        let request = platform_request(method, path, query, body, idempotent)?;
        let response = self.execute(&request).await?;
        decode(&request, &response.body)
    }

    /// A GET of `path` (absolute) answering JSON, with the answer's `ETag` header: what
    /// `doctor` compares with the body's `meta.version`.
    pub(crate) async fn get_json_tagged(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(serde_json::Value, Option<String>), ScimError> {
        let request = platform_request(Method::GET, path, query, None::<&()>, true)?;
        let response = self.execute(&request).await?;
        let etag = response
            .headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok((decode(&request, &response.body)?, etag))
    }

    /// Every entity of a paged Platform list at `path`, `extra` query parameters added to
    /// each page. The first page tells the page count; the others are requested at once
    /// (the client's concurrency and rate limit bound them). Ids must be unique and as many
    /// as the total the first page gave, else the list is read again (a bounded number of
    /// times), as SCIM listings are.
    pub(crate) async fn platform_list<T>(
        &self,
        path: &'static str,
        extra: &[(&'static str, String)],
    ) -> Result<Vec<T>, ScimError>
    where
        T: DeserializeOwned + Entity + Send + 'static,
    {
        const ATTEMPTS: u32 = 4;
        let mut why = String::new();
        for _ in 0..ATTEMPTS {
            match self.platform_list_once::<T>(path, extra).await? {
                Ok(all) => return Ok(all),
                Err(reason) => {
                    tracing::info!(path, %reason, "list changed while read; reading again");
                    why = reason;
                }
            }
        }
        Err(ScimError::Unstable {
            endpoint: path,
            attempts: ATTEMPTS,
            why,
        })
    }

    async fn platform_list_once<T>(
        &self,
        path: &'static str,
        extra: &[(&'static str, String)],
    ) -> Result<Result<Vec<T>, String>, ScimError>
    where
        T: DeserializeOwned + Entity + Send + 'static,
    {
        let query = |n: u64| {
            let mut q = vec![
                ("pageSize", PLATFORM_PAGE.to_string()),
                ("pageNumber", n.to_string()),
            ];
            q.extend(extra.iter().cloned());
            q
        };
        let first: EntityPage<T> = self
            .platform_json(Method::GET, path, &query(1), None::<&()>, true)
            .await?;
        let pages = first.page_count.unwrap_or(1).max(1);
        let total = first.total;
        // The page count is the server's word; it is believed only as far as the total and
        // the first page's size bear it out (and never past MAX_PLATFORM_PAGES), so a hostile
        // or broken `pageCount` cannot make the client ask without end.
        let per_page = (first.entities.len() as u64).max(1);
        let borne = total.map_or(MAX_PLATFORM_PAGES, |t| t.div_ceil(per_page).max(1));
        if pages > borne.min(MAX_PLATFORM_PAGES) {
            return Ok(Err(format!(
                "{pages} pages announced for {} ({} on the first page)",
                total.map_or_else(
                    || "an unstated total".to_owned(),
                    |t| format!("{t} entities")
                ),
                first.entities.len()
            )));
        }
        let mut all = first.entities;
        let mut tasks = JoinSet::new();
        for n in 2..=pages {
            let client = self.clone();
            let q = query(n);
            tasks.spawn(async move {
                let page: Result<EntityPage<T>, ScimError> = client
                    .platform_json(Method::GET, path, &q, None::<&()>, true)
                    .await;
                (n, page)
            });
        }
        let mut rest = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            let (n, page) =
                joined.map_err(|e| ScimError::Config(format!("listing task failed: {e}")))?;
            rest.push((n, page?));
        }
        rest.sort_by_key(|(n, _)| *n);
        for (_, page) in rest {
            if page.total != total {
                return Ok(Err(format!(
                    "total was {total:?} on the first page and {:?} later",
                    page.total
                )));
            }
            all.extend(page.entities);
        }
        let mut seen = HashSet::with_capacity(all.len());
        if let Some(id) = all
            .iter()
            .map(Entity::entity_id)
            .find(|id| !seen.insert(*id))
        {
            return Ok(Err(format!("id {id} was listed twice")));
        }
        if let Some(total) = total
            && total != all.len() as u64
        {
            return Ok(Err(format!(
                "read {} entities, total is {total}",
                all.len()
            )));
        }
        Ok(Ok(all))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::grants::DIVISIONS_PATH;
    use crate::scim::test_server::TestServer;

    // A first page announcing far more pages than its total bears out is not believed: the
    // list is read again a bounded number of times and then refused, instead of the client
    // asking for a billion pages. A list whose pages agree with its total reads whole.
    #[tokio::test]
    async fn a_page_count_the_total_does_not_bear_out_is_refused() {
        let server = TestServer::start(DIVISIONS_PATH, |_| {
            json!({"pageCount": 1_000_000_000u64, "total": 1,
                "entities": [{"id": "d-1", "name": "Home", "homeDivision": true}]})
        })
        .await;
        let error = server.client.list_divisions().await.expect_err("refused");
        assert!(
            matches!(error, ScimError::Unstable { .. })
                && error.to_string().contains("1000000000 pages"),
            "{error}"
        );
        assert_eq!(server.calls(), 4, "one first page per attempt");

        // No total: the hard cap still holds.
        let server = TestServer::start(
            DIVISIONS_PATH,
            |_| json!({"pageCount": 20_000, "entities": [{"id": "d-1", "name": "Home"}]}),
        )
        .await;
        server.client.list_divisions().await.expect_err("refused");
        assert_eq!(server.calls(), 4);

        let server = TestServer::start(DIVISIONS_PATH, |n| {
            json!({"pageCount": 3, "total": 201,
                "entities": (0..if n < 3 { 100 } else { 1 })
                    .map(|i| json!({"id": format!("d-{n}-{i}"), "name": "D"}))
                    .collect::<Vec<_>>()})
        })
        .await;
        let all = server.client.list_divisions().await.expect("read");
        assert_eq!((all.len(), server.calls()), (201, 3));
    }
}
