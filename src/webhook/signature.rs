//! The webhook signature scheme, shared by outbound deliveries and the inbound HRIS endpoint.
//!
//! A request carries two headers: `X-Scimctl-Timestamp`, the Unix time in seconds when it was
//! signed, and `X-Scimctl-Signature: v1=<hex>`, the lower-case hex HMAC-SHA256, keyed with the
//! shared secret, of the bytes `"{timestamp}.{body}"`. Signing the timestamp with the body
//! stops an old request from being sent again with a fresh timestamp.
//!
//! [`Verifier`] checks both headers: the timestamp must be within the window (5 minutes
//! either way, for clock skew), the MAC is compared in constant time, and a signature already
//! accepted within the window is refused as a replay. This module owns the scheme and the
//! replay cache; it reads no clock (callers pass `now`) and never puts the secret, or a MAC
//! computed from it, into an error or a log.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::scim::Secret;

/// Header carrying the Unix time (seconds) at which the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-Scimctl-Timestamp";
/// Header carrying `v1=<hex of HMAC-SHA256(secret, "{timestamp}.{body}")>`.
pub const SIGNATURE_HEADER: &str = "X-Scimctl-Signature";
/// How far a timestamp may be from the receiver's clock, either way, by default.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The version prefix of the signature header's value.
const VERSION_PREFIX: &str = "v1=";
/// Length of a SHA-256 MAC in bytes.
const MAC_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// The MAC over `"{timestamp}.{body}"`, the timestamp as the decimal text that was sent.
fn keyed(secret: &Secret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length, so this never fails.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The value of the `X-Scimctl-Signature` header for `body` signed at `timestamp`:
/// `v1=` and 64 lower-case hex digits.
#[must_use]
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    let tag = keyed(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    let mut out = String::with_capacity(VERSION_PREFIX.len() + 2 * MAC_LEN);
    out.push_str(VERSION_PREFIX);
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Decodes `v1=<64 hex digits>` (either case); `None` for anything else.
fn parse_signature(value: &str) -> Option<[u8; MAC_LEN]> {
    let hex = value.trim().strip_prefix(VERSION_PREFIX)?.as_bytes();
    if hex.len() != 2 * MAC_LEN {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; MAC_LEN];
    for (byte, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Why a signed request was refused. Messages name the header or the rule, never the secret
/// or a MAC.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No `X-Scimctl-Timestamp` header.
    #[error("missing {TIMESTAMP_HEADER} header")]
    MissingTimestamp,
    /// The timestamp is not a whole number of seconds.
    #[error("{TIMESTAMP_HEADER} is not a whole number of seconds since the Unix epoch")]
    BadTimestamp,
    /// No `X-Scimctl-Signature` header.
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingSignature,
    /// The signature header is not `v1=` and 64 hex digits.
    #[error("{SIGNATURE_HEADER} is not `v1=` followed by 64 hex digits")]
    MalformedSignature,
    /// The timestamp is older than the window allows.
    #[error("the request was signed {age} s ago; requests older than {window} s are refused")]
    Stale {
        /// Seconds between signing and receipt.
        age: i64,
        /// The window in seconds.
        window: i64,
    },
    /// The timestamp is further in the future than the window allows.
    #[error(
        "the request is signed {ahead} s in the future; more than {window} s of clock skew is refused"
    )]
    Future {
        /// Seconds the timestamp is ahead of the receiver's clock.
        ahead: i64,
        /// The window in seconds.
        window: i64,
    },
    /// The MAC does not match the timestamp and body (wrong secret, or altered in transit).
    #[error("the signature does not match the timestamp and body")]
    BadSignature,
    /// This exact signed request was already accepted within the window.
    #[error("this signed request was already received; sign a new request to send it again")]
    Replayed,
}

impl Rejection {
    /// The HTTP status to answer with: 409 for a replay (the request is authentic, and a
    /// sender that retries the very same bytes after losing our answer learns that it
    /// arrived, rather than that its secret is wrong), 401 for everything else.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::Replayed => StatusCode::CONFLICT,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

/// Proof that a request passed [`Verifier::verify`]: its entry in the replay cache, which
/// [`Verifier::release`] removes again when the request could not be acted on and may be sent
/// again unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    timestamp: i64,
    mac: [u8; MAC_LEN],
}

impl Verified {
    /// The timestamp the request was signed at.
    #[must_use]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
}

/// Checks signed requests against one secret, with a replay cache.
///
/// The cache holds the MAC of every request accepted within the window and is pruned of
/// entries older than the window on every call, so it holds at most one window's worth of
/// authentic requests. A plain mutex guards it; it is held for a few map operations and never
/// across an `.await`.
#[derive(Debug)]
pub struct Verifier {
    secret: Secret,
    window: i64,
    /// (timestamp, MAC) of accepted requests, ordered by timestamp for pruning.
    seen: Mutex<BTreeSet<(i64, [u8; MAC_LEN])>>,
}

impl Verifier {
    /// A verifier for `secret` with the default 5-minute window.
    #[must_use]
    pub fn new(secret: Secret) -> Verifier {
        Verifier::with_window(secret, DEFAULT_WINDOW)
    }

    /// A verifier for `secret` accepting timestamps at most `window` away from now.
    #[must_use]
    pub fn with_window(secret: Secret, window: Duration) -> Verifier {
        Verifier {
            secret,
            window: i64::try_from(window.as_secs()).unwrap_or(i64::MAX),
            seen: Mutex::new(BTreeSet::new()),
        }
    }

    /// Checks a request's `X-Scimctl-Timestamp` and `X-Scimctl-Signature` header values
    /// against its raw `body`, at Unix time `now_unix`, and records it against replays.
    ///
    /// The checks run in this order: both headers present and well formed, timestamp within
    /// the window, MAC equal (in constant time), not seen before.
    pub fn verify(
        &self,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Verified, Rejection> {
        let text = timestamp.ok_or(Rejection::MissingTimestamp)?.trim();
        let timestamp: i64 = text.parse().map_err(|_| Rejection::BadTimestamp)?;
        let signature = signature.ok_or(Rejection::MissingSignature)?;
        let mac = parse_signature(signature).ok_or(Rejection::MalformedSignature)?;
        let age = now_unix.saturating_sub(timestamp);
        if age > self.window {
            return Err(Rejection::Stale {
                age,
                window: self.window,
            });
        }
        let ahead = timestamp.saturating_sub(now_unix);
        if ahead > self.window {
            return Err(Rejection::Future {
                ahead,
                window: self.window,
            });
        }
        keyed(&self.secret, text, body)
            .verify_slice(&mac)
            .map_err(|_| Rejection::BadSignature)?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let oldest = now_unix.saturating_sub(self.window);
        while seen.first().is_some_and(|(t, _)| *t < oldest) {
            seen.pop_first();
        }
        if !seen.insert((timestamp, mac)) {
            return Err(Rejection::Replayed);
        }
        Ok(Verified { timestamp, mac })
    }

    /// Forgets an accepted request, so that the same signed bytes are accepted again: for a
    /// request that failed for a reason worth retrying (the tenant was unreachable).
    pub fn release(&self, verified: &Verified) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(verified.timestamp, verified.mac));
    }

    /// How many accepted requests the replay cache holds (before the next prune).
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000;
    const SECRET: &str = "whsec-test-0d5c1e-never-printed";

    fn to_hex(bytes: &[u8]) -> String {
        bytes.iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write;
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    fn verifier() -> Verifier {
        Verifier::new(Secret::new(SECRET))
    }

    fn check(v: &Verifier, ts: i64, sig: &str, body: &[u8], now: i64) -> Result<(), Rejection> {
        v.verify(Some(&ts.to_string()), Some(sig), body, now)
            .map(drop)
    }

    // The header value is `v1=` and the hex HMAC-SHA256 of "{timestamp}.{body}"; RFC 4231
    // test case 2 pins the HMAC itself.
    #[test]
    fn sign_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?". Split the data as
        // "{timestamp}.{body}" cannot (it has no digits), so check the primitive directly.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let tag = mac.finalize().into_bytes();
        let hex = to_hex(&tag);
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // And `sign` is that primitive over the documented string.
        let secret = Secret::new("Jefe");
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1700000000.{\"a\":1}");
        let expected = to_hex(&mac.finalize().into_bytes());
        assert_eq!(
            sign(&secret, 1_700_000_000, br#"{"a":1}"#),
            format!("v1={expected}")
        );
        // The value the shell example in docs/watch.md computes:
        // printf '%s.%s' 1700000000 '{"a":1}' | openssl dgst -sha256 -hmac Jefe -r
        assert_eq!(
            expected,
            "fa5f6481efc59da48b19c9dc10196c9953e5651f8304b3a318b6b87d70272e0a"
        );
    }

    // A correctly signed request passes once, within the window either way.
    #[test]
    fn valid_signatures_pass() {
        let v = verifier();
        let secret = Secret::new(SECRET);
        for (ts, body) in [(NOW, &b"{}"[..]), (NOW - 300, b"a"), (NOW + 300, b"b")] {
            let sig = sign(&secret, ts, body);
            assert_eq!(check(&v, ts, &sig, body, NOW), Ok(()));
        }
        // Upper-case hex and surrounding blanks are accepted too.
        let sig = sign(&secret, NOW, b"c")
            .to_uppercase()
            .replace("V1=", "v1=");
        assert_eq!(check(&v, NOW, &format!(" {sig} "), b"c", NOW), Ok(()));
    }

    // A changed body, a changed timestamp or the wrong secret fails the MAC.
    #[test]
    fn tampering_is_refused() {
        let v = verifier();
        let sig = sign(&Secret::new(SECRET), NOW, br#"{"userName":"ana@x"}"#);
        assert_eq!(
            check(&v, NOW, &sig, br#"{"userName":"bob@x"}"#, NOW),
            Err(Rejection::BadSignature)
        );
        assert_eq!(
            check(&v, NOW - 1, &sig, br#"{"userName":"ana@x"}"#, NOW),
            Err(Rejection::BadSignature)
        );
        let other = sign(&Secret::new("another-secret"), NOW, b"x");
        assert_eq!(
            check(&v, NOW, &other, b"x", NOW),
            Err(Rejection::BadSignature)
        );
        // A refused request is not remembered: the genuine one still passes.
        let genuine = sign(&Secret::new(SECRET), NOW, br#"{"userName":"ana@x"}"#);
        assert_eq!(genuine, sig);
        assert_eq!(
            check(&v, NOW, &sig, br#"{"userName":"ana@x"}"#, NOW),
            Ok(())
        );
    }

    // Timestamps more than the window old or ahead are refused, whatever the MAC.
    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let v = verifier();
        let secret = Secret::new(SECRET);
        let old = sign(&secret, NOW - 301, b"x");
        assert_eq!(
            check(&v, NOW - 301, &old, b"x", NOW),
            Err(Rejection::Stale {
                age: 301,
                window: 300
            })
        );
        let ahead = sign(&secret, NOW + 301, b"x");
        assert_eq!(
            check(&v, NOW + 301, &ahead, b"x", NOW),
            Err(Rejection::Future {
                ahead: 301,
                window: 300
            })
        );
        assert_eq!(
            check(&v, i64::MIN, &old, b"x", NOW).unwrap_err().status(),
            StatusCode::UNAUTHORIZED
        );
    }

    // The same signed request twice within the window is a replay (409); once released (its
    // processing failed), it is accepted again.
    #[test]
    fn replays_are_refused_until_released() {
        let v = verifier();
        let sig = sign(&Secret::new(SECRET), NOW, b"x");
        let first = v
            .verify(Some(&NOW.to_string()), Some(&sig), b"x", NOW)
            .unwrap();
        let again = check(&v, NOW, &sig, b"x", NOW + 10);
        assert_eq!(again, Err(Rejection::Replayed));
        assert_eq!(again.unwrap_err().status(), StatusCode::CONFLICT);
        v.release(&first);
        assert_eq!(check(&v, NOW, &sig, b"x", NOW + 20), Ok(()));
        // Past the window the replay is stale rather than remembered, and pruned.
        assert_eq!(v.remembered(), 1);
        let later = sign(&Secret::new(SECRET), NOW + 400, b"y");
        assert_eq!(check(&v, NOW + 400, &later, b"y", NOW + 400), Ok(()));
        assert_eq!(v.remembered(), 1, "the old entry was pruned");
        assert!(matches!(
            check(&v, NOW, &sig, b"x", NOW + 400),
            Err(Rejection::Stale { .. })
        ));
    }

    // Missing and malformed headers get their own messages; none of them shows the secret.
    #[test]
    fn malformed_headers_and_messages() {
        let v = verifier();
        let sig = sign(&Secret::new(SECRET), NOW, b"x");
        let ts = NOW.to_string();
        let cases = [
            (None, Some(sig.as_str()), Rejection::MissingTimestamp),
            (Some("soon"), Some(sig.as_str()), Rejection::BadTimestamp),
            (Some(ts.as_str()), None, Rejection::MissingSignature),
            (
                Some(ts.as_str()),
                Some("sha256=abc"),
                Rejection::MalformedSignature,
            ),
            (
                Some(ts.as_str()),
                Some(&sig[..60]),
                Rejection::MalformedSignature,
            ),
            (
                Some(ts.as_str()),
                Some(&sig.replace(&sig[3..5], "zz")),
                Rejection::MalformedSignature,
            ),
        ];
        for (ts, sig, expected) in cases {
            let got = v.verify(ts, sig, b"x", NOW).unwrap_err();
            assert_eq!(got, expected);
            assert_eq!(got.status(), StatusCode::UNAUTHORIZED);
        }
        let messages = [
            Rejection::MissingTimestamp,
            Rejection::BadSignature,
            Rejection::Replayed,
            Rejection::Stale { age: 1, window: 2 },
        ]
        .map(|r| r.to_string());
        for m in &messages {
            assert!(!m.contains(SECRET) && !m.contains(&sig[3..]), "{m}");
        }
        assert!(!format!("{v:?}").contains(SECRET));
    }
}
