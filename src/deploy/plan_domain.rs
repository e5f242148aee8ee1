//! The plan's steps for the stage's own domain (`domain:`): its certificate, domain name, API mapping and DNS
//! record, as (desired, observed) -> actions like the other steps.

use super::{foreign, owned, Action, PlanError};
use crate::deploy::state::{ApiObs, Desired, MappingObs, Observed};

/// The stage's own domain: a regional domain name with the certificate that covers it, mapped to this stage at its
/// root, and the name's alias record where this account has its zone. Mappings to anything else go first (an API
/// replaced since): a domain takes one mapping per path.
pub(super) fn plan_domain(
    d: &Desired,
    o: &Observed,
    api: Option<&ApiObs>,
    a: &mut Vec<Action>,
) -> Result<(), PlanError> {
    use Action::{CreateApiMapping, CreateDomain, DeleteApiMapping, UpdateDomain};
    let Some(want) = &d.domain else {
        return Ok(());
    };
    let name = want.name.clone();
    let certificate = usable_certificate(d, o)?;
    match &o.domain {
        None => a.push(CreateDomain {
            name: name.clone(),
            certificate,
        }),
        Some(dom) if !d.owns(&dom.tags) => return Err(foreign("domain name", &name, &dom.tags)),
        Some(dom) => {
            let mut fields = vec![];
            if dom.certificate_arn != certificate {
                fields.push(format!("certificate → {certificate}"));
            }
            if dom.security_policy != crate::facts::DOMAIN_TLS {
                fields.push("TLS 1.2".into());
            }
            let wanted = d.ip_address_type.as_str();
            if dom.ip_address_type.as_deref().unwrap_or("ipv4") != wanted {
                fields.push(format!("ip address type {wanted}"));
            }
            if !fields.is_empty() {
                a.push(UpdateDomain {
                    name: name.clone(),
                    certificate,
                    fields,
                });
            }
        }
    }
    let mappings = o
        .domain
        .as_ref()
        .map(|dom| dom.mappings.as_slice())
        .unwrap_or_default();
    let ours = |m: &&MappingObs| {
        api.is_some_and(|api| api.id == m.api_id) && m.stage == d.stage && m.key.is_empty()
    };
    for m in mappings.iter().filter(|m| !ours(m)) {
        a.push(DeleteApiMapping {
            name: name.clone(),
            id: m.id.clone(),
        });
    }
    if !mappings.iter().any(|m| ours(&m)) {
        a.push(CreateApiMapping { name: name.clone() });
    }
    plan_record(o, &name, a)
}

/// The certificate the domain gets: the config's or the one found, ISSUED and covering the name.
fn usable_certificate(d: &Desired, o: &Observed) -> Result<String, PlanError> {
    let want = d.domain.as_ref().expect("called for a stage with a domain");
    let Some(c) = &o.certificate else {
        return Err(match &want.certificate_arn {
            Some(arn) => PlanError::UnusableCertificate {
                arn: arn.clone(),
                name: want.name.clone(),
                why: format!("ACM has no such certificate in {}", d.region),
            },
            None => PlanError::NoCertificate {
                name: want.name.clone(),
                region: d.region.clone(),
            },
        });
    };
    let unusable = |why: String| PlanError::UnusableCertificate {
        arn: c.arn.clone(),
        name: want.name.clone(),
        why,
    };
    if c.status != "ISSUED" {
        return Err(unusable(format!(
            "its status is {} (API Gateway takes only an ISSUED certificate; for DNS validation, add the record ACM shows for it)",
            c.status
        )));
    }
    if !c.covers(&want.name) {
        return Err(unusable(format!("it covers {} only", c.names.join(", "))));
    }
    Ok(c.arn.clone())
}

/// The alias record, where the zone is this account's: created, pointed at the domain's host, or left alone when it
/// is someone else's record (only an alias to an API Gateway domain, an earlier one of this stage's, is replaced).
fn plan_record(o: &Observed, name: &str, a: &mut Vec<Action>) -> Result<(), PlanError> {
    let Some(zone) = &o.zone else {
        return Ok(());
    };
    let target = o.domain.as_ref().map(|dom| dom.target.as_str());
    match &o.record {
        Some(r) if target.is_some_and(|t| r.points_at(t)) => {}
        Some(r) if !r.alias_target.as_deref().is_some_and(is_api_gateway_host) => {
            return Err(PlanError::RecordTaken {
                name: name.to_string(),
                zone: zone.name.clone(),
                target: r
                    .alias_target
                    .clone()
                    .unwrap_or_else(|| "addresses of its own".into()),
            })
        }
        r => a.push(Action::UpsertRecord {
            name: name.to_string(),
            zone: zone.id.clone(),
            replace: r.is_some(),
        }),
    }
    Ok(())
}

/// A regional API Gateway domain's host: `d-{id}.execute-api.{region}.{suffix}`.
fn is_api_gateway_host(host: &str) -> bool {
    host.starts_with("d-") && host.contains(".execute-api.")
}

/// The domain's record, mappings and name, when they are the stage's.
pub(super) fn teardown_domain(
    d: &Desired,
    o: &Observed,
    a: &mut Vec<Action>,
) -> Result<(), PlanError> {
    let (Some(want), Some(dom)) = (&d.domain, &o.domain) else {
        return Ok(());
    };
    let name = want.name.clone();
    owned(d, &dom.tags, "domain name", &name)?;
    if let (Some(zone), Some(r)) = (&o.zone, &o.record) {
        if r.points_at(&dom.target) {
            a.push(Action::DeleteRecord {
                name: name.clone(),
                zone: zone.id.clone(),
            });
        }
    }
    for m in &dom.mappings {
        a.push(Action::DeleteApiMapping {
            name: name.clone(),
            id: m.id.clone(),
        });
    }
    a.push(Action::DeleteDomain { name });
    Ok(())
}
