//! IAM: the Lambdas' role, the backend's user and keys, the managed policy.

use anyhow::Result;
use aws_sdk_iam::Client;

use super::{already, explain, gone, is_not_found, retry_for, PROPAGATION_BUDGET};
use crate::deploy::action::BoundaryTarget;
use crate::deploy::state::{Desired, TagDiff, Tags};
use crate::ui::Step;

fn tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

pub(crate) async fn create_role(iam: &Client, d: &Desired) -> Result<()> {
    let trust = Desired::role_trust_policy().to_string();
    let r = iam
        .create_role()
        .role_name(&d.names.role)
        .assume_role_policy_document(trust)
        .permissions_boundary(d.boundary_arn())
        .set_tags(Some(tags(&d.tags)))
        .send()
        .await;
    already(r, "EntityAlreadyExists")
        .map_err(|e| explain(&format!("create the IAM role {}", d.names.role), e))
}

pub(crate) async fn update_role_trust(iam: &Client, d: &Desired) -> Result<()> {
    let trust = Desired::role_trust_policy().to_string();
    iam.update_assume_role_policy()
        .role_name(&d.names.role)
        .policy_document(trust)
        .send()
        .await
        .map_err(|e| explain("update the role's trust policy", e))?;
    Ok(())
}

pub(crate) async fn put_role_policy(
    iam: &Client,
    d: &Desired,
    (env_key, api_id): (Option<&str>, Option<&str>),
) -> Result<()> {
    let doc = d.role_policy(env_key, api_id).to_string();
    iam.put_role_policy()
        .role_name(&d.names.role)
        .policy_name(&d.names.role_policy)
        .policy_document(doc)
        .send()
        .await
        .map_err(|e| explain("set the role's policy", e))?;
    Ok(())
}

/// Inline policies deleted, managed ones detached, then the role.
pub(crate) async fn delete_role(iam: &Client, role: &str) -> Result<()> {
    let what = |x: &str| format!("{x} of the IAM role {role}");
    let inline = match iam.list_role_policies().role_name(role).send().await {
        Ok(o) => o.policy_names().to_vec(),
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(explain(&what("list the policies"), e)),
    };
    for p in inline {
        gone(
            iam.delete_role_policy()
                .role_name(role)
                .policy_name(p)
                .send()
                .await,
        )
        .map_err(|e| explain(&what("delete a policy"), e))?;
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| explain(&what("list the attached policies"), e))?;
    for arn in attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
    {
        detach(iam, Entity::Role(role), arn).await?;
    }
    gone(iam.delete_role().role_name(role).send().await)
        .map_err(|e| explain(&format!("delete the IAM role {role}"), e))
}

pub(crate) async fn create_user(iam: &Client, d: &Desired) -> Result<()> {
    let r = iam
        .create_user()
        .user_name(&d.names.user)
        .permissions_boundary(d.boundary_arn())
        .set_tags(Some(tags(&d.tags)))
        .send()
        .await;
    already(r, "EntityAlreadyExists")
        .map_err(|e| explain(&format!("create the IAM user {}", d.names.user), e))
}

pub(crate) async fn put_user_policy(iam: &Client, d: &Desired, api_id: &str) -> Result<()> {
    let doc = d.manage_connections_policy(api_id).to_string();
    iam.put_user_policy()
        .user_name(&d.names.user)
        .policy_name(&d.names.policy)
        .policy_document(doc)
        .send()
        .await
        .map_err(|e| explain("set the backend user's policy", e))?;
    Ok(())
}

/// A new key: (id, secret). The secret is readable only now.
pub(crate) async fn create_access_key(iam: &Client, user: &str) -> Result<(String, String)> {
    let out = iam
        .create_access_key()
        .user_name(user)
        .send()
        .await
        .map_err(|e| explain(&format!("create an access key for {user}"), e))?;
    let key = out
        .access_key()
        .ok_or_else(|| anyhow::anyhow!("AWS returned no access key"))?;
    Ok((
        key.access_key_id().to_string(),
        key.secret_access_key().to_string(),
    ))
}

/// The key stays, refused from now on; `aws iam update-access-key --status Active` brings it back.
pub(crate) async fn deactivate_access_key(iam: &Client, user: &str, id: &str) -> Result<()> {
    gone(
        iam.update_access_key()
            .user_name(user)
            .access_key_id(id)
            .status(aws_sdk_iam::types::StatusType::Inactive)
            .send()
            .await,
    )
    .map_err(|e| explain(&format!("deactivate the access key {id}"), e))
}

