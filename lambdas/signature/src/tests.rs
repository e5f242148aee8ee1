//! The scheme against the reference vectors (computed by `tests/vectors.py`, independently of this crate), which
//! the Express and NestJS verifiers are checked against too.

use super::*;

#[derive(serde::Deserialize)]
struct Vectors {
    v1_accepted_until: u64,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    method: String,
    target: String,
    body: String,
    authorization: String,
    header: String,
    secrets: Vec<String>,
    now: u64,
    result: String,
    signed_by: Option<Vec<String>>,
    t: Option<u64>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("../tests/vectors.json")).expect("vectors.json parses")
}

fn outcome(r: &Result<Scheme, VerifyError>) -> &'static str {
    match r {
        Ok(Scheme::V1) => "v1",
        Ok(Scheme::V2) => "v2",
        Err(VerifyError::Malformed) => "malformed",
        Err(VerifyError::Expired { .. }) => "expired",
        Err(VerifyError::Mismatch) => "mismatch",
        Err(VerifyError::NoSecret) => "no-secret",
        Err(VerifyError::V1Retired) => "v1-retired",
    }
}

#[test]
fn verify_agrees_with_every_reference_vector() {
    let v = vectors();
    assert_eq!(v.v1_accepted_until, V1_ACCEPTED_UNTIL);
    for c in &v.cases {
        let req = Request {
            method: &c.method,
            target: &c.target,
            body: c.body.as_bytes(),
            authorization: &c.authorization,
        };
        let secrets: Vec<&[u8]> = c.secrets.iter().map(String::as_bytes).collect();
        let got = verify(&secrets, &c.header, &req, c.now);
        assert_eq!(outcome(&got), c.result, "{}: {got:?}", c.name);
    }
}

#[test]
fn sign_writes_every_reference_header_byte_for_byte() {
    let v = vectors();
    let signed: Vec<&Case> = v.cases.iter().filter(|c| c.signed_by.is_some()).collect();
    assert!(signed.len() >= 4);
    for c in signed {
        let req = Request {
            method: &c.method,
            target: &c.target,
            body: c.body.as_bytes(),
            authorization: &c.authorization,
        };
        let by: Vec<&[u8]> = c.signed_by.iter().flatten().map(String::as_bytes).collect();
        assert_eq!(sign(&by, c.t.unwrap(), &req), c.header, "{}", c.name);
    }
}

#[test]
fn an_old_signer_still_verifies_until_the_date() {
    let req = Request {
        method: "DELETE",
        target: "/socket-connections/TWegAcC4EowCHnA%3D",
        body: b"",
        authorization: "",
    };
    let t = V1_ACCEPTED_UNTIL - 10;
    let header = sign_v1(b"k", t, &req);
    assert_eq!(verify(&[b"k"], &header, &req, t), Ok(Scheme::V1));
    assert_eq!(
        verify(&[b"x"], &header, &req, t),
        Err(VerifyError::Mismatch)
    );
    let late = sign_v1(b"k", V1_ACCEPTED_UNTIL, &req);
    assert_eq!(
        verify(&[b"k"], &late, &req, V1_ACCEPTED_UNTIL),
        Err(VerifyError::V1Retired)
    );
}
