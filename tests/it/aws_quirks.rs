//! What real AWS does and moto does not, played by the AWS-behaviour layer: first that the layer really plays it
//! (the same calls through plain moto succeed), then that `up` meets each behaviour.

use std::time::Duration;

use aws_sdk_iam::types::StatusType;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::deploy::{App, BASE};
use crate::support::aws_behaviour::Behaviour;
use crate::support::moto::{Moto, ACCOUNT, REGION};
use crate::support::proxy::Proxy;
use crate::support::util::env_file;

async fn sdk(endpoint: &str, key: (&str, &str)) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key.0, key.1, None, None, "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

/// The AWS error code of a call's result; `None` when it succeeded.
fn code<T, E: ProvideErrorMetadata>(r: &Result<T, E>) -> Option<&str> {
    r.as_ref().err().and_then(|e| e.code())
}

fn zip() -> Vec<u8> {
    let mut out = std::io::Cursor::new(vec![]);
    let mut z = zip::ZipWriter::new(&mut out);
    z.start_file::<_, ()>("bootstrap", zip::write::FileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut z, b"#!/bin/sh\n").unwrap();
    z.finish().unwrap();
    out.into_inner()
}

/// moto behind the layer, with BASE deployed on it once. Bind `moto` when destructuring: dropping it stops moto.
struct Deployed {
    moto: Moto,
    proxy: Proxy,
    app: App,
    /// `up --output json` of the first deployment.
    first: serde_json::Value,
}

async fn deployed() -> Deployed {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let first = app.run(&["up", "--output", "json"]).expect(0).json();
    Deployed {
        moto,
        proxy,
        app,
        first,
    }
}

