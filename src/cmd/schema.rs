//! `wsdeploy schema`: the JSON Schema of wsdeploy.yaml.

use crate::error::Result;

use super::Context;

/// Print the JSON Schema of wsdeploy.yaml (generated from the same types the loader uses).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  wsdeploy schema > wsdeploy.schema.json")]
pub struct Args {}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        ctx.ui.out_raw(format!("{}\n", schema_text()).as_bytes());
        Ok(())
    }
}

pub(crate) fn schema_text() -> String {
    serde_json::to_string_pretty(&crate::config::json_schema()).expect("schema serializes")
}
