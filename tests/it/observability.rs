//! Seeing a deployed stage, on moto through the AWS-behaviour layer: access and execution logs, which API Gateway
//! refuses until the account has its CloudWatch role (set only when asked, and asked for on a terminal);
//! `wsdeploy logs` reading the stage's log groups; the last hour's metrics in `status`.

use crate::deploy::{leftovers, App, DevStage, BASE};
use crate::support::moto::{sdk_config_at, Moto, ACCOUNT, REGION};
use crate::support::proxy::Proxy;

const ACCESS_GROUP: &str = "/aws/apigateway/chat-dev-access";

async fn account_role(conf: &aws_config::SdkConfig) -> Option<String> {
    aws_sdk_apigateway::Client::new(conf)
        .get_account()
        .send()
        .await
        .unwrap()
        .cloudwatch_role_arn()
        .filter(|a| !a.is_empty())
        .map(str::to_string)
}

async fn retention(conf: &aws_config::SdkConfig, group: &str) -> Option<Option<i32>> {
    let out = aws_sdk_cloudwatchlogs::Client::new(conf)
        .describe_log_groups()
        .log_group_name_prefix(group)
        .send()
        .await
        .unwrap();
    out.log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(group))
        .map(aws_sdk_cloudwatchlogs::types::LogGroup::retention_in_days)
}

