//! `wsdeploy validate`: check the config offline and show what it resolves to.

use serde_json::json;

use crate::config::StageConfig;
use crate::error::Result;

use super::Context;

/// Check wsdeploy.yaml without touching AWS and show each stage as it resolves (defaults and overrides applied).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  wsdeploy validate\n  wsdeploy validate -s prod --output json")]
pub struct Args {}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config = ctx.load_config()?;
        let stages: Vec<&StageConfig> = match &ctx.global.stage {
            Some(_) => vec![config.stage(ctx.global.stage.as_deref())?],
            None => config.stages.values().collect(),
        };
        ctx.ui.out_json(&json!({
            "valid": true,
            "file": config.file.path,
            "stages": stages.iter().map(|s| (s.stage.clone(), stage_json(s))).collect::<serde_json::Map<_, _>>(),
            "warnings": config.warnings.diagnostics,
        }));
        ctx.ui
            .out(format!("{} is valid.", config.file.path.display()));
        for s in stages {
            ctx.ui.out(summary(s));
        }
        Ok(())
    }
}

fn stage_json(s: &StageConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(s).expect("config serializes");
    v["names"] = serde_json::to_value(s.names()).expect("names serialize");
    v["functions"] = s
        .functions()
        .iter()
        .map(|f| (f.clone(), s.function_name(f).into()))
        .collect::<serde_json::Map<_, _>>()
        .into();
    v
}

/// A few aligned lines per stage: what `up` would build, in words.
pub(crate) fn summary(s: &StageConfig) -> String {
    let n = s.names();
    let routes: Vec<String> = s
        .routes
        .iter()
        .map(|(k, f)| format!("{k} → {}", s.function_name(f)))
        .collect();
    let b = &s.backend;
    let l = &s.lambda;
    let creds = match s.credentials {
        crate::config::CredentialsMode::IamUser => {
            format!("IAM user {} with an access key", n.user)
        }
        crate::config::CredentialsMode::Policy => format!(
            "managed policy {} (attach it to your backend's role)",
            n.policy
        ),
    };
    let mut lines = vec![
        format!("\nstage {} (region {})", s.stage, s.region),
        format!(
            "  api          {} (route selection $request.body.action)",
            n.api
        ),
        format!("  routes       {}", routes.join(", ")),
        format!(
            "  backend      {} — POST {}, DELETE {}, timeout {} ms",
            b.url, b.connect_path, b.disconnect_path, b.timeout_ms
        ),
        format!(
            "  lambdas      {}, {} MB, {} s, logs kept {} days, role {}",
            l.architecture.as_str(),
            l.memory_mb,
            l.timeout_s,
            l.log_retention_days,
            n.role
        ),
        format!("  credentials  {creds}"),
    ];
    if let Some(f) = &s.env.frontend {
        lines.push(format!("  frontend env {} ({})", f.file.display(), f.url));
    }
    if let Some(e) = &s.env.backend {
        lines.push(format!(
            "  backend env  {} ({}, {}, {}, {}, {})",
            e.file.display(),
            e.endpoint,
            e.region,
            e.access_key_id,
            e.secret_access_key,
            e.signing_secret
        ));
    }
    if !s.tags.is_empty() {
        let tags: Vec<String> = s.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(format!("  tags         {}", tags.join(", ")));
    }
    lines.join("\n")
}
