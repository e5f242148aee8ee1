//! `wsdeploy logs`: the stage's API and function logs, merged in time order, one readable line each.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::cloud::logs::{events, Unreadable};
use crate::deploy::Desired;
use crate::error::{Error, Result};
use crate::logfmt::{self, Colour, Event};

use super::Context;

/// Show the stage's logs: API Gateway's access (and execution) logs and the functions', merged in time order, one
/// line each. `--connection` follows one socket through all of them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy logs -s prod --since 1h\n  wsdeploy logs -s prod --connection AbCdEfGhIjKlMnO=\n  wsdeploy logs -s prod --function connect --follow\n  wsdeploy logs -s prod --output json | jq -r '.events[].message'"
)]
pub struct Args {
    /// Keep printing new events, polling every 2 s, until Ctrl-C (with --output json: one JSON object a line).
    #[arg(long)]
    pub follow: bool,
    /// How far back to start, e.g. 10m, 2h, 1d.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// Only the events that mention this connection id, in every log group.
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// Only this bundled function's logs (`connect`, `disconnect`), or the API's (`api`).
    #[arg(long, value_name = "NAME")]
    pub function: Option<String>,
    /// At most this many events per log group and poll.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
}

/// How often `--follow` asks CloudWatch Logs for new events (its `FilterLogEvents` allows 5 calls a second per
/// account and region; one per group every 2 s stays well under it with a few terminals open).
const POLL: Duration = Duration::from_secs(2);

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let d = Desired::without_code(&s.stage, &s.caller);
        let groups = self.groups(&d, &s.observed)?;
        let pattern = self.connection.as_ref().map(|id| format!("\"{id}\""));
        let now = now_ms();
        let mut from = now - i64::try_from(self.since.as_millis()).unwrap_or(i64::MAX / 2);
        let mut seen = BTreeSet::new();
        let colour = if ctx.ui.interactive {
            Colour::On
        } else {
            Colour::Off
        };
        let mut first = true;
        let warned = std::sync::OnceLock::new();
        loop {
            let found = self
                .read(
                    (&ctx.ui, &warned),
                    &s.clients.logs,
                    &groups,
                    (from, pattern.as_deref()),
                )
                .await?;
            let fresh: Vec<Event> = found
                .into_iter()
                .filter(|(_, id, _)| seen.insert(id.clone()))
                .map(|(e, _, _)| e)
                .collect();
            if let Some(last) = fresh.iter().map(|e| e.timestamp).max() {
                // CloudWatch may still add events with the last timestamp: ask from it again, and skip what was seen.
                from = from.max(last);
            }
            self.print(ctx, &fresh, colour, first);
            first = false;
            if !self.follow {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }

    /// (source, log group) of what was asked for.
    fn groups(&self, d: &Desired, o: &crate::deploy::Observed) -> Result<Vec<(String, String)>> {
        let mut all: Vec<(String, String)> = d
            .functions
            .iter()
            .map(|f| (f.function.clone(), Desired::log_group(&f.name)))
            .collect();
        all.push(("api".into(), d.names.access_log_group.clone()));
        if let Some(api) = o.kept_api() {
            all.push(("api-exec".into(), d.execution_log_group(&api.id)));
        }
        let Some(only) = &self.function else {
            return Ok(all);
        };
        let picked: Vec<(String, String)> = all
            .iter()
            .filter(|(source, _)| source == only || (only == "api" && source.starts_with("api")))
            .cloned()
            .collect();
        if picked.is_empty() {
            let names: Vec<&str> = d.functions.iter().map(|f| f.function.as_str()).collect();
            return Err(Error::usage(format!(
                "the stage has no function `{only}`: give one of {} or `api`",
                names.join(", ")
            )));
        }
        Ok(picked)
    }

    /// Every group's events, merged by time (then group, then CloudWatch's order).
    async fn read(
        &self,
        (ui, warned): (&crate::ui::Ui, &std::sync::OnceLock<()>),
        logs: &aws_sdk_cloudwatchlogs::Client,
        groups: &[(String, String)],
        (from, pattern): (i64, Option<&str>),
    ) -> Result<Vec<(Event, String, String)>> {
        let reads = groups.iter().map(|(source, group)| async move {
            let found = match events(logs, group, from, pattern, self.limit).await {
                Ok(found) => found,
                // API Gateway's execution logs are read by whoever may; the deploy identity may not (it cannot be
                // scoped to this API's group), which leaves the stage's other logs to show.
                Err(e) if source == "api-exec" && e.is::<Unreadable>() => {
                    if warned.set(()).is_ok() {
                        ui.warn(format!("not read: {group}: {e}; the deploy policy does not grant it on execution log groups, which it cannot tell from other APIs'"));
                    }
                    vec![]
                }
                Err(e) => return Err(e),
            };
            Ok::<_, anyhow::Error>(found.into_iter().map(|(timestamp, id, message)| {
                let e = Event {
                    timestamp,
                    source: source.clone(),
                    message,
                };
                (e, id, group.clone())
            }))
        });
        let mut all: Vec<(Event, String, String)> = futures_util::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.sort_by(|a, b| (a.0.timestamp, &a.2).cmp(&(b.0.timestamp, &b.2)));
        Ok(all)
    }

    fn print(&self, ctx: &Context, events: &[Event], colour: Colour, first: bool) {
        if ctx.ui.json() {
            if self.follow {
                for e in events {
                    ctx.ui.out_raw(format!("{}\n", json!(e)).as_bytes());
                }
            } else {
                ctx.ui.out_json(&json!({ "events": events }));
            }
            return;
        }
        if first && events.is_empty() {
            ctx.ui.info(format!(
                "No log events in the last {}{}.",
                humantime::format_duration(self.since),
                self.connection
                    .as_ref()
                    .map(|c| format!(" for connection {c}"))
                    .unwrap_or_default()
            ));
        }
        for e in events {
            ctx.ui.out(logfmt::line(e, colour));
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or_default())
        .unwrap_or_default()
}
