//! API Gateway's account settings: the CloudWatch role every API of the account and region logs with. API Gateway
//! refuses any stage logging setting while it is unset ("CloudWatch Logs role ARN must be set in account settings to
//! enable logging", sst/ion #373); it is set only when the user asks (`up --setup-account-logging`).

use anyhow::Result;

use super::{already, explain, optional, retry_for, Clients, PROPAGATION_BUDGET};
use crate::deploy::state::{AccountRoleObs, Desired};
use crate::facts::{ACCOUNT_LOGGING_POLICY, ACCOUNT_LOGGING_ROLE};
use crate::ui::Step;

/// The role set in the account's API Gateway settings (`None`: none), and wsdeploy's role if it exists.
pub(crate) async fn observe(c: &Clients) -> Result<(Option<String>, Option<AccountRoleObs>)> {
    let (account, role) = tokio::join!(
        c.apigw_account.get_account().send(),
        c.iam.get_role().role_name(ACCOUNT_LOGGING_ROLE).send()
    );
    let account = account.map_err(|e| explain("read API Gateway's account settings", e))?;
    let role = optional(role, &format!("read the IAM role {ACCOUNT_LOGGING_ROLE}"))?;
    let role = role
        .as_ref()
        .and_then(|o| o.role())
        .map(|r| AccountRoleObs {
            trust: r
                .assume_role_policy_document()
                .and_then(super::policy_json)
                .unwrap_or_default(),
            boundary: super::observe::boundary_of(r.permissions_boundary()),
        });
    let set = account
        .cloudwatch_role_arn()
        .filter(|arn| !arn.is_empty())
        .map(str::to_string);
    Ok((set, role))
}

/// The role, trusted by API Gateway, with AWS's managed policy for pushing logs (which also lets it create the
/// execution log groups).
pub(crate) async fn create_role(c: &Clients, d: &Desired) -> Result<()> {
    let trust = crate::deploy::boundary::service_trust("apigateway.amazonaws.com");
    let r = c
        .iam
        .create_role()
        .role_name(ACCOUNT_LOGGING_ROLE)
        .description("API Gateway writes CloudWatch Logs with this role (set by wsdeploy in the account's API Gateway settings)")
        .assume_role_policy_document(trust.to_string())
        .permissions_boundary(d.boundary_arn())
        .send()
        .await;
    already(r, "EntityAlreadyExists")
        .map_err(|e| explain(&format!("create the IAM role {ACCOUNT_LOGGING_ROLE}"), e))?;
    c.iam
        .attach_role_policy()
        .role_name(ACCOUNT_LOGGING_ROLE)
        .policy_arn(format!(
            "arn:{}:iam::aws:{ACCOUNT_LOGGING_POLICY}",
            d.partition.id
        ))
        .send()
        .await
        .map_err(|e| {
            explain(
                &format!("attach {ACCOUNT_LOGGING_POLICY} to {ACCOUNT_LOGGING_ROLE}"),
                e,
            )
        })?;
    Ok(())
}

/// Sets the role in the account. A role made moments ago is refused until IAM has propagated it ("The role ARN
/// does not have required permissions configured", or "API Gateway could not successfully write to CloudWatch Logs
/// using the ARN specified"), and the call is limited to one every 20 seconds or so (`TooManyRequestsException`);
/// terraform-provider-aws's `aws_api_gateway_account` retries the first two for its propagation timeout.
pub(crate) async fn set_role(c: &Clients, d: &Desired, step: &dyn Step) -> Result<()> {
    use aws_sdk_apigateway::types::{Op, PatchOperation};
    let arn = d.account_logging_role_arn();
    let transient = |e: &aws_smithy_runtime_api::client::result::SdkError<_, _>| {
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        let message = e.message().unwrap_or_default();
        match e.code() {
            Some("BadRequestException")
                if message.contains("does not have required permissions")
                    || message.contains("could not successfully write to CloudWatch Logs") =>
            {
                Some("IAM has not yet let API Gateway use the new role")
            }
            Some("TooManyRequestsException") => Some("API Gateway limits account updates"),
            _ => None,
        }
    };
    retry_for(PROPAGATION_BUDGET, step, transient, || {
        c.apigw_account
            .update_account()
            .patch_operations(
                PatchOperation::builder()
                    .op(Op::Replace)
                    .path("/cloudwatchRoleArn")
                    .value(&arn)
                    .build(),
            )
            .send()
    })
    .await
    .map_err(|e| {
        explain(
            "set API Gateway's CloudWatch role in the account settings",
            e,
        )
    })?;
    Ok(())
}
