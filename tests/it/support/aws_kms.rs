//! KMS keys, and Lambda's use of a customer managed key for a function's environment, as AWS has them and moto does
//! not: moto's Lambda ignores `KMSKeyArn` entirely, its KMS applies a new key and a new key policy at once, and it
//! authorizes nothing by key policy. The layer keeps what it learns from the requests that passed (keys, their
//! policies, tags and state, aliases, which key each function uses) and answers from that; moto stays the store of
//! everything else.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};

use crate::support::aws_behaviour::{Answer, Req};
use crate::support::iam_enforce::{region_of, Check};
use crate::support::moto::ACCOUNT;

/// How long KMS takes, in the layer's time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Timings {
    /// A key created moments ago is not yet known everywhere: `CreateAlias` on it answers `NotFoundException`
    /// (terraform-provider-aws retries exactly that: `internal/service/kms/alias.go`, "KMS is eventually
    /// consistent").
    pub new_key: Option<Duration>,
    /// A key's new policy (a new key's first one included) is not applied everywhere at once
    /// (<https://docs.aws.amazon.com/kms/latest/developerguide/accessing-kms.html#programming-eventual-consistency>;
    /// terraform-provider-aws waits for it, `internal/service/kms/key.go`, `waitKeyPolicyPropagated`): until then,
    /// a request either policy refuses is refused; before a new key's first policy, KMS decides as its default
    /// policy would (by IAM). The first use of a new key (`CreateAlias`) comes within milliseconds, so it meets this.
    pub policy_spread: Option<Duration>,
}

/// The policy KMS gives a key created without one: the account decides, by IAM
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html>).
fn default_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{ACCOUNT}:root") },
            "Action": "kms:*",
            "Resource": "*"
        }]
    })
    .to_string()
}

struct Key {
    arn: String,
    created: Instant,
    /// Whether `CreateAlias` was refused once: a new key spreads only after the delay *and* one refusal, so that a
    /// loaded machine (where the delay can pass before the first use) still meets it.
    refused_once: bool,
    tags: BTreeMap<String, String>,
    state: &'static str,
    /// The key policy, and the one before its last change, which KMS still applies in places until it spreads.
    policy: String,
    previous: String,
    policy_set: Instant,
}

impl Key {
    fn new(arn: String, policy: String) -> Key {
        let now = Instant::now();
        Key {
            arn,
            created: now,
            refused_once: false,
            tags: BTreeMap::new(),
            state: "Enabled",
            previous: policy.clone(),
            policy,
            policy_set: now,
        }
    }

    fn set_policy(&mut self, policy: String) {
        self.previous = std::mem::replace(&mut self.policy, policy);
        self.policy_set = Instant::now();
    }

    fn spreading(&self, t: Timings) -> bool {
        self.policy != self.previous
            && t.policy_spread
                .is_some_and(|d| self.policy_set.elapsed() < d)
    }
}

#[derive(Default)]
pub(crate) struct Kms {
    keys: BTreeMap<String, Key>,
    aliases: BTreeMap<String, String>,
    /// Function name -> the key its environment is encrypted with.
    functions: BTreeMap<String, String>,
}

/// `TrentService.CreateKey` -> `CreateKey`.
fn operation<'a>(r: &Req<'a>) -> Option<&'a str> {
    r.headers
        .get("x-amz-target")?
        .to_str()
        .ok()?
        .strip_prefix("TrentService.")
}

fn id_of(key: &str) -> String {
    key.rsplit_once("key/")
        .map_or(key, |(_, id)| id)
        .to_string()
}

fn check(action: &str, resource: String, conditions: BTreeMap<String, String>) -> Check {
    Check {
        action: action.into(),
        resource,
        conditions,
        key_policy: None,
    }
}

