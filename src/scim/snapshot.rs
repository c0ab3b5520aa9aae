//! The live snapshot: every User and Group of a tenant, read with `startIndex`/`count`
//! paging and no per-object reads.
//!
//! The first page tells `totalResults`; the other pages are then requested at once and the
//! client's concurrency limit bounds how many are in flight. A listing is accepted only when
//! it is consistent: every page reported the same total, and the ids read are unique and as
//! many as the total. Otherwise something was created or deleted while we read (servers
//! such as scim2-server order by random id, so a create can shift pages), and the listing is
//! read again, a bounded number of times.

use std::collections::HashSet;

use tokio::task::JoinSet;

use super::client::{Capabilities, Dialect, ScimClient};
use super::error::ScimError;
use super::genesys;
use super::reading::{ReadCounts, ReadKind};
use crate::model::Kind;
pub use crate::model::tenant::Snapshot;
use crate::model::tenant::{LiveGroup, LiveUser, Resource};

/// How many times a listing is read before it is declared unstable.
const LISTING_ATTEMPTS: u32 = 4;

/// Reads the whole tenant: capabilities first (once per client), then users and groups
/// side by side (and, on Genesys Cloud, the role definitions and divisions beside them).
/// Role grants cost a request per user and are read separately, for the users that need
/// them ([`ScimClient::read_grants`]).
pub async fn snapshot(client: &ScimClient) -> Result<Snapshot, ScimError> {
    let caps = client.capabilities().await?;
    let (users, groups, roles, divisions) = match client.dialect() {
        Dialect::Scim => {
            let (users, groups) = tokio::join!(
                list_all::<LiveUser>(client, &caps),
                list_all::<LiveGroup>(client, &caps)
            );
            (users, groups, Ok(None), Ok(None))
        }
        Dialect::Genesys => {
            let (users, groups, roles, divisions) = tokio::join!(
                genesys::list_users(client, &caps),
                genesys::list_groups(client, &caps),
                client.list_roles(),
                Box::pin(client.list_divisions())
            );
            (users, groups, roles.map(Some), divisions.map(Some))
        }
    };
    Ok(Snapshot {
        users: users?,
        groups: groups?,
        roles: roles?,
        divisions: divisions?,
        grants: None,
        group_grants: None,
        deleted_users: Vec::new(),
        licenses: None,
    })
}

/// Every resource of one kind, consistent across pages (see the module docs).
pub async fn list_all<R: Resource>(
    client: &ScimClient,
    caps: &Capabilities,
) -> Result<Vec<R>, ScimError> {
    list_all_at(client, client.endpoint(R::KIND), None, caps.page_size).await
}

/// Every resource of the list at `path` matching `filter`, consistent across pages.
pub(super) async fn list_all_at<R: Resource>(
    client: &ScimClient,
    path: &'static str,
    filter: Option<&'static str>,
    page_size: usize,
) -> Result<Vec<R>, ScimError> {
    let mut why = String::new();
    for attempt in 1..=LISTING_ATTEMPTS {
        match read_once::<R>(client, path, filter, page_size).await? {
            Ok(all) => return Ok(all),
            Err(reason) => {
                tracing::info!(endpoint = path, attempt, %reason, "listing changed while read; reading again");
                why = reason;
            }
        }
    }
    Err(ScimError::Unstable {
        endpoint: path,
        attempts: LISTING_ATTEMPTS,
        why,
    })
}

/// One full read: `Ok(Ok(all))` when consistent, `Ok(Err(why))` when it must be read again.
async fn read_once<R: Resource>(
    client: &ScimClient,
    path: &'static str,
    filter: Option<&'static str>,
    page_size: usize,
) -> Result<Result<Vec<R>, String>, ScimError> {
    let first = client.list_page_at::<R>(path, 1, page_size, filter).await?;
    let total = first.total;
    let got = first.resources.len() as u64;
    let mut counted = Counted::new(client, R::KIND, total);
    counted.got(got);
    if got >= total {
        return Ok(counted.keep_if(check(first.resources, total)));
    }
    if got == 0 {
        return Ok(Err(format!(
            "first page is empty but totalResults is {total}"
        )));
    }
    // A server may return fewer than asked (its own cap); page by what it returns.
    let step = got.min(page_size as u64);
    let mut tasks = JoinSet::new();
    let mut start = 1 + step;
    let mut index = 1usize;
    while start <= total {
        let client = client.clone();
        let count = usize::try_from(step).unwrap_or(page_size);
        tasks.spawn(async move {
            (
                index,
                start,
                client.list_page_at::<R>(path, start, count, filter).await,
            )
        });
        start += step;
        index += 1;
    }
    let mut pages: Vec<Option<Vec<R>>> = (0..index).map(|_| None).collect();
    pages[0] = Some(first.resources);
    let mut problem = None;
    while let Some(joined) = tasks.join_next().await {
        let (i, start, page) =
            joined.map_err(|e| ScimError::Config(format!("listing task failed: {e}")))?;
        let page = page?;
        counted.got(page.resources.len() as u64);
        if page.total != total && problem.is_none() {
            problem = Some(format!(
                "totalResults was {total} on the first page and {} at index {start}",
                page.total
            ));
        }
        pages[i] = Some(page.resources);
    }
    if let Some(p) = problem {
        return Ok(Err(p));
    }
    // Sized by what arrived, never by what the server claims.
    let mut all = Vec::with_capacity(pages.iter().flatten().map(Vec::len).sum());
    all.extend(pages.into_iter().flatten().flatten());
    Ok(counted.keep_if(check(all, total)))
}

/// One listing's share of the client's [`ReadCounts`]: taken back when the listing is not
/// kept (it is read again, or the read failed), so a progress display never counts twice.
/// Only users and groups are counted.
struct Counted {
    counts: std::sync::Arc<ReadCounts>,
    kind: Option<ReadKind>,
    total: u64,
    read: u64,
    kept: bool,
}

impl Counted {
    fn new(client: &ScimClient, kind: Kind, total: u64) -> Counted {
        let kind = match kind {
            Kind::User => Some(ReadKind::Users),
            Kind::Group => Some(ReadKind::Groups),
            Kind::Role => None,
        };
        let counts = client.read_counts();
        if let Some(kind) = kind {
            counts.expect(kind, total);
        }
        Counted {
            counts,
            kind,
            total,
            read: 0,
            kept: false,
        }
    }

    fn got(&mut self, n: u64) {
        self.read += n;
        if let Some(kind) = self.kind {
            self.counts.got(kind, n);
        }
    }

    fn keep_if<T>(mut self, listing: Result<T, String>) -> Result<T, String> {
        self.kept = listing.is_ok();
        listing
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let (false, Some(kind)) = (self.kept, self.kind) {
            self.counts.forget(kind, self.total, self.read);
        }
    }
}

fn check<R: Resource>(all: Vec<R>, total: u64) -> Result<Vec<R>, String> {
    if all.len() as u64 != total {
        return Err(format!(
            "read {} resources, totalResults is {total}",
            all.len()
        ));
    }
    let mut seen = HashSet::with_capacity(all.len());
    for r in &all {
        let Some(id) = r.id() else {
            return Err("a resource has no id".into());
        };
        if !seen.insert(id) {
            return Err(format!("id {id} was listed twice"));
        }
    }
    Ok(all)
}
