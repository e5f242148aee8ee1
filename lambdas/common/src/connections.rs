//! The functions' own calls to API Gateway's `@connections` API, signed with SigV4 as the function's role: after a
//! refused `auth`, the refusal is posted to the socket and the socket is closed, so that a client which keeps a
//! refused socket open (API Gateway's MOCK `ping` would keep it alive for two hours) holds nothing.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use reqwest::Method;

/// Set by `wsdeploy dev` only: its `@connections` endpoint. On AWS the endpoint is the API's own (below).
pub const ENV_MANAGEMENT_ENDPOINT: &str = "WSDEPLOY_MANAGEMENT_ENDPOINT";

/// Where and as whom the function calls `@connections`.
#[derive(Clone)]
pub struct Management {
    /// `https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`
    /// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-how-to-call-websocket-api-connections.html>).
    endpoint: String,
    region: String,
    /// The role's temporary credentials, which Lambda puts in the environment
    /// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>).
    credentials: Credentials,
}

impl std::fmt::Debug for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Management")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Management {
    /// From the environment Lambda (or `dev`) gives the function; `None` when it lacks a region or credentials
    /// (refused sockets are then left for the client to close, and the function says so once).
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
        api_id: &str,
        stage: &str,
    ) -> Option<Management> {
        let region = get("AWS_REGION").filter(|r| !r.is_empty())?;
        let key = get("AWS_ACCESS_KEY_ID").filter(|k| !k.is_empty())?;
        let secret = get("AWS_SECRET_ACCESS_KEY").filter(|s| !s.is_empty())?;
        let token = get("AWS_SESSION_TOKEN").filter(|t| !t.is_empty());
        let endpoint = get(ENV_MANAGEMENT_ENDPOINT)
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| {
                format!("https://{api_id}.execute-api.{region}.amazonaws.com/{stage}")
            });
        Some(Management {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region,
            credentials: Credentials::new(key, secret, token, None, "lambda-environment"),
        })
    }

    /// `POST @connections/{id}`: the HTTP status, or why there is none.
    pub async fn post(
        &self,
        client: &reqwest::Client,
        connection_id: &str,
        body: &[u8],
    ) -> Result<u16, String> {
        self.call(client, Method::POST, connection_id, body).await
    }

    /// `DELETE @connections/{id}`: the socket is closed (204), or was already gone (410).
    pub async fn delete(
        &self,
        client: &reqwest::Client,
        connection_id: &str,
    ) -> Result<u16, String> {
        self.call(client, Method::DELETE, connection_id, &[]).await
    }

    async fn call(
        &self,
        client: &reqwest::Client,
        method: Method,
        connection_id: &str,
        body: &[u8],
    ) -> Result<u16, String> {
        let url = format!(
            "{}/@connections/{}",
            self.endpoint,
            crate::backend::encode_segment(connection_id)
        );
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            &url,
            std::iter::empty(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
            .into_parts();
        let mut req = client.request(method, &url);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        if !body.is_empty() {
            req = req.body(body.to_vec());
        }
        req.send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| crate::backend::without_url(&e))
    }
}
