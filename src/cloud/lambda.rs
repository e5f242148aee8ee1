//! Lambda: the functions, their code and configuration, and API Gateway's permission to invoke them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::Client;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aws_smithy_runtime_api::client::result::SdkError;

use super::{
    already, explain, gone, is_exists_conflict, retry_capped, retry_for, PROPAGATION_BUDGET,
};
use crate::deploy::state::{Desired, FunctionSpec, TagDiff, PERMISSION_SID};
use crate::facts::{HANDLER, RUNTIME};
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

/// A function mid-change: Lambda answers `ResourceConflictException` "…An update is in progress…" or "…currently in
/// the following state: Pending" to other changes meanwhile
/// (<https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html>).
fn in_progress<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&'static str> {
    (e.code() == Some("ResourceConflictException")
        && !is_exists_conflict(e, "ResourceConflictException"))
    .then_some("the function's previous change is still being applied")
}

/// A role created seconds ago is not yet known to Lambda: "The role defined for the function cannot be assumed by
/// Lambda", or, with a customer managed key, "Lambda was unable to configure access to your environment variables
/// because the KMS key is invalid for CreateGrant. … ARN does not refer to a valid principal" (the grant names the
/// role). Serverless and claudia.js retry both messages on `CreateFunction`.
fn role_not_ready<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&'static str> {
    let m = e.message().unwrap_or_default();
    (e.code() == Some("InvalidParameterValueException")
        && (m.contains("cannot be assumed")
            || (m.contains("invalid for CreateGrant") && m.contains("valid principal"))))
    .then_some("waiting for the new IAM role to reach Lambda")
}

/// Creates the function. A role created seconds ago cannot be assumed by Lambda yet ("The role defined for the
/// function cannot be assumed by Lambda"): exactly that error is retried, for as long as terraform-provider-aws
/// allows IAM to propagate, with the wait shown.
pub(crate) async fn create(
    lambda: &Client,
    d: &Desired,
    f: &FunctionSpec,
    env_key: Option<&str>,
    step: &dyn Step,
) -> Result<String> {
    let zip = zip_of(f)?;
    let call = || {
        lambda
            .create_function()
            .function_name(&f.name)
            .runtime(RUNTIME.into())
            .handler(HANDLER)
            .role(d.role_arn())
            .architectures(f.architecture.as_str().into())
            .memory_size(f.memory_mb)
            .timeout(f.timeout_s)
            .environment(environment(&f.env))
            .set_kms_key_arn(env_key.map(str::to_string))
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(Blob::new(zip.clone()))
                    .build(),
            )
            .set_tags(Some(d.tags.clone().into_iter().collect()))
            .send()
    };
    // IAM's propagation typically ends within seconds: attempts a second apart end the wait within a second of it
    // (one function waits it out; the applier holds the others back until it is done).
    match retry_capped(
        PROPAGATION_BUDGET,
        Duration::from_secs(1),
        step,
        role_not_ready,
        call,
    )
    .await
    {
        Ok(_) => Ok(format!(
            "created, {:.1} KiB uploaded",
            f.artifact.bytes as f64 / 1024.0
        )),
        Err(e) if is_exists_conflict(&e, "ResourceConflictException") => {
            Ok("created by a concurrent run".into())
        }
        Err(e) => Err(explain(&format!("create the function {}", f.name), e)),
    }
}

/// New code (and architecture, which Lambda takes with the code).
pub(crate) async fn update_code(
    lambda: &Client,
    f: &FunctionSpec,
    step: &dyn Step,
) -> Result<String> {
    let zip = zip_of(f)?;
    let call = || {
        lambda
            .update_function_code()
            .function_name(&f.name)
            .zip_file(Blob::new(zip.clone()))
            .architectures(f.architecture.as_str().into())
            .send()
    };
    retry_for(PROPAGATION_BUDGET, step, in_progress, call)
        .await
        .map_err(|e| explain(&format!("upload the code of {}", f.name), e))?;
    Ok(format!(
        "uploaded {:.1} KiB",
        f.artifact.bytes as f64 / 1024.0
    ))
}

pub(crate) async fn update_config(
    lambda: &Client,
    d: &Desired,
    f: &FunctionSpec,
    env_key: Option<&str>,
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
            // An empty ARN puts the function back on Lambda's AWS-managed key
            // (<https://docs.aws.amazon.com/lambda/latest/api/API_UpdateFunctionConfiguration.html#lambda-UpdateFunctionConfiguration-request-KMSKeyArn>).
            .kms_key_arn(env_key.unwrap_or_default())
            .send()
    };
    let transient = |e: &SdkError<_, _>| in_progress(e).or_else(|| role_not_ready(e));
    retry_for(PROPAGATION_BUDGET, step, transient, call)
        .await
        .map_err(|e| explain(&format!("update the configuration of {}", f.name), e))?;
    Ok(())
}

