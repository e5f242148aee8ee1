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

/// Cold `up`, no-op `up`, rotation, a switch to `credentials: policy` with the policy attached to a role of the
/// user's own, then `teardown`. The first run that fails, if any.
async fn life(app: &App, project: &str, admin: &aws_sdk_iam::Client) -> Option<Run> {
    let steps: [&[&str]; 3] = [&["up"], &["up"], &["up", "--rotate-credentials"]];
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

#[tokio::test(flavor = "multi_thread")]
async fn the_deploy_policy_is_enough_and_every_statement_is_needed() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let admin = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    let app = App::new(&proxy.endpoint, &config("full", "iam-user"));
    let printed = app.run(&["policy", "--output", "json"]).expect(0).json();
    assert_eq!(
        printed["account"], ACCOUNT,
        "the account comes from the credentials"
    );
    let policy = printed["policy"].clone();

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
