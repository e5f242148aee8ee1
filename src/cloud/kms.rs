//! KMS: the stage's own key, which encrypts the functions' environment (and so the signing secret) at rest.
//!
//! Why a key of the stage's: with Lambda's AWS-managed key, anyone allowed `lambda:GetFunctionConfiguration` (the
//! `ReadOnlyAccess` policy, say) reads the signing secret; with a customer managed key, "only users in your account
//! with access to the KMS key can view or manage environment variables on the function"
//! (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html>). Lambda decrypts the
//! environment before the function's code starts, so the functions' cold start does not change.
//!
//! The key is found again by its alias; a run that stopped between creating the key and aliasing it is recovered by
//! the key's tags, which `CreateKey` sets in the same call.

use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_kms::types::{KeyState, Tag};
use aws_sdk_kms::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{explain, gone, is_not_found, retry_for, PROPAGATION_BUDGET};
use crate::config::Names;
use crate::deploy::state::{
    Desired, EnvKeyObs, KmsKeyState, TagDiff, Tags, TAG_PROJECT, TAG_STAGE,
};
use crate::ui::Step;

/// KMS's shortest waiting period before a key is deleted
/// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_ScheduleKeyDeletion.html>).
const DELETION_WINDOW_DAYS: i32 = 7;

/// How long KMS may take before a key's tags and aliases count for authorization: "Changes to tags and aliases can
/// take up to five minutes to affect KMS key authorization"
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/abac.html>). The deploy policy scopes deleting and
/// re-enabling the key by its tags, so a `teardown` right after `up` waits this out.
const ABAC_PROPAGATION: Duration = Duration::from_secs(300);

fn state(s: Option<&KeyState>) -> KmsKeyState {
    match s {
        Some(KeyState::Enabled) => KmsKeyState::Enabled,
        Some(KeyState::Disabled) => KmsKeyState::Disabled,
        Some(KeyState::PendingDeletion) => KmsKeyState::PendingDeletion,
        _ => KmsKeyState::Other,
    }
}

type TagsError = SdkError<
    aws_sdk_kms::operation::list_resource_tags::ListResourceTagsError,
    aws_smithy_runtime_api::http::Response,
>;

async fn tags(kms: &Client, id: &str) -> Result<Tags, TagsError> {
    let mut all = Tags::new();
    let mut marker = None;
    loop {
        let page = kms
            .list_resource_tags()
            .key_id(id)
            .set_marker(marker)
            .send()
            .await?;
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

/// The key the stage's alias points at, if any.
pub(crate) async fn find(kms: &Client, names: &Names) -> Result<Option<EnvKeyObs>> {
    let what = format!("read the KMS key {}", names.env_key_alias);
    let meta = match kms.describe_key().key_id(&names.env_key_alias).send().await {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(explain(&what, e)),
    };
    let Some(meta) = meta else { return Ok(None) };
    let tags = tags(kms, meta.key_id())
        .await
        .map_err(|e| explain(&format!("read the tags of {}", names.env_key_alias), e))?;
    Ok(Some(EnvKeyObs {
        id: meta.key_id().to_string(),
        arn: meta.arn().unwrap_or_default().to_string(),
        state: state(meta.key_state()),
        tags,
        aliased: true,
    }))
}

/// The stage's keys that have no alias, by their tags, through the Resource Groups Tagging API (one request, not
/// one per key in the account): a key a run created and stopped before aliasing (KMS has no idempotent create), or
/// one a `teardown` scheduled for deletion (a later `up` restores it rather than pay for a new one). Live keys
/// first.
pub(crate) async fn find_unaliased(
    tagging: &aws_sdk_resourcegroupstagging::Client,
    kms: &Client,
    names: &Names,
) -> Result<Vec<EnvKeyObs>> {
    use aws_sdk_resourcegroupstagging::types::TagFilter;
    let project = names
        .prefix
        .strip_suffix(&format!("-{}", names.stage))
        .unwrap_or(&names.prefix);
    let filter = |k: &str, v: &str| TagFilter::builder().key(k).values(v).build();
    let mut arns = vec![];
    let mut pages = tagging
        .get_resources()
        .resource_type_filters("kms:key")
        .tag_filters(filter(TAG_PROJECT, project))
        .tag_filters(filter(TAG_STAGE, &names.stage))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| explain("find the stage's KMS keys by their tags", e))?;
        arns.extend(
            page.resource_tag_mapping_list()
                .iter()
                .filter_map(|m| Some((m.resource_arn()?.to_string(), m.tags().to_vec()))),
        );
    }
    let reads = arns.into_iter().map(|(arn, tags)| async move {
        let meta = kms
            .describe_key()
            .key_id(&arn)
            .send()
            .await
            .map_err(|e| explain(&format!("read the KMS key {arn}"), e))?;
        let meta = meta
            .key_metadata()
            .ok_or_else(|| anyhow::anyhow!("KMS said nothing of the key {arn}"))?;
        Ok::<_, anyhow::Error>(EnvKeyObs {
            id: meta.key_id().to_string(),
            state: state(meta.key_state()),
            tags: tags
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect(),
            arn,
            aliased: false,
        })
    });
    let mut found = futures_util::future::try_join_all(reads).await?;
    found.sort_by_key(|k| (k.state != KmsKeyState::Enabled, k.id.clone()));
    Ok(found)
}

