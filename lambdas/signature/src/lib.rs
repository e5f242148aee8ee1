//! `X-Wsdeploy-Signature`: how the bundled Lambdas prove to your backend that a call comes from them.
//!
//! ```text
//! X-Wsdeploy-Signature: t=<unix seconds>,v2=<hex HMAC-SHA256(secret, canonical)>[,v2=<…another secret…>]
//!
//! canonical = "wsdeploy-v2" LF <t> LF <METHOD> LF <target> LF hex(SHA-256(body)) LF hex(SHA-256(authorization))
//! ```
//!
//! `<target>` is the request target exactly as sent on the wire (percent-encoded path, plus `?query` if any),
//! `body` the raw body bytes (empty for a DELETE) and `authorization` the `Authorization` header's value as sent
//! (empty when there is none). Every field is either fixed-form (digits, hex) or cannot hold a line feed on the
//! wire, and a verifier refuses a method or target that contains one, so two different requests never share a
//! canonical form. Binding the `Authorization` hash means a captured call cannot be replayed with another token.
//!
//! While a secret is being rotated the Lambdas sign with both the new and the previous secret (two `v2=` entries),
//! so a backend that knows either accepts the call.
//!
//! v1 (`v1=HMAC(secret, "<t>.<METHOD>.<target>.<body>")`, no `Authorization`) is what wsdeploy's Lambdas sent
//! before; verifiers accept it until [`V1_ACCEPTED_UNTIL`] (2027-06-01T00:00:00Z) and refuse it from then on.
//!
//! ```
//! use wsdeploy_signature::{sign, verify, Request, Scheme};
//! let req = Request { method: "POST", target: "/socket-connections", body: br#"{"connectionId":"x="}"#, authorization: "Bearer t0k" };
//! let header = sign(&[b"secret"], 1_800_000_000, &req);
//! assert_eq!(verify(&[b"secret"], &header, &req, 1_800_000_010), Ok(Scheme::V2));
//! assert!(verify(&[b"other"], &header, &req, 1_800_000_010).is_err());
//! let replayed = Request { authorization: "Bearer another", ..req };
//! assert!(verify(&[b"secret"], &header, &replayed, 1_800_000_010).is_err());
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub const HEADER: &str = "X-Wsdeploy-Signature";
/// How old (or how far in the future) a signature may be, in seconds.
pub const TOLERANCE_SECS: u64 = 300;
/// v1 signatures verify until this unix time (2027-06-01T00:00:00Z), and never after.
pub const V1_ACCEPTED_UNTIL: u64 = 1_811_808_000;
/// More signatures than this in one header is not something a signer sends.
const MAX_SIGNATURES: usize = 4;

type HmacSha256 = Hmac<Sha256>;

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent: percent-encoded path and `?query`.
    pub target: &'a str,
    pub body: &'a [u8],
    /// The `Authorization` header's value as sent, `""` when there is none.
    pub authorization: &'a str,
}

/// Which scheme a valid header used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    V1,
    V2,
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length")
}

/// The exact bytes a v2 signature covers (see the crate's documentation).
pub fn canonical_v2(t: u64, req: &Request<'_>) -> String {
    format!(
        "wsdeploy-v2\n{t}\n{}\n{}\n{}\n{}",
        req.method,
        req.target,
        hex::encode(Sha256::digest(req.body)),
        hex::encode(Sha256::digest(req.authorization.as_bytes())),
    )
}

fn mac_v2(secret: &[u8], t: u64, req: &Request<'_>) -> HmacSha256 {
    let mut mac = keyed(secret);
    mac.update(canonical_v2(t, req).as_bytes());
    mac
}

fn mac_v1(secret: &[u8], t: u64, req: &Request<'_>) -> HmacSha256 {
    let mut mac = keyed(secret);
    mac.update(format!("{t}.{}.{}.", req.method, req.target).as_bytes());
    mac.update(req.body);
    mac
}

/// The header value for a call made at unix time `t`, with one `v2=` entry per secret (the current one first).
pub fn sign(secrets: &[&[u8]], t: u64, req: &Request<'_>) -> String {
    secrets.iter().fold(format!("t={t}"), |mut header, secret| {
        let tag = mac_v2(secret, t, req).finalize().into_bytes();
        header.push_str(",v2=");
        header.push_str(&hex::encode(tag));
        header
    })
}