/// Waits until AWS accepts a new key: IAM is eventually consistent, and a key is refused (`InvalidClientTokenId`)
/// for a few seconds after its creation
/// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency>).
/// The probe is STS `GetCallerIdentity`, which needs no permission.
pub(crate) async fn wait_key_works(
    c: &super::Clients,
    id: &str,
    secret: &str,
    step: &dyn Step,
) -> Result<()> {
    let sts = c.sts_as(id, secret);
    let not_yet = |e: &aws_smithy_runtime_api::client::result::SdkError<_, _>| {
        matches!(
            aws_smithy_types::error::metadata::ProvideErrorMetadata::code(e),
            Some("InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch")
        )
        .then_some("waiting for AWS to accept the new access key")
    };
    retry_for(PROPAGATION_BUDGET, step, not_yet, || {
        sts.get_caller_identity().send()
    })
    .await
    .map_err(|e| explain(&format!("use the new access key {id}"), e))?;
    Ok(())
}

pub(crate) enum Tagged<'a> {
    Role(&'a str),
    User(&'a str),
    Policy(&'a str),
}

pub(crate) async fn retag(iam: &Client, what: Tagged<'_>, diff: &TagDiff) -> Result<()> {
    let set = Some(tags(&diff.set)).filter(|t| !t.is_empty());
    let keys = Some(diff.remove.clone()).filter(|k| !k.is_empty());
    // Each IAM entity has its own pair of tag calls, with their own types.
    macro_rules! both {
        ($tag:expr, $untag:expr) => {{
            if let Some(set) = set {
                $tag.set_tags(Some(set))
                    .send()
                    .await
                    .map_err(|e| explain("tag it", e))?;
            }
            if let Some(keys) = keys {
                $untag
                    .set_tag_keys(Some(keys))
                    .send()
                    .await
                    .map_err(|e| explain("untag it", e))?;
            }
        }};
    }
    match what {
        Tagged::Role(n) => both!(iam.tag_role().role_name(n), iam.untag_role().role_name(n)),
        Tagged::User(n) => both!(iam.tag_user().user_name(n), iam.untag_user().user_name(n)),
        Tagged::Policy(arn) => both!(
            iam.tag_policy().policy_arn(arn),
            iam.untag_policy().policy_arn(arn)
        ),
    }
    Ok(())
}

pub(crate) async fn delete_access_key(iam: &Client, user: &str, id: &str) -> Result<()> {
    gone(
        iam.delete_access_key()
            .user_name(user)
            .access_key_id(id)
            .send()
            .await,
    )
    .map_err(|e| explain(&format!("delete the access key {id}"), e))
}

/// Keys and inline policies deleted, managed ones detached, then the user.
pub(crate) async fn delete_user(iam: &Client, user: &str) -> Result<()> {
    let what = |x: &str| format!("{x} of the IAM user {user}");
    let keys = match iam.list_access_keys().user_name(user).send().await {
        Ok(o) => o,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(explain(&what("list the access keys"), e)),
    };
    for id in keys
        .access_key_metadata()
        .iter()
        .filter_map(|k| k.access_key_id())
    {
        delete_access_key(iam, user, id).await?;
    }
    let inline = iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| explain(&what("list the policies"), e))?;
    for p in inline.policy_names() {
        gone(
            iam.delete_user_policy()
                .user_name(user)
                .policy_name(p)
                .send()
                .await,
        )
        .map_err(|e| explain(&what("delete a policy"), e))?;
    }
    let attached = iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await
        .map_err(|e| explain(&what("list the attached policies"), e))?;
    for arn in attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
    {
        detach(iam, Entity::User(user), arn).await?;
    }
    gone(iam.delete_user().user_name(user).send().await)
        .map_err(|e| explain(&format!("delete the IAM user {user}"), e))
}

pub(crate) async fn create_policy(iam: &Client, d: &Desired, api_id: &str) -> Result<()> {
    let doc = d.manage_connections_policy(api_id).to_string();
    let r = iam
        .create_policy()
        .policy_name(&d.names.policy)
        .policy_document(doc)
        .description(format!("wsdeploy: post to connections of {}", d.names.api))
        .set_tags(Some(tags(&d.tags)))
        .send()
        .await;
    already(r, "EntityAlreadyExists").map_err(|e| explain("create the managed policy", e))
}

/// A new default version of the managed policy (`credentials: policy`). The deploy policy does not allow it (so its
/// holder cannot widen what the policy's holders may do): a changed API id needs an administrator's `up`.
pub(crate) async fn create_policy_version(
    iam: &Client,
    d: &Desired,
    api_id: &str,
    delete_oldest: Option<&str>,
) -> Result<()> {
    let doc = d.manage_connections_policy(api_id).to_string();
    new_policy_version(
        iam,
        &d.policy_arn(),
        &doc,
        delete_oldest,
        "update the managed policy",
    )
    .await
}

/// A new default version; IAM keeps five, so the oldest goes first when asked.
pub(crate) async fn new_policy_version(
    iam: &Client,
    arn: &str,
    doc: &str,
    delete_oldest: Option<&str>,
    what: &str,
) -> Result<()> {
    if let Some(v) = delete_oldest {
        iam.delete_policy_version()
            .policy_arn(arn)
            .version_id(v)
            .send()
            .await
            .map_err(|e| explain(&format!("make room for a new version ({what})"), e))?;
    }
    iam.create_policy_version()
        .policy_arn(arn)
        .policy_document(doc)
        .set_as_default(true)
        .send()
        .await
        .map_err(|e| explain(what, e))?;
    Ok(())
}

/// What to say when the deploy identity is refused a write to the boundary: by design, not a missing grant.
fn boundary_refused(what: &str, name: &str, e: anyhow::Error) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("denied") || text.contains("not authorized") {
        anyhow::anyhow!(
            "cannot {what} the permissions boundary {name}: the deploy policy never lets its holder write the policy \
             that caps the roles and users it makes. Run `wsdeploy up` once with an administrator's credentials (it \
             creates the boundary, then the deploy identity can deploy), or create it with `wsdeploy policy --boundary`'s \
             document under that name"
        )
    } else {
        e
    }
}

