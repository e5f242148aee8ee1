//! `verify` takes whatever a client sends: any header, any clock, any body. It answers with an error, never a
//! panic or an overflow, and it never accepts a signature made with, or checked against, an empty secret.

use proptest::prelude::*;
use wsdeploy_signature::{sign, verify, Request, Scheme, VerifyError};

const NOW: u64 = 1_800_000_000;

fn post(body: &[u8]) -> Request<'_> {
    Request {
        method: "POST",
        target: "/socket-connections",
        body,
        authorization: "Bearer t",
    }
}

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
        let header = format!("t={t},v2={tag}");
        match verify(&[b"secret"], &header, &post(b""), now) {
            Err(VerifyError::Expired { .. }) => {}
            other => panic!("t={t} now={now}: {other:?}"),
        }
    }
}

#[test]
fn an_empty_secret_verifies_nothing() {
    let header = sign(&[b""], NOW, &post(b"{}"));
    assert_eq!(
        verify(&[b""], &header, &post(b"{}"), NOW),
        Err(VerifyError::NoSecret)
    );
    assert_eq!(
        verify(&[], &header, &post(b"{}"), NOW),
        Err(VerifyError::NoSecret)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_header_is_an_answer_never_a_panic(
        header in any::<String>(),
        method in "[A-Z\n]{0,8}",
        target in any::<String>(),
        authorization in any::<String>(),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        secret in proptest::collection::vec(any::<u8>(), 0..40),
        now in any::<u64>(),
    ) {
        let req = Request { method: &method, target: &target, body: &body, authorization: &authorization };
        let _ = verify(&[&secret, b"k"], &header, &req, now);
    }

    #[test]
    fn near_valid_headers_are_refused(t in any::<u64>(), now in any::<u64>(), tag in "[0-9a-fA-F]{0,70}", extra in "[ ,=tv12x]{0,6}") {
        let header = format!("t={t}{extra},v2={tag}");
        prop_assert!(verify(&[b"secret"], &header, &post(b""), now).is_err());
    }

    #[test]
    fn what_is_signed_verifies(t in 0u64..4_000_000_000, skew in 0u64..=300, body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let header = sign(&[b"new", b"old"], t, &post(&body));
        prop_assert_eq!(verify(&[b"new"], &header, &post(&body), t + skew), Ok(Scheme::V2));
        prop_assert_eq!(verify(&[b"old"], &header, &post(&body), t + skew), Ok(Scheme::V2));
    }

    #[test]
    fn a_signature_is_bound_to_its_token(token in "[ -~]{0,40}", other in "[ -~]{0,40}") {
        prop_assume!(token != other);
        let mut req = post(b"{}");
        req.authorization = &token;
        let header = sign(&[b"k"], NOW, &req);
        req.authorization = &other;
        prop_assert_eq!(verify(&[b"k"], &header, &req, NOW), Err(VerifyError::Mismatch));
    }
}
