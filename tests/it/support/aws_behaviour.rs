//! The AWS-behaviour layer: what real AWS does and moto does not, reproduced in the test proxy between wsdeploy and
//! moto. Each behaviour names its source. Timings are tens of milliseconds so the suite stays fast; the code under
//! test must not depend on them (it waits on state, never on time).
//!
//! Where moto lacks an API that wsdeploy needs (`GetRouteResponses`), the layer answers it from moto's own records
//! (each route response it lists is read back from moto one by one), so moto stays the only store of state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{HeaderMap, Method};
use serde_json::{json, Value};

#[path = "aws_cbor.rs"]
mod cbor;
#[path = "aws_domain.rs"]
mod domain;
#[path = "aws_logging.rs"]
mod logging;
#[path = "aws_model.rs"]
mod model;

/// Which behaviours are on, and how long each lasts.
#[derive(Debug, Clone)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one switch per AWS behaviour"
)]
pub(crate) struct Behaviour {
    /// API Gateway v2 serialises writes per API: a mutating call on an API while another one on the same API is in
    /// flight answers 409 `ConflictException` "Unable to complete operation due to concurrent modification. Please
    /// try again later." (terraform-provider-aws #18018 and PR #29735; go-to-k/cdkd #1607). Each write is held this
    /// long, so parallel writes overlap as they do against AWS's slower control plane.
    pub apigw_write: Option<Duration>,
    /// A function is `Pending` after `CreateFunction` and `LastUpdateStatus: InProgress` after an update; meanwhile
    /// `AddPermission`, `RemovePermission` and `UpdateFunction`* answer 409 `ResourceConflictException`
    /// (<https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html>;
    /// terraform-provider-aws waits with `waitFunctionUpdated` after every update for this reason).
    pub lambda_pending: Option<Duration>,
    pub lambda_updating: Option<Duration>,
    /// `GetFunction` returns tags only to a caller allowed `lambda:ListTags`, `TagsError` otherwise
    /// (<https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html#API_GetFunction_ResponseSyntax>).
    /// `true` plays a deploy role without that permission: `ListTags` itself is then denied too.
    pub deny_list_tags: bool,
    /// IAM is eventually consistent: a role created moments ago cannot be assumed by Lambda yet ("The role defined
    /// for the function cannot be assumed by Lambda.", retried for 2 minutes by terraform-provider-aws's
    /// `iamPropagationTimeout`), and a new access key is refused (`InvalidClientTokenId`) for a few seconds
    /// (<https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency>).
    pub role_propagation: Option<Duration>,
    pub key_propagation: Option<Duration>,
    /// AWS refuses requests signed with an inactive or deleted access key (moto accepts them):
    /// <https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html#rotating_access_keys_console>
    pub refuse_inactive_keys: bool,
    /// "Already exists" is also a 409 `ConflictException`, told apart from a concurrent modification only by its
    /// message: `CreateStage` of an existing stage, `CreateRouteResponse` of an existing key (moto creates duplicates).
    /// <https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages.html#CreateStage>
    pub conflict_on_exists: bool,
    /// The stage's automatic deployment failed: `GetStage` says so in `lastDeploymentStatusMessage`, which AWS fills
    /// for `AutoDeploy` stages (moto has no deployments at all).
    /// <https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html>
    pub failed_deployment: Option<String>,
    /// KMS's eventual consistency, and Lambda's use of a customer managed key (see `aws_kms`).
    pub kms: crate::support::aws_kms::Timings,
    /// Stage logging needs the account's CloudWatch role, and a well-formed access log format (see `logging`).
    pub logging_needs_account_role: bool,
}

impl Behaviour {
    /// Everything on, with timings short enough for a test suite.
    pub(crate) fn aws() -> Behaviour {
        Behaviour {
            apigw_write: Some(Duration::from_millis(25)),
            lambda_pending: Some(Duration::from_millis(150)),
            lambda_updating: Some(Duration::from_millis(100)),
            deny_list_tags: false,
            role_propagation: Some(Duration::from_millis(400)),
            key_propagation: Some(Duration::from_millis(300)),
            refuse_inactive_keys: true,
            conflict_on_exists: true,
            failed_deployment: None,
            kms: crate::support::aws_kms::Timings {
                new_key: Some(Duration::from_millis(100)),
                policy_spread: Some(Duration::from_millis(600)),
            },
            logging_needs_account_role: true,
        }
    }

    /// Plain moto.
    pub(crate) fn off() -> Behaviour {
        Behaviour {
            apigw_write: None,
            lambda_pending: None,
            lambda_updating: None,
            deny_list_tags: false,
            role_propagation: None,
            key_propagation: None,
            refuse_inactive_keys: false,
            conflict_on_exists: false,
            failed_deployment: None,
            kms: crate::support::aws_kms::Timings::default(),
            logging_needs_account_role: false,
        }
    }
}

