//! A counting proxy between wsdeploy and moto, in-process on loopback: it sees every AWS request and classifies it,
//! independently of wsdeploy's own code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct Seen {
    /// `IAM:CreateRole`, `Logs:PutRetentionPolicy`, `POST /2015-03-31/functions`...
    pub op: String,
    pub mutating: bool,
    pub bytes: usize,
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub struct Proxy {
    pub endpoint: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let seen = Arc::new(Mutex::new(vec![]));
        let shared = Shared {
            upstream: upstream.to_string(),
            client: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Proxy {
            endpoint: format!("http://{addr}"),
            seen,
        }
    }

    /// Everything seen since the last call.
    pub fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// The operation, whichever AWS protocol carries it: query (IAM, STS), JSON 1.1 (Logs) or REST (Lambda, API Gateway).
fn classify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> (String, bool) {
    let mutating_name = |op: &str| {
        [
            "Create", "Put", "Delete", "Update", "Attach", "Detach", "Tag", "Untag", "Add",
            "Remove", "Set",
        ]
        .iter()
        .any(|p| op.starts_with(p))
    };
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target.rsplit('.').next().unwrap_or(target);
        return (format!("Logs:{op}"), mutating_name(op));
    }
    let text = String::from_utf8_lossy(body);
    if let Some(action) = text.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let service = if auth.contains("/sts/") { "STS" } else { "IAM" };
        return (format!("{service}:{action}"), mutating_name(action));
    }
    let path = uri.path();
    (
        format!("{method} {path}"),
        !matches!(*method, Method::GET | Method::HEAD),
    )
}

async fn forward(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (op, mutating) = classify(&method, &uri, &headers, &body);
    s.seen.lock().unwrap().push(Seen {
        op,
        mutating,
        bytes: body.len(),
    });
    let url = format!(
        "{}{}",
        s.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = s.client.request(method, url).body(body);
    for (k, v) in headers.iter() {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = resp.bytes().await.unwrap_or_default();
            let mut out = (StatusCode::from_u16(status.as_u16()).unwrap(), body).into_response();
            for (k, v) in headers.iter() {
                if k != "content-length" && k != "transfer-encoding" && k != "connection" {
                    out.headers_mut().insert(k, v.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
