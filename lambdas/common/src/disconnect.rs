//! The `disconnect` function: on `$disconnect`, tells the backend to forget the connection.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::json;

use crate::{reply, Backend};

pub async fn handle(
    backend: &Backend,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    if let Some(refused) = crate::foreign_event(&backend.settings, &event) {
        return refused;
    }
    let ctx = &event.request_context;
    let Some(connection_id) = ctx.connection_id.as_deref().filter(|c| !c.is_empty()) else {
        tracing::error!("event without a connectionId: is this function attached to $disconnect?");
        return reply(500, json!({ "ok": false }));
    };
    let started = std::time::Instant::now();
    let result = backend.unregister(connection_id).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let reason = ctx.disconnect_reason.as_deref().unwrap_or("");
    match result {
        Ok(status) if status.is_success() || status.as_u16() == 404 => {
            // 404: the backend never stored it (auth never happened) or already dropped it. Either way it is gone.
            tracing::info!(
                connection_id,
                status = status.as_u16(),
                elapsed_ms,
                reason,
                "connection dropped"
            );
            reply(200, json!({ "ok": true }))
        }
        Ok(status) => {
            tracing::error!(
                connection_id,
                status = status.as_u16(),
                elapsed_ms,
                "backend refused the DELETE; check backend.disconnect_path and the signing secret"
            );
            reply(502, json!({ "ok": false }))
        }
        Err(e) => {
            tracing::error!(connection_id, elapsed_ms, error = %e, "backend call failed");
            reply(502, json!({ "ok": false }))
        }
    }
}
