//! Checking `SigV4` on @connections calls, as API Gateway does: the signature is recomputed with aws-sigv4 (the
//! crate the AWS SDKs sign with) over exactly the headers the request says it signed, and compared.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::http::{HeaderMap, Method, Uri};

use crate::facts;

/// Requests older or newer than this are refused, as AWS does.
const MAX_SKEW_SECS: u64 = 15 * 60;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    Malformed(&'static str),
    UnknownKey,
    Expired,
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
            Denied::Expired | Denied::Mismatch => facts::ERROR_BAD_SIGNATURE,
        }
    }

    pub(crate) fn message(&self) -> &'static str {
        match self {
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
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
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

impl Verifier {
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
        let Authorization {
            credential,
            signed_headers,
            signature,
        } = Authorization::parse(headers)?;
        let mut scope = credential.split('/');
        let key_id = scope.next().unwrap_or("");
        if key_id != self.access_key_id {
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
        let region = credential
            .split('/')
            .nth(2)
            .unwrap_or(&self.region)
            .to_string();
        let names: Vec<&str> = signed_headers.split(';').collect();
        let signed: Vec<(&str, &str)> = headers
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()) && k.as_str() != "x-amz-date")
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        let url = format!(
            "http://{host}{}",
            uri.path_and_query()
                .map_or("/", axum::http::uri::PathAndQuery::as_str)
        );
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "wsdeploy-dev",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|_| Denied::Malformed("cannot rebuild the signing parameters"))?
            .into();
        let request = SignableRequest::new(
            method.as_str(),
            &url,
            signed.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|_| Denied::Malformed("unsignable request"))?;
        let expected = sign(request, &params)
            .map_err(|_| Denied::Mismatch)?
            .signature()
            .to_string();
        if constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            Ok(())
        } else {
            Err(Denied::Mismatch)
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
