//! Request counters: every request by method, every answer by status, every injected fault by
//! kind, and OAuth tokens issued. Tests and benchmarks read them through
//! [`RunningSandbox::stats`](super::RunningSandbox::stats) to prove, for example, that a plan
//! made no per-resource reads or that a client honoured 429s.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use axum::http::Method;

/// Requests counted by HTTP method.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MethodCounts {
    /// GET.
    pub get: u64,
    /// POST (including `/oauth/token` and `.search`).
    pub post: u64,
    /// PUT.
    pub put: u64,
    /// PATCH.
    pub patch: u64,
    /// DELETE.
    pub delete: u64,
    /// Anything else.
    pub other: u64,
}

/// Injected faults counted by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// 500/503 answers from `error_rate`.
    pub errors: u64,
    /// Connections closed without an answer from `drop_rate` (before acting).
    pub drops: u64,
    /// Writes carried out whose connection was then closed without an answer, from
    /// `drop_after_rate`.
    pub drops_after: u64,
    /// 429 answers from `rate_limit`.
    pub rate_limited: u64,
}

/// A copy of the sandbox's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Every request received, whatever happened to it.
    pub requests: u64,
    /// Requests by method.
    pub by_method: MethodCounts,
    /// Answers by HTTP status (dropped connections have none).
    pub by_status: BTreeMap<u16, u64>,
    /// Injected faults.
    pub faults: FaultCounts,
    /// OAuth access tokens issued.
    pub tokens_issued: u64,
    /// `/Bulk` requests answered 200, and the operations they carried out.
    pub bulk_requests: u64,
    /// Operations carried out by `/Bulk` requests (each as its single request would be).
    pub bulk_operations: u64,
}

impl StatsSnapshot {
    /// Answers with this status.
    #[must_use]
    pub fn status(&self, status: u16) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }
}

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Stats(Mutex<StatsSnapshot>);

impl Stats {
    fn update(&self, f: impl FnOnce(&mut StatsSnapshot)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn request(&self, method: &Method) {
        self.update(|s| {
            s.requests += 1;
            let m = &mut s.by_method;
            let slot = match *method {
                Method::GET => &mut m.get,
                Method::POST => &mut m.post,
                Method::PUT => &mut m.put,
                Method::PATCH => &mut m.patch,
                Method::DELETE => &mut m.delete,
                _ => &mut m.other,
            };
            *slot += 1;
        });
    }

    pub(crate) fn status(&self, status: u16) {
        self.update(|s| *s.by_status.entry(status).or_default() += 1);
    }

    pub(crate) fn fault_error(&self) {
        self.update(|s| s.faults.errors += 1);
    }

    pub(crate) fn fault_drop(&self) {
        self.update(|s| s.faults.drops += 1);
    }

    pub(crate) fn fault_drop_after(&self) {
        self.update(|s| s.faults.drops_after += 1);
    }

    pub(crate) fn fault_rate_limited(&self) {
        self.update(|s| s.faults.rate_limited += 1);
    }

    pub(crate) fn bulk(&self, operations: usize) {
        self.update(|s| {
            s.bulk_requests += 1;
            s.bulk_operations += u64::try_from(operations).unwrap_or(u64::MAX);
        });
    }

    pub(crate) fn token_issued(&self) {
        self.update(|s| s.tokens_issued += 1);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
