//! Authentication of SCIM requests: nothing, a static bearer token, or OAuth 2.0 client
//! credentials (RFC 6749 §4.4) with tokens this module issues at `/oauth/token` and expires on
//! `tokio::time`. Secrets are compared in constant time and never logged or printed.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use rand::RngExt;
use tokio::time::Instant;

use super::SandboxAuth;

/// Why a request was not let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    /// No bearer token: `WWW-Authenticate: Bearer realm="SCIM"`.
    Missing,
    /// Unknown or expired token: `WWW-Authenticate: Bearer error="invalid_token"`.
    Invalid,
}

/// Why `/oauth/token` refused (RFC 6749 §5.2 error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// 401 `invalid_client`.
    InvalidClient,
    /// 400 `unsupported_grant_type`.
    UnsupportedGrantType,
    /// 400 `invalid_request`.
    InvalidRequest,
    /// The sandbox is not configured for OAuth: 404.
    NotEnabled,
}

/// A freshly issued token.
#[derive(Debug)]
pub(crate) struct Issued {
    pub(crate) access_token: String,
    pub(crate) expires_in: u64,
}

/// Checks credentials; one per sandbox.
#[derive(Debug)]
pub(crate) struct Authenticator {
    mode: SandboxAuth,
    /// OAuth tokens → expiry.
    tokens: Mutex<HashMap<String, Instant>>,
}

/// Equal without an early exit, so timing does not reveal how much of a secret matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(a.ct_eq(b))
}

/// The credentials of an `Authorization: <scheme> <credentials>` header, scheme matched
/// case-insensitively.
fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

impl Authenticator {
    pub(crate) fn new(mode: SandboxAuth) -> Self {
        Authenticator {
            mode,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the SCIM endpoints need a token (for `authenticationSchemes`).
    pub(crate) fn required(&self) -> bool {
        !matches!(self.mode, SandboxAuth::None)
    }

    /// Whether `/oauth/token` is served.
    pub(crate) fn oauth(&self) -> bool {
        matches!(self.mode, SandboxAuth::OAuth { .. })
    }

    /// Lets a SCIM request in or says why not.
    pub(crate) fn check(&self, headers: &HeaderMap, now: Instant) -> Result<(), Denied> {
        if matches!(self.mode, SandboxAuth::None) {
            return Ok(());
        }
        let token = credentials(headers, "Bearer")
            .filter(|t| !t.is_empty())
            .ok_or(Denied::Missing)?;
        match &self.mode {
            SandboxAuth::None => Ok(()),
            SandboxAuth::Bearer(expected) => {
                if same_secret(token.as_bytes(), expected.as_bytes()) {
                    Ok(())
                } else {
                    Err(Denied::Invalid)
                }
            }
            SandboxAuth::OAuth { .. } => {
                let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
                match tokens.get(token) {
                    Some(expiry) if now < *expiry => Ok(()),
                    _ => Err(Denied::Invalid),
                }
            }
        }
    }

    /// The client-credentials grant: HTTP Basic `client_id:client_secret` (or, as RFC 6749
    /// §2.3.1 also allows, `client_id`/`client_secret` form fields) and
    /// `grant_type=client_credentials`.
    pub(crate) fn issue(
        &self,
        headers: &HeaderMap,
        form: &[u8],
        now: Instant,
    ) -> Result<Issued, TokenRefusal> {
        let SandboxAuth::OAuth {
            client_id,
            client_secret,
            token_ttl,
        } = &self.mode
        else {
            return Err(TokenRefusal::NotEnabled);
        };
        let fields = parse_form(form);
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let (id, secret) = match credentials(headers, "Basic") {
            Some(encoded) => {
                let decoded = decode_base64(encoded).ok_or(TokenRefusal::InvalidClient)?;
                let text = String::from_utf8(decoded).map_err(|_| TokenRefusal::InvalidClient)?;
                let (id, secret) = text.split_once(':').ok_or(TokenRefusal::InvalidClient)?;
                // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
                (percent_decode(id), percent_decode(secret))
            }
            None => match (field("client_id"), field("client_secret")) {
                (Some(id), Some(secret)) => (id.to_owned(), secret.to_owned()),
                _ => return Err(TokenRefusal::InvalidClient),
            },
        };
        let id_ok = same_secret(id.as_bytes(), client_id.as_bytes());
        let secret_ok = same_secret(secret.as_bytes(), client_secret.as_bytes());
        if !(id_ok && secret_ok) {
            return Err(TokenRefusal::InvalidClient);
        }
        match field("grant_type") {
            Some("client_credentials") => {}
            Some(_) => return Err(TokenRefusal::UnsupportedGrantType),
            None => return Err(TokenRefusal::InvalidRequest),
        }
        let bytes: [u8; 32] = rand::rng().random();
        let access_token = bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        });
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|_, expiry| *expiry > now);
        tokens.insert(access_token.clone(), now + *token_ttl);
        let ttl: Duration = *token_ttl;
        Ok(Issued {
            access_token,
            expires_in: ttl.as_secs(),
        })
    }
}

/// `application/x-www-form-urlencoded` pairs (also used for query strings), decoded by
/// `url::form_urlencoded` (WHATWG URL §5.1): `+` is a space, malformed escapes are kept as
/// written, invalid UTF-8 becomes U+FFFD.
pub(crate) fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

