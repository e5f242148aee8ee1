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
