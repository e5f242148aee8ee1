//! IAM authorisation for the deploying identity, played by the AWS-behaviour layer: every request is mapped to the
//! IAM action(s) and resource AWS authorises it as (the Service Authorization Reference), and moto's own policy
//! evaluator (`iam_eval.py`) decides. A denied request gets AWS's `AccessDenied` answer, which names the action.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::aws_behaviour::Req;
use crate::support::moto::ACCOUNT;

/// Who the access key `testing` is: STS's `GetCallerIdentity` says so (the layer answers it), and AWS's denials
/// name it.
pub(crate) fn deployer() -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/deployer")
}

/// One authorisation AWS makes for a request.
#[derive(Debug, Clone)]
pub(crate) struct Check {
    pub action: String,
    pub resource: String,
    pub conditions: BTreeMap<String, String>,
    /// The policy of the KMS key the request acts on, which KMS asks before (and instead of) IAM.
    pub key_policy: Option<String>,
}

fn check(action: impl Into<String>, resource: impl Into<String>) -> Check {
    Check {
        action: action.into(),
        resource: resource.into(),
        conditions: BTreeMap::new(),
        key_policy: None,
    }
}

/// The region a request is signed for (its credential scope).
pub(crate) fn region_of(r: &Req<'_>) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("eu-west-3")
        .to_string()
}

/// What AWS checks for `r`; empty for what needs no permission (STS `GetCallerIdentity`). `boundary` is the
/// permissions boundary the request's IAM entity has now, if any.
pub(crate) fn checks(r: &Req<'_>, boundary: Option<&str>) -> Vec<Check> {
    let region = region_of(r);
    let params: BTreeMap<String, String> =
        url::form_urlencoded::parse(r.body).into_owned().collect();
    if let Some(action) = params.get("Action") {
        let mut checks = iam_checks(action, &params);
        for c in &mut checks {
            boundary_conditions(action, &params, boundary, c);
        }
        return checks;
    }
    if let Some(target) = r.headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target.rsplit('.').next().unwrap_or(target);
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let groups = format!("arn:aws:logs:{region}:{ACCOUNT}:log-group:");
        let resource = match (body["logGroupName"].as_str(), body["resourceArn"].as_str()) {
            (Some(name), _) => format!("{groups}{name}"),
            (_, Some(arn)) => arn.to_string(),
            _ => format!("{groups}*"),
        };
        let mut checks = vec![check(format!("logs:{op}"), resource.clone())];
        // "User … is not authorized to perform CreateLogGroup with Tags. An additional permission
        // "logs:TagResource" is required." (the answer DataDog/cloudformation-template#61 and
        // aws/aws-parallelcluster#4580 met): tagging on create is authorized as TagResource on the group.
        if op == "CreateLogGroup" && body["tags"].as_object().is_some_and(|t| !t.is_empty()) {
            checks.push(check("logs:TagResource", resource));
        }
        return checks;
    }
    let path = r.path;
    // CloudWatch's RPC v2 CBOR: `/service/{service}/operation/{op}`; metrics have no resource.
    if let Some(op) = path.strip_prefix("/service/GraniteServiceVersion20100801/operation/") {
        return vec![check(format!("cloudwatch:{op}"), "*")];
    }
    // API Gateway's first API, for the account settings: authorized by method on its path like the second.
    // Setting its CloudWatch role passes that role to API Gateway.
    if path == "/account" {
        let mut checks = vec![check(
            format!("apigateway:{}", r.method),
            format!("arn:aws:apigateway:{region}::/account"),
        )];
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        for op in body["patchOperations"].as_array().into_iter().flatten() {
            if let (Some("/cloudwatchRoleArn"), Some(role)) =
                (op["path"].as_str(), op["value"].as_str())
            {
                let mut c = check("iam:PassRole", role);
                c.conditions.insert(
                    "iam:PassedToService".into(),
                    "apigateway.amazonaws.com".into(),
                );
                checks.push(c);
            }
        }
        return checks;
    }
    if let Some(rest) = path.strip_prefix("/v2") {
        let rest = percent_encoding::percent_decode_str(rest).decode_utf8_lossy();
        return vec![check(
            format!("apigateway:{}", r.method),
            format!("arn:aws:apigateway:{region}::{rest}"),
        )];
    }
    lambda_checks(r, &region)
}

/// The condition keys IAM sets on the calls that can widen an identity
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html>):
/// `iam:PermissionsBoundary` is the boundary a create or `Put*PermissionsBoundary` sets, else the one the entity
/// has; `iam:PolicyARN` the policy an attach or detach names. A key with no value is absent, so a condition on it
/// does not match.
fn boundary_conditions(
    action: &str,
    p: &BTreeMap<String, String>,
    current: Option<&str>,
    c: &mut Check,
) {
    let boundary = match action {
        "CreateRole"
        | "CreateUser"
        | "PutRolePermissionsBoundary"
        | "PutUserPermissionsBoundary" => p.get("PermissionsBoundary").cloned(),
        "PutRolePolicy"
        | "PutUserPolicy"
        | "AttachRolePolicy"
        | "AttachUserPolicy"
        | "DeleteRolePolicy"
        | "DeleteUserPolicy"
        | "DetachRolePolicy"
        | "DetachUserPolicy"
        | "DeleteRolePermissionsBoundary"
        | "DeleteUserPermissionsBoundary" => current.map(str::to_string),
        _ => None,
    };
    if let Some(b) = boundary {
        c.conditions.insert("iam:PermissionsBoundary".into(), b);
    }
    if action.starts_with("Attach") {
        if let Some(arn) = p.get("PolicyArn") {
            c.conditions.insert("iam:PolicyARN".into(), arn.clone());
        }
    }
}

