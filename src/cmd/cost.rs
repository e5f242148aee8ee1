//! `wsdeploy cost`: what a stage would cost a month under a given load.

use serde_json::json;

use crate::cost::{amount, estimate, render, usd, Load};
use crate::error::{Error, Result};

use super::Context;

/// Estimate the stage's monthly AWS bill: API Gateway's connection minutes and messages (heartbeats and auth
/// included), the functions' requests, duration and logs, and the stage's KMS key, at public us-east-1 prices.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy cost --connections 1000 --messages 10 --per second\n  wsdeploy cost -s prod                     (the load from the stage's `expect:`)\n  wsdeploy cost --connections 50000 --messages 2000 --per minute --output json"
)]
pub struct Args {
    /// Sockets open at any moment, on average [default: the config's expect.connections].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub connections: Option<f64>,
    /// Messages per --per, both ways (clients' and the backend's pushes), heartbeats aside [default: the config's
    /// expect.messages_per_minute].
    #[arg(long, value_name = "M", allow_negative_numbers = true)]
    pub messages: Option<f64>,
    /// What --messages counts per.
    #[arg(long, value_enum, default_value = "minute")]
    pub per: Per,
    /// The average message's size in KB; each 32 KB started is billed as one message [default: the config's
    /// expect.message_kb, or 1].
    #[arg(long, value_name = "KB")]
    pub message_kb: Option<f64>,
    /// How long a bundled function runs, backend call included.
    #[arg(long, default_value_t = crate::cost::DEFAULT_FUNCTION_MS, value_name = "MS")]
    pub function_ms: f64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Per {
    Second,
    Minute,
    Hour,
    Day,
}

impl Per {
    fn minutes(self) -> f64 {
        match self {
            Per::Second => 1.0 / 60.0,
            Per::Minute => 1.0,
            Per::Hour => 60.0,
            Per::Day => 24.0 * 60.0,
        }
    }
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config = ctx.load_config()?;
        let stage = config.stage(ctx.global.stage.as_deref())?;
        let expect = stage.expect;
        let connections = self.connections.or(expect.map(|e| e.connections));
        let per_minute = match self.messages {
            Some(m) => Some(m / self.per.minutes()),
            None => expect.map(|e| e.messages_per_minute),
        };
        let (Some(connections), Some(messages_per_minute)) = (connections, per_minute) else {
            return Err(Error::usage(
                "no load to price: give --connections and --messages (with --per), or `expect: { connections, messages_per_minute }` in the config",
            ));
        };
        let message_kb = self
            .message_kb
            .or(expect.map(|e| e.message_kb))
            .unwrap_or(1.0);
        for (flag, v) in [
            ("--connections", connections),
            ("--messages", messages_per_minute),
            ("--message-kb", message_kb),
            ("--function-ms", self.function_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::usage(format!(
                    "{flag} must be a number of 0 or more"
                )));
            }
        }
        let load = Load {
            connections,
            messages_per_minute,
            message_kb,
            function_ms: self.function_ms,
        };
        let e = estimate(stage, &load);
        ctx.ui.out_json(&json!({
            "stage": stage.stage,
            "load": load,
            "lines": e.lines,
            "usd_per_month": e.usd_per_month,
            "prices_as_of": e.prices_as_of,
            "assumptions": e.assumptions,
        }));
        ctx.ui.out(format!(
            "Stage {} at {} sockets and {} messages a minute: about {} a month\n\n{}",
            stage.stage,
            amount(connections),
            amount(messages_per_minute),
            usd(e.usd_per_month),
            render(&e)
        ));
        Ok(())
    }
}
