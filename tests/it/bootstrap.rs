//! `wsdeploy bootstrap` on moto: what it creates is read back with the SDK, a second run changes nothing, the role
//! it makes can deploy, and `--teardown` waits for the stages, then leaves nothing.

use serde_json::Value;

use crate::deploy::{App, BASE};
use crate::support::moto::{Moto, ACCOUNT};
use crate::support::proxy::Proxy;

fn decode(doc: &str) -> Value {
    crate::deploy::decode(doc)
}

/// The administrator's command, unattended, as a machine reads it.
const BOOTSTRAP: [&str; 6] = [
    "bootstrap",
    "--github",
    "acme/chat:prod",
    "--yes",
    "--output",
    "json",
];

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_sets_up_the_boundary_and_a_github_deploy_role_and_takes_them_down() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    let app = App::new(&proxy.endpoint, BASE);

    // Unattended without --yes: nothing changes, and the sentence says why.
    let asked = app
        .run(&["bootstrap", "--github", "acme/chat:prod"])
        .expect(2);
    asked.check(asked.stderr.contains("pass --yes"), "asks for --yes");
    let bad = app
        .run(&["bootstrap", "--github", "acme", "--yes"])
        .expect(2);
    bad.check(bad.stderr.contains("OWNER/REPO"), "says the form");
    assert_eq!(proxy.take_writes(), Vec::<String>::new());

    let out = app.run(&BOOTSTRAP).expect(0).json();
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/chat-wsdeploy-deploy");
    assert_eq!(out["role_arn"], role_arn.as_str());
    assert_eq!(
        out["next"],
        format!("gh variable set AWS_DEPLOY_ROLE_ARN --repo acme/chat --body {role_arn}")
    );

    // The boundary is the one `policy --boundary` prints.
    let boundary = app
        .run(&["policy", "--boundary", "--output", "json"])
        .expect(0)
        .json();
    let b_arn = format!("arn:aws:iam::{ACCOUNT}:policy/chat-wsdeploy-boundary");
    assert_eq!(
        crate::deploy::first_version(&iam, &b_arn).await,
        boundary["policy"]
    );

    // GitHub's provider, for AWS's audience.
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(format!(
            "arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);

    // The role: only that repository's environment, only with AWS's audience.
    let role = iam
        .get_role()
        .role_name("chat-wsdeploy-deploy")
        .send()
        .await
        .unwrap();
    let trust = decode(role.role().unwrap().assume_role_policy_document().unwrap());
    let st = &trust["Statement"][0];
    assert_eq!(st["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        st["Principal"]["Federated"],
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com")
    );
    assert_eq!(
        st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        "repo:acme/chat:environment:prod"
    );
    assert_eq!(
        st["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"],
        "sts.amazonaws.com"
    );

    // ... holding exactly the deploy policy, cut as `policy` cuts it.
    let printed = app.run(&["policy", "--output", "json"]).expect(0).json();
    let attached = iam
        .list_attached_role_policies()
        .role_name("chat-wsdeploy-deploy")
        .send()
        .await
        .unwrap();
    let mut held = vec![];
    for p in attached.attached_policies() {
        held.push(crate::deploy::first_version(&iam, p.policy_arn().unwrap()).await);
    }
    let wanted: Vec<Value> = printed["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["document"].clone())
        .collect();
    assert_eq!(held, wanted);

    // A second run changes nothing.
    proxy.take();
    let again = app.run(&BOOTSTRAP).expect(0).json();
    assert_eq!(again["changes"], serde_json::json!([]));
    assert_eq!(proxy.take_writes(), Vec::<String>::new());

    // An identity holding the role's policies deploys (the boundary exists, so nothing needs an administrator).
    let mut whole = vec![];
    for p in &wanted {
        whole.extend(p["Statement"].as_array().unwrap().iter().cloned());
    }
    proxy.layer().enforce(Some(
        &serde_json::json!({ "Version": "2012-10-17", "Statement": whole }),
    ));
    app.run(&["up"]).expect(0);
    proxy.layer().enforce(None);

    // Not while a stage carries the boundary; then everything goes.
    let early = app
        .run(&[
            "bootstrap",
            "--github",
            "acme/chat:prod",
            "--teardown",
            "--yes",
        ])
        .expect(1);
    early.check(
        early
            .stderr
            .contains("still caps role chat-dev-lambda, user chat-dev-backend"),
        "names what still uses the boundary",
    );
    app.run(&["teardown", "--yes"]).expect(0);
    app.run(&[
        "bootstrap",
        "--github",
        "acme/chat:prod",
        "--teardown",
        "--yes",
    ])
    .expect(0);
    assert!(iam
        .get_role()
        .role_name("chat-wsdeploy-deploy")
        .send()
        .await
        .is_err());
    assert!(iam.get_policy().policy_arn(&b_arn).send().await.is_err());
    let providers = iam.list_open_id_connect_providers().send().await.unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
    let left: Vec<String> = iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .send()
        .await
        .unwrap()
        .policies()
        .iter()
        .filter_map(|p| p.policy_name().map(str::to_string))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}
