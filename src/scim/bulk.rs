//! `/Bulk` (RFC 7644 §3.7): the writes of a run sent together, within the server's
//! `maxOperations` and `maxPayloadSize`.
//!
//! Nothing above the client layer knows about it. Each create, PATCH, PUT and DELETE the
//! applier sends is queued as one operation of the next Bulk request instead of going out
//! alone; its answer comes back to the caller as the response (or error) the single request
//! would have had, so conflicts, moved objects, lost answers and progress go through the same
//! paths whether a write went alone or in bulk. The applier keeps its order: it sends a write
//! only once everything it depends on has finished, so the operations of one Bulk request
//! never depend on each other, and `failOnErrors` is left unset (one failed operation
//! fails only itself).
//!
//! A queue is sent once it is full, or once no write has joined it for [`WINDOW`] (at most
//! [`MOST_WAIT`] after its first). A Bulk request refused as too large (413) is split in
//! two and each half sent again. One that fails as a whole with its outcome unknown (a 5xx
//! other than 501 and 503, a timeout, a dropped connection, an unreadable answer) hands each
//! of its operations an error that says so ([`ScimError::BulkFailed`]), so each caller does
//! what it does for a single request whose answer was lost: a create looks its object up by
//! natural key before sending it again, a PATCH or DELETE re-reads its object. The next Bulk
//! requests carry half as many operations, growing back after each success: a server that
//! fails on large requests gets smaller ones.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::client::{Capabilities, Request, Response, ScimClient, bytes_body::Body};
use super::error::ScimError;
use super::wire::ErrorBody;

/// Most operations put in one Bulk request, whatever the server allows.
pub const MOST_OPERATIONS: usize = 1_000;
/// The payload limit assumed of a server that announces Bulk without one (RFC 7643 §5
/// requires `maxPayloadSize`; a server that omits it is not trusted with more).
const ASSUMED_PAYLOAD: usize = 256 * 1024;
/// A queue is sent once no write has joined it for this long.
pub const WINDOW: Duration = Duration::from_millis(2);
/// ... and at the latest this long after its first write.
pub const MOST_WAIT: Duration = Duration::from_millis(25);
/// The schema URN of a Bulk request.
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// What a server allows in one Bulk request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most operations (at most [`MOST_OPERATIONS`]).
    pub max_operations: usize,
    /// Largest request body, in bytes, measured on the encoded body.
    pub max_payload: usize,
}

impl Limits {
    /// The limits of a server that announces Bulk; `None` when it does not, or allows
    /// fewer than two operations (nothing to gain).
    #[must_use]
    pub fn of(capabilities: &Capabilities) -> Option<Limits> {
        if !capabilities.bulk || capabilities.bulk_max_operations < 2 {
            return None;
        }
        let max_payload = match capabilities.bulk_max_payload {
            0 => ASSUMED_PAYLOAD,
            n => n,
        };
        Some(Limits {
            max_operations: capabilities.bulk_max_operations.min(MOST_OPERATIONS),
            max_payload,
        })
    }
}

/// One write waiting for its Bulk request.
pub(super) struct Pending {
    method: Method,
    /// The resource path relative to the base URL (`Users`, `Groups/abc`).
    path: String,
    if_match: Option<String>,
    body: Option<Body>,
    bulk_id: String,
    /// The operation as it goes into the request.
    encoded: Vec<u8>,
    reply: oneshot::Sender<Result<Response, ScimError>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the body: it may hold a password.
        f.debug_struct("Pending")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("bulk_id", &self.bulk_id)
            .finish_non_exhaustive()
    }
}

impl Pending {
    fn new(
        request: &Request<'_>,
        bulk_id: String,
    ) -> (Pending, oneshot::Receiver<Result<Response, ScimError>>) {
        let (reply, answer) = oneshot::channel();
        let if_match = request
            .if_match
            .map(|v| super::client::if_match_value(v).into_owned());
        let encoded = encode(
            &request.method,
            request.path,
            &bulk_id,
            if_match.as_deref(),
            request.body.as_deref(),
        );
        let pending = Pending {
            method: request.method.clone(),
            path: request.path.to_owned(),
            if_match,
            body: request.body.clone(),
            bulk_id,
            encoded,
            reply,
        };
        (pending, answer)
    }

    fn answer(self, result: Result<Response, ScimError>) {
        // The caller may have gone (its run was stopped); the write was made all the same.
        let _ = self.reply.send(result);
    }
}

