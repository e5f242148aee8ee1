//! Calls to the app's backend, each signed with `X-Wsdeploy-Signature`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode, Url};

/// The function's environment, as `wsdeploy up` and `wsdeploy dev` set it.
pub const ENV_BACKEND_URL: &str = "WSDEPLOY_BACKEND_URL";
pub const ENV_CONNECT_PATH: &str = "WSDEPLOY_CONNECT_PATH";
pub const ENV_DISCONNECT_PATH: &str = "WSDEPLOY_DISCONNECT_PATH";
pub const ENV_TIMEOUT_MS: &str = "WSDEPLOY_BACKEND_TIMEOUT_MS";
pub const ENV_SIGNING_SECRET: &str = "WSDEPLOY_SIGNING_SECRET";
/// Set while a secret is being rotated: calls are signed with both, so a backend that knows either accepts them.
pub const ENV_SIGNING_SECRET_PREVIOUS: &str = "WSDEPLOY_SIGNING_SECRET_PREVIOUS";
/// The API and stage the function was deployed for: it refuses events from anywhere else.
pub const ENV_API_ID: &str = "WSDEPLOY_API_ID";
pub const ENV_STAGE: &str = "WSDEPLOY_STAGE";
/// Seconds a socket has to authenticate: set, a `$connect` without a token registers the socket as pending, and
/// the backend closes it at the deadline unless its `auth` went through.
pub const ENV_AUTH_TIMEOUT_S: &str = "WSDEPLOY_AUTH_TIMEOUT_S";

/// Everything but RFC 3986's unreserved characters is encoded: connection ids end in `=` and may hold `+` or `/`.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const RETRY_DELAY: Duration = Duration::from_millis(250);

/// How long an idle keep-alive connection may be reused. Lambda freezes the execution environment between
/// invocations (<https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>), so a pooled
/// connection can sit for minutes while the backend closes its end; reusing it then fails the request. Node's
/// servers close idle connections after 5 s (`server.keepAliveTimeout`), so anything idle longer than this is
/// dropped instead of reused.
pub const POOL_IDLE: Duration = Duration::from_secs(4);

#[derive(Clone)]
pub struct Settings {
    pub backend_url: String,
    pub connect_path: String,
    pub disconnect_path: String,
    pub timeout: Duration,
    pub signing_secret: Vec<u8>,
    pub previous_signing_secret: Option<Vec<u8>>,
    /// The API (`requestContext.apiId`) and stage whose events this function serves.
    pub api_id: String,
    pub stage: String,
    /// Seconds a socket has to authenticate after `$connect` (None: no deadline, and `$connect` needs a token).
    pub auth_timeout_s: Option<u32>,
    /// How to reach `@connections` as the function's role (None: the environment has no credentials).
    pub management: Option<crate::connections::Management>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("backend_url", &self.backend_url)
            .field("connect_path", &self.connect_path)
            .field("disconnect_path", &self.disconnect_path)
            .field("timeout", &self.timeout)
            .field("api_id", &self.api_id)
            .field("stage", &self.stage)
            .field("auth_timeout_s", &self.auth_timeout_s)
            .field("management", &self.management)
            .field("signing_secret", &"<redacted>")
            .field(
                "previous_signing_secret",
                &self.previous_signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let need = |k: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{k} is not set; deploy this function with wsdeploy"))
        };
        let timeout_ms = match get(ENV_TIMEOUT_MS) {
            Some(v) => v
                .parse::<u64>()
                .map_err(|_| format!("{ENV_TIMEOUT_MS}={v} is not a number of milliseconds"))?,
            None => 5000,
        };
        let auth_timeout_s =
            match get(ENV_AUTH_TIMEOUT_S).filter(|v| !v.is_empty()) {
                Some(v) => Some(v.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{ENV_AUTH_TIMEOUT_S}={v} is not a number of seconds")
                })?),
                None => None,
            };
        // In this order, so that an empty environment is told about the backend URL first.
        let backend_url = need(ENV_BACKEND_URL)?.trim_end_matches('/').to_string();
        let signing_secret = need(ENV_SIGNING_SECRET)?.into_bytes();
        let (api_id, stage) = (need(ENV_API_ID)?, need(ENV_STAGE)?);
        Ok(Settings {
            backend_url,
            connect_path: get(ENV_CONNECT_PATH).unwrap_or_else(|| "/socket-connections".into()),
            disconnect_path: get(ENV_DISCONNECT_PATH)
                .unwrap_or_else(|| "/socket-connections/{connectionId}".into()),
            timeout: Duration::from_millis(timeout_ms),
            signing_secret,
            previous_signing_secret: get(ENV_SIGNING_SECRET_PREVIOUS)
                .filter(|v| !v.is_empty())
                .map(String::into_bytes),
            management: crate::connections::Management::from_lookup(&get, &api_id, &stage),
            api_id,
            stage,
            auth_timeout_s,
        })
    }
}