/// Access logs are on by default, but API Gateway refuses any logging setting while the account has no CloudWatch
/// role (the layer plays the refusal): `up` deploys the stage without them and says how to fix it; the flag creates
/// and sets the role (waiting out IAM's propagation), asks first, and needs `--yes` without a terminal; turning
/// access logs off and execution logs on is one stage update; `teardown` leaves the account's role to the account.
#[tokio::test(flavor = "multi_thread")]
async fn access_logs_wait_for_the_account_role_which_is_set_only_when_asked() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = sdk_config_at(&proxy.endpoint).await;
    let app = App::new(
        &proxy.endpoint,
        &format!("{BASE}logs: {{ retention_days: 30 }}\n"),
    );

    let first = app.run(&["up"]).expect(0);
    first.check(
        first.stderr.contains("have no CloudWatch role, so the stage dev has none of the access logs its config asks for")
            && first.stderr.contains("wsdeploy up -s dev --setup-account-logging"),
        "up says why the stage has no access logs and how to fix it",
    );
    let dev = DevStage {
        apigw: aws_sdk_apigatewayv2::Client::new(&conf),
        api: app.run(&["outputs", "--output", "json"]).expect(0).json()["api_id"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    assert!(dev.read().await.access_log_settings().is_none());
    assert_eq!(
        retention(&conf, ACCESS_GROUP).await,
        Some(Some(30)),
        "the group is ready, with its retention"
    );
    assert_eq!(account_role(&conf).await, None);

    // In CI the account-wide change needs --yes as well; nothing is changed without it.
    let refused = app.run(&["up", "--setup-account-logging"]).expect(2);
    refused.check(
        refused.stderr.contains("pass --yes as well"),
        "says to pass --yes",
    );
    assert_eq!(account_role(&conf).await, None);

    let plan = app.run(&["plan", "--setup-account-logging"]).expect(0);
    plan.check(
        plan.stdout
            .contains("+ account logging   wsdeploy-apigateway-cloudwatch")
            && plan
                .stdout
                .contains("~ account logging   wsdeploy-apigateway-cloudwatch")
            && plan.stdout.contains(&format!(
                "~ stage             dev  (access logs → {ACCESS_GROUP})"
            )),
        "plan shows the role, the account setting and the stage's logs",
    );
    app.run(&["up", "--setup-account-logging", "--yes"])
        .expect(0);
    let role = format!("arn:aws:iam::{ACCOUNT}:role/wsdeploy-apigateway-cloudwatch");
    assert_eq!(account_role(&conf).await.as_deref(), Some(role.as_str()));
    let hits = proxy.layer().hits();
    assert!(
        hits.get("account role refused until IAM propagates it")
            .copied()
            .unwrap_or(0)
            >= 1,
        "the new role met IAM's propagation delay: {hits:?}"
    );
    let stage = dev.read().await;
    let access = stage.access_log_settings().expect("access logs on");
    assert_eq!(
        access.destination_arn(),
        Some(format!("arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{ACCESS_GROUP}").as_str())
    );
    for field in [
        "connectionId",
        "routeKey",
        "eventType",
        "status",
        "integrationError",
        "requestId",
        "ip",
    ] {
        assert!(
            access.format().unwrap().contains(&format!("\"{field}\"")),
            "{field}"
        );
    }
    let again = app.run(&["plan"]).expect(0);
    again.check(again.stdout.contains("No changes"), "converged");

    // Access logs off, execution logs on: one update of the stage, and the access group goes.
    app.config(&format!(
        "{BASE}logs: {{ access: false, execution: info, retention_days: 30 }}\n"
    ));
    let plan = app.run(&["plan"]).expect(0);
    plan.check(
        plan.stdout
            .contains("(access logs off, execution logs info)")
            && plan
                .stdout
                .contains(&format!("- log group         {ACCESS_GROUP}")),
        "one stage update and the group's deletion",
    );
    app.run(&["up"]).expect(0);
    let stage = dev.read().await;
    assert!(stage.access_log_settings().is_none(), "{stage:?}");
    assert_eq!(
        stage
            .default_route_settings()
            .and_then(|r| r.logging_level())
            .map(aws_sdk_apigatewayv2::types::LoggingLevel::as_str),
        Some("INFO")
    );
    assert_eq!(retention(&conf, ACCESS_GROUP).await, None);
    let again = app.run(&["plan"]).expect(0);
    again.check(again.stdout.contains("No changes"), "converged");

    // API Gateway makes the execution log group when it first logs. The deploy identity keeps its retention but may
    // neither read nor delete it (no policy can tell it from another API's of a stage named dev): `logs` shows the
    // rest and says so, `teardown` leaves the group to empty within a day and says so.
    let exec = format!("API-Gateway-Execution-Logs_{}/dev", dev.api);
    aws_sdk_cloudwatchlogs::Client::new(&conf)
        .create_log_group()
        .log_group_name(&exec)
        .send()
        .await
        .unwrap();
    write_events(&conf, &exec, &[(1_000, "Received request")]).await;
    let policy = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
    proxy.layer().enforce(Some(&policy));
    let read = app.run(&["logs", "--since", "1h"]).expect(0);
    read.check(
        read.stderr
            .contains(&format!("not read: {exec}: this identity may not read it"))
            && !read.stdout.contains("Received request"),
        "the execution logs are skipped with a sentence",
    );
    let down = app.run(&["teardown", "--yes"]).expect(0);
    let said = format!("{}{}", down.stdout, down.stderr);
    down.check(
        said.contains("emptied within a day instead")
            && said.contains(&format!(
                "aws logs delete-log-group --log-group-name {exec}"
            )),
        "teardown says what it left and how to remove it",
    );
    assert_eq!(retention(&conf, &exec).await, Some(Some(1)));
    proxy.layer().enforce(None);
    let left: Vec<String> = leftovers(&conf, "chat-dev")
        .await
        .into_iter()
        .filter(|l| *l != format!("log group {exec}"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(
        account_role(&conf).await.as_deref(),
        Some(role.as_str()),
        "the account's, not the stage's"
    );
}

/// Writes `lines` (ms ago, message) into `group` as AWS would: a stream, then its events.
async fn write_events(conf: &aws_config::SdkConfig, group: &str, lines: &[(i64, &str)]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(conf);
    let stream = "2026/11/28/[$LATEST]0123456789abcdef";
    let _ = logs
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await;
    let now = now_ms();
    let events = lines.iter().map(|(ago, m)| {
        aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
            .timestamp(now - ago)
            .message(*m)
            .build()
            .unwrap()
    });
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events.collect()))
        .send()
        .await
        .unwrap();
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn access_line(event: &str, route: &str, id: &str, status: u16) -> String {
    format!(
        r#"{{"requestId":"req-{id}-{route}","requestTime":"-","eventType":"{event}","routeKey":"{route}","connectionId":"{id}","status":"{status}","integrationError":"-","integrationLatency":"12","error":"-","ip":"203.0.113.9"}}"#
    )
}

fn function_line(message: &str, id: &str) -> String {
    format!(
        r#"{{"timestamp":"2026-11-28T00:00:00Z","level":"INFO","fields":{{"message":"{message}","connection_id":"{id}"}}}}"#
    )
}

/// `wsdeploy logs` merges the API's access log and the functions' logs in time order, one readable line each, and
/// `--connection` follows one socket through all of them (a CloudWatch filter pattern, so only its events travel);
/// `--function` picks one source; `--output json` gives the raw events; `--follow` prints what arrives until
/// Ctrl-C. The events are written into the stage's real log groups as API Gateway and the functions write them.
#[tokio::test(flavor = "multi_thread")]
async fn logs_follow_one_connection_through_the_api_and_the_functions() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = sdk_config_at(&proxy.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    app.run(&["up"]).expect(0);
    let (a, b) = ("AbCdEfGhIjKlMnO=", "ZyXwVuTsRqPoNmL=");
    write_events(
        &conf,
        ACCESS_GROUP,
        &[
            (5000, &access_line("CONNECT", "$connect", a, 200)),
            (4800, &access_line("CONNECT", "$connect", b, 200)),
            (3000, &access_line("MESSAGE", "auth", a, 200)),
            (1000, &access_line("DISCONNECT", "$disconnect", a, 200)),
        ],
    )
    .await;
    write_events(
        &conf,
        "/aws/lambda/chat-dev-connect",
        &[
            (2900, &function_line("backend accepted the connection", a)),
            (2800, &function_line("backend accepted the connection", b)),
        ],
    )
    .await;
    write_events(
        &conf,
        "/aws/lambda/chat-dev-disconnect",
        &[(900, &function_line("backend dropped the connection", a))],
    )
    .await;

    let run = app.run(&["logs", "--connection", a]).expect(0);
    let lines: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect();
    insta::assert_snapshot!("logs_one_connection", lines.join("\n"));
    assert_eq!(
        lines,
        [
            format!(
                "api        CONNECT $connect {a} → 200 from 203.0.113.9 (12 ms) [req-{a}-$connect]"
            ),
            format!("api        MESSAGE auth {a} → 200 (12 ms) [req-{a}-auth]"),
            format!("connect    INFO backend accepted the connection connection_id={a}"),
            format!("api        DISCONNECT $disconnect {a} → 200 (12 ms) [req-{a}-$disconnect]"),
            format!("disconnect INFO backend dropped the connection connection_id={a}"),
        ],
        "{}",
        run.stdout
    );
    let all = app.run(&["logs", "--output", "json"]).expect(0).json();
    let events = all["events"].as_array().unwrap();
    assert_eq!(events.len(), 7);
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in time order: {times:?}"
    );
    assert_eq!(events[0]["source"], "api");
    let connect = app
        .run(&["logs", "--function", "connect", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(connect["events"].as_array().unwrap().len(), 2);
    let wrong = app.run(&["logs", "--function", "auth"]).expect(2);
    wrong.check(
        wrong
            .stderr
            .contains("give one of connect, disconnect or `api`"),
        "names the choices",
    );
    let old = app.run(&["logs", "--since", "1s"]).expect(0);
    old.check(
        old.stdout.is_empty() && old.stderr.contains("No log events in the last 1s"),
        "says there is none",
    );

    // --follow: what arrives after it started is printed, and Ctrl-C ends it cleanly.
    let mut follow = app
        .run(&["logs", "--follow", "--since", "1s", "--connection", b])
        .spawn_reading();
    let out = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("DISCONNECT"))
    });
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    write_events(
        &conf,
        ACCESS_GROUP,
        &[(0, &access_line("DISCONNECT", "$disconnect", b, 200))],
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !reader.is_finished() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let seen = reader.join().unwrap();
    assert!(
        seen.is_some_and(|l| l.contains(b)),
        "the new event was printed"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(follow.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = follow.wait().unwrap();
    assert!(status.success(), "Ctrl-C ends --follow cleanly: {status:?}");
}

async fn put_metric(
    cw: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    values: &[f64],
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let now = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    let data = values.iter().map(|v| {
        MetricDatum::builder()
            .metric_name(name)
            .set_dimensions(Some(
                dims.iter()
                    .map(|(k, x)| Dimension::builder().name(*k).value(*x).build())
                    .collect(),
            ))
            .value(*v)
            .timestamp(now.into())
            .build()
    });
    cw.put_metric_data()
        .namespace(namespace)
        .set_metric_data(Some(data.collect()))
        .send()
        .await
        .unwrap();
}

/// `status` ends with the last hour of CloudWatch: API Gateway's connections, messages and errors for the stage,
/// each function's invocations, errors and p99 duration, only what CloudWatch has. The SDK speaks CloudWatch's CBOR
/// protocol, which the layer translates for moto (and it plays the percentile moto does not compute).
#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_last_hours_metrics() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = sdk_config_at(&proxy.endpoint).await;
    let app = App::new(
        &proxy.endpoint,
        &format!("{BASE}logs: {{ access: false }}\n"),
    );
    let api = app.run(&["up", "--output", "json"]).expect(0).json()["api_id"]
        .as_str()
        .unwrap()
        .to_string();
    let quiet = app.run(&["status"]).expect(0);
    quiet.check(
        quiet.stdout.contains("Last hour: no traffic"),
        "says there is none yet",
    );

    let cw = aws_sdk_cloudwatch::Client::new(&conf);
    let stage = [("ApiId", api.as_str()), ("Stage", "dev")];
    put_metric(&cw, "AWS/ApiGateway", "ConnectCount", &stage, &[5.0, 7.0]).await;
    put_metric(&cw, "AWS/ApiGateway", "MessageCount", &stage, &[340.0]).await;
    put_metric(&cw, "AWS/ApiGateway", "ClientError", &stage, &[2.0]).await;
    let connect = [("FunctionName", "chat-dev-connect")];
    put_metric(&cw, "AWS/Lambda", "Invocations", &connect, &[12.0]).await;
    put_metric(&cw, "AWS/Lambda", "Errors", &connect, &[0.0]).await;
    put_metric(&cw, "AWS/Lambda", "Duration", &connect, &[20.0, 31.0, 45.0]).await;

    let json = app.run(&["status", "--output", "json"]).expect(0).json();
    let hour = &json["last_hour"];
    assert_eq!(hour["api"]["ConnectCount"], 12.0);
    assert_eq!(hour["api"]["MessageCount"], 340.0);
    assert_eq!(hour["api"]["ClientError"], 2.0);
    assert!(
        hour["api"].get("IntegrationError").is_none(),
        "no datapoint, no number: {hour}"
    );
    assert_eq!(hour["functions"]["chat-dev-connect"]["DurationP99"], 45.0);
    assert_eq!(hour["functions"]["chat-dev-connect"]["Errors"], 0.0);
    assert!(hour["functions"].get("chat-dev-disconnect").is_none());
    let text = app.run(&["status"]).expect(0);
    text.check(
        text.stdout.contains("Last hour:\n  API          12 connections, 340 messages, 2 client errors\n  chat-dev-connect  12 invocations, 0 errors, p99 45 ms"),
        "the last hour in a few lines",
    );
    insta::assert_snapshot!("status_with_the_last_hour", text.stdout);
    let hits = proxy.layer().hits();
    assert!(
        hits.contains_key("CloudWatch percentile computed by the layer"),
        "{hits:?}"
    );

    // CloudWatch denied: the health findings stand, the metrics are one line saying why, and the exit code is the
    // findings' (0 for a healthy stage).
    let mut policy = app.run(&["policy", "--output", "json"]).expect(0).json()["policy"].clone();
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["Sid"] != "ReadMetrics");
    proxy.layer().enforce(Some(&policy));
    let degraded = app.run(&["status"]).expect(0);
    degraded.check(
        degraded
            .stdout
            .contains("Stage dev in eu-west-3 (123456789012) is healthy")
            && degraded
                .stdout
                .contains("Not read: the last hour of CloudWatch metrics: cannot ")
            && degraded.stdout.contains("cloudwatch:GetMetricData"),
        "health, then what could not be read and why",
    );
    insta::assert_snapshot!("status_degraded", degraded.stdout);
    let json = app.run(&["status", "--output", "json"]).expect(0).json();
    assert_eq!(json["healthy"], true);
    assert!(json["last_hour"].is_null());
    assert_eq!(
        json["unread"][0]["what"],
        "the last hour of CloudWatch metrics"
    );
    proxy.layer().enforce(None);
}
