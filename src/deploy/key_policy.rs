//! The stage key's own key policy, and the rule for adopting a key. Pure.
//!
//! A key policy is the one place that decides who may use or manage a KMS key; IAM policies count only where the
//! key policy hands a permission to the account (`Principal: arn:…:root`)
//! (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>). So the stage key's policy:
//! - hands the account its administration (so an administrator can always recover the key), but not its use: an
//!   identity allowed `kms:Decrypt` on `*` does not read the signing secret with it;
//! - lets the stage's deployers manage this key, and use it through Lambda only, from the key policy itself. The
//!   deploy policy then needs no key-level right on `key/*`, and so no way to reach another team's key. Tagging a
//!   key as `CreateKey` makes it needs `kms:TagResource` "in an IAM policy that isn't restricted to particular KMS
//!   keys" (<https://docs.aws.amazon.com/kms/latest/developerguide/tag-permissions.html>), which would let the
//!   deploy identity tag any key; so the key is created untagged and tagged through this policy;
//! - lets the functions' role decrypt only through Lambda, and only their own environment: Lambda encrypts it with
//!   the function's ARN as encryption context (aws/serverless-application-model #1989 scopes it the same way).
//!
//! The deployers are named by `aws:PrincipalArn` under `Principal: *` and `kms:CallerAccount`, the form AWS's own
//! managed keys use, rather than as principals: a principal must exist when the policy is written and turns into an
//! unreadable id if its role is deleted and made again, while a condition does neither. For a role, `aws:PrincipalArn`
//! is the role's ARN with its path, which an assumed-role session's ARN leaves out, hence `role*/NAME`.
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn>)

use serde_json::{json, Value};

use super::state::Desired;

pub(crate) const SID_ADMINISTRATION: &str = "AccountAdministersTheKey";
pub(crate) const SID_DEPLOYERS: &str = "DeployersManageTheKey";
pub(crate) const SID_DEPLOYERS_THROUGH_LAMBDA: &str = "DeployersUseItThroughLambda";
pub(crate) const SID_FUNCTIONS: &str = "FunctionsDecryptTheirEnvironment";
const SIDS: [&str; 4] = [
    SID_ADMINISTRATION,
    SID_DEPLOYERS,
    SID_DEPLOYERS_THROUGH_LAMBDA,
    SID_FUNCTIONS,
];

