//! `X-Wsdeploy-Signature`: how the bundled Lambdas prove to your backend that a call comes from them.
//!
//! ```text
//! X-Wsdeploy-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signing_secret, "<t>.<METHOD>.<path>.<body>")>
//! ```
//!
//! `<path>` is the request target exactly as sent on the wire (percent-encoded path, plus `?query` if any) and
//! `<body>` the raw body, empty for a DELETE. A backend rejects a missing or wrong signature, or one older than
//! [`TOLERANCE_SECS`]. Backend authors: compute the HMAC over the raw body bytes *before* parsing JSON.
//!
//! ```
//! use wsdeploy_signature::{sign, verify};
//! let header = sign(b"secret", 1_700_000_000, "POST", "/socket-connections", br#"{"connectionId":"x="}"#);
//! assert!(verify(b"secret", &header, "POST", "/socket-connections", br#"{"connectionId":"x="}"#, 1_700_000_010).is_ok());
//! assert!(verify(b"other", &header, "POST", "/socket-connections", br#"{"connectionId":"x="}"#, 1_700_000_010).is_err());
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const HEADER: &str = "X-Wsdeploy-Signature";
/// How old (or how far in the future) a signature may be, in seconds.
pub const TOLERANCE_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], t: u64, method: &str, path: &str, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(method.as_bytes());
    mac.update(b".");
    mac.update(path.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for a call made at unix time `t`.
pub fn sign(secret: &[u8], t: u64, method: &str, path: &str, body: &[u8]) -> String {
    let tag = mac(secret, t, method, path, body).finalize().into_bytes();
    format!("t={t},v1={}", hex::encode(tag))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The header is not `t=<digits>,v1=<64 hex digits>`.
    Malformed,
    /// The timestamp is more than `TOLERANCE_SECS` away from now: a replay, or a badly wrong clock.
    Expired { age_secs: i64 },
    /// The HMAC does not match: another secret, or the request was altered.
    Mismatch,
    /// The verifier has no secret: every signature would be checked against the empty key, which anyone can use.
    NoSecret,
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
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks `header` for a request received at unix time `now`. Compares in constant time. Any header, however
/// malformed or far off in time, is an error, never a panic.
pub fn verify(
    secret: &[u8],
    header: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now: u64,
) -> Result<(), VerifyError> {
    if secret.is_empty() {
        return Err(VerifyError::NoSecret);
    }
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                t = v.parse::<u64>().ok();
            }
            Some(("v1", v)) => v1 = hex::decode(v).ok().filter(|b| b.len() == 32),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err(VerifyError::Malformed);
    };
    // In i128: both are any u64 a header can carry, and their difference must not overflow.
    let age = i128::from(now) - i128::from(t);
    if age.unsigned_abs() > u128::from(TOLERANCE_SECS) {
        let age_secs = i64::try_from(age).unwrap_or(if age < 0 { i64::MIN } else { i64::MAX });
        return Err(VerifyError::Expired { age_secs });
    }
    mac(secret, t, method, path, body)
        .verify_slice(&v1)
        .map_err(|_| VerifyError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_764_000_000;

    #[test]
    fn matches_a_known_vector() {
        // Computed independently: printf '1764000000.DELETE./socket-connections/TWegAcC4EowCHnA%3D.' | openssl dgst -sha256 -hmac s3cret
        let h = sign(
            b"s3cret",
            NOW,
            "DELETE",
            "/socket-connections/TWegAcC4EowCHnA%3D",
            b"",
        );
        assert_eq!(
            h,
            format!("t={NOW},v1={}", include_str!("../tests/vector.hex").trim())
        );
    }

    #[test]
    fn rejects_every_kind_of_tampering() {
        let body = br#"{"connectionId":"TWegAcC4EowCHnA="}"#;
        let h = sign(b"k", NOW, "POST", "/socket-connections", body);
        assert_eq!(
            verify(b"k", &h, "POST", "/socket-connections", body, NOW + 299),
            Ok(())
        );
        assert_eq!(
            verify(b"k", &h, "POST", "/socket-connections", body, NOW - 299),
            Ok(()),
            "small clock skew is fine"
        );
        assert_eq!(
            verify(b"x", &h, "POST", "/socket-connections", body, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", &h, "DELETE", "/socket-connections", body, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", &h, "POST", "/socket-connections?x=1", body, NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", &h, "POST", "/socket-connections", b"{}", NOW),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"k", &h, "POST", "/socket-connections", body, NOW + 301),
            Err(VerifyError::Expired { age_secs: 301 })
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            "t=abc,v1=00",
            &format!("t={NOW},v1=zz"),
            &format!("t=-{NOW},v1={}", "0".repeat(64)),
        ] {
            assert_eq!(
                verify(b"k", bad, "POST", "/", b"", NOW),
                Err(VerifyError::Malformed),
                "{bad:?}"
            );
        }
    }
}
