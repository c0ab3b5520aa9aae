use std::sync::Mutex;

use serde_json::Value;

use super::*;
use crate::webhook::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

const NOW: i64 = 1_795_000_000;
const SECRET: &str = "password-sync-secret-3f1c";
const GOOD: &str = "Str0ng-and-l0ng!";

/// Knows `ana@northwind.example` (whose password is `GOOD` already, until `set` says so)
/// and records what it was asked, without the value; can be told to fail once.
#[derive(Default)]
struct FakeSink {
    calls: Mutex<Vec<String>>,
    fail: Mutex<Option<PasswordSyncError>>,
}

impl PasswordSink for FakeSink {
    fn set_password<'a>(
        &'a self,
        user_name: &'a str,
        password: Secret,
    ) -> Pin<Box<dyn Future<Output = Result<PasswordSet, PasswordSyncError>> + Send + 'a>> {
        Box::pin(async move {
            self.calls.lock().unwrap().push(user_name.to_owned());
            if let Some(e) = self.fail.lock().unwrap().take() {
                return Err(e);
            }
            if !user_name.eq_ignore_ascii_case("ana@northwind.example") {
                return Err(PasswordSyncError::UnknownUser(user_name.to_owned()));
            }
            if password.expose() == GOOD {
                Ok(PasswordSet::Unchanged)
            } else {
                Ok(PasswordSet::Set)
            }
        })
    }
}

struct Server {
    url: String,
    sink: Arc<FakeSink>,
    http: reqwest::Client,
}

async fn server() -> Server {
    let sink = Arc::new(FakeSink::default());
    let verifier = Arc::new(Verifier::new(Secret::new(SECRET)));
    let app = router_with_clock(verifier, sink.clone(), || NOW);
    let addr = crate::webhook::inbound::serve_for_test(app).await;
    let url = format!("http://{addr}{PASSWORD_PATH}");
    Server {
        url,
        sink,
        http: reqwest::Client::new(),
    }
}

impl Server {
    /// Sends `body` signed with `secret` at `timestamp`.
    async fn send(&self, body: &str, secret: &str, timestamp: i64) -> (u16, Value) {
        let signature = sign(&Secret::new(secret), timestamp, body.as_bytes());
        let response = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn signed(&self, body: &str) -> (u16, Value) {
        self.send(body, SECRET, NOW).await
    }

    fn calls(&self) -> Vec<String> {
        self.sink.calls.lock().unwrap().clone()
    }
}

fn body(user: &str, password: &str) -> String {
    json!({ "userName": user, "password": password }).to_string()
}

// A signed request reaches the sink once; its answer is `set` or `unchanged`, and no answer
// carries the password.
#[tokio::test]
async fn a_signed_request_is_set_or_unchanged() {
    let s = server().await;
    let (status, reply) = s
        .signed(&body(" ana@northwind.example ", "N3w-password-ok"))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"status": "set", "userName": "ana@northwind.example"})
    );
    let (status, reply) = s
        .send(&body("ana@northwind.example", GOOD), SECRET, NOW - 5)
        .await;
    assert_eq!((status, &reply["status"]), (200, &json!("unchanged")));
    assert!(!reply.to_string().contains(GOOD));
    assert_eq!(s.calls(), ["ana@northwind.example"; 2]);
}

// Tampered, stale, wrongly keyed and replayed requests never reach the sink.
#[tokio::test]
async fn bad_signatures_never_reach_the_sink() {
    let s = server().await;
    let good = body("ana@northwind.example", "N3w-password-ok");
    let signature = sign(&Secret::new(SECRET), NOW, good.as_bytes());
    let tampered = good.replace("N3w", "Old");
    let response = s
        .http
        .post(&s.url)
        .header(TIMESTAMP_HEADER, NOW.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(s.send(&good, SECRET, NOW - 301).await.0, 401, "stale");
    assert_eq!(s.send(&good, "hris-secret", NOW).await.0, 401, "other key");
    assert!(s.calls().is_empty());
    assert_eq!(s.signed(&good).await.0, 200);
    assert_eq!(s.signed(&good).await.0, 409, "replay");
    assert_eq!(s.calls().len(), 1);
}

// Bodies that are not a request are 400 after the signature passed, and the answer quotes
// no value from them; oversize bodies are 413.
#[tokio::test]
async fn malformed_bodies_are_refused_without_echoing_them() {
    let s = server().await;
    for (bad, why) in [
        (r#"{"userName": "ana@northwind.example"}"#, "missing field"),
        (
            r#"{"userName": "", "password": "Secr3t-value-1"}"#,
            "`userName` is empty",
        ),
        (
            r#"{"userName": "ana@northwind.example", "password": ""}"#,
            "`password` is empty",
        ),
        (
            r#"{"userName": ["Secr3t-value-1"], "password": "x"}"#,
            "not a password-sync",
        ),
        (
            r#"{"userName": "a\u0007b", "password": "Secr3t-value-1"}"#,
            "control characters",
        ),
        (
            r#"{"userName": "a", "password": 31415926}"#,
            "not a password-sync",
        ),
    ] {
        let (status, reply) = s.signed(bad).await;
        assert_eq!(status, 400, "{bad}: {reply}");
        let text = reply["error"].as_str().unwrap();
        assert!(text.contains(why), "{bad}: {text}");
        for value in ["Secr3t-value-1", "31415926"] {
            assert!(!text.contains(value), "the answer echoes the body: {text}");
        }
    }
    let huge = body("ana@northwind.example", &"x".repeat(MAX_BODY));
    assert_eq!(s.signed(&huge).await.0, 413);
    assert!(s.calls().is_empty());
}

// Each refusal of the sink has its own status; a weak password names the rules it breaks;
// only a failure to reach the tenant lets the same signed request come again.
#[tokio::test]
async fn refusals_have_their_status_and_only_failures_may_be_retried() {
    let s = server().await;
    let (status, reply) = s
        .signed(&body("zed@northwind.example", "N3w-password-ok"))
        .await;
    assert_eq!(status, 404, "{reply}");

    let weak = body("ana@northwind.example", "short");
    *s.sink.fail.lock().unwrap() = Some(PasswordSyncError::Weak(vec!["minLength", "digit"]));
    let (status, reply) = s.signed(&weak).await;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["failed"], json!(["minLength", "digit"]));
    assert!(!reply.to_string().contains("short"), "{reply}");
    assert_eq!(
        s.signed(&weak).await.0,
        409,
        "a weak request is not retried"
    );

    let protected = body("ana@northwind.example", "N3w-password-ok");
    *s.sink.fail.lock().unwrap() = Some(PasswordSyncError::Refused("protected".into()));
    assert_eq!(s.signed(&protected).await.0, 409);

    let failing = body("ana@northwind.example", "An0ther-password");
    *s.sink.fail.lock().unwrap() = Some(PasswordSyncError::Failed("PATCH → 503".into()));
    assert_eq!(s.signed(&failing).await.0, 502);
    assert_eq!(
        s.signed(&failing).await.0,
        200,
        "a failed request may be retried"
    );
    let later = body("ana@northwind.example", "Y3t-another-one");
    *s.sink.fail.lock().unwrap() = Some(PasswordSyncError::Unavailable("stopping".into()));
    assert_eq!(s.signed(&later).await.0, 503);
}
