//! `wsdeploy policy`: an identity holding exactly that policy (authorised by the AWS-behaviour layer with moto's
//! policy evaluator) runs a stage's whole life; without any one of its statements, a run fails with a sentence that
//! names the missing action.

use serde_json::Value;

use crate::deploy::{App, BASE};
use crate::support::moto::{sdk_config_at, Moto, ACCOUNT};
use crate::support::proxy::Proxy;
use crate::support::util::Run;

/// With the fan-out function, so that its life (and the backend's grant on it) runs under the policy too.
fn config(project: &str, credentials: &str) -> String {
    BASE.replace("project: chat", &format!("project: {project}"))
        .replace(
            "credentials: iam-user",
            &format!("credentials: {credentials}"),
        )
        + "fanout: true\n"
}

/// Cold `up`, the account's logging role set up (in an account that has none: the previous life's is removed),
/// rotation, `status` (metrics included), a switch to `credentials: policy` with the policy attached to a role of the user's own, then
/// `teardown`. The first run that fails, if any.
async fn life(app: &App, project: &str, conf: &aws_config::SdkConfig) -> Option<Run> {
    let admin = &aws_sdk_iam::Client::new(conf);
    forget_account_logging(conf).await;
    let steps: [&[&str]; 4] = [
        &["up"],
        &["up", "--setup-account-logging", "--yes"],
        &["up", "--rotate-credentials"],
        &["status"],
    ];
    for args in steps {
        let run = app.run(args).run();
        // `status` goes on without a part it may not read, and says so: that is a refusal too.
        if run.code != 0 || run.stdout.contains("Not read:") {
            return Some(run);
        }
    }
    app.config(&config(project, "policy"));
    let run = app.run(&["up"]).run();
    if run.code != 0 {
        return Some(run);
    }
    let outside = format!("{project}-own-backend-role");
    admin
        .create_role()
        .role_name(&outside)
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    admin
        .attach_role_policy()
        .role_name(&outside)
        .policy_arn(format!(
            "arn:aws:iam::{ACCOUNT}:policy/{project}-dev-manage-connections"
        ))
        .send()
        .await
        .unwrap();
    let run = app.run(&["teardown", "--yes"]).run();
    (run.code != 0).then_some(run)
}

/// The project's permissions boundary, created as an administrator does once (the deploy policy may not write it).
pub(crate) async fn create_boundary(app: &App, admin: &aws_config::SdkConfig) {
    let b = app
        .run(&["policy", "--boundary", "--output", "json"])
        .expect(0)
        .json();
    aws_sdk_iam::Client::new(admin)
        .create_policy()
        .policy_name(b["name"].as_str().unwrap())
        .policy_document(b["policy"].to_string())
        .send()
        .await
        .unwrap();
}

