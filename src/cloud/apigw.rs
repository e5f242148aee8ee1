//! API Gateway v2: the WebSocket API, its integrations, routes, route responses and stage.
//!
//! AWS serialises writes per API and answers a write that overlaps another with 409 `ConflictException` "Unable to
//! complete operation due to concurrent modification. Please try again later." (terraform-provider-aws #18018,
//! PR #29735), which the SDK does not retry. The applier sends this API's writes one at a time; every write here
//! also retries that conflict, for writers outside this run (a concurrent `up`, the console).

use anyhow::{Context, Result};
use aws_sdk_apigatewayv2::operation::create_integration::builders::CreateIntegrationFluentBuilder;
use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use aws_sdk_apigatewayv2::Client;

use super::{
    already, explain, gone, is_concurrent_modification, retry_for, SdkResult, PROPAGATION_BUDGET,
};
use crate::deploy::state::{ApiRef, Desired, StageLogging, TagDiff};
use crate::facts::{HEARTBEAT_REPLY, REPLY_KEY, ROUTE_SELECTION};
use crate::ui::Step;

/// One write, retried while another write on the same API is in progress.
async fn write<T, E, R, F, Fut>(step: &dyn Step, call: F) -> SdkResult<T, E, R>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SdkResult<T, E, R>>,
{
    let transient = |e: &aws_smithy_runtime_api::client::result::SdkError<E, R>| {
        is_concurrent_modification(e).then_some("another change to this API is in progress")
    };
    retry_for(PROPAGATION_BUDGET, step, transient, call).await
}

/// The new API's id and endpoint.
pub(crate) async fn create_api(apigw: &Client, d: &Desired) -> Result<ApiRef> {
    let out = apigw
        .create_api()
        .name(&d.names.api)
        .protocol_type(ProtocolType::Websocket)
        .route_selection_expression(ROUTE_SELECTION)
        .ip_address_type(ip_address_type(d))
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| explain(&format!("create the WebSocket API {}", d.names.api), e))?;
    Ok(ApiRef {
        id: out.api_id().context("AWS returned no API id")?.to_string(),
        endpoint: out.api_endpoint().map(str::to_string),
    })
}

/// Who may connect, as API Gateway spells it for APIs and domain names alike
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-ip-address-type.html>: a change
/// takes effect at once, no deployment needed).
pub(crate) fn ip_address_type(d: &Desired) -> aws_sdk_apigatewayv2::types::IpAddressType {
    aws_sdk_apigatewayv2::types::IpAddressType::from(d.ip_address_type.as_str())
}

/// Sets everything `UpdateApi` owns: the route selection and who may connect.
pub(crate) async fn update_api(
    apigw: &Client,
    d: &Desired,
    api_id: &str,
    step: &dyn Step,
) -> Result<()> {
    write(step, || {
        apigw
            .update_api()
            .api_id(api_id)
            .route_selection_expression(ROUTE_SELECTION)
            .ip_address_type(ip_address_type(d))
            .send()
    })
    .await
    .map_err(|e| explain("update the API", e))?;
    Ok(())
}

pub(crate) async fn delete_api(apigw: &Client, api_id: &str, step: &dyn Step) -> Result<()> {
    gone(write(step, || apigw.delete_api().api_id(api_id).send()).await)
        .map_err(|e| explain(&format!("delete the API {api_id}"), e))
}

/// Creates an integration shaped by `shape`; returns its id.
async fn new_integration(
    apigw: &Client,
    api_id: &str,
    what: &str,
    step: &dyn Step,
    shape: impl Fn(CreateIntegrationFluentBuilder) -> CreateIntegrationFluentBuilder,
) -> Result<String> {
    let out = write(step, || {
        shape(apigw.create_integration().api_id(api_id)).send()
    })
    .await
    .map_err(|e| explain(what, e))?;
    Ok(out
        .integration_id()
        .context("AWS returned no integration id")?
        .to_string())
}

/// An `AWS_PROXY` integration with the function; returns its id.
pub(crate) async fn create_integration(
    apigw: &Client,
    api_id: &str,
    uri: &str,
    step: &dyn Step,
) -> Result<String> {
    new_integration(apigw, api_id, "connect the API to a function", step, |b| {
        b.integration_type(IntegrationType::AwsProxy)
            .integration_method("POST")
            .integration_uri(uri)
    })
    .await
}

