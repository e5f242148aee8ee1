//! `wsdeploy dev`: the whole system on this machine.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::json;

use crate::dev::{self, Log, Options};
use crate::error::Result;
use crate::lambdas::Target;

use super::Context;

/// Run the WebSocket gateway, the @connections API and the bundled Lambdas locally (stage `local`), and write the
/// env files with local values. No AWS account needed. Ctrl-C closes every socket (1001) and fires $disconnect.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy dev\n  wsdeploy dev --port 4000\n  wsdeploy dev --port 0 --output json    (a free port; the URLs as JSON)"
)]
pub struct Args {
    /// Port of the gateway (WebSocket and @connections); 0 picks a free one.
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    /// Address to bind; anything but loopback exposes the gateway to your network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Close a socket after this long without a message from its client [default: 10m, as API Gateway]. Seconds,
    /// or a duration such as `3s` or `10m`.
    #[arg(long, value_name = "DURATION", value_parser = duration_or_seconds)]
    pub idle_timeout: Option<Duration>,
    /// Close a socket after this long whatever happens [default: 2h, as API Gateway]. Seconds, or a duration such
    /// as `10s` or `2h`.
    #[arg(long, value_name = "DURATION", value_parser = duration_or_seconds)]
    pub max_connection: Option<Duration>,
    /// Refuse new sockets (HTTP 429) while this many are open, so that a runaway client cannot exhaust this
    /// machine.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,
    /// Close a connection whose request headers (the WebSocket handshake's included) take longer than this to
    /// arrive, so that a client trickling bytes cannot hold connections open.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Also accept sockets from web pages of this origin (repeatable; `*` for any, `null` for `file://` pages).
    /// By default only this app's pages may connect: `dev.open`'s and the backend URL's origins and pages served
    /// from this machine, so that a site you visit while dev runs cannot open a socket on it.
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// Skip the `$disconnect` route of this percentage of closed sockets (0 to 100), as AWS sometimes does not
    /// deliver it: to see that your backend's presence still follows (the templates' sweep asks @connections).
    #[arg(long, value_name = "PERCENT", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub lose_disconnects: u8,
    #[command(flatten)]
    pub source: crate::lambdas::SourceArgs,
}

/// `90` (seconds, as these flags always took) or a humantime duration (`90s`, `1m 30s`); zero is refused, since a
/// socket closed at once tests nothing.
fn duration_or_seconds(text: &str) -> std::result::Result<Duration, String> {
    let d = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("{e} (examples: 600, 3s, 10m, 2h)"))?,
    };
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config = ctx.load_config()?;
        let stage = config.local_stage();
        if !self.host.is_loopback() {
            ctx.ui.warn(format!("listening on {}: anyone on your network can connect and, with the dev key, post to connections", self.host));
        }
        if !crate::lambdas::prebuilt_for(Target::Host, &self.source) {
            ctx.ui.info(
                "building the bundled Lambdas for this machine (cached after the first build)…",
            );
        }
        let opts = Options {
            host: self.host,
            port: self.port,
            idle: self
                .idle_timeout
                .unwrap_or(Duration::from_secs(crate::facts::IDLE_TIMEOUT_S)),
            max_life: self
                .max_connection
                .unwrap_or(Duration::from_secs(crate::facts::MAX_CONNECTION_S)),
            max_connections: self.max_connections,
            header_timeout: self.header_timeout,
            allow_origins: self.allow_origin,
            lose_disconnects: f64::from(self.lose_disconnects) / 100.0,
            source: self.source,
            log: Log {
                quiet: ctx.ui.quiet,
            },
        };
        let ui = ctx.ui.clone();
        let env_files: Vec<String> = stage
            .env
            .frontend
            .iter()
            .map(|f| f.file.display().to_string())
            .chain(
                stage
                    .env
                    .backend
                    .iter()
                    .map(|b| b.file.display().to_string()),
            )
            .collect();
        let open = stage.dev.open.clone();
        let started = move |r: &dev::Running| {
            ui.out_json(&json!({
                "stage": "local",
                "websocket_url": r.websocket_url,
                "management_endpoint": r.management_endpoint,
                "access_key_id": r.access_key_id,
                "env_files": env_files,
                "functions": r.functions,
                "open": open,
            }));
            ui.out(format!(
                "wsdeploy dev is running (stage local)\n  WebSocket     {}\n  @connections  {}/@connections/{{connectionId}}\n  env files     {}\n  functions     {}\nCtrl-C to stop.",
                r.websocket_url,
                r.management_endpoint,
                if env_files.is_empty() { "(none configured)".to_string() } else { env_files.join(", ") },
                r.functions
            ));
        };
        dev::run(stage, opts, started, shutdown_signal()).await?;
        ctx.ui
            .info("stopped: every socket closed (1001) and $disconnect fired for each.");
        Ok(())
    }
}

/// Ctrl-C, SIGTERM from a process manager, or SIGHUP from a closed terminal.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        // SIGHUP: the terminal was closed; stop as cleanly as for Ctrl-C.
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .expect("SIGHUP handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
