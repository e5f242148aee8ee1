//! The stage on a domain of its own, on moto through the AWS-behaviour layer: the certificate found, the regional
//! domain name and its mapping, the DNS record, and what `status` and `teardown` do with them.

use crate::deploy::{leftovers, App, BASE};
use crate::support::moto::{sdk_config_at, Moto};
use crate::support::proxy::Proxy;

/// A self-signed ECDSA (P-256) certificate and key for `name`, PEM, made with Python's `cryptography` (installed
/// with moto).
fn ec_certificate(name: &str) -> (String, String) {
    let script = r#"
import datetime, json, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
name = sys.argv[1]
key = ec.generate_private_key(ec.SECP256R1())
subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
    .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
    .not_valid_after(now + datetime.timedelta(days=90))
    .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    .sign(key, hashes.SHA256()))
print(json.dumps({"cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
    "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()}))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        v["cert"].as_str().unwrap().into(),
        v["key"].as_str().unwrap().into(),
    )
}

async fn a_record(
    route53: &aws_sdk_route53::Client,
    zone: &str,
    name: &str,
) -> Option<(String, String)> {
    let out = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .find(|r| {
            r.name().trim_end_matches('.') == name
                && r.r#type() == &aws_sdk_route53::types::RrType::A
        })
        .and_then(|r| r.alias_target())
        .map(|a| {
            (
                a.dns_name().trim_end_matches('.').to_string(),
                a.hosted_zone_id().to_string(),
            )
        })
}

/// `domain: { name }`: the certificate is found (an ECDSA one, which ACM lists only when asked for every key type),
/// a regional TLS 1.2 domain name is mapped to the stage at its root, the alias record goes into this account's
/// zone (with the regional host's zone, which Route 53 checks), the frontend gets `wss://{name}` while the backend
/// keeps the `execute-api` endpoint; `status` names a record that points elsewhere and `up` repairs it; without a
/// zone, the record to create is printed; without a certificate, nothing is created; `teardown` removes them all.
#[tokio::test(flavor = "multi_thread")]
async fn a_stage_on_its_own_domain_from_certificate_to_dns_record() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = sdk_config_at(&proxy.endpoint).await;
    let route53 = aws_sdk_route53::Client::new(&conf);
    let zone = route53
        .create_hosted_zone()
        .name("example.com")
        .caller_reference("test")
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    let acm = aws_sdk_acm::Client::new(&conf);
    let (cert, key) = ec_certificate("*.example.com");
    let arn = acm
        .import_certificate()
        .certificate(aws_smithy_types::Blob::new(cert))
        .private_key(aws_smithy_types::Blob::new(key))
        .send()
        .await
        .unwrap()
        .certificate_arn()
        .unwrap()
        .to_string();
    // AWS's default listing hides it (RSA only); asked for every key type, it is there.
    let listed = acm.list_certificates().send().await.unwrap();
    assert_eq!(
        listed.certificate_summary_list().len(),
        0,
        "the layer plays ACM's default filter"
    );

    let config = format!("{BASE}logs: {{ access: false }}\ndomain: {{ name: ws.example.com }}\n");
    let app = App::new(&proxy.endpoint, &config);
    let plan = app.run(&["plan"]).expect(0);
    plan.check(
        plan.stdout.contains(&format!(
            "+ domain name       ws.example.com  (regional, TLS 1.2, {arn})"
        )) && plan
            .stdout
            .contains("+ api mapping       ws.example.com  (the stage at its root)")
            && plan.stdout.contains(&format!(
                "+ dns record        ws.example.com  (A alias, zone {zone})"
            )),
        "plan shows the domain, its mapping and its record",
    );
    let up = app.run(&["up", "--output", "json"]).expect(0).json();
    assert_eq!(up["websocket_url"], "wss://ws.example.com");
    let target = up["domain"]["target"].as_str().unwrap().to_string();
    assert!(
        target.starts_with("d-") && target.ends_with(".execute-api.eu-west-3.amazonaws.com"),
        "{target}"
    );
    assert_eq!(
        up["domain"]["dns_record"],
        serde_json::Value::Null,
        "the zone is this account's"
    );
    assert_eq!(
        crate::support::util::env_file(&app.frontend_env)["VITE_WS_URL"],
        "wss://ws.example.com"
    );
    assert!(
        crate::support::util::env_file(&app.backend_env)["WS_API_ENDPOINT"]
            .contains(".execute-api.")
    );

    let apigw = aws_sdk_apigatewayv2::Client::new(&conf);
    let dom = apigw
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap();
    let c = &dom.domain_name_configurations()[0];
    assert_eq!(c.certificate_arn(), Some(arn.as_str()));
    assert_eq!(
        c.security_policy()
            .map(aws_sdk_apigatewayv2::types::SecurityPolicy::as_str),
        Some("TLS_1_2")
    );
    assert_eq!(
        c.endpoint_type()
            .map(aws_sdk_apigatewayv2::types::EndpointType::as_str),
        Some("REGIONAL")
    );
    let mappings = apigw
        .get_api_mappings()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap();
    let m = &mappings.items()[0];
    assert_eq!(
        (m.api_id(), m.stage(), m.api_mapping_key()),
        (up["api_id"].as_str(), Some("dev"), Some(""))
    );
    assert_eq!(
        a_record(&route53, &zone, "ws.example.com").await,
        Some((target.clone(), "Z3KY65QIEKYHQQ".to_string()))
    );
    let again = app.run(&["plan"]).expect(0);
    again.check(again.stdout.contains("No changes"), "converged");
    app.run(&["status"]).expect(0);

    // IPv6 too: the API and its domain change in place (AWS: no redeployment), and stay so.
    app.config(&format!("{config}ip_address_type: dualstack\n"));
    let dual = app.run(&["plan"]).expect(0);
    dual.check(
        dual.stdout.contains("~ websocket api")
            && dual.stdout.contains("ip address type dualstack")
            && dual.stdout.contains("~ domain name       ws.example.com"),
        "plan shows both changes",
    );
    app.run(&["up"]).expect(0);
    let api = apigw
        .get_api()
        .api_id(up["api_id"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let ip = |t: Option<&aws_sdk_apigatewayv2::types::IpAddressType>| {
        t.map(aws_sdk_apigatewayv2::types::IpAddressType::as_str)
            .map(str::to_string)
    };
    assert_eq!(ip(api.ip_address_type()).as_deref(), Some("dualstack"));
    let dom = apigw
        .get_domain_name()
        .domain_name("ws.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        ip(dom.domain_name_configurations()[0].ip_address_type()).as_deref(),
        Some("dualstack")
    );
    let again = app.run(&["plan"]).expect(0);
    again.check(again.stdout.contains("No changes"), "converged");

    // The record points elsewhere: status says so, up puts it back.
    use aws_sdk_route53::types::{
        AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
    };
    let elsewhere = "d-0000000000.execute-api.eu-west-3.amazonaws.com";
    let set = ResourceRecordSet::builder()
        .name("ws.example.com")
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .dns_name(elsewhere)
                .hosted_zone_id("Z3KY65QIEKYHQQ")
                .evaluate_target_health(false)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(set)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let broken = app.run(&["status"]).expect(1);
    broken.check(
        broken.stdout.contains(&format!("ws.example.com points at {elsewhere} in the zone example.com, not at the API's domain {target}: clients cannot connect to wss://ws.example.com")),
        "status names the wrong record",
    );
    app.run(&["up"]).expect(0);
    assert_eq!(
        a_record(&route53, &zone, "ws.example.com")
            .await
            .map(|r| r.0),
        Some(target.clone())
    );

    // A name without a certificate: nothing is created, and the error says how to get one.
    let other = App::new(
        &proxy.endpoint,
        &format!(
            "{}domain: {{ name: ws.nocert.org }}\n",
            BASE.replace("project: chat", "project: nocert")
        ),
    );
    let refused = other.run(&["up"]).expect(1);
    refused.check(
        refused
            .stderr
            .contains("no ISSUED ACM certificate in eu-west-3 covers ws.nocert.org: request one"),
        "says which certificate is missing and how to get one",
    );
    assert!(
        leftovers(&conf, "nocert-dev").await.is_empty(),
        "nothing was created"
    );

    // A name whose zone is not in this account: the record to create is printed and in the JSON.
    acm.request_certificate()
        .domain_name("ws.other.org")
        .send()
        .await
        .unwrap();
    let elsewhere_zone = App::new(
        &proxy.endpoint,
        &format!(
            "{}logs: {{ access: false }}\ndomain: {{ name: ws.other.org }}\n",
            BASE.replace("project: chat", "project: other")
        ),
    );
    let run = elsewhere_zone.run(&["up"]).expect(0);
    run.check(
        run.stdout
            .contains("DNS record to create ws.other.org CNAME d-"),
        "prints the record to create",
    );
    let out = elsewhere_zone
        .run(&["outputs", "--output", "json"])
        .expect(0)
        .json();
    assert_eq!(out["domain"]["dns_record"]["type"], "CNAME");
    assert!(out["domain"]["dns_record"]["value"]
        .as_str()
        .unwrap()
        .starts_with("d-"));
    elsewhere_zone.run(&["teardown", "--yes"]).expect(0);

    app.run(&["teardown", "--yes"]).expect(0);
    assert!(
        apigw
            .get_domain_name()
            .domain_name("ws.example.com")
            .send()
            .await
            .is_err(),
        "the domain name is gone"
    );
    assert_eq!(
        a_record(&route53, &zone, "ws.example.com").await,
        None,
        "the record is gone"
    );
    assert!(leftovers(&conf, "chat-dev").await.is_empty());
    let hits = proxy.layer().hits();
    assert!(
        hits.contains_key("ACM listed RSA certificates only"),
        "{hits:?}"
    );
}