/// A check on `key`, which its key policy decides: with the context keys KMS sets on every request
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-caller-account>;
/// `aws:PrincipalArn` is global).
fn on(key: &Key, policy: &str, action: &str, mut conditions: BTreeMap<String, String>) -> Check {
    conditions.insert("kms:CallerAccount".into(), ACCOUNT.into());
    conditions.insert(
        "aws:PrincipalArn".into(),
        crate::support::iam_enforce::deployer(),
    );
    Check {
        action: action.into(),
        resource: key.arn.clone(),
        conditions,
        key_policy: Some(policy.to_string()),
    }
}

/// `[{"TagKey": k, "TagValue": v}, …]` as a map.
fn tags_of(v: &Value) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or_default().to_string();
            (s("TagKey"), s("TagValue"))
        })
        .collect()
}

/// The context of a KMS call Lambda makes on the caller's behalf for `function`: Lambda encrypts a function's
/// environment with the function's ARN as encryption context
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html>).
fn via_lambda(r: &Req<'_>, function: &str) -> BTreeMap<String, String> {
    let region = region_of(r);
    BTreeMap::from([
        (
            "kms:ViaService".to_string(),
            format!("lambda.{region}.amazonaws.com"),
        ),
        (
            "kms:EncryptionContext:aws:lambda:FunctionArn".to_string(),
            format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{function}"),
        ),
    ])
}

