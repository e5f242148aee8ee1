//! The fan-out function's handler against a real HTTP `@connections` on 127.0.0.1:0 (wiremock), every post signed
//! with SigV4 as the function's role.

use std::time::{Duration, Instant};

use common::fanout::{Failure, Fanout, Outcome, Request};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fanout(endpoint: &str, extra: &[(&str, &str)]) -> Result<Fanout, String> {
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let endpoint = endpoint.to_string();
    Fanout::from_lookup(move |k| {
        if let Some((_, v)) = extra.iter().find(|(key, _)| key == k) {
            return Some(v.clone());
        }
        match k {
            "WSDEPLOY_API_ID" => Some("abc".into()),
            "WSDEPLOY_STAGE" => Some("dev".into()),
            "WSDEPLOY_MANAGEMENT_ENDPOINT" => Some(endpoint.clone()),
            "AWS_REGION" => Some("eu-west-3".into()),
            "AWS_ACCESS_KEY_ID" => Some("AKIDEXAMPLE".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".into()),
            _ => None,
        }
    })
}

async fn answering(routes: &[(&str, u16)]) -> MockServer {
    let server = MockServer::start().await;
    for (id, status) in routes {
        Mock::given(method("POST"))
            .and(path(format!("/dev/@connections/{id}")))
            .respond_with(ResponseTemplate::new(*status))
            .mount(&server)
            .await;
    }
    server
}

fn request(v: serde_json::Value) -> Request {
    serde_json::from_value(v).unwrap()
}

fn soon(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// Each id lands in exactly one of delivered, gone and failed; the posts are signed and carry the message as is.
#[tokio::test]
async fn every_socket_is_delivered_gone_or_failed_with_why() {
    let server = answering(&[("a", 200), ("b", 200), ("gone", 410), ("refused", 403)]).await;
    let f = fanout(&format!("{}/dev", server.uri()), &[]).unwrap();
    let mut out = f
        .handle(
            request(json!({ "connectionIds": ["a", "b", "gone", "refused"], "data": "hello" })),
            soon(10),
        )
        .await
        .unwrap();
    out.failed.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(
        out,
        Outcome {
            delivered: 2,
            gone: vec!["gone".into()],
            failed: vec![Failure {
                id: "refused".into(),
                error: "HTTP 403".into()
            }],
        }
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 4);
    for r in &reqs {
        assert_eq!(r.body, b"hello", "a string is posted as is");
        let auth = r.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && auth.contains("/eu-west-3/execute-api/aws4_request"),
            "{auth}"
        );
    }
}

/// A message per group of sockets (the templates' per-user ids); JSON data is posted as JSON.
#[tokio::test]
async fn groups_get_their_own_message() {
    let server = answering(&[("a1", 200), ("a2", 200), ("b1", 200)]).await;
    let f = fanout(&format!("{}/dev", server.uri()), &[]).unwrap();
    let out = f
        .handle(
            request(json!({ "posts": [
                { "data": { "type": "push", "id": 7 }, "connectionIds": ["a1", "a2"] },
                { "data": { "type": "push", "id": 3 }, "connectionIds": ["b1"] },
            ] })),
            soon(10),
        )
        .await
        .unwrap();
    assert_eq!(out.delivered, 3);
    let mut got: Vec<(String, String)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.url.path().to_string(),
                String::from_utf8(r.body.clone()).unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "/dev/@connections/a1".to_string(),
                r#"{"id":7,"type":"push"}"#.to_string()
            ),
            (
                "/dev/@connections/a2".into(),
                r#"{"id":7,"type":"push"}"#.into()
            ),
            (
                "/dev/@connections/b1".into(),
                r#"{"id":3,"type":"push"}"#.into()
            ),
        ]
    );
}