/// The key administrators' actions of KMS's default policy for a console-made key, but for `kms:CreateGrant`
/// (its `kms:Create*` includes it, and a grant can hand out the key's use).
const ADMINISTRATION: &[&str] = &[
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:List*",
    "kms:PutKeyPolicy",
    "kms:UpdateKeyDescription",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:RevokeGrant",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

/// What `up` and `teardown` do to the key. `kms:PutKeyPolicy` is here because KMS refuses a new key whose policy
/// would not let its creator change the policy again (the lockout check), and `up` adds a new deployer with it.
const DEPLOYING: &[&str] = &[
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:PutKeyPolicy",
    "kms:ListResourceTags",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:EnableKey",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
];

/// What Lambda does with the key on the deployer's behalf: grant itself its use, encrypt the environment, and
/// decrypt it to show it back (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html>).
const THROUGH_LAMBDA: &[&str] = &["kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"];

/// The `aws:PrincipalArn` pattern that matches the identity STS's `GetCallerIdentity` names: a user or the root
/// as they are, an assumed role as its role whatever its path. `None` for what a key policy cannot name this way.
pub(crate) fn principal_pattern(caller_arn: &str) -> Option<String> {
    let mut parts = caller_arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(_), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    match service {
        "iam" if resource == "root" || resource.starts_with("user/") => Some(caller_arn.to_string()),
        "sts" => {
            let rest = resource.strip_prefix("assumed-role/")?;
            let role = rest.split('/').next().filter(|r| !r.is_empty())?;
            Some(format!("arn:{partition}:iam::{account}:role*/{role}"))
        }
        _ => None,
    }
}

/// What the stage key says it is; with the policy's statements, what marks a key as wsdeploy's.
pub(crate) fn description(prefix: &str) -> String {
    format!("wsdeploy {prefix}: encrypts the environment of the stage's Lambda functions")
}

/// The stage key's policy, letting `deployers` (`aws:PrincipalArn` patterns) manage it.
pub(crate) fn document(d: &Desired, deployers: &[String]) -> Value {
    let p = &d.partition.id;
    let lambda = format!("lambda.{}.{}", d.region, d.partition.dns_suffix);
    let functions: Vec<String> = d.functions.iter().map(|f| d.function_arn(&f.name)).collect();
    let anyone_here = |extra: Value| {
        let mut c = json!({ "StringEquals": { "kms:CallerAccount": d.account } });
        for (op, keys) in extra.as_object().into_iter().flatten() {
            for (k, v) in keys.as_object().into_iter().flatten() {
                c[op][k] = v.clone();
            }
        }
        c
    };
    let deployed_by = json!({ "ArnLike": { "aws:PrincipalArn": deployers } });
    let mut through_lambda = deployed_by.clone();
    through_lambda["StringEquals"] = json!({ "kms:ViaService": lambda });
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": SID_ADMINISTRATION,
                "Effect": "Allow",
                "Principal": { "AWS": format!("arn:{p}:iam::{}:root", d.account) },
                "Action": ADMINISTRATION,
                "Resource": "*"
            },
            {
                "Sid": SID_DEPLOYERS,
                "Effect": "Allow",
                "Principal": { "AWS": "*" },
                "Action": DEPLOYING,
                "Resource": "*",
                "Condition": anyone_here(deployed_by)
            },
            {
                "Sid": SID_DEPLOYERS_THROUGH_LAMBDA,
                "Effect": "Allow",
                "Principal": { "AWS": "*" },
                "Action": THROUGH_LAMBDA,
                "Resource": "*",
                "Condition": anyone_here(through_lambda)
            },
            {
                "Sid": SID_FUNCTIONS,
                "Effect": "Allow",
                "Principal": { "AWS": "*" },
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": anyone_here(json!({
                    "ArnEquals": { "aws:PrincipalArn": d.role_arn() },
                    "StringEquals": {
                        "kms:ViaService": lambda,
                        "kms:EncryptionContext:aws:lambda:FunctionArn": functions,
                    },
                }))
            }
        ]
    })
}

/// The deployers a key policy of wsdeploy's names.
pub(crate) fn deployers(policy: &Value) -> Vec<String> {
    let statement = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Sid"] == SID_DEPLOYERS);
    match statement.map(|s| &s["Condition"]["ArnLike"]["aws:PrincipalArn"]) {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(all)) => all
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    }
}

/// Whether a key is one wsdeploy made for the stage named `prefix`: its description and the statements of its
/// policy are wsdeploy's. Tags alone never make a key wsdeploy's: anyone allowed to tag a key could then have
/// `up` adopt it, or `teardown` delete it.
pub(crate) fn is_wsdeploys(prefix: &str, key_description: &str, policy: Option<&Value>) -> bool {
    let Some(policy) = policy else { return false };
    let mut sids: Vec<&str> = policy["Statement"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["Sid"].as_str())
        .collect();
    sids.sort_unstable();
    let mut want = SIDS.to_vec();
    want.sort_unstable();
    key_description == description(prefix) && sids == want
}