/// Creates the key, tagged in the same call, then its alias; returns the key's ARN. KMS is eventually consistent:
/// `CreateAlias` on a key created moments ago may answer `NotFoundException`, which terraform-provider-aws retries
/// (`internal/service/kms/alias.go`). If a concurrent run aliased its own key first, this run's key is scheduled
/// for deletion and the aliased one is used.
pub(crate) async fn create(kms: &Client, d: &Desired, step: &dyn Step) -> Result<String> {
    let tags = kms_tags(&d.tags)?;
    let out = kms
        .create_key()
        // Said, not left to KMS's defaults, so that the deploy policy's conditions on them always have a value.
        .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
        .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
        .origin(aws_sdk_kms::types::OriginType::AwsKms)
        .multi_region(false)
        .bypass_policy_lockout_safety_check(false)
        .description(format!(
            "wsdeploy {}: encrypts the environment of the stage's Lambda functions",
            d.names.prefix
        ))
        .set_tags(Some(tags))
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
        Ok(()) => Ok(arn),
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

/// Points the stage's alias at `id`, waiting out KMS's propagation of a new key.
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
    retry_for(PROPAGATION_BUDGET, step, not_yet, || {
        kms.create_alias()
            .alias_name(alias)
            .target_key_id(id)
            .send()
    })
    .await
    .map(|_| ())
}

/// A key whose deletion a half-done `teardown` scheduled, or that someone disabled: usable again.
pub(crate) async fn restore(kms: &Client, id: &str, pending: bool, step: &dyn Step) -> Result<()> {
    if pending {
        abac(kms, id, step, || {
            kms.cancel_key_deletion().key_id(id).send()
        })
        .await
        .map_err(|e| explain(&format!("cancel the deletion of the KMS key {id}"), e))?;
    }
    // A cancelled deletion leaves the key Disabled.
    abac(kms, id, step, || kms.enable_key().key_id(id).send())
        .await
        .map_err(|e| explain(&format!("enable the KMS key {id}"), e))?;
    Ok(())
}

async fn schedule_deletion(kms: &Client, id: &str, step: &dyn Step) -> Result<()> {
    let r = abac(kms, id, step, || {
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
        abac(kms, id, step, || {
            kms.tag_resource()
                .key_id(id)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map_err(|e| explain(&format!("tag the KMS key {id}"), e))?;
    }
    if !diff.remove.is_empty() {
        abac(kms, id, step, || {
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

/// The deploy policy allows changing the key by its tags, which KMS honours only minutes after they are set (see
/// `ABAC_PROPAGATION`). So `AccessDeniedException` on a key younger than that is waited out until the key is that
/// old, and no longer; on an older key it is the error it says. `WSDEPLOY_KMS_TAG_WAIT_SECS` shortens the window
/// (for accounts that know better, and for the test suite, whose emulator applies tags sooner).
async fn abac<T, E, F, Fut>(
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
    let denied = |e: &SdkError<E, _>| e.code() == Some("AccessDeniedException");
    match call().await {
        Err(e) if denied(&e) => {
            let window = std::env::var("WSDEPLOY_KMS_TAG_WAIT_SECS")
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or(ABAC_PROPAGATION, Duration::from_secs);
            let Some(age) = key_age(kms, id).await else {
                return Err(e);
            };
            let Some(left) = window.checked_sub(age).filter(|d| !d.is_zero()) else {
                return Err(e);
            };
            let why = |e: &SdkError<E, _>| {
                denied(e).then_some("KMS has not yet applied the new key's tags to authorization (it can take five minutes)")
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
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    Some(now.saturating_sub(Duration::from_secs(created.secs().max(0) as u64)))
}
