//! The least-privilege IAM policy that an identity needs to run `plan`, `up` and `teardown` for some stages: each
//! statement is one family of resources, named after the stage's resources wherever AWS allows it. Pure: the
//! caller decides the account and partition.
//!
//! Actions and resource types follow the Service Authorization Reference
//! (<https://docs.aws.amazon.com/service-authorization/latest/reference/>): API Gateway has no name-scoped
//! resources (`apigateway:{METHOD}` on `/apis`, `/apis/*`, `/tags/*`), and `logs:DescribeLogGroups` is authorised
//! on the account's log groups, not one of them.

use serde_json::{json, Value};

use super::state::{Desired, Partition};
use crate::config::rules::BUNDLED_FUNCTIONS;
use crate::config::{EnvKey, StageConfig};

/// The account and partition the policy is for; `*` when they are not known.
pub(crate) struct Scope<'a> {
    pub account: &'a str,
    pub partition: &'a Partition,
}

struct StageArns {
    role: String,
    user: String,
    policy: String,
    boundary: String,
    functions: Vec<String>,
    log_groups: Vec<String>,
    /// Every API's execution log group of a stage of this name: no policy can tell this stage's apart.
    execution_logs: Vec<String>,
    apis: Vec<String>,
    env_key_alias: String,
    keys: String,
    lambda_service: String,
    /// Whether the stage has a KMS key of its own (`lambda.env_key: stage`).
    stage_key: bool,
    /// The user's own key (`lambda.env_key: <ARN>`), whose policy wsdeploy does not write.
    user_key: Option<String>,
}

fn arns(cfg: &StageConfig, scope: &Scope<'_>) -> StageArns {
    let n = cfg.names();
    let (p, a, r) = (&scope.partition.id, scope.account, &cfg.region);
    // Every bundled function, not only the routes' of now: a function the config stopped using is deleted.
    let functions: Vec<String> = BUNDLED_FUNCTIONS.iter().map(|f| n.function(f)).collect();
    let groups = functions
        .iter()
        .map(|f| format!("arn:{p}:logs:{r}:{a}:log-group:{}", Desired::log_group(f)));
    StageArns {
        role: format!("arn:{p}:iam::{a}:role/{}", n.role),
        user: format!("arn:{p}:iam::{a}:user/{}", n.user),
        policy: format!("arn:{p}:iam::{a}:policy/{}", n.policy),
        boundary: format!("arn:{p}:iam::{a}:policy/{}", n.boundary),
        functions: functions
            .iter()
            .map(|f| format!("arn:{p}:lambda:{r}:{a}:function:{f}"))
            .collect(),
        log_groups: groups
            .chain([format!(
                "arn:{p}:logs:{r}:{a}:log-group:{}",
                n.access_log_group
            )])
            .flat_map(|g| [format!("{g}:*"), g])
            .collect(),
        // API Gateway names it after the API's id, unknown before the API exists; there is none without
        // execution logs.
        execution_logs: if cfg.logs.execution == crate::config::ExecutionLogging::Off {
            vec![]
        } else {
            let group = format!(
                "arn:{p}:logs:{r}:{a}:log-group:{}",
                n.execution_log_group("*")
            );
            vec![format!("{group}:*"), group]
        },
        apis: vec![
            format!("arn:{p}:apigateway:{r}::/apis"),
            format!("arn:{p}:apigateway:{r}::/apis/*"),
            format!("arn:{p}:apigateway:{r}::/tags/*"),
            // The account's CloudWatch role: read by every run, set by `up --setup-account-logging`.
            format!("arn:{p}:apigateway:{r}::/account"),
        ],
        env_key_alias: format!("arn:{p}:kms:{r}:{a}:{}", n.env_key_alias),
        keys: format!("arn:{p}:kms:{r}:{a}:key/*"),
        lambda_service: format!("lambda.{r}.{}", scope.partition.dns_suffix),
        stage_key: cfg.lambda.env_key == EnvKey::Stage,
        user_key: match &cfg.lambda.env_key {
            EnvKey::Arn(arn) => Some(arn.clone()),
            _ => None,
        },
    }
}