/// Decodes `%XX` escapes and `+` (a space in forms and query strings) of one component, with
/// the `percent-encoding` crate. Malformed escapes are kept as written.
pub(crate) fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Standard base64 (RFC 4648 §4), padding optional; `None` if malformed.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        }))
    };
    let data = text.trim().trim_end_matches('=').as_bytes();
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc = 0_u32;
        for &c in chunk {
            acc = (acc << 6) | value(c)?;
        }
        let bits = chunk.len() * 6;
        acc <<= 24 - bits;
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..=bits / 8]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(id: &str, secret: &str) -> HeaderMap {
        let raw = format!("{id}:{secret}");
        let encoded = encode_base64(raw.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).expect("header"),
        );
        headers
    }

    fn encode_base64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut buf = [0_u8; 3];
            buf[..chunk.len()].copy_from_slice(chunk);
            let n = (u32::from(buf[0]) << 16) | (u32::from(buf[1]) << 8) | u32::from(buf[2]);
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        while !out.len().is_multiple_of(4) {
            out.push('=');
        }
        out
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {token}")).expect("header"),
        );
        headers
    }

    // Base64 and percent decoding handle padding, '+' and malformed escapes.
    // The secret comparison (subtle) and the form decoding (url::form_urlencoded) on the
    // cases the sandbox meets: escapes, `+`, empty values, bad UTF-8, lengths that differ.
    #[test]
    fn secrets_and_forms() {
        assert!(same_secret(b"s3cr3t", b"s3cr3t"));
        assert!(!same_secret(b"s3cr3t", b"s3cr3T"));
        assert!(!same_secret(b"s3cr3t", b"s3cr3"));
        assert!(same_secret(b"", b""));
        assert_eq!(
            parse_form(b"a=1+2%2B3&&b%20c=%E2%82%AC&d=%ff"),
            vec![
                ("a".to_owned(), "1 2+3".to_owned()),
                ("b c".to_owned(), "\u{20ac}".to_owned()),
                ("d".to_owned(), "\u{fffd}".to_owned()),
            ]
        );
        assert_eq!(percent_decode("a&b=c%26"), "a&b=c&");
    }

    #[test]
    fn decoding() {
        for raw in ["", "a", "ab", "abc", "abcd", "client:s3cr3t/+?"] {
            assert_eq!(
                decode_base64(&encode_base64(raw.as_bytes())).as_deref(),
                Some(raw.as_bytes())
            );
        }
        assert_eq!(decode_base64("a"), None);
        assert_eq!(decode_base64("a*=="), None);
        assert_eq!(percent_decode("a+b%20c%3d%zz%"), "a b c=%zz%");
        assert_eq!(
            parse_form(b"grant_type=client_credentials&x=&y"),
            vec![
                ("grant_type".to_owned(), "client_credentials".to_owned()),
                ("x".to_owned(), String::new()),
                ("y".to_owned(), String::new()),
            ]
        );
    }

    // A static bearer token: required, compared exactly, scheme case-insensitive.
    #[test]
    fn static_bearer() {
        let auth = Authenticator::new(SandboxAuth::Bearer("t0ken".into()));
        let now = Instant::now();
        assert_eq!(auth.check(&HeaderMap::new(), now), Err(Denied::Missing));
        assert_eq!(auth.check(&bearer("t0ke"), now), Err(Denied::Invalid));
        assert_eq!(auth.check(&bearer("t0ken"), now), Ok(()));
        assert_eq!(
            auth.issue(&HeaderMap::new(), b"", now).map(|_| ()),
            Err(TokenRefusal::NotEnabled)
        );
    }

    // Client credentials: wrong secret, wrong grant, form credentials, expiry on tokio time.
    #[tokio::test(start_paused = true)]
    async fn client_credentials() {
        let auth = Authenticator::new(SandboxAuth::OAuth {
            client_id: "cid".into(),
            client_secret: "s:e cret".into(),
            token_ttl: Duration::from_secs(60),
        });
        let form = b"grant_type=client_credentials";
        let now = Instant::now();
        assert_eq!(
            auth.issue(&basic("cid", "wrong"), form, now).map(|_| ()),
            Err(TokenRefusal::InvalidClient)
        );
        assert_eq!(
            auth.issue(&HeaderMap::new(), form, now).map(|_| ()),
            Err(TokenRefusal::InvalidClient)
        );
        assert_eq!(
            auth.issue(&basic("cid", "s%3Ae+cret"), b"grant_type=password", now)
                .map(|_| ()),
            Err(TokenRefusal::UnsupportedGrantType)
        );
        let issued = auth
            .issue(&basic("cid", "s%3Ae+cret"), form, now)
            .expect("issued");
        assert_eq!(issued.expires_in, 60);
        assert_eq!(issued.access_token.len(), 64);
        let posted = auth
            .issue(
                &HeaderMap::new(),
                b"grant_type=client_credentials&client_id=cid&client_secret=s%3Ae%20cret",
                now,
            )
            .expect("issued");
        assert_ne!(posted.access_token, issued.access_token);
        assert_eq!(
            auth.check(&bearer(&issued.access_token), Instant::now()),
            Ok(())
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(
            auth.check(&bearer(&issued.access_token), Instant::now()),
            Err(Denied::Invalid)
        );
        assert_eq!(
            auth.check(&bearer("made-up"), Instant::now()),
            Err(Denied::Invalid)
        );
    }
}
