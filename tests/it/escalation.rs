//! An identity holding exactly the printed deploy policy (a compromised CI job, a stolen OIDC token) tries every
//! way it had to become account admin. Each is refused by the AWS-behaviour layer's IAM evaluator, or succeeds only
//! where the project's permissions boundary caps the result; the effective permissions of what it can make
//! (identity policy ∩ boundary) are computed and checked.

use aws_sdk_iam::Client;
use serde_json::Value;

use crate::deploy::{App, BASE};
use crate::support::iam_enforce::{Check, Evaluator};
use crate::support::moto::{sdk_config_at, Moto, ACCOUNT, REGION};
use crate::support::proxy::Proxy;

const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const ATTACKER_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::666666666666:root"},"Action":"sts:AssumeRole"}]}"#;

/// The call was refused with AWS's AccessDenied (not some other failure).
fn refused<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) {
    match r {
        Ok(_) => panic!("{what}: allowed, and it must not be"),
        Err(e) => {
            let text = format!("{e:?}");
            assert!(text.contains("AccessDenied"), "{what}: {text}");
            eprintln!("refused: {what}");
        }
    }
}

fn allowed<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) {
    if let Err(e) = r {
        panic!("{what}: {e:?}");
    }
    eprintln!("allowed (capped by the boundary): {what}");
}

fn probe(action: &str, resource: &str, conditions: &[(&str, &str)]) -> Check {
    Check {
        action: action.into(),
        resource: resource.into(),
        conditions: conditions
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect(),
        key_policy: None,
    }
}

/// What an identity holding `*:*` under `boundary` may do, as principal `principal`, among a set of probes that
/// an attacker would want: (probe, allowed).
fn effective(boundary: &Value, principal: &str) -> Vec<(String, bool)> {
    let admin: Value = serde_json::from_str(ADMIN).unwrap();
    let mut e = Evaluator::bounded(&admin, boundary);
    let p = [("aws:PrincipalArn", principal)];
    let lambda = format!("lambda.{REGION}.amazonaws.com");
    let probes = [
        probe("iam:CreateUser", "*", &p),
        probe("iam:AttachRolePolicy", "*", &p),
        probe("sts:AssumeRole", "*", &p),
        probe("s3:GetObject", "arn:aws:s3:::payroll/2026.csv", &p),
        probe("lambda:UpdateFunctionCode", "*", &p),
        probe(
            "kms:Decrypt",
            &format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/other"),
            &p,
        ),
        probe(
            "kms:Decrypt",
            &format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/k"),
            &[("aws:PrincipalArn", principal), ("kms:ViaService", &lambda)],
        ),
        probe(
            "logs:GetLogEvents",
            &format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/rds/payroll:*"),
            &p,
        ),
        probe(
            "logs:PutLogEvents",
            &format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/esc-dev-connect:*"),
            &p,
        ),
        probe(
            "execute-api:ManageConnections",
            &format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/dev/POST/@connections/x"),
            &p,
        ),
    ];
    probes
        .iter()
        .map(|c| {
            let via = c
                .conditions
                .get("kms:ViaService")
                .map(|v| format!(" via {v}"))
                .unwrap_or_default();
            (format!("{} on {}{via}", c.action, c.resource), e.allows(c))
        })
        .collect()
}

