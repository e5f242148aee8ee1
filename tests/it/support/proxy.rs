//! A proxy between wsdeploy and moto, in-process on loopback. It counts and classifies every AWS request
//! (independently of wsdeploy's own code), can inject AWS-shaped faults from a seed, and can stop the world right
//! after the k-th request so the test can SIGKILL wsdeploy there.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Uri};
use rand::{Rng, SeedableRng};

use crate::support::aws_behaviour::{Before, Behaviour, Layer, Req, Upstream};

#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// `IAM:CreateRole`, `Logs:PutRetentionPolicy`, `POST /2015-03-31/functions`...
    pub op: String,
    pub mutating: bool,
    pub bytes: usize,
    /// When the request arrived and when its answer left: the longest chain of requests each of which waited for
    /// the one before (what no parallelism removes) is read from these.
    pub arrived: Instant,
    pub answered: Option<Instant>,
    /// The answer's HTTP status.
    pub status: Option<u16>,
}

/// Faults are injected before forwarding, as AWS rejects a throttled request: the emulator never sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Faults {
    /// Share of requests answered with a fault.
    pub rate: f64,
    pub seed: u64,
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    faults: Mutex<Option<(Faults, rand::rngs::StdRng)>>,
    injected: AtomicUsize,
    /// Hold every response from the k-th request on (and say so), so the caller can kill the client there.
    stop_after: AtomicUsize,
    stopped: AtomicBool,
    /// Requests still being processed (the held one excluded).
    in_flight: AtomicUsize,
    /// Answer every request with this AWS query-protocol error: (status, code).
    fixed: Mutex<Option<(u16, String)>>,
    /// Added to every answer: AWS's control plane answers in tens of milliseconds, moto in well under one.
    latency: Mutex<Option<Duration>>,
    layer: Layer,
}

pub(crate) struct Proxy {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// With every AWS behaviour moto lacks turned on (see `aws_behaviour`).
    pub(crate) async fn start(upstream: &str) -> Proxy {
        Proxy::with(upstream, Behaviour::aws()).await
    }

    pub(crate) async fn with(upstream: &str, behaviour: Behaviour) -> Proxy {
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            client: reqwest::Client::new(),
            seen: Mutex::new(vec![]),
            faults: Mutex::new(None),
            injected: AtomicUsize::new(0),
            stop_after: AtomicUsize::new(usize::MAX),
            stopped: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            fixed: Mutex::new(None),
            latency: Mutex::new(None),
            layer: Layer::new(behaviour),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let s = s.clone();
                tokio::spawn(async move {
                    // Each request runs to its end even if the client goes away mid-way (a killed wsdeploy), as AWS
                    // completes what it received: the layer still learns what moto did.
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        s.in_flight.fetch_add(1, Ordering::SeqCst);
                        let task = tokio::spawn(async move {
                            let answer = handle(s.clone(), req).await;
                            s.in_flight.fetch_sub(1, Ordering::SeqCst);
                            answer
                        });
                        async move { task.await.map_err(std::io::Error::other)? }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            shared,
        }
    }

    /// Everything seen since the last call.
    pub(crate) fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.shared.seen.lock().unwrap())
    }

    /// The operations of the mutating requests seen since the last call.
    pub(crate) fn take_writes(&self) -> Vec<String> {
        self.take()
            .into_iter()
            .filter(|s| s.mutating)
            .map(|s| s.op)
            .collect()
    }

    pub(crate) fn faults(&self, f: Option<Faults>) {
        *self.shared.faults.lock().unwrap() =
            f.map(|f| (f, rand::rngs::StdRng::seed_from_u64(f.seed)));
    }

    /// Every request gets this error from now on, e.g. `(400, "ExpiredToken")`.
    pub(crate) fn answer_all(&self, error: Option<(u16, &str)>) {
        *self.shared.fixed.lock().unwrap() = error.map(|(s, c)| (s, c.to_string()));
    }

    /// The AWS-behaviour layer: its settings, and how often each behaviour acted.
    pub(crate) fn layer(&self) -> &Layer {
        &self.shared.layer
    }

    /// Every request is answered this much later than moto answers it.
    #[allow(
        dead_code,
        reason = "the bench's aws-layer sets it; tests keep moto's pace"
    )]
    pub(crate) fn latency(&self, d: Option<Duration>) {
        *self.shared.latency.lock().unwrap() = d;
    }

    pub(crate) fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }

    /// From now on, the k-th mutating request (counting from 1 after this call) is forwarded and then held
    /// unanswered, and so is every mutating request after it.
    pub(crate) fn stop_after(&self, k: usize) {
        self.take();
        self.shared.stopped.store(false, Ordering::SeqCst);
        self.shared.stop_after.store(k, Ordering::SeqCst);
    }

    pub(crate) fn stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    /// Waits until every request the proxy received has been processed (a killed client's too), but the held one.
    pub(crate) async fn settled(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.shared.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "requests still in flight after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub(crate) fn resume(&self) {
        self.shared.stop_after.store(usize::MAX, Ordering::SeqCst);
        self.shared.stopped.store(false, Ordering::SeqCst);
    }
}

