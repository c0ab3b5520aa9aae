//! The client scenarios against the third-party peer, python-scim's scim2-server.
//!
//! The peer is started by `tests/peer/with-peer.sh`, which passes its URL and bearer token
//! as `SCIMCTL_PEER_URL` and `SCIMCTL_PEER_TOKEN`. Under CI (`CI=true`) the peer is required;
//! elsewhere a run without it says loudly that these tests were skipped.

use crate::scenarios;

/// The peer's URL and token, or `None` (after saying so) when it is not running.
#[allow(clippy::print_stderr)] // a skipped peer must be loud in the test output
pub(crate) fn peer() -> Option<(String, String)> {
    let url = std::env::var("SCIMCTL_PEER_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let token = std::env::var("SCIMCTL_PEER_TOKEN").unwrap_or_default();
    match url {
        Some(url) => Some((url, token)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but SCIMCTL_PEER_URL is not set: run under tests/peer/with-peer.sh")
        }
        None => {
            eprintln!(
                "SKIPPED: scim2-server peer tests (run `bash tests/peer/with-peer.sh cargo test` to include them)"
            );
            None
        }
    }
}

/// Every client scenario passes against scim2-server, paging 25 at a time so the snapshot
/// really pages.
#[tokio::test]
async fn scenarios_pass_against_scim2_server() {
    let Some((url, token)) = peer() else { return };
    let client = crate::support::bearer_client(&url, &token, Some(25));
    Box::pin(scenarios::run_all(&client, "peer-scenarios")).await;
    assert_eq!(client.capabilities().await.unwrap().page_size, 25);
    let stats = client.stats();
    assert_eq!(stats.retries, 0, "{stats:?}");
}

/// Without the token the peer answers 401, and the error says so without the token.
#[tokio::test]
async fn wrong_token_is_refused_by_scim2_server() {
    let Some((url, token)) = peer() else { return };
    let client = crate::support::bearer_client(&url, "not-the-token", None);
    let err = client
        .get::<scimctl::scim::wire::User>("0000")
        .await
        .expect_err("401");
    assert!(err.is_unauthorized(), "{err}");
    assert!(!err.to_string().contains(&token) && !err.to_string().contains("not-the-token"));
}