fn iam_checks(action: &str, p: &BTreeMap<String, String>) -> Vec<Check> {
    let arn = |kind: &str, key: &str| {
        format!(
            "arn:aws:iam::{ACCOUNT}:{kind}/{}",
            p.get(key).cloned().unwrap_or_default()
        )
    };
    let resource = match action {
        "GetCallerIdentity" => return vec![],
        "DetachRolePolicy" | "DetachUserPolicy" | "DetachGroupPolicy" => {
            let (kind, key) = match action {
                "DetachRolePolicy" => ("role", "RoleName"),
                "DetachUserPolicy" => ("user", "UserName"),
                _ => ("group", "GroupName"),
            };
            let mut c = check(format!("iam:{action}"), arn(kind, key));
            c.conditions.insert(
                "iam:PolicyARN".into(),
                p.get("PolicyArn").cloned().unwrap_or_default(),
            );
            return vec![c];
        }
        "CreatePolicy" => arn("policy", "PolicyName"),
        _ if p.contains_key("RoleName") => arn("role", "RoleName"),
        _ if p.contains_key("UserName") => arn("user", "UserName"),
        _ if p.contains_key("PolicyArn") => p["PolicyArn"].clone(),
        _ => "*".into(),
    };
    vec![check(format!("iam:{action}"), resource)]
}

fn lambda_checks(r: &Req<'_>, region: &str) -> Vec<Check> {
    let seg: Vec<String> = r
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let function = |name: &str| {
        let name = name.rsplit_once("function:").map_or(name, |(_, n)| n);
        format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}")
    };
    let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
    let m = r.method;
    let (action, resource) = match seg.as_slice() {
        ["2015-03-31", "functions"] if *m == Method::POST => (
            "CreateFunction",
            function(body["FunctionName"].as_str().unwrap_or_default()),
        ),
        ["2015-03-31", "functions", name] => (
            match *m {
                Method::GET => "GetFunction",
                Method::DELETE => "DeleteFunction",
                _ => "Unknown",
            },
            function(name),
        ),
        ["2015-03-31", "functions", name, "code"] => ("UpdateFunctionCode", function(name)),
        ["2015-03-31", "functions", name, "configuration"] => (
            if *m == Method::GET {
                "GetFunctionConfiguration"
            } else {
                "UpdateFunctionConfiguration"
            },
            function(name),
        ),
        ["2015-03-31", "functions", name, "policy"] => (
            if *m == Method::GET {
                "GetPolicy"
            } else {
                "AddPermission"
            },
            function(name),
        ),
        ["2015-03-31", "functions", name, "policy", _] => ("RemovePermission", function(name)),
        ["2017-10-31", "functions", name, "concurrency"] => (
            match *m {
                Method::PUT => "PutFunctionConcurrency",
                Method::DELETE => "DeleteFunctionConcurrency",
                _ => "GetFunctionConcurrency",
            },
            function(name),
        ),
        ["2017-03-31", "tags", arn] => (
            match *m {
                Method::GET => "ListTags",
                Method::POST => "TagResource",
                _ => "UntagResource",
            },
            function(arn),
        ),
        _ => ("Unknown", "*".to_string()),
    };
    let mut checks = vec![check(format!("lambda:{action}"), resource)];
    // Handing a role to a function is iam:PassRole on that role, for the Lambda service.
    if let Some(role) = body["Role"].as_str() {
        let mut c = check("iam:PassRole", role);
        c.conditions
            .insert("iam:PassedToService".into(), "lambda.amazonaws.com".into());
        checks.push(c);
    }
    checks
}

/// moto's evaluator in a long-lived Python process.
pub(crate) struct Evaluator {
    /// The identity's IAM policy; `None` for one IAM allows everything (only key policies then refuse).
    policy: Option<String>,
    /// The identity's permissions boundary, when it has one.
    boundary: Option<String>,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Evaluator {
    /// An identity that holds `policy` and is capped by `boundary`.
    pub(crate) fn bounded(policy: &Value, boundary: &Value) -> Evaluator {
        let mut e = Evaluator::start(policy);
        e.boundary = Some(boundary.to_string());
        e
    }

    pub(crate) fn start(policy: &Value) -> Evaluator {
        let mut e = Evaluator::unrestricted();
        e.policy = Some(policy.to_string());
        e
    }

    /// An identity IAM allows everything, as moto lets it: only key policies refuse it.
    pub(crate) fn unrestricted() -> Evaluator {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/iam_eval.py");
        let mut child = Command::new("python3")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with moto runs the IAM policy evaluator");
        Evaluator {
            policy: None,
            boundary: None,
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
        }
    }

    pub(crate) fn allows(&mut self, c: &Check) -> bool {
        if self.policy.is_none() && c.key_policy.is_none() {
            return true;
        }
        let q = json!({
            "policy": self.policy,
            "boundary": self.boundary,
            "action": c.action,
            "resource": c.resource,
            "conditions": c.conditions,
            "key_policy": c.key_policy,
            "principal": deployer(),
            "account": ACCOUNT,
        });
        writeln!(self.stdin, "{q}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim() == "true"
    }
}

impl Drop for Evaluator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// AWS's words for a denied request; `explain` turns them into wsdeploy's sentence.
pub(crate) fn denial(c: &Check) -> String {
    format!(
        "User: {} is not authorized to perform: {} on resource: {} because {}",
        deployer(),
        c.action,
        c.resource,
        if c.key_policy.is_some() {
            "no resource-based policy allows the action".to_string()
        } else {
            format!("no identity-based policy allows the {} action", c.action)
        }
    )
}
