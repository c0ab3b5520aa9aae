//! Credentials and the `Authorization` header: a static bearer token, or OAuth2 client
//! credentials (RFC 6749 §4.4) with the token cached until shortly before it expires.
//!
//! Secrets live in [`Secret`], which has a redacted `Debug`, no `Display` and no `Serialize`,
//! and leave this module only as a sensitive header value that reqwest never logs.
//! Concurrent callers that find the token expired share one refresh (they queue on one async
//! mutex and the first refreshes). A 401 invalidates only the token that was refused, so a
//! burst of 401s from one expiry causes one refresh, not one each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::error::ScimError;

/// Tries of one token request while the endpoint answers 429 or 503.
const TOKEN_ATTEMPTS: u32 = 6;

/// The longest wait for the token endpoint; a longer `Retry-After` ends the run with the
/// error instead of stalling it.
const TOKEN_WAIT_CAP: Duration = Duration::from_secs(120);

/// A secret string: never printed, never serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret's value, for the one place that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl Drop for Secret {
    /// Overwrites the value before its memory is freed, so a password or token does not
    /// linger in freed heap pages.
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// OAuth2 client-credentials settings.
#[derive(Clone, Debug)]
pub struct OAuthSettings {
    /// Token endpoint, e.g. `https://login.mypurecloud.com/oauth/token`.
    pub token_url: String,
    /// Client id (not secret, but not logged either).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Secret,
    /// Space-separated scopes, when the server wants them.
    pub scope: Option<String>,
}

/// How the client authenticates.
#[derive(Clone, Debug, Default)]
pub enum Credentials {
    /// No `Authorization` header (the sandbox, a test server).
    #[default]
    None,
    /// A static bearer token.
    Bearer(Secret),
    /// OAuth2 client credentials.
    OAuth(OAuthSettings),
}

/// A token that was sent, so that a 401 can invalidate exactly that one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TokenId(u64);

#[derive(Debug)]
struct Cached {
    token: Secret,
    refresh_at: Instant,
    id: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// Produces `Authorization` headers; owns the token cache.
#[derive(Debug)]
pub(crate) struct Authenticator {
    credentials: Credentials,
    cache: tokio::sync::Mutex<Option<Cached>>,
    issued: AtomicU64,
}

/// Lifetime assumed when a token response has no `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

impl Authenticator {
    pub(crate) fn new(credentials: Credentials) -> Authenticator {
        Authenticator {
            credentials,
            cache: tokio::sync::Mutex::new(None),
            issued: AtomicU64::new(0),
        }
    }

    /// Whether a 401 may be cured by fetching a new token.
    pub(crate) fn can_refresh(&self) -> bool {
        matches!(self.credentials, Credentials::OAuth(_))
    }

    /// The OAuth client id, if any (not a secret).
    pub(crate) fn client_id(&self) -> Option<&str> {
        match &self.credentials {
            Credentials::OAuth(o) => Some(&o.client_id),
            _ => None,
        }
    }

    /// Number of tokens fetched so far.
    pub(crate) fn tokens_fetched(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// The header to send, fetching a token when there is none or it is about to expire.
    pub(crate) async fn header(
        &self,
        http: &reqwest::Client,
    ) -> Result<Option<(HeaderValue, TokenId)>, ScimError> {
        let token = match &self.credentials {
            Credentials::None => return Ok(None),
            Credentials::Bearer(token) => (token.clone(), TokenId(0)),
            Credentials::OAuth(settings) => {
                let mut cache = self.cache.lock().await;
                match cache.as_ref() {
                    Some(c) if Instant::now() < c.refresh_at => (c.token.clone(), TokenId(c.id)),
                    _ => {
                        let fresh = self.fetch(http, settings).await?;
                        let out = (fresh.token.clone(), TokenId(fresh.id));
                        *cache = Some(fresh);
                        out
                    }
                }
            }
        };
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.0.expose())).map_err(|_| {
                ScimError::Config("the token contains characters not allowed in a header".into())
            })?;
        value.set_sensitive(true);
        Ok(Some((value, token.1)))
    }

