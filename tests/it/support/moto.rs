//! A real AWS emulator for the tests: `moto_server` on a free loopback port, reached through `AWS_ENDPOINT_URL` with
//! dummy credentials, stopped when the handle drops.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const REGION: &str = "eu-west-3";
/// moto's fixed account id.
pub(crate) const ACCOUNT: &str = "123456789012";

pub(crate) struct Moto {
    child: Child,
    pub endpoint: String,
    log: tempfile::NamedTempFile,
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // AWS's default account quota: Lambda then keeps 100 unreserved, as AWS does (moto enforces nothing
            // without it).
            .env("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000")
            // AWS's managed policies exist, as in every account (API Gateway's CloudWatch role attaches one).
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            // ACM issues a requested certificate at once, as DNS validation does once its record exists.
            .env("MOTO_ACM_VALIDATION_WAIT", "0")
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("log"))
            .stderr(log.reopen().expect("log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto_server ({e}); install it with: pip install 'moto[server]'"
                )
            });
        let mut moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto_server exited with {status}:\n{}",
                    std::fs::read_to_string(moto.log.path()).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// An SDK config for checking what wsdeploy did, independently of wsdeploy's own code.
    pub(crate) async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_at(&self.endpoint).await
    }
}

/// An SDK config for `endpoint`: moto itself, or the proxy (to see what the AWS-behaviour layer adds).
pub(crate) async fn sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_as(endpoint, "testing").await
}

/// An SDK config for `endpoint` with the access key `key`: through the proxy, a key other than `testing` is
/// someone else in the account (another team), whose requests the layer learns from but does not authorize.
pub(crate) async fn sdk_config_as(endpoint: &str, key: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key, key, None, None, "tests",
        ))
        .load()
        .await
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes the responses of the route `key` behind wsdeploy's back, as a crash between its two calls or a person in
/// the console would; returns the route's id and how many responses it had.
pub(crate) async fn delete_route_responses(
    apigw: &aws_sdk_apigatewayv2::Client,
    api: &str,
    key: &str,
) -> (String, usize) {
    let routes = apigw.get_routes().api_id(api).send().await.unwrap();
    let route = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some(key))
        .and_then(|r| r.route_id())
        .unwrap_or_else(|| panic!("no route {key} in {api}"))
        .to_string();
    let responses = apigw
        .get_route_responses()
        .api_id(api)
        .route_id(&route)
        .send()
        .await
        .unwrap();
    for r in responses.items() {
        apigw
            .delete_route_response()
            .api_id(api)
            .route_id(&route)
            .route_response_id(r.route_response_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    (route, responses.items().len())
}
