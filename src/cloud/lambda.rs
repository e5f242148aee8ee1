//! Lambda: the functions, their code and configuration, and API Gateway's permission to invoke them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{already, explain, gone};
use crate::deploy::state::{Desired, FunctionSpec, HANDLER, PERMISSION_SID, RUNTIME};
use crate::ui::Step;

fn environment(env: &BTreeMap<String, String>) -> aws_sdk_lambda::types::Environment {
    aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(env.clone().into_iter().collect()))
        .build()
}

fn zip_of(f: &FunctionSpec) -> Result<Vec<u8>> {
    std::fs::read(&f.artifact.zip)
        .with_context(|| format!("cannot read {}", f.artifact.zip.display()))
}

/// Creates the function. A role created seconds ago cannot be assumed by Lambda yet ("The role defined for the
/// function cannot be assumed by Lambda"): exactly that error is retried, with backoff, and said in the progress line.
pub async fn create(
    lambda: &Client,
    d: &Desired,
    f: &FunctionSpec,
    step: &dyn Step,
) -> Result<String> {
    let zip = zip_of(f)?;
    let mut delay = Duration::from_secs(1);
    for attempt in 1.. {
        let r = lambda
            .create_function()
            .function_name(&f.name)
            .runtime(RUNTIME.into())
            .handler(HANDLER)
            .role(d.role_arn())
            .architectures(f.architecture.as_str().into())
            .memory_size(f.memory_mb)
            .timeout(f.timeout_s)
            .environment(environment(&f.env))
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(Blob::new(zip.clone()))
                    .build(),
            )
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
            .await;
        match r {
            Ok(_) => {
                return Ok(format!(
                    "created, {:.1} KiB uploaded",
                    f.artifact.bytes as f64 / 1024.0
                ))
            }
            Err(e) if e.code() == Some("ResourceConflictException") => {
                return Ok("created by a concurrent run".into())
            }
            Err(e)
                if e.code() == Some("InvalidParameterValueException")
                    && e.message().is_some_and(|m| m.contains("cannot be assumed"))
                    && attempt < 8 =>
            {
                step.update(&format!("waiting for the new IAM role to reach Lambda (attempt {attempt}, retrying in {}s)", delay.as_secs()));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(explain(&format!("create the function {}", f.name), e)),
        }
    }
    unreachable!("the loop returns")
}

/// New code (and architecture, which Lambda takes with the code).
pub async fn update_code(lambda: &Client, f: &FunctionSpec, step: &dyn Step) -> Result<String> {
    let zip = zip_of(f)?;
    let call = || {
        lambda
            .update_function_code()
            .function_name(&f.name)
            .zip_file(Blob::new(zip.clone()))
            .architectures(f.architecture.as_str().into())
            .send()
    };
    retry_while_updating(step, call)
        .await
        .map_err(|e| explain(&format!("upload the code of {}", f.name), e))?;
    Ok(format!(
        "uploaded {:.1} KiB",
        f.artifact.bytes as f64 / 1024.0
    ))
}

pub async fn update_config(
    lambda: &Client,
    d: &Desired,
    f: &FunctionSpec,
    step: &dyn Step,
) -> Result<()> {
    let call = || {
        lambda
            .update_function_configuration()
            .function_name(&f.name)
            .runtime(RUNTIME.into())
            .handler(HANDLER)
            .role(d.role_arn())
            .memory_size(f.memory_mb)
            .timeout(f.timeout_s)
            .environment(environment(&f.env))
            .send()
    };
    retry_while_updating(step, call)
        .await
        .map_err(|e| explain(&format!("update the configuration of {}", f.name), e))?;
    Ok(())
}

pub async fn delete(lambda: &Client, name: &str) -> Result<()> {
    gone(lambda.delete_function().function_name(name).send().await)
        .map_err(|e| explain(&format!("delete the function {name}"), e))
}

/// Lets API Gateway invoke the function from `source_arn` (this API) only; `replace` drops an older grant first.
pub async fn allow_invoke(
    lambda: &Client,
    name: &str,
    source_arn: &str,
    replace: bool,
) -> Result<()> {
    if replace {
        gone(
            lambda
                .remove_permission()
                .function_name(name)
                .statement_id(PERMISSION_SID)
                .send()
                .await,
        )
        .map_err(|e| explain("replace the invoke permission", e))?;
    }
    let r = lambda
        .add_permission()
        .function_name(name)
        .statement_id(PERMISSION_SID)
        .action("lambda:InvokeFunction")
        .principal("apigateway.amazonaws.com")
        .source_arn(source_arn)
        .send()
        .await;
    already(r, "ResourceConflictException")
        .map_err(|e| explain(&format!("let API Gateway invoke {name}"), e))
}

/// Lambda refuses a change while the previous one is being applied ("An update is in progress"): wait and retry.
async fn retry_while_updating<T, E, R, F, Fut>(
    step: &dyn Step,
    mut call: F,
) -> Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
{
    let mut delay = Duration::from_millis(500);
    for attempt in 1.. {
        match call().await {
            Err(e) if e.code() == Some("ResourceConflictException") && attempt < 12 => {
                step.update(&format!(
                    "waiting for the function's previous update to finish (attempt {attempt})"
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}