    /// A request sent with `sent` was refused with 401: forget that token (only if it is
    /// still the cached one; another caller may have refreshed already).
    pub(crate) async fn invalidate(&self, sent: TokenId) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.id == sent.0) {
            *cache = None;
        }
    }

    async fn fetch(
        &self,
        http: &reqwest::Client,
        settings: &OAuthSettings,
    ) -> Result<Cached, ScimError> {
        let path = reqwest::Url::parse(&settings.token_url)
            .map_or_else(|_| "(token url)".into(), |u| u.path().to_owned());
        let fail = |message: String| ScimError::Auth {
            path: path.clone(),
            message,
        };
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &settings.scope {
            form.push(("scope", scope));
        }
        // A token endpoint that rate-limits (Genesys Cloud's login service answers 429 with
        // `Retry-After`) or is briefly unavailable is waited out, a few times, on tokio time;
        // a refusal of the credentials is not retried.
        let backoff = crate::backoff::Backoff::new(Duration::from_millis(500), TOKEN_WAIT_CAP);
        let mut attempt = 0;
        let (status, body) = loop {
            attempt += 1;
            let response = http
                .post(&settings.token_url)
                .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(&form)
                .send()
                .await
                .map_err(|e| fail(super::client::transport_message(&e)))?;
            let status = response.status();
            let asked = super::retry::server_delay(status.as_u16(), |name| {
                response.headers().get(name).and_then(|v| v.to_str().ok())
            });
            let body = response
                .bytes()
                .await
                .map_err(|e| fail(super::client::transport_message(&e)))?;
            let busy = matches!(status.as_u16(), 429 | 503);
            let wait = asked.map_or_else(
                || backoff.delay(attempt, crate::backoff::Backoff::jitter()),
                Duration::from_secs,
            );
            if !busy || attempt >= TOKEN_ATTEMPTS || wait > TOKEN_WAIT_CAP {
                break (status, body);
            }
            tracing::warn!(
                status = status.as_u16(),
                wait_s = wait.as_secs(),
                attempt,
                "the token endpoint asked to wait; asking again"
            );
            tokio::time::sleep(wait).await;
        };
        if !status.is_success() {
            let detail = super::wire::ErrorBody::parse(&body)
                .description()
                .unwrap_or_default();
            return Err(fail(format!(
                "{status}{}{}",
                if detail.is_empty() { "" } else { ": " },
                oauth_error_text(&body).unwrap_or(detail)
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            fail(format!(
                "unexpected token response: {}",
                strip_serde_value(&e)
            ))
        })?;
        let ttl = parsed
            .expires_in
            .as_ref()
            .and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()))
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TTL, Duration::from_secs_f64);
        // Refresh a little before expiry: a fifth of the lifetime, at most a minute early.
        let margin = (ttl / 5).min(Duration::from_secs(60));
        let id = self.issued.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(expires_in = ttl.as_secs(), "oauth token fetched");
        Ok(Cached {
            token: Secret::new(parsed.access_token),
            refresh_at: Instant::now() + ttl - margin,
            id,
        })
    }
}

/// The `error`/`error_description` of an RFC 6749 §5.2 error response.
fn oauth_error_text(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let e: OAuthError = serde_json::from_slice(body).ok()?;
    Some(match e.error_description {
        Some(d) => format!("{}: {d}", e.error),
        None => e.error,
    })
}

/// `serde_json` messages can quote input; keep only the category and position.
fn strip_serde_value(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug never shows the secret.
    #[test]
    fn secret_is_redacted() {
        let creds = Credentials::OAuth(OAuthSettings {
            token_url: "https://login.example/oauth/token".into(),
            client_id: "id".into(),
            client_secret: Secret::new("s3cr3t-value"),
            scope: None,
        });
        assert!(!format!("{creds:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", Credentials::Bearer(Secret::new("tok-123"))).contains("tok-123"));
    }

    /// The header for a static token is marked sensitive.
    #[tokio::test]
    async fn bearer_header_is_sensitive() {
        let auth = Authenticator::new(Credentials::Bearer(Secret::new("abc")));
        let http = reqwest::Client::new();
        let (value, _) = auth.header(&http).await.expect("header").expect("some");
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().expect("ascii"), "Bearer abc");
        assert!(!auth.can_refresh());
    }

    /// RFC 6749 error bodies are read.
    #[test]
    fn oauth_errors() {
        assert_eq!(
            oauth_error_text(br#"{"error":"invalid_client","error_description":"bad"}"#).as_deref(),
            Some("invalid_client: bad")
        );
        assert_eq!(oauth_error_text(b"nope"), None);
    }
}
