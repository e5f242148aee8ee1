//! KMS: the stage's own key, which encrypts the functions' environment (and so the signing secret) at rest.
//!
//! Why a key of the stage's: with Lambda's AWS-managed key, anyone allowed `lambda:GetFunctionConfiguration` (the
//! `ReadOnlyAccess` policy, say) reads the signing secret; with a customer managed key, "only users in your account
//! with access to the KMS key can view or manage environment variables on the function"
//! (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html>). Lambda decrypts the
//! environment before the function's code starts, so the functions' cold start does not change.
//!
//! The key is found again by its alias; without one (a run stopped between creating and aliasing it, or a stage
//! torn down less than 7 days ago), by listing the account's keys for one whose description and key policy are
//! this stage's (`deploy::key_policy`). Tags never decide which key is the stage's.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState, Tag};
use aws_sdk_kms::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::{StreamExt, TryStreamExt};

use super::{explain, gone, is_not_found, retry_for, PROPAGATION_BUDGET};
use crate::config::Names;
use crate::deploy::key_policy;
use crate::deploy::state::{Desired, EnvKeyObs, KmsKeyState, TagDiff, Tags};
use crate::ui::Step;

/// KMS's shortest waiting period before a key is deleted
/// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html>).
const DELETION_WINDOW_DAYS: i32 = 7;

/// Keys described at once while the account's keys are searched.
const SEARCH_CONCURRENCY: usize = 8;

/// KMS is eventually consistent
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency>): a
/// call the new key's policy allows may land where that policy is not known yet. KMS states a bound only for tags
/// and aliases, five minutes (<https://docs.aws.amazon.com/kms/latest/developerguide/abac.html>); it is taken for
/// the policy too, and a refusal on a key younger than that is retried.
const POLICY_PROPAGATION: Duration = Duration::from_secs(300);

fn state(s: Option<&KeyState>) -> KmsKeyState {
    match s {
        Some(KeyState::Enabled) => KmsKeyState::Enabled,
        Some(KeyState::Disabled) => KmsKeyState::Disabled,
        Some(KeyState::PendingDeletion) => KmsKeyState::PendingDeletion,
        _ => KmsKeyState::Other,
    }
}

async fn tags(kms: &Client, id: &str) -> Result<Tags> {
    let mut all = Tags::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_resource_tags()
            .key_id(id)
            .set_marker(marker)
            .send()
            .await
            .map_err(|e| explain(&format!("read the tags of the KMS key {id}"), e))?;
        all.extend(
            page.tags()
                .iter()
                .map(|t| (t.tag_key().to_string(), t.tag_value().to_string())),
        );
        marker = page.next_marker().map(str::to_string);
        if !page.truncated() || marker.is_none() {
            return Ok(all);
        }
    }
}

/// The key policy of `id`, parsed; `None` if it is not JSON (then it is not wsdeploy's).
async fn policy(kms: &Client, id: &str) -> Result<Option<serde_json::Value>> {
    let out = kms
        .get_key_policy()
        .key_id(id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| explain(&format!("read the key policy of the KMS key {id}"), e))?;
    Ok(out.policy().and_then(|p| serde_json::from_str(p).ok()))
}

/// What the plan needs to know of a key it found.
async fn observe(kms: &Client, meta: &KeyMetadata, aliased: bool) -> Result<EnvKeyObs> {
    let id = meta.key_id();
    let (tags, policy) = tokio::try_join!(tags(kms, id), policy(kms, id))?;
    Ok(EnvKeyObs {
        id: id.to_string(),
        arn: meta.arn().unwrap_or_default().to_string(),
        state: state(meta.key_state()),
        tags,
        description: meta.description().unwrap_or_default().to_string(),
        policy,
        aliased,
    })
}

/// The key the stage's alias points at, if any.
pub(crate) async fn find(kms: &Client, names: &Names) -> Result<Option<EnvKeyObs>> {
    let what = format!("read the KMS key {}", names.env_key_alias);
    let meta = match kms.describe_key().key_id(&names.env_key_alias).send().await {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(explain(&what, e)),
    };
    let Some(meta) = meta else { return Ok(None) };
    Ok(Some(observe(kms, &meta, true).await?))
}