pub(crate) async fn create_boundary(iam: &Client, d: &Desired) -> Result<()> {
    let name = &d.names.boundary;
    let r = iam
        .create_policy()
        .policy_name(name)
        .policy_document(d.boundary_policy().to_string())
        .description(format!(
            "wsdeploy: the permissions boundary of project {}'s roles and users",
            d.project
        ))
        .send()
        .await;
    already(r, "EntityAlreadyExists")
        .map_err(|e| explain(&format!("create the permissions boundary {name}"), e))
        .map_err(|e| boundary_refused("create", name, e))
}

pub(crate) async fn update_boundary(
    iam: &Client,
    d: &Desired,
    delete_oldest: Option<&str>,
) -> Result<()> {
    let name = &d.names.boundary;
    let doc = d.boundary_policy().to_string();
    let what = format!("update the permissions boundary {name}");
    new_policy_version(iam, &d.boundary_arn(), &doc, delete_oldest, &what)
        .await
        .map_err(|e| boundary_refused("update", name, e))
}

/// The project's boundary on a role or user wsdeploy made before it had one.
pub(crate) async fn set_boundary(iam: &Client, d: &Desired, target: BoundaryTarget) -> Result<()> {
    let arn = d.boundary_arn();
    let role = match target {
        BoundaryTarget::Role => d.names.role.as_str(),
        BoundaryTarget::AccountRole => crate::facts::ACCOUNT_LOGGING_ROLE,
        BoundaryTarget::User => {
            let user = &d.names.user;
            iam.put_user_permissions_boundary()
                .user_name(user)
                .permissions_boundary(&arn)
                .send()
                .await
                .map_err(|e| {
                    explain(
                        &format!("set the permissions boundary of the user {user}"),
                        e,
                    )
                })?;
            return Ok(());
        }
    };
    iam.put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(&arn)
        .send()
        .await
        .map_err(|e| {
            explain(
                &format!("set the permissions boundary of the role {role}"),
                e,
            )
        })?;
    Ok(())
}

/// Detached from whatever the user attached it to (or it cannot be deleted), old versions deleted, then the policy.
pub(crate) async fn delete_policy(iam: &Client, arn: &str) -> Result<()> {
    let entities = match iam.list_entities_for_policy().policy_arn(arn).send().await {
        Ok(o) => o,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => return Err(explain("find what the managed policy is attached to", e)),
    };
    for n in entities.policy_roles().iter().filter_map(|r| r.role_name()) {
        detach(iam, Entity::Role(n), arn).await?;
    }
    for n in entities.policy_users().iter().filter_map(|u| u.user_name()) {
        detach(iam, Entity::User(n), arn).await?;
    }
    for n in entities
        .policy_groups()
        .iter()
        .filter_map(|g| g.group_name())
    {
        detach(iam, Entity::Group(n), arn).await?;
    }
    let versions = iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| explain("list the managed policy's versions", e))?;
    for id in versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .filter_map(|v| v.version_id())
    {
        gone(
            iam.delete_policy_version()
                .policy_arn(arn)
                .version_id(id)
                .send()
                .await,
        )
        .map_err(|e| explain("delete an old policy version", e))?;
    }
    gone(iam.delete_policy().policy_arn(arn).send().await)
        .map_err(|e| explain("delete the managed policy", e))
}

enum Entity<'a> {
    Role(&'a str),
    User(&'a str),
    Group(&'a str),
}

async fn detach(iam: &Client, from: Entity<'_>, arn: &str) -> Result<()> {
    let what = |name: &str| format!("detach {arn} from {name}");
    match from {
        Entity::Role(n) => gone(
            iam.detach_role_policy()
                .role_name(n)
                .policy_arn(arn)
                .send()
                .await,
        )
        .map_err(|e| explain(&what(n), e)),
        Entity::User(n) => gone(
            iam.detach_user_policy()
                .user_name(n)
                .policy_arn(arn)
                .send()
                .await,
        )
        .map_err(|e| explain(&what(n), e)),
        Entity::Group(n) => gone(
            iam.detach_group_policy()
                .group_name(n)
                .policy_arn(arn)
                .send()
                .await,
        )
        .map_err(|e| explain(&what(n), e)),
    }
}
