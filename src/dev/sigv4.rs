//! Checking `SigV4` on the calls to dev's AWS endpoints (`@connections`, the Lambda Invoke API) as AWS's verifiers
//! do: the canonical request is rebuilt from exactly the headers the request says it signed, the string to sign from
//! its credential scope, and the signature compared; the signing key, an HMAC chain over the secret, the day, the
//! region and the service, is derived once per scope and kept.
//!
//! The algorithm: <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>. aws-sigv4 (the crate
//! the AWS SDKs for Rust sign with) derives the key and computes the final HMAC here; it has no public way to build
//! only the canonical request, and re-signing each request with it (an Authorization header built and thrown away,
//! the key derived again) was a quarter of dev's CPU under an `@connections` POST load (perf, 10,000 sockets held).
//! So the canonical request is built here, as aws-sigv4 builds it (its `canonical_request.rs`: dot segments
//! removed, the path encoded once more, query pairs decoded, encoded and sorted, header values trimmed), and the
//! tests check this verifier against aws-sigv4's signer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::SystemTime;

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use axum::http::{HeaderMap, Method, Uri};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::facts;

/// Requests older or newer than this are refused, as AWS does.
const MAX_SKEW_SECS: u64 = 15 * 60;

/// `SigV4`'s `UriEncode`: everything but RFC 3986's unreserved characters is %-encoded (the set aws-smithy-http's
/// `urlencode::BASE_SET` spells out character by character).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same for a path, whose slashes stay.
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// Scopes whose keys are kept: a day's worth of regions and services is a handful, a clock that crosses midnight one
/// more; beyond this the cache starts again rather than grow.
const MAX_KEYS: usize = 16;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    Malformed(&'static str),
    UnknownKey,
    Expired,
    /// Scoped to another day, region, service or terminator.
    Scope(String),
    Mismatch,
}

impl Denied {
    /// The `x-amzn-ErrorType` AWS answers with for each cause (all with 403), so that an SDK's error code (and a
    /// backend's handling of it) is the same under `dev` as on AWS. As execute-api answers them in
    /// `x-amzn-ErrorType` (seen in the wild: kndt84/aws-api-gateway-client#16 for InvalidSignatureException,
    /// RhinoSecurityLabs/IPRotate_Burp_Extension#25 for IncompleteSignatureException on a malformed header).
    pub(crate) fn error_type(&self) -> &'static str {
        match self {
            Denied::Missing => facts::ERROR_NO_SIGNATURE,
            Denied::Malformed(_) => facts::ERROR_MALFORMED_SIGNATURE,
            Denied::UnknownKey => facts::ERROR_UNKNOWN_KEY,
            Denied::Expired | Denied::Scope(_) | Denied::Mismatch => facts::ERROR_BAD_SIGNATURE,
        }
    }

    pub(crate) fn message(&self) -> &str {
        match self {
            Denied::Scope(why) => why,
            Denied::Missing => "Missing Authentication Token",
            Denied::Malformed(why) => why,
            Denied::UnknownKey => "The security token included in the request is invalid.",
            Denied::Expired => {
                "Signature expired: the request time is too far from the server's time."
            }
            Denied::Mismatch => {
                "The request signature we calculated does not match the signature you provided."
            }
        }
    }
}

pub(crate) struct Verifier {
    access_key_id: String,
    secret_access_key: String,
    region: String,
    /// Signing keys by credential scope (`20261206/us-east-1/execute-api`).
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(headers: &'a HeaderMap) -> Result<Self, Denied> {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or(Denied::Missing)?;
        let rest = auth
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or(Denied::Malformed("unsupported authorization scheme"))?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v),
                Some(("SignedHeaders", v)) => signed_headers = Some(v),
                Some(("Signature", v)) => signature = Some(v),
                _ => {}
            }
        }
        match (credential, signed_headers, signature) {
            (Some(credential), Some(signed_headers), Some(signature)) => Ok(Authorization {
                credential,
                signed_headers,
                signature,
            }),
            _ => Err(Denied::Malformed(
                "authorization header lacks Credential, SignedHeaders or Signature",
            )),
        }
    }
}

/// `AKIA…/20261206/us-east-1/execute-api/aws4_request`, in its parts.
struct Scope<'a> {
    key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

