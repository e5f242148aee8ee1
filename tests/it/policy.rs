//! `wsdeploy policy`: an identity holding exactly that policy (authorised by the AWS-behaviour layer with moto's
//! policy evaluator) runs a stage's whole life; without any one of its statements, a run fails with a sentence that
//! names the missing action.

use serde_json::Value;

use crate::deploy::{App, BASE};
use crate::support::moto::{Moto, ACCOUNT};
use crate::support::proxy::Proxy;
use crate::support::util::Run;

fn config(project: &str, credentials: &str) -> String {
    BASE.replace("project: chat", &format!("project: {project}"))
        .replace(
            "credentials: iam-user",
            &format!("credentials: {credentials}"),
        )
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
        if run.code != 0 {
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
            run.stderr
                .contains(&format!("not authorized to perform: {a} "))
        });
        run.check(
            run.code == 1 && named.is_some(),
            &format!("without {sid}: a clear sentence naming one of {actions:?}"),
        );
        eprintln!("without {sid}: fails naming {}", named.unwrap());
    }
}

/// KMS honours a new key's tags for authorization only minutes after they are set, and the deploy policy lets the
/// deploy identity delete the stage key only while it carries the stage's tags: a `teardown` right after the first
/// `up` (a CI job's ephemeral stage) is refused at first, waits, and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_teardown_right_after_the_first_up_waits_for_kms_to_honour_the_keys_tags() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.layer().set(crate::support::aws_behaviour::Behaviour {
        kms: crate::support::aws_kms::Timings {
            new_key: Some(std::time::Duration::from_millis(100)),
            tag_authz: Some(std::time::Duration::from_secs(10)),
        },
        ..crate::support::aws_behaviour::Behaviour::aws()
    });
    let app = App::new(&proxy.endpoint, &config("quick", "iam-user"));
    create_boundary(&app, &moto.sdk_config().await).await;
    let policy = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
    proxy.layer().enforce(Some(&policy));
    // The suite's runs cap the wait at 5 s; this one allows KMS's own bound to play out.
    app.run(&["up"])
        .env("WSDEPLOY_KMS_TAG_WAIT_SECS", "300")
        .expect(0);
    let down = app
        .run(&["teardown", "--yes"])
        .env("WSDEPLOY_KMS_TAG_WAIT_SECS", "300")
        .expect(0);
    let hits = proxy.layer().hits();
    down.check(
        hits.contains_key("KMS key's tags not yet honoured by authorization")
            && !hits.contains_key("access denied by the identity's policy"),
        &format!("the refusal was met and waited out: {hits:?}"),
    );
    let conf = moto.sdk_config().await;
    assert_eq!(
        crate::deploy::leftovers(&conf, "quick-dev").await,
        Vec::<String>::new()
    );
}