/// An account without API Gateway's CloudWatch role, as before a first `up --setup-account-logging`.
async fn forget_account_logging(conf: &aws_config::SdkConfig) {
    let role = "wsdeploy-apigateway-cloudwatch";
    let policy = "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";
    let iam = aws_sdk_iam::Client::new(conf);
    let _ = iam
        .detach_role_policy()
        .role_name(role)
        .policy_arn(policy)
        .send()
        .await;
    let _ = iam.delete_role().role_name(role).send().await;
    aws_sdk_apigateway::Client::new(conf)
        .update_account()
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/cloudwatchRoleArn")
                .value("")
                .build(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_policy_is_enough_and_every_statement_is_needed() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let admin = moto.sdk_config().await;
    let app = App::new(&proxy.endpoint, &config("full", "iam-user"));
    let printed = app.run(&["policy", "--output", "json"]).expect(0).json();
    assert_eq!(
        printed["account"], ACCOUNT,
        "the account comes from the credentials"
    );
    let policy = printed["policy"].clone();

    create_boundary(&app, &admin).await;
    proxy.layer().enforce(Some(&policy));
    if let Some(run) = life(&app, "full", &admin).await {
        run.check(false, "the printed policy is not enough");
    }
    let hits = proxy.layer().hits();
    assert!(
        !hits.contains_key("access denied by the identity's policy"),
        "{hits:?}"
    );

    let statements = policy["Statement"].as_array().unwrap();
    for i in 0..statements.len() {
        let project = format!("less{i}");
        let app = App::new(&proxy.endpoint, &config(&project, "iam-user"));
        // The policy names the project's resources: this project's, less one statement.
        let mut less = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
        let dropped = less["Statement"].as_array_mut().unwrap().remove(i);
        let sid = dropped["Sid"].as_str().unwrap();
        if dropped["Effect"] == "Deny" {
            // Denies take nothing a life needs away: `escalation` shows what each refuses.
            continue;
        }
        proxy.layer().enforce(None);
        create_boundary(&app, &admin).await;
        proxy.layer().enforce(Some(&less));
        let Some(run) = life(&app, &project, &admin).await else {
            panic!("without the statement {sid}, a stage's whole life still ran");
        };
        let actions: Vec<&str> = match &dropped["Action"] {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            a => vec![a.as_str().unwrap()],
        };
        let named = actions.iter().find(|a| {
            let said = format!("not authorized to perform: {a} ");
            run.stderr.contains(&said) || run.stdout.contains(&said)
        });
        let refused = run.code == 1 || run.stdout.contains("Not read:");
        run.check(
            refused && named.is_some(),
            &format!("without {sid}: a clear sentence naming one of {actions:?}"),
        );
        eprintln!("without {sid}: fails naming {}", named.unwrap());
    }
}

/// The stage key is the stage's by its own key policy, which alone lets the deploy identity change it: a key of
/// someone else's that carries the stage's description and tags is neither adopted by `up` nor deleted by
/// `teardown`, and the deploy identity can neither tag it nor schedule its deletion. The first `up` as the deploy
/// identity meets KMS applying the new key's policy late (the layer refuses what only that policy allows, once)
/// and waits it out. And no identity reads the signing secret with the key outside Lambda, whatever IAM gives it.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_stage_key_is_the_stages_and_only_its_deployers_manage_it() {
    use aws_sdk_kms::types::{KeyState, Tag};
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, &config("quick", "iam-user"));
    create_boundary(&app, &moto.sdk_config().await).await;
    // Another team's key, made through the layer by another identity (so the layer plays its policy: the default).
    let other = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&proxy.endpoint)
        .region(aws_config::Region::new(crate::support::moto::REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "other-team",
            "other-team",
            None,
            None,
            "tests",
        ))
        .load()
        .await;
    let tag = |k: &str, v: &str| Tag::builder().tag_key(k).tag_value(v).build().unwrap();
    let theirs = aws_sdk_kms::Client::new(&other)
        .create_key()
        .description("wsdeploy quick-dev: encrypts the environment of the stage's Lambda functions")
        .tags(tag("wsdeploy:project", "quick"))
        .tags(tag("wsdeploy:stage", "dev"))
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let admin = aws_sdk_kms::Client::new(&moto.sdk_config().await);
    let meta = |id: String| {
        let admin = admin.clone();
        async move {
            admin
                .describe_key()
                .key_id(id)
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .clone()
        }
    };
    let state = |id: String| {
        let meta = meta(id);
        async move { meta.await.key_state().cloned() }
    };
    let policy = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
    proxy.layer().enforce(Some(&policy));
    let up = app.run(&["up"]).expect(0);
    let hits = proxy.layer().hits();
    up.check(
        hits.contains_key("KMS key's new policy not yet applied everywhere")
            && !hits.contains_key("access denied by the identity's policy"),
        &format!("the late policy was met and waited out, and nothing else was refused: {hits:?}"),
    );
    let ours = meta("alias/wsdeploy/quick-dev".into())
        .await
        .key_id()
        .to_string();
    assert_ne!(ours, theirs, "the look-alike key was adopted");

    let me = aws_sdk_kms::Client::new(&sdk_config_at(&proxy.endpoint).await);
    let denied = |what: &str, e: Option<String>| {
        let e = e.unwrap_or_else(|| panic!("{what}: allowed, and it must not be"));
        assert!(e.contains("AccessDenied"), "{what}: {e}");
    };
    denied(
        "TagResource on another team's key",
        me.tag_resource()
            .key_id(&theirs)
            .tags(tag("owner", "attacker"))
            .send()
            .await
            .err()
            .map(|e| format!("{e:?}")),
    );
    denied(
        "ScheduleKeyDeletion on another team's key",
        me.schedule_key_deletion()
            .key_id(&theirs)
            .send()
            .await
            .err()
            .map(|e| format!("{e:?}")),
    );
    // An identity IAM lets do anything still cannot decrypt with the stage key outside Lambda.
    proxy.layer().enforce(None);
    denied(
        "Decrypt with the stage key, outside Lambda, as an identity allowed everything by IAM",
        me.decrypt()
            .key_id(&ours)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(b"ciphertext".to_vec()))
            .send()
            .await
            .err()
            .map(|e| format!("{e:?}")),
    );

    proxy.layer().enforce(Some(&policy));
    app.run(&["teardown", "--yes"]).expect(0);
    assert_eq!(state(theirs.clone()).await, Some(KeyState::Enabled));
    assert_eq!(state(ours).await, Some(KeyState::PendingDeletion));
    let left: Vec<String> = crate::deploy::leftovers(&moto.sdk_config().await, "quick-dev")
        .await
        .into_iter()
        .filter(|l| !l.contains(&theirs))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// What parliament finds in `policies` ((name, document)), as (policy, issue, detail).
