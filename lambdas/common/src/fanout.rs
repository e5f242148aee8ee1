//! The `fanout` function: one publish of the backend's, posted to many sockets from inside the region. A backend
//! outside AWS pays a round trip to the region for every post it makes; through this function it pays one per
//! invoke, and the posts go out on pooled keep-alive connections next to the API.
//!
//! The backend invokes it synchronously (`RequestResponse`) once per chunk of at most `max_connections` ids, rather
//! than the function splitting a large list and invoking itself: the backend needs each chunk's answer (which
//! sockets are gone, to forget them), a synchronous invoke carries 6 MB each way
//! (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>), far more than 5,000 ids and a
//! 128 KB message, and a function that never invokes anything cannot fork without end, whatever a bug does.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connections::Management;

/// Ids one invoke takes at most; the templates split larger audiences into chunks of this size.
pub const ENV_MAX_CONNECTIONS: &str = "WSDEPLOY_FANOUT_MAX_CONNECTIONS";
/// Posts in flight at most.
pub const ENV_CONCURRENCY: &str = "WSDEPLOY_FANOUT_CONCURRENCY";
pub const DEFAULT_MAX_CONNECTIONS: usize = 5_000;
pub const DEFAULT_CONCURRENCY: usize = 128;
/// API Gateway's largest WebSocket message
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html#apigateway-execution-service-websocket-limits-table>).
const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// One post's own limit, so that a slow socket holds up only itself.
const POST_TIMEOUT: Duration = Duration::from_secs(3);
/// Kept back from the invoke's deadline to answer in: a function cut off by its timeout returns no result at all.
const MARGIN: Duration = Duration::from_millis(750);
/// Full jitter (<https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>), 50 ms doubling, capped.
const BACKOFF_BASE_MS: f64 = 50.0;
const BACKOFF_CAP_MS: f64 = 2_000.0;

/// What the backend sends: `{"connectionIds": [...], "data": ...}` (one message for all), or `{"posts": [{"data":
/// ..., "connectionIds": [...]}]}` (a message per group: the templates give each user's sockets the user's own
/// message id). `data` is posted as is when it is a string, as JSON otherwise.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Request {
    #[serde(default)]
    pub connection_ids: Vec<String>,
    pub data: Option<Value>,
    #[serde(default)]
    pub posts: Vec<Post>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Post {
    pub data: Value,
    pub connection_ids: Vec<String>,
}

/// `{ delivered, gone: [ids], failed: [{id, error}] }`: every id of the request is in exactly one of them.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Outcome {
    pub delivered: usize,
    pub gone: Vec<String>,
    pub failed: Vec<Failure>,
}

#[derive(Debug, PartialEq, Serialize)]
pub struct Failure {
    pub id: String,
    pub error: String,
}

/// One post to make: the socket, and the message (shared by the sockets of its group).
type Job = (String, Arc<[u8]>);

enum Posted {
    Delivered,
    Gone,
    Failed(String),
}

pub struct Fanout {
    client: reqwest::Client,
    management: Management,
    max_connections: usize,
    concurrency: usize,
}