fn account_role(scope: &Scope<'_>) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        scope.partition.id,
        scope.account,
        crate::facts::ACCOUNT_LOGGING_ROLE
    )
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    let mut resources = resources;
    resources.sort();
    resources.dedup();
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources })
}

/// An explicit deny, which no allow of any policy overrides.
fn deny(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    let mut s = statement(sid, actions, resources);
    s["Effect"] = json!("Deny");
    s
}

/// Allowed only when the role or user carries (or is being given) one of the project's boundaries.
fn with_boundary(mut s: Value, boundaries: &[String]) -> Value {
    s["Condition"] = json!({ "ArnEquals": { "iam:PermissionsBoundary": boundaries } });
    s
}

/// What `up` and `teardown` do to the functions' role. What could widen it (creating it, writing its policy,
/// setting its boundary) is in `ROLE_BOUNDED_ACTIONS`, allowed only with the project's boundary on the role.
const ROLE_ACTIONS: &[&str] = &[
    "iam:GetRole",
    "iam:DeleteRole",
    // Capped by the boundary: whoever it trusts gets at most the boundary's permissions.
    "iam:UpdateAssumeRolePolicy",
    "iam:GetRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:DetachRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
];

/// `iam:PermissionsBoundary` is the boundary the request sets (`CreateRole`, `Put*PermissionsBoundary`) or the one
/// the entity has (`Put*Policy`, `Attach*Policy`)
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PermissionsBoundary>).
const ROLE_BOUNDED_ACTIONS: &[&str] = &[
    "iam:CreateRole",
    "iam:PutRolePolicy",
    "iam:PutRolePermissionsBoundary",
];

/// What they do to the backend's user and its keys; the user is capped like the role (`USER_BOUNDED_ACTIONS`).
const USER_ACTIONS: &[&str] = &[
    "iam:GetUser",
    "iam:DeleteUser",
    "iam:GetUserPolicy",
    "iam:DeleteUserPolicy",
    "iam:ListUserPolicies",
    "iam:ListAttachedUserPolicies",
    "iam:DetachUserPolicy",
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:UpdateAccessKey",
    "iam:DeleteAccessKey",
    "iam:TagUser",
    "iam:UntagUser",
];

const USER_BOUNDED_ACTIONS: &[&str] = &[
    "iam:CreateUser",
    "iam:PutUserPolicy",
    "iam:PutUserPermissionsBoundary",
];

/// What they do to the managed policy (`credentials: policy`). No `CreatePolicyVersion` or
/// `SetDefaultPolicyVersion`: the policy is attached to the user's own roles, which no boundary of wsdeploy's caps,
/// so rewriting it would widen them. A new version (the API was replaced) takes an administrator's `up`. A policy
/// created anew after a delete is attached to nothing: the deploy policy attaches no policy but AWS's logging one.
const MANAGED_POLICY_ACTIONS: &[&str] = &[
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
    "iam:ListPolicyVersions",
    "iam:CreatePolicy",
    "iam:DeletePolicyVersion",
    "iam:DeletePolicy",
    "iam:ListEntitiesForPolicy",
    "iam:TagPolicy",
    "iam:UntagPolicy",
];

/// What they do to the functions.
const FUNCTION_ACTIONS: &[&str] = &[
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:CreateFunction",
    "lambda:DeleteFunction",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
    "lambda:GetPolicy",
    "lambda:AddPermission",
    "lambda:RemovePermission",
    "lambda:PutFunctionConcurrency",
    "lambda:DeleteFunctionConcurrency",
    "lambda:ListTags",
    "lambda:TagResource",
    "lambda:UntagResource",
];

/// What they do to the functions' log groups.
const LOG_GROUP_ACTIONS: &[&str] = &[
    "logs:CreateLogGroup",
    "logs:DeleteLogGroup",
    "logs:PutRetentionPolicy",
    "logs:ListTagsForResource",
    "logs:TagResource",
    "logs:UntagResource",
    // `wsdeploy logs` reads them.
    "logs:FilterLogEvents",
];

