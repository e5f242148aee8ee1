//! The flags that say how to reach AWS: part of every verb's command line, also in a build without the AWS verbs.

/// How to reach AWS. The standard AWS variables (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_MAX_ATTEMPTS`,
/// `AWS_RETRY_MODE`, ...) and profile settings apply; these flags override them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// The AWS profile to use (overrides `AWS_PROFILE`).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS region (overrides `AWS_REGION` and the config's region).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Attempts per AWS request, retries included (overrides `AWS_MAX_ATTEMPTS`).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: Option<u32>,
}