/// The v1 header (still accepted by verifiers until [`V1_ACCEPTED_UNTIL`]); for tests of old signers.
pub fn sign_v1(secret: &[u8], t: u64, req: &Request<'_>) -> String {
    let tag = mac_v1(secret, t, req).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The header is not `t=<digits>` with one or more `v2=<64 hex digits>` (or one `v1=`), or the request's
    /// method or target holds a line feed.
    Malformed,
    /// The timestamp is more than `TOLERANCE_SECS` away from now: a replay, or a badly wrong clock.
    Expired { age_secs: i64 },
    /// No signature matches any of the secrets: another secret, or the request was altered.
    Mismatch,
    /// The verifier has no secret: every signature would be checked against the empty key, which anyone can use.
    NoSecret,
    /// A v1 signature after [`V1_ACCEPTED_UNTIL`]: the signer is a Lambda deployed by an old wsdeploy.
    V1Retired,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Malformed => write!(f, "malformed {HEADER} header"),
            VerifyError::Expired { age_secs } => write!(
                f,
                "signature timestamp is {age_secs} s away from now (limit {TOLERANCE_SECS} s)"
            ),
            VerifyError::Mismatch => write!(f, "signature does not match"),
            VerifyError::NoSecret => write!(f, "no signing secret to verify with"),
            VerifyError::V1Retired => write!(
                f,
                "v1 signatures are no longer accepted: run `wsdeploy up` with a current wsdeploy"
            ),
        }
    }
}

impl std::error::Error for VerifyError {}

struct Parsed {
    t: u64,
    v1: Option<Vec<u8>>,
    v2: Vec<Vec<u8>>,
}

/// 64 lower-case hex digits, the only form a signer writes.
fn tag(hex_digits: &str) -> Option<Vec<u8>> {
    let lower = hex_digits
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex::decode(hex_digits)
        .ok()
        .filter(|b| lower && b.len() == 32)
}

/// `t=` once, `v2=` up to [`MAX_SIGNATURES`] times or `v1=` once; unknown keys are ignored (room for v3).
fn parse(header: &str) -> Option<Parsed> {
    let (mut t, mut v1, mut v2) = (None, None, Vec::new());
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key {
            "t" if t.is_none()
                && !value.is_empty()
                && value.bytes().all(|b| b.is_ascii_digit()) =>
            {
                t = Some(value.parse::<u64>().ok()?);
            }
            "v1" if v1.is_none() => v1 = Some(tag(value)?),
            "v2" if v2.len() < MAX_SIGNATURES => v2.push(tag(value)?),
            "t" | "v1" | "v2" => return None,
            _ => {}
        }
    }
    let t = t?;
    (v1.is_some() || !v2.is_empty()).then_some(Parsed { t, v1, v2 })
}

/// Checks `header` for `req`, received at unix time `now`, against each of `secrets` (the current one and, during a
/// rotation, the previous one; empty ones are ignored). Compares in constant time. Any header, however malformed or
/// far off in time, is an error, never a panic.
pub fn verify(
    secrets: &[&[u8]],
    header: &str,
    req: &Request<'_>,
    now: u64,
) -> Result<Scheme, VerifyError> {
    let secrets: Vec<&[u8]> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    if req.method.contains('\n') || req.target.contains('\n') {
        return Err(VerifyError::Malformed);
    }
    let Parsed { t, v1, v2 } = parse(header).ok_or(VerifyError::Malformed)?;
    // In i128: both are any u64 a header can carry, and their difference must not overflow.
    let age = i128::from(now) - i128::from(t);
    if age.unsigned_abs() > u128::from(TOLERANCE_SECS) {
        let age_secs = i64::try_from(age).unwrap_or(if age < 0 { i64::MIN } else { i64::MAX });
        return Err(VerifyError::Expired { age_secs });
    }
    if !v2.is_empty() {
        // A header with v2 entries is judged by them alone: no falling back to the weaker v1.
        let ok = secrets.iter().any(|s| {
            let expected = mac_v2(s, t, req);
            v2.iter()
                .any(|given| expected.clone().verify_slice(given).is_ok())
        });
        return if ok {
            Ok(Scheme::V2)
        } else {
            Err(VerifyError::Mismatch)
        };
    }
    if now >= V1_ACCEPTED_UNTIL {
        return Err(VerifyError::V1Retired);
    }
    let given = v1.ok_or(VerifyError::Malformed)?;
    if secrets
        .iter()
        .any(|s| mac_v1(s, t, req).verify_slice(&given).is_ok())
    {
        Ok(Scheme::V1)
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests;
