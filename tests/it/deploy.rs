//! The whole stack against moto: `up` creates every resource with the right settings (checked through the SDK,
//! not through wsdeploy), a second `up` makes no mutating request, a new route changes only that, `teardown`
//! leaves nothing behind; stages live side by side.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::moto::{Moto, ACCOUNT, REGION};
use crate::support::proxy::Proxy;
use crate::support::util::{cache, env_file, wsdeploy, Run};

/// An app folder with a frontend and a backend beside it, as `init` expects.
pub(crate) struct App {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub frontend_env: PathBuf,
    pub backend_env: PathBuf,
    endpoint: String,
}

pub(crate) const BASE: &str = "project: chat\nregion: eu-west-3\nbackend:\n  url: https://api.example.com\n  timeout_ms: 3000\nlambda:\n  architecture: x86_64\ncredentials: iam-user\nenv:\n  frontend: { file: ../frontend/.env }\n  backend: { file: ../backend/.env }\ntags: { team: web }\n";

impl App {
    pub(crate) fn new(endpoint: &str, config: &str) -> App {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("app");
        for d in ["app", "frontend", "backend"] {
            std::fs::create_dir_all(tmp.path().join(d)).unwrap();
        }
        let app = App {
            frontend_env: tmp.path().join("frontend/.env"),
            backend_env: tmp.path().join("backend/.env"),
            dir,
            _tmp: tmp,
            endpoint: endpoint.into(),
        };
        app.config(config);
        app
    }

    pub(crate) fn config(&self, text: &str) {
        std::fs::write(self.dir.join("wsdeploy.yaml"), text).unwrap();
    }

    pub(crate) fn run(&self, args: &[&str]) -> crate::support::util::Cmd {
        wsdeploy(&self.dir, args)
            .envs([
                ("AWS_ENDPOINT_URL", self.endpoint.clone()),
                ("AWS_ACCESS_KEY_ID", "testing".to_string()),
                ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
                ("WSDEPLOY_CACHE_DIR", cache().display().to_string()),
            ])
            .show(self.dir.join("wsdeploy.yaml"))
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn assert_no_secret_in(run: &Run, secrets: &[&str]) {
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        run.check(
            !run.stdout.contains(s) && !run.stderr.contains(s),
            "a secret appears in the output",
        );
    }
}

/// What a stage left in AWS, read with the SDK: (apis, functions, log groups, roles, users) carrying `prefix`.
pub(crate) async fn leftovers(conf: &aws_config::SdkConfig, prefix: &str) -> Vec<String> {
    let mut left = vec![];
    let apis = aws_sdk_apigatewayv2::Client::new(conf)
        .get_apis()
        .send()
        .await
        .unwrap();
    left.extend(
        apis.items()
            .iter()
            .filter(|a| a.name().is_some_and(|n| n == prefix))
            .map(|a| format!("api {}", a.api_id().unwrap_or_default())),
    );
    let fns = aws_sdk_lambda::Client::new(conf)
        .list_functions()
        .send()
        .await
        .unwrap();
    left.extend(
        fns.functions()
            .iter()
            .filter_map(|f| f.function_name())
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(|n| format!("function {n}")),
    );
    for group_prefix in [
        format!("/aws/lambda/{prefix}-"),
        format!("/aws/apigateway/{prefix}-"),
        "API-Gateway-Execution-Logs_".to_string(),
    ] {
        let groups = aws_sdk_cloudwatchlogs::Client::new(conf)
            .describe_log_groups()
            .log_group_name_prefix(group_prefix)
            .send()
            .await
            .unwrap();
        left.extend(
            groups
                .log_groups()
                .iter()
                .filter_map(|g| g.log_group_name())
                .map(|n| format!("log group {n}")),
        );
    }
    let iam = aws_sdk_iam::Client::new(conf);
    left.extend(
        iam.list_roles()
            .send()
            .await
            .unwrap()
            .roles()
            .iter()
            .map(aws_sdk_iam::types::Role::role_name)
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(|n| format!("role {n}")),
    );
    left.extend(
        iam.list_users()
            .send()
            .await
            .unwrap()
            .users()
            .iter()
            .map(aws_sdk_iam::types::User::user_name)
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(|n| format!("user {n}")),
    );
    left.extend(
        iam.list_policies()
            .scope(aws_sdk_iam::types::PolicyScopeType::Local)
            .send()
            .await
            .unwrap()
            .policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .filter(|n| n.starts_with(&format!("{prefix}-")))
            .map(|n| format!("policy {n}")),
    );
    left.extend(live_stage_keys(conf, prefix).await);
    left
}

/// The stage's alias, and keys tagged as the stage's that are not on their way out (pending deletion): read key by
/// key, not through the tagging API wsdeploy uses.
pub(crate) async fn live_stage_keys(conf: &aws_config::SdkConfig, prefix: &str) -> Vec<String> {
    let kms = aws_sdk_kms::Client::new(conf);
    let mut left = vec![];
    let alias = format!("alias/wsdeploy/{prefix}");
    let aliases = kms.list_aliases().send().await.unwrap();
    if aliases
        .aliases()
        .iter()
        .any(|a| a.alias_name() == Some(&alias))
    {
        left.push(format!("kms alias {alias}"));
    }
    for k in kms.list_keys().send().await.unwrap().keys() {
        let id = k.key_id().unwrap();
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        let get = |key: &str| {
            tags.tags()
                .iter()
                .find(|t| t.tag_key() == key)
                .map(|t| t.tag_value().to_string())
        };
        let (Some(project), Some(stage)) = (get("wsdeploy:project"), get("wsdeploy:stage")) else {
            continue;
        };
        let meta = kms.describe_key().key_id(id).send().await.unwrap();
        let state = meta
            .key_metadata()
            .unwrap()
            .key_state()
            .unwrap()
            .as_str()
            .to_string();
        if format!("{project}-{stage}") == prefix && state != "PendingDeletion" {
            left.push(format!("kms key {id} ({state})"));
        }
    }
    left
}

/// A Lambda function's resource policy, as JSON.
pub(crate) async fn lambda_policy(lambda: &aws_sdk_lambda::Client, name: &str) -> Value {
    let out = lambda
        .get_policy()
        .function_name(name)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.policy().unwrap()).unwrap()
}

