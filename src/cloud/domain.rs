//! The stage's own domain: the ACM certificate that covers it, API Gateway's regional domain name and its API
//! mapping, and the name's alias record in Route 53.

use anyhow::{Context, Result};
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ResourceRecordSet, RrType,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{already, explain, gone, optional, retry_for, Clients, PROPAGATION_BUDGET};
use crate::config::DomainSettings;
use crate::deploy::state::{CertObs, Desired, DomainObs, MappingObs, Observed, RecordObs, ZoneObs};
use crate::facts::DOMAIN_TLS;
use crate::ui::Step;

/// Fills `o`'s domain fields for the stage's domain (nothing without one).
pub(crate) async fn observe(
    c: &Clients,
    want: Option<&DomainSettings>,
    o: &mut Observed,
) -> Result<()> {
    let Some(want) = want else { return Ok(()) };
    let (domain, certificate, zone) =
        tokio::try_join!(domain(c, &want.name), certificate(c, want), zone(c, want),)?;
    o.record = match &zone {
        Some(z) => record(c, &z.id, &want.name).await?,
        None => None,
    };
    o.domain = domain;
    o.certificate = certificate;
    o.zone = zone;
    Ok(())
}

async fn domain(c: &Clients, name: &str) -> Result<Option<DomainObs>> {
    let got = c.apigw.get_domain_name().domain_name(name).send().await;
    let Some(out) = optional(got, &format!("read the domain name {name}"))? else {
        return Ok(None);
    };
    let config = out.domain_name_configurations().first();
    let mappings = c
        .apigw
        .get_api_mappings()
        .domain_name(name)
        .max_results("100")
        .send()
        .await
        .map_err(|e| explain(&format!("read the API mappings of {name}"), e))?;
    Ok(Some(DomainObs {
        tags: out
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        target: config
            .and_then(|c| c.api_gateway_domain_name())
            .unwrap_or_default()
            .to_string(),
        target_zone: config
            .and_then(|c| c.hosted_zone_id())
            .unwrap_or_default()
            .to_string(),
        certificate_arn: config
            .and_then(|c| c.certificate_arn())
            .unwrap_or_default()
            .to_string(),
        security_policy: config
            .and_then(|c| c.security_policy())
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        ip_address_type: config
            .and_then(|c| c.ip_address_type())
            .map(|t| t.as_str().to_string()),
        mappings: mappings
            .items()
            .iter()
            .map(|m| MappingObs {
                id: m.api_mapping_id().unwrap_or_default().into(),
                api_id: m.api_id().unwrap_or_default().into(),
                stage: m.stage().unwrap_or_default().into(),
                key: m.api_mapping_key().unwrap_or_default().into(),
            })
            .collect(),
    }))
}

/// The config's certificate, or the ISSUED one of the region that covers the name (an exact name before a
/// wildcard, then the one that expires last). `ListCertificates` returns only RSA_1024 and RSA_2048 certificates
/// unless asked for other key types (<https://docs.aws.amazon.com/acm/latest/APIReference/API_Filters.html>), so
/// every type is asked for: an ECDSA certificate serves API Gateway as well.
async fn certificate(c: &Clients, want: &DomainSettings) -> Result<Option<CertObs>> {
    use aws_sdk_acm::types::{CertificateStatus, Filters, KeyAlgorithm};
    if let Some(arn) = &want.certificate_arn {
        return describe(c, arn).await;
    }
    let mut pages = c
        .acm
        .list_certificates()
        .certificate_statuses(CertificateStatus::Issued)
        .includes(
            Filters::builder()
                .set_key_types(Some(
                    KeyAlgorithm::values()
                        .iter()
                        .map(|k| KeyAlgorithm::from(*k))
                        .collect(),
                ))
                .build(),
        )
        .into_paginator()
        .send();
    let mut found = vec![];
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain("list the ACM certificates", e))?;
        for s in page.certificate_summary_list() {
            if let Some(arn) = s.certificate_arn() {
                if let Some(cert) = describe(c, arn).await? {
                    if cert.status == "ISSUED" && cert.covers(&want.name) {
                        let exact = cert
                            .names
                            .iter()
                            .any(|n| n.eq_ignore_ascii_case(&want.name));
                        let expires = s
                            .not_after()
                            .map(aws_smithy_types::DateTime::secs)
                            .unwrap_or_default();
                        found.push(((exact, expires), cert));
                    }
                }
            }
        }
    }
    found.sort_by_key(|(rank, _)| *rank);
    Ok(found.pop().map(|(_, cert)| cert))
}

