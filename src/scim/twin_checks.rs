//! The checks for group twins after creates (`apply::twins`), asked together: the names
//! asked within a moment of each other go out as one filtered listing
//! (`displayName eq "A" or displayName eq "B" ...`, at most [`MOST_NAMES`]), so a run that
//! creates groups in a Bulk request checks them in one request instead of one each. A name
//! whose shared listing failed, or may have been cut short, is asked alone, so a caller
//! sees what its own query would have given it.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::bulk::{MOST_WAIT, WINDOW};
use super::client::ScimClient;
use super::wire::Group;

/// Most names in one listing (its URL stays well under common limits).
pub(super) const MOST_NAMES: usize = 20;

/// Names waiting for their listing.
#[derive(Debug, Default)]
pub(super) struct TwinChecks {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<(String, oneshot::Sender<Option<Vec<Group>>>)>,
    first: Option<tokio::time::Instant>,
    last: Option<tokio::time::Instant>,
    flusher: bool,
}

impl TwinChecks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ScimClient {
    /// The groups named `name` (without members where the server leaves them out), asked
    /// together with the other names asked now; `None` when the caller must ask alone.
    pub(super) async fn twins_together(
        &self,
        checks: &Arc<TwinChecks>,
        name: &str,
    ) -> Option<Vec<Group>> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let now = tokio::time::Instant::now();
            let mut q = checks.lock();
            q.waiting.push((name.to_owned(), reply));
            q.first.get_or_insert(now);
            q.last = Some(now);
            !std::mem::replace(&mut q.flusher, true)
        };
        if start {
            let (client, checks) = (self.clone(), checks.clone());
            tokio::spawn(async move { client.flush_twin_checks(&checks).await });
        }
        answer.await.ok().flatten()
    }

    async fn flush_twin_checks(self, checks: &TwinChecks) {
        let waiting = loop {
            let wait = {
                let now = tokio::time::Instant::now();
                let mut q = checks.lock();
                match (q.first, q.last) {
                    (Some(first), Some(last)) if now < last + WINDOW && now < first + MOST_WAIT => {
                        Some((last + WINDOW).min(first + MOST_WAIT) - now)
                    }
                    _ => {
                        q.flusher = false;
                        q.first = None;
                        q.last = None;
                        None
                    }
                }
            };
            match wait {
                Some(d) => tokio::time::sleep(d).await,
                None => break std::mem::take(&mut checks.lock().waiting),
            }
        };
        let mut rest = waiting;
        let mut sends = Vec::new();
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(MOST_NAMES));
            sends.push(self.answer_twin_checks(std::mem::replace(&mut rest, tail)));
        }
        futures_util::future::join_all(sends).await;
    }

    async fn answer_twin_checks(&self, names: Vec<(String, oneshot::Sender<Option<Vec<Group>>>)>) {
        if let [(name, _)] = names.as_slice() {
            // Alone anyway: the caller's own query.
            let found = self.twins_listed(&[name.as_str()]).await.ok();
            for (_, reply) in names {
                let _ = reply.send(found.clone());
            }
            return;
        }
        let asked: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let found = self.twins_listed(&asked).await.ok();
        for (name, reply) in names {
            let mine = found.as_ref().map(|all| {
                all.iter()
                    .filter(|g| g.display_name.eq_ignore_ascii_case(&name))
                    .cloned()
                    .collect()
            });
            let _ = reply.send(mine);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten checks asked together go out as one listing and each gets only its own groups;
    /// twins are found.
    #[tokio::test]
    async fn checks_asked_together_share_one_listing() {
        let sandbox = crate::sandbox::start(
            crate::sandbox::SandboxConfig::default(),
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("sandbox");
        let client = ScimClient::new(crate::scim::ClientConfig::new(sandbox.base_url.clone()))
            .expect("client");
        for name in (0..10)
            .map(|i| format!("Team {i}"))
            .chain(["Team 3".to_owned()])
        {
            let g: Group =
                serde_json::from_value(serde_json::json!({"displayName": name})).expect("group");
            client.create(&g.with_schemas()).await.expect("created");
        }
        client.capabilities().await.expect("discovery");
        let before = sandbox.stats().by_method.get;
        let names: Vec<String> = (0..10).map(|i| format!("team {i}")).collect();
        let found =
            futures_util::future::join_all(names.iter().map(|n| client.find_twins(n))).await;
        assert_eq!(sandbox.stats().by_method.get - before, 1, "one listing");
        for (i, groups) in found.into_iter().enumerate() {
            let groups = groups.expect("listed");
            let want = if i == 3 { 2 } else { 1 };
            assert_eq!(groups.len(), want, "team {i}: {groups:?}");
            assert!(groups.iter().all(|g| g.display_name == format!("Team {i}")));
        }
        sandbox.shutdown().await.expect("stopped");
    }
}