/// The first version's document of the managed policy `arn` (what a create wrote).
pub(crate) async fn first_version(iam: &aws_sdk_iam::Client, arn: &str) -> Value {
    let v = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id("v1")
        .send()
        .await
        .unwrap();
    decode(v.policy_version().unwrap().document().unwrap())
}

/// IAM's URL-encoded policy documents, as JSON.
pub(crate) fn decode(doc: &str) -> Value {
    serde_json::from_str(
        &percent_encoding::percent_decode_str(doc)
            .decode_utf8()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_up_noop_change_teardown() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    // The role takes longer to reach Lambda than the stage key's own wait, which runs beside it.
    proxy.layer().set(crate::support::aws_behaviour::Behaviour {
        role_propagation: Some(std::time::Duration::from_secs(1)),
        ..crate::support::aws_behaviour::Behaviour::aws()
    });
    let app = App::new(&proxy.endpoint, BASE);
    std::fs::write(&app.frontend_env, "# the frontend's own settings\r\nexport API_URL='https://api.example.com'\r\nVITE_WS_URL=stale").unwrap();

    let up = app
        .run(&["up", "--output", "json"])
        .show(&app.backend_env)
        .expect(0);
    let out = up.json();
    let api_id = out["api_id"].as_str().unwrap().to_string();
    // Real AWS's behaviour met on the way (the layer in front of moto), and handled: the new role waited for, the
    // new functions waited on until Active, the new key waited for until AWS accepted it, and not one concurrent
    // modification 409 from the API's own writes.
    let hits = proxy.layer().hits();
    for met in [
        "new role not yet assumable",
        "lambda read while Pending/InProgress",
        "new access key not yet valid",
        "new KMS key not yet available",
    ] {
        up.check(
            hits.get(met).copied().unwrap_or(0) > 0,
            &format!("the layer never played {met:?}: {hits:?}"),
        );
    }
    up.check(
        !hits.contains_key("apigw concurrent modification (409)")
            && !hits.contains_key("lambda update while Pending/InProgress (409)"),
        &format!("up's own writes collided: {hits:?}"),
    );
    let waited: Vec<&str> = out["waits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["for"].as_str().unwrap())
        .collect();
    up.check(
        waited.contains(&"function chat-dev-connect ready")
            && waited.iter().any(|w| w.starts_with("access key ")),
        &format!("up says what it waited for: {waited:?}"),
    );
    assert_eq!(
        out["websocket_url"],
        format!("wss://{api_id}.execute-api.{REGION}.amazonaws.com/dev")
    );
    assert_eq!(
        out["management_endpoint"],
        format!("https://{api_id}.execute-api.{REGION}.amazonaws.com/dev")
    );
    assert_eq!(out["functions"]["connect"], "chat-dev-connect");
    assert!(
        out.get("secrets").is_none(),
        "secrets only with --show-secrets"
    );

    // The env files, with the right values and modes, every unmanaged byte kept.
    let front = std::fs::read_to_string(&app.frontend_env).unwrap();
    assert_eq!(front, format!("# the frontend's own settings\r\nexport API_URL='https://api.example.com'\r\nVITE_WS_URL=wss://{api_id}.execute-api.{REGION}.amazonaws.com/dev"));
    let back = env_file(&app.backend_env);
    assert_eq!(
        mode(&app.backend_env),
        0o600,
        "the backend's env file holds secrets"
    );
    assert_eq!(
        back["WS_API_ENDPOINT"],
        out["management_endpoint"].as_str().unwrap()
    );
    assert_eq!(back["WS_API_REGION"], REGION);
    let (key_id, key_secret, signing) = (
        &back["WS_API_ACCESS_KEY_ID"],
        &back["WS_API_SECRET_ACCESS_KEY"],
        &back["WS_SIGNING_SECRET"],
    );
    assert!(key_id.starts_with("AKIA") && key_secret.len() >= 20 && signing.len() >= 32);
    assert_no_secret_in(&up, &[key_secret, signing]);

    // Every resource, read back through the SDK straight from moto.
    let conf = moto.sdk_config().await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let built = wsdeploy(&app.dir, &["build", "--arch", "x86_64", "--output", "json"])
        .env("WSDEPLOY_CACHE_DIR", cache())
        .expect(0)
        .json();
    for f in ["connect", "disconnect"] {
        let name = format!("chat-dev-{f}");
        let got = lambda
            .get_function()
            .function_name(&name)
            .send()
            .await
            .unwrap();
        let c = got.configuration().unwrap();
        assert_eq!(c.runtime().unwrap().as_str(), "provided.al2023");
        assert_eq!(c.handler(), Some("bootstrap"));
        assert_eq!(
            c.architectures()
                .iter()
                .map(aws_sdk_lambda::types::Architecture::as_str)
                .collect::<Vec<_>>(),
            vec!["x86_64"]
        );
        assert_eq!((c.memory_size(), c.timeout()), (Some(128), Some(10)));
        assert_eq!(
            c.role(),
            Some(format!("arn:aws:iam::{ACCOUNT}:role/chat-dev-lambda").as_str())
        );
        assert_eq!(
            c.code_sha256(),
            built["functions"][f]["code_sha256"].as_str(),
            "the uploaded zip is the built one"
        );
        let vars = c.environment().unwrap().variables().unwrap();
        assert_eq!(vars["WSDEPLOY_BACKEND_URL"], "https://api.example.com");
        assert_eq!(vars["WSDEPLOY_BACKEND_TIMEOUT_MS"], "3000");
        assert_eq!(
            (
                vars["WSDEPLOY_API_ID"].as_str(),
                vars["WSDEPLOY_STAGE"].as_str()
            ),
            (api_id.as_str(), "dev"),
            "the functions refuse events of any other API and stage, so they know theirs"
        );
        assert_eq!(
            &vars["WSDEPLOY_SIGNING_SECRET"], signing,
            "the functions and the backend share one signing secret"
        );
        let tags = got.tags().unwrap();
        assert_eq!(
            (
                tags["wsdeploy:project"].as_str(),
                tags["wsdeploy:stage"].as_str(),
                tags["team"].as_str()
            ),
            ("chat", "dev", "web")
        );
        let policy = lambda_policy(&lambda, &name).await;
        let st = &policy["Statement"][0];
        assert_eq!(st["Principal"]["Service"], "apigateway.amazonaws.com");
        assert_eq!(
            st["Condition"]["ArnLike"]["AWS:SourceArn"],
            format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/*"),
            "invoke scoped to this API"
        );
        let logs = aws_sdk_cloudwatchlogs::Client::new(&conf)
            .describe_log_groups()
            .log_group_name_prefix(format!("/aws/lambda/{name}"))
            .send()
            .await
            .unwrap();
        assert_eq!(logs.log_groups()[0].retention_in_days(), Some(14));
    }
    let iam = aws_sdk_iam::Client::new(&conf);
    let role = iam
        .get_role()
        .role_name("chat-dev-lambda")
        .send()
        .await
        .unwrap();
    assert_eq!(
        decode(role.role().unwrap().assume_role_policy_document().unwrap())["Statement"][0]
            ["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
    let logs_policy = decode(
        iam.get_role_policy()
            .role_name("chat-dev-lambda")
            .policy_name("chat-dev-logs")
            .send()
            .await
            .unwrap()
            .policy_document(),
    );
    for r in logs_policy["Statement"][0]["Resource"].as_array().unwrap() {
        assert!(
            r.as_str().unwrap().starts_with(&format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/chat-dev-"
            )),
            "{r}"
        );
    }
    let user_policy = decode(
        iam.get_user_policy()
            .user_name("chat-dev-backend")
            .policy_name("chat-dev-manage-connections")
            .send()
            .await
            .unwrap()
            .policy_document(),
    );
    assert_eq!(
        user_policy["Statement"][0]["Action"],
        "execute-api:ManageConnections"
    );
    assert_eq!(
        user_policy["Statement"][0]["Resource"],
        format!("arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/dev/*/@connections/*")
    );
    let keys = iam
        .list_access_keys()
        .user_name("chat-dev-backend")
        .send()
        .await
        .unwrap();
    assert_eq!(
        keys.access_key_metadata()
            .iter()
            .map(|k| k.access_key_id().unwrap())
            .collect::<Vec<_>>(),
        vec![key_id.as_str()]
    );

    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let api = apigw.get_api().api_id(&api_id).send().await.unwrap();
    assert_eq!(
        (api.name(), api.route_selection_expression()),
        (Some("chat-dev"), Some("$request.body.action"))
    );
    assert_eq!(api.protocol_type().unwrap().as_str(), "WEBSOCKET");
    let integrations = apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    let integration_of = |f: &str| {
        integrations
            .items()
            .iter()
            .find(|i| {
                i.integration_uri()
                    .is_some_and(|u| u.contains(&format!("function:chat-dev-{f}/")))
            })
            .map(|i| i.integration_id().unwrap().to_string())
            .unwrap()
    };
    // A proxy per function, and the heartbeat's MOCK.
    let mut kinds: Vec<&str> = integrations
        .items()
        .iter()
        .map(|i| i.integration_type().unwrap().as_str())
        .collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["AWS_PROXY", "AWS_PROXY", "MOCK"]);
    let routes = apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let mut keys_seen: Vec<&str> = routes
        .items()
        .iter()
        .map(|r| r.route_key().unwrap())
        .collect();
    keys_seen.sort_unstable();
    assert_eq!(keys_seen, vec!["$disconnect", "auth", "ping"]);
    let auth = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("auth"))
        .unwrap();
    assert_eq!(
        auth.target(),
        Some(format!("integrations/{}", integration_of("connect")).as_str())
    );
    assert_eq!(
        auth.route_response_selection_expression(),
        Some("$default"),
        "auth replies to the client"
    );
    let stage = apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("dev")
        .send()
        .await
        .unwrap();
    assert_eq!(stage.auto_deploy(), Some(true));

    // Nothing changed: no mutating request, nothing uploaded.
    proxy.take();
    let again = app.run(&["up"]).expect(0);
    let seen = proxy.take();
    let mutating: Vec<&str> = seen
        .iter()
        .filter(|s| s.mutating)
        .map(|s| s.op.as_str())
        .collect();
    again.check(
        mutating.is_empty(),
        &format!("a second up made mutating requests: {mutating:?}"),
    );
    assert!(
        seen.iter().all(|s| s.bytes < 10_000),
        "nothing uploaded: the zips' SHA-256 matched CodeSha256"
    );
    assert!(again.stdout.contains("is up to date"));
    assert_eq!(
        env_file(&app.backend_env)["WS_API_ACCESS_KEY_ID"],
        *key_id,
        "the working key is kept"
    );

    // A new route changes only that route.
    app.config(&format!(
        "{BASE}routes: {{ auth: connect, $disconnect: disconnect, $default: connect }}\n"
    ));
    let plan = app.run(&["plan", "--output", "json"]).expect(0).json();
    assert_eq!(
        plan["summary"],
        serde_json::json!({"create": 2, "update": 0, "delete": 0}),
        "{plan:#}"
    );
    // `wsdeploy plan | head -1`: a reader that goes away early is not an error.
    let (to, from) = tokio::net::unix::pipe::pipe().unwrap();
    drop(from);
    let closed = app
        .run(&["plan"])
        .stdout(to.into_blocking_fd().unwrap())
        .run();
    closed.check(closed.code == 0, "plan into a closed pipe exits 0");
    proxy.take();
    app.run(&["up"]).expect(0);
    let mutating = proxy.take_writes();
    // API Gateway serialises writes on an API: the route is created with its response selection, so two writes.
    assert_eq!(
        mutating.len(),
        2,
        "create the route selecting its response, then the response: {mutating:?}"
    );
    assert!(
        mutating
            .iter()
            .all(|op| op.contains(&format!("/v2/apis/{api_id}/routes"))),
        "{mutating:?}"
    );
    let (apigw, default) = route(&proxy, &api_id, "$default").await;
    assert_eq!(
        default.route_response_selection_expression(),
        Some("$default")
    );
    let responses = apigw
        .get_route_responses()
        .api_id(&api_id)
        .route_id(default.route_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(responses.items().len(), 1, "its $default response");

    // Teardown leaves nothing with the stage's names, and cleans the env files but for the user's own lines.
    let down = app
        .run(&["teardown", "--yes", "--output", "json"])
        .expect(0);
    assert_eq!(
        down.json()["deleted"],
        9,
        "seven resources, the access log group and the KMS key"
    );
    assert_no_secret_in(&down, &[key_secret, signing]);
    let left = leftovers(&conf, "chat-dev").await;
    assert!(left.is_empty(), "teardown left {left:?}");
    assert_eq!(
        std::fs::read_to_string(&app.frontend_env).unwrap(),
        "# the frontend's own settings\r\nexport API_URL='https://api.example.com'\r\n"
    );
    assert!(env_file(&app.backend_env).is_empty());
    let twice = app.run(&["teardown", "--yes"]).expect(0);
    twice.check(
        twice.stderr.contains("Nothing to delete"),
        "a second teardown says there is nothing to do",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_stages_live_side_by_side() {
    let moto = Moto::start();
    let config = format!(
        "{BASE}stages:\n  dev: {{}}\n  prod:\n    lambda: {{ memory_mb: 256 }}\n    env:\n      frontend: {{ file: ../frontend/.env.production }}\n      backend: {{ file: ../backend/.env.production }}\n"
    );
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, &config);
    let dev = app
        .run(&["up", "-s", "dev", "--output", "json"])
        .expect(0)
        .json();
    let prod = app
        .run(&["up", "-s", "prod", "--output", "json"])
        .expect(0)
        .json();
    assert_ne!(dev["api_id"], prod["api_id"]);
    let conf = moto.sdk_config().await;
    let prod_fn = aws_sdk_lambda::Client::new(&conf)
        .get_function()
        .function_name("chat-prod-connect")
        .send()
        .await
        .unwrap();
    assert_eq!(prod_fn.configuration().unwrap().memory_size(), Some(256));
    assert!(env_file(&app.frontend_env)["VITE_WS_URL"].ends_with("/dev"));
    assert!(
        env_file(&app.frontend_env.with_extension("production"))["VITE_WS_URL"].ends_with("/prod")
    );

    app.run(&["teardown", "-s", "dev", "--yes"]).expect(0);
    assert!(leftovers(&conf, "chat-dev").await.is_empty());
    let prod_left = leftovers(&conf, "chat-prod").await;
    assert_eq!(
        prod_left.len(),
        1 + 2 + 3 + 1 + 1 + 2,
        "prod is untouched: {prod_left:?}"
    );
    let out = app
        .run(&["outputs", "-s", "prod", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["api_id"], prod["api_id"]);
    let api = prod["api_id"].as_str().unwrap();
    let text = app.run(&["outputs", "-s", "prod"]).expect(0).stdout;
    // The ids AWS chose differ from run to run; the layout and everything else is the same.
    let key_line = |l: &str| l.trim_start().starts_with("access_key_id");
    let text: Vec<String> = text
        .replace(api, "<api-id>")
        .lines()
        .map(|l| {
            if key_line(l) {
                "  access_key_id        <access-key-id>".into()
            } else {
                l.to_string()
            }
        })
        .collect();
    insta::assert_snapshot!("outputs_text", text.join("\n"));
    let noop = app
        .run(&["plan", "-s", "prod", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(
        noop["actions"],
        serde_json::json!([]),
        "tearing dev down did not disturb prod"
    );
}

/// The heartbeat as deployed: the `ping` route on a MOCK integration whose request template sets the status and
/// whose `$default` integration response is the reply, and the route replying through its `$default` response; no
/// function is involved. `heartbeat: false` removes both.
#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeat_is_a_mock_integration_that_no_function_serves() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let out = app.run(&["up", "--output", "json"]).expect(0).json();
    let api = out["api_id"].as_str().unwrap().to_string();
    let (apigw, ping) = route(&proxy, &api, "ping").await;
    assert_eq!(ping.route_response_selection_expression(), Some("$default"));
    let target = ping
        .target()
        .unwrap()
        .strip_prefix("integrations/")
        .unwrap();
    let mock = apigw
        .get_integration()
        .api_id(&api)
        .integration_id(target)
        .send()
        .await
        .unwrap();
    assert_eq!(mock.integration_type().unwrap().as_str(), "MOCK");
    assert_eq!(mock.template_selection_expression(), Some(r"\$default"));
    assert_eq!(
        mock.request_templates()
            .unwrap()
            .get("$default")
            .map(String::as_str),
        Some(r#"{"statusCode": 200}"#)
    );
    let responses = apigw
        .get_integration_responses()
        .api_id(&api)
        .integration_id(target)
        .send()
        .await
        .unwrap();
    let reply = &responses.items()[0];
    assert_eq!(reply.integration_response_key(), Some("$default"));
    assert_eq!(
        reply
            .response_templates()
            .unwrap()
            .get("$default")
            .map(String::as_str),
        Some(r#"{"action":"pong"}"#)
    );
    let again = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(
        again["changes"], 0,
        "the heartbeat is found again as it was made"
    );

    app.config(&format!("{BASE}heartbeat: false\n"));
    app.run(&["up"]).expect(0);
    let routes = apigw.get_routes().api_id(&api).send().await.unwrap();
    assert!(routes.items().iter().all(|r| r.route_key() != Some("ping")));
    let integrations = apigw.get_integrations().api_id(&api).send().await.unwrap();
    assert!(integrations
        .items()
        .iter()
        .all(|i| i.integration_type().unwrap().as_str() != "MOCK"));
}

async fn reserved(lambda: &aws_sdk_lambda::Client, name: &str) -> Option<i32> {
    lambda
        .get_function_concurrency()
        .function_name(name)
        .send()
        .await
        .unwrap()
        .reserved_concurrent_executions()
}

/// `lambda.reserved_concurrency` reserves (and caps) each function's concurrency; a reservation the account's
/// quota cannot hold (Lambda keeps 100 unreserved) fails with what to do; removing the key gives it back.
#[tokio::test(flavor = "multi_thread")]
async fn reserved_concurrency_is_applied_and_a_refusal_says_what_to_do() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let with = |n: u32| {
        BASE.replace(
            "  architecture: x86_64\n",
            &format!("  architecture: x86_64\n  reserved_concurrency: {n}\n"),
        )
    };
    let app = App::new(&proxy.endpoint, &with(5));
    app.run(&["up"]).expect(0);
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    for f in ["chat-dev-connect", "chat-dev-disconnect"] {
        assert_eq!(reserved(&lambda, f).await, Some(5), "{f}");
    }
    let again = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(again["changes"], 0);

    app.config(&with(600));
    let refused = app.run(&["up"]).expect(1);
    refused.check(
        refused
            .stderr
            .contains("cannot reserve 600 concurrent executions")
            && refused.stderr.contains("Concurrent executions\" quota"),
        "says the account's quota is the limit and what to do",
    );

    app.config(BASE);
    app.run(&["up"]).expect(0);
    for f in ["chat-dev-connect", "chat-dev-disconnect"] {
        assert_eq!(
            reserved(&lambda, f).await,
            None,
            "{f} is back in the shared pool"
        );
    }
}

/// The `dev` stage of a first `up`, read through the proxy: the layer lays what moto cannot store (UpdateStage,
/// route settings) over moto's stage.
pub(crate) struct DevStage {
    pub(crate) apigw: aws_sdk_apigatewayv2::Client,
    pub(crate) api: String,
}

impl DevStage {
    pub(crate) async fn up(app: &App, proxy: &Proxy) -> DevStage {
        let api = app.run(&["up", "--output", "json"]).expect(0).json()["api_id"]
            .as_str()
            .unwrap()
            .to_string();
        let apigw = aws_sdk_apigatewayv2::Client::new(
            &crate::support::moto::sdk_config_at(&proxy.endpoint).await,
        );
        DevStage { apigw, api }
    }

    pub(crate) async fn read(&self) -> aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput {
        self.apigw
            .get_stage()
            .api_id(&self.api)
            .stage_name("dev")
            .send()
            .await
            .unwrap()
    }
}

/// The stage's throttle: API Gateway's account-wide defaults (10,000/s) would let one flooding client reach the
/// functions and the backend, so every stage gets a small app's limits unless the config says otherwise; a change
/// is one `UpdateStage` (which moto lacks: the layer plays it), and then nothing is left to do.
#[tokio::test(flavor = "multi_thread")]
async fn every_stage_is_throttled_and_a_new_limit_is_one_update() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let dev = DevStage::up(&app, &proxy).await;
    let limits = || async {
        let stage = dev.read().await;
        let r = stage.default_route_settings().unwrap();
        (r.throttling_rate_limit(), r.throttling_burst_limit())
    };
    assert_eq!(
        limits().await,
        (Some(100.0), Some(200)),
        "a small app's defaults"
    );

    // With an expected load, plan prices it as `cost` does.
    app.config(&format!("{BASE}throttle: {{ rate: 20, burst: 40 }}\nexpect: {{ connections: 1000, messages_per_minute: 600 }}\n"));
    let plan = app.run(&["plan"]).expect(0);
    let cost = app.run(&["cost", "--output", "json"]).expect(0).json()["usd_per_month"].clone();
    let line = format!(
        "Cost: about ${:.2} a month at 1k sockets and 600 messages a minute",
        cost.as_f64().unwrap()
    );
    plan.check(
        plan.stdout
            .contains("~ stage             dev  (throttle 20/s, burst 40)")
            && plan
                .stdout
                .contains("0 to create, 1 to update, 0 to delete")
            && plan.stdout.contains(&line),
        "one update of the stage, and the cost",
    );
    assert_eq!(
        app.run(&["plan", "--output", "json"]).expect(0).json()["cost_usd_per_month"],
        cost
    );
    app.run(&["up"]).expect(0);
    assert_eq!(limits().await, (Some(20.0), Some(40)));
    let again = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(again["changes"], 0);
}

/// A route's own throttle (`throttle.routes`): set once its route exists (API Gateway refuses settings for a route
/// it does not have, on a new stage too), always with both limits (one left out would be API Gateway's default, not
/// the stage's), and removed before its route is deleted, since settings left for a deleted route make every later
/// stage update fail. The layer plays all three refusals.
#[tokio::test(flavor = "multi_thread")]
async fn a_route_has_its_own_throttle_until_it_goes() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let routes = "routes: { auth: connect, $disconnect: disconnect, typing: connect }\n";
    let app = App::new(
        &proxy.endpoint,
        &format!("{BASE}{routes}throttle: {{ rate: 50, routes: {{ auth: {{ rate: 5 }}, typing: {{ rate: 1, burst: 2 }} }} }}\n"),
    );
    let dev = DevStage::up(&app, &proxy).await;
    let routes_limits = || async {
        let stage = dev.read().await;
        let mut out: Vec<(String, Option<f64>, Option<i32>)> = stage
            .route_settings()
            .into_iter()
            .flatten()
            .map(|(k, r)| {
                (
                    k.clone(),
                    r.throttling_rate_limit(),
                    r.throttling_burst_limit(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    assert_eq!(
        routes_limits().await,
        vec![
            ("auth".to_string(), Some(5.0), Some(200)),
            ("typing".to_string(), Some(1.0), Some(2)),
        ],
        "the burst left out is the stage's"
    );
    assert_eq!(
        app.run(&["up", "--output", "json"]).expect(0).json()["changes"],
        0
    );

    // typing goes, its throttle with it, before the route.
    app.config(&format!(
        "{BASE}throttle: {{ rate: 50, routes: {{ auth: {{ rate: 5 }} }} }}\n"
    ));
    let plan = app.run(&["plan"]).expect(0);
    plan.check(
        plan.stdout.contains("- route throttle    typing")
            && plan.stdout.contains("- route             typing"),
        "the throttle and the route go",
    );
    app.run(&["up"]).expect(0);
    assert_eq!(
        routes_limits().await,
        vec![("auth".to_string(), Some(5.0), Some(200))]
    );
    // Any stage update would fail had typing's settings stayed behind.
    app.config(&format!(
        "{BASE}throttle: {{ rate: 60, routes: {{ auth: {{ rate: 5 }} }} }}\n"
    ));
    app.run(&["up"]).expect(0);
}

/// `status` on a healthy stage, then on one broken three ways behind wsdeploy's back (the connect function's
/// invoke permission removed, the auth route's response deleted, the backend's key deactivated): each problem is
/// named with what it does to users and its fix, exit 1; after `up`, healthy again.
#[tokio::test(flavor = "multi_thread")]
async fn status_names_each_problem_with_its_fix() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let dev = DevStage::up(&app, &proxy).await;
    // Access logs are on by default, but the account has no CloudWatch role yet.
    let unlogged = app.run(&["status"]).expect(1);
    unlogged.check(
        unlogged
            .stdout
            .contains("have no CloudWatch role, so the stage dev has none of the access logs")
            && unlogged.stdout.contains("--setup-account-logging"),
        "the missing account role is a problem, with its fix",
    );
    app.run(&["up", "--setup-account-logging", "--yes"])
        .expect(0);
    insta::assert_snapshot!("status_without_account_logging", unlogged.stdout);
    let healthy = app.run(&["status"]).expect(0);
    healthy.check(healthy.stdout.contains("is healthy"), "healthy after up");
    insta::assert_snapshot!("status_healthy", healthy.stdout);

    let conf = crate::support::moto::sdk_config_at(&proxy.endpoint).await;
    aws_sdk_lambda::Client::new(&conf)
        .remove_permission()
        .function_name("chat-dev-connect")
        .statement_id("wsdeploy-apigateway-invoke")
        .send()
        .await
        .unwrap();
    crate::support::moto::delete_route_responses(&dev.apigw, &dev.api, "auth").await;
    let key = env_file(&app.backend_env)["WS_API_ACCESS_KEY_ID"].clone();
    aws_sdk_iam::Client::new(&conf)
        .update_access_key()
        .user_name("chat-dev-backend")
        .access_key_id(&key)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();

    let broken = app.run(&["status"]).expect(1);
    for line in [
        "✗ API Gateway may not invoke chat-dev-connect: the routes it serves answer \"Internal server error\"",
        "✗ the route auth has no response: clients never hear its reply",
        &format!("✗ the backend's access key {key} is inactive: AWS refuses its @connections calls"),
        "fix: run `wsdeploy up -s dev --rotate-credentials`, then restart your backend with its env file",
        "fix: run `wsdeploy up -s dev`",
    ] {
        broken.check(broken.stdout.contains(line), line);
    }
    insta::assert_snapshot!(
        "status_broken",
        broken.stdout.replace(&key, "<access-key-id>")
    );
    // The report, then the error document, as every verb that fails with --output json.
    let out = app.run(&["status", "--output", "json"]).expect(1).stdout;
    let json: Value = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(json["healthy"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), 3, "{json}");

    app.run(&["up", "--rotate-credentials"]).expect(0);
    let again = app.run(&["status"]).expect(0);
    again.check(again.stdout.contains("is healthy"), "healthy after up");
}

/// The API's route `key`, and a client reading through the layer (it answers `GetRouteResponses`, which moto lacks,
/// from moto's records).
async fn route(
    proxy: &Proxy,
    api: &str,
    key: &str,
) -> (
    aws_sdk_apigatewayv2::Client,
    aws_sdk_apigatewayv2::types::Route,
) {
    let apigw = aws_sdk_apigatewayv2::Client::new(
        &crate::support::moto::sdk_config_at(&proxy.endpoint).await,
    );
    let routes = apigw.get_routes().api_id(api).send().await.unwrap();
    let found = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some(key))
        .unwrap_or_else(|| panic!("no route {key} in {api}"))
        .clone();
    (apigw, found)
}
