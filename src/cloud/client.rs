//! The clients, the SDK configuration they share, and what every AWS call needs: retries for eventual
//! consistency, and errors read the same way everywhere.

use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::AwsArgs;
use crate::deploy::state::Caller;
use crate::ui::Step;

#[derive(Clone)]
pub struct Clients {
    pub config: SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub kms: aws_sdk_kms::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub apigw: aws_sdk_apigatewayv2::Client,
    /// API Gateway's first API, for the account settings only.
    pub apigw_account: aws_sdk_apigateway::Client,
    pub acm: aws_sdk_acm::Client,
    pub route53: aws_sdk_route53::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub sts: aws_sdk_sts::Client,
}

impl Clients {
    pub async fn new(aws: &AwsArgs, region: &str) -> Clients {
        let config = sdk_config(aws, region).await;
        Clients {
            iam: aws_sdk_iam::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
            lambda: aws_sdk_lambda::Client::new(&config),
            apigw: aws_sdk_apigatewayv2::Client::new(&config),
            apigw_account: aws_sdk_apigateway::Client::new(&config),
            acm: aws_sdk_acm::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            sts: aws_sdk_sts::Client::new(&config),
            config,
        }
    }

    /// The account and partition the credentials belong to; also the first check that they work.
    pub async fn caller(&self) -> anyhow::Result<Caller> {
        let who = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| explain("check your AWS credentials", e))?;
        let account = who.account().ok_or_else(|| {
            anyhow::anyhow!("AWS did not say which account these credentials belong to")
        })?;
        Ok(Caller::new(account, who.arn().unwrap_or_default()))
    }

    /// STS, signed with other credentials (a freshly created access key).
    pub fn sts_as(&self, key_id: &str, secret: &str) -> aws_sdk_sts::Client {
        let creds =
            aws_credential_types::Credentials::new(key_id, secret, None, None, "wsdeploy-new-key");
        // The SDK's retries still cover throttling and 5xx; a refused key is `retry_for`'s to wait out.
        let conf = aws_sdk_sts::config::Builder::from(&self.config)
            .credentials_provider(creds)
            .build();
        aws_sdk_sts::Client::from_conf(conf)
    }
}

/// How long the waits for AWS's eventual consistency may take, as terraform-provider-aws allows
/// (`iamPropagationTimeout = 2 * time.Minute` in internal/service/iam): new roles, new keys, functions settling.
pub(crate) const PROPAGATION_BUDGET: Duration = Duration::from_secs(120);

/// Retries `call` while `transient` names the error's cause, with backoff, for at most `budget`, saying so on `step`.
/// For the conditions AWS documents as passing but the SDK's retry policy does not know: IAM propagation, a
/// function still being updated, an API being modified by someone else.
pub(crate) async fn retry_for<T, E, R, F, Fut>(
    budget: Duration,
    step: &dyn Step,
    transient: impl Fn(&SdkError<E, R>) -> Option<&'static str>,
    call: F,
) -> SdkResult<T, E, R>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SdkResult<T, E, R>>,
{
    retry_capped(budget, Duration::from_secs(5), step, transient, call).await
}

/// `retry_for` with the longest pause between attempts at `cap`: where AWS's wait typically ends within seconds
/// and a longer pause would mostly be time spent after it ended.
pub(crate) async fn retry_capped<T, E, R, F, Fut>(
    budget: Duration,
    cap: Duration,
    step: &dyn Step,
    transient: impl Fn(&SdkError<E, R>) -> Option<&'static str>,
    mut call: F,
) -> SdkResult<T, E, R>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = SdkResult<T, E, R>>,
{
    let started = Instant::now();
    let mut delay = Duration::from_millis(250);
    loop {
        match call().await {
            Err(e) => match transient(&e) {
                Some(why) if started.elapsed() + delay < budget => {
                    step.update(&format!(
                        "{why}; waiting {:.1}s ({:.0}s so far, giving up after {}s)",
                        delay.as_secs_f64(),
                        started.elapsed().as_secs_f64(),
                        budget.as_secs()
                    ));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(cap);
                }
                _ => return Err(e),
            },
            ok => return ok,
        }
    }
}

/// API Gateway's 409 for a write racing another write on the same API. "Already exists" is a `ConflictException`
/// too; only the message tells them apart (terraform-provider-aws PR #29735 matches it the same way).
pub(crate) fn is_concurrent_modification<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.code() == Some("ConflictException")
        && e.message()
            .is_some_and(|m| m.to_ascii_lowercase().contains("concurrent modification"))
}