fn lint(policies: &[(String, Value)]) -> Vec<(String, String, String)> {
    let input: Vec<Value> = policies
        .iter()
        .map(|(name, document)| serde_json::json!({ "name": name, "document": document }))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/iam_lint.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with parliament (scripts/test installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "iam_lint.py failed");
    let found: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    found
        .iter()
        .map(|f| {
            let s = |k: &str| {
                f[k].as_str()
                    .map_or_else(|| f[k].to_string(), str::to_string)
            };
            (s("policy"), s("issue"), s("detail"))
        })
        .collect()
}

/// Every identity policy wsdeploy prints or writes passes parliament, the IAM linter, but for the findings listed
/// here with why they stand. (Trust policies are not identity policies, which is all parliament reads; the plan
/// checks the account role's, and `deploy`'s tests the functions' role's.)
#[tokio::test(flavor = "multi_thread")]
async fn every_policy_passes_the_iam_linter() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let two_stages = BASE.replace(
        "tags: { team: web }\n",
        "tags: { team: web }\nstages:\n  dev: {}\n  prod:\n    domain: { name: ws.example.com }\n",
    );
    let app = App::new(&proxy.endpoint, &two_stages);
    let mut policies: Vec<(String, Value)> = vec![];
    let printed = app.run(&["policy", "--output", "json"]).expect(0).json();
    for p in printed["policies"].as_array().unwrap() {
        assert!(p["characters"].as_u64().unwrap() <= 6144, "{p}");
        policies.push((p["name"].as_str().unwrap().into(), p["document"].clone()));
    }
    let boundary = app
        .run(&["policy", "--boundary", "--output", "json"])
        .expect(0)
        .json();
    policies.push(("boundary".into(), boundary["policy"].clone()));
    app.config(BASE);
    app.run(&["up"]).expect(0);
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    let decode = crate::deploy::decode;
    let role = iam
        .get_role_policy()
        .role_name("chat-dev-lambda")
        .policy_name("chat-dev-logs")
        .send()
        .await
        .unwrap();
    policies.push((
        "role chat-dev-lambda".into(),
        decode(role.policy_document()),
    ));
    let user = iam
        .get_user_policy()
        .user_name("chat-dev-backend")
        .policy_name("chat-dev-manage-connections")
        .send()
        .await
        .unwrap();
    policies.push((
        "user chat-dev-backend".into(),
        decode(user.policy_document()),
    ));
    app.config(&config("chat", "policy"));
    app.run(&["up"]).expect(0);
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/chat-dev-manage-connections");
    policies.push((
        "managed chat-dev-manage-connections".into(),
        crate::deploy::first_version(&iam, &arn).await,
    ));

    // (issue, an action the finding names): why each stands.
    let accepted = [
        // Scoped by `iam:PolicyARN` to the stage's managed policy: it is detached from whatever the user attached
        // it to, which wsdeploy cannot know.
        ("RESOURCE_STAR", "iam:DetachRolePolicy"),
        // API Gateway's account role pushes every API's logs (AWS's own managed policy for it is on `*`); the
        // boundary gives it this slice only as that role (`aws:PrincipalArn`).
        ("RESOURCE_STAR", "logs:PutLogEvents"),
        // An alias's create and delete are authorised on the alias by IAM and on the key by the key's policy
        // (<https://docs.aws.amazon.com/kms/latest/developerguide/alias-access.html>); the stage key's policy grants
        // its half to the deployers, so the deploy policy names the alias alone and no key.
        ("RESOURCE_MISMATCH", "kms:CreateAlias"),
    ];
    let findings = lint(&policies);
    let unexplained: Vec<_> = findings
        .iter()
        .filter(|(_, issue, detail)| {
            !accepted
                .iter()
                .any(|(i, action)| issue == i && detail.contains(action))
        })
        .collect();
    eprintln!(
        "linted {} policies; findings: {findings:#?}",
        policies.len()
    );
    assert!(unexplained.is_empty(), "parliament: {unexplained:#?}");
}