/// 429 and 5xx are tried again (with backoff) until they go through; a socket that never answers fails alone, at
/// the deadline, while the others are delivered.
#[tokio::test]
async fn throttled_posts_are_retried_and_a_slow_socket_holds_up_only_itself() {
    let server = MockServer::start().await;
    Mock::given(path("/dev/@connections/flaky"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(path("/dev/@connections/flaky"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(path("/dev/@connections/busy"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/dev/@connections/busy"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(path("/dev/@connections/stuck"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&server)
        .await;
    for i in 0..20 {
        Mock::given(path(format!("/dev/@connections/ok{i}")))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    let f = fanout(&format!("{}/dev", server.uri()), &[]).unwrap();
    let mut ids: Vec<String> = (0..20).map(|i| format!("ok{i}")).collect();
    ids.extend(["flaky".into(), "busy".into(), "stuck".into()]);
    let started = Instant::now();
    let out = f
        .handle(
            request(json!({ "connectionIds": ids, "data": "x" })),
            Instant::now() + Duration::from_millis(1500),
        )
        .await
        .unwrap();
    assert_eq!(out.delivered, 22, "{out:?}");
    assert_eq!(
        out.failed,
        vec![Failure {
            id: "stuck".into(),
            error: "timed out".into()
        }]
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the deadline: {:?}",
        started.elapsed()
    );
}

/// At most `WSDEPLOY_FANOUT_CONCURRENCY` posts at once: 8 posts of 200 ms each, 4 at a time, take two rounds.
#[tokio::test]
async fn posts_in_flight_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(200)))
        .mount(&server)
        .await;
    let f = fanout(
        &format!("{}/dev", server.uri()),
        &[("WSDEPLOY_FANOUT_CONCURRENCY", "4")],
    )
    .unwrap();
    let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    let started = Instant::now();
    let out = f
        .handle(
            request(json!({ "connectionIds": ids, "data": "x" })),
            soon(10),
        )
        .await
        .unwrap();
    assert_eq!(out.delivered, 8);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "8 posts, 4 at a time, took {took:?}"
    );
}

/// A request beyond the limits is refused whole, before anything is posted.
#[tokio::test]
async fn an_oversized_or_malformed_request_is_refused_before_any_post() {
    let server = answering(&[]).await;
    let f = fanout(
        &format!("{}/dev", server.uri()),
        &[("WSDEPLOY_FANOUT_MAX_CONNECTIONS", "3")],
    )
    .unwrap();
    let refused = |v: serde_json::Value| {
        let f = &f;
        async move { f.handle(request(v), soon(10)).await.unwrap_err() }
    };
    let e = refused(json!({ "connectionIds": ["a", "b", "c", "d"], "data": "x" })).await;
    assert!(
        e.contains("4 connection ids in one invoke, at most 3"),
        "{e}"
    );
    let e = refused(json!({ "connectionIds": ["a"] })).await;
    assert!(e.contains("without data"), "{e}");
    let e = refused(json!({ "connectionIds": ["a"], "data": "x".repeat(128 * 1024 + 1) })).await;
    assert!(e.contains("at most 131072"), "{e}");
    let e = refused(json!({ "connectionIds": [""], "data": "x" })).await;
    assert!(e.contains("not a connection id"), "{e}");
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(
        serde_json::from_value::<Request>(json!({ "connectionIds": [], "dta": 1 })).is_err(),
        "unknown fields are refused"
    );
    let empty = f.handle(Request::default(), soon(10)).await.unwrap();
    assert_eq!(empty, Outcome::default());
}

#[test]
fn settings_say_what_is_missing() {
    let e = Fanout::from_lookup(|_| None).err().unwrap();
    assert!(e.contains("WSDEPLOY_API_ID is not set"), "{e}");
    let e = fanout(
        "http://127.0.0.1:9",
        &[("WSDEPLOY_FANOUT_CONCURRENCY", "0")],
    )
    .err()
    .unwrap();
    assert!(e.contains("WSDEPLOY_FANOUT_CONCURRENCY=0"), "{e}");
    let e = fanout("http://127.0.0.1:9", &[("AWS_ACCESS_KEY_ID", "")])
        .err()
        .unwrap();
    assert!(e.contains("credentials"), "{e}");
}
