//! What the bundled Lambdas share: settings from the function's environment, the signed backend client, replies
//! to the client, and JSON logs. The handlers are here (not in the binaries) so that tests run them in-process.

pub mod backend;
pub mod connect;
pub mod connections;
pub mod disconnect;
pub mod fanout;

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

/// Refuses an event that did not come from the API and stage this function was deployed for: anyone allowed
/// `lambda:InvokeFunction` on it could otherwise hand it a made-up event and have it sign a `POST` or `DELETE` to
/// the backend for any connection id. API Gateway fills `requestContext.apiId` and `stage` itself
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-mapping-template-reference.html>),
/// so an event carrying the right ones came through the function's own API, the only caller its resource policy
/// lets API Gateway be.
pub fn foreign_event(
    settings: &Settings,
    event: &aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest,
) -> Option<ApiGatewayProxyResponse> {
    let ctx = &event.request_context;
    let (api, stage) = (
        ctx.apiid.as_deref().unwrap_or(""),
        ctx.stage.as_deref().unwrap_or(""),
    );
    if api == settings.api_id && stage == settings.stage {
        return None;
    }
    tracing::error!(
        api_id = api,
        stage,
        expected_api_id = %settings.api_id,
        expected_stage = %settings.stage,
        "refused an event that did not come from this function's API and stage; the backend was not called"
    );
    Some(reply(
        403,
        serde_json::json!({ "ok": false, "error": "forbidden" }),
    ))
}

/// JSON lines on stdout, which Lambda sends to CloudWatch Logs. Level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`,
/// under [`raw_data_clamp`], which no directive of theirs can widen.
pub fn init_logging() {
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let asked = tracing_subscriber::EnvFilter::try_new(level.to_lowercase())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_target(false)
        .with_current_span(false)
        .with_ansi(false)
        .with_filter(asked.and(raw_data_clamp()));
    let _ = tracing_subscriber::registry().with(layer).try_init();
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

/// [`RAW_DATA_TARGETS`] and every module under them at `info` at most, everything else as asked. A second filter
/// that must also agree, not a directive appended to the asked one: `EnvFilter` lets the most specific directive
/// win, so `lambda_runtime::layers=trace` would outrank an appended `lambda_runtime=info` and print raw events.
pub fn raw_data_clamp() -> tracing_subscriber::filter::Targets {
    RAW_DATA_TARGETS.iter().fold(
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::TRACE),
        |t, target| t.with_target(*target, tracing_subscriber::filter::LevelFilter::INFO),
    )
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
