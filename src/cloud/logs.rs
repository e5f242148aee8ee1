//! CloudWatch Logs: the functions' log groups, created ahead so their retention is ours, not "never expire".

use anyhow::Result;
use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::Client;

use super::{already, explain, gone};
use crate::deploy::state::{TagDiff, Tags};

pub(crate) async fn create_group(logs: &Client, name: &str, tags: &Tags) -> Result<()> {
    let r = logs
        .create_log_group()
        .log_group_name(name)
        .set_tags(Some(tags.clone().into_iter().collect()))
        .send()
        .await;
    already(r, "ResourceAlreadyExistsException")
        .map_err(|e| explain(&format!("create the log group {name}"), e))
}

pub(crate) async fn set_retention(logs: &Client, name: &str, days: i32) -> Result<()> {
    logs.put_retention_policy()
        .log_group_name(name)
        .retention_in_days(days)
        .send()
        .await
        .map_err(|e| explain(&format!("set the retention of {name}"), e))?;
    Ok(())
}

pub(crate) async fn delete_group(logs: &Client, name: &str) -> Result<()> {
    gone(logs.delete_log_group().log_group_name(name).send().await)
        .map_err(|e| explain(&format!("delete the log group {name}"), e))
}

/// What became of an execution log group at teardown.
pub(crate) enum Retired {
    Deleted,
    /// The identity may not delete it: its retention is now a day, so it holds nothing a day later.
    Expiring,
    /// The identity may neither delete it nor change its retention.
    Left,
}

/// Deletes the execution log group `name`, or, refused, empties it within a day instead. The deploy policy grants no
/// delete on execution log groups: they are named after an API id no policy can know beforehand, and CloudWatch
/// Logs cannot stop a caller from tagging a group (so tags cannot tell the stage's from another API's)
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-identity-based-access-control-cwl.html>).
pub(crate) async fn retire_execution_group(logs: &Client, name: &str) -> Result<Retired> {
    match gone(logs.delete_log_group().log_group_name(name).send().await) {
        Ok(()) => Ok(Retired::Deleted),
        Err(e) if e.code() == Some("AccessDeniedException") => {
            let r = logs
                .put_retention_policy()
                .log_group_name(name)
                .retention_in_days(1)
                .send()
                .await;
            match r {
                Ok(_) => Ok(Retired::Expiring),
                // A stage whose config no longer asks for execution logs has no grant on the group at all.
                Err(e) if e.code() == Some("AccessDeniedException") => Ok(Retired::Left),
                Err(e) => Err(explain(&format!("set the retention of {name}"), e)),
            }
        }
        Err(e) => Err(explain(&format!("delete the log group {name}"), e)),
    }
}

pub(crate) async fn retag(logs: &Client, arn: &str, diff: &TagDiff) -> Result<()> {
    if !diff.set.is_empty() {
        logs.tag_resource()
            .resource_arn(arn)
            .set_tags(Some(diff.set.clone().into_iter().collect()))
            .send()
            .await
            .map_err(|e| explain("tag the log group", e))?;
    }
    if !diff.remove.is_empty() {
        logs.untag_resource()
            .resource_arn(arn)
            .set_tag_keys(Some(diff.remove.clone()))
            .send()
            .await
            .map_err(|e| explain("untag the log group", e))?;
    }
    Ok(())
}

/// The identity may not read the group (the deploy policy reads no execution log group: see
/// `retire_execution_group`).
#[derive(Debug)]
pub(crate) struct Unreadable;

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("this identity may not read it (logs:FilterLogEvents)")
    }
}

impl std::error::Error for Unreadable {}

/// The events of `group` from `start_ms` on (at most `limit`), matching `pattern` (a CloudWatch Logs filter pattern;
/// a quoted term matches that exact text): (timestamp, event id, message), oldest first. A group that does not
/// exist (yet) has none.
pub(crate) async fn events(
    logs: &Client,
    group: &str,
    start_ms: i64,
    pattern: Option<&str>,
    limit: usize,
) -> Result<Vec<(i64, String, String)>> {
    let mut out = vec![];
    let mut pages = logs
        .filter_log_events()
        .log_group_name(group)
        .start_time(start_ms)
        .set_filter_pattern(pattern.map(str::to_string))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = match page {
            Ok(p) => p,
            Err(e) if e.as_service_error().is_some_and(super::is_not_found) => return Ok(out),
            Err(e) if e.code() == Some("AccessDeniedException") => return Err(Unreadable.into()),
            Err(e) => return Err(explain(&format!("read the log group {group}"), e)),
        };
        for e in page.events() {
            out.push((
                e.timestamp().unwrap_or_default(),
                e.event_id().unwrap_or_default().to_string(),
                e.message().unwrap_or_default().to_string(),
            ));
        }
        if out.len() >= limit {
            out.truncate(limit);
            break;
        }
    }
    Ok(out)
}