impl<'a> Scope<'a> {
    fn parse(credential: &'a str) -> Result<Self, Denied> {
        let mut parts = credential.split('/');
        let mut next = || parts.next().unwrap_or("");
        let scope = Scope {
            key_id: next(),
            date: next(),
            region: next(),
            service: next(),
            terminator: next(),
        };
        if scope.terminator.is_empty() || !next().is_empty() {
            return Err(Denied::Malformed(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term",
            ));
        }
        Ok(scope)
    }
}

impl Verifier {
    pub(crate) fn new(access_key_id: String, secret_access_key: String, region: String) -> Self {
        Verifier {
            access_key_id,
            secret_access_key,
            region,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// A request to `@connections` (signed for `execute-api`).
    pub(crate) fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Denied> {
        self.check_for("execute-api", method, uri, headers, body)
    }

    /// A request to `service` (the signing name: `execute-api`, `lambda`).
    pub(crate) fn check_for(
        &self,
        service: &str,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), Denied> {
        let auth = Authorization::parse(headers)?;
        let scope = Scope::parse(auth.credential)?;
        if scope.key_id != self.access_key_id {
            return Err(Denied::UnknownKey);
        }
        let amz_date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or(Denied::Malformed("missing X-Amz-Date"))?;
        let time = parse_amz_date(amz_date).ok_or(Denied::Malformed("bad X-Amz-Date"))?;
        let skew = SystemTime::now()
            .duration_since(time)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap_or_default();
        if skew.as_secs() > MAX_SKEW_SECS {
            return Err(Denied::Expired);
        }
        self.check_scope(&scope, amz_date, service)?;
        let canonical = canonical_request(method, uri, headers, auth.signed_headers, body)
            .ok_or(Denied::Mismatch)?;
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{}/{}/{}/{}\n{:x}",
            scope.date,
            scope.region,
            scope.service,
            scope.terminator,
            Sha256::digest(canonical.as_bytes())
        );
        let expected =
            calculate_signature(self.signing_key(&scope, time), string_to_sign.as_bytes());
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            Ok(())
        } else {
            Err(Denied::Mismatch)
        }
    }

    /// The scope must be today's (the request's day), this region's and this service's, as AWS refuses a signature
    /// scoped elsewhere before it compares it (the messages are AWS's: aws/aws-sdk-js#792 quotes execute-api's for a
    /// wrong region, aws/aws-sdk-js-v3#5576 its `InvalidSignatureException`).
    fn check_scope(&self, scope: &Scope<'_>, amz_date: &str, service: &str) -> Result<(), Denied> {
        if !amz_date.starts_with(scope.date) || scope.date.len() != 8 {
            return Err(Denied::Scope(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
                scope.date,
                amz_date.get(..8).unwrap_or(amz_date)
            )));
        }
        if scope.region != self.region {
            return Err(Denied::Scope(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                scope.region
            )));
        }
        if scope.service != service {
            return Err(Denied::Scope(format!(
                "Credential should be scoped to correct service: '{service}'. "
            )));
        }
        if scope.terminator != "aws4_request" {
            return Err(Denied::Scope(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                scope.terminator
            )));
        }
        Ok(())
    }

    /// The key for this scope, derived on its first request.
    fn signing_key(&self, scope: &Scope<'_>, time: SystemTime) -> Vec<u8> {
        let id = format!("{}/{}/{}", scope.date, scope.region, scope.service);
        let mut keys = self.keys.lock().expect("signing keys");
        if let Some(key) = keys.get(&id) {
            return key.clone();
        }
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        let key = generate_signing_key(&self.secret_access_key, time, scope.region, scope.service)
            .as_ref()
            .to_vec();
        keys.insert(id, key.clone());
        key
    }
}