/// The heartbeat: a MOCK integration, which API Gateway answers itself. A WebSocket MOCK needs a request template
/// that sets `statusCode` ("Execution failed due to configuration error: statusCode should be an integer which
/// defined in request template" otherwise), and an integration response whose template is what the client gets
/// back (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-integration-responses.html>;
/// aws-cdk's `WebSocketMockIntegration` sets the same request template). The route's `$default` response, made
/// like any replying route's, sends it to the client. Returns the integration's id once its response exists: a run
/// stopped in between leaves a MOCK without a response, which the next plan replaces.
pub(crate) async fn create_heartbeat(
    apigw: &Client,
    api_id: &str,
    step: &dyn Step,
) -> Result<String> {
    let id = new_integration(
        apigw,
        api_id,
        "create the heartbeat's integration",
        step,
        |b| {
            b.integration_type(IntegrationType::Mock)
                .request_templates(REPLY_KEY, r#"{"statusCode": 200}"#)
                .template_selection_expression(r"\$default")
        },
    )
    .await?;
    write(step, || {
        apigw
            .create_integration_response()
            .api_id(api_id)
            .integration_id(&id)
            .integration_response_key(REPLY_KEY)
            .response_templates(REPLY_KEY, HEARTBEAT_REPLY)
            .template_selection_expression(r"\$default")
            .send()
    })
    .await
    .map_err(|e| explain("create the heartbeat's reply", e))?;
    Ok(id)
}

pub(crate) async fn delete_integration(
    apigw: &Client,
    api_id: &str,
    id: &str,
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .delete_integration()
            .api_id(api_id)
            .integration_id(id)
            .send()
    };
    gone(write(step, call).await).map_err(|e| explain("delete an integration", e))
}

/// Returns the route's id. A route that replies gets its response selection expression in the same call (one
/// write fewer on the API, whose writes AWS serialises); its `$default` response follows (`make_route_reply`).
pub(crate) async fn create_route(
    apigw: &Client,
    api_id: &str,
    (key, target, replies): (&str, &str, bool),
    step: &dyn Step,
) -> Result<String> {
    let call = || {
        apigw
            .create_route()
            .api_id(api_id)
            .route_key(key)
            .target(target)
            .set_route_response_selection_expression(replies.then(|| REPLY_KEY.to_string()))
            .send()
    };
    let out = write(step, call)
        .await
        .map_err(|e| explain(&format!("create the route {key}"), e))?;
    Ok(out
        .route_id()
        .context("AWS returned no route id")?
        .to_string())
}

pub(crate) async fn retarget_route(
    apigw: &Client,
    api_id: &str,
    route_id: &str,
    (key, target): (&str, &str),
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .update_route()
            .api_id(api_id)
            .route_id(route_id)
            .target(target)
            .send()
    };
    write(step, call)
        .await
        .map_err(|e| explain(&format!("update the route {key}"), e))?;
    Ok(())
}

pub(crate) async fn delete_route(
    apigw: &Client,
    api_id: &str,
    route_id: &str,
    key: &str,
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .delete_route()
            .api_id(api_id)
            .route_id(route_id)
            .send()
    };
    gone(write(step, call).await).map_err(|e| explain(&format!("delete the route {key}"), e))
}

/// The route's `$default` response, then (unless the route has it already) the selection expression that turns it
/// on. A conflict counts as done only when AWS says the response exists: taking a concurrent-modification 409 for
/// "exists" would leave the route without its reply, silently.
pub(crate) async fn make_route_reply(
    apigw: &Client,
    api_id: &str,
    (route_id, key): (&str, &str),
    selected: bool,
    step: &dyn Step,
) -> Result<()> {
    let what = format!("let the route {key} reply");
    let create = || {
        apigw
            .create_route_response()
            .api_id(api_id)
            .route_id(route_id)
            .route_response_key(REPLY_KEY)
            .send()
    };
    already(write(step, create).await, "ConflictException").map_err(|e| explain(&what, e))?;
    if selected {
        return Ok(());
    }
    let select = || {
        apigw
            .update_route()
            .api_id(api_id)
            .route_id(route_id)
            .route_response_selection_expression(REPLY_KEY)
            .send()
    };
    write(step, select).await.map_err(|e| explain(&what, e))?;
    Ok(())
}

/// `AutoDeploy` makes every route or integration change live without a `CreateDeployment` call, which is also what
/// lets this work on the local AWS emulator (moto has no `CreateDeployment`).
pub(crate) async fn create_stage(
    apigw: &Client,
    api_id: &str,
    (d, logging): (&Desired, &StageLogging),
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .create_stage()
            .api_id(api_id)
            .stage_name(&d.stage)
            .auto_deploy(true)
            .default_route_settings(route_defaults(d, logging))
            .set_access_log_settings(access_log(logging))
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
    };
    already(write(step, call).await, "ConflictException")
        .map_err(|e| explain(&format!("create the stage {}", d.stage), e))
}

/// The stage's default route settings: its throttle. A stage-wide rate or burst of 0 would refuse every message
/// with 429 (the config refuses it); for WebSocket APIs the limits apply to every route, `$connect` included
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-protect.html>).
/// Its execution logging level too (WebSocket APIs take it in the default route settings); data tracing, which
/// would log every message's body and so users' tokens, stays off.
fn route_defaults(
    d: &Desired,
    logging: &StageLogging,
) -> aws_sdk_apigatewayv2::types::RouteSettings {
    aws_sdk_apigatewayv2::types::RouteSettings::builder()
        .throttling_rate_limit(d.throttle.0)
        .throttling_burst_limit(d.throttle.1)
        .logging_level(logging.level.as_aws().into())
        .data_trace_enabled(false)
        .build()
}