async fn describe(c: &Clients, arn: &str) -> Result<Option<CertObs>> {
    let got = c
        .acm
        .describe_certificate()
        .certificate_arn(arn)
        .send()
        .await;
    let Some(out) = optional(got, &format!("read the certificate {arn}"))? else {
        return Ok(None);
    };
    let Some(detail) = out.certificate() else {
        return Ok(None);
    };
    let mut names: Vec<String> = detail
        .domain_name()
        .into_iter()
        .map(str::to_string)
        .collect();
    names.extend(detail.subject_alternative_names().iter().cloned());
    names.dedup();
    Ok(Some(CertObs {
        arn: arn.to_string(),
        status: detail
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        names,
    }))
}

/// The config's zone, or the account's public zone whose name is the longest suffix of the domain's.
async fn zone(c: &Clients, want: &DomainSettings) -> Result<Option<ZoneObs>> {
    if let Some(id) = &want.hosted_zone_id {
        let out = c
            .route53
            .get_hosted_zone()
            .id(id)
            .send()
            .await
            .map_err(|e| explain(&format!("read the Route 53 zone {id}"), e))?;
        let z = out.hosted_zone().context("Route 53 returned no zone")?;
        return Ok(Some(ZoneObs {
            id: bare_zone_id(z.id()),
            name: z.name().trim_end_matches('.').to_string(),
        }));
    }
    let mut best: Option<ZoneObs> = None;
    let mut marker: Option<(String, Option<String>)> = None;
    loop {
        let mut req = c.route53.list_hosted_zones_by_name().max_items(100);
        if let Some((name, id)) = &marker {
            req = req.dns_name(name).set_hosted_zone_id(id.clone());
        }
        let page = req
            .send()
            .await
            .map_err(|e| explain("list the Route 53 hosted zones", e))?;
        for z in page.hosted_zones() {
            let zname = z.name().trim_end_matches('.').to_ascii_lowercase();
            let private = z
                .config()
                .is_some_and(aws_sdk_route53::types::HostedZoneConfig::private_zone);
            let holds = want.name == zname || want.name.ends_with(&format!(".{zname}"));
            if holds && !private && best.as_ref().is_none_or(|b| zname.len() > b.name.len()) {
                best = Some(ZoneObs {
                    id: bare_zone_id(z.id()),
                    name: zname,
                });
            }
        }
        if !page.is_truncated() {
            break;
        }
        marker = page.next_dns_name().map(|n| {
            (
                n.to_string(),
                page.next_hosted_zone_id().map(str::to_string),
            )
        });
        if marker.is_none() {
            break;
        }
    }
    Ok(best)
}

/// Route 53 gives zone ids as `/hostedzone/Z…`.
fn bare_zone_id(id: &str) -> String {
    id.trim_start_matches("/hostedzone/").to_string()
}

async fn record(c: &Clients, zone: &str, name: &str) -> Result<Option<RecordObs>> {
    let out = c
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .start_record_name(name)
        .start_record_type(RrType::A)
        .max_items(1)
        .send()
        .await
        .map_err(|e| explain(&format!("read the DNS records of {name}"), e))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .find(|r| {
            r.name().trim_end_matches('.').eq_ignore_ascii_case(name) && r.r#type() == &RrType::A
        })
        .map(|r| RecordObs {
            alias_target: r
                .alias_target()
                .map(|a| a.dns_name().trim_end_matches('.').to_string()),
            alias_zone: r.alias_target().map(|a| a.hosted_zone_id().to_string()),
        }))
}

/// Creates the domain name; returns its regional host and that host's Route 53 zone.
/// The one configuration wsdeploy gives a domain name: regional, TLS 1.2, this certificate, the stage's IP address
/// type (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-custom-domain-names-ip-address-type.html>).
fn configuration(
    d: &Desired,
    certificate: &str,
) -> aws_sdk_apigatewayv2::types::DomainNameConfiguration {
    use aws_sdk_apigatewayv2::types::{DomainNameConfiguration, EndpointType, SecurityPolicy};
    DomainNameConfiguration::builder()
        .certificate_arn(certificate)
        .endpoint_type(EndpointType::Regional)
        .security_policy(SecurityPolicy::from(DOMAIN_TLS))
        .ip_address_type(super::apigw::ip_address_type(d))
        .build()
}