/// The canonical request over what the request says it signed; `None` when a header it names is not there (or not
/// text), which no signature can match.
fn canonical_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    signed_headers: &str,
    body: &[u8],
) -> Option<String> {
    let mut out = String::with_capacity(512);
    out.push_str(method.as_str());
    out.push('\n');
    let path = normalize_path(uri.path());
    out.extend(utf8_percent_encode(&path, PATH));
    out.push('\n');
    let mut query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| {
                (
                    utf8_percent_encode(&k, UNRESERVED).to_string(),
                    utf8_percent_encode(&v, UNRESERVED).to_string(),
                )
            })
            .collect();
    query.sort();
    for (i, (k, v)) in query.iter().enumerate() {
        let _ = write!(out, "{}{k}={v}", if i == 0 { "" } else { "&" });
    }
    out.push('\n');
    for name in signed_headers.split(';') {
        out.push_str(name);
        out.push(':');
        let mut values = headers.get_all(name).iter().peekable();
        values.peek()?;
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            trim_all_into(&mut out, value.to_str().ok()?);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    let _ = write!(out, "{:x}", Sha256::digest(body));
    Some(out)
}

/// RFC 3986's remove-dot-segments, with empty segments dropped and a trailing slash kept, as aws-sigv4's
/// `normalize_uri_path` does for every service but S3.
fn normalize_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.is_empty() {
        return "/".into();
    }
    if !path.starts_with('/') {
        return normalize_path(&format!("/{path}")).into_owned().into();
    }
    if !(path.contains('.') || path.contains("//")) {
        return path.into();
    }
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let mut out = format!("/{}", kept.join("/"));
    if ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s))
        && !out.ends_with('/')
    {
        out.push('/');
    }
    out.into()
}

