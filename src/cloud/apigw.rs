//! API Gateway v2: the WebSocket API, its integrations, routes, route responses and stage.

use anyhow::{Context, Result};
use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use aws_sdk_apigatewayv2::Client;

use super::{already, explain, gone};
use crate::deploy::state::{Desired, ROUTE_SELECTION};

/// The new API's id.
pub async fn create_api(apigw: &Client, d: &Desired) -> Result<String> {
    let out = apigw
        .create_api()
        .name(&d.api)
        .protocol_type(ProtocolType::Websocket)
        .route_selection_expression(ROUTE_SELECTION)
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| explain(&format!("create the WebSocket API {}", d.api), e))?;
    Ok(out.api_id().context("AWS returned no API id")?.to_string())
}

pub async fn set_route_selection(apigw: &Client, api_id: &str) -> Result<()> {
    apigw
        .update_api()
        .api_id(api_id)
        .route_selection_expression(ROUTE_SELECTION)
        .send()
        .await
        .map_err(|e| explain("update the API", e))?;
    Ok(())
}

pub async fn delete_api(apigw: &Client, api_id: &str) -> Result<()> {
    gone(apigw.delete_api().api_id(api_id).send().await)
        .map_err(|e| explain(&format!("delete the API {api_id}"), e))
}

/// An `AWS_PROXY` integration with the function; returns its id.
pub async fn create_integration(apigw: &Client, api_id: &str, uri: &str) -> Result<String> {
    let out = apigw
        .create_integration()
        .api_id(api_id)
        .integration_type(IntegrationType::AwsProxy)
        .integration_method("POST")
        .integration_uri(uri)
        .send()
        .await
        .map_err(|e| explain("connect the API to a function", e))?;
    Ok(out
        .integration_id()
        .context("AWS returned no integration id")?
        .to_string())
}

pub async fn delete_integration(apigw: &Client, api_id: &str, id: &str) -> Result<()> {
    gone(
        apigw
            .delete_integration()
            .api_id(api_id)
            .integration_id(id)
            .send()
            .await,
    )
    .map_err(|e| explain("delete an integration", e))
}

/// Returns the route's id.
pub async fn create_route(apigw: &Client, api_id: &str, key: &str, target: &str) -> Result<String> {
    let out = apigw
        .create_route()
        .api_id(api_id)
        .route_key(key)
        .target(target)
        .send()
        .await
        .map_err(|e| explain(&format!("create the route {key}"), e))?;
    Ok(out
        .route_id()
        .context("AWS returned no route id")?
        .to_string())
}

pub async fn retarget_route(
    apigw: &Client,
    api_id: &str,
    route_id: &str,
    key: &str,
    target: &str,
) -> Result<()> {
    apigw
        .update_route()
        .api_id(api_id)
        .route_id(route_id)
        .target(target)
        .send()
        .await
        .map_err(|e| explain(&format!("update the route {key}"), e))?;
    Ok(())
}

pub async fn delete_route(apigw: &Client, api_id: &str, route_id: &str, key: &str) -> Result<()> {
    gone(
        apigw
            .delete_route()
            .api_id(api_id)
            .route_id(route_id)
            .send()
            .await,
    )
    .map_err(|e| explain(&format!("delete the route {key}"), e))
}

/// The route's `$default` response first, then the selection expression that turns it on: see
/// `Action::CreateRouteResponse` for why this order needs no listing of route responses.
pub async fn make_route_reply(
    apigw: &Client,
    api_id: &str,
    route_id: &str,
    key: &str,
) -> Result<()> {
    let r = apigw
        .create_route_response()
        .api_id(api_id)
        .route_id(route_id)
        .route_response_key("$default")
        .send()
        .await;
    already(r, "ConflictException")
        .map_err(|e| explain(&format!("let the route {key} reply"), e))?;
    apigw
        .update_route()
        .api_id(api_id)
        .route_id(route_id)
        .route_response_selection_expression("$default")
        .send()
        .await
        .map_err(|e| explain(&format!("let the route {key} reply"), e))?;
    Ok(())
}

/// AutoDeploy makes every route or integration change live without a CreateDeployment call, which is also what
/// lets this work on the local AWS emulator (moto has no CreateDeployment).
pub async fn create_stage(apigw: &Client, api_id: &str, d: &Desired) -> Result<()> {
    let r = apigw
        .create_stage()
        .api_id(api_id)
        .stage_name(&d.stage)
        .auto_deploy(true)
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await;
    already(r, "ConflictException")
        .map_err(|e| explain(&format!("create the stage {}", d.stage), e))
}

pub async fn auto_deploy(apigw: &Client, api_id: &str, stage: &str) -> Result<()> {
    apigw
        .update_stage()
        .api_id(api_id)
        .stage_name(stage)
        .auto_deploy(true)
        .send()
        .await
        .map_err(|e| explain("turn on auto-deploy", e))?;
    Ok(())
}