/// The same calls through plain moto and through the layer: each behaviour shows only through the layer.
#[tokio::test(flavor = "multi_thread")]
async fn the_layer_plays_what_moto_does_not() {
    let moto = Moto::start();
    for aws in [false, true] {
        let b = if aws {
            Behaviour::aws()
        } else {
            Behaviour::off()
        };
        let proxy = Proxy::with(&moto.endpoint, b).await;
        let conf = sdk(&proxy.endpoint, ("testing", "testing")).await;
        let tag = if aws { "aws" } else { "moto" };

        // API Gateway: two writes on one API at once.
        let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
        let api = apigw
            .create_api()
            .name(format!("layer-{tag}"))
            .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
            .route_selection_expression("$request.body.action")
            .send()
            .await
            .unwrap();
        let id = api.api_id().unwrap();
        let route = |key: &'static str| apigw.create_route().api_id(id).route_key(key).send();
        let (a, b) = tokio::join!(route("a"), route("b"));
        let conflicts: Vec<String> = [a.err(), b.err()]
            .into_iter()
            .flatten()
            .map(|e| format!("{}: {}", e.code().unwrap_or("?"), e.message().unwrap_or("")))
            .collect();
        if aws {
            assert_eq!(
                conflicts,
                vec!["ConflictException: Unable to complete operation due to concurrent modification. Please try again later."]
            );
        } else {
            assert!(
                conflicts.is_empty(),
                "moto serialises nothing: {conflicts:?}"
            );
        }
        // "Already exists" is a ConflictException too.
        let stage = || apigw.create_stage().api_id(id).stage_name("dev").send();
        stage().await.unwrap();
        let again = stage().await;
        assert_eq!(
            code(&again),
            aws.then_some("ConflictException"),
            "{tag}: a second CreateStage"
        );

        // IAM: a role that Lambda cannot assume yet; Lambda: Pending after create, conflicts meanwhile.
        let iam = aws_sdk_iam::Client::new(&conf);
        let role = format!("layer-{tag}");
        iam.create_role()
            .role_name(&role)
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
        let lambda = aws_sdk_lambda::Client::new(&conf);
        let create = || {
            lambda
                .create_function()
                .function_name(format!("layer-{tag}"))
                .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
                .handler("bootstrap")
                .tags("team", "web")
                .role(format!("arn:aws:iam::{ACCOUNT}:role/{role}"))
                .code(
                    aws_sdk_lambda::types::FunctionCode::builder()
                        .zip_file(zip().into())
                        .build(),
                )
                .send()
        };
        let first = create().await;
        if aws {
            let e = first.unwrap_err();
            assert_eq!(e.code(), Some("InvalidParameterValueException"));
            assert!(e.message().unwrap().contains("cannot be assumed by Lambda"));
            tokio::time::sleep(Duration::from_millis(500)).await;
            create().await.unwrap();
        } else {
            first.unwrap();
        }
        let got = lambda
            .get_function()
            .function_name(format!("layer-{tag}"))
            .send()
            .await
            .unwrap();
        let state = got
            .configuration()
            .unwrap()
            .state()
            .unwrap()
            .as_str()
            .to_string();
        assert_eq!(state, if aws { "Pending" } else { "Active" });
        let permission = lambda
            .add_permission()
            .function_name(format!("layer-{tag}"))
            .statement_id("s")
            .action("lambda:InvokeFunction")
            .principal("apigateway.amazonaws.com")
            .send()
            .await;
        assert_eq!(
            code(&permission),
            aws.then_some("ResourceConflictException"),
            "{tag}: AddPermission while Pending"
        );

        // IAM: a new key is refused for a while, an inactive one always.
        iam.create_user().user_name(&role).send().await.unwrap();
        let key = iam
            .create_access_key()
            .user_name(&role)
            .send()
            .await
            .unwrap();
        let key = key.access_key().unwrap();
        let with_key = sdk(
            &proxy.endpoint,
            (key.access_key_id(), key.secret_access_key()),
        )
        .await;
        let who = aws_sdk_sts::Client::new(&with_key)
            .get_caller_identity()
            .send()
            .await;
        assert_eq!(
            code(&who),
            aws.then_some("InvalidClientTokenId"),
            "{tag}: a key just created"
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        aws_sdk_sts::Client::new(&with_key)
            .get_caller_identity()
            .send()
            .await
            .unwrap();
        iam.update_access_key()
            .user_name(&role)
            .access_key_id(key.access_key_id())
            .status(StatusType::Inactive)
            .send()
            .await
            .unwrap();
        let who = aws_sdk_sts::Client::new(&with_key)
            .get_caller_identity()
            .send()
            .await;
        assert_eq!(
            code(&who),
            aws.then_some("InvalidClientTokenId"),
            "{tag}: an inactive key"
        );

        // Lambda: no tags in GetFunction for a caller without lambda:ListTags.
        proxy.layer().set(Behaviour {
            deny_list_tags: aws,
            ..Behaviour::off()
        });
        let got = lambda
            .get_function()
            .function_name(format!("layer-{tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(got.tags().is_none(), aws, "{tag}: tags in GetFunction");
        assert_eq!(got.tags_error().is_some(), aws);
        eprintln!("{tag}: {:?}", proxy.layer().hits());
    }
}

/// A deploy role without `lambda:ListTags` gets an error that names it, not a claim that the stage's own
/// functions belong to someone else.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_list_tags_permission_is_named() {
    let Deployed {
        moto: _moto,
        proxy,
        app,
        ..
    } = deployed().await;
    proxy.layer().set(Behaviour {
        deny_list_tags: true,
        ..Behaviour::aws()
    });
    let run = app.run(&["up"]).expect(1);
    run.check(
        run.stderr.contains("lambda:ListTags") && !run.stderr.contains("not this stage's"),
        "names the missing permission",
    );
}

/// A route response lost between its two calls (or to a conflict taken for "exists") is found and repaired.
#[tokio::test(flavor = "multi_thread")]
async fn a_lost_route_response_is_repaired_by_the_next_up() {
    let Deployed {
        moto: _moto,
        proxy,
        app,
        first,
    } = deployed().await;
    let api_id = first["api_id"].as_str().unwrap().to_string();
    let conf = sdk(&proxy.endpoint, ("testing", "testing")).await;
    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let (auth, deleted) =
        crate::support::moto::delete_route_responses(&apigw, &api_id, "auth").await;
    assert_eq!(deleted, 1, "exactly one $default response");
    let plan = app.run(&["plan", "--output", "json"]).expect(0).json();
    assert_eq!(
        plan["actions"][0]["action"], "create_route_response",
        "{plan:#}"
    );
    app.run(&["up"]).expect(0);
    let after = apigw
        .get_route_responses()
        .api_id(&api_id)
        .route_id(&auth)
        .send()
        .await
        .unwrap();
    assert_eq!(after.items()[0].route_response_key(), Some("$default"));
    let plan = app.run(&["plan", "--output", "json"]).expect(0).json();
    assert_eq!(plan["actions"], serde_json::json!([]));
}

/// Rotation never writes a key AWS does not accept yet, deactivates the previous key instead of deleting it, and a
/// later `up` deletes the spare once the grace period is over.
#[tokio::test(flavor = "multi_thread")]
async fn access_keys_rotate_through_deactivation() {
    let Deployed {
        moto, proxy, app, ..
    } = deployed().await;
    let key = |env: &std::collections::BTreeMap<String, String>| {
        (
            env["WS_API_ACCESS_KEY_ID"].clone(),
            env["WS_API_SECRET_ACCESS_KEY"].clone(),
        )
    };
    let old = key(&env_file(&app.backend_env));
    app.run(&["up", "--rotate-credentials"]).expect(0);
    let new = key(&env_file(&app.backend_env));
    assert_ne!(old.0, new.0);
    // The key written works at once: up waited until AWS accepted it.
    let works = |k: (String, String)| {
        let endpoint = proxy.endpoint.clone();
        async move {
            let conf = sdk(&endpoint, (&k.0, &k.1)).await;
            aws_sdk_sts::Client::new(&conf)
                .get_caller_identity()
                .send()
                .await
                .is_ok()
        }
    };
    assert!(
        works(new.clone()).await,
        "the new key works as soon as up returns"
    );
    assert!(!works(old.clone()).await, "the previous key is deactivated");
    let iam = aws_sdk_iam::Client::new(&moto.sdk_config().await);
    let statuses = || async {
        let keys = iam
            .list_access_keys()
            .user_name("chat-dev-backend")
            .send()
            .await
            .unwrap();
        let mut s: Vec<(String, String)> = keys
            .access_key_metadata()
            .iter()
            .map(|k| {
                (
                    k.access_key_id().unwrap().to_string(),
                    k.status().unwrap().as_str().to_string(),
                )
            })
            .collect();
        s.sort();
        s
    };
    let mut expected = vec![
        (old.0.clone(), "Inactive".to_string()),
        (new.0.clone(), "Active".to_string()),
    ];
    expected.sort();
    assert_eq!(
        statuses().await,
        expected,
        "kept, deactivated, within the grace period"
    );
    app.run(&["up"]).expect(0);
    assert_eq!(
        statuses().await.len(),
        2,
        "a second up keeps the spare through the grace period"
    );
    app.run(&["up", "--key-grace", "0s"]).expect(0);
    assert_eq!(
        statuses().await,
        vec![(new.0.clone(), "Active".to_string())],
        "then deletes it"
    );
}

/// `credentials: policy` leaves no key in the backend's env file (a stale one would override the backend's role),
/// and changed tags reach every resource that exists.
#[tokio::test(flavor = "multi_thread")]
async fn policy_mode_drops_keys_and_tags_follow_the_config() {
    let Deployed {
        moto,
        proxy: _proxy,
        app,
        ..
    } = deployed().await;
    assert!(env_file(&app.backend_env).contains_key("WS_API_ACCESS_KEY_ID"));
    let retagged = BASE
        .replace("credentials: iam-user", "credentials: policy")
        .replace("tags: { team: web }", "tags: { team: api, cost: ws }");
    app.config(&retagged);
    app.run(&["up"]).expect(0);
    let env = env_file(&app.backend_env);
    assert!(
        !env.contains_key("WS_API_ACCESS_KEY_ID") && !env.contains_key("WS_API_SECRET_ACCESS_KEY"),
        "{env:?}"
    );
    let conf = moto.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let tags = lambda
        .list_tags()
        .resource(format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:chat-dev-connect"
        ))
        .send()
        .await
        .unwrap();
    let tags = tags.tags().unwrap();
    assert_eq!(
        (tags["team"].as_str(), tags["cost"].as_str()),
        ("api", "ws")
    );
    let role = aws_sdk_iam::Client::new(&conf)
        .get_role()
        .role_name("chat-dev-lambda")
        .send()
        .await
        .unwrap();
    assert!(role
        .role()
        .unwrap()
        .tags()
        .iter()
        .any(|t| t.key() == "team" && t.value() == "api"));
    let plan = app.run(&["plan", "--output", "json"]).expect(0).json();
    assert_eq!(
        plan["actions"],
        serde_json::json!([]),
        "converged: {plan:#}"
    );
}

/// `up` ends when the stage works: a failed automatic deployment is an error, not a success with a dead URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_deployment_fails_up() {
    let Deployed {
        moto: _moto,
        proxy,
        app,
        ..
    } = deployed().await;
    proxy.layer().set(Behaviour {
        failed_deployment: Some(
            "Deployment attempt failed: Unable to deploy API because no routes exist in this API"
                .into(),
        ),
        ..Behaviour::aws()
    });
    app.config(&format!(
        "{BASE}routes: {{ auth: connect, $disconnect: disconnect, $default: connect }}\n"
    ));
    let run = app.run(&["up"]).expect(1);
    run.check(
        run.stderr
            .contains("last deployment failed: Deployment attempt failed"),
        "says the deployment failed and why",
    );
    // Run again with nothing left to change: the stage as observed still tells of the failure.
    proxy.take();
    let again = app.run(&["up"]).expect(1);
    again.check(
        again
            .stderr
            .contains("last deployment failed: Deployment attempt failed"),
        "a no-op up still says the stage is broken",
    );
    let seen = proxy.take();
    again.check(
        !seen.iter().any(|r| r.mutating) && !seen.iter().any(|r| r.op.ends_with("/stages/dev")),
        &format!("from what it observed, with no write and no extra read: {seen:?}"),
    );
    // A change with --no-wait does not look at the deployment.
    app.config(&format!(
        "{BASE}routes: {{ auth: connect, $disconnect: disconnect, $default: connect, typing: connect }}\n"
    ));
    let quick = app.run(&["up", "--no-wait", "--output", "json"]).expect(0);
    assert_eq!(quick.json()["waits"], serde_json::json!([]));
}

