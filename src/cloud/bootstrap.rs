//! `wsdeploy bootstrap` against IAM: reading what the account has, and carrying out the steps.

use anyhow::Result;
use aws_sdk_iam::types::Tag;

use super::{already, explain, gone, optional, policy_json, Clients};
use crate::deploy::bootstrap::{
    Found, ProviderObs, Step, Wanted, GITHUB_AUDIENCE, GITHUB_ISSUER, TAG_BOOTSTRAP,
};

/// What the account has of `w`; `bounded` lists which of `entities` (("role" | "user", name)) carry the boundary.
pub(crate) async fn observe(
    c: &Clients,
    w: &Wanted,
    boundary_arn: &str,
    entities: &[(&'static str, String)],
) -> Result<Found> {
    let boundary = super::observe::managed_policy(c, boundary_arn).await?;
    let mut f = Found {
        boundary,
        ..Found::default()
    };
    let prefix = w.role_name.clone() + "-";
    let listed = c
        .iam
        .list_policies()
        .scope(aws_sdk_iam::types::PolicyScopeType::Local)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    for p in listed {
        let p = p.map_err(|e| explain("list the account's policies", e))?;
        if let (Some(name), Some(arn)) = (p.policy_name(), p.arn()) {
            if name.starts_with(&prefix) {
                if let Some(obs) = super::observe::managed_policy(c, arn).await? {
                    f.policies.insert(name.to_string(), obs);
                }
            }
        }
    }
    let role = optional(
        c.iam.get_role().role_name(&w.role_name).send().await,
        &format!("read the IAM role {}", w.role_name),
    )?;
    if let Some(r) = role.as_ref().and_then(|o| o.role()) {
        let attached = c
            .iam
            .list_attached_role_policies()
            .role_name(&w.role_name)
            .send()
            .await
            .map_err(|e| explain("list the deploy role's policies", e))?;
        f.role = Some((
            r.assume_role_policy_document()
                .and_then(policy_json)
                .unwrap_or_default(),
            attached
                .attached_policies()
                .iter()
                .filter_map(|p| p.policy_arn().map(str::to_string))
                .collect(),
        ));
    }
    f.provider = provider(c, w).await?;
    for (kind, name) in entities {
        let carried = match *kind {
            "role" => optional(c.iam.get_role().role_name(name).send().await, "read a role")?
                .and_then(|o| super::observe::boundary_of(o.role()?.permissions_boundary())),
            _ => optional(c.iam.get_user().user_name(name).send().await, "read a user")?
                .and_then(|o| super::observe::boundary_of(o.user()?.permissions_boundary())),
        };
        if carried.as_deref() == Some(boundary_arn) {
            f.bounded.push(format!("{kind} {name}"));
        }
    }
    Ok(f)
}

/// GitHub's provider, if the account has it: its audiences, whether this project's bootstrap made it, and whether
/// a role other than the deploy role trusts it.
async fn provider(c: &Clients, w: &Wanted) -> Result<Option<ProviderObs>> {
    let got = optional(
        c.iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(&w.provider_arn)
            .send()
            .await,
        "read GitHub's OIDC provider",
    )?;
    let Some(p) = got else { return Ok(None) };
    let ours = p
        .tags()
        .iter()
        .any(|t| t.key() == TAG_BOOTSTRAP && t.value() == w.role_name);
    let roles = c
        .iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let mut used_by_others = false;
    for r in roles {
        let r = r.map_err(|e| explain("list the account's roles", e))?;
        let trusts = r
            .assume_role_policy_document()
            .and_then(policy_json)
            .is_some_and(|t| t.to_string().contains(&w.provider_arn));
        used_by_others |= trusts && r.role_name() != w.role_name;
    }
    Ok(Some(ProviderObs {
        client_ids: p.client_id_list().to_vec(),
        ours,
        used_by_others,
    }))
}

/// What bootstrap made carries the deploy role's name, so that `--teardown` removes that and nothing else.
fn bootstrap_tag(w: &Wanted) -> Tag {
    Tag::builder()
        .key(TAG_BOOTSTRAP)
        .value(&w.role_name)
        .build()
        .expect("key and value are set")
}

/// One step. `policies` is `arn:{partition}:iam::{account}:policy/`.
pub(crate) async fn apply(c: &Clients, w: &Wanted, policies: &str, step: &Step) -> Result<()> {
    use Step::*;
    let iam = &c.iam;
    match step {
        CreateBoundary => {
            let r = iam
                .create_policy()
                .policy_name(&w.boundary_name)
                .policy_document(w.boundary.to_string())
                .description("wsdeploy: the permissions boundary of this project's roles and users")
                .tags(bootstrap_tag(w))
                .send()
                .await;
            already(r, "EntityAlreadyExists")
                .map_err(|e| explain("create the permissions boundary", e))
        }
        UpdateBoundary { delete_oldest } => {
            let arn = format!("{policies}{}", w.boundary_name);
            let what = format!("update {arn}");
            super::iam::new_policy_version(
                iam,
                &arn,
                &w.boundary.to_string(),
                delete_oldest.as_deref(),
                &what,
            )
            .await
        }
        CreateProvider => {
            // The thumbprint is optional: IAM secures GitHub's provider with its own trusted CAs
            // (<https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_providers_create_oidc.html>).
            let r = iam
                .create_open_id_connect_provider()
                .url(format!("https://{GITHUB_ISSUER}"))
                .client_id_list(GITHUB_AUDIENCE)
                .tags(bootstrap_tag(w))
                .send()
                .await;
            already(r, "EntityAlreadyExists")
                .map_err(|e| explain("create GitHub's OIDC provider", e))
        }
        AddAudience => iam
            .add_client_id_to_open_id_connect_provider()
            .open_id_connect_provider_arn(&w.provider_arn)
            .client_id(GITHUB_AUDIENCE)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| explain("add sts.amazonaws.com to GitHub's OIDC provider", e)),
        CreateRole => {
            let r = iam
                .create_role()
                .role_name(&w.role_name)
                .assume_role_policy_document(w.trust().unwrap_or_default().to_string())
                .description("wsdeploy: deploys this project's stages from GitHub Actions")
                .tags(bootstrap_tag(w))
                .send()
                .await;
            already(r, "EntityAlreadyExists").map_err(|e| explain("create the deploy role", e))
        }
        UpdateTrust => iam
            .update_assume_role_policy()
            .role_name(&w.role_name)
            .policy_document(w.trust().unwrap_or_default().to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| explain("update the deploy role's trust policy", e)),
        CreatePolicy { .. }
        | UpdatePolicy { .. }
        | Attach { .. }
        | Detach { .. }
        | DeletePolicy { .. } => apply_policy(c, w, policies, step).await,
        DeleteRole => gone(iam.delete_role().role_name(&w.role_name).send().await)
            .map_err(|e| explain("delete the deploy role", e)),
        DeleteProvider => gone(
            iam.delete_open_id_connect_provider()
                .open_id_connect_provider_arn(&w.provider_arn)
                .send()
                .await,
        )
        .map_err(|e| explain("delete GitHub's OIDC provider", e)),
        DeleteBoundary => {
            let arn = format!("{policies}{}", w.boundary_name);
            super::iam::delete_policy(iam, &arn).await
        }
    }
}

/// The deploy policies' steps.
async fn apply_policy(c: &Clients, w: &Wanted, policies: &str, step: &Step) -> Result<()> {
    use Step::*;
    let iam = &c.iam;
    let doc = |name: &str| {
        w.policies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.to_string())
            .unwrap_or_default()
    };
    match step {
        CreatePolicy { name } => {
            let r = iam
                .create_policy()
                .policy_name(name)
                .policy_document(doc(name))
                .description("wsdeploy: what deploying this project's stages needs")
                .tags(bootstrap_tag(w))
                .send()
                .await;
            already(r, "EntityAlreadyExists")
                .map_err(|e| explain(&format!("create the policy {name}"), e))
        }
        UpdatePolicy {
            name,
            delete_oldest,
        } => {
            let arn = format!("{policies}{name}");
            let what = format!("update {arn}");
            super::iam::new_policy_version(iam, &arn, &doc(name), delete_oldest.as_deref(), &what)
                .await
        }
        Attach { name } => iam
            .attach_role_policy()
            .role_name(&w.role_name)
            .policy_arn(format!("{policies}{name}"))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| explain(&format!("attach {name} to the deploy role"), e)),
        Detach { name } => gone(
            iam.detach_role_policy()
                .role_name(&w.role_name)
                .policy_arn(format!("{policies}{name}"))
                .send()
                .await,
        )
        .map_err(|e| explain(&format!("detach {name}"), e)),
        DeletePolicy { name } => super::iam::delete_policy(iam, &format!("{policies}{name}")).await,
        _ => unreachable!("not a policy step"),
    }
}