/// What they do to the WebSocket API (API Gateway authorizes by HTTP method on the resource path).
const API_ACTIONS: &[&str] = &[
    "apigateway:GET",
    "apigateway:POST",
    "apigateway:PUT",
    "apigateway:PATCH",
    "apigateway:DELETE",
];

/// The policy document for `stages` (all of one config file, or one stage).
pub(crate) fn deploy_policy(stages: &[&StageConfig], scope: &Scope<'_>) -> Value {
    let all: Vec<StageArns> = stages.iter().map(|s| arns(s, scope)).collect();
    let mut boundaries: Vec<String> = all.iter().map(|s| s.boundary.clone()).collect();
    boundaries.sort();
    boundaries.dedup();
    let mut statements = identity_statements(&all, &boundaries);
    statements.extend(resource_statements(&all));
    statements.extend(account_role_statements(scope, &boundaries));
    statements.extend(domain_statements(stages, scope));
    statements.extend(key_statements(&all));
    json!({ "Version": "2012-10-17", "Statement": statements })
}

/// The functions' role, the backend's user, the managed policy and the boundary that caps them.
fn identity_statements(all: &[StageArns], boundaries: &[String]) -> Vec<Value> {
    let each = |f: &dyn Fn(&StageArns) -> Vec<String>| all.iter().flat_map(f).collect::<Vec<_>>();
    let roles = each(&|s| vec![s.role.clone()]);
    let policies = each(&|s| vec![s.policy.clone()]);
    let boundaries = boundaries.to_vec();
    let bounded = |s: Value| with_boundary(s, &boundaries);
    vec![
        statement("LambdaRole", ROLE_ACTIONS, roles.clone()),
        bounded(statement(
            "LambdaRoleWithBoundary",
            ROLE_BOUNDED_ACTIONS,
            roles.clone(),
        )),
        // The role goes to Lambda and nowhere else.
        {
            let mut s = statement("PassLambdaRole", &["iam:PassRole"], roles);
            s["Condition"] =
                json!({ "StringEquals": { "iam:PassedToService": "lambda.amazonaws.com" } });
            s
        },
        statement("BackendUser", USER_ACTIONS, each(&|s| vec![s.user.clone()])),
        bounded(statement(
            "BackendUserWithBoundary",
            USER_BOUNDED_ACTIONS,
            each(&|s| vec![s.user.clone()]),
        )),
        statement("ManagedPolicy", MANAGED_POLICY_ACTIONS, policies.clone()),
        // `up` reads the boundary to check it; only an administrator writes it.
        statement(
            "ReadBoundary",
            &[
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
            ],
            boundaries.clone(),
        ),
        deny(
            "DenyBoundaryChanges",
            &[
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            boundaries.clone(),
        ),
        // No role or user loses its boundary through this identity, wsdeploy's or anyone's.
        deny(
            "DenyBoundaryRemoval",
            &[
                "iam:DeleteRolePermissionsBoundary",
                "iam:DeleteUserPermissionsBoundary",
            ],
            vec!["*".into()],
        ),
        // `teardown` detaches the managed policy from whatever you attached it to, and from nothing else.
        {
            let mut s = statement(
                "DetachManagedPolicy",
                &[
                    "iam:DetachRolePolicy",
                    "iam:DetachUserPolicy",
                    "iam:DetachGroupPolicy",
                ],
                vec!["*".into()],
            );
            s["Condition"] = json!({ "ArnEquals": { "iam:PolicyARN": policies } });
            s
        },
    ]
}

/// The functions, their log groups, the API and its metrics.
fn resource_statements(all: &[StageArns]) -> Vec<Value> {
    let each = |f: &dyn Fn(&StageArns) -> Vec<String>| all.iter().flat_map(f).collect::<Vec<_>>();
    let mut out = vec![
        statement(
            "Functions",
            FUNCTION_ACTIONS,
            each(&|s| s.functions.clone()),
        ),
        statement(
            "LogGroups",
            LOG_GROUP_ACTIONS,
            each(&|s| s.log_groups.clone()),
        ),
        // API Gateway names a stage's execution log group after the API's id, which no policy can know beforehand,
        // and CloudWatch Logs cannot stop a caller from tagging a group, so no tag can mark this stage's
        // (iam-identity-based-access-control-cwl.html). The wildcard reaches every API's group of a stage of this
        // name, so it grants only the retention `up` keeps: no read, no delete (`teardown` empties the group
        // within a day instead, and says so).
        // The Service Authorization Reference lists DescribeLogGroups on no resource type: `*` only.
        statement(
            "ListLogGroups",
            &["logs:DescribeLogGroups"],
            vec!["*".into()],
        ),
        // API Gateway v2 authorizes by path. Its tags are on the API, stage and domain only, and its guide says that
        // only V1's child resources inherit them for access control
        // (apigateway-tagging-supported-resources.html), though the Service Authorization Reference lists
        // `aws:ResourceTag` on V2 routes and integrations too. Routes and integrations are where another team's
        // API could be changed, so a tag condition would either refuse wsdeploy's own route writes or guard only
        // the API object: the Sid says the paths stay unscoped, as the deploy-identity table does.
        statement("WebSocketApisByPathNoTagScope", API_ACTIONS, each(&|s| s.apis.clone())),
        // `status` reads the last hour's metrics; CloudWatch metrics have no resource to scope to.
        statement(
            "ReadMetrics",
            &["cloudwatch:GetMetricData"],
            vec!["*".into()],
        ),
    ];
    let execution_logs = each(&|s| s.execution_logs.clone());
    if !execution_logs.is_empty() {
        // API Gateway names a stage's execution log group after the API's id, which no policy can know
        // beforehand, and CloudWatch Logs cannot stop a caller from tagging a group, so no tag can mark this
        // stage's (iam-identity-based-access-control-cwl.html). The wildcard reaches every API's group of a stage
        // of this name, so it grants only the retention `up` keeps: no read, no delete (`teardown` empties the
        // group within a day instead, and says so).
        out.push(statement(
            "ExecutionLogRetentionOnAnyApi",
            &["logs:PutRetentionPolicy"],
            execution_logs,
        ));
    }
    out
}

/// API Gateway's account-wide CloudWatch role: created with the boundary, given AWS's logging policy only, set.
fn account_role_statements(scope: &Scope<'_>, boundaries: &[String]) -> Vec<Value> {
    let bounded = |s: Value| with_boundary(s, boundaries);
    vec![
        statement(
            "AccountLoggingRole",
            &["iam:GetRole"],
            vec![account_role(scope)],
        ),
        bounded(statement(
            "AccountLoggingRoleWithBoundary",
            &["iam:CreateRole", "iam:PutRolePermissionsBoundary"],
            vec![account_role(scope)],
        )),
        // AWS's logging policy and no other, onto the role while it carries the boundary.
        {
            let mut s = bounded(statement(
                "AttachLoggingPolicy",
                &["iam:AttachRolePolicy"],
                vec![account_role(scope)],
            ));
            s["Condition"]["ArnEquals"]["iam:PolicyARN"] = json!(format!(
                "arn:{}:iam::aws:{}",
                scope.partition.id,
                crate::facts::ACCOUNT_LOGGING_POLICY
            ));
            s
        },
        // Setting the account's CloudWatch role passes it to API Gateway.
        {
            let mut s = statement(
                "PassAccountLoggingRole",
                &["iam:PassRole"],
                vec![account_role(scope)],
            );
            s["Condition"] =
                json!({ "StringEquals": { "iam:PassedToService": "apigateway.amazonaws.com" } });
            s
        },
    ]
}

/// What `up` and `teardown` do for the stages with a `domain:`: their domain names and mappings, the certificate
/// and zone lookups (ACM's list and Route 53's zone list cannot be scoped to what is not yet known), the record.
fn domain_statements(stages: &[&StageConfig], scope: &Scope<'_>) -> Vec<Value> {
    let p = &scope.partition.id;
    let names: Vec<String> = stages
        .iter()
        .filter_map(|s| {
            let d = s.domain.as_ref()?;
            Some(format!(
                "arn:{p}:apigateway:{}::/domainnames/{}",
                s.region, d.name
            ))
        })
        .flat_map(|arn| [format!("{arn}/*"), arn])
        .collect();
    if names.is_empty() {
        return vec![];
    }
    // Route 53 lowercases the name and drops the final dot before it compares.
    let mut record_names: Vec<String> = stages
        .iter()
        .filter_map(|s| s.domain.as_ref())
        .map(|d| d.name.trim_end_matches('.').to_ascii_lowercase())
        .collect();
    record_names.sort();
    record_names.dedup();
    let regions: Vec<String> = stages
        .iter()
        .filter(|s| s.domain.is_some())
        .map(|s| format!("arn:{p}:apigateway:{}::/domainnames", s.region))
        .collect();
    vec![
        statement(
            "DomainName",
            API_ACTIONS,
            names.into_iter().chain(regions).collect(),
        ),
        // ACM's and Route 53's lists have no resource type (the Service Authorization Reference).
        statement(
            "FindCertificateAndZone",
            &["acm:ListCertificates", "route53:ListHostedZonesByName"],
            vec!["*".into()],
        ),
        statement(
            "ReadCertificate",
            &["acm:DescribeCertificate"],
            stages
                .iter()
                .filter(|s| s.domain.is_some())
                .map(|s| format!("arn:{p}:acm:{}:{}:certificate/*", s.region, scope.account))
                .collect(),
        ),
        statement(
            "DomainRecords",
            &["route53:GetHostedZone", "route53:ListResourceRecordSets"],
            vec![format!("arn:{p}:route53:::hostedzone/*")],
        ),
        // Only the stages' own names, only their alias A records, only the changes `up` and `teardown` make
        // (<https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html>). The zone
        // is found at run time, so any zone of the account: a name is in one public zone.
        {
            let mut s = statement(
                "DomainRecord",
                &["route53:ChangeResourceRecordSets"],
                vec![format!("arn:{p}:route53:::hostedzone/*")],
            );
            s["Condition"] = json!({ "ForAllValues:StringEquals": {
                "route53:ChangeResourceRecordSetsNormalizedRecordNames": record_names,
                "route53:ChangeResourceRecordSetsRecordTypes": ["A"],
                "route53:ChangeResourceRecordSetsActions": ["UPSERT", "DELETE"],
            } });
            s
        },
    ]
}

/// What `up` and `teardown` do with KMS keys. Lambda encrypts the functions' environment and shows it back on behalf
/// of the caller, so the caller needs the key's use through Lambda (`kms:ViaService`) and nowhere else
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html>). Nothing here changes a
/// key or uses the stage key: the stage key's own policy lets its deployers manage it and use it through Lambda
/// (`deploy::key_policy`), so no grant on `key/*` can reach another team's key. Only a key of the user's
/// (`env_key: <ARN>`) is used by IAM, that key alone, and only if its policy hands the decision to IAM. Lambda's
/// own key (`aws/lambda`) needs nothing: its policy lets the account use it through Lambda. `CreateAlias` needs the
/// permission on the alias here and on the key in its policy
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html>).
fn key_statements(all: &[StageArns]) -> Vec<Value> {
    let each = |f: &dyn Fn(&StageArns) -> Vec<String>| all.iter().flat_map(f).collect::<Vec<_>>();
    let with_key = || all.iter().filter(|s| s.stage_key);
    let mut out = vec![];
    let users: Vec<&StageArns> = all.iter().filter(|s| s.user_key.is_some()).collect();
    if !users.is_empty() {
        let mut through_lambda = statement(
            "UserKeysThroughLambda",
            &["kms:CreateGrant", "kms:Encrypt", "kms:Decrypt"],
            users.iter().filter_map(|s| s.user_key.clone()).collect(),
        );
        let services: Vec<String> = users.iter().map(|s| s.lambda_service.clone()).collect();
        through_lambda["Condition"] = json!({ "StringEquals": { "kms:ViaService": services } });
        out.push(through_lambda);
    }
    // A key without its alias is found among the account's by its description and policy, which takes reading
    // them; `ListKeys` has no resource type (Service Authorization Reference), so `*`.
    out.push(statement("FindKeys", &["kms:ListKeys"], vec!["*".into()]));
    out.push(statement(
        "ReadKeys",
        &["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListResourceTags"],
        each(&|s| vec![s.keys.clone()]),
    ));
    if with_key().next().is_none() {
        return out;
    }
    // CreateKey has no resource (the key does not exist yet). Only the key wsdeploy makes: symmetric, KMS's own key
    // material, one region, and never one that skips KMS's check that the key stays manageable.
    let mut s = statement("CreateStageKey", &["kms:CreateKey"], vec!["*".into()]);
    s["Condition"] = json!({
        "StringEquals": {
            "kms:KeySpec": "SYMMETRIC_DEFAULT",
            "kms:KeyOrigin": "AWS_KMS",
            "kms:KeyUsage": "ENCRYPT_DECRYPT",
        },
        "Bool": {
            "kms:MultiRegion": "false",
            "kms:BypassPolicyLockoutSafetyCheck": "false",
        },
    });
    out.push(s);
    out.push(statement(
        "StageKeyAlias",
        &["kms:CreateAlias", "kms:DeleteAlias"],
        with_key().map(|s| s.env_key_alias.clone()).collect(),
    ));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    /// The policy for the stages dev and prod of a config whose `stages:` mapping is `stages`.
    fn policy_of(stages: &str, partition: &str) -> Value {
        let src = format!("project: chat\nregion: eu-west-3\nbackend: {{ url: 'https://api.example.com' }}\nstages: {stages}\n");
        let c = Config::from_source(std::path::Path::new("w.yaml"), src, &Overrides::default())
            .unwrap();
        let stages: Vec<&StageConfig> = ["dev", "prod"]
            .iter()
            .map(|s| c.stage(Some(s)).unwrap())
            .collect();
        let partition = Partition::of_arn(&format!("arn:{partition}:iam::1:root"));
        deploy_policy(
            &stages,
            &Scope {
                account: "123456789012",
                partition: &partition,
            },
        )
    }

    fn policy(partition: &str) -> Value {
        policy_of("{ dev: {}, prod: { region: us-east-1 } }", partition)
    }

    /// The statement `sid` of a policy document.
    pub(crate) fn statement<'a>(doc: &'a Value, sid: &str) -> &'a Value {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap()
    }

    #[test]
    fn a_domain_is_granted_by_its_name_and_only_to_the_stages_that_have_one() {
        assert!(statement_of(&policy("aws"), "DomainName").is_none());
        let doc = policy_of(
            "{ dev: {}, prod: { domain: { name: ws.example.com } } }",
            "aws",
        );
        assert_eq!(
            statement(&doc, "DomainName")["Resource"],
            json!([
                "arn:aws:apigateway:eu-west-3::/domainnames",
                "arn:aws:apigateway:eu-west-3::/domainnames/ws.example.com",
                "arn:aws:apigateway:eu-west-3::/domainnames/ws.example.com/*"
            ])
        );
    }

    fn statement_of<'a>(doc: &'a Value, sid: &str) -> Option<&'a Value> {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
    }

    /// The conditions the emulator's policy evaluator cannot check (it knows `StringEquals` only), checked here.
    #[test]
    fn passing_the_role_and_detaching_the_policy_are_conditional() {
        let doc = policy("aws");
        let pass = statement(&doc, "PassLambdaRole");
        assert_eq!(
            pass["Condition"]["StringEquals"]["iam:PassedToService"],
            "lambda.amazonaws.com"
        );
        assert_eq!(
            pass["Resource"],
            json!([
                "arn:aws:iam::123456789012:role/chat-dev-lambda",
                "arn:aws:iam::123456789012:role/chat-prod-lambda"
            ])
        );
        let detach = statement(&doc, "DetachManagedPolicy");
        assert_eq!(
            detach["Condition"]["ArnEquals"]["iam:PolicyARN"],
            json!([
                "arn:aws:iam::123456789012:policy/chat-dev-manage-connections",
                "arn:aws:iam::123456789012:policy/chat-prod-manage-connections"
            ])
        );
    }

    #[test]
    fn the_stage_key_is_used_through_lambda_and_changed_only_by_its_own_policy() {
        let doc = policy("aws-cn");
        assert!(
            doc["Statement"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["Sid"] != "UserKeysThroughLambda"),
            "no key of the user's, no use of keys by IAM"
        );
        let create = &statement(&doc, "CreateStageKey")["Condition"];
        assert_eq!(create["StringEquals"]["kms:KeySpec"], "SYMMETRIC_DEFAULT");
        assert_eq!(create["Bool"]["kms:BypassPolicyLockoutSafetyCheck"], "false");
        let changes_a_key = |a: &str| {
            matches!(
                a,
                "kms:TagResource"
                    | "kms:UntagResource"
                    | "kms:ScheduleKeyDeletion"
                    | "kms:PutKeyPolicy"
                    | "kms:EnableKey"
                    | "kms:CancelKeyDeletion"
            )
        };
        for s in doc["Statement"].as_array().unwrap() {
            for a in s["Action"].as_array().unwrap() {
                assert!(
                    !changes_a_key(a.as_str().unwrap()),
                    "{}: the key's own policy grants this, to its deployers only",
                    s["Sid"]
                );
            }
        }
        assert_eq!(
            statement(&doc, "StageKeyAlias")["Resource"][0],
            "arn:aws-cn:kms:eu-west-3:123456789012:alias/wsdeploy/chat-dev"
        );
    }

    #[test]
    fn execution_logs_are_reached_only_to_keep_their_retention() {
        let without = policy("aws");
        assert!(!without.to_string().contains("Execution-Logs"), "no execution logs, no grant");
        let doc = policy_of("{ dev: { logs: { execution: info } }, prod: {} }", "aws");
        let named: Vec<&Value> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s.to_string().contains("Execution-Logs"))
            .collect();
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(named[0]["Sid"], "ExecutionLogRetentionOnAnyApi");
        assert_eq!(named[0]["Action"], json!(["logs:PutRetentionPolicy"]));
        assert_eq!(
            named[0]["Resource"],
            json!([
                "arn:aws:logs:eu-west-3:123456789012:log-group:API-Gateway-Execution-Logs_*/dev",
                "arn:aws:logs:eu-west-3:123456789012:log-group:API-Gateway-Execution-Logs_*/dev:*"
            ])
        );
    }

    #[test]
    fn a_key_of_the_users_is_used_through_lambda_by_iam_and_only_that_key() {
        let arn = "arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let doc = policy_of(
            &format!("{{ dev: {{}}, prod: {{ lambda: {{ env_key: '{arn}' }} }} }}"),
            "aws",
        );
        let s = statement(&doc, "UserKeysThroughLambda");
        assert_eq!(s["Resource"], json!([arn]));
        assert_eq!(
            s["Condition"]["StringEquals"]["kms:ViaService"],
            json!(["lambda.eu-west-3.amazonaws.com"])
        );
    }

    #[test]
    fn nothing_is_granted_on_everything_but_what_aws_cannot_scope() {
        for partition in ["aws", "aws-cn", "aws-us-gov"] {
            let doc = policy(partition);
            for s in doc["Statement"].as_array().unwrap() {
                for r in s["Resource"].as_array().unwrap() {
                    let r = r.as_str().unwrap();
                    let sid = s["Sid"].as_str().unwrap();
                    if matches!(sid, "ReadMetrics" | "ListLogGroups") {
                        assert_eq!(
                            r, "*",
                            "CloudWatch metrics, DescribeLogGroups: no resource type"
                        );
                        continue;
                    }
                    if s["Effect"] == "Deny" {
                        continue;
                    }
                    if matches!(sid, "FindCertificateAndZone" | "FindKeys") {
                        assert_eq!(r, "*", "ACM's, Route 53's and KMS's lists");
                        continue;
                    }
                    if matches!(
                        sid,
                        "DetachManagedPolicy" | "CreateStageKey"
                    ) {
                        assert_eq!(r, "*", "scoped by its condition instead");
                        assert!(s["Condition"].is_object());
                        continue;
                    }
                    if r.ends_with(":key/*") {
                        // Only through Lambda, only read, or only beside the stage's alias.
                        assert!(
                            s["Condition"].is_object()
                                || matches!(sid, "StageKeyAlias" | "ReadKeys"),
                            "{sid}"
                        );
                        continue;
                    }
                    if r.contains("API-Gateway-Execution-Logs_*/") {
                        assert_eq!(
                            s["Action"],
                            json!(["logs:PutRetentionPolicy"]),
                            "every API's execution logs of the stage's name: no read, no delete"
                        );
                    }
                    assert!(r.starts_with(&format!("arn:{partition}:")), "{r}");
                    assert!(!r.contains(":function:chat-dev-*"), "{r}: exact names");
                    assert!(
                        r.contains("chat-")
                            || r.contains("/chat-")
                            || r.contains(crate::facts::ACCOUNT_LOGGING_ROLE)
                            || r.contains(":route53:::hostedzone/")
                            || r.contains(":certificate/")
                            || r.contains("::/domainnames")
                            || r.contains("API-Gateway-Execution-Logs_*/")
                            || r.contains(":apigateway:"),
                        "{r} is not scoped to the project"
                    );
                }
            }
            // One region per stage.
            let apis = &statement(&doc, "WebSocketApisByPathNoTagScope")["Resource"];
            assert!(apis.as_array().unwrap().iter().any(|r| r
                .as_str()
                .unwrap()
                .contains(":apigateway:us-east-1::/apis/*")));
        }
    }

    /// What could widen a role or user is allowed only with the project's boundary; the boundary itself, and every
    /// boundary's removal, are denied outright; the one policy the deploy identity may attach is AWS's logging one.
    #[test]
    fn roles_and_users_are_made_and_changed_only_with_the_boundary() {
        let doc = policy("aws");
        let boundary = json!(["arn:aws:iam::123456789012:policy/chat-wsdeploy-boundary"]);
        for sid in [
            "LambdaRoleWithBoundary",
            "BackendUserWithBoundary",
            "AccountLoggingRoleWithBoundary",
            "AttachLoggingPolicy",
        ] {
            let s = statement(&doc, sid);
            assert_eq!(
                s["Condition"]["ArnEquals"]["iam:PermissionsBoundary"], boundary,
                "{sid}"
            );
        }
        assert_eq!(
            statement(&doc, "AttachLoggingPolicy")["Condition"]["ArnEquals"]["iam:PolicyARN"],
            "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
        );
        let allowed: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Allow" && s.get("Condition").is_none())
            .flat_map(|s| s["Action"].as_array().unwrap())
            .filter_map(Value::as_str)
            .collect();
        for widening in [
            "iam:CreateRole",
            "iam:PutRolePolicy",
            "iam:AttachRolePolicy",
            "iam:CreateUser",
            "iam:PutUserPolicy",
            "iam:AttachUserPolicy",
            "iam:CreatePolicyVersion",
            "iam:SetDefaultPolicyVersion",
        ] {
            assert!(
                !allowed.contains(&widening),
                "{widening} without a condition"
            );
        }
        assert_eq!(statement(&doc, "DenyBoundaryChanges")["Effect"], "Deny");
        assert_eq!(statement(&doc, "DenyBoundaryChanges")["Resource"], boundary);
        assert_eq!(
            statement(&doc, "DenyBoundaryRemoval")["Resource"],
            json!(["*"])
        );
    }
}