/// One operation of a Bulk request: `method`, `bulkId`, `path`, `version` (the entity tag
/// of `If-Match`) and `data` (the body the single request would have had, as is).
fn encode(
    method: &Method,
    path: &str,
    bulk_id: &str,
    version: Option<&str>,
    data: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = Map::new();
    head.insert("method".into(), Value::from(method.as_str()));
    head.insert("bulkId".into(), Value::from(bulk_id));
    head.insert("path".into(), Value::from(format!("/{path}")));
    if let Some(v) = version {
        head.insert("version".into(), Value::from(v));
    }
    let mut out = Value::Object(head).to_string().into_bytes();
    if let Some(data) = data {
        out.pop();
        out.extend_from_slice(b",\"data\":");
        out.extend_from_slice(data);
        out.push(b'}');
    }
    out
}

/// The bytes of a Bulk request around `operations`, in order.
fn envelope<'a>(operations: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = format!(r#"{{"schemas":["{BULK_REQUEST}"],"Operations":["#).into_bytes();
    for (i, op) in operations.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(op);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The size of an envelope with no operations.
fn envelope_size() -> usize {
    envelope(std::iter::empty()).len()
}

/// The writes waiting for a Bulk request, and how many may go in one.
#[derive(Debug)]
pub(super) struct Batcher {
    limits: Limits,
    queue: Mutex<Queue>,
}

#[derive(Debug)]
struct Queue {
    pending: Vec<Pending>,
    /// Encoded size of `pending` with its envelope.
    bytes: usize,
    /// When the first and the last of `pending` joined.
    first: Option<tokio::time::Instant>,
    last: Option<tokio::time::Instant>,
    /// A task will send what is pending.
    flusher: bool,
    /// Most operations per request now: the server's limit, halved after each request that
    /// failed as a whole and doubled back after each success.
    cap: usize,
    /// Bulk ids given so far.
    ids: u64,
}

/// What joining the queue asks of the caller.
pub(super) struct Joined {
    /// A full request to send now.
    pub(super) full: Option<Vec<Pending>>,
    /// A flusher to start for the rest.
    pub(super) start_flusher: bool,
}

impl Batcher {
    pub(super) fn new(limits: Limits) -> Batcher {
        Batcher {
            limits,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                bytes: envelope_size(),
                first: None,
                last: None,
                flusher: false,
                cap: limits.max_operations,
                ids: 0,
            }),
        }
    }

    /// Most operations in one request (the server's limit, capped).
    pub(super) fn max_operations(&self) -> usize {
        self.limits.max_operations
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `request` fits in a Bulk request at all: a body over the payload limit on
    /// its own is sent alone.
    pub(super) fn fits(&self, request: &Request<'_>) -> bool {
        let body = request.body.as_ref().map_or(0, |b| b.len());
        // The operation's own fields (method, bulkId, path, version) take well under 512.
        envelope_size() + body + request.path.len() + 512 <= self.limits.max_payload
    }

    /// Queues `request`; the receiver gets its answer once its Bulk request is answered.
    pub(super) fn join(
        &self,
        request: &Request<'_>,
    ) -> (Joined, oneshot::Receiver<Result<Response, ScimError>>) {
        let now = tokio::time::Instant::now();
        let mut q = self.lock();
        q.ids += 1;
        let (pending, answer) = Pending::new(request, format!("op{}", q.ids));
        let grows = pending.encoded.len() + 1;
        let full = (!q.pending.is_empty()
            && (q.pending.len() >= q.cap || q.bytes + grows > self.limits.max_payload))
            .then(|| {
                q.bytes = envelope_size();
                q.first = None;
                std::mem::take(&mut q.pending)
            });
        q.bytes += grows;
        q.first.get_or_insert(now);
        q.last = Some(now);
        q.pending.push(pending);
        let start_flusher = !std::mem::replace(&mut q.flusher, true);
        (
            Joined {
                full,
                start_flusher,
            },
            answer,
        )
    }

    /// For the flusher: how long to wait before looking again, or (`Ok`) what to send now,
    /// in requests within the limits. The flusher stops after taking.
    pub(super) fn due(&self) -> Result<Vec<Vec<Pending>>, Duration> {
        let now = tokio::time::Instant::now();
        let mut q = self.lock();
        if let (Some(first), Some(last)) = (q.first, q.last) {
            let quiet = last + WINDOW;
            let latest = first + MOST_WAIT;
            if now < quiet && now < latest {
                return Err(quiet.min(latest) - now);
            }
        }
        q.flusher = false;
        q.first = None;
        q.last = None;
        q.bytes = envelope_size();
        let pending = std::mem::take(&mut q.pending);
        Ok(self.chunks(pending, q.cap))
    }

    /// `pending` in requests of at most `cap` operations and the payload limit.
    fn chunks(&self, pending: Vec<Pending>, cap: usize) -> Vec<Vec<Pending>> {
        let mut out: Vec<Vec<Pending>> = Vec::new();
        let mut bytes = envelope_size();
        for p in pending {
            let grows = p.encoded.len() + 1;
            match out.last_mut() {
                Some(last) if last.len() < cap && bytes + grows <= self.limits.max_payload => {
                    bytes += grows;
                    last.push(p);
                }
                _ => {
                    bytes = envelope_size() + grows;
                    out.push(vec![p]);
                }
            }
        }
        out
    }

    /// After a request that failed as a whole: the next ones carry half as many.
    fn shrink(&self) {
        let mut q = self.lock();
        q.cap = (q.cap / 2).max(1);
    }

    /// After a request that was answered: back towards the server's limit.
    fn grow(&self) {
        let mut q = self.lock();
        q.cap = (q.cap * 2).min(self.limits.max_operations);
    }
}