/// The policy the stage key should have, given the one it has: every deployer it names stays (an administrator's
/// run must not lock out the CI role that deploys next), and this run's caller and the project's deploy role are
/// added.
pub(crate) fn wanted(d: &Desired, observed: Option<&Value>) -> Value {
    let mut all: Vec<String> = observed.map(deployers).unwrap_or_default();
    all.extend(d.deployer.clone());
    all.push(format!(
        "arn:{}:iam::{}:role/{}",
        d.partition.id, d.account, d.names.deploy_role
    ));
    all.sort();
    all.dedup();
    document(d, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_is_named_as_aws_principal_arn_has_it() {
        let p = principal_pattern;
        assert_eq!(
            p("arn:aws:iam::123456789012:user/ci/deployer").as_deref(),
            Some("arn:aws:iam::123456789012:user/ci/deployer")
        );
        assert_eq!(
            p("arn:aws:sts::123456789012:assumed-role/chat-wsdeploy-deploy/GitHubActions").as_deref(),
            Some("arn:aws:iam::123456789012:role*/chat-wsdeploy-deploy")
        );
        assert_eq!(
            p("arn:aws-cn:iam::123456789012:root").as_deref(),
            Some("arn:aws-cn:iam::123456789012:root")
        );
        assert_eq!(p("arn:aws:sts::123456789012:federated-user/bob"), None);
        assert_eq!(p("not an arn"), None);
    }

    fn desired() -> Desired {
        crate::deploy::plan::tests::desired("lambda: { env_key: stage }\n")
    }

    #[test]
    fn the_key_is_used_only_through_lambda_and_the_account_only_administers_it() {
        let d = desired();
        let doc = wanted(&d, None);
        let s = |sid: &str| crate::deploy::policy::tests::statement(&doc, sid).clone();
        let administration = s(SID_ADMINISTRATION);
        let admin: Vec<&str> = administration["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        for usage in ["kms:Decrypt", "kms:Encrypt", "kms:CreateGrant", "kms:*", "kms:Create*"] {
            assert!(!admin.contains(&usage), "{usage}");
        }
        let f = s(SID_FUNCTIONS);
        assert_eq!(f["Condition"]["ArnEquals"]["aws:PrincipalArn"], d.role_arn());
        assert_eq!(
            f["Condition"]["StringEquals"]["kms:EncryptionContext:aws:lambda:FunctionArn"],
            json!(d.functions.iter().map(|x| d.function_arn(&x.name)).collect::<Vec<_>>())
        );
        let lambda = s(SID_DEPLOYERS_THROUGH_LAMBDA);
        assert_eq!(
            lambda["Condition"]["StringEquals"]["kms:ViaService"],
            format!("lambda.{}.amazonaws.com", d.region)
        );
        assert_eq!(lambda["Condition"]["StringEquals"]["kms:CallerAccount"], d.account);
    }

    #[test]
    fn a_run_adds_its_caller_and_keeps_the_deployers_before_it() {
        let mut d = desired();
        d.deployer = Some("arn:aws:iam::123456789012:user/admin".into());
        let first = wanted(&d, None);
        let deploy_role = format!("arn:aws:iam::123456789012:role/{}", d.names.deploy_role);
        assert_eq!(
            deployers(&first),
            vec![deploy_role.clone(), "arn:aws:iam::123456789012:user/admin".to_string()]
        );
        d.deployer = Some("arn:aws:iam::123456789012:role*/ci".into());
        let second = wanted(&d, Some(&first));
        assert_eq!(deployers(&second).len(), 3);
        assert_eq!(wanted(&d, Some(&second)), second, "a known caller changes nothing");
    }

    #[test]
    fn only_a_key_with_wsdeploys_description_and_policy_is_wsdeploys() {
        let d = desired();
        let doc = wanted(&d, None);
        let mine = description(&d.names.prefix);
        assert!(is_wsdeploys(&d.names.prefix, &mine, Some(&doc)));
        assert!(!is_wsdeploys(&d.names.prefix, &mine, None));
        assert!(!is_wsdeploys("other-dev", &mine, Some(&doc)));
        let default = json!({ "Statement": [{ "Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": { "AWS": "arn:aws:iam::123456789012:root" }, "Action": "kms:*", "Resource": "*" }] });
        assert!(!is_wsdeploys(&d.names.prefix, &mine, Some(&default)));
    }
}
