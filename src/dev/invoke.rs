//! `dev`'s Lambda Invoke API, for the function the backend invokes itself (the fan-out function): `POST
//! /2015-03-31/functions/{name}/invocations`, as the AWS SDKs' Lambda clients send it
//! (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>), signed with `SigV4` for `lambda` and checked
//! against the dev key. Answers as Lambda does: 200 with the function's result; 200 with `X-Amz-Function-Error:
//! Unhandled` and `{errorMessage, errorType}` when the function failed; 404 `ResourceNotFoundException` for a name
//! it does not run; 413 `RequestTooLargeException` over the 6 MB a synchronous invoke carries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::runtime::{InvokeError, Pool};
use super::sigv4::Verifier;
use super::Log;

/// A synchronous invoke's request payload at most
/// (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

pub(crate) struct Invoker {
    /// Full function name (`{project}-{stage}-fanout`) -> its processes.
    pub functions: BTreeMap<String, Arc<Pool>>,
    pub verifier: Verifier,
    pub log: Log,
}

impl Invoker {
    pub(crate) fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route(
                "/2015-03-31/functions/{name}/invocations",
                axum::routing::post(invoke),
            )
            .with_state(self.clone())
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", kind)],
        axum::Json(json!({ "Type": "User", "message": message })),
    )
        .into_response()
}

async fn invoke(
    State(inv): State<Arc<Invoker>>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let Ok(body) = axum::body::to_bytes(body, MAX_PAYLOAD_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            "Request must be smaller than 6291456 bytes for the InvokeFunction operation",
        );
    };
    if let Err(denied) = inv
        .verifier
        .check_for("lambda", &method, &uri, &headers, &body)
    {
        inv.log.line(format!(
            "lambda invoke {name} refused: {}",
            denied.message()
        ));
        return error(StatusCode::FORBIDDEN, denied.error_type(), denied.message());
    }
    let Some(pool) = inv.functions.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {name}"),
        );
    };
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    if kind != "RequestResponse" {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("wsdeploy dev runs RequestResponse invocations only, not {kind}"),
        );
    }
    let Ok(event) = serde_json::from_slice(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json",
        );
    };
    let started = Instant::now();
    let result = pool.invoke(event).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(value) => {
            inv.log.line(format!(
                "lambda invoke {name} {} bytes → 200 ({ms:.1} ms)",
                body.len()
            ));
            axum::Json(value).into_response()
        }
        Err(e) => {
            inv.log
                .line(format!("lambda invoke {name} → failed: {e} ({ms:.1} ms)"));
            // Lambda says `Unhandled` for any error the runtime reports (a crash or a timeout included).
            let message = match &e {
                InvokeError::Function(m) => m.clone(),
                other => other.to_string(),
            };
            (
                StatusCode::OK,
                [("x-amz-function-error", "Unhandled")],
                axum::Json(json!({ "errorMessage": message, "errorType": "Error" })),
            )
                .into_response()
        }
    }
}