/// The function a Lambda configuration path names: `/2015-03-31/functions/{name}[/configuration]`.
fn function_of(path: &str) -> Option<(String, bool)> {
    let rest = path.strip_prefix("/2015-03-31/functions")?;
    let rest = rest.trim_start_matches('/');
    if rest.is_empty() {
        return None;
    }
    let (name, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
    let name = name.rsplit_once("function:").map_or(&*name, |(_, n)| n);
    let name = name.split(':').next().unwrap_or(name).to_string();
    match tail {
        "" => Some((name, true)),
        "configuration" => Some((name, false)),
        _ => None,
    }
}

impl Kms {
    fn key(&self, key: &str) -> Option<&Key> {
        let id = if key.starts_with("alias/") {
            self.aliases.get(key)?.clone()
        } else {
            id_of(key)
        };
        self.keys.get(&id)
    }

    /// The checks of `action` on `k` by the policies KMS applies now: while a change spreads, the one before it
    /// too, so that a request either refuses is refused.
    fn on_applied(
        k: &Key,
        t: Timings,
        action: &str,
        context: &BTreeMap<String, String>,
    ) -> Vec<Check> {
        let mut all = vec![on(k, &k.policy, action, context.clone())];
        if k.spreading(t) {
            all.push(on(k, &k.previous, action, context.clone()));
        }
        all
    }

    /// The authorisations AWS makes for a KMS request (the Service Authorization Reference; `CreateAlias` and
    /// `DeleteAlias` need the alias and the key, `CreateKey` with tags needs `kms:TagResource` too). A request on a
    /// key the layer knows is decided by that key's policy.
    pub(crate) fn checks(&self, r: &Req<'_>, t: Timings) -> Option<Vec<Check>> {
        let op = operation(r)?;
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let region = region_of(r);
        let key_arn = |id: &str| format!("arn:aws:kms:{region}:{ACCOUNT}:key/{}", id_of(id));
        let alias_arn = |a: &str| format!("arn:aws:kms:{region}:{ACCOUNT}:{a}");
        let action = format!("kms:{op}");
        let on_key = |key: &str| match self.key(key) {
            Some(k) => Self::on_applied(k, t, &action, &BTreeMap::new()),
            None => vec![check(&action, key_arn(key), BTreeMap::new())],
        };
        let checks = match op {
            "CreateKey" => {
                let tags: BTreeMap<String, String> = tags_of(&body["Tags"])
                    .into_iter()
                    .map(|(k, v)| (format!("aws:RequestTag/{k}"), v))
                    .collect();
                // KMS's condition keys for what kind of key it is, with CreateKey's defaults when the request
                // leaves them out (<https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html>).
                let mut create = tags.clone();
                let field = |k: &str, default: &str| {
                    body[k].as_str().map_or(default.to_string(), str::to_string)
                };
                create.insert("kms:KeySpec".into(), field("KeySpec", "SYMMETRIC_DEFAULT"));
                create.insert("kms:KeyOrigin".into(), field("Origin", "AWS_KMS"));
                create.insert("kms:KeyUsage".into(), field("KeyUsage", "ENCRYPT_DECRYPT"));
                let flag = |k: &str| body[k].as_bool().unwrap_or(false).to_string();
                create.insert("kms:MultiRegion".into(), flag("MultiRegion"));
                create.insert(
                    "kms:BypassPolicyLockoutSafetyCheck".into(),
                    flag("BypassPolicyLockoutSafetyCheck"),
                );
                let mut all = vec![check(&action, "*".into(), create)];
                // "To tag a KMS key while creating it, you need kms:TagResource in an IAM policy that isn't
                // restricted to particular KMS keys" (tag-permissions.html).
                if !tags.is_empty() {
                    all.push(check("kms:TagResource", "*".into(), tags));
                }
                all
            }
            "ListKeys" | "ListAliases" => vec![check(&action, "*".into(), BTreeMap::new())],
            "CreateAlias" | "DeleteAlias" => {
                let alias = body["AliasName"].as_str().unwrap_or_default();
                let target = body["TargetKeyId"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| self.aliases.get(alias).cloned())
                    .unwrap_or_default();
                let mut all = vec![check(&action, alias_arn(alias), BTreeMap::new())];
                all.extend(on_key(&target));
                all
            }
            _ => on_key(body["KeyId"].as_str().unwrap_or_default()),
        };
        Some(checks)
    }

    /// Whether `c` was refused by a key's previous policy while its new one spreads.
    pub(crate) fn refused(&self, c: &Check, t: Timings) -> bool {
        self.keys.values().any(|k| {
            k.arn == c.resource
                && k.spreading(t)
                && c.key_policy.as_deref() == Some(k.previous.as_str())
        })
    }

    /// KMS's lockout check: "the key policy must allow the principal that is making the CreateKey request to make a
    /// subsequent PutKeyPolicy request on the KMS key", unless the request bypasses it; PutKeyPolicy the same
    /// (<https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html>, `BypassPolicyLockoutSafetyCheck`).
    pub(crate) fn lockout(
        r: &Req<'_>,
        denied: &mut dyn FnMut(&Check) -> bool,
    ) -> Option<(&'static str, Answer)> {
        let op = operation(r)?;
        if !matches!(op, "CreateKey" | "PutKeyPolicy") {
            return None;
        }
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        if body["BypassPolicyLockoutSafetyCheck"].as_bool() == Some(true) {
            return None;
        }
        let policy = body["Policy"]
            .as_str()
            .map_or_else(default_policy, str::to_string);
        let probe = Key {
            arn: format!("arn:aws:kms:{}:{ACCOUNT}:key/new", region_of(r)),
            ..Key::new(String::new(), policy.clone())
        };
        let c = on(&probe, &policy, "kms:PutKeyPolicy", BTreeMap::new());
        denied(&c).then(|| {
            (
                "KMS lockout check refused a key policy",
                Answer::json11(
                    400,
                    "MalformedPolicyDocumentException",
                    "The new key policy will not allow you to update the key policy in the future.",
                ),
            )
        })
    }

    /// Refuses before moto sees it: `CreateAlias` on a key KMS has not spread yet.
    pub(crate) fn before(&mut self, r: &Req<'_>, t: Timings) -> Option<(&'static str, Answer)> {
        if operation(r)? != "CreateAlias" {
            return None;
        }
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let id = id_of(body["TargetKeyId"].as_str().unwrap_or_default());
        let key = self.keys.get_mut(&id)?;
        let young = t
            .new_key
            .is_some_and(|d| key.created.elapsed() < d || !key.refused_once);
        key.refused_once = true;
        let key = &*key;
        young.then(|| {
            (
                "new KMS key not yet available",
                Answer::json11(
                    400,
                    "NotFoundException",
                    &format!("Key '{}' does not exist", key.arn),
                ),
            )
        })
    }

    /// What Lambda answers to `CreateFunction` or `UpdateFunctionConfiguration` with a `KMSKeyArn` it cannot use: a
    /// key that does not exist or is not enabled, or a caller that may not grant its use. `denied` asks the caller's
    /// policy.
    pub(crate) fn lambda_refusal(
        &self,
        r: &Req<'_>,
        t: Timings,
        denied: &mut dyn FnMut(&Check) -> bool,
    ) -> Option<(&'static str, Answer)> {
        let creating = r.path.trim_end_matches('/') == "/2015-03-31/functions";
        let configuring = *r.method == Method::PUT && r.path.ends_with("/configuration");
        if !(configuring || (*r.method == Method::POST && creating)) {
            return None;
        }
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let arn = body["KMSKeyArn"].as_str().filter(|a| !a.is_empty())?;
        let function = match function_of(r.path) {
            Some((name, _)) => name,
            None => body["FunctionName"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        };
        let prefix = "Lambda was unable to configure access to your environment variables because the KMS key is invalid for CreateGrant. Please check your KMS key settings.";
        let refuse = |why: String| {
            Answer::rest(
                400,
                "InvalidParameterValueException",
                &format!("{prefix} {why}"),
            )
        };
        match self.key(arn) {
            None => {
                return Some((
                    "lambda refused an unknown KMS key",
                    refuse(format!(
                        "KMS Exception: NotFoundException KMS Message: Key '{arn}' does not exist"
                    )),
                ))
            }
            Some(k) if k.state != "Enabled" => {
                return Some((
                    "lambda refused a KMS key that is not enabled",
                    refuse(format!(
                        "KMS Exception: KMSInvalidStateException KMS Message: {arn} is {}.",
                        k.state
                    )),
                ))
            }
            Some(_) => {}
        }
        for action in ["kms:CreateGrant", "kms:Encrypt"] {
            let refused = self
                .use_of(arn, action, &via_lambda(r, &function), t)
                .into_iter()
                .find(|c| denied(c));
            if let Some(c) = refused {
                return Some((
                    "lambda refused a KMS key the caller may not use",
                    refuse(format!(
                        "KMS Exception: AccessDeniedException KMS Message: {}",
                        crate::support::iam_enforce::denial(&c)
                    )),
                ));
            }
        }
        None
    }

    /// Learns from what moto accepted, and adds to Lambda's answers what moto leaves out: the function's
    /// `KMSKeyArn`, and, for a caller who may not decrypt with that key, the environment replaced by its error
    /// (<https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html>).
    pub(crate) fn after(
        &mut self,
        r: &Req<'_>,
        body: Vec<u8>,
        t: Timings,
        decrypt_denied: &mut dyn FnMut(&Check) -> bool,
    ) -> Vec<u8> {
        if let Some(op) = operation(r) {
            self.learn(op, r, &body);
            return body;
        }
        let Some((name, whole)) = function_of(r.path) else {
            return body;
        };
        let req: Value = serde_json::from_slice(r.body).unwrap_or_default();
        if *r.method == Method::DELETE && whole {
            self.functions.remove(&name);
            return body;
        }
        if *r.method == Method::PUT && !whole {
            match req["KMSKeyArn"].as_str() {
                Some("") => {
                    self.functions.remove(&name);
                }
                Some(arn) => {
                    self.functions.insert(name.clone(), arn.to_string());
                }
                None => {}
            }
        }
        self.shown(&name, body, (r, t), decrypt_denied, !whole)
    }

    /// The checks of Lambda's use of the key `arn` on the caller's behalf: the key's policy decides.
    fn use_of(
        &self,
        arn: &str,
        action: &str,
        context: &BTreeMap<String, String>,
        t: Timings,
    ) -> Vec<Check> {
        match self.key(arn) {
            Some(k) => Self::on_applied(k, t, action, context),
            None => vec![check(action, arn.to_string(), context.clone())],
        }
    }

    /// `CreateFunction`'s request names the function in its body.
    pub(crate) fn created(&mut self, r: &Req<'_>) {
        let req: Value = serde_json::from_slice(r.body).unwrap_or_default();
        if let (Some(name), Some(arn)) = (req["FunctionName"].as_str(), req["KMSKeyArn"].as_str()) {
            if !arn.is_empty() {
                self.functions.insert(name.to_string(), arn.to_string());
            }
        }
    }

    fn shown(
        &self,
        name: &str,
        body: Vec<u8>,
        (r, t): (&Req<'_>, Timings),
        decrypt_denied: &mut dyn FnMut(&Check) -> bool,
        bare: bool,
    ) -> Vec<u8> {
        let Some(arn) = self.functions.get(name) else {
            return body;
        };
        let mut v: Value = serde_json::from_slice(&body).unwrap_or_default();
        let config = if bare {
            &mut v
        } else {
            &mut v["Configuration"]
        };
        let Some(o) = config.as_object_mut() else {
            return body;
        };
        o.insert("KMSKeyArn".into(), json!(arn));
        let refused = (*r.method == Method::GET)
            .then(|| self.use_of(arn, "kms:Decrypt", &via_lambda(r, name), t))
            .into_iter()
            .flatten()
            .find(|c| decrypt_denied(c));
        if let Some(decrypt) = refused {
            o.insert(
                "Environment".into(),
                json!({ "Error": {
                    "ErrorCode": "AccessDeniedException",
                    "Message": format!("Lambda was unable to decrypt the environment variables because KMS access was denied. Please check the function's KMS key settings. KMS Exception: AccessDeniedException KMS Message: {}", crate::support::iam_enforce::denial(&decrypt)),
                } }),
            );
        }
        v.to_string().into_bytes()
    }

    fn learn(&mut self, op: &str, r: &Req<'_>, answer: &[u8]) {
        let req: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let key_id = || id_of(req["KeyId"].as_str().unwrap_or_default());
        match op {
            "CreateKey" => {
                let a: Value = serde_json::from_slice(answer).unwrap_or_default();
                let meta = &a["KeyMetadata"];
                if let (Some(id), Some(arn)) = (meta["KeyId"].as_str(), meta["Arn"].as_str()) {
                    let policy = req["Policy"]
                        .as_str()
                        .map_or_else(default_policy, str::to_string);
                    let mut key = Key::new(arn.to_string(), default_policy());
                    key.tags = tags_of(&req["Tags"]);
                    // Until it spreads, parts of KMS decide as if the key had the default policy.
                    key.set_policy(policy);
                    self.keys.insert(id.to_string(), key);
                }
            }
            "PutKeyPolicy" => {
                if let (Some(k), Some(p)) = (self.keys.get_mut(&key_id()), req["Policy"].as_str()) {
                    k.set_policy(p.to_string());
                }
            }
            "TagResource" | "UntagResource" => {
                if let Some(k) = self.keys.get_mut(&key_id()) {
                    if op == "TagResource" {
                        k.tags.extend(tags_of(&req["Tags"]));
                    } else {
                        for t in req["TagKeys"].as_array().into_iter().flatten() {
                            k.tags.remove(t.as_str().unwrap_or_default());
                        }
                    }
                }
            }
            "CreateAlias" => {
                if let (Some(a), Some(t)) = (req["AliasName"].as_str(), req["TargetKeyId"].as_str())
                {
                    self.aliases.insert(a.to_string(), id_of(t));
                }
            }
            "DeleteAlias" => {
                self.aliases
                    .remove(req["AliasName"].as_str().unwrap_or_default());
            }
            "ScheduleKeyDeletion" | "CancelKeyDeletion" | "EnableKey" | "DisableKey" => {
                if let Some(k) = self.keys.get_mut(&key_id()) {
                    k.state = match op {
                        "ScheduleKeyDeletion" => "PendingDeletion",
                        "EnableKey" => "Enabled",
                        _ => "Disabled",
                    };
                }
            }
            _ => {}
        }
    }

    /// The key a function's environment is encrypted with, as the layer shows it.
    pub(crate) fn function_key(&self, name: &str) -> Option<String> {
        self.functions.get(name).cloned()
    }
}
