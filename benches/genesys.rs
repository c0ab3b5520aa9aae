//! Genesys Cloud read benchmark: a full snapshot (discovery, users in two listings of 25 a
//! page, groups through two lists, roles) of 10,000 users and 200 groups from the sandbox's
//! Genesys flavour, embedded in this process, over loopback.
//!
//! Two figures: the client's own speed with no rate limit (median of 3 runs, a fresh client
//! each, requests counted), and one run under the Genesys default of 300 requests a minute,
//! which is what a plan against a real org of that size costs at least. Run with
//! `cargo bench --bench genesys`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use scimctl::sandbox::{self, Flavor, GenesysOptions, SandboxAuth, SandboxConfig};
use scimctl::scim::{
    ClientConfig, Credentials, Dialect, OAuthSettings, ScimClient, ScimRead, Secret, genesys,
};
use serde_json::{Value, json};

const USERS: usize = 10_000;
const GROUPS: usize = 200;
const RUNS: usize = 3;
const ID: &str = "bench-client";
const SECRET: &str = "bench-secret";

fn users() -> Vec<Value> {
    (0..USERS)
        .map(|i| {
            json!({
                "id": format!("{i:032x}"),
                "userName": format!("agent{i:05}@northwind.example"),
                "displayName": format!("Agent {i}"),
                "externalId": format!("hr-{i:05}"),
                "active": i % 20 != 0,
                "title": "Support Agent",
                "emails": [{"value": format!("agent{i:05}@work.example"), "type": "work"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "department": "Support", "division": "Home"
                },
                "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User": {
                    "routingSkills": [{"name": "Billing", "proficiency": 3}]
                }
            })
        })
        .collect()
}

fn groups() -> Vec<Value> {
    (0..GROUPS)
        .map(|g| {
            let members: Vec<Value> = (0..20)
                .map(|k| json!({"value": format!("{:032x}", (g * 20 + k) % USERS), "type": "User"}))
                .collect();
            json!({"displayName": format!("Team {g:03}"), "members": members})
        })
        .collect()
}

fn client(base: &str, token: &str, per_minute: Option<u32>) -> ScimClient {
    let mut config = ClientConfig::new(base);
    config.dialect = Dialect::Genesys;
    config.page_size = Some(genesys::PAGE_SIZE);
    config.max_concurrency = 4;
    config.requests_per_minute = per_minute;
    config.credentials = Credentials::OAuth(OAuthSettings {
        token_url: token.to_owned(),
        client_id: ID.into(),
        client_secret: Secret::new(SECRET),
        scope: None,
    });
    ScimClient::new(config).unwrap()
}

/// The Genesys flavour, seeded, with `per_minute` requests a minute per token.
async fn serve(per_minute: u32) -> sandbox::RunningSandbox {
    let server = sandbox::start(
        SandboxConfig {
            auth: SandboxAuth::OAuth {
                client_id: ID.into(),
                client_secret: SECRET.into(),
                token_ttl: Duration::from_secs(3600),
            },
            ..SandboxConfig::default()
        }
        .with_flavor(Flavor::Genesys(GenesysOptions {
            requests_per_minute: per_minute,
            ..GenesysOptions::default()
        })),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    server.store().seed(users(), groups()).unwrap();
    server
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The client's own speed: the org's window set out of reach.
        let server = serve(u32::MAX).await;
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..RUNS {
            let c = client(&server.base_url, &server.token_url, None);
            let started = tokio::time::Instant::now();
            let snapshot = c.snapshot().await.unwrap();
            times.push(started.elapsed());
            assert_eq!((snapshot.users.len(), snapshot.groups.len()), (USERS, GROUPS));
            requests = c.stats().requests;
        }
        times.sort();
        println!(
            "genesys snapshot, {USERS} users ({} inactive) + {GROUPS} groups, no rate limit: median {:.2} s over {RUNS} runs, {requests} requests",
            USERS / 20,
            times[RUNS / 2].as_secs_f64()
        );
        server.shutdown().await.unwrap();
        // Genesys's default window, enforced by the simulator as by Genesys.
        let server = serve(300).await;
        let c = client(&server.base_url, &server.token_url, Some(300));
        let started = tokio::time::Instant::now();
        c.snapshot().await.unwrap();
        let elapsed = started.elapsed();
        let stats = c.stats();
        println!(
            "genesys snapshot at 300 requests/min: {:.1} s, {} requests ({:.1} a minute), {} answered 429",
            elapsed.as_secs_f64(),
            stats.requests,
            f64::from(u32::try_from(stats.requests).unwrap()) / elapsed.as_secs_f64() * 60.0,
            stats.rate_limited
        );
        server.shutdown().await.unwrap();
    });
}