/// A header value trimmed of spaces at both ends, each run of spaces inside it made one.
fn trim_all_into(out: &mut String, value: &str) {
    let mut space = false;
    for c in value.trim_matches(' ').chars() {
        if c == ' ' {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20261127T221030Z`
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, &format)
        .ok()?
        .assume_utc();
    Some(
        SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(t.unix_timestamp().try_into().ok()?),
    )
}

#[cfg(test)]
mod tests {
    //! This verifier against aws-sigv4's signer: whatever the SDKs sign passes, and a change to anything signed fails.

    use std::time::{Duration, SystemTime};

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
    use percent_encoding::utf8_percent_encode;
    use proptest::prelude::*;

    use super::{Denied, Verifier, UNRESERVED};

    const KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn verifier() -> Verifier {
        Verifier::new(KEY.into(), SECRET.into(), "eu-west-1".into())
    }

    /// A request as a client sends it, signed by aws-sigv4 for `region` and `service` at `time`.
    struct Signed {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    fn signed(
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        (region, service, time): (&str, &str, SystemTime),
    ) -> Signed {
        let mut all = vec![("host", "127.0.0.1:4000")];
        all.extend_from_slice(headers);
        let identity = Credentials::new(KEY, SECRET, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let url = format!("http://127.0.0.1:4000{path_and_query}");
        let request =
            SignableRequest::new("POST", &url, all.iter().copied(), SignableBody::Bytes(body))
                .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut map = HeaderMap::new();
        for (k, v) in all {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        for (k, v) in instructions.headers() {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        Signed {
            method: Method::POST,
            uri: path_and_query.parse().unwrap(),
            headers: map,
            body: body.to_vec(),
        }
    }

    /// A one-byte POST to connection `a`, signed for `region` and `service` at `time`.
    fn post_a(region: &str, service: &str, time: SystemTime) -> Signed {
        signed("/dev/@connections/a", &[], b"x", (region, service, time))
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    fn check(v: &Verifier, r: &Signed) -> Result<(), Denied> {
        v.check(&r.method, &r.uri, &r.headers, &r.body)
    }

    /// A path segment as an SDK puts a label into the path (connection ids hold `=`, `+` and `/`).
    fn label(s: &str) -> String {
        utf8_percent_encode(s, UNRESERVED).to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn what_aws_sigv4_signs_passes_and_any_change_fails(
            id in "[A-Za-z0-9=+/ @é._~-]{1,24}",
            extra in proptest::collection::vec("[a-z0-9 =+/.]{0,6}", 0..3),
            query in proptest::collection::vec(("[a-zA-Z0-9 +=&é]{1,5}", "[a-zA-Z0-9 +=&é]{0,5}"), 0..3),
            header in "[ ]{0,2}[a-zA-Z0-9]{1,4}([ ]{1,3}[a-zA-Z0-9]{1,4}){0,2}[ ]{0,2}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut path = format!("/dev/@connections/{}", label(&id));
            for segment in &extra {
                path.push('/');
                path.push_str(&label(segment));
            }
            if !query.is_empty() {
                let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", label(k), label(v))).collect();
                path.push('?');
                path.push_str(&pairs.join("&"));
            }
            let headers = [("content-type", "application/json"), ("x-extra", header.as_str()), ("x-extra", "second")];
            let r = signed(&path, &headers, &body, ("eu-west-1", "execute-api", now()));
            let v = verifier();
            prop_assert_eq!(check(&v, &r), Ok(()), "{}", path);
            prop_assert_eq!(check(&v, &r), Ok(()), "again, with the key kept: {}", path);
            let mut other_body = body.clone();
            other_body.push(b'x');
            prop_assert_eq!(v.check(&r.method, &r.uri, &r.headers, &other_body), Err(Denied::Mismatch));
            let mut other_headers = r.headers.clone();
            other_headers.insert("x-extra", HeaderValue::from_static("changed"));
            prop_assert_eq!(v.check(&r.method, &r.uri, &other_headers, &r.body), Err(Denied::Mismatch));
            let other_uri: Uri = format!("/dev/@connections/{}x", label(&id)).parse().unwrap();
            prop_assert_eq!(v.check(&r.method, &other_uri, &r.headers, &r.body), Err(Denied::Mismatch));
            prop_assert_eq!(v.check(&Method::DELETE, &r.uri, &r.headers, &r.body), Err(Denied::Mismatch));
        }
    }

    #[test]
    fn dot_segments_and_doubled_slashes_are_signed_as_aws_sigv4_normalizes_them() {
        for path in [
            "/dev/./@connections/a",
            "/dev/x/../@connections/a",
            "/dev//@connections/a/",
            "/dev/@connections/a/..",
        ] {
            let r = signed(path, &[], b"x", ("eu-west-1", "execute-api", now()));
            assert_eq!(check(&verifier(), &r), Ok(()), "{path}");
        }
    }

    #[test]
    fn a_signature_scoped_elsewhere_is_refused_as_aws_refuses_it() {
        let v = verifier();
        let r = post_a("us-east-1", "execute-api", now());
        assert_eq!(
            check(&v, &r),
            Err(Denied::Scope(
                "Credential should be scoped to a valid region, not 'us-east-1'. ".into()
            ))
        );
        let r = post_a("eu-west-1", "lambda", now());
        assert_eq!(
            check(&v, &r),
            Err(Denied::Scope(
                "Credential should be scoped to correct service: 'execute-api'. ".into()
            ))
        );
        assert_eq!(
            v.check_for("lambda", &r.method, &r.uri, &r.headers, &r.body),
            Ok(())
        );
        let old = now() - Duration::from_secs(16 * 60);
        let r = post_a("eu-west-1", "execute-api", old);
        assert_eq!(check(&v, &r), Err(Denied::Expired));
        let other = Verifier::new("AKIDOTHER".into(), SECRET.into(), "eu-west-1".into());
        let r = post_a("eu-west-1", "execute-api", now());
        assert_eq!(check(&other, &r), Err(Denied::UnknownKey));
        let wrong_secret = Verifier::new(KEY.into(), "not-the-secret".into(), "eu-west-1".into());
        assert_eq!(check(&wrong_secret, &r), Err(Denied::Mismatch));
    }

    #[test]
    fn a_scope_whose_day_is_not_the_requests_is_refused() {
        let v = verifier();
        let mut r = post_a("eu-west-1", "execute-api", now());
        let auth = r.headers["authorization"].to_str().unwrap().to_string();
        let day = &r.headers["x-amz-date"].to_str().unwrap()[..8].to_string();
        let moved = auth.replacen(day.as_str(), "20000101", 1);
        r.headers
            .insert("authorization", HeaderValue::from_str(&moved).unwrap());
        assert!(
            matches!(check(&v, &r), Err(Denied::Scope(m)) if m.starts_with("Date in Credential scope does not match"))
        );
    }

    #[test]
    fn a_header_named_as_signed_but_absent_fails() {
        let v = verifier();
        let mut r = signed(
            "/dev/@connections/a",
            &[("x-extra", "1")],
            b"x",
            ("eu-west-1", "execute-api", now()),
        );
        r.headers.remove("x-extra");
        assert_eq!(check(&v, &r), Err(Denied::Mismatch));
    }
}