pub(crate) async fn create(
    c: &Clients,
    d: &Desired,
    name: &str,
    certificate: &str,
) -> Result<(String, String)> {
    let out = c
        .apigw
        .create_domain_name()
        .domain_name(name)
        .domain_name_configurations(configuration(d, certificate))
        .set_tags(Some(d.tags.clone().into_iter().collect()))
        .send()
        .await
        .map_err(|e| explain(&format!("create the domain name {name}"), e))?;
    let config = out.domain_name_configurations().first();
    let target = config
        .and_then(|c| c.api_gateway_domain_name())
        .context("API Gateway gave the new domain no regional host name")?;
    let zone = config.and_then(|c| c.hosted_zone_id()).unwrap_or_default();
    Ok((target.to_string(), zone.to_string()))
}

pub(crate) async fn update(c: &Clients, d: &Desired, name: &str, certificate: &str) -> Result<()> {
    c.apigw
        .update_domain_name()
        .domain_name(name)
        .domain_name_configurations(configuration(d, certificate))
        .send()
        .await
        .map_err(|e| explain(&format!("update the domain name {name}"), e))?;
    Ok(())
}

pub(crate) async fn delete(c: &Clients, name: &str) -> Result<()> {
    gone(c.apigw.delete_domain_name().domain_name(name).send().await)
        .map_err(|e| explain(&format!("delete the domain name {name}"), e))
}

/// The stage at the domain's root (an empty mapping key).
pub(crate) async fn map(c: &Clients, name: &str, api_id: &str, stage: &str) -> Result<()> {
    let r = c
        .apigw
        .create_api_mapping()
        .domain_name(name)
        .api_id(api_id)
        .stage(stage)
        .api_mapping_key("")
        .send()
        .await;
    already(r, "ConflictException")
        .map_err(|e| explain(&format!("map {name} to the stage {stage}"), e))
}

pub(crate) async fn unmap(c: &Clients, name: &str, id: &str) -> Result<()> {
    gone(
        c.apigw
            .delete_api_mapping()
            .domain_name(name)
            .api_mapping_id(id)
            .send()
            .await,
    )
    .map_err(|e| explain(&format!("delete the API mapping {id} of {name}"), e))
}

/// One change to the name's `A` alias record. Route 53 refuses a change while an earlier one to the zone is being
/// applied (`PriorRequestNotComplete`, retried by terraform-provider-aws's `aws_route53_record`); the change itself
/// reaches Route 53's servers within about a minute (it is `PENDING` until then), which nothing here waits for.
pub(crate) async fn change_record(
    c: &Clients,
    zone: &str,
    name: &str,
    (action, target, target_zone): (ChangeAction, &str, &str),
    step: &dyn Step,
) -> Result<()> {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::A)
        .alias_target(
            AliasTarget::builder()
                .dns_name(target)
                .hosted_zone_id(target_zone)
                .evaluate_target_health(false)
                .build()
                .context("an alias target")?,
        )
        .build()
        .context("a record set")?;
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(action)
                .resource_record_set(set)
                .build()
                .context("a change")?,
        )
        .build()
        .context("a change batch")?;
    let transient = |e: &aws_smithy_runtime_api::client::result::SdkError<_, _>| {
        (e.code() == Some("PriorRequestNotComplete"))
            .then_some("Route 53 is still applying an earlier change to the zone")
    };
    let r = retry_for(PROPAGATION_BUDGET, step, transient, || {
        c.route53
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch.clone())
            .send()
    })
    .await;
    match r {
        Ok(_) => Ok(()),
        // A DELETE of a record already gone.
        Err(e)
            if e.code() == Some("InvalidChangeBatch")
                && e.message().is_some_and(|m| m.contains("not found")) =>
        {
            Ok(())
        }
        Err(e) => Err(explain(&format!("change the DNS record {name}"), e)),
    }
}