/// One request as the layer sees it.
pub(crate) struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// An AWS answer in the wire shape of the request's protocol.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// REST-JSON services (Lambda, API Gateway): the error type travels in `x-amzn-errortype`.
    pub(crate) fn rest(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("x-amzn-errortype".into(), code.into()),
            ],
            body: json!({ "Type": "User", "message": message })
                .to_string()
                .into_bytes(),
        }
    }

    fn query(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "text/xml".into())],
            body: format!("<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>layer</RequestId></ErrorResponse>").into_bytes(),
        }
    }

    pub(crate) fn json11(status: u16, code: &str, message: &str) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
            body: json!({ "__type": code, "message": message })
                .to_string()
                .into_bytes(),
        }
    }

    pub(crate) fn ok_json(body: Value) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }
}

#[derive(Default)]
struct State {
    apis_writing: BTreeMap<String, usize>,
    /// Function name -> (until, created rather than updated).
    functions: BTreeMap<String, (Instant, bool)>,
    /// Functions read once since their last change: each change shows `Pending`/`InProgress` until its delay has
    /// passed *and* it was read once, so a loaded machine (where the delay can pass before the first read) still
    /// meets it.
    functions_shown: BTreeSet<String>,
    roles: BTreeMap<String, Instant>,
    /// New roles that have been refused once: IAM's propagation is over only after the delay *and* a first
    /// refusal, so that a busy test machine (where the delay can pass before the first use) still meets it.
    roles_refused: BTreeSet<String>,
    keys: BTreeMap<String, Instant>,
    /// New access keys refused once (propagation is over after the delay *and* one refusal, as for roles).
    keys_refused: BTreeSet<String>,
    refused_keys: BTreeSet<String>,
    /// (api, route) -> route responses created through the layer: (id, key).
    route_responses: BTreeMap<(String, String), Vec<(String, String)>>,
    /// How often each behaviour acted, for tests to show the code met it.
    hits: BTreeMap<&'static str, usize>,
    /// (api, stage) -> the fields `UpdateStage` set, which moto cannot (it has no `UpdateStage`).
    stage_updates: BTreeMap<(String, String), serde_json::Map<String, Value>>,
    /// Domain name -> the configurations `UpdateDomainName` set (moto has no `UpdateDomainName`).
    domain_updates: BTreeMap<String, Value>,
    kms: crate::support::aws_kms::Kms,
    boundaries: crate::support::aws_boundary::Boundaries,
    /// API id -> its `ipAddressType`, which moto neither keeps nor returns.
    api_ip: BTreeMap<String, String>,
}

impl State {
    /// Whether a role created through the layer is still propagating: within the delay, or never refused yet.
    fn role_young(&mut self, role: &str, delay: Option<Duration>) -> bool {
        let (Some(d), Some(at)) = (delay, self.roles.get(role)) else {
            return false;
        };
        let young = at.elapsed() < d || !self.roles_refused.contains(role);
        if young {
            self.roles_refused.insert(role.to_string());
        }
        young
    }
}

#[derive(Clone)]
pub(crate) struct Layer {
    pub behaviour: Arc<Mutex<Behaviour>>,
    state: Arc<Mutex<State>>,
    /// IAM authorisation of the deploying identity (access key `testing`), when a test gives it a policy.
    iam: Arc<Mutex<Option<crate::support::iam_enforce::Evaluator>>>,
    /// Every request checked against AWS's service models (see `model`).
    models: Arc<Mutex<model::Models>>,
}

/// Holds an API's write slot until the forwarded request has its answer.
pub(crate) struct WriteSlot {
    state: Arc<Mutex<State>>,
    api: String,
}

impl Drop for WriteSlot {
    fn drop(&mut self) {
        let mut s = self.state.lock().unwrap();
        if let Some(n) = s.apis_writing.get_mut(&self.api) {
            *n -= 1;
        }
    }
}

pub(crate) enum Before {
    Answer(Answer),
    Forward(Option<WriteSlot>),
}

const CONCURRENT: &str =
    "Unable to complete operation due to concurrent modification. Please try again later.";
const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// `name` from a function name or ARN in a Lambda path.
fn function_name(s: &str) -> String {
    s.rsplit_once("function:").map_or_else(
        || s.to_string(),
        |(_, n)| n.split(':').next().unwrap_or(n).to_string(),
    )
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn access_key_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let cred = auth.split("Credential=").nth(1)?;
    Some(cred.split('/').next()?.to_string())
}

/// IAM and STS speak the query protocol: a form-encoded body.
fn is_query(r: &Req<'_>) -> bool {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("x-www-form-urlencoded"))
}

/// Whether the deploying identity is refused `c`: by its IAM policy when a test gave it one, and on a KMS key by
/// that key's policy whatever it holds (an identity IAM allows everything is still bound by key policies).
fn refuses(
    iam: &mut Option<crate::support::iam_enforce::Evaluator>,
    c: &crate::support::iam_enforce::Check,
) -> bool {
    if iam.is_none() && c.key_policy.is_none() {
        return false;
    }
    !iam.get_or_insert_with(crate::support::iam_enforce::Evaluator::unrestricted)
        .allows(c)
}

fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

impl Layer {
    pub(crate) fn new(b: Behaviour) -> Layer {
        Layer {
            behaviour: Arc::new(Mutex::new(b)),
            state: Arc::new(Mutex::new(State::default())),
            iam: Arc::new(Mutex::new(None)),
            models: Arc::new(Mutex::new(model::Models::default())),
        }
    }

    /// The requests refused for breaking AWS's service models since the last call: each operation and its errors.
    pub(crate) fn model_violations(&self) -> Vec<String> {
        std::mem::take(&mut self.models.lock().unwrap().violations)
    }

    /// From now on the deploying identity holds exactly `policy` (none: it may do anything, as moto lets it).
    pub(crate) fn enforce(&self, policy: Option<&Value>) {
        *self.iam.lock().unwrap() = policy.map(crate::support::iam_enforce::Evaluator::start);
    }

    /// `AccessDenied`, as AWS answers it, for the first check the identity's policy (or a KMS key's) does not allow.
    fn authorize(&self, r: &Req<'_>, b: &Behaviour) -> Option<Answer> {
        if access_key_of(r.headers).as_deref() != Some("testing") {
            return None;
        }
        let (kms, boundary) = {
            let s = self.state.lock().unwrap();
            (s.kms.checks(r, b.kms), s.boundaries.of(&form(r.body)))
        };
        let checks =
            kms.unwrap_or_else(|| crate::support::iam_enforce::checks(r, boundary.as_deref()));
        let denied = {
            let mut iam = self.iam.lock().unwrap();
            checks.into_iter().find(|c| refuses(&mut iam, c))?
        };
        let mut s = self.state.lock().unwrap();
        let spreading = s.kms.refused(&denied, b.kms);
        Self::hit(
            &mut s,
            if spreading {
                "KMS key's new policy not yet applied everywhere"
            } else {
                "access denied by the identity's policy"
            },
        );
        drop(s);
        let message = crate::support::iam_enforce::denial(&denied);
        Some(if cbor::operation(r).is_some() {
            cbor::answer(
                400,
                &json!({ "__type": "AccessDenied", "message": message }),
            )
        } else if is_query(r) {
            Answer::query(403, "AccessDenied", &message)
        } else if r.headers.contains_key("x-amz-target") {
            Answer::json11(400, "AccessDeniedException", &message)
        } else {
            Answer::rest(403, "AccessDeniedException", &message)
        })
    }

