//! Custom domains as AWS serves them and moto does not: a regional domain name gets its regional host
//! (`ApiGatewayDomainName`) and that host's Route 53 zone, it takes only an ISSUED certificate of its region that
//! covers its name, `UpdateDomainName` (which moto lacks) is played over moto's record, ACM lists only RSA
//! certificates unless asked for other key types, and Route 53 refuses an alias whose zone is not its target's.

use serde_json::{json, Value};

use super::{Answer, Layer, Upstream};

/// API Gateway's regional hosts' Route 53 zones
/// (<https://docs.aws.amazon.com/general/latest/gr/apigateway.html>).
fn regional_zone(region: &str) -> &'static str {
    match region {
        "us-east-1" => "Z1UJRXOUMOOFQ8",
        "eu-west-1" => "ZLY8HYME6SFDD",
        "eu-central-1" => "Z1U9ULNL0V5AJ3",
        _ => "Z3KY65QIEKYHQQ",
    }
}

/// The regional host AWS gives a domain name: `d-{10 characters}.execute-api.{region}.amazonaws.com`.
fn regional_host(name: &str, region: &str) -> String {
    let mut h: u64 = 1_469_598_103_934_665_603;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211);
    }
    let id: String = (0..10)
        .map(|i| {
            let c = ((h >> (i * 5)) & 31) as u8;
            char::from(if c < 26 { b'a' + c } else { b'0' + c - 26 })
        })
        .collect();
    format!("d-{id}.execute-api.{region}.amazonaws.com")
}

impl Layer {
    /// `CreateDomainName` with a certificate API Gateway refuses: not found, another region's, not ISSUED, or not
    /// covering the name
    /// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html>).
    pub(super) async fn refuse_domain_certificate(
        &self,
        body: &[u8],
        region: &str,
        upstream: &Upstream,
    ) -> Option<Answer> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let name = v["domainName"].as_str()?;
        let arn = v["domainNameConfigurations"][0]["certificateArn"].as_str()?;
        let refuse = |m: String| {
            let mut s = self.state.lock().unwrap();
            Self::hit(&mut s, "domain name refused for its certificate");
            Some(Answer::rest(400, "BadRequestException", &m))
        };
        if arn.split(':').nth(3) != Some(region) {
            return refuse(format!(
                "Invalid certificate ARN: {arn}. Certificate must be in '{region}'."
            ));
        }
        let cert = upstream
            .post_json11(
                "CertificateManager.DescribeCertificate",
                &json!({ "CertificateArn": arn }),
                "acm",
            )
            .await;
        let Some(cert) = cert else {
            return refuse(format!("Certificate {arn} not found"));
        };
        let c = &cert["Certificate"];
        if c["Status"] != "ISSUED" {
            return refuse(format!(
                "Certificate {arn} is not yet issued ({})",
                c["Status"]
            ));
        }
        let names: Vec<&str> = std::iter::once(&c["DomainName"])
            .chain(
                c["SubjectAlternativeNames"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter_map(Value::as_str)
            .collect();
        let covered = names.iter().any(|n| {
            *n == name
                || n.strip_prefix("*.")
                    .is_some_and(|p| name.split_once('.').is_some_and(|(_, rest)| rest == p))
        });
        if !covered {
            return refuse(
                "The domain name to be created is not covered by the provided certificate.".into(),
            );
        }
        None
    }

    /// `UpdateDomainName`, which moto lacks: the configurations it sets are kept and laid over moto's record.
    pub(super) async fn update_domain(
        &self,
        name: &str,
        body: &[u8],
        upstream: &Upstream,
    ) -> Answer {
        if upstream
            .get(&format!("/v2/domainnames/{name}"))
            .await
            .is_none()
        {
            return Answer::rest(
                404,
                "NotFoundException",
                "Invalid domain name identifier specified",
            );
        }
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "UpdateDomainName (played by the layer)");
        s.domain_updates
            .insert(name.to_string(), v["domainNameConfigurations"].clone());
        Answer::ok_json(
            json!({ "domainName": name, "domainNameConfigurations": v["domainNameConfigurations"] }),
        )
    }

    /// A domain name as AWS shows it: each configuration with its regional host, zone and status.
    pub(super) fn shape_domain(&self, domain: &mut Value, region: &str) {
        let name = domain["domainName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(kept) = self.state.lock().unwrap().domain_updates.get(&name) {
            domain["domainNameConfigurations"] = kept.clone();
        }
        for c in domain["domainNameConfigurations"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            c["apiGatewayDomainName"] = json!(regional_host(&name, region));
            c["hostedZoneId"] = json!(regional_zone(region));
            c["domainNameStatus"] = json!("AVAILABLE");
        }
    }

    /// ACM's `ListCertificates` without `Includes.keyTypes` returns RSA_1024 and RSA_2048 certificates only
    /// (<https://docs.aws.amazon.com/acm/latest/APIReference/API_Filters.html>); moto returns every one.
    pub(super) fn filter_certificates(&self, request: &[u8], body: Vec<u8>) -> Vec<u8> {
        let asked: Value = serde_json::from_slice(request).unwrap_or_default();
        if asked["Includes"]["keyTypes"].is_array() {
            return body;
        }
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(list) = v["CertificateSummaryList"].as_array_mut() {
            let before = list.len();
            list.retain(|c| {
                matches!(
                    c["KeyAlgorithm"].as_str(),
                    Some("RSA-1024" | "RSA-2048" | "RSA_1024" | "RSA_2048") | None
                )
            });
            if list.len() < before {
                let mut s = self.state.lock().unwrap();
                Self::hit(&mut s, "ACM listed RSA certificates only");
            }
        }
        v.to_string().into_bytes()
    }

    /// Route 53 refuses an alias to an API Gateway regional host whose `HostedZoneId` is not that host's zone:
    /// "Tried to create an alias that targets …, but the alias target name does not lie within the target zone".
    pub(super) fn refuse_alias(&self, body: &[u8]) -> Option<Answer> {
        let xml = String::from_utf8_lossy(body);
        let target = super::xml_value(&xml, "DNSName")?;
        let zone = super::xml_value(&xml, "HostedZoneId")?;
        let region = target
            .split(".execute-api.")
            .nth(1)?
            .split('.')
            .next()?
            .to_string();
        if zone == regional_zone(&region) {
            return None;
        }
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "alias to another zone refused");
        Some(Answer {
            status: 400,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: format!("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidChangeBatch</Code><Message>[Tried to create an alias that targets {target}., type A in zone {zone}, but the alias target name does not lie within the target zone]</Message></Error><RequestId>layer</RequestId></ErrorResponse>").into_bytes(),
        })
    }
}
