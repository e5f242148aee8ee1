//! The project's permissions boundary, and the rules for adopting a role wsdeploy did not create. Pure.
//!
//! A permissions boundary caps what an identity may do, whatever policies it holds: its effective permissions are
//! its identity policies intersected with the boundary
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html>). Every role and user wsdeploy
//! makes carries this one, and the deploy policy lets an identity create or change those roles and users only with
//! it (`iam:PermissionsBoundary`), so holding the deploy policy never lets one mint an identity that can do more than
//! what wsdeploy's own identities need. CDK's bootstrap offers a boundary for the same reason
//! (<https://docs.aws.amazon.com/cdk/v2/guide/customize-permissions-boundaries.html>).
//!
//! The boundary is written once per project (by `wsdeploy bootstrap`, or by a first `up` run with rights to create
//! it) and never by the deploy identity, which is denied every change to it.

use serde_json::{json, Value};

use super::state::Partition;
use crate::facts::ACCOUNT_LOGGING_ROLE;

/// What API Gateway's role for CloudWatch Logs does: exactly AWS's managed policy for it,
/// AmazonAPIGatewayPushToCloudWatchLogs
/// (<https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonAPIGatewayPushToCloudWatchLogs.html>).
pub(crate) const PUSH_TO_CLOUDWATCH_ACTIONS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
];