/// The stage's keys that have no alias: a key a run created and stopped before aliasing (KMS has no idempotent
/// create), or one a `teardown` scheduled for deletion (a later `up` restores it rather than pay for a new one).
/// Only keys whose description and key policy are wsdeploy's for this stage; live keys first. A key this identity
/// may not describe (another team's, whose policy does not let it) is not the stage's and is passed over.
pub(crate) async fn find_unaliased(kms: &Client, names: &Names) -> Result<Vec<EnvKeyObs>> {
    let mut ids = vec![];
    let mut pages = kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain("list the account's KMS keys", e))?;
        ids.extend(page.keys().iter().filter_map(|k| k.key_id().map(str::to_string)));
    }
    let wanted = key_policy::description(&names.prefix);
    let described: Vec<KeyMetadata> = futures_util::stream::iter(ids)
        .map(|id| async move {
            match kms.describe_key().key_id(&id).send().await {
                Ok(out) => Ok(out.key_metadata().cloned()),
                Err(e) if e.code() == Some("AccessDeniedException") || is_not_found(&e) => Ok(None),
                Err(e) => Err(explain(&format!("read the KMS key {id}"), e)),
            }
        })
        .buffer_unordered(SEARCH_CONCURRENCY)
        .try_filter_map(|m| async move { Ok(m) })
        .try_collect()
        .await?;
    let candidates = described.iter().filter(|m| {
        m.key_manager() == Some(&KeyManagerType::Customer)
            && m.description() == Some(wanted.as_str())
    });
    let mut found = vec![];
    for meta in candidates {
        let key = observe(kms, meta, false).await?;
        if key_policy::is_wsdeploys(&names.prefix, &key.description, key.policy.as_ref()) {
            found.push(key);
        }
    }
    found.sort_by_key(|k| (k.state != KmsKeyState::Enabled, k.id.clone()));
    Ok(found)
}

/// Creates the key with its key policy, then its alias, then tags it; returns the key's ARN. The key is created
/// untagged: tagging it in `CreateKey` would need `kms:TagResource` on every key (see `deploy::key_policy`). KMS is
/// eventually consistent: `CreateAlias` on a key created moments ago may answer `NotFoundException`, which
/// terraform-provider-aws retries (`internal/service/kms/alias.go`). If a concurrent run aliased its own key
/// first, this run's key is scheduled for deletion and the aliased one is used.
pub(crate) async fn create(kms: &Client, d: &Desired, step: &dyn Step) -> Result<String> {
    let policy = key_policy::wanted(d, None).to_string();
    let out = kms
        .create_key()
        // Said, not left to KMS's defaults, so that the deploy policy's conditions on them always have a value.
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .origin(aws_sdk_kms::types::OriginType::AwsKms)
        .multi_region(false)
        .bypass_policy_lockout_safety_check(false)
        .policy(policy)
        .description(key_policy::description(&d.names.prefix))
        .send()
        .await
        .map_err(|e| explain("create the stage's KMS key", e))?;
    let meta = out
        .key_metadata()
        .ok_or_else(|| anyhow::anyhow!("KMS created a key but did not say which"))?;
    let (id, arn) = (
        meta.key_id().to_string(),
        meta.arn().unwrap_or_default().to_string(),
    );
    match alias(kms, &d.names.env_key_alias, &id, step).await {
        Ok(()) => {
            let all = TagDiff {
                set: d.tags.clone(),
                remove: vec![],
            };
            retag(kms, &id, &all, step).await?;
            Ok(arn)
        }
        Err(e) if e.code() == Some("AlreadyExistsException") => {
            schedule_deletion(kms, &id, step).await?;
            let theirs = find(kms, &d.names).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "the alias {} exists but names no key",
                    d.names.env_key_alias
                )
            })?;
            Ok(theirs.arn)
        }
        Err(e) => Err(explain(
            &format!("create the alias {}", d.names.env_key_alias),
            e,
        )),
    }
}

/// Gives the key the policy the plan wants. Refused, the caller is not among the key's deployers and the
/// deploy policy (rightly) does not let it manage keys by IAM alone: the sentence says who can add it.
pub(crate) async fn set_policy(
    kms: &Client,
    d: &Desired,
    id: &str,
    policy: &serde_json::Value,
) -> Result<()> {
    let r = kms
        .put_key_policy()
        .key_id(id)
        .policy_name("default")
        .policy(policy.to_string())
        .bypass_policy_lockout_safety_check(false)
        .send()
        .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("AccessDeniedException") => anyhow::bail!(
            "the stage's KMS key {} lets only its deployers manage it, and this identity ({}) is not one of them: run `wsdeploy up` for this stage once as one of them (the key policy's {} statement names them) or as an account administrator, which adds this identity",
            d.names.env_key_alias,
            d.deployer.as_deref().unwrap_or("not named by STS in a form a key policy takes"),
            key_policy::SID_DEPLOYERS,
        ),
        Err(e) => Err(explain(&format!("set the key policy of the KMS key {id}"), e)),
    }
}

/// Points the stage's alias at `id`, waiting out KMS's propagation of a new key and of its policy.
pub(crate) async fn alias(
    kms: &Client,
    alias: &str,
    id: &str,
    step: &dyn Step,
) -> Result<
    (),
    SdkError<
        aws_sdk_kms::operation::create_alias::CreateAliasError,
        aws_smithy_runtime_api::http::Response,
    >,
