//! CloudWatch Logs: the functions' log groups, created ahead so their retention is ours, not "never expire".

use anyhow::Result;
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
