//! Password fingerprint benchmark: how long `plan` spends verifying the Argon2id fingerprints
//! (OWASP m = 19 MiB, t = 2, p = 1) of N users whose `fromEnv`/`fromFile` source resolved,
//! with the parallel verification `plan` uses (`apply::fingerprint::changed_at_source`, one
//! chunk per core).
//!
//! Run with `cargo bench --bench passwords [-- USERS]` (default 10,000 users; the bound
//! is 2 s on 2 cores). It prints the time of one hash, the wall time of the parallel
//! verification and, when fewer than 10,000 users were measured, the figure for 10,000 scaled
//! linearly (verification is per user and independent, so it scales linearly), then the time
//! of a second check with `watch`'s cache of pairs that verified.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use tokio::time::Instant;

use scimctl::apply::fingerprint::{self, Candidate};
use scimctl::scim::Secret;

fn main() {
    let users: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let threads = fingerprint::threads();
    let password = Secret::new("Bench-password-1");
    let start = Instant::now();
    let phc = fingerprint::fingerprint(&password).unwrap();
    let one = start.elapsed();
    let candidates = || -> Vec<Candidate> {
        (0..users)
            .map(|i| Candidate {
                user_name: format!("agent{i:06}@northwind.example"),
                // Every 100th user's source moved: those must come back as changed.
                password: Secret::new(if i % 100 == 7 {
                    "Bench-password-2"
                } else {
                    "Bench-password-1"
                }),
                phc: phc.clone(),
            })
            .collect()
    };
    // Cold: every pair is verified with Argon2 (what `plan` and `apply` do, and the first
    // reconcile of `watch`).
    let mut cache = fingerprint::VerifyCache::default();
    let start = Instant::now();
    let changed = cache.changed_at_source(candidates(), threads);
    let wall = start.elapsed();
    assert_eq!(changed.len(), (0..users).filter(|i| i % 100 == 7).count());
    println!("argon2id m=19456 KiB t=2 p=1: one hash {one:?}");
    println!(
        "verified {users} users on {threads} threads in {wall:?} ({} changed)",
        changed.len()
    );
    // Warm: `watch`'s later reconciles, where only pairs not seen to match before (here the
    // changed 1 %) are verified again.
    let start = Instant::now();
    let again = cache.changed_at_source(candidates(), threads);
    let warm = start.elapsed();
    assert_eq!(again, changed);
    println!(
        "watch, next reconcile (verified pairs remembered): {warm:?} ({} verified again)",
        again.len()
    );
    if users < 10_000 {
        #[allow(clippy::cast_precision_loss)]
        let scaled = wall.as_secs_f64() * 10_000.0 / users as f64;
        println!("scaled to 10000 users: {scaled:.1} s (bound 2 s)");
    }
}