/// The boundary of `project`'s roles and users in `account`. It names no API, region or stage, so that it never
/// has to change as stages come and go (the deploy identity could not change it): each slice is scoped by what
/// the identity is for.
pub(crate) fn boundary_policy(project: &str, partition: &Partition, account: &str) -> Value {
    let p = &partition.id;
    let function_logs = format!("arn:{p}:logs:*:{account}:log-group:/aws/lambda/{project}-*");
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "FunctionLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [function_logs.clone(), format!("{function_logs}:*")]
            },
            // Lambda decrypts a function's environment as its role at every cold start, and only through Lambda
            // (aws/serverless-application-model #1989 scopes it the same way).
            {
                "Sid": "EnvironmentThroughLambda",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": format!("arn:{p}:kms:*:{account}:key/*"),
                "Condition": { "StringLike": { "kms:ViaService": format!("lambda.*.{}", partition.dns_suffix) } }
            },
            // The backend (user or the managed policy's holders are not capped by this; the user is) posts to,
            // reads and closes connections; API ids are not known when the boundary is written.
            {
                "Sid": "ManageConnections",
                "Effect": "Allow",
                "Action": "execute-api:ManageConnections",
                "Resource": format!("arn:{p}:execute-api:*:{account}:*/*/*/@connections/*")
            },
            // The backend hands large publishes to its stage's fan-out function (`fanout: true`); the user's own
            // policy names the one function, this caps it to fan-out functions of the project.
            {
                "Sid": "InvokeFanout",
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": format!("arn:{p}:lambda:*:{account}:function:{project}-*-fanout")
            },
            // API Gateway's account role writes every API's logs; only that role gets this slice.
            {
                "Sid": "ApiGatewayPushesLogs",
                "Effect": "Allow",
                "Action": PUSH_TO_CLOUDWATCH_ACTIONS,
                "Resource": "*",
                "Condition": { "ArnEquals": { "aws:PrincipalArn": account_role_arn(partition, account) } }
            }
        ]
    })
}

pub(crate) fn boundary_arn(partition: &Partition, account: &str, name: &str) -> String {
    format!("arn:{}:iam::{account}:policy/{name}", partition.id)
}

/// Whether `arn` is a wsdeploy boundary of this account (any project's: the account role is shared by every
/// project, and each project's boundary gives it the same slice).
pub(crate) fn is_boundary(partition: &Partition, account: &str, arn: &str) -> bool {
    arn.strip_prefix(&format!("arn:{}:iam::{account}:policy/", partition.id))
        .is_some_and(|name| name.ends_with("-wsdeploy-boundary") && !name.contains('/'))
}

pub(crate) fn account_role_arn(partition: &Partition, account: &str) -> String {
    format!(
        "arn:{}:iam::{account}:role/{ACCOUNT_LOGGING_ROLE}",
        partition.id
    )
}

/// The trust policy of a role only `service` (`lambda.amazonaws.com`, `apigateway.amazonaws.com`) may assume.
pub(crate) fn service_trust(service: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Principal": { "Service": service }, "Action": "sts:AssumeRole" }]
    })
}

/// Why a role's trust policy lets someone other than `service` assume it, if it does: any statement that allows a
/// principal other than that one service, or allows it with anything but a plain `sts:AssumeRole`.
pub(crate) fn foreign_trust(trust: &Value, service: &str) -> Option<String> {
    let statements = match &trust["Statement"] {
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        s => vec![s.clone()],
    };
    for s in statements.iter().filter(|s| s["Effect"] != "Deny") {
        let principal = &s["Principal"];
        let services = strings(&principal["Service"]);
        let others: Vec<String> = match principal {
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| *k != "Service")
                .map(|(k, v)| format!("{k} {v}"))
                .collect(),
            Value::String(x) => vec![x.clone()],
            _ => vec![],
        };
        if !others.is_empty() || s.get("NotPrincipal").is_some() {
            return Some(format!(
                "its trust policy also lets {} assume it",
                others.join(", ")
            ));
        }
        if let Some(other) = services.iter().find(|x| *x != service) {
            return Some(format!("its trust policy also lets {other} assume it"));
        }
        let actions = strings(&s["Action"]);
        if actions.iter().any(|a| a != "sts:AssumeRole") {
            return Some(format!(
                "its trust policy allows {} as well as sts:AssumeRole",
                actions.join(", ")
            ));
        }
    }
    None
}

/// A policy element that is one string or a list of them.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(x) => vec![x.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws() -> Partition {
        Partition::of_arn("arn:aws:iam::1:root")
    }

    #[test]
    fn the_boundary_names_only_the_project_and_gives_the_log_push_only_to_api_gateways_role() {
        let doc = boundary_policy("chat", &aws(), "123456789012");
        let text = doc.to_string();
        assert!(
            !text.contains("\"*:*\"") && !text.contains("\"iam:"),
            "{text}"
        );
        let sid = |sid: &str| {
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["Sid"] == sid)
                .unwrap()
                .clone()
        };
        let push = &sid("ApiGatewayPushesLogs");
        assert_eq!(
            push["Condition"]["ArnEquals"]["aws:PrincipalArn"],
            "arn:aws:iam::123456789012:role/wsdeploy-apigateway-cloudwatch"
        );
        assert_eq!(
            doc["Statement"][0]["Resource"][0],
            "arn:aws:logs:*:123456789012:log-group:/aws/lambda/chat-*"
        );
        assert_eq!(
            sid("InvokeFanout")["Resource"],
            "arn:aws:lambda:*:123456789012:function:chat-*-fanout",
            "the backend invokes its project's fan-out functions, nothing else"
        );
        let cn = boundary_policy("chat", &Partition::of_arn("arn:aws-cn:iam::1:root"), "1");
        assert_eq!(
            cn["Statement"][1]["Condition"]["StringLike"]["kms:ViaService"],
            "lambda.*.amazonaws.com.cn"
        );
    }

    #[test]
    fn a_boundary_is_recognised_by_account_and_name() {
        let p = aws();
        assert!(is_boundary(
            &p,
            "1",
            "arn:aws:iam::1:policy/chat-wsdeploy-boundary"
        ));
        assert!(!is_boundary(
            &p,
            "2",
            "arn:aws:iam::1:policy/chat-wsdeploy-boundary"
        ));
        assert!(!is_boundary(
            &p,
            "1",
            "arn:aws:iam::1:policy/x/chat-wsdeploy-boundary"
        ));
        assert!(!is_boundary(
            &p,
            "1",
            "arn:aws:iam::aws:policy/AdministratorAccess"
        ));
    }

    #[test]
    fn a_trust_policy_is_the_services_alone_or_says_who_else() {
        let api = "apigateway.amazonaws.com";
        assert_eq!(foreign_trust(&service_trust(api), api), None);
        let mut t = service_trust(api);
        t["Statement"][0]["Principal"] = json!({ "Service": api, "AWS": "arn:aws:iam::1:root" });
        assert_eq!(
            foreign_trust(&t, api).unwrap(),
            "its trust policy also lets AWS \"arn:aws:iam::1:root\" assume it"
        );
        assert_eq!(
            foreign_trust(&service_trust("lambda.amazonaws.com"), api).unwrap(),
            "its trust policy also lets lambda.amazonaws.com assume it"
        );
        let mut t = service_trust(api);
        t["Statement"][0]["Action"] = json!(["sts:AssumeRole", "sts:TagSession"]);
        assert!(foreign_trust(&t, api).unwrap().contains("sts:TagSession"));
    }
}