/// Whether a Bulk request that failed as a whole with `error` may have been carried out in
/// part: anything but an answer saying it was not (4xx, 501, 503) or a connection never
/// made.
fn unsure(error: &ScimError) -> bool {
    match error.status() {
        Some(s) => s.is_server_error() && !matches!(s.as_u16(), 501 | 503),
        None => error.is_ambiguous() || matches!(error, ScimError::Decode { .. }),
    }
}

impl ScimClient {
    /// Sends `request` as an operation of a Bulk request (or alone, when it is too large
    /// for one) and answers as the single request would have been answered.
    pub(super) async fn bulk_write(
        &self,
        batcher: &Arc<Batcher>,
        request: &Request<'_>,
    ) -> Result<Response, ScimError> {
        if !batcher.fits(request) {
            return self.execute(request).await;
        }
        let (joined, answer) = batcher.join(request);
        if let Some(full) = joined.full {
            let (client, batcher) = (self.clone(), batcher.clone());
            tokio::spawn(async move { client.send_bulk(&batcher, full).await });
        }
        if joined.start_flusher {
            let (client, batcher) = (self.clone(), batcher.clone());
            tokio::spawn(async move { client.flush(&batcher).await });
        }
        answer.await.unwrap_or_else(|_| {
            Err(ScimError::BulkFailed {
                method: request.method.to_string(),
                path: self.path_of(request.path),
                unsure: true,
                why: "the Bulk request carrying it was abandoned".into(),
            })
        })
    }

