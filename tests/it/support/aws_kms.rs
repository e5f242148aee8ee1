//! KMS keys, and Lambda's use of a customer managed key for a function's environment, as AWS has them and moto does
//! not: moto's Lambda ignores `KMSKeyArn` entirely, and its KMS applies a new key, tags and aliases at once. The
//! layer keeps what it learns from the requests that passed (keys, their tags and state, aliases, which key each
//! function uses) and answers from that; moto stays the store of everything else.

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
    /// "Changes to tags and aliases can take up to five minutes to affect KMS key authorization"
    /// (<https://docs.aws.amazon.com/kms/latest/developerguide/abac.html>): until then, a policy conditioned on
    /// `aws:ResourceTag` does not see the key's tags.
    pub tag_authz: Option<Duration>,
}

struct Key {
    arn: String,
    created: Instant,
    /// Whether `CreateAlias` was refused once: a new key spreads only after the delay *and* one refusal, so that a
    /// loaded machine (where the delay can pass before the first use) still meets it.
    refused_once: bool,
    tags: BTreeMap<String, String>,
    tagged: Instant,
    state: &'static str,
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

/// The condition of a KMS call Lambda makes on the caller's behalf.
fn via_lambda(r: &Req<'_>) -> BTreeMap<String, String> {
    let service = format!("lambda.{}.amazonaws.com", region_of(r));
    BTreeMap::from([("kms:ViaService".to_string(), service)])
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

    /// The authorisations AWS makes for a KMS request (the Service Authorization Reference; `CreateAlias` and
    /// `DeleteAlias` need the alias and the key, `CreateKey` with tags needs `kms:TagResource` too).
    pub(crate) fn checks(&self, r: &Req<'_>, t: Timings) -> Option<Vec<Check>> {
        let op = operation(r)?;
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let region = region_of(r);
        let key_arn = |id: &str| format!("arn:aws:kms:{region}:{ACCOUNT}:key/{}", id_of(id));
        let alias_arn = |a: &str| format!("arn:aws:kms:{region}:{ACCOUNT}:{a}");
        let action = format!("kms:{op}");
        let on_key = |key: &str| {
            let mut conditions = BTreeMap::new();
            if let Some(k) = self.key(key) {
                if t.tag_authz.is_none_or(|d| k.tagged.elapsed() >= d) {
                    for (tk, tv) in &k.tags {
                        conditions.insert(format!("aws:ResourceTag/{tk}"), tv.clone());
                    }
                }
                return check(&action, k.arn.clone(), conditions);
            }
            check(&action, key_arn(key), conditions)
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
                if !tags.is_empty() {
                    all.push(check("kms:TagResource", "*".into(), tags));
                }
                all
            }
            "ListKeys" => vec![check(&action, "*".into(), BTreeMap::new())],
            "CreateAlias" | "DeleteAlias" => {
                let alias = body["AliasName"].as_str().unwrap_or_default();
                let target = body["TargetKeyId"]
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| self.aliases.get(alias).cloned())
                    .unwrap_or_default();
                vec![
                    check(&action, alias_arn(alias), BTreeMap::new()),
                    on_key(&target),
                ]
            }
            _ => vec![on_key(body["KeyId"].as_str().unwrap_or_default())],
        };
        Some(checks)
    }

    /// Whether `r` acts on a key whose tags authorization does not see yet.
    pub(crate) fn tags_pending(&self, r: &Req<'_>, t: Timings) -> bool {
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        operation(r).is_some()
            && body["KeyId"]
                .as_str()
                .and_then(|k| self.key(k))
                .zip(t.tag_authz)
                .is_some_and(|(k, d)| k.tagged.elapsed() < d)
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
        denied: &mut dyn FnMut(&Check) -> bool,
    ) -> Option<(&'static str, Answer)> {
        let creating = r.path.trim_end_matches('/') == "/2015-03-31/functions";
        let configuring = *r.method == Method::PUT && r.path.ends_with("/configuration");
        if !(configuring || (*r.method == Method::POST && creating)) {
            return None;
        }
        let body: Value = serde_json::from_slice(r.body).unwrap_or_default();
        let arn = body["KMSKeyArn"].as_str().filter(|a| !a.is_empty())?;
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
            let c = check(action, arn.to_string(), via_lambda(r));
            if denied(&c) {
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
        self.shown(&name, body, decrypt_denied, r, !whole)
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
        decrypt_denied: &mut dyn FnMut(&Check) -> bool,
        r: &Req<'_>,
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
        if *r.method == Method::GET
            && decrypt_denied(&check("kms:Decrypt", arn.clone(), via_lambda(r)))
        {
            o.insert(
                "Environment".into(),
                json!({ "Error": {
                    "ErrorCode": "AccessDeniedException",
                    "Message": format!("Lambda was unable to decrypt the environment variables because KMS access was denied. Please check the function's KMS key settings. KMS Exception: AccessDeniedException KMS Message: {}", crate::support::iam_enforce::denial(&check("kms:Decrypt", arn.clone(), BTreeMap::new()))),
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
                    let now = Instant::now();
                    self.keys.insert(
                        id.to_string(),
                        Key {
                            arn: arn.to_string(),
                            created: now,
                            refused_once: false,
                            tags: tags_of(&req["Tags"]),
                            tagged: now,
                            state: "Enabled",
                        },
                    );
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
                    k.tagged = Instant::now();
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