/// Waits, with the SDK's waiters, until a created function is `Active` or an updated one's last update is
/// `Successful`; a `Failed` state is an error with AWS's reason.
pub(crate) async fn wait_ready(
    lambda: &Client,
    name: &str,
    created: bool,
    step: &dyn Step,
) -> Result<()> {
    use aws_sdk_lambda::client::Waiters;
    let max = Duration::from_secs(300);
    step.update(if created {
        "waiting for the new function to become Active"
    } else {
        "waiting for the function's update to finish"
    });
    let result = if created {
        lambda
            .wait_until_function_active_v2()
            .function_name(name)
            .wait(max)
            .await
            .map(|_| ())
    } else {
        lambda
            .wait_until_function_updated_v2()
            .function_name(name)
            .wait(max)
            .await
            .map(|_| ())
    };
    result.map_err(|e| {
        use aws_smithy_runtime_api::client::waiters::error::WaiterError;
        match e {
            WaiterError::FailureState(f) => {
                let config = f
                    .final_poll()
                    .as_result()
                    .ok()
                    .and_then(|o| o.configuration().cloned());
                let reason = config
                    .as_ref()
                    .and_then(|c| c.state_reason().or(c.last_update_status_reason()))
                    .unwrap_or("no reason given");
                anyhow::anyhow!("the function {name} failed to deploy: {reason}")
            }
            WaiterError::ExceededMaxWait(_) => anyhow::anyhow!(
                "the function {name} was still not ready after {}s; run `wsdeploy up` again",
                max.as_secs()
            ),
            other => anyhow::anyhow!("cannot wait for the function {name}: {other}"),
        }
    })
}

/// Reserves concurrency for the function, or gives it back to the account's pool. Lambda keeps at least 100
/// concurrent executions unreserved per account and region, and new accounts may have a quota of only 10, so a
/// reservation can be refused whatever its size
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html>): that error says what to do.
pub(crate) async fn set_concurrency(
    lambda: &Client,
    name: &str,
    reserved: Option<i32>,
) -> Result<()> {
    let Some(n) = reserved else {
        return gone(
            lambda
                .delete_function_concurrency()
                .function_name(name)
                .send()
                .await,
        )
        .map_err(|e| explain(&format!("release the reserved concurrency of {name}"), e));
    };
    match lambda
        .put_function_concurrency()
        .function_name(name)
        .reserved_concurrent_executions(n)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e)
            if e.message()
                .is_some_and(|m| m.contains("UnreservedConcurrentExecution")) =>
        {
            anyhow::bail!(
                "cannot reserve {n} concurrent executions for {name}: {}. Lower lambda.reserved_concurrency, remove it, or ask AWS for a higher \"Concurrent executions\" quota (Service Quotas, Lambda)",
                e.message().unwrap_or_default()
            )
        }
        Err(e) => Err(explain(&format!("reserve concurrency for {name}"), e)),
    }
}

pub(crate) async fn delete(lambda: &Client, name: &str) -> Result<()> {
    gone(lambda.delete_function().function_name(name).send().await)
        .map_err(|e| explain(&format!("delete the function {name}"), e))
}

/// Lets API Gateway invoke the function from `source_arn` (this API) only; `replace` drops an older grant first.
/// A conflict means "exists" only when Lambda says the statement id exists; "update in progress" is waited out.
pub(crate) async fn allow_invoke(
    lambda: &Client,
    name: &str,
    source_arn: &str,
    replace: bool,
    step: &dyn Step,
) -> Result<()> {
    if replace {
        let call = || {
            lambda
                .remove_permission()
                .function_name(name)
                .statement_id(PERMISSION_SID)
                .send()
        };
        gone(retry_for(PROPAGATION_BUDGET, step, in_progress, call).await)
            .map_err(|e| explain("replace the invoke permission", e))?;
    }
    let call = || {
        lambda
            .add_permission()
            .function_name(name)
            .statement_id(PERMISSION_SID)
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .source_arn(source_arn)
            .send()
    };
    already(
        retry_for(PROPAGATION_BUDGET, step, in_progress, call).await,
        "ResourceConflictException",
    )
    .map_err(|e| explain(&format!("let API Gateway invoke {name}"), e))
}

pub(crate) async fn retag(
    lambda: &Client,
    arn: &str,
    diff: &TagDiff,
    step: &dyn Step,
) -> Result<()> {
    if !diff.set.is_empty() {
        let tags: std::collections::HashMap<String, String> =
            diff.set.clone().into_iter().collect();
        let call = || {
            lambda
                .tag_resource()
                .resource(arn)
                .set_tags(Some(tags.clone()))
                .send()
        };
        retry_for(PROPAGATION_BUDGET, step, in_progress, call)
            .await
            .map_err(|e| explain("tag the function", e))?;
    }
    if !diff.remove.is_empty() {
        let call = || {
            lambda
                .untag_resource()
                .resource(arn)
                .set_tag_keys(Some(diff.remove.clone()))
                .send()
        };
        retry_for(PROPAGATION_BUDGET, step, in_progress, call)
            .await
            .map_err(|e| explain("untag the function", e))?;
    }
    Ok(())
}
