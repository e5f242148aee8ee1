//! `wsdeploy send`: post a message to one connection through the @connections API.

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::cloud::explain;
use crate::error::Result;

use super::Context;

/// Send MESSAGE to a connected client through the stage's @connections management API.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy send -s dev --connection TWegAcC4EowCHnA= '{\"type\":\"hello\"}'\n\nTopics and users live in your backend, not in AWS: to send to a topic or to every user, call\nsockets.publish(topic, data) or sockets.broadcast(data) there. `send` posts to one connection id."
)]
pub struct Args {
    /// The connection id (as your backend received it).
    #[arg(long, value_name = "ID")]
    pub connection: String,
    /// The message, sent as one text frame.
    pub message: String,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let (d, _, api) = s.deployed().await?;
        let endpoint = d.management_endpoint(&api.reference());
        let mut conf = aws_sdk_apigatewaymanagement::config::Builder::from(&s.clients.config);
        // An endpoint set through AWS_ENDPOINT_URL(_APIGATEWAYMANAGEMENTAPI) wins, as for every other service.
        if s.clients.config.endpoint_url().is_none() {
            conf = conf.endpoint_url(&endpoint);
        }
        let client = aws_sdk_apigatewaymanagement::Client::from_conf(conf.build());
        let sent = client
            .post_to_connection()
            .connection_id(&self.connection)
            .data(self.message.clone().into_bytes().into())
            .send()
            .await;
        match sent {
            Ok(_) => {
                ctx.ui.out_json(&serde_json::json!({ "sent": true, "connection": self.connection, "bytes": self.message.len() }));
                ctx.ui.out(format!("sent {} bytes to {}", self.message.len(), self.connection));
                Ok(())
            }
            Err(e) if e.code() == Some("GoneException") => Err(anyhow::anyhow!(
                "connection {} is gone (410 GoneException): the client has disconnected. Your backend should delete it from its store",
                self.connection
            )
            .into()),
            Err(e) => Err(explain(&format!("post to connection {}", self.connection), e).into()),
        }
    }
}