fn access_log(logging: &StageLogging) -> Option<aws_sdk_apigatewayv2::types::AccessLogSettings> {
    logging.access.as_ref().map(|(arn, format)| {
        aws_sdk_apigatewayv2::types::AccessLogSettings::builder()
            .destination_arn(arn)
            .format(format)
            .build()
    })
}

/// Auto-deploy on, the stage's throttle and logging. Access logs are turned off by deleting their settings
/// (`DeleteAccessLogSettings`): an update without them leaves them as they are.
pub(crate) async fn update_stage(
    apigw: &Client,
    api_id: &str,
    (d, logging): (&Desired, &StageLogging),
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .update_stage()
            .api_id(api_id)
            .stage_name(&d.stage)
            .auto_deploy(true)
            .default_route_settings(route_defaults(d, logging))
            .set_access_log_settings(access_log(logging))
            .send()
    };
    write(step, call)
        .await
        .map_err(|e| explain(&format!("update the stage {}", d.stage), e))?;
    if logging.access.is_none() {
        let call = || {
            apigw
                .delete_access_log_settings()
                .api_id(api_id)
                .stage_name(&d.stage)
                .send()
        };
        gone(write(step, call).await)
            .map_err(|e| explain(&format!("turn off the access logs of {}", d.stage), e))?;
    }
    Ok(())
}

/// Gives one route its own throttle. Both limits are always sent: a route setting without one takes API Gateway's
/// default for it, not the stage's (terraform-aws-modules/terraform-aws-apigateway-v2#78). The route must exist,
/// or API Gateway answers 404 "Unable to find Route by key ... within the provided RouteSettings"
/// (terraform-aws-modules/terraform-aws-apigateway-v2#80); the plan sets it after the routes.
/// <https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html#UpdateStage>
pub(crate) async fn throttle_route(
    apigw: &Client,
    api_id: &str,
    stage: &str,
    (key, (rate, burst)): (&str, (f64, i32)),
    step: &dyn Step,
) -> Result<()> {
    let settings = aws_sdk_apigatewayv2::types::RouteSettings::builder()
        .throttling_rate_limit(rate)
        .throttling_burst_limit(burst)
        .build();
    let call = || {
        apigw
            .update_stage()
            .api_id(api_id)
            .stage_name(stage)
            .route_settings(key, settings.clone())
            .send()
    };
    write(step, call)
        .await
        .map_err(|e| explain(&format!("throttle the route {key} of the stage {stage}"), e))?;
    Ok(())
}

/// Removes a route's own settings, so the stage's apply to it. Settings left behind for a deleted route make every
/// later update of the stage fail with "Unable to find Route by key" (serverless-api-gateway-throttling#43), so the
/// plan removes them before any route goes; already gone is done.
/// <https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename-routesettings-routekey.html>
pub(crate) async fn unthrottle_route(
    apigw: &Client,
    api_id: &str,
    stage: &str,
    key: &str,
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        apigw
            .delete_route_settings()
            .api_id(api_id)
            .stage_name(stage)
            .route_key(key)
            .send()
    };
    gone(write(step, call).await).map_err(|e| {
        explain(
            &format!("remove the route {key}'s throttle from the stage {stage}"),
            e,
        )
    })?;
    Ok(())
}

pub(crate) async fn retag(
    apigw: &Client,
    arn: &str,
    diff: &TagDiff,
    step: &dyn Step,
) -> Result<()> {
    if !diff.set.is_empty() {
        let tags: std::collections::HashMap<String, String> =
            diff.set.clone().into_iter().collect();
        let call = || {
            apigw
                .tag_resource()
                .resource_arn(arn)
                .set_tags(Some(tags.clone()))
                .send()
        };
        write(step, call)
            .await
            .map_err(|e| explain("tag the API", e))?;
    }
    if !diff.remove.is_empty() {
        let call = || {
            apigw
                .untag_resource()
                .resource_arn(arn)
                .set_tag_keys(Some(diff.remove.clone()))
                .send()
        };
        write(step, call)
            .await
            .map_err(|e| explain("untag the API", e))?;
    }
    Ok(())
}

/// Whether the stage's last automatic deployment went live: `LastDeploymentStatusMessage` says so for stages with
/// `AutoDeploy` (<https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html>).
/// `None` when it did, the message when it failed.
pub(crate) async fn deployment_failure(
    apigw: &Client,
    api_id: &str,
    stage: &str,
) -> Result<Option<String>> {
    let out = apigw
        .get_stage()
        .api_id(api_id)
        .stage_name(stage)
        .send()
        .await
        .map_err(|e| explain(&format!("read the stage {stage}"), e))?;
    Ok(failed_deployment_message(
        out.last_deployment_status_message(),
    ))
}

/// The stage's `LastDeploymentStatusMessage` when it tells of a failure (`GetStage` and `GetStages` both carry it).
pub(crate) fn failed_deployment_message(m: Option<&str>) -> Option<String> {
    m.filter(|m| m.to_ascii_lowercase().contains("fail"))
        .map(str::to_string)
}