fn granted(list: &[(String, bool)]) -> Vec<String> {
    list.iter()
        .filter(|(_, ok)| *ok)
        .map(|(p, _)| p.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_identity_cannot_become_more_than_it_needs() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let admin_conf = moto.sdk_config().await;
    let app = App::new(
        &proxy.endpoint,
        &BASE.replace("project: chat", "project: esc"),
    );
    crate::policy::create_boundary(&app, &admin_conf).await;
    let policy = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
    let boundary = app
        .run(&["policy", "--boundary", "--output", "json"])
        .expect(0)
        .json()["policy"]
        .clone();
    proxy.layer().enforce(Some(&policy));
    app.run(&["up"]).expect(0);
    let me = Client::new(&sdk_config_at(&proxy.endpoint).await);
    let arn = |kind: &str, name: &str| format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}");
    let b_arn = arn("policy", "esc-wsdeploy-boundary");

    // 1. The backend user: a `*:*` policy and a key are allowed, and the boundary caps them.
    allowed(
        "PutUserPolicy *:* on esc-dev-backend",
        me.put_user_policy()
            .user_name("esc-dev-backend")
            .policy_name("x")
            .policy_document(ADMIN)
            .send()
            .await,
    );
    allowed(
        "CreateAccessKey for esc-dev-backend",
        me.create_access_key()
            .user_name("esc-dev-backend")
            .send()
            .await,
    );
    refused(
        "DeleteUserPermissionsBoundary on esc-dev-backend",
        me.delete_user_permissions_boundary()
            .user_name("esc-dev-backend")
            .send()
            .await,
    );
    refused(
        "PutUserPermissionsBoundary AdministratorAccess on esc-dev-backend",
        me.put_user_permissions_boundary()
            .user_name("esc-dev-backend")
            .permissions_boundary(ADMIN_POLICY)
            .send()
            .await,
    );
    refused(
        "AttachUserPolicy AdministratorAccess on esc-dev-backend",
        me.attach_user_policy()
            .user_name("esc-dev-backend")
            .policy_arn(ADMIN_POLICY)
            .send()
            .await,
    );
    refused(
        "CreateUser esc-dev-backend without the boundary",
        me.create_user().user_name("esc-dev-backend").send().await,
    );

    // 2. The functions' role: trusting oneself and `*:*` are allowed, and capped; the boundary stays.
    allowed(
        "UpdateAssumeRolePolicy to trust an outsider on esc-dev-lambda",
        me.update_assume_role_policy()
            .role_name("esc-dev-lambda")
            .policy_document(ATTACKER_TRUST)
            .send()
            .await,
    );
    allowed(
        "PutRolePolicy *:* on esc-dev-lambda",
        me.put_role_policy()
            .role_name("esc-dev-lambda")
            .policy_name("x")
            .policy_document(ADMIN)
            .send()
            .await,
    );
    refused(
        "DeleteRolePermissionsBoundary on esc-dev-lambda",
        me.delete_role_permissions_boundary()
            .role_name("esc-dev-lambda")
            .send()
            .await,
    );
    refused(
        "PutRolePermissionsBoundary AdministratorAccess on esc-dev-lambda",
        me.put_role_permissions_boundary()
            .role_name("esc-dev-lambda")
            .permissions_boundary(ADMIN_POLICY)
            .send()
            .await,
    );
    refused(
        "AttachRolePolicy AdministratorAccess on esc-dev-lambda",
        me.attach_role_policy()
            .role_name("esc-dev-lambda")
            .policy_arn(ADMIN_POLICY)
            .send()
            .await,
    );

    // 3. API Gateway's account role: not without the boundary, and AdministratorAccess never.
    let logging = "wsdeploy-apigateway-cloudwatch";
    refused(
        "CreateRole wsdeploy-apigateway-cloudwatch without the boundary",
        me.create_role()
            .role_name(logging)
            .assume_role_policy_document(ATTACKER_TRUST)
            .send()
            .await,
    );
    allowed(
        "CreateRole wsdeploy-apigateway-cloudwatch trusting an outsider, with the boundary",
        me.create_role()
            .role_name(logging)
            .assume_role_policy_document(ATTACKER_TRUST)
            .permissions_boundary(&b_arn)
            .send()
            .await,
    );
    refused(
        "AttachRolePolicy AdministratorAccess on wsdeploy-apigateway-cloudwatch",
        me.attach_role_policy()
            .role_name(logging)
            .policy_arn(ADMIN_POLICY)
            .send()
            .await,
    );
    // ... and `up` does not adopt a role that trusts someone else.
    let stop = app
        .run(&["up", "--setup-account-logging", "--yes"])
        .expect(1);
    stop.check(
        stop.stderr.contains("the IAM role wsdeploy-apigateway-cloudwatch exists and its trust policy also lets AWS \"arn:aws:iam::666666666666:root\" assume it")
            && stop.stderr.contains("wsdeploy will not set a role in API Gateway's account settings that others may assume"),
        "up names the role and what is wrong with it",
    );

    // 4. The managed policy of `credentials: policy`, attached to the backend's own roles: never rewritten.
    app.config(
        &BASE
            .replace("project: chat", "project: esc")
            .replace("credentials: iam-user", "credentials: policy"),
    );
    app.run(&["up"]).expect(0);
    let managed = arn("policy", "esc-dev-manage-connections");
    refused(
        "CreatePolicyVersion *:* on esc-dev-manage-connections",
        me.create_policy_version()
            .policy_arn(&managed)
            .policy_document(ADMIN)
            .set_as_default(true)
            .send()
            .await,
    );
    refused(
        "SetDefaultPolicyVersion on esc-dev-manage-connections",
        me.set_default_policy_version()
            .policy_arn(&managed)
            .version_id("v1")
            .send()
            .await,
    );

    // 5. The boundary itself.
    refused(
        "CreatePolicyVersion *:* on the boundary",
        me.create_policy_version()
            .policy_arn(&b_arn)
            .policy_document(ADMIN)
            .set_as_default(true)
            .send()
            .await,
    );
    refused(
        "DeletePolicy on the boundary",
        me.delete_policy().policy_arn(&b_arn).send().await,
    );

    // What the roles and the user it could change may do, at most.
    let user = effective(&boundary, &arn("user", "esc-dev-backend"));
    let role = effective(&boundary, &arn("role", "esc-dev-lambda"));
    let logging_role = effective(&boundary, &arn("role", logging));
    for (who, list) in [
        ("esc-dev-backend", &user),
        ("esc-dev-lambda", &role),
        (logging, &logging_role),
    ] {
        eprintln!(
            "effective permissions of {who} holding *:* under the boundary: {:#?}",
            granted(list)
        );
    }
    let connections = format!(
        "execute-api:ManageConnections on arn:aws:execute-api:{REGION}:{ACCOUNT}:abc123/dev/POST/@connections/x"
    );
    let own_logs = format!(
        "logs:PutLogEvents on arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/esc-dev-connect:*"
    );
    let decrypt = format!(
        "kms:Decrypt on arn:aws:kms:{REGION}:{ACCOUNT}:key/k via lambda.{REGION}.amazonaws.com"
    );
    assert_eq!(
        granted(&user),
        vec![decrypt.clone(), own_logs.clone(), connections.clone()]
    );
    assert_eq!(granted(&role), granted(&user));
    let read_logs = format!(
        "logs:GetLogEvents on arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/rds/payroll:*"
    );
    assert_eq!(
        granted(&logging_role),
        vec![decrypt, read_logs, own_logs, connections],
        "API Gateway's role alone pushes (and reads) logs, as AWS's own policy for it does"
    );

    // The refusals come from the boundary conditions: without them the same requests are allowed.
    let mut open = policy.clone();
    for s in open["Statement"].as_array_mut().unwrap() {
        if s["Condition"]["ArnEquals"]
            .get("iam:PermissionsBoundary")
            .is_some()
        {
            s.as_object_mut().unwrap().remove("Condition");
        }
    }
    let mut loose = Evaluator::start(&open);
    let mut strict = Evaluator::start(&policy);
    for c in [
        probe("iam:CreateRole", &arn("role", "esc-dev-lambda"), &[]),
        probe("iam:CreateUser", &arn("user", "esc-dev-backend"), &[]),
        probe(
            "iam:PutRolePermissionsBoundary",
            &arn("role", "esc-dev-lambda"),
            &[("iam:PermissionsBoundary", ADMIN_POLICY)],
        ),
        probe(
            "iam:AttachRolePolicy",
            &arn("role", logging),
            &[("iam:PolicyARN", ADMIN_POLICY)],
        ),
    ] {
        assert!(loose.allows(&c) && !strict.allows(&c), "{c:?}");
    }
}