/// The longest chain of requests each of which arrived only after the one before it was answered: the part of a
/// deploy that no parallelism removes, counted in round trips. `(requests, steps)`: `requests` counts every
/// request; `steps` leaves out the attempts a later one of the same operation repeated (a refused attempt retried,
/// a read polled again), so that a wait counts once, however many times it asked.
#[allow(
    dead_code,
    reason = "the bench's aws-layer reports it; no test times requests"
)]
pub(crate) fn longest_chain(seen: &[Seen]) -> (usize, usize) {
    let repeated = |x: &Seen| {
        let polled_or_refused = !x.mutating || x.status.is_some_and(|s| s >= 400);
        polled_or_refused
            && seen
                .iter()
                .any(|y| y.op == x.op && x.answered.is_some_and(|a| a <= y.arrived))
    };
    let steps: Vec<&Seen> = seen.iter().filter(|x| !repeated(x)).collect();
    (chain(seen.iter()), chain(steps.into_iter()))
}

fn chain<'a>(seen: impl Iterator<Item = &'a Seen>) -> usize {
    let mut done: Vec<&Seen> = seen.filter(|x| x.answered.is_some()).collect();
    done.sort_by_key(|x| x.answered);
    let mut lengths: Vec<usize> = Vec::with_capacity(done.len());
    for x in &done {
        let before = done
            .iter()
            .zip(&lengths)
            .filter(|(y, _)| y.answered.is_some_and(|a| a <= x.arrived))
            .map(|(_, n)| *n)
            .max();
        lengths.push(1 + before.unwrap_or(0));
    }
    lengths.into_iter().max().unwrap_or(0)
}

/// The operation, whichever AWS protocol carries it: query (IAM, STS), JSON 1.1 (Logs) or REST (Lambda, API Gateway).
fn classify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (String, bool, Protocol) {
    let mutating_name = |op: &str| {
        [
            "Create", "Put", "Delete", "Update", "Attach", "Detach", "Tag", "Untag", "Add",
            "Remove", "Set",
        ]
        .iter()
        .any(|p| op.starts_with(p))
    };
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, op) = target.split_once('.').unwrap_or(("", target));
        let service = match service {
            "TrentService" => "KMS",
            s if s.starts_with("ResourceGroupsTaggingAPI") => "Tagging",
            _ => "Logs",
        };
        return (format!("{service}:{op}"), mutating_name(op), Protocol::Json);
    }
    let text = String::from_utf8_lossy(body);
    if let Some(action) = text.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let service = if auth.contains("/sts/") { "STS" } else { "IAM" };
        return (
            format!("{service}:{action}"),
            mutating_name(action),
            Protocol::Query,
        );
    }
    let path = uri.path();
    (
        format!("{method} {path}"),
        !matches!(*method, Method::GET | Method::HEAD),
        Protocol::Rest,
    )
}

#[derive(Clone, Copy)]
enum Protocol {
    Query,
    Json,
    Rest,
}

fn respond(status: u16, headers: &[(&str, &str)], body: String) -> Response<Full<Bytes>> {
    let mut r = Response::builder().status(status);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Full::new(Bytes::from(body))).unwrap()
}

/// What AWS answers when it throttles or fails, in each protocol's error shape.
fn fault(kind: u32, protocol: Protocol) -> Option<Response<Full<Bytes>>> {
    let (status, code) = match kind {
        0 => (400, "Throttling"),
        1 => (429, "TooManyRequestsException"),
        2 => (500, "InternalFailure"),
        3 => (503, "ServiceUnavailable"),
        _ => return None, // a reset connection
    };
    Some(match protocol {
        Protocol::Query => respond(
            if status == 429 { 400 } else { status },
            &[("content-type", "text/xml")],
            format!("<ErrorResponse><Error><Type>Sender</Type><Code>{}</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>", if status == 429 { "Throttling" } else { code }),
        ),
        Protocol::Json => respond(if status == 429 { 400 } else { status }, &[("content-type", "application/x-amz-json-1.1")], format!("{{\"__type\":\"{}\",\"message\":\"Rate exceeded\"}}", if status == 429 || status == 400 { "ThrottlingException" } else { code })),
        Protocol::Rest => respond(
            if status == 400 { 429 } else { status },
            &[("content-type", "application/json"), ("x-amzn-errortype", if status == 400 || status == 429 { "TooManyRequestsException" } else { code })],
            "{\"message\":\"Rate exceeded\"}".into(),
        ),
    })
}

