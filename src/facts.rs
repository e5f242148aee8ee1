//! What AWS does, in one table: `up` creates resources within these limits and `dev` imitates them, so neither
//! keeps a copy of its own. Each fact names where AWS documents it.

// API Gateway WebSocket APIs. Quotas:
// https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html

/// API Gateway stops waiting for an integration after 29 seconds.
pub(crate) const INTEGRATION_TIMEOUT_S: u32 = 29;
/// The largest message a client may send, in bytes (128 KB).
pub(crate) const MAX_MESSAGE_BYTES: usize = 128 * 1024;
/// The largest single WebSocket frame, in bytes (32 KB); larger messages arrive in several frames.
pub(crate) const MAX_FRAME_BYTES: usize = 32 * 1024;
/// Messages are billed in units of this size: each 32 KB started is one message
/// (<https://aws.amazon.com/api-gateway/pricing/>). The same number as the frame limit, a different fact.
pub(crate) const MESSAGE_BILLING_BYTES: usize = 32 * 1024;
/// A connection without a message for this long is closed (10 minutes).
pub(crate) const IDLE_TIMEOUT_S: u64 = 10 * 60;
/// A connection is closed after this long whatever happens (2 hours).
pub(crate) const MAX_CONNECTION_S: u64 = 2 * 60 * 60;
/// How a message picks its route: its JSON `action` field.
pub(crate) const ROUTE_SELECTION: &str = "$request.body.action";
/// The routes API Gateway predefines; every other key is an `action` value.
pub(crate) const SPECIAL_ROUTES: [&str; 3] = ["$connect", "$disconnect", "$default"];
/// Route response key (and selection expression) that sends a two-way route's answer back to the client.
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-route-response.html>
pub(crate) const REPLY_KEY: &str = "$default";
/// API Gateway's default account-level throttle, per region: steady-state requests per second and burst
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html>).
pub(crate) const ACCOUNT_THROTTLE_RATE: u32 = 10_000;
pub(crate) const ACCOUNT_THROTTLE_BURST: u32 = 5_000;
/// The heartbeat: the action a client sends to keep its socket inside the idle limit, and what API Gateway answers
/// it from a MOCK integration, with no function involved.
pub(crate) const HEARTBEAT_ACTION: &str = "ping";
pub(crate) const HEARTBEAT_REPLY: &str = r#"{"action":"pong"}"#;

// What the gateway answers, which `dev` reproduces and `wsdeploy conformance` checks (docs/developing-locally.md lists
// them). WebSocket close codes are RFC 6455's.

/// A message over `MAX_MESSAGE_BYTES` (or a frame over `MAX_FRAME_BYTES`) closes the socket with this.
pub(crate) const CLOSE_TOO_BIG: u16 = 1009;
/// A binary frame closes the socket with this, invoking nothing
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html>).
pub(crate) const CLOSE_BINARY: u16 = 1003;
/// The idle and maximum-duration timeouts close the socket with this ("Going away").
pub(crate) const CLOSE_GOING_AWAY: u16 = 1001;
/// The reply to a message no route takes (with its `connectionId` and `requestId`).
pub(crate) const REPLY_NO_ROUTE: &str = "Forbidden";
/// The reply when the integration fails or crashes.
pub(crate) const REPLY_INTEGRATION_FAILED: &str = "Internal server error";
/// The reply when the integration does not answer within `INTEGRATION_TIMEOUT_S`.
pub(crate) const REPLY_INTEGRATION_TIMEOUT: &str = "Endpoint request timed out";
/// The reply to a message dropped because its route (here: its socket) is throttled, 429's reason phrase
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-protect.html>).
pub(crate) const REPLY_THROTTLED: &str = "Too Many Requests";
/// `@connections` on a connection that is closed (from the moment it closes): 410 with this error type.
pub(crate) const ERROR_GONE: &str = "GoneException";
/// `@connections` refusals, each 403: no signature, a malformed one, an unknown key, a wrong or expired signature.
pub(crate) const ERROR_NO_SIGNATURE: &str = "MissingAuthenticationTokenException";
pub(crate) const ERROR_MALFORMED_SIGNATURE: &str = "IncompleteSignatureException";
pub(crate) const ERROR_UNKNOWN_KEY: &str = "UnrecognizedClientException";
pub(crate) const ERROR_BAD_SIGNATURE: &str = "InvalidSignatureException";