    /// The flusher: waits until the queue is due, then sends it.
    async fn flush(self, batcher: &Batcher) {
        let chunks = loop {
            match batcher.due() {
                Ok(chunks) => break chunks,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        };
        let sends = chunks.into_iter().map(|c| self.send_bulk(batcher, c));
        futures_util::future::join_all(sends).await;
    }

    /// Sends one Bulk request and hands each operation its answer.
    fn send_bulk<'a>(
        &'a self,
        batcher: &'a Batcher,
        chunk: Vec<Pending>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if chunk.is_empty() {
                return;
            }
            let body: Body = envelope(chunk.iter().map(|p| p.encoded.as_slice())).into();
            let request = Request {
                method: Method::POST,
                path: "Bulk",
                query: &[],
                body: Some(body),
                if_match: None,
                idempotent: false,
                platform: false,
            };
            let sent = self.execute(&request).await;
            match sent {
                Ok(response) => match parse_results(&response.body) {
                    Ok(results) => {
                        batcher.grow();
                        self.answer_each(chunk, results);
                    }
                    Err(why) => self.fail_each(chunk, true, &format!("its answer: {why}")),
                },
                Err(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) && chunk.len() > 1 => {
                    tracing::debug!(operations = chunk.len(), "Bulk request too large; split");
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    futures_util::future::join(
                        self.send_bulk(batcher, first),
                        self.send_bulk(batcher, second),
                    )
                    .await;
                }
                Err(e) if e.status() == Some(StatusCode::PAYLOAD_TOO_LARGE) => {
                    // One operation the server will not take in bulk: alone.
                    for p in chunk {
                        let alone = self.alone(&p).await;
                        p.answer(alone);
                    }
                }
                Err(e) => {
                    let unsure = unsure(&e);
                    if unsure {
                        batcher.shrink();
                    }
                    tracing::warn!(operations = chunk.len(), error = %e, unsure, "a Bulk request failed as a whole");
                    self.fail_each(chunk, unsure, &e.to_string());
                }
            }
        })
    }

    /// Sends a queued write as a request of its own.
    async fn alone(&self, p: &Pending) -> Result<Response, ScimError> {
        let request = Request {
            method: p.method.clone(),
            path: &p.path,
            query: &[],
            body: p.body.clone(),
            if_match: p.if_match.as_deref(),
            idempotent: p.method != Method::POST && p.if_match.is_some()
                || matches!(p.method, Method::PUT | Method::DELETE),
            platform: false,
        };
        self.execute(&request).await
    }

    fn fail_each(&self, chunk: Vec<Pending>, unsure: bool, why: &str) {
        for p in chunk {
            let error = ScimError::BulkFailed {
                method: p.method.to_string(),
                path: self.path_of(&p.path),
                unsure,
                why: why.to_owned(),
            };
            p.answer(Err(error));
        }
    }

    /// Hands each operation of `chunk` its result: by `bulkId`, then, for results without a
    /// known one, in order among the operations of the same method (RFC 7644 requires the
    /// `bulkId` only of POSTs, and results in the order of the request).
    fn answer_each(&self, chunk: Vec<Pending>, results: Vec<OpResult>) {
        let mut slots: Vec<Option<Pending>> = chunk.into_iter().map(Some).collect();
        let mut unmatched = Vec::new();
        for result in results {
            let by_id = result.bulk_id.as_deref().and_then(|id| {
                slots
                    .iter()
                    .position(|s| s.as_ref().is_some_and(|p| p.bulk_id == id))
            });
            match by_id {
                Some(i) => {
                    if let Some(p) = slots[i].take() {
                        let answer = self.op_answer(&p, &result);
                        p.answer(answer);
                    }
                }
                None => unmatched.push(result),
            }
        }
        for result in unmatched {
            let same = slots.iter().position(|s| {
                s.as_ref().is_some_and(|p| {
                    result
                        .method
                        .as_deref()
                        .is_none_or(|m| m.eq_ignore_ascii_case(p.method.as_str()))
                })
            });
            if let Some(p) = same.and_then(|i| slots[i].take()) {
                let answer = self.op_answer(&p, &result);
                p.answer(answer);
            }
        }
        let left: Vec<Pending> = slots.into_iter().flatten().collect();
        if !left.is_empty() {
            self.fail_each(left, true, "the server's answer has no result for it");
        }
    }

    /// One operation's result as the single request's response, or its error.
    fn op_answer(&self, p: &Pending, result: &OpResult) -> Result<Response, ScimError> {
        let status = StatusCode::from_u16(result.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let body = result
            .response
            .as_ref()
            .map(|r| serde_json::to_vec(r).unwrap_or_default())
            .unwrap_or_default();
        if !status.is_success() {
            let error = ErrorBody::parse(&body);
            return Err(ScimError::Status {
                method: p.method.to_string(),
                path: self.path_of(&p.path),
                status,
                scim_type: error.scim_type.clone(),
                detail: error.description(),
                retry_after: None,
            });
        }
        let mut headers = HeaderMap::new();
        if let Some(v) = result
            .version
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::ETAG, v);
        }
        if let Some(l) = result
            .location
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::LOCATION, l);
        }
        let body = if body.is_empty() {
            stand_in(p, result)
        } else {
            body
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The body of a successful create or replace whose result carries no `response` (RFC 7644
/// makes it optional): what was sent, with the `id` from `location` and the version, which
/// is what the server said it stored. Empty for other methods.
fn stand_in(p: &Pending, result: &OpResult) -> Vec<u8> {
    if !matches!(p.method, Method::POST | Method::PUT) {
        return Vec::new();
    }
    let (Some(body), Some(location)) = (&p.body, &result.location) else {
        return Vec::new();
    };
    let Ok(Value::Object(mut doc)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let id = location
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .map(percent_decode)
        .unwrap_or_default();
    if id.is_empty() {
        return Vec::new();
    }
    doc.insert("id".into(), Value::from(id));
    let mut meta = Map::new();
    meta.insert("location".into(), Value::from(location.as_str()));
    if let Some(v) = &result.version {
        meta.insert("version".into(), Value::from(v.as_str()));
    }
    doc.insert("meta".into(), Value::Object(meta));
    serde_json::to_vec(&Value::Object(doc)).unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").replace('+', "%2B").as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

/// One operation's result in a Bulk response.
#[derive(Debug, PartialEq)]
pub(super) struct OpResult {
    method: Option<String>,
    bulk_id: Option<String>,
    location: Option<String>,
    version: Option<String>,
    status: u16,
    response: Option<Value>,
}

/// Reads a Bulk response's `Operations`. A status may be a string (RFC 7644's examples), a
/// number, or SCIM 1.1's `{"code": ...}`.
pub(super) fn parse_results(body: &[u8]) -> Result<Vec<OpResult>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let ops = doc
        .get("Operations")
        .or_else(|| doc.get("operations"))
        .and_then(Value::as_array)
        .ok_or("no Operations")?;
    ops.iter()
        .map(|op| {
            let text = |name: &str| op.get(name).and_then(Value::as_str).map(str::to_owned);
            let status = op
                .get("status")
                .map(|s| s.get("code").unwrap_or(s))
                .and_then(|s| match s {
                    Value::String(t) => t.trim().parse::<u16>().ok(),
                    Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    _ => None,
                })
                .ok_or("an operation's result has no status")?;
            Ok(OpResult {
                method: text("method"),
                bulk_id: text("bulkId"),
                location: text("location"),
                version: text("version"),
                status,
                response: op.get("response").filter(|r| !r.is_null()).cloned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(method: Method, path: &'a str, body: Option<&str>) -> Request<'a> {
        Request {
            method,
            path,
            query: &[],
            body: body.map(|b| Body::from(b.as_bytes())),
            if_match: None,
            idempotent: false,
            platform: false,
        }
    }

    #[test]
    fn operations_are_encoded_with_their_body_as_is() {
        let op = encode(
            &Method::PATCH,
            "Users/a%20b",
            "op7",
            Some("W/\"3\""),
            Some(br#"{"Operations":[]}"#),
        );
        let v: Value = serde_json::from_slice(&op).expect("json");
        assert_eq!(v["method"], "PATCH");
        assert_eq!(v["bulkId"], "op7");
        assert_eq!(v["path"], "/Users/a%20b");
        assert_eq!(v["version"], "W/\"3\"");
        assert_eq!(v["data"], serde_json::json!({"Operations": []}));
        let delete = encode(&Method::DELETE, "Groups/g", "op8", None, None);
        let v: Value = serde_json::from_slice(&delete).expect("json");
        assert!(v.get("data").is_none() && v.get("version").is_none(), "{v}");
        let whole = envelope([op.as_slice(), delete.as_slice()].into_iter());
        let v: Value = serde_json::from_slice(&whole).expect("json");
        assert_eq!(v["schemas"][0], BULK_REQUEST);
        assert_eq!(v["Operations"].as_array().map(Vec::len), Some(2));
        assert_eq!(envelope_size(), envelope(std::iter::empty()).len());
    }

    /// Requests stay within both limits, measured on the encoded bytes, in order.
    #[tokio::test]
    async fn queues_are_cut_at_either_limit() {
        let body = format!(r#"{{"userName":"{}"}}"#, "x".repeat(100));
        let one = encode(&Method::POST, "Users", "op10", None, Some(body.as_bytes())).len() + 1;
        let limits = Limits {
            max_operations: 4,
            max_payload: envelope_size() + 3 * one,
        };
        let batcher = Batcher::new(limits);
        let mut sent = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..10 {
            let (joined, answer) = batcher.join(&request(Method::POST, "Users", Some(&body)));
            answers.push(answer);
            if let Some(full) = joined.full {
                sent.push(full);
            }
        }
        // Three fit the payload before four reach the operation limit.
        assert_eq!(sent.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3]);
        tokio::time::pause();
        tokio::time::advance(MOST_WAIT).await;
        let rest = batcher.due().expect("due");
        assert_eq!(rest.iter().map(Vec::len).collect::<Vec<_>>(), [1]);
        let ids: Vec<&str> = sent
            .iter()
            .chain(&rest)
            .flatten()
            .map(|p| p.bulk_id.as_str())
            .collect();
        let want: Vec<String> = (1..=10).map(|i| format!("op{i}")).collect();
        assert_eq!(ids, want);
        for chunk in sent.iter().chain(&rest) {
            let bytes = envelope(chunk.iter().map(|p| p.encoded.as_slice()));
            assert!(bytes.len() <= limits.max_payload, "{}", bytes.len());
        }
        // After a failure as a whole, half as many go in one request; back after a success.
        batcher.shrink();
        assert_eq!(batcher.chunks(Vec::new(), 2).len(), 0);
        let (_, _a) = batcher.join(&request(Method::DELETE, "Users/1", None));
        let (_, _b) = batcher.join(&request(Method::DELETE, "Users/2", None));
        let (joined, _c) = batcher.join(&request(Method::DELETE, "Users/3", None));
        assert_eq!(joined.full.map(|f| f.len()), Some(2), "cap halved to 2");
        batcher.grow();
        assert_eq!(batcher.lock().cap, 4);
    }

    /// The queue waits for a quiet moment, but not for ever.
    #[tokio::test(start_paused = true)]
    async fn a_queue_is_sent_when_quiet_or_when_it_has_waited_long_enough() {
        let batcher = Batcher::new(Limits {
            max_operations: 100,
            max_payload: 1 << 20,
        });
        let (_, _a) = batcher.join(&request(Method::DELETE, "Users/1", None));
        assert!(batcher.due().is_err(), "a write just joined");
        tokio::time::advance(WINDOW).await;
        assert_eq!(batcher.due().map(|c| c.len()).ok(), Some(1));
        // Writes that keep coming hold it back at most MOST_WAIT.
        let mut keep = Vec::new();
        let start = tokio::time::Instant::now();
        loop {
            keep.push(batcher.join(&request(Method::DELETE, "Users/1", None)).1);
            tokio::time::advance(Duration::from_millis(1)).await;
            if batcher.due().is_ok() {
                break;
            }
        }
        assert!(start.elapsed() <= MOST_WAIT, "{:?}", start.elapsed());
    }

    #[test]
    fn results_are_read_in_every_shape_seen() {
        let body = serde_json::json!({"Operations": [
            {"method": "POST", "bulkId": "op1", "location": "https://h/Users/9", "version": "W/\"1\"", "status": "201"},
            {"method": "PATCH", "status": 200, "response": {"id": "2"}},
            {"method": "DELETE", "status": {"code": "404"}, "response": {"detail": "gone"}},
        ]});
        let results = parse_results(body.to_string().as_bytes()).expect("parsed");
        assert_eq!(
            results.iter().map(|r| r.status).collect::<Vec<_>>(),
            [201, 200, 404]
        );
        assert_eq!(results[0].bulk_id.as_deref(), Some("op1"));
        assert_eq!(results[1].response, Some(serde_json::json!({"id": "2"})));
        assert!(parse_results(b"{}").is_err());
        assert!(parse_results(br#"{"Operations":[{"method":"POST"}]}"#).is_err());
    }

    #[test]
    fn a_create_answered_without_its_resource_is_what_was_sent_with_the_id() {
        let (p, _answer) = Pending::new(
            &request(Method::POST, "Users", Some(r#"{"userName":"ann"}"#)),
            "op1".into(),
        );
        let result = OpResult {
            method: None,
            bulk_id: None,
            location: Some("https://h/scim/v2/Users/a%2Fb".into()),
            version: Some("W/\"1\"".into()),
            status: 201,
            response: None,
        };
        let v: Value = serde_json::from_slice(&stand_in(&p, &result)).expect("json");
        assert_eq!(v["id"], "a/b");
        assert_eq!(v["userName"], "ann");
        assert_eq!(v["meta"]["version"], "W/\"1\"");
    }

    #[test]
    fn what_a_failure_as_a_whole_leaves_unknown() {
        let status = |code: u16| ScimError::Status {
            method: "POST".into(),
            path: "/Bulk".into(),
            status: StatusCode::from_u16(code).expect("status"),
            scim_type: None,
            detail: None,
            retry_after: None,
        };
        assert!(unsure(&status(500)));
        assert!(unsure(&status(504)));
        assert!(!unsure(&status(503)), "503: not carried out");
        assert!(!unsure(&status(501)));
        assert!(!unsure(&status(400)));
        assert!(!unsure(&status(413)));
    }

    /// Concurrent creates through a queue that believes the server takes 1 MiB, against a
    /// sandbox that takes 4 KiB: the request is refused 413, split in halves until the halves
    /// fit, and every user is created once.
    #[tokio::test]
    async fn a_request_refused_as_too_large_is_split_until_it_fits() {
        use crate::scim::wire::User;
        let sandbox = crate::sandbox::start(
            crate::sandbox::SandboxConfig {
                bulk: Some(crate::sandbox::BulkLimits {
                    max_operations: 1_000,
                    max_payload: 4_096,
                }),
                ..crate::sandbox::SandboxConfig::default()
            },
            "127.0.0.1:0".parse().expect("addr"),
        )
        .await
        .expect("sandbox");
        let client = ScimClient::new(crate::scim::ClientConfig::new(sandbox.base_url.clone()))
            .expect("client");
        let believed = Arc::new(Batcher::new(Limits {
            max_operations: 100,
            max_payload: 1 << 20,
        }));
        let bodies: Vec<String> = (0..40)
            .map(|i| {
                serde_json::json!({
                    "schemas": [crate::scim::wire::USER_SCHEMA],
                    "userName": format!("split{i:02}@x.example"),
                    "displayName": "x".repeat(100),
                })
                .to_string()
            })
            .collect();
        let writes = bodies.iter().map(|b| {
            let (client, believed) = (&client, &believed);
            async move {
                client
                    .bulk_write(believed, &request(Method::POST, "Users", Some(b)))
                    .await
            }
        });
        let answers = futures_util::future::join_all(writes).await;
        for answer in answers {
            let response = answer.expect("created");
            assert_eq!(response.status, StatusCode::CREATED);
            let user: User = serde_json::from_slice(&response.body).expect("a user");
            assert!(user.id.is_some());
        }
        let stats = sandbox.stats();
        assert!(stats.status(413) >= 1, "{stats:?}");
        assert_eq!(
            stats.bulk_operations, 40,
            "each carried out once: {stats:?}"
        );
        let users = crate::scim::ScimRead::snapshot(&client)
            .await
            .expect("read");
        assert_eq!(users.users.len(), 40);
        sandbox.shutdown().await.expect("stopped");
    }

    /// A request that fails as a whole before anything was done (503) hands each operation
    /// that error, not an unknown outcome; one whose answer is lost (a 502) hands each an
    /// unknown outcome and halves the next requests.
    #[tokio::test]
    async fn failures_as_a_whole_reach_every_operation() {
        for (status, unsure_wanted) in [(503_u16, false), (502, true)] {
            let sandbox = crate::sandbox::start(
                crate::sandbox::SandboxConfig {
                    faults: crate::sandbox::Faults {
                        error_rate: 1.0,
                        error_status: Some(status),
                        ..crate::sandbox::Faults::default()
                    },
                    ..crate::sandbox::SandboxConfig::default()
                },
                "127.0.0.1:0".parse().expect("addr"),
            )
            .await
            .expect("sandbox");
            let mut config = crate::scim::ClientConfig::new(sandbox.base_url.clone());
            config.retry.max_attempts = 1;
            let client = ScimClient::new(config).expect("client");
            let batcher = Arc::new(Batcher::new(Limits {
                max_operations: 8,
                max_payload: 1 << 20,
            }));
            let writes = (0..3).map(|i| {
                let (client, batcher) = (&client, &batcher);
                async move {
                    let path = format!("Users/u{i}");
                    client
                        .bulk_write(batcher, &request(Method::DELETE, &path, None))
                        .await
                }
            });
            for answer in futures_util::future::join_all(writes).await {
                let Err(error) = answer else {
                    panic!("{status}: an operation succeeded");
                };
                assert!(
                    matches!(error, ScimError::BulkFailed { unsure, .. } if unsure == unsure_wanted),
                    "{status}: {error}"
                );
                assert!(
                    error.to_string().contains("sent in a Bulk request"),
                    "{error}"
                );
            }
            let cap = batcher.lock().cap;
            assert_eq!(cap, if unsure_wanted { 4 } else { 8 }, "{status}");
            sandbox.shutdown().await.expect("stopped");
        }
    }
}