async fn handle(
    s: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let arrived = Instant::now();
    let latency = *s.latency.lock().unwrap();
    if let Some(d) = latency {
        tokio::time::sleep(d).await;
    }
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    let (op, mutating, protocol) = classify(&parts.method, &parts.uri, &parts.headers, &body);
    if let Some((status, code)) = s.fixed.lock().unwrap().clone() {
        // Each protocol's own error shape, as AWS answers it (the SDKs parse nothing else).
        let message = "The security token included in the request is invalid.";
        return Ok(match protocol {
            Protocol::Query => respond(
                status,
                &[("content-type", "text/xml")],
                format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fixed</RequestId></ErrorResponse>"),
            ),
            Protocol::Json => respond(
                status,
                &[("content-type", "application/x-amz-json-1.1")],
                format!("{{\"__type\":\"{code}\",\"message\":\"{message}\"}}"),
            ),
            Protocol::Rest => respond(
                status,
                &[("content-type", "application/json"), ("x-amzn-errortype", &code)],
                format!("{{\"message\":\"{message}\"}}"),
            ),
        });
    }
    let injected = {
        let mut f = s.faults.lock().unwrap();
        f.as_mut().and_then(|(cfg, rng)| {
            (rng.gen::<f64>() < cfg.rate).then(|| (rng.gen_range(0..6u32), rng.gen_range(0..50u64)))
        })
    };
    if let Some((kind, delay_ms)) = injected {
        s.injected.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        return match fault(kind, protocol) {
            Some(r) => Ok(r),
            // hyper closes the connection without an answer.
            None => Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            )),
        };
    }
    // The k-th mutating request: a crash after a read leaves AWS as the last write left it.
    let (n, index) = {
        let mut seen = s.seen.lock().unwrap();
        seen.push(Seen {
            op,
            mutating,
            bytes: body.len(),
            arrived,
            answered: None,
            status: None,
        });
        let n = if mutating {
            seen.iter().filter(|x| x.mutating).count()
        } else {
            0
        };
        (n, seen.len() - 1)
    };
    let req = Req {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let upstream = Upstream {
        base: s.upstream.clone(),
        client: s.client.clone(),
    };
    let (status, headers, bytes) = match s.layer.before(&req, &upstream).await {
        Before::Answer(a) => (
            a.status,
            a.headers
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect(),
            a.body,
        ),
        Before::Forward(slot) => {
            let (status, headers, bytes) = forward(&s, &parts, &body).await?;
            let bytes = s.layer.after(&req, status, bytes);
            drop(slot);
            (status, headers, bytes)
        }
    };
    if n > 0 && n >= s.stop_after.load(Ordering::SeqCst) {
        // Processed upstream, never answered: the state a SIGKILL right after this request leaves behind.
        s.stopped.store(true, Ordering::SeqCst);
        s.in_flight.fetch_sub(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    if let Some(entry) = s.seen.lock().unwrap().get_mut(index) {
        entry.answered = Some(Instant::now());
        entry.status = Some(status);
    }
    let mut out = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            out = out.header(k.as_str(), v.as_slice());
        }
    }
    Ok(out.body(Full::new(Bytes::from(bytes))).unwrap())
}

type Headers = Vec<(String, Vec<u8>)>;

/// The request as moto gets it, and its answer.
async fn forward(
    s: &Shared,
    parts: &hyper::http::request::Parts,
    body: &Bytes,
) -> Result<(u16, Headers, Vec<u8>), std::io::Error> {
    let url = format!(
        "{}{}",
        s.upstream,
        parts
            .uri
            .path_and_query()
            .map_or("/", hyper::http::uri::PathAndQuery::as_str)
    );
    let mut up = s
        .client
        .request(
            reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap(),
            url,
        )
        .body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            up = up.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = up.send().await.map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.as_bytes().to_vec()))
        .collect();
    let bytes = resp.bytes().await.map_err(std::io::Error::other)?;
    Ok((status, headers, bytes.to_vec()))
}

impl Drop for Proxy {
    /// A request AWS's model refuses fails the test that sent it, even where the code under test took the refusal
    /// in its stride (a best-effort read, a retry).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let broken = self.shared.layer.model_violations();
        assert!(
            broken.is_empty(),
            "requests that AWS's service models refuse went through the proxy:\n{}",
            broken.join("\n")
        );
    }
}