/// The deploy policy creates only the key wsdeploy makes: not an asymmetric, imported, multi-region one, nor one
/// that skips KMS's lockout check (a key no one could manage again).
#[test]
fn only_the_stage_key_kind_can_be_created() {
    let app = App::new("http://127.0.0.1:9", BASE);
    let policy = app
        .run(&["policy", "--account", ACCOUNT, "--output", "json"])
        .expect(0)
        .json()["policy"]
        .clone();
    let mut e = Evaluator::start(&policy);
    let create = |extra: &[(&str, &str)]| {
        let defaults = [
            ("kms:KeySpec", "SYMMETRIC_DEFAULT"),
            ("kms:KeyOrigin", "AWS_KMS"),
            ("kms:KeyUsage", "ENCRYPT_DECRYPT"),
            ("kms:MultiRegion", "false"),
            ("kms:BypassPolicyLockoutSafetyCheck", "false"),
        ];
        let mut all: Vec<(&str, &str)> = vec![];
        for (k, v) in defaults {
            all.push((
                k,
                extra.iter().find(|(x, _)| *x == k).map_or(v, |(_, v)| *v),
            ));
        }
        probe("kms:CreateKey", "*", &all)
    };
    assert!(e.allows(&create(&[])));
    for bad in [
        ("kms:KeySpec", "RSA_4096"),
        ("kms:KeyOrigin", "EXTERNAL"),
        ("kms:MultiRegion", "true"),
        ("kms:BypassPolicyLockoutSafetyCheck", "true"),
    ] {
        assert!(!e.allows(&create(&[bad])), "{bad:?}");
    }
}