/// Why a backend call gave no usable answer.
#[derive(Debug)]
pub enum CallError {
    /// Nothing listens there, DNS failed, TLS failed.
    Unreachable(String),
    /// No answer within the configured timeout.
    Timeout,
    Other(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(e) => write!(f, "backend unreachable: {e}"),
            CallError::Timeout => write!(f, "backend did not answer in time"),
            CallError::Other(e) => write!(f, "backend call failed: {e}"),
        }
    }
}

pub struct Backend {
    client: reqwest::Client,
    pub settings: Settings,
}

impl Backend {
    pub fn new(settings: Settings) -> Result<Backend, reqwest::Error> {
        Self::with_pool_idle(settings, POOL_IDLE)
    }

    pub fn with_pool_idle(settings: Settings, idle: Duration) -> Result<Backend, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .pool_idle_timeout(idle)
            // The signature must never travel to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wsdeploy-lambda/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Backend { client, settings })
    }

    /// `POST {connect_path}` with `{"connectionId": id, "sourceIp": ip, "resumeAfter": n}` and the user's token
    /// as Bearer. The client's address travels in the body, not a header, so that the signature covers it: a
    /// captured call replayed with another address would not verify. `resumeAfter`, when the client sent one, is
    /// the last message id it saw: the backend replays what it sent the user after that to this new connection.
    pub async fn register(
        &self,
        connection_id: &str,
        token: &str,
        source_ip: Option<&str>,
        resume_after: Option<u64>,
    ) -> Result<StatusCode, CallError> {
        let mut body = serde_json::json!({ "connectionId": connection_id });
        if let Some(ip) = source_ip.filter(|ip| !ip.is_empty()) {
            body["sourceIp"] = ip.into();
        }
        if let Some(id) = resume_after {
            body["resumeAfter"] = id.into();
        }
        let body = body.to_string();
        self.call(
            Method::POST,
            &self.settings.connect_path,
            body.into_bytes(),
            Some(token),
        )
        .await
    }

    /// `POST {connect_path}` on `$connect` without a token: `{"connectionId": id, "sourceIp": ip, "pending": true,
    /// "authTimeoutS": n}`, no `Authorization`. The backend records the socket with its deadline and closes it then
    /// (`DELETE @connections`) unless its `auth` went through; the deadline travels with the call so that the
    /// config stays its one source. A 401 or 403 refuses the handshake (an address over its rate, say).
    pub async fn register_pending(
        &self,
        connection_id: &str,
        source_ip: Option<&str>,
        timeout_s: u32,
    ) -> Result<StatusCode, CallError> {
        let mut body = serde_json::json!({
            "connectionId": connection_id,
            "pending": true,
            "authTimeoutS": timeout_s,
        });
        if let Some(ip) = source_ip.filter(|ip| !ip.is_empty()) {
            body["sourceIp"] = ip.into();
        }
        let path = &self.settings.connect_path;
        self.call(Method::POST, path, body.to_string().into_bytes(), None)
            .await
    }

    /// After a refused `auth` on a message route: `reply` is posted to the socket, then the socket is closed, so a
    /// client cannot keep a refused socket open (the MOCK `ping` would keep it alive for two hours, and it could
    /// retry `auth` on it for ever). The refusal goes first so that a well-behaved client reads why before the close
    /// (the snippet then stops instead of reconnecting). Whatever fails here is logged: the function's answer
    /// (the same refusal) still goes back through the route response.
    pub async fn close_refused(&self, connection_id: &str, reply: &str) {
        let Some(m) = &self.settings.management else {
            tracing::warn!(
                connection_id,
                "no credentials in the environment: a refused socket stays open until its client closes it"
            );
            return;
        };
        match m.post(&self.client, connection_id, reply.as_bytes()).await {
            Ok(200) => {}
            Ok(status) => {
                tracing::warn!(
                    connection_id,
                    status,
                    "could not post the refusal; the socket stays open"
                );
                return;
            }
            Err(error) => {
                tracing::warn!(connection_id, %error, "could not post the refusal; the socket stays open");
                return;
            }
        }
        match m.delete(&self.client, connection_id).await {
            Ok(status @ (204 | 410)) => {
                tracing::info!(
                    connection_id,
                    status,
                    "closed the socket after a refused auth"
                );
            }
            Ok(status) => {
                tracing::warn!(connection_id, status, "could not close the refused socket");
            }
            Err(error) => {
                tracing::warn!(connection_id, %error, "could not close the refused socket");
            }
        }
    }

    /// `DELETE {disconnect_path}` with the id substituted. DELETE is idempotent, so it is retried once on any
    /// transport error: a backend still starting, or a kept-alive connection the backend closed while this
    /// environment was frozen. Not after a timeout: a second full wait could outlast the function.
    pub async fn unregister(&self, connection_id: &str) -> Result<StatusCode, CallError> {
        let path = self
            .settings
            .disconnect_path
            .replace("{connectionId}", &encode_segment(connection_id));
        match self.call(Method::DELETE, &path, vec![], None).await {
            Err(CallError::Unreachable(e) | CallError::Other(e)) => {
                tracing::warn!(error = %e, "backend call failed; retrying the DELETE once");
                // A backend that is restarting gets a moment; well inside the function's timeout.
                tokio::time::sleep(RETRY_DELAY).await;
                self.call(Method::DELETE, &path, vec![], None).await
            }
            other => other,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
        bearer: Option<&str>,
    ) -> Result<StatusCode, CallError> {
        let url = Url::parse(&format!("{}{path}", self.settings.backend_url))
            .map_err(|e| CallError::Other(format!("bad backend URL: {e}")))?;
        // Sign exactly the request target that goes on the wire.
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let authorization = bearer.map(|t| format!("Bearer {t}")).unwrap_or_default();
        let secrets: Vec<&[u8]> = std::iter::once(self.settings.signing_secret.as_slice())
            .chain(self.settings.previous_signing_secret.as_deref())
            .collect();
        let signature = wsdeploy_signature::sign(
            &secrets,
            now,
            &wsdeploy_signature::Request {
                method: method.as_str(),
                target: &target,
                body: &body,
                authorization: &authorization,
            },
        );
        let mut req = self
            .client
            .request(method, url)
            .header(wsdeploy_signature::HEADER, signature);
        if bearer.is_some() {
            // Exactly the value the signature covers.
            req = req.header(reqwest::header::AUTHORIZATION, authorization);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json").body(body);
        }
        match req.send().await {
            Ok(resp) => Ok(resp.status()),
            Err(e) if e.is_timeout() => Err(CallError::Timeout),
            Err(e) if e.is_connect() => Err(CallError::Unreachable(without_url(&e))),
            Err(e) => Err(CallError::Other(without_url(&e))),
        }
    }
}

/// reqwest's messages repeat the URL; the logs say which call it was already.
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.without_url_ref().clone();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let s = self.to_string();
        match self.url() {
            Some(u) => s.replace(&format!(" for url ({u})"), ""),
            None => s,
        }
    }
}

pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}