/// A raw request through the proxy, signed for `service` in name only (the model check reads the credential scope).
async fn raw(proxy: &Proxy, service: &str, target: Option<&str>, body: &str) -> (u16, String) {
    let mut r = reqwest::Client::new()
        .post(format!("{}/", proxy.endpoint))
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20261204/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string());
    r = match target {
        Some(t) => r
            .header("x-amz-target", t)
            .header("content-type", "application/x-amz-json-1.1"),
        None => r.header("content-type", "application/x-www-form-urlencoded"),
    };
    let answer = r.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The service-model check is real: a request that breaks each kind of rule in AWS's published models is refused as
/// AWS refuses it, with the rule, and kept for the test to fail on; a well-formed one goes through to moto.
#[tokio::test(flavor = "multi_thread")]
async fn requests_that_break_aws_service_models_are_refused_with_the_rule() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let config = sdk(&proxy.endpoint, ("testing", "testing")).await;
    let iam = aws_sdk_iam::Client::new(&config);
    let trust = r#"{"Version":"2012-10-17","Statement":[]}"#;
    let mut broken: Vec<(Option<String>, &str, &str)> = vec![];

    // A pattern, and a length: IAM role names are `[\w+=,.@-]+`, at most 64 characters.
    let r = iam
        .create_role()
        .role_name("web chat")
        .assume_role_policy_document(trust)
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "ValidationError",
        "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
    ));
    let r = iam
        .create_role()
        .role_name("r".repeat(65))
        .assume_role_policy_document(trust)
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "ValidationError",
        "Member must have length less than or equal to 64",
    ));
    // A list's size: at most 50 tags on a role.
    let tags: Vec<_> = (0..51)
        .map(|i| {
            aws_sdk_iam::types::Tag::builder()
                .key(format!("k{i}"))
                .value("v")
                .build()
                .unwrap()
        })
        .collect();
    let r = iam
        .tag_role()
        .role_name("probe")
        .set_tags(Some(tags))
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "ValidationError",
        "Member must have length less than or equal to 50",
    ));
    // An enum: a WebSocket API's protocol is `WEBSOCKET`.
    let apigw = aws_sdk_apigatewayv2::Client::new(&config);
    let r = apigw
        .create_api()
        .name("probe")
        .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::from(
            "WEBSOCKETS",
        ))
        .route_selection_expression("$request.body.action")
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "BadRequestException",
        "Member must satisfy enum value set: [WEBSOCKET, HTTP]",
    ));
    // A numeric range: reserved concurrency is at least 0.
    let lambda = aws_sdk_lambda::Client::new(&config);
    let r = lambda
        .put_function_concurrency()
        .function_name("probe")
        .reserved_concurrent_executions(-1)
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "ValidationException",
        "Member must have value greater than or equal to 0",
    ));
    // A map's size: a log group carries 1 to 50 tags.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let r = logs
        .create_log_group()
        .log_group_name("/probe")
        .set_tags(Some(
            (0..51)
                .map(|i| (format!("k{i}"), "v".to_string()))
                .collect(),
        ))
        .send()
        .await;
    broken.push((
        code(&r).map(str::to_string),
        "ValidationException",
        "Member must have length less than or equal to 50",
    ));
    for (i, (got, expected, _)) in broken.iter().enumerate() {
        assert_eq!(
            got.as_deref(),
            Some(*expected),
            "request {i} was not refused as AWS refuses it"
        );
    }
    // A required member missing and a member the operation does not have, which the SDK would never send.
    let (status, body) = raw(
        &proxy,
        "logs",
        Some("Logs_20140328.CreateLogGroup"),
        r#"{"logGroup":"/probe"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ValidationException"), "{body}");
    let (status, body) = raw(
        &proxy,
        "iam",
        None,
        "Action=CreateRole&Version=2010-05-08&RoleName=probe",
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let kept = proxy.layer().model_violations();
    assert_eq!(kept.len(), 8, "{kept:#?}");
    for (i, (_, _, rule)) in broken.iter().enumerate() {
        assert!(
            kept[i].contains(rule),
            "request {i} kept as {:?}, not by its rule {rule:?}",
            kept[i]
        );
    }
    assert!(
        kept[6].contains("CreateLogGroup has no member 'logGroup'"),
        "{}",
        kept[6]
    );
    assert!(
        kept[6].contains(
            "Value null at 'logGroupName' failed to satisfy constraint: Member must not be null"
        ),
        "{}",
        kept[6]
    );
    assert!(
        kept[7].contains("Value null at 'AssumeRolePolicyDocument'"),
        "{}",
        kept[7]
    );

    // What the models allow reaches moto.
    iam.create_role()
        .role_name("probe")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    logs.create_log_group()
        .log_group_name("/probe")
        .tags("team", "web")
        .send()
        .await
        .unwrap();
    assert!(proxy.layer().model_violations().is_empty());
}