    pub(crate) fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    pub(crate) fn hits(&self) -> BTreeMap<&'static str, usize> {
        self.state.lock().unwrap().hits.clone()
    }

    /// `GetStage` and each stage `GetStages` lists carry the last deployment's status (AWS fills it for `AutoDeploy`
    /// stages): a failed one says so in both.
    fn failed_deployment(s: &mut State, b: &Behaviour, v: &mut Value, list: bool) {
        let Some(message) = &b.failed_deployment else {
            return;
        };
        let stages: Vec<&mut Value> = if list {
            v["items"].as_array_mut().into_iter().flatten().collect()
        } else {
            vec![v]
        };
        for stage in stages {
            stage["lastDeploymentStatusMessage"] = json!(message);
        }
        Self::hit(s, "stage deployment failed");
    }

    fn hit(s: &mut State, what: &'static str) {
        *s.hits.entry(what).or_default() += 1;
    }

    /// Decides before the request reaches moto: refuse it as AWS would, or forward it (holding the API's write
    /// slot for the time a write takes).
    pub(crate) async fn before(&self, r: &Req<'_>, upstream: &Upstream) -> Before {
        if let Some(a) = self.models.lock().unwrap().refuse(r) {
            return Before::Answer(a);
        }
        let b = self.behaviour.lock().unwrap().clone();
        if let Some(a) = self.refuse_key(r, &b).or_else(|| self.authorize(r, &b)) {
            return Before::Answer(a);
        }
        if let Some(op) = cbor::operation(r) {
            return Before::Answer(self.translate_cbor(r, op, upstream).await);
        }
        if is_query(r) {
            let answered = self.state.lock().unwrap().boundaries.answer(&form(r.body));
            if let Some((status, xml)) = answered {
                return Before::Answer(Answer {
                    status,
                    headers: vec![("content-type".into(), "text/xml".into())],
                    body: xml.into_bytes(),
                });
            }
        }
        if let Some(a) = self.kms_before(r, &b) {
            return Before::Answer(a);
        }
        let seg = segments(r.path);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        if let Some(a) = self.lambda_before(r, &seg, &b) {
            return Before::Answer(a);
        }
        match (r.method.clone(), seg.as_slice()) {
            (Method::POST, ["v2", "domainnames"]) => {
                let region = crate::support::iam_enforce::region_of(r);
                if let Some(a) = self
                    .refuse_domain_certificate(r.body, &region, upstream)
                    .await
                {
                    return Before::Answer(a);
                }
            }
            (Method::PATCH, ["v2", "domainnames", name]) => {
                return Before::Answer(self.update_domain(name, r.body, upstream).await);
            }
            (Method::POST, ["2013-04-01", "hostedzone", _, "rrset"]) => {
                if let Some(a) = self.refuse_alias(r.body) {
                    return Before::Answer(a);
                }
            }
            _ => {}
        }
        if *r.method == Method::PATCH && seg == ["account"] {
            if let Some(a) = self.refuse_account_role(r.body, &b) {
                return Before::Answer(a);
            }
        }
        if let ["v2", "apis", api, rest @ ..] = seg.as_slice() {
            if *r.method == Method::PATCH {
                if let ["stages", stage] = rest {
                    let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
                    if let Some(a) = self.refuse_stage_logging(&body, &b, upstream).await {
                        return Before::Answer(a);
                    }
                    return Before::Answer(self.update_stage(api, stage, r.body, upstream).await);
                }
            }
            if *r.method == Method::DELETE {
                if let ["stages", stage, "routesettings", key] = rest {
                    return Before::Answer(
                        self.delete_route_settings(api, stage, key, upstream).await,
                    );
                }
                if let ["stages", stage, "accesslogsettings"] = rest {
                    return Before::Answer(
                        self.delete_access_log_settings(api, stage, upstream).await,
                    );
                }
            }
            if *r.method == Method::POST && rest == ["stages"] {
                let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
                if let Some(a) =
                    Self::unknown_route_setting(api, &body["routeSettings"], upstream).await
                {
                    return Before::Answer(a);
                }
                if let Some(a) = self.refuse_stage_logging(&body, &b, upstream).await {
                    return Before::Answer(a);
                }
            }
            if *r.method == Method::GET {
                if let ["routes", route, "routeresponses"] = rest {
                    return Before::Answer(self.list_route_responses(api, route, upstream).await);
                }
                return Before::Forward(None);
            }
            if let Some(a) = self.exists_conflict(r, api, rest, &b, upstream).await {
                return Before::Answer(a);
            }
            if let Some(hold) = b.apigw_write {
                let slot = {
                    let mut s = self.state.lock().unwrap();
                    let n = s.apis_writing.entry(api.to_string()).or_default();
                    if *n > 0 {
                        Self::hit(&mut s, "apigw concurrent modification (409)");
                        return Before::Answer(Answer::rest(409, "ConflictException", CONCURRENT));
                    }
                    *n += 1;
                    WriteSlot {
                        state: self.state.clone(),
                        api: api.to_string(),
                    }
                };
                tokio::time::sleep(hold).await;
                return Before::Forward(Some(slot));
            }
        }
        Before::Forward(None)
    }

    /// KMS's new keys, and Lambda's refusal of a key it cannot use (see `aws_kms`).
    fn kms_before(&self, r: &Req<'_>, b: &Behaviour) -> Option<Answer> {
        let testing = access_key_of(r.headers).as_deref() == Some("testing");
        let mut iam = self.iam.lock().unwrap();
        let mut s = self.state.lock().unwrap();
        let mut denied = |c: &crate::support::iam_enforce::Check| testing && refuses(&mut iam, c);
        let (what, answer) = s
            .kms
            .before(r, b.kms)
            .or_else(|| crate::support::aws_kms::Kms::lockout(r, &mut denied))
            .or_else(|| s.kms.lambda_refusal(r, b.kms, &mut denied))?;
        Self::hit(&mut s, what);
        Some(answer)
    }

    /// The key a function's environment is encrypted with, as AWS would show it (moto does not keep it).
    pub(crate) fn function_key(&self, name: &str) -> Option<String> {
        self.state.lock().unwrap().kms.function_key(name)
    }

    fn refuse_key(&self, r: &Req<'_>, b: &Behaviour) -> Option<Answer> {
        let key = access_key_of(r.headers)?;
        let mut s = self.state.lock().unwrap();
        let young = b
            .key_propagation
            .zip(s.keys.get(&key))
            .is_some_and(|(d, at)| at.elapsed() < d)
            || (b.key_propagation.is_some()
                && s.keys.contains_key(&key)
                && !s.keys_refused.contains(&key));
        if young {
            s.keys_refused.insert(key.clone());
        }
        let dead = b.refuse_inactive_keys && s.refused_keys.contains(&key);
        if !young && !dead {
            return None;
        }
        Self::hit(
            &mut s,
            if young {
                "new access key not yet valid"
            } else {
                "inactive or deleted access key refused"
            },
        );
        let query = r
            .headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("x-www-form-urlencoded"));
        Some(if query {
            Answer::query(403, "InvalidClientTokenId", INVALID_TOKEN)
        } else if r.headers.contains_key("x-amz-target") {
            Answer::json11(400, "UnrecognizedClientException", INVALID_TOKEN)
        } else {
            Answer::rest(403, "UnrecognizedClientException", INVALID_TOKEN)
        })
    }

    fn lambda_before(&self, r: &Req<'_>, seg: &[&str], b: &Behaviour) -> Option<Answer> {
        let mut s = self.state.lock().unwrap();
        match seg {
            ["2017-03-31", "tags", arn] if b.deny_list_tags && *r.method == Method::GET => {
                Self::hit(&mut s, "lambda:ListTags denied");
                Some(Answer::rest(403, "AccessDeniedException", &format!("User: arn:aws:iam::123456789012:user/deployer is not authorized to perform: lambda:ListTags on resource: {arn} because no identity-based policy allows the lambda:ListTags action")))
            }
            ["2015-03-31", "functions"] if *r.method == Method::POST => {
                let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
                let role = body["Role"].as_str().unwrap_or("");
                let role = role.rsplit('/').next().unwrap_or("");
                let young = s.role_young(role, b.role_propagation);
                let kms = body["KMSKeyArn"].as_str().is_some_and(|a| !a.is_empty());
                young.then(|| {
                    Self::hit(&mut s, "new role not yet assumable");
                    // With a customer managed key, Lambda first grants the role the key's use, and says so.
                    let message = if kms {
                        format!("Lambda was unable to configure access to your environment variables because the KMS key is invalid for CreateGrant. Please check your KMS key settings. KMS Exception: InvalidArnException KMS Message: ARN does not refer to a valid principal: {}", body["Role"].as_str().unwrap_or_default())
                    } else {
                        "The role defined for the function cannot be assumed by Lambda.".into()
                    };
                    Answer::rest(400, "InvalidParameterValueException", &message)
                })
            }
            ["2015-03-31", "functions", name, "code" | "configuration" | "policy", ..]
                if *r.method != Method::GET =>
            {
                let name = function_name(name);
                let (until, created) = *s.functions.get(&name)?;
                if Instant::now() >= until {
                    return None;
                }
                Self::hit(&mut s, "lambda update while Pending/InProgress (409)");
                let why = if created {
                    "The function is currently in the following state: Pending".to_string()
                } else {
                    format!("An update is in progress for resource: arn:aws:lambda:eu-west-3:123456789012:function:{name}")
                };
                Some(Answer::rest(
                    409,
                    "ResourceConflictException",
                    &format!("The operation cannot be performed at this time. {why}"),
                ))
            }
            _ => None,
        }
    }

    /// `CreateStage` and `CreateRouteResponse` of something that exists: 409 `ConflictException`, "already exists".
    async fn exists_conflict(
        &self,
        r: &Req<'_>,
        api: &str,
        rest: &[&str],
        b: &Behaviour,
        upstream: &Upstream,
    ) -> Option<Answer> {
        if !b.conflict_on_exists || *r.method != Method::POST {
            return None;
        }
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let exists = match rest {
            ["stages"] => {
                let stage = body["stageName"].as_str().unwrap_or_default();
                upstream
                    .get(&format!("/v2/apis/{api}/stages/{stage}"))
                    .await
                    .is_some()
            }
            ["routes", route, "routeresponses"] => {
                let key = body["routeResponseKey"].as_str().unwrap_or_default();
                let listed = self.list(api, route, upstream).await;
                listed.iter().any(|(_, k)| k == key)
            }
            _ => false,
        };
        exists.then(|| {
            Self::hit(&mut self.state.lock().unwrap(), "already exists (409)");
            Answer::rest(
                409,
                "ConflictException",
                &format!("Unable to create {}: it already exists", rest[0]),
            )
        })
    }

    /// Route responses of a route that moto still holds.
    async fn list(&self, api: &str, route: &str, upstream: &Upstream) -> Vec<(String, String)> {
        let known = self
            .state
            .lock()
            .unwrap()
            .route_responses
            .get(&(api.to_string(), route.to_string()))
            .cloned()
            .unwrap_or_default();
        let mut live = vec![];
        for (id, key) in known {
            let path = format!("/v2/apis/{api}/routes/{route}/routeresponses/{id}");
            if upstream.get(&path).await.is_some() {
                live.push((id, key));
            }
        }
        live
    }

    /// `UpdateStage`, which moto lacks: the fields it sets are kept here and laid over moto's stage from then on
    /// (<https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename.html#UpdateStage>).
    async fn update_stage(
        &self,
        api: &str,
        stage: &str,
        body: &[u8],
        upstream: &Upstream,
    ) -> Answer {
        let path = format!("/v2/apis/{api}/stages/{stage}");
        let Some(current) = upstream.get(&path).await else {
            return Answer::rest(
                404,
                "NotFoundException",
                "Invalid stage identifier specified",
            );
        };
        let set: Value = serde_json::from_slice(body).unwrap_or_default();
        let mut v: Value = serde_json::from_slice(&current).unwrap_or_default();
        // Route settings are merged route by route, and every route the stage would then have settings for must
        // exist: settings left behind for a deleted route fail each later update (serverless-api-gateway-throttling#43).
        let before = {
            let s = self.state.lock().unwrap();
            let mut seen = v.clone();
            if let Some(kept) = s.stage_updates.get(&(api.to_string(), stage.to_string())) {
                overlay(&mut seen, kept);
            }
            seen["routeSettings"].clone()
        };
        let mut route_settings = before.as_object().cloned().unwrap_or_default();
        if let Some(given) = set["routeSettings"].as_object() {
            route_settings.extend(given.clone());
        }
        let route_settings = Value::Object(route_settings);
        if let Some(a) = Self::unknown_route_setting(api, &route_settings, upstream).await {
            return a;
        }
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "UpdateStage (played by the layer)");
        let kept = s
            .stage_updates
            .entry((api.to_string(), stage.to_string()))
            .or_default();
        if let Some(fields) = set.as_object() {
            kept.extend(fields.clone());
        }
        kept.insert("routeSettings".into(), route_settings);
        overlay(&mut v, kept);
        Answer::ok_json(v)
    }

    /// API Gateway refuses route settings for a route the API does not have: 404 `NotFoundException`, "Unable to
    /// find Route by key ... within the provided RouteSettings" (terraform-aws-modules/terraform-aws-apigateway-v2#80).
    async fn unknown_route_setting(
        api: &str,
        settings: &Value,
        upstream: &Upstream,
    ) -> Option<Answer> {
        let keys: Vec<&String> = settings.as_object()?.keys().collect();
        if keys.is_empty() {
            return None;
        }
        let routes: Value = upstream
            .get(&format!("/v2/apis/{api}/routes"))
            .await
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let known: Vec<&str> = routes["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["routeKey"].as_str())
            .collect();
        let missing = keys.into_iter().find(|k| !known.contains(&k.as_str()))?;
        Some(Answer::rest(
            404,
            "NotFoundException",
            &format!("Unable to find Route by key {missing} within the provided RouteSettings"),
        ))
    }

    /// `DeleteRouteSettings`, which moto lacks: the route's settings leave the stage; 404 when it has none
    /// (<https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/apis-apiid-stages-stagename-routesettings-routekey.html>).
    async fn delete_route_settings(
        &self,
        api: &str,
        stage: &str,
        key: &str,
        upstream: &Upstream,
    ) -> Answer {
        let current: Value = upstream
            .get(&format!("/v2/apis/{api}/stages/{stage}"))
            .await
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let mut s = self.state.lock().unwrap();
        Self::hit(&mut s, "DeleteRouteSettings (played by the layer)");
        let kept = s
            .stage_updates
            .entry((api.to_string(), stage.to_string()))
            .or_default();
        let mut settings = kept
            .get("routeSettings")
            .or(current.get("routeSettings"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if settings.remove(key).is_none() {
            return Answer::rest(
                404,
                "NotFoundException",
                &format!("Unable to find RouteSettings for key {key}"),
            );
        }
        kept.insert("routeSettings".into(), Value::Object(settings));
        Answer {
            status: 204,
            headers: vec![],
            body: vec![],
        }
    }

    async fn list_route_responses(&self, api: &str, route: &str, upstream: &Upstream) -> Answer {
        if upstream
            .get(&format!("/v2/apis/{api}/routes/{route}"))
            .await
            .is_none()
        {
            return Answer::rest(
                404,
                "NotFoundException",
                "Invalid Route identifier specified",
            );
        }
        let items: Vec<Value> = self
            .list(api, route, upstream)
            .await
            .into_iter()
            .map(|(id, key)| json!({ "routeResponseId": id, "routeResponseKey": key }))
            .collect();
        Answer::ok_json(json!({ "items": items }))
    }

    /// Learns from moto's answer (what was created when) and reshapes it as AWS would answer.
    pub(crate) fn after(&self, r: &Req<'_>, status: u16, body: Vec<u8>) -> Vec<u8> {
        let body = self.after_moto(r, status, body);
        if !(200..300).contains(&status) {
            return body;
        }
        let testing = access_key_of(r.headers).as_deref() == Some("testing");
        if testing
            && is_query(r)
            && form(r.body).get("Action").map(String::as_str) == Some("GetCallerIdentity")
        {
            return Self::caller_is_the_deployer(&body);
        }
        let t = self.behaviour.lock().unwrap().kms;
        let mut iam = self.iam.lock().unwrap();
        let mut s = self.state.lock().unwrap();
        let mut denied = |c: &crate::support::iam_enforce::Check| testing && refuses(&mut iam, c);
        if *r.method == Method::POST && r.path.trim_end_matches('/') == "/2015-03-31/functions" {
            s.kms.created(r);
        }
        s.kms.after(r, body, t, &mut denied)
    }

    /// moto names a caller it has no user for `…:sts::…:user/moto`, an ARN no IAM entity has; AWS names the user
    /// the access key belongs to, which is who key policies and denials name (`iam_enforce::deployer`).
    fn caller_is_the_deployer(body: &[u8]) -> Vec<u8> {
        let moto = format!("arn:aws:sts::{}:user/moto", crate::support::moto::ACCOUNT);
        String::from_utf8_lossy(body)
            .replace(&moto, &crate::support::iam_enforce::deployer())
            .into_bytes()
    }

    fn after_moto(&self, r: &Req<'_>, status: u16, body: Vec<u8>) -> Vec<u8> {
        let b = self.behaviour.lock().unwrap().clone();
        let ok = (200..300).contains(&status);
        let seg = segments(r.path);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        if ok {
            if let ["v2", "domainnames", rest @ ..] = seg.as_slice() {
                if rest.len() <= 1 {
                    let region = crate::support::iam_enforce::region_of(r);
                    let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    match v["items"].as_array_mut() {
                        Some(items) => items.iter_mut().for_each(|d| self.shape_domain(d, &region)),
                        None => self.shape_domain(&mut v, &region),
                    }
                    return v.to_string().into_bytes();
                }
            }
            let target = r.headers.get("x-amz-target").and_then(|v| v.to_str().ok());
            if target == Some("CertificateManager.ListCertificates") {
                return self.filter_certificates(r.body, body);
            }
        }
        let mut s = self.state.lock().unwrap();
        let params = form(r.body);
        let body = if ok && is_query(r) {
            s.boundaries.after(&params, body)
        } else {
            body
        };
        if ok {
            match params.get("Action").map(String::as_str) {
                Some("CreateRole") => {
                    // A role created again under an old name propagates again.
                    s.roles.insert(params["RoleName"].clone(), Instant::now());
                    s.roles_refused.remove(&params["RoleName"]);
                }
                Some("CreateAccessKey") => {
                    if let Some(id) = xml_value(&String::from_utf8_lossy(&body), "AccessKeyId") {
                        s.keys.insert(id, Instant::now());
                    }
                }
                Some("UpdateAccessKey") => {
                    let id = params["AccessKeyId"].clone();
                    if params.get("Status").map(String::as_str) == Some("Inactive") {
                        s.refused_keys.insert(id);
                    } else {
                        s.refused_keys.remove(&id);
                    }
                }
                Some("DeleteAccessKey") => {
                    s.refused_keys.insert(params["AccessKeyId"].clone());
                }
                _ => {}
            }
        }
        if let Some(v) = Self::api_ip_address_type(&mut s, r, &seg, ok, &body) {
            return v;
        }
        match (r.method.clone(), seg.as_slice()) {
            (Method::POST, ["2015-03-31", "functions"]) if ok => {
                let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                if let (Some(d), Some(name)) = (b.lambda_pending, v["FunctionName"].as_str()) {
                    s.functions
                        .insert(name.to_string(), (Instant::now() + d, true));
                    s.functions_shown.remove(name);
                    pending(&mut v, true);
                    return v.to_string().into_bytes();
                }
                body
            }
            (Method::PUT, ["2015-03-31", "functions", name, "code" | "configuration"]) if ok => {
                if let Some(d) = b.lambda_updating {
                    s.functions
                        .insert(function_name(name), (Instant::now() + d, false));
                    s.functions_shown.remove(&function_name(name));
                    let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    pending(&mut v, false);
                    return v.to_string().into_bytes();
                }
                body
            }
            (Method::GET, ["2015-03-31", "functions", name, rest @ ..])
                if ok && (rest.is_empty() || rest == ["configuration"]) =>
            {
                let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                let name = function_name(name);
                if let Some((until, created)) = s.functions.get(&name).copied() {
                    if Instant::now() < until || s.functions_shown.insert(name.clone()) {
                        s.functions_shown.insert(name.clone());
                        Self::hit(&mut s, "lambda read while Pending/InProgress");
                        let config = if rest.is_empty() {
                            &mut v["Configuration"]
                        } else {
                            &mut v
                        };
                        pending(config, created);
                    }
                }
                if rest.is_empty() && b.deny_list_tags {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("Tags");
                        o.insert("TagsError".into(), json!({ "ErrorCode": "AccessDeniedException", "Message": "not authorized to perform: lambda:ListTags" }));
                    }
                }
                v.to_string().into_bytes()
            }
            (Method::GET, ["v2", "apis", api, "stages", rest @ ..])
                if ok && s.stage_updates.keys().any(|(a, _)| a == api) =>
            {
                let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                let mut one = |stage: &mut Value| {
                    let name = stage["stageName"].as_str().unwrap_or_default().to_string();
                    if let Some(kept) = s.stage_updates.get(&(api.to_string(), name)) {
                        overlay(stage, kept);
                    }
                };
                match rest {
                    [] => v["items"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                        .for_each(&mut one),
                    _ => one(&mut v),
                }
                Self::failed_deployment(&mut s, &b, &mut v, rest.is_empty());
                v.to_string().into_bytes()
            }
            (Method::GET, ["v2", "apis", _, "stages", rest @ ..])
                if ok && b.failed_deployment.is_some() =>
            {
                let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
                Self::failed_deployment(&mut s, &b, &mut v, rest.is_empty());
                v.to_string().into_bytes()
            }
            (Method::POST, ["v2", "apis", api, "routes", route, "routeresponses"]) if ok => {
                let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                if let (Some(id), Some(key)) = (
                    v["routeResponseId"].as_str(),
                    v["routeResponseKey"].as_str(),
                ) {
                    s.route_responses
                        .entry((api.to_string(), route.to_string()))
                        .or_default()
                        .push((id.into(), key.into()));
                }
                body
            }
            _ => body,
        }
    }
}

impl Layer {
    /// An API's `ipAddressType` (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-ip-address-type.html>):
    /// kept from `CreateApi` (IPv4 when not given) and `UpdateApi`, and shown in `GetApi` and `GetApis`, as AWS does
    /// and moto does not. `Some` is the reshaped answer.
    fn api_ip_address_type(
        s: &mut State,
        r: &Req<'_>,
        seg: &[&str],
        ok: bool,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        if !ok {
            return None;
        }
        let req: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let asked = req["ipAddressType"].as_str();
        let mut v: Value = serde_json::from_slice(body).ok()?;
        match (r.method.clone(), seg) {
            (Method::POST, ["v2", "apis"]) => {
                let id = v["apiId"].as_str()?.to_string();
                let ip = asked.unwrap_or("ipv4").to_string();
                v["ipAddressType"] = json!(ip);
                s.api_ip.insert(id, ip);
            }
            (Method::PATCH, ["v2", "apis", id]) => {
                if let Some(ip) = asked {
                    s.api_ip.insert((*id).to_string(), ip.to_string());
                }
                v["ipAddressType"] = json!(s.api_ip.get(*id)?);
            }
            (Method::GET, ["v2", "apis", id]) => {
                v["ipAddressType"] = json!(s.api_ip.get(*id)?);
            }
            (Method::GET, ["v2", "apis"]) => {
                for api in v["items"].as_array_mut()? {
                    if let Some(ip) = api["apiId"].as_str().and_then(|id| s.api_ip.get(id)) {
                        api["ipAddressType"] = json!(ip);
                    }
                }
            }
            _ => return None,
        }
        Some(v.to_string().into_bytes())
    }
}

/// Lays the fields an `UpdateStage` set over a stage as moto returns it.
fn overlay(stage: &mut Value, fields: &serde_json::Map<String, Value>) {
    if let Some(o) = stage.as_object_mut() {
        for (k, v) in fields {
            o.insert(k.clone(), v.clone());
        }
    }
}

/// What `GetFunction` shows while a function is being created or updated.
fn pending(config: &mut Value, created: bool) {
    if let Some(o) = config.as_object_mut() {
        if created {
            o.insert("State".into(), json!("Pending"));
            o.insert(
                "StateReason".into(),
                json!("The function is being created."),
            );
            o.insert("StateReasonCode".into(), json!("Creating"));
        }
        o.insert("LastUpdateStatus".into(), json!("InProgress"));
    }
}

/// Reads moto directly, for the layer's own checks.
pub(crate) struct Upstream {
    pub base: String,
    pub client: reqwest::Client,
}

impl Upstream {
    /// The answer of a successful JSON-1.1 call (ACM, say) to moto.
    pub(crate) async fn post_json11(
        &self,
        target: &str,
        body: &Value,
        service: &str,
    ) -> Option<Value> {
        let (status, v) = self
            .post_json(target, body, "application/x-amz-json-1.1", service)
            .await;
        (200..300).contains(&status).then_some(v)
    }

    /// A JSON-protocol call to moto: (status, answer).
    pub(crate) async fn post_json(
        &self,
        target: &str,
        body: &Value,
        content_type: &str,
        service: &str,
    ) -> (u16, Value) {
        let sent = self
            .client
            .post(format!("{}/", self.base))
            .header("x-amz-target", target)
            .header("content-type", content_type)
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-3/{service}/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(body.to_string())
            .send()
            .await;
        let Ok(r) = sent else {
            return (
                502,
                json!({ "__type": "ServiceUnavailable", "message": "moto unreachable" }),
            );
        };
        let status = r.status().as_u16();
        let bytes = r.bytes().await.unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({})),
        )
    }

    /// The body of a successful GET, signed as moto needs (it reads the region from the credential scope).
    pub(crate) async fn get(&self, path: &str) -> Option<Vec<u8>> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-3/apigateway/aws4_request, SignedHeaders=host, Signature=0",
            )
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        Some(r.bytes().await.ok()?.to_vec())
    }
}
