//! The proxy events `dev` gives the functions, shaped as API Gateway's: the same keys in the same places, checked
//! against events AWS sent (`fixtures/`, from the `aws_lambda_events` crate's test data).

use std::time::SystemTime;

use axum::http::HeaderMap;
use serde_json::{json, Map, Value};

/// The API id of `dev`'s events (and of its functions' `WSDEPLOY_API_ID`).
pub(crate) const API_ID: &str = "local";

/// Where a connection comes from, for `requestContext.identity` and `connectedAt`.
pub(crate) struct Origin<'a> {
    pub connected_at: SystemTime,
    pub ip: &'a str,
    /// The handshake's `User-Agent`, `""` when it sent none (AWS then has no `userAgent` either).
    pub user_agent: &'a str,
}

/// Which API, stage and connection an event belongs to.
pub(crate) struct Scope<'a> {
    pub stage: &'a str,
    pub domain: &'a str,
    pub connection_id: &'a str,
}

/// `requestContext` for `route`, and the request id in it.
pub(crate) fn context(
    scope: &Scope<'_>,
    route: &str,
    event_type: &str,
    origin: &Origin<'_>,
) -> (Value, String) {
    let now = SystemTime::now();
    let request_id = new_request_id();
    let mut identity = json!({ "sourceIp": origin.ip });
    if !origin.user_agent.is_empty() {
        identity["userAgent"] = origin.user_agent.into();
    }
    let ctx = json!({
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(now),
        "messageDirection": "IN",
        "stage": scope.stage,
        "connectedAt": millis(origin.connected_at),
        "requestTimeEpoch": millis(now),
        "identity": identity,
        "requestId": request_id,
        "domainName": scope.domain,
        "connectionId": scope.connection_id,
        "apiId": API_ID,
    });
    (ctx, request_id)
}

/// `headers` (the last value of each) and `multiValueHeaders` (all of them).
fn header_maps(headers: &[(String, String)]) -> (Map<String, Value>, Map<String, Value>) {
    let mut single = Map::new();
    let mut multi: Map<String, Value> = Map::new();
    for (k, v) in headers {
        single.insert(k.clone(), v.as_str().into());
        match multi.get_mut(k) {
            Some(Value::Array(values)) => values.push(v.as_str().into()),
            _ => {
                multi.insert(k.clone(), json!([v]));
            }
        }
    }
    (single, multi)
}

/// The handshake's headers in the order received. Their names arrive lower-cased: HTTP/1 names are
/// case-insensitive and hyper keeps no original case to give back (AWS keeps the client's spelling).
pub(crate) fn handshake_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// A `$connect` event: the handshake's headers, and its query string only when the URL has one (as AWS: the keys
/// are absent otherwise).
pub(crate) fn connect_event(
    ctx: Value,
    headers: &[(String, String)],
    query: Option<&str>,
) -> Value {
    let (single, multi) = header_maps(headers);
    let mut event = json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": ctx,
        "isBase64Encoded": false,
    });
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    if !pairs.is_empty() {
        let (single, multi) = header_maps(&pairs);
        event["queryStringParameters"] = single.into();
        event["multiValueQueryStringParameters"] = multi.into();
    }
    event
}

/// A `$disconnect` event: AWS sends these headers, with empty values but for `Host`.
pub(crate) fn disconnect_event(ctx: Value, domain: &str, code: u16, reason: &str) -> Value {
    let headers = [
        ("Host", domain),
        ("x-api-key", ""),
        ("X-Forwarded-For", ""),
        ("x-restapi", ""),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let (single, multi) = header_maps(&headers);
    let mut ctx = ctx;
    ctx["disconnectStatusCode"] = code.into();
    ctx["disconnectReason"] = disconnect_reason(code, reason).into();
    json!({
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": ctx,
        "isBase64Encoded": false,
    })
}

/// AWS's words for a close without a status (1005); otherwise the reason as the socket gave it.
fn disconnect_reason(code: u16, reason: &str) -> String {
    if code == 1005 {
        "Client-side close frame status not set".into()
    } else {
        reason.to_string()
    }
}

/// A message on a route.
pub(crate) fn message_event(mut ctx: Value, body: &str) -> Value {
    ctx["messageId"] = new_request_id().into();
    json!({ "requestContext": ctx, "body": body, "isBase64Encoded": false })
}

/// 16 characters, base64, ending in `=`, like `TWegAcC4EowCHnA=`.
pub(crate) fn new_connection_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 11]>())
}