/// A conflict because the thing exists already (and only that).
pub(crate) fn is_exists_conflict<E: ProvideErrorMetadata, R>(
    e: &SdkError<E, R>,
    code: &str,
) -> bool {
    if e.code() != Some(code) {
        return false;
    }
    if code.contains("AlreadyExists") {
        return true;
    }
    e.message()
        .is_some_and(|m| m.to_ascii_lowercase().contains("exist"))
        && !is_concurrent_modification(e)
}

/// The standard chain, with the region decided by the config and flags; `--max-attempts` and `--profile` override
/// `AWS_MAX_ATTEMPTS` and `AWS_PROFILE`, which the chain reads otherwise (as it does `AWS_RETRY_MODE`).
pub(crate) async fn sdk_config(aws: &AwsArgs, region: &str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        // An unreachable endpoint fails in seconds, not after minutes of silent waiting.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(p) = &aws.profile {
        loader = loader.profile_name(p);
    }
    if let Some(n) = aws.max_attempts {
        loader = loader.retry_config(RetryConfig::standard().with_max_attempts(n));
    }
    loader.load().await
}

/// Whether AWS said the resource does not exist.
pub(crate) fn is_not_found<E: ProvideErrorMetadata>(e: &E) -> bool {
    matches!(
        e.code(),
        Some("NoSuchEntity" | "ResourceNotFoundException" | "NotFoundException")
    )
}

/// An AWS error as a sentence a person can act on.
pub(crate) fn explain<E, R>(
    what: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let context = aws_smithy_types::error::display::DisplayErrorContext(&err).to_string();
    let message = err.message().unwrap_or("").to_string();
    let sentence = match (&err, err.code()) {
        (_, _) if context.contains("no credentials") || context.contains("the credential provider was not enabled") || context.contains("failed to load credentials") => {
            format!("cannot {what}: no AWS credentials were found. Set AWS_PROFILE (or --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws configure`")
        }
        (SdkError::DispatchFailure(_) | SdkError::TimeoutError(_), _) => {
            format!("cannot {what}: AWS could not be reached ({}). Check your network, the region, and AWS_ENDPOINT_URL if you set it", short(&context))
        }
        (_, Some("ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired")) => {
            format!("cannot {what}: your AWS credentials have expired. Refresh them (for example `aws sso login`) and run again")
        }
        (_, Some("InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" | "InvalidSignatureException" | "IncompleteSignature")) => {
            format!("cannot {what}: AWS rejected these credentials ({message}). Check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or --profile; if they are right, the region may not be enabled for your account")
        }
        (_, Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError")) => {
            format!("cannot {what}: AWS denied it: {message}. Grant that action on that resource to the identity running wsdeploy")
        }
        (_, Some("OptInRequired")) => format!("cannot {what}: this region is not enabled for your account ({message}); enable it in the AWS console or pick another region"),
        (_, Some(code)) => format!("cannot {what}: {code}: {message}"),
        _ => format!("cannot {what}: {}", short(&context)),
    };
    anyhow::anyhow!(sentence)
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(400).collect();
    s.replace('\n', " ")
}

pub(crate) type SdkResult<T, E, R> = Result<T, SdkError<E, R>>;

/// A create that lost a race to a concurrent run is as good as done: the next run checks the result. Only an error
/// that says the thing exists counts (API Gateway and Lambda use the same code for other conflicts).
pub(crate) fn already<T, E: ProvideErrorMetadata, R>(
    r: SdkResult<T, E, R>,
    code: &str,
) -> SdkResult<(), E, R> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_exists_conflict(&e, code) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `Ok(None)` when AWS says the thing does not exist.
pub(crate) fn optional<T, E, R>(
    r: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    what: &str,
) -> anyhow::Result<Option<T>>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(explain(what, e)),
    }
}

/// A delete of something already gone is done.
pub(crate) fn gone<T, E: ProvideErrorMetadata, R>(r: SdkResult<T, E, R>) -> SdkResult<(), E, R> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// IAM returns policy documents URL-encoded; compare them as JSON.
pub(crate) fn policy_json(doc: &str) -> Option<serde_json::Value> {
    let decoded = percent_encoding::percent_decode_str(doc)
        .decode_utf8()
        .ok()?;
    serde_json::from_str(&decoded).ok()
}
