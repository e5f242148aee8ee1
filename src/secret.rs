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

/// The secret the functions sign with and, while a rotation rolls out, the one they signed with before: they sign
/// with both, so a backend that knows either accepts their calls.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    pub current: String,
    pub previous: Option<String>,
}

/// What `up` does to the signing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretChange {
    /// None was deployed: a new one.
    Created,
    /// The deployed one stays.
    Kept,
    /// A new one, the deployed one kept as the previous (`--rotate-signing-secret`).
    Rotated,
    /// The previous one of a rotation is dropped: the functions sign with the current one only.
    Retired,
    /// A new one, and the deployed ones stop being accepted at once (`--rotate-signing-secret --revoke-previous`:
    /// after a leak, no overlap).
    Replaced,
}

/// What `up` was asked to do to the signing secret.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SecretAsk {
    /// `--rotate-signing-secret`: a new one.
    pub rotate: bool,
    /// `--revoke-previous`: no overlap; with `rotate`, the deployed secret stops at once, alone, a rotation's
    /// previous one is retired now rather than at the next `up`.
    pub revoke_previous: bool,
}

impl SigningSecrets {
    pub fn single(current: String) -> SigningSecrets {
        SigningSecrets {
            current,
            previous: None,
        }
    }

    /// The secrets to deploy, given those deployed: a rotation keeps the deployed one as the previous, and the next
    /// `up` without `rotate` retires it (by then the backend runs with the env file that holds the new one).
    pub(crate) fn next(
        deployed: Option<SigningSecrets>,
        ask: SecretAsk,
        fresh: impl FnOnce() -> String,
    ) -> (SigningSecrets, SecretChange) {
        match deployed {
            None => (SigningSecrets::single(fresh()), SecretChange::Created),
            Some(_) if ask.rotate && ask.revoke_previous => {
                (SigningSecrets::single(fresh()), SecretChange::Replaced)
            }
            Some(d) if ask.rotate => (
                SigningSecrets {
                    current: fresh(),
                    previous: Some(d.current),
                },
                SecretChange::Rotated,
            ),
            Some(d) if d.previous.is_some() => {
                (SigningSecrets::single(d.current), SecretChange::Retired)
            }
            Some(d) => (d, SecretChange::Kept),
        }
    }
}

// Never prints a secret, whatever formats it.
impl std::fmt::Debug for SigningSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningSecrets")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployed() -> SigningSecrets {
        SigningSecrets::single("cur".into())
    }

    #[test]
    fn a_rotation_keeps_the_deployed_secret_until_the_next_up() {
        let fresh = || "new".to_string();
        assert_eq!(
            SigningSecrets::next(None, KEEP, fresh),
            (SigningSecrets::single("new".into()), SecretChange::Created)
        );
        assert_eq!(
            SigningSecrets::next(None, ROTATE, fresh),
            (SigningSecrets::single("new".into()), SecretChange::Created),
            "nothing deployed: nothing to keep accepting"
        );
        assert_eq!(
            SigningSecrets::next(Some(deployed()), KEEP, fresh),
            (SigningSecrets::single("cur".into()), SecretChange::Kept)
        );
        let (rotated, change) = SigningSecrets::next(Some(deployed()), ROTATE, fresh);
        assert_eq!(change, SecretChange::Rotated);
        assert_eq!(
            (rotated.current.as_str(), rotated.previous.as_deref()),
            ("new", Some("cur"))
        );
        assert_eq!(
            SigningSecrets::next(Some(rotated.clone()), KEEP, fresh),
            (SigningSecrets::single("new".into()), SecretChange::Retired)
        );
        // Rotating again mid-rotation: the oldest goes, the two newest are accepted.
        let (again, _) = SigningSecrets::next(Some(rotated.clone()), ROTATE, || "newer".into());
        assert_eq!(
            (again.current.as_str(), again.previous.as_deref()),
            ("newer", Some("new"))
        );
    }

    const KEEP: SecretAsk = SecretAsk {
        rotate: false,
        revoke_previous: false,
    };
    const ROTATE: SecretAsk = SecretAsk {
        rotate: true,
        revoke_previous: false,
    };

    /// After a leak: a new secret and nothing else accepted, whether or not a rotation was under way; alone,
    /// `--revoke-previous` ends a rotation now.
    #[test]
    fn revoking_the_previous_secret_leaves_no_overlap() {
        let revoke = SecretAsk {
            rotate: true,
            revoke_previous: true,
        };
        let fresh = || "new".to_string();
        let rotating = SigningSecrets {
            current: "cur".into(),
            previous: Some("old".into()),
        };
        for deployed in [deployed(), rotating.clone()] {
            assert_eq!(
                SigningSecrets::next(Some(deployed), revoke, fresh),
                (SigningSecrets::single("new".into()), SecretChange::Replaced)
            );
        }
        let retire_now = SecretAsk {
            rotate: false,
            revoke_previous: true,
        };
        assert_eq!(
            SigningSecrets::next(Some(rotating), retire_now, fresh),
            (SigningSecrets::single("cur".into()), SecretChange::Retired)
        );
        assert_eq!(
            SigningSecrets::next(Some(deployed()), retire_now, fresh),
            (deployed(), SecretChange::Kept),
            "no rotation under way: nothing to revoke"
        );
    }

    #[test]
    fn debug_output_never_holds_a_secret() {
        let s = SigningSecrets {
            current: "current-value".into(),
            previous: Some("previous-value".into()),
        };
        assert!(!format!("{s:?}").contains("value"));
    }
}