> {
    let not_yet = |e: &SdkError<_, _>| {
        is_not_found(e).then_some("waiting for KMS to make the new key available")
    };
    settling(kms, id, step, || {
        retry_for(PROPAGATION_BUDGET, step, not_yet, || {
            kms.create_alias()
                .alias_name(alias)
                .target_key_id(id)
                .send()
        })
    })
    .await
    .map(|_| ())
}

/// A key whose deletion a half-done `teardown` scheduled, or that someone disabled: usable again.
pub(crate) async fn restore(kms: &Client, id: &str, pending: bool, step: &dyn Step) -> Result<()> {
    if pending {
        settling(kms, id, step, || {
            kms.cancel_key_deletion().key_id(id).send()
        })
        .await
        .map_err(|e| explain(&format!("cancel the deletion of the KMS key {id}"), e))?;
    }
    // A cancelled deletion leaves the key Disabled.
    settling(kms, id, step, || kms.enable_key().key_id(id).send())
        .await
        .map_err(|e| explain(&format!("enable the KMS key {id}"), e))?;
    Ok(())
}

async fn schedule_deletion(kms: &Client, id: &str, step: &dyn Step) -> Result<()> {
    let r = settling(kms, id, step, || {
        kms.schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send()
    })
    .await;
    match r {
        // Already pending: nothing to do.
        Err(e) if e.code() == Some("KMSInvalidStateException") => Ok(()),
        r => gone(r).map_err(|e| explain(&format!("schedule the deletion of the KMS key {id}"), e)),
    }
}

/// Schedules the key's deletion first, then drops the alias: a run stopped in between leaves the alias on a key
/// pending deletion, which the next `teardown` (alias only) or `up` (restore) finds.
pub(crate) async fn delete(
    kms: &Client,
    names: &Names,
    id: &str,
    schedule: bool,
    alias: bool,
    step: &dyn Step,
) -> Result<String> {
    if schedule {
        schedule_deletion(kms, id, step).await?;
    }
    if alias {
        gone(
            kms.delete_alias()
                .alias_name(&names.env_key_alias)
                .send()
                .await,
        )
        .map_err(|e| explain(&format!("delete the alias {}", names.env_key_alias), e))?;
    }
    Ok(if schedule {
        format!("deletion scheduled in {DELETION_WINDOW_DAYS} days")
    } else {
        "alias deleted".into()
    })
}

fn kms_tags(tags: &Tags) -> Result<Vec<Tag>> {
    tags.iter()
        .map(|(k, v)| Ok(Tag::builder().tag_key(k).tag_value(v).build()?))
        .collect()
}

pub(crate) async fn retag(kms: &Client, id: &str, diff: &TagDiff, step: &dyn Step) -> Result<()> {
    if !diff.set.is_empty() {
        let tags = kms_tags(&diff.set)?;
        settling(kms, id, step, || {
            kms.tag_resource()
                .key_id(id)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map_err(|e| explain(&format!("tag the KMS key {id}"), e))?;
    }
    if !diff.remove.is_empty() {
        settling(kms, id, step, || {
            kms.untag_resource()
                .key_id(id)
                .set_tag_keys(Some(diff.remove.clone()))
                .send()
        })
        .await
        .map_err(|e| explain(&format!("untag the KMS key {id}"), e))?;
    }
    Ok(())
}

/// A call the key policy allows, on a key whose policy KMS may not have applied everywhere yet: an
/// `AccessDeniedException` on the key is retried while the key is younger than `POLICY_PROPAGATION`, and no
/// longer; on an older key, or on another resource, it is the error it says.
async fn settling<T, E, F, Fut>(
    kms: &Client,
    id: &str,
    step: &dyn Step,
    mut call: F,
) -> Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>,
    >,
{
    // A refusal that names another resource (the alias, which IAM alone decides) is no key policy's and final.
    let denied = |e: &SdkError<E, _>| {
        e.code() == Some("AccessDeniedException") && e.message().is_none_or(|m| m.contains(id))
    };
    match call().await {
        Err(e) if denied(&e) => {
            let Some(age) = key_age(kms, id).await else {
                return Err(e);
            };
            let Some(left) = POLICY_PROPAGATION
                .checked_sub(age)
                .filter(|d| !d.is_zero())
            else {
                return Err(e);
            };
            let why = |e: &SdkError<E, _>| {
                denied(e).then_some("KMS has not yet applied the new key's policy everywhere (it can take five minutes)")
            };
            retry_for(left, step, why, call).await
        }
        r => r,
    }
}

/// How long ago the key was created, if KMS says.
async fn key_age(kms: &Client, id: &str) -> Option<Duration> {
    let out = kms.describe_key().key_id(id).send().await.ok()?;
    let created = out.key_metadata()?.creation_date()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .ok()?;
    Some(now.saturating_sub(Duration::from_secs(created.secs().max(0) as u64)))
}
