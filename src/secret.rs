//! Fresh secrets: the signing secret the functions and the backend share, and `dev`'s local access keys.

use base64::Engine;
use rand::distributions::{Alphanumeric, DistString};

/// Dev credentials start with this, so a restart can tell its own (and keep them) from real ones.
pub(crate) const DEV_KEY_PREFIX: &str = "AKIALOCAL";

/// The shortest signing secret wsdeploy adopts: 32 random bytes in URL-safe base64 (what it generates).
pub(crate) const MIN_SIGNING_SECRET_LEN: usize = 43;

/// Whether a signing secret found in a file is long enough to be one wsdeploy generated: a hand-typed short one
/// is replaced, not adopted.
pub(crate) fn is_strong(secret: &str) -> bool {
    secret.len() >= MIN_SIGNING_SECRET_LEN
}

/// A fresh signing secret: 32 random bytes, URL-safe base64.
pub(crate) fn new_signing_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A local access key pair for `dev`, shaped like AWS's (20-character id, 40-character secret).
pub(crate) fn new_dev_key() -> (String, String) {
    let mut rng = rand::thread_rng();
    let id = format!(
        "{DEV_KEY_PREFIX}{}",
        Alphanumeric.sample_string(&mut rng, 11).to_uppercase()
    );
    (id, Alphanumeric.sample_string(&mut rng, 40))
}