pub(crate) fn new_request_id() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 12]>())
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// `27/Nov/2026:22:10:31 +0000`, as in API Gateway's `requestTime`.
fn request_time(t: SystemTime) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::from(t)
        .format(&format)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn aws(name: &str) -> Value {
        let text = match name {
            "connect" => include_str!("fixtures/aws-connect.json"),
            _ => include_str!("fixtures/aws-disconnect.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn scope() -> Scope<'static> {
        Scope {
            stage: "local",
            domain: "127.0.0.1:3001",
            connection_id: "TWegAcC4EowCHnA=",
        }
    }

    fn origin(user_agent: &str) -> Origin<'_> {
        Origin {
            connected_at: SystemTime::now(),
            ip: "127.0.0.1",
            user_agent,
        }
    }

    #[test]
    fn a_connect_event_has_the_keys_aws_sends() {
        let (ctx, _) = context(&scope(), "$connect", "CONNECT", &origin(""));
        let headers = [("host".to_string(), "127.0.0.1:3001".to_string())];
        let ours = connect_event(ctx, &headers, None);
        let theirs = aws("connect");
        assert_eq!(keys(&ours), keys(&theirs));
        assert_eq!(
            keys(&ours["requestContext"]),
            keys(&theirs["requestContext"])
        );
        // AWS adds apiKey/apiKeyId only for APIs with API keys, which dev does not emulate.
        assert_eq!(keys(&ours["requestContext"]["identity"]), ["sourceIp"]);
        assert_eq!(ours["multiValueHeaders"]["host"], json!(["127.0.0.1:3001"]));
    }

    #[test]
    fn a_query_string_fills_both_query_maps_and_a_user_agent_the_identity() {
        let (ctx, _) = context(&scope(), "$connect", "CONNECT", &origin("Mozilla/5.0"));
        let ours = connect_event(ctx, &[], Some("token=a%2Bb&tag=x&tag=y"));
        assert_eq!(
            ours["queryStringParameters"],
            json!({ "token": "a+b", "tag": "y" })
        );
        assert_eq!(
            ours["multiValueQueryStringParameters"],
            json!({ "token": ["a+b"], "tag": ["x", "y"] })
        );
        assert_eq!(
            ours["requestContext"]["identity"]["userAgent"],
            "Mozilla/5.0"
        );
    }

    #[test]
    fn a_disconnect_event_has_the_keys_and_words_aws_sends() {
        let (ctx, _) = context(&scope(), "$disconnect", "DISCONNECT", &origin(""));
        let ours = disconnect_event(ctx, "127.0.0.1:3001", 1005, "");
        let theirs = aws("disconnect");
        assert_eq!(keys(&ours), keys(&theirs));
        assert_eq!(
            keys(&ours["requestContext"]),
            keys(&theirs["requestContext"])
        );
        assert_eq!(keys(&ours["headers"]), keys(&theirs["headers"]));
        assert_eq!(
            keys(&ours["multiValueHeaders"]),
            keys(&theirs["multiValueHeaders"])
        );
        assert_eq!(
            ours["requestContext"]["disconnectReason"],
            theirs["requestContext"]["disconnectReason"]
        );
        assert_eq!(ours["requestContext"]["disconnectStatusCode"], 1005);
    }

    #[test]
    fn connection_ids_look_like_aws() {
        for _ in 0..100 {
            let id = new_connection_id();
            assert_eq!(id.len(), 16);
            assert!(id.ends_with('='));
        }
    }

    #[test]
    fn request_time_format() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_817_431);
        assert_eq!(request_time(t), "27/Nov/2026:22:10:31 +0000");
    }
}
