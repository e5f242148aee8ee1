//! `verify` takes whatever a client sends: any header, any clock, any body. It answers with an error, never a
//! panic or an overflow, and it never accepts a signature made with, or checked against, an empty secret.

use proptest::prelude::*;
use wsdeploy_signature::{sign, verify, VerifyError};

const NOW: u64 = 1_764_000_000;

#[test]
fn timestamps_at_the_ends_of_u64_are_expired_not_an_overflow() {
    let tag = "00".repeat(32);
    for (t, now) in [
        (u64::MAX, 0),
        (0, u64::MAX),
        (1 << 63, 0),
        (0, 1 << 63),
        (u64::MAX, u64::MAX - 301),
    ] {
        let header = format!("t={t},v1={tag}");
        match verify(b"secret", &header, "GET", "/", b"", now) {
            Err(VerifyError::Expired { .. }) => {}
            other => panic!("t={t} now={now}: {other:?}"),
        }
    }
}

#[test]
fn an_empty_secret_verifies_nothing() {
    let header = sign(b"", NOW, "POST", "/socket-connections", b"{}");
    assert_eq!(
        verify(b"", &header, "POST", "/socket-connections", b"{}", NOW),
        Err(VerifyError::NoSecret)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_header_is_an_answer_never_a_panic(
        header in any::<String>(),
        method in "[A-Z]{0,8}",
        path in any::<String>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        secret in proptest::collection::vec(any::<u8>(), 0..40),
        now in any::<u64>(),
    ) {
        let _ = verify(&secret, &header, &method, &path, &body, now);
    }

    #[test]
    fn near_valid_headers_are_refused(t in any::<u64>(), now in any::<u64>(), tag in "[0-9a-f]{0,70}", extra in "[ ,=tv1x]{0,6}") {
        let header = format!("t={t}{extra},v1={tag}");
        prop_assert!(verify(b"secret", &header, "GET", "/", b"", now).is_err());
    }

    #[test]
    fn what_is_signed_verifies(t in 0u64..4_000_000_000, skew in 0u64..=300, body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let header = sign(b"secret", t, "POST", "/socket-connections", &body);
        prop_assert_eq!(verify(b"secret", &header, "POST", "/socket-connections", &body, t + skew), Ok(()));
    }
}
