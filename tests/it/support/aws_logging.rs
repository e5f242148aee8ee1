//! API Gateway's logging, as AWS enforces it and moto does not: the account's CloudWatch role, the access log
//! format, and `DeleteAccessLogSettings` (which moto lacks, so the layer plays it over moto's stage).

use serde_json::{json, Value};

use super::{Answer, Behaviour, Layer, Upstream};

/// AWS's words when a stage asks for logs and the account has no CloudWatch role (sst/ion #373).
pub(crate) const NO_ACCOUNT_ROLE: &str =
    "CloudWatch Logs role ARN must be set in account settings to enable logging";

impl Layer {
    /// `CreateStage` and `UpdateStage` with access logs or an execution logging level: refused while the account
    /// has no CloudWatch role (sst/ion #373), and an access log format without `$context.requestId` or
    /// `$context.extendedRequestId` is refused always
    /// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>).
    pub(super) async fn refuse_stage_logging(
        &self,
        stage: &Value,
        b: &Behaviour,
        upstream: &Upstream,
    ) -> Option<Answer> {
        if !b.logging_needs_account_role {
            return None;
        }
        let access = &stage["accessLogSettings"];
        let level = stage["defaultRouteSettings"]["loggingLevel"]
            .as_str()
            .unwrap_or("OFF");
        let asks = access["destinationArn"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
            || level != "OFF";
        if !asks {
            return None;
        }
        if let Some(format) = access["format"].as_str() {
            if !format.contains("$context.requestId")
                && !format.contains("$context.extendedRequestId")
            {
                let mut s = self.state.lock().unwrap();
                Self::hit(&mut s, "access log format without a request id refused");
                return Some(Answer::rest(400, "BadRequestException", "Access Log format must contain at least one of $context.requestId or $context.extendedRequestId"));
            }
        }
        let account: Value = upstream
            .get("/account")
            .await
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if account["cloudwatchRoleArn"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
        {
            return None;
        }
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "stage logging refused without the account's role");
        Some(Answer::rest(400, "BadRequestException", NO_ACCOUNT_ROLE))
    }

    /// `UpdateAccount` setting a role IAM has not propagated yet: "The role ARN does not have required permissions
    /// configured" (terraform-provider-aws retries it in `aws_api_gateway_account` for its propagation timeout).
    pub(super) fn refuse_account_role(&self, body: &[u8], b: &Behaviour) -> Option<Answer> {
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        let arn = v["patchOperations"]
            .as_array()?
            .iter()
            .find(|op| op["path"] == "/cloudwatchRoleArn")?["value"]
            .as_str()?
            .to_string();
        let name = arn.rsplit('/').next().unwrap_or_default();
        let mut s = self.state.lock().unwrap();
        if !s.role_young(name, b.role_propagation) {
            return None;
        }
        Self::hit(&mut s, "account role refused until IAM propagates it");
        Some(Answer::rest(400, "BadRequestException", "The role ARN does not have required permissions configured. Please grant trust permission for API Gateway and add the required role policy."))
    }

    /// `DeleteAccessLogSettings`, which moto lacks: the stage's access log settings go
    /// (<https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename-accesslogsettings.html>).
    pub(super) async fn delete_access_log_settings(
        &self,
        api: &str,
        stage: &str,
        upstream: &Upstream,
    ) -> Answer {
        if upstream
            .get(&format!("/v2/apis/{api}/stages/{stage}"))
            .await
            .is_none()
        {
            return Answer::rest(
                404,
                "NotFoundException",
                "Invalid stage identifier specified",
            );
        }
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "DeleteAccessLogSettings (played by the layer)");
        s.stage_updates
            .entry((api.to_string(), stage.to_string()))
            .or_default()
            .insert("accessLogSettings".into(), json!(null));
        Answer {
            status: 204,
            headers: vec![],
            body: vec![],
        }
    }
}
