//! Secrets never shown, and every policy wsdeploy writes is least privilege.

use serde_json::Value;

use crate::deploy::{decode, lambda_policy, App, BASE};
use crate::support::moto::{Moto, ACCOUNT, REGION};
use crate::support::proxy::Proxy;

fn env_value(path: &std::path::Path, key: &str) -> String {
    let vars = crate::support::util::env_file(path);
    vars.get(key)
        .cloned()
        .unwrap_or_else(|| panic!("{key} in {}", path.display()))
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_appear_in_any_output_or_log() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let mut runs = vec![app
        .run(&["up", "-vv"])
        .env("WSDEPLOY_LOG", "trace")
        .expect(0)];
    let secret = env_value(&app.backend_env, "WS_API_SECRET_ACCESS_KEY");
    let signing = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    runs.push(
        app.run(&["up", "--rotate-credentials", "-vv", "--output", "json"])
            .env("WSDEPLOY_LOG", "trace")
            .expect(0),
    );
    let rotated = env_value(&app.backend_env, "WS_API_SECRET_ACCESS_KEY");
    assert_ne!(rotated, secret, "rotation wrote a new key");
    // A signing-secret rotation sends both secrets in the functions' environment.
    runs.push(
        app.run(&["up", "--rotate-signing-secret", "-vv"])
            .env("WSDEPLOY_LOG", "trace")
            .expect(0),
    );
    let new_signing = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    assert_ne!(new_signing, signing, "the signing secret was rotated");
    // An update of the functions' configuration sends their environment, the signing secret in it, again.
    app.config(&BASE.replace(
        "architecture: x86_64",
        "architecture: x86_64\n  memory_mb: 256",
    ));
    runs.push(
        app.run(&["up", "-vv"])
            .env("WSDEPLOY_LOG", "trace")
            .expect(0),
    );
    assert!(
        runs.iter()
            .all(|r| r.stderr.lines().count() > 1000 && r.stderr.contains("aws_smithy_runtime")),
        "the SDK's own trace-level logs were on"
    );
    for args in [
        &["plan", "-v"][..],
        &["outputs", "--output", "json", "-v"],
        &["outputs"],
        &["validate", "-v"],
        &["teardown", "--yes", "-vv"],
    ] {
        runs.push(app.run(args).expect(0));
    }
    let mut hits = 0;
    for run in &runs {
        for s in [&secret, &rotated, &signing, &new_signing] {
            hits += run.stdout.matches(s.as_str()).count() + run.stderr.matches(s.as_str()).count();
        }
        run.check(hits == 0, "a secret was printed");
    }
    eprintln!("runs searched: {}, secrets found: {hits}", runs.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn show_secrets_is_the_only_way_to_print_them() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    app.run(&["up"]).expect(0);
    let out = app
        .run(&["outputs", "--show-secrets", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(
        out["secrets"]["secret_access_key"].as_str().unwrap(),
        env_value(&app.backend_env, "WS_API_SECRET_ACCESS_KEY")
    );
    assert_eq!(
        out["secrets"]["signing_secret"].as_str().unwrap(),
        env_value(&app.backend_env, "WS_SIGNING_SECRET")
    );
}

/// Every `Resource` of every statement: never `*`, always one of `allowed` (exact, or a prefix ending the ARN).
fn check_statements(what: &str, doc: &Value, allowed: &[String]) -> usize {
    let statements = match &doc["Statement"] {
        Value::Array(a) => a.clone(),
        s => vec![s.clone()],
    };
    let mut n = 0;
    for st in statements {
        assert_eq!(st["Effect"], "Allow", "{what}");
        assert!(
            st.get("NotResource").is_none() && st.get("NotAction").is_none(),
            "{what}: no Not* statements"
        );
        let resources = match &st["Resource"] {
            Value::Array(a) => a.iter().map(|r| r.as_str().unwrap().to_string()).collect(),
            Value::String(r) => vec![r.clone()],
            other => panic!("{what}: Resource {other}"),
        };
        for r in resources {
            assert!(
                !r.contains('*') || allowed.contains(&r),
                "{what}: {r} is broader than allowed {allowed:?}"
            );
            assert!(
                allowed.contains(&r),
                "{what}: {r} is not one of {allowed:?}"
            );
            n += 1;
        }
        let actions = match &st["Action"] {
            Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
            Value::String(x) => vec![x.clone()],
            other => panic!("{what}: Action {other}"),
        };
        assert!(
            actions.iter().all(|a| !a.contains('*')),
            "{what}: wildcard action in {actions:?}"
        );
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn every_policy_is_least_privilege() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let out = app.run(&["up", "--output", "json"]).expect(0).json();
    let api = out["api_id"].as_str().unwrap();
    let conf = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let mut checked = 0;
    // The functions may write their own log groups' streams: those exact ARNs (the `:*` form names the streams).
    let mut logs = vec![];
    for f in ["connect", "disconnect"] {
        let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/chat-dev-{f}");
        logs.push(format!("{arn}:*"));
        logs.push(arn);
    }
    // ... and decrypt their environment with the stage's own key.
    let key = aws_sdk_kms::Client::new(&conf)
        .describe_key()
        .key_id("alias/wsdeploy/chat-dev")
        .send()
        .await
        .unwrap();
    logs.push(key.key_metadata().unwrap().arn().unwrap().to_string());
    // ... and post to and close this stage's sockets (a refused auth), on this API only.
    for method in ["POST", "DELETE"] {
        logs.push(format!(
            "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/{method}/@connections/*"
        ));
    }
    for p in iam
        .list_role_policies()
        .role_name("chat-dev-lambda")
        .send()
        .await
        .unwrap()
        .policy_names()
    {
        let doc = decode(
            iam.get_role_policy()
                .role_name("chat-dev-lambda")
                .policy_name(p)
                .send()
                .await
                .unwrap()
                .policy_document(),
        );
        checked += check_statements(&format!("role policy {p}"), &doc, &logs);
    }
    assert!(
        iam.list_attached_role_policies()
            .role_name("chat-dev-lambda")
            .send()
            .await
            .unwrap()
            .attached_policies()
            .is_empty(),
        "no managed policies on the role"
    );
    let connections = vec![format!(
        "arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/*/@connections/*"
    )];
    for p in iam
        .list_user_policies()
        .user_name("chat-dev-backend")
        .send()
        .await
        .unwrap()
        .policy_names()
    {
        let doc = decode(
            iam.get_user_policy()
                .user_name("chat-dev-backend")
                .policy_name(p)
                .send()
                .await
                .unwrap()
                .policy_document(),
        );
        checked += check_statements(&format!("user policy {p}"), &doc, &connections);
    }
    // The Lambdas' resource policies: API Gateway, from this API only.
    let lambda = aws_sdk_lambda::Client::new(&conf);
    for f in ["connect", "disconnect"] {
        let doc = lambda_policy(&lambda, &format!("chat-dev-{f}")).await;
        for st in doc["Statement"].as_array().unwrap() {
            assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com");
            assert_eq!(st["Action"], "lambda:InvokeFunction");
            assert_eq!(
                st["Condition"]["ArnLike"]["AWS:SourceArn"],
                format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/*")
            );
            checked += 1;
        }
    }
    // `credentials: policy` swaps the user for a managed policy with the same single statement.
    app.config(&BASE.replace("credentials: iam-user", "credentials: policy"));
    app.run(&["up"]).expect(0);
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/chat-dev-manage-connections");
    let doc = current_version(&iam, &arn).await;
    checked += check_statements("managed policy", &doc, &connections);
    assert!(
        iam.get_user()
            .user_name("chat-dev-backend")
            .send()
            .await
            .is_err(),
        "the IAM user is gone in policy mode"
    );
    eprintln!("statements checked: {checked}");
    app.run(&["teardown", "--yes"]).expect(0);
    assert!(
        crate::deploy::leftovers(&conf, "chat-dev").await.is_empty(),
        "the managed policy is torn down too"
    );
}

/// The policy of the stage `chat-dev`'s backend user.
async fn backend_user_policy(iam: &aws_sdk_iam::Client) -> Value {
    decode(
        iam.get_user_policy()
            .user_name("chat-dev-backend")
            .policy_name("chat-dev-manage-connections")
            .send()
            .await
            .unwrap()
            .policy_document(),
    )
}

/// The default version's document of the managed policy `arn`.
async fn current_version(iam: &aws_sdk_iam::Client, arn: &str) -> Value {
    let policy = iam.get_policy().policy_arn(arn).send().await.unwrap();
    let version = policy.policy().unwrap().default_version_id().unwrap();
    decode(
        iam.get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .unwrap()
            .policy_version()
            .unwrap()
            .document()
            .unwrap(),
    )
}

/// The secret the deployed `connect` function signs with.
async fn deployed_signing_secret(conf: &aws_config::SdkConfig, project: &str) -> String {
    deployed_signing_secrets(conf, project).await.0
}

/// The secrets (current, previous) the deployed `connect` function signs with.
async fn deployed_signing_secrets(
    conf: &aws_config::SdkConfig,
    project: &str,
) -> (String, Option<String>) {
    let c = aws_sdk_lambda::Client::new(conf)
        .get_function_configuration()
        .function_name(format!("{project}-dev-connect"))
        .send()
        .await
        .unwrap();
    let vars = c.environment().unwrap().variables().unwrap();
    (
        vars["WSDEPLOY_SIGNING_SECRET"].clone(),
        vars.get("WSDEPLOY_SIGNING_SECRET_PREVIOUS").cloned(),
    )
}

/// `up --rotate-signing-secret` deploys a new secret and keeps the deployed one as the previous, in the functions
/// (which then sign with both) and in the backend's env file; the next `up` retires it, also from a clean checkout
/// where the env file is gone (the functions' environment is the record); and teardown leaves neither.
#[tokio::test(flavor = "multi_thread")]
async fn a_signing_secret_rotation_keeps_the_previous_one_until_the_next_up() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    let app = App::new(&proxy.endpoint, BASE);
    app.run(&["up"]).expect(0);
    let first = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    assert_eq!(
        deployed_signing_secrets(&conf, "chat").await,
        (first.clone(), None)
    );

    let plan = app.run(&["plan", "--rotate-signing-secret"]).expect(0);
    plan.check(
        plan.stdout.contains("env WSDEPLOY_SIGNING_SECRET_PREVIOUS")
            && !plan.stdout.contains(&first),
        "plan names the variables, never their values",
    );
    let rotate = app.run(&["up", "--rotate-signing-secret"]).expect(0);
    rotate.check(
        rotate.stdout.contains("Signing secret       rotated"),
        "up says it rotated",
    );
    let second = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    assert!(second != first && second.len() >= 43);
    assert_eq!(
        env_value(&app.backend_env, "WS_SIGNING_SECRET_PREVIOUS"),
        first
    );
    assert_eq!(
        deployed_signing_secrets(&conf, "chat").await,
        (second.clone(), Some(first.clone())),
        "the functions sign with both"
    );

    std::fs::remove_file(&app.backend_env).unwrap();
    let retire = app.run(&["up"]).expect(0);
    retire.check(
        retire.stdout.contains("previous one retired"),
        "up says it retired",
    );
    assert_eq!(
        deployed_signing_secrets(&conf, "chat").await,
        (second.clone(), None)
    );
    let vars = crate::support::util::env_file(&app.backend_env);
    assert_eq!(vars.get("WS_SIGNING_SECRET"), Some(&second));
    assert!(!vars.contains_key("WS_SIGNING_SECRET_PREVIOUS"), "{vars:?}");
    let again = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(again["changes"], 0, "settled: nothing left to change");

    // After a leak, mid-rotation: a new secret and nothing else, in the functions and the env file, at once.
    app.run(&["up", "--rotate-signing-secret"]).expect(0);
    let leaked = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    let revoke = app
        .run(&["up", "--rotate-signing-secret", "--revoke-previous"])
        .expect(0);
    revoke.check(
        revoke.stdout.contains("replaced, the previous one revoked")
            && revoke.stdout.contains("restart each now"),
        "up says the old secrets stop now and backends must reload",
    );
    let third = env_value(&app.backend_env, "WS_SIGNING_SECRET");
    assert!(third != leaked && third != second);
    assert_eq!(
        deployed_signing_secrets(&conf, "chat").await,
        (third, None),
        "neither the leaked secret nor the one before it signs any more"
    );
    let vars = crate::support::util::env_file(&app.backend_env);
    assert!(!vars.contains_key("WS_SIGNING_SECRET_PREVIOUS"), "{vars:?}");

    app.run(&["up", "--rotate-signing-secret"]).expect(0);
    app.run(&["teardown", "--yes"]).expect(0);
    let vars = crate::support::util::env_file(&app.backend_env);
    assert!(
        !vars.keys().any(|k| k.starts_with("WS_SIGNING_SECRET")),
        "teardown removes both secrets: {vars:?}"
    );
}

/// A signing secret belongs to one stage. `up` adopts the one in the backend env file only when the file records
/// that it is this stage's and it is as strong as the ones wsdeploy makes; a secret `dev` (or another stage) wrote
/// there, or a short hand-typed one, is replaced by the stage's own, and the file then says whose it is.
#[tokio::test(flavor = "multi_thread")]
async fn a_signing_secret_is_adopted_only_by_its_own_stage() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    let strong = "x".repeat(20) + &"Y".repeat(23);
    let cases = [
        (
            "devs",
            format!("WS_SIGNING_SECRET={strong}\nWS_SIGNING_SECRET_STAGE=devs-local\n"),
            false,
        ),
        ("unmarked", format!("WS_SIGNING_SECRET={strong}\n"), false),
        (
            "short",
            "WS_SIGNING_SECRET=hunter2\nWS_SIGNING_SECRET_STAGE=short-dev\n".to_string(),
            false,
        ),
        (
            "own",
            format!("WS_SIGNING_SECRET={strong}\nWS_SIGNING_SECRET_STAGE=own-dev\n"),
            true,
        ),
    ];
    for (project, env, adopted) in cases {
        let app = App::new(
            &proxy.endpoint,
            &BASE.replace("project: chat", &format!("project: {project}")),
        );
        std::fs::write(&app.backend_env, &env).unwrap();
        app.run(&["up"]).expect(0);
        let deployed = deployed_signing_secret(&conf, project).await;
        assert_eq!(
            deployed == strong,
            adopted,
            "{project}: adopted the env file's secret?"
        );
        assert!(
            deployed.len() >= 43,
            "{project}: the stage's secret is strong"
        );
        assert_eq!(
            env_value(&app.backend_env, "WS_SIGNING_SECRET"),
            deployed,
            "{project}"
        );
        assert_eq!(
            env_value(&app.backend_env, "WS_SIGNING_SECRET_STAGE"),
            format!("{project}-dev"),
            "{project}: the file says whose secret it holds"
        );
    }
}

/// The key that encrypts the functions' environment, and so the signing secret, at rest.
async fn stage_key(conf: &aws_config::SdkConfig) -> Option<(String, String, String)> {
    let kms = aws_sdk_kms::Client::new(conf);
    let out = kms
        .describe_key()
        .key_id("alias/wsdeploy/chat-dev")
        .send()
        .await
        .ok()?;
    let m = out.key_metadata()?;
    Some((
        m.key_id().to_string(),
        m.arn()?.to_string(),
        m.key_state()?.as_str().to_string(),
    ))
}

async fn key_state(conf: &aws_config::SdkConfig, id: &str) -> String {
    let kms = aws_sdk_kms::Client::new(conf);
    let out = kms.describe_key().key_id(id).send().await.unwrap();
    out.key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .as_str()
        .to_string()
}

/// The signing secret sits in the functions' environment encrypted with a key of the stage's own, so reading it
/// takes kms:Decrypt on that key, not just lambda:GetFunctionConfiguration. `up` creates the key (waiting out KMS's
/// propagation and the role's, which Lambda reports as a CreateGrant error), names it in the role's policy and hands
/// it to the functions; a deployer the key's policy no longer lets decrypt gets a sentence, never a silently new secret; the key can
/// be swapped for Lambda's own and back (the stage key is restored, not duplicated); teardown schedules its
/// deletion and leaves nothing live.
#[tokio::test(flavor = "multi_thread")]
async fn the_signing_secret_is_encrypted_with_a_key_of_the_stages_own() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    // The role outlives the key's own propagation wait, so Lambda's CreateGrant on it is refused a while.
    proxy.layer().set(crate::support::aws_behaviour::Behaviour {
        role_propagation: Some(std::time::Duration::from_secs(2)),
        ..crate::support::aws_behaviour::Behaviour::aws()
    });
    let app = App::new(&proxy.endpoint, BASE);
    let plan = app.run(&["plan"]).expect(0);
    plan.check(
        plan.stdout
            .contains("+ kms key           alias/wsdeploy/chat-dev"),
        "plan shows the key",
    );
    app.run(&["up"]).expect(0);
    let (id, arn, state) = stage_key(&conf)
        .await
        .expect("the stage's alias names a key");
    assert_eq!(state, "Enabled");
    for f in ["chat-dev-connect", "chat-dev-disconnect"] {
        assert_eq!(proxy.layer().function_key(f), Some(arn.clone()), "{f}");
    }
    let iam = aws_sdk_iam::Client::new(&conf);
    let role_policy = iam
        .get_role_policy()
        .role_name("chat-dev-lambda")
        .policy_name("chat-dev-logs")
        .send()
        .await
        .unwrap();
    let doc = decode(role_policy.policy_document());
    assert!(
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["Action"] == "kms:Decrypt" && s["Resource"] == arn.as_str()),
        "the functions may decrypt their environment with this key and no other: {doc}"
    );
    let hits = proxy.layer().hits();
    for met in [
        "new KMS key not yet available",
        "new role not yet assumable",
    ] {
        assert!(hits.contains_key(met), "{met}: {hits:?}");
    }

    // A key policy that no longer lets the deployer decrypt through Lambda: the deployed secret cannot be read, so
    // say so and change nothing. (Someone else in the account changed it; the layer plays the edited policy, here
    // at once: the spread of a new policy is played in `policy::only_the_stage_key_is_the_stages…`.)
    proxy.layer().set(crate::support::aws_behaviour::Behaviour {
        kms: crate::support::aws_kms::Timings {
            policy_spread: None,
            ..crate::support::aws_behaviour::Behaviour::aws().kms
        },
        role_propagation: Some(std::time::Duration::from_secs(2)),
        ..crate::support::aws_behaviour::Behaviour::aws()
    });
    let admin_kms = aws_sdk_kms::Client::new(
        &crate::support::moto::sdk_config_as(&proxy.endpoint, "key-admin").await,
    );
    let original = admin_kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap()
        .policy()
        .unwrap()
        .to_string();
    let mut edited: serde_json::Value = serde_json::from_str(&original).unwrap();
    for s in edited["Statement"].as_array_mut().unwrap() {
        if s["Sid"] == "DeployersUseItThroughLambda" {
            s["Action"] = serde_json::json!(["kms:CreateGrant", "kms:Encrypt"]);
        }
    }
    let put = |p: String| {
        admin_kms
            .put_key_policy()
            .key_id(&id)
            .policy_name("default")
            .policy(p)
            .send()
    };
    put(edited.to_string()).await.unwrap();
    let blind = app.run(&["up"]).expect(1);
    blind.check(
        blind.code == 1
            && blind.stderr.contains("kms:Decrypt")
            && blind
                .stderr
                .contains("cannot read the environment of the function"),
        "a clear sentence about kms:Decrypt",
    );
    put(original).await.unwrap();
    proxy.layer().enforce(None);
    let again = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(again["changes"], 0, "nothing changed meanwhile");

    // Lambda's own key instead: the functions move, the stage key is scheduled for deletion.
    let managed = BASE.replace(
        "  architecture: x86_64\n",
        "  architecture: x86_64\n  env_key: aws-managed\n",
    );
    app.config(&managed);
    app.run(&["up"]).expect(0);
    assert_eq!(proxy.layer().function_key("chat-dev-connect"), None);
    assert_eq!(stage_key(&conf).await, None, "the alias is gone");
    assert_eq!(key_state(&conf, &id).await, "PendingDeletion");

    // And back: the same key, restored and aliased again, not a second one.
    app.config(BASE);
    let back = app.run(&["up"]).expect(0);
    back.check(
        back.stdout.contains("kms key"),
        "up says what it did to the key",
    );
    let (again_id, again_arn, state) = stage_key(&conf).await.unwrap();
    assert_eq!(
        (again_id.as_str(), state.as_str()),
        (id.as_str(), "Enabled")
    );
    assert_eq!(
        proxy.layer().function_key("chat-dev-connect"),
        Some(again_arn)
    );

    app.run(&["teardown", "--yes"]).expect(0);
    assert_eq!(key_state(&conf, &id).await, "PendingDeletion");
    assert_eq!(
        crate::deploy::live_stage_keys(&conf, "chat-dev").await,
        Vec::<String>::new()
    );
    let twice = app.run(&["teardown", "--yes"]).expect(0);
    twice.check(
        twice.stdout.contains("Nothing to tear down") || !twice.stdout.contains("kms key"),
        "a second teardown finds nothing",
    );
}

/// A project that starts with `credentials: policy` deploys from an empty account: the managed policy names the API,
/// so it is created once the API exists (it once stopped with "no API id at this point of the plan"); a second `up`
/// writes nothing; the backend env file gets the endpoint and no key; teardown leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_up_with_a_managed_policy_deploys_from_nothing() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(
        &proxy.endpoint,
        &BASE.replace("credentials: iam-user", "credentials: policy"),
    );
    let out = app.run(&["up", "--output", "json"]).expect(0).json();
    let api = out["api_id"].as_str().unwrap();
    let conf = moto.sdk_config().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    let arn = format!("arn:aws:iam::{ACCOUNT}:policy/chat-dev-manage-connections");
    let doc = crate::deploy::first_version(&iam, &arn).await;
    assert_eq!(
        doc["Statement"][0]["Resource"],
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/*/@connections/*")
    );
    let backend = std::fs::read_to_string(&app.backend_env).unwrap();
    assert!(
        backend.contains("WS_API_ENDPOINT=") && !backend.contains("WS_API_SECRET_ACCESS_KEY="),
        "{backend}"
    );
    proxy.take();
    app.run(&["up"]).expect(0);
    let writes = proxy.take_writes();
    assert_eq!(writes, Vec::<String>::new(), "a second up writes nothing");
    app.run(&["teardown", "--yes"]).expect(0);
    assert!(crate::deploy::leftovers(&conf, "chat-dev").await.is_empty());
}

/// `up` writes the backend's access key and signing secret into its env file: never into one git tracks (the next
/// commit would publish them) unless `--allow-tracked-env` says so, and it refuses before anything is made, so that
/// no key is created only to be lost.
#[test]
fn up_refuses_to_write_secrets_into_an_env_file_git_tracks() {
    use crate::support::util::wsdeploy;
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path();
    std::fs::write(
        app.join("wsdeploy.yaml"),
        "project: chat\nregion: eu-west-3\nbackend: { url: 'https://api.example.com' }\nenv: { backend: { file: .env } }\n",
    )
    .unwrap();
    std::fs::write(app.join(".env"), "PORT=3000\n").unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(app)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&ok.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", ".env"]);
    // Nothing answers there: a run that got past the check would fail reaching AWS (exit 1), not exit 2.
    let nowhere = [("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string())];
    let refused = wsdeploy(app, &["up"]).envs(nowhere.clone()).expect(2);
    refused.check(
        refused.stderr.contains(".env is tracked by git, and `up` writes the backend's access key and signing secret into it")
            && refused.stderr.contains("`git rm --cached .env`")
            && refused.stderr.contains("--allow-tracked-env"),
        "refused with how to stop tracking it, or the flag",
    );
    let allowed = wsdeploy(app, &["up", "--allow-tracked-env"])
        .envs(nowhere.clone())
        .run();
    allowed.check(
        allowed.code == 1 && !allowed.stderr.contains("is tracked by git"),
        "the flag lets it through to AWS",
    );
    git(&["rm", "-q", "--cached", ".env"]);
    let untracked = wsdeploy(app, &["up"]).envs(nowhere).run();
    untracked.check(
        untracked.code == 1 && !untracked.stderr.contains("is tracked by git"),
        "an untracked env file is written as before",
    );
}

/// `fanout: true`: the fan-out function is deployed with no route, no integration and no resource policy (API
/// Gateway cannot invoke it), with neither the backend's URL nor the signing secret in its environment; the
/// backend's credentials gain `lambda:InvokeFunction` on that one function, which the project's boundary still
/// allows (identity policy ∩ boundary, by the IAM evaluator) and nothing more; the env file names it. Turned off,
/// the function, the grant and the variable go; teardown leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_fanout_function_is_the_backends_to_invoke_and_only_that() {
    use crate::support::iam_enforce::{Check, Evaluator};
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let with = format!("{BASE}fanout: true\n");
    let app = App::new(&proxy.endpoint, &with);
    let out = app.run(&["up", "--output", "json"]).expect(0).json();
    let api = out["api_id"].as_str().unwrap().to_string();
    let conf = moto.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let iam = aws_sdk_iam::Client::new(&conf);
    let name = "chat-dev-fanout";
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    let config = lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
        .unwrap();
    let vars = config.environment().unwrap().variables().unwrap();
    let mut keys: Vec<&String> = vars.keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["WSDEPLOY_API_ID", "WSDEPLOY_STAGE"],
        "no backend, no secret"
    );
    assert_eq!(
        config.role(),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/chat-dev-lambda").as_str())
    );
    assert!(
        lambda
            .get_policy()
            .function_name(name)
            .send()
            .await
            .is_err(),
        "no resource policy"
    );
    let integrations = aws_sdk_apigatewayv2::Client::new(&conf)
        .get_integrations()
        .api_id(&api)
        .send()
        .await
        .unwrap();
    assert!(
        integrations
            .items()
            .iter()
            .all(|i| !i.integration_uri().unwrap_or_default().contains(name)),
        "no integration reaches it"
    );
    assert_eq!(env_value(&app.backend_env, "WS_FANOUT_FUNCTION"), name);

    let policy = backend_user_policy(&iam).await;
    let allowed = [
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api}/dev/*/@connections/*"),
        arn.clone(),
    ];
    assert_eq!(check_statements("user policy", &policy, &allowed), 2);
    let boundary_arn = format!("arn:aws:iam::{ACCOUNT}:policy/chat-wsdeploy-boundary");
    let boundary = current_version(&iam, &boundary_arn).await;
    let mut effective = Evaluator::bounded(&policy, &boundary);
    let check = |action: &str, resource: &str| Check {
        action: action.into(),
        resource: resource.into(),
        conditions: std::collections::BTreeMap::new(),
        key_policy: None,
    };
    let other = |f: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{f}");
    assert!(
        effective.allows(&check("lambda:InvokeFunction", &arn)),
        "the backend may invoke it"
    );
    for (action, resource) in [
        ("lambda:InvokeFunction", other("chat-dev-connect")),
        ("lambda:InvokeFunction", other("chat-prod-fanout")),
        ("lambda:InvokeFunction", other("payroll")),
        ("lambda:UpdateFunctionCode", arn.clone()),
        ("lambda:GetFunctionConfiguration", arn.clone()),
    ] {
        assert!(
            !effective.allows(&check(action, &resource)),
            "{action} on {resource}"
        );
    }

    app.config(BASE);
    app.run(&["up"]).expect(0);
    assert!(
        lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .is_err(),
        "the function is gone"
    );
    assert!(
        !crate::support::util::env_file(&app.backend_env).contains_key("WS_FANOUT_FUNCTION"),
        "and its variable"
    );
    let policy = backend_user_policy(&iam).await;
    assert_eq!(
        check_statements("user policy", &policy, &allowed[..1]),
        1,
        "and the grant"
    );
    app.config(&with);
    app.run(&["up"]).expect(0);
    app.run(&["teardown", "--yes"]).expect(0);
    assert!(crate::deploy::leftovers(&conf, "chat-dev").await.is_empty());
}