// Lambda. Quotas: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html

/// The OS-only runtime the bundled `bootstrap` binaries run on.
pub(crate) const RUNTIME: &str = "provided.al2023";
pub(crate) const HANDLER: &str = "bootstrap";
/// Memory a function may have, in MB.
pub(crate) const LAMBDA_MEMORY_MB: std::ops::RangeInclusive<u32> = 128..=10240;
/// A function's timeout, in seconds.
pub(crate) const LAMBDA_TIMEOUT_S: std::ops::RangeInclusive<u32> = 1..=900;
/// The longest function name.
pub(crate) const LAMBDA_NAME_LEN: usize = 64;

/// CloudWatch Logs accepts only these retention periods (`PutRetentionPolicy`).
/// <https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html>
pub(crate) const LOG_RETENTION_DAYS: [u32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];

/// The access log line: one JSON object per connect, message and disconnect, with WebSocket APIs' `$context`
/// variables (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-logging.html>). API
/// Gateway refuses a format without `$context.requestId` or `$context.extendedRequestId`
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>). `wsdeploy logs` reads
/// these names back (see `logfmt`).
pub(crate) const ACCESS_LOG_FORMAT: &str = r#"{"requestId":"$context.requestId","requestTime":"$context.requestTime","eventType":"$context.eventType","routeKey":"$context.routeKey","connectionId":"$context.connectionId","status":"$context.status","integrationError":"$context.integration.error","integrationLatency":"$context.integrationLatency","error":"$context.error.message","ip":"$context.identity.sourceIp"}"#;

/// The role API Gateway pushes logs to CloudWatch with, set in the account's API Gateway settings. One per
/// account, shared by every stage (and every other API Gateway API of the account).
pub(crate) const ACCOUNT_LOGGING_ROLE: &str = "wsdeploy-apigateway-cloudwatch";

/// AWS's managed policy for that role (<https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>).
pub(crate) const ACCOUNT_LOGGING_POLICY: &str =
    "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/// The TLS policy of a custom domain: TLS 1.2 at least (`TLS_1_0` is API Gateway's default).
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-custom-domain-tls-version.html>
pub(crate) const DOMAIN_TLS: &str = "TLS_1_2";

/// The most characters a customer managed policy document may have, white space not counted (IAM's quotas,
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>: "Managed policy size: 6,144
/// characters"). A role's inline policies may total 10,240; the deploy policy is cut to the stricter of the two so
/// that either way of attaching it works.
pub(crate) const MANAGED_POLICY_CHARS: usize = 6144;

/// Tags on one resource: at most 50 in every service wsdeploy tags (IAM, Lambda, CloudWatch Logs, KMS and API
/// Gateway each say so in their API reference, e.g.
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html>), wsdeploy's own included.
pub(crate) const MAX_TAGS: usize = 50;
/// `wsdeploy:project` and `wsdeploy:stage`.
pub(crate) const WSDEPLOY_TAGS: usize = 2;

/// A function's environment variables, keys and values together: "4 KB, for all environment variables associated
/// with the function, in aggregate" (<https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
pub(crate) const LAMBDA_ENV_BYTES: usize = 4096;

/// A character AWS takes in a tag key or value: `[\p{L}\p{Z}\p{N}_.:/=+\-@]` (the tag pattern of IAM's, Lambda's,
/// CloudWatch Logs' and KMS's API references; moto checks none of it).
pub(crate) fn tag_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || "_.:/=+-@".contains(c)
        // \p{Z}: space separators, and the line and paragraph separators (not tabs or newlines).
        || matches!(c, ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
}
