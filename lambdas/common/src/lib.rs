//! What the bundled Lambdas share: settings from the function's environment, the signed backend client, replies
//! to the client, and JSON logs. The handlers are here (not in the binaries) so that tests run them in-process.

pub mod backend;
pub mod connect;
pub mod disconnect;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::encodings::Body;

pub use backend::{Backend, Settings};

/// The answer API Gateway relays to the client (for routes with a route response) or uses to accept or reject a
/// `$connect`.
pub fn reply(status: i64, body: serde_json::Value) -> ApiGatewayProxyResponse {
    let mut r = ApiGatewayProxyResponse::default();
    r.status_code = status;
    r.headers.insert(
        "content-type",
        "application/json".parse().expect("static header"),
    );
    r.body = Some(Body::Text(body.to_string()));
    r
}

/// JSON lines on stdout, which Lambda sends to CloudWatch Logs. Level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter(&level)))
        .with_target(false)
        .with_current_span(false)
        .with_ansi(false)
        .try_init();
}

/// Libraries that see raw events (the user's token in an `auth` message) or raw requests (the `Authorization`
/// and signature headers) and print them at debug or trace level.
const RAW_DATA_TARGETS: [&str; 8] = [
    "lambda_runtime",
    "lambda_runtime_api_client",
    "hyper",
    "hyper_util",
    "reqwest",
    "h2",
    "tower",
    "rustls",
];

/// The filter for a requested `level`: as asked, but a debug or trace level leaves [`RAW_DATA_TARGETS`] at `info`,
/// so that no log level prints a token or the signing secret.
pub fn log_filter(level: &str) -> String {
    let level = level.to_lowercase();
    if !(level.contains("debug") || level.contains("trace")) {
        return level;
    }
    RAW_DATA_TARGETS
        .iter()
        .fold(level, |f, target| format!("{f},{target}=info"))
}

/// Runs `handler` under the Lambda Runtime API (`AWS_LAMBDA_RUNTIME_API`), with settings read once at start-up.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(
            std::sync::Arc<Backend>,
            aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
        ) -> Fut
        + Clone
        + Send
        + 'static,
    Fut: std::future::Future<Output = ApiGatewayProxyResponse> + Send,
{
    init_logging();
    let settings = Settings::from_env().map_err(|e| {
        tracing::error!(error = %e, "cannot start");
        e
    })?;
    let backend = std::sync::Arc::new(Backend::new(settings)?);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<_>| {
            let (backend, handler) = (backend.clone(), handler.clone());
            async move { Ok::<_, lambda_runtime::Error>(handler(backend, event.payload).await) }
        },
    ))
    .await
}