impl Fanout {
    /// From the function's environment: its API and stage (`@connections` is theirs), the role's credentials, and
    /// the limits `wsdeploy` sets.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Fanout, String> {
        let need = |k: &str| {
            get(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{k} is not set; deploy this function with wsdeploy"))
        };
        let number = |k: &str, default: usize| match get(k).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{k}={v} is not a positive number")),
        };
        let (api_id, stage) = (
            need(crate::backend::ENV_API_ID)?,
            need(crate::backend::ENV_STAGE)?,
        );
        let management = Management::from_lookup(&get, &api_id, &stage)
            .ok_or("no region or credentials in the environment to call @connections with")?;
        let concurrency = number(ENV_CONCURRENCY, DEFAULT_CONCURRENCY)?;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .pool_idle_timeout(crate::backend::POOL_IDLE)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("wsdeploy-fanout/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fanout {
            client,
            management,
            max_connections: number(ENV_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS)?,
            concurrency,
        })
    }

    /// Posts every message to its sockets, at most `concurrency` at once, each retried on 429, 5xx and transport
    /// errors until `deadline`. A request beyond the limits is refused whole, before anything is posted.
    pub async fn handle(&self, request: Request, deadline: Instant) -> Result<Outcome, String> {
        let jobs = self.jobs(request)?;
        let results: Vec<(String, Posted)> = futures_util::stream::iter(jobs)
            .map(|(id, body)| async move {
                let posted = self.post(&id, &body, deadline).await;
                (id, posted)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut outcome = Outcome::default();
        for (id, posted) in results {
            match posted {
                Posted::Delivered => outcome.delivered += 1,
                Posted::Gone => outcome.gone.push(id),
                Posted::Failed(error) => outcome.failed.push(Failure { id, error }),
            }
        }
        Ok(outcome)
    }

    /// Each (connection id, message body), the whole request checked first.
    fn jobs(&self, request: Request) -> Result<Vec<Job>, String> {
        let Request {
            connection_ids,
            data,
            mut posts,
        } = request;
        match (data, connection_ids.is_empty()) {
            (Some(data), _) => posts.push(Post {
                data,
                connection_ids,
            }),
            (None, false) => return Err("connectionIds without data: say what to post".into()),
            (None, true) => {}
        }
        let total: usize = posts.iter().map(|p| p.connection_ids.len()).sum();
        if total > self.max_connections {
            return Err(format!(
                "{total} connection ids in one invoke, at most {} are taken: split the audience into chunks",
                self.max_connections
            ));
        }
        let mut jobs = Vec::with_capacity(total);
        for post in posts {
            let body: Arc<[u8]> = match post.data {
                Value::String(s) => s.into_bytes().into(),
                other => other.to_string().into_bytes().into(),
            };
            if body.len() > MAX_MESSAGE_BYTES {
                return Err(format!(
                    "a message of {} bytes: API Gateway takes at most {MAX_MESSAGE_BYTES}",
                    body.len()
                ));
            }
            for id in post.connection_ids {
                if id.is_empty() || id.len() > 128 || id.chars().any(char::is_control) {
                    return Err(format!("{id:?} is not a connection id"));
                }
                jobs.push((id, body.clone()));
            }
        }
        Ok(jobs)
    }

    async fn post(&self, id: &str, body: &[u8], deadline: Instant) -> Posted {
        let mut last = String::from("no time left to post");
        for attempt in 0u32.. {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let sent = tokio::time::timeout(
                POST_TIMEOUT.min(left),
                self.management.post(&self.client, id, body),
            )
            .await;
            match sent {
                Ok(Ok(200)) => return Posted::Delivered,
                Ok(Ok(410)) => return Posted::Gone,
                Ok(Ok(status)) if status == 429 || status >= 500 => last = format!("HTTP {status}"),
                Ok(Ok(status)) => return Posted::Failed(format!("HTTP {status}")),
                Ok(Err(transport)) => last = transport,
                Err(_) => last = "timed out".into(),
            }
            let cap = BACKOFF_CAP_MS.min(BACKOFF_BASE_MS * 2f64.powi(attempt.min(16) as i32));
            let wait = Duration::from_secs_f64(fastrand::f64() * cap / 1000.0);
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Posted::Failed(last)
    }
}

/// The moment to have answered by: the invoke's deadline (milliseconds since 1970, from the Runtime API) less
/// [`MARGIN`].
pub fn deadline_of(context: &lambda_runtime::Context) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(context.deadline.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(MARGIN)
}

/// Runs the function under the Lambda Runtime API.
pub async fn serve() -> Result<(), lambda_runtime::Error> {
    crate::init_logging();
    let fanout = Arc::new(Fanout::from_lookup(|k| std::env::var(k).ok()).map_err(|e| {
        tracing::error!(error = %e, "cannot start");
        e
    })?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Request>| {
            let fanout = fanout.clone();
            async move {
                let started = Instant::now();
                let outcome = fanout
                    .handle(event.payload, deadline_of(&event.context))
                    .await
                    .inspect_err(|e| tracing::warn!(error = %e, "refused the request"))?;
                tracing::info!(
                    delivered = outcome.delivered,
                    gone = outcome.gone.len(),
                    failed = outcome.failed.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "fanned out"
                );
                Ok::<_, lambda_runtime::Error>(outcome)
            }
        },
    ))
    .await
}
