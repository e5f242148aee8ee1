//! Offline checks of one layer (the top level or a stage): everything a single value can get wrong on its own.
//! Checks that need the merged stage (required keys, cross-field limits) are in `resolve`.

use super::diag::{redact_userinfo, Diagnostic, Severity};
use super::load::{did_you_mean, ConfigFile};
use super::model::{self, Layer};
use super::resolve::EnvKey;

use crate::facts::{ACCOUNT_THROTTLE_BURST, ACCOUNT_THROTTLE_RATE};
use crate::facts::{INTEGRATION_TIMEOUT_S, LOG_RETENTION_DAYS, SPECIAL_ROUTES};
use crate::facts::{LAMBDA_MEMORY_MB, LAMBDA_NAME_LEN, LAMBDA_TIMEOUT_S};

/// The functions bundled in `lambdas/` (one binary each there).
pub(crate) const BUNDLED_FUNCTIONS: [&str; 3] = ["connect", "disconnect", FANOUT_FUNCTION];
/// The bundled functions a route may name: the fan-out function is the backend's to invoke, never a route's.
pub(crate) const ROUTE_FUNCTIONS: [&str; 2] = ["connect", "disconnect"];
/// The bundled function the backend invokes to post one message to many sockets from inside the region.
pub(crate) const FANOUT_FUNCTION: &str = "fanout";
pub(crate) const MAX_PROJECT_LEN: usize = 32;
/// `{project}-{stage}-disconnect` must fit Lambda's function names.
pub(crate) const MAX_STAGE_LEN: usize = LAMBDA_NAME_LEN - MAX_PROJECT_LEN - "--disconnect".len();

/// The path of a key under `prefix` (empty for the top level, `stages.NAME` for a stage).
fn under(prefix: &[String], rest: &[&str]) -> Vec<String> {
    prefix
        .iter()
        .cloned()
        .chain(rest.iter().map(std::string::ToString::to_string))
        .collect()
}

pub(crate) struct Checker<'a> {
    pub file: &'a ConfigFile,
    pub out: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a ConfigFile) -> Self {
        Checker { file, out: vec![] }
    }

    pub(crate) fn push(
        &mut self,
        severity: Severity,
        path: Vec<String>,
        message: String,
        help: String,
    ) {
        let dropped = self
            .file
            .dropped
            .iter()
            .any(|d| path.starts_with(d) || d.starts_with(&path));
        if severity == Severity::Error && dropped {
            // Already reported as a type or unknown-key error: don't pile a second message on the same spot.
            return;
        }
        let pos = self.file.positions.value(&path);
        self.out
            .push(Diagnostic::new(severity, &path, pos, message).help(help));
    }

    pub(crate) fn error(
        &mut self,
        path: Vec<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Error, path, message.into(), help.into());
    }

    pub(crate) fn warn(
        &mut self,
        path: Vec<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Warning, path, message.into(), help.into());
    }

    /// Checks one layer whose keys live under `prefix` (empty for the top level, `stages.NAME` for a stage).
    pub(crate) fn layer(&mut self, prefix: &[String], layer: &Layer) {
        let at = |rest: &[&str]| under(prefix, rest);
        let in_stage = !prefix.is_empty();
        if in_stage && layer.project.is_some() {
            self.error(
                at(&["project"]),
                "`project` cannot be changed per stage",
                "remove it here: every stage shares the top-level project name",
            );
        }
        if in_stage && layer.stages.is_some() {
            self.error(
                at(&["stages"]),
                "stages cannot be nested",
                "move this stage up to the top-level `stages:` mapping",
            );
        }
        if let Some(project) = &layer.project {
            if !in_stage {
                self.name(at(&["project"]), project, "project name", MAX_PROJECT_LEN);
            }
        }
        if let Some(region) = &layer.region {
            if !is_region(region) {
                self.error(
                    at(&["region"]),
                    format!("`{region}` is not an AWS region name"),
                    "use a region code such as eu-west-3 or us-east-1",
                );
            }
        }
        if let Some(b) = &layer.backend {
            self.backend(prefix, b);
        }
        if let Some(routes) = &layer.routes {
            for (key, function) in routes {
                self.route(at(&["routes"]), key, function);
            }
        }
        if let Some(t) = &layer.throttle {
            self.throttle(prefix, t);
        }
        if let Some(e) = &layer.expect {
            for (key, value) in [
                ("connections", e.connections),
                ("messages_per_minute", e.messages_per_minute),
                ("message_kb", e.message_kb),
            ] {
                if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    self.error(
                        at(&["expect", key]),
                        format!("`{key}` must be a number of 0 or more"),
                        "give the average you expect, e.g. 1000",
                    );
                }
            }
        }
        if let Some(l) = &layer.lambda {
            self.lambda(prefix, l);
        }
        if let Some(d) = layer.logs.as_ref().and_then(|l| l.retention_days) {
            self.retention(at(&["logs", "retention_days"]), d);
        }
        if let Some(d) = &layer.domain {
            self.domain(prefix, d);
        }

        if let Some(env) = &layer.env {
            self.env(prefix, env);
        }
        if let Some(dev) = &layer.dev {
            self.dev(prefix, dev);
        }
        if let Some(tags) = &layer.tags {
            for (k, v) in tags {
                self.tag(at(&["tags", k]), k, v);
            }
        }
        if let Some(stages) = &layer.stages {
            for name in stages.keys() {
                if !in_stage {
                    self.stage_name(at(&["stages", name]), name);
                }
            }
        }
    }

    /// `backend:`: where the functions call the app.
    fn backend(&mut self, prefix: &[String], b: &model::Backend) {
        let at = |rest: &[&str]| under(prefix, rest);
        if let Some(url) = &b.url {
            if let Err(why) = check_backend_url(url) {
                self.error(at(&["backend", "url"]), format!("`{}` {why}", redact_userinfo(url)), "use the http(s) URL your backend is reachable at, e.g. https://api.example.com");
            }
        }
        if let Some(p) = &b.connect_path {
            self.path_value(at(&["backend", "connect_path"]), p, false);
        }
        if let Some(p) = &b.disconnect_path {
            self.path_value(at(&["backend", "disconnect_path"]), p, true);
        }
        if let Some(ms) = b.timeout_ms {
            if !(1..=900_000).contains(&ms) {
                self.error(
                    at(&["backend", "timeout_ms"]),
                    format!("{ms} ms is out of range"),
                    "use a timeout between 1 and 900000 ms (5000 is a good start)",
                );
            }
        }
    }

    /// Whether `value` is within one of Lambda's limits; an error at `path` if it is not.
    fn lambda_limit(
        &mut self,
        path: Vec<String>,
        value: u32,
        unit: &str,
        limit: &std::ops::RangeInclusive<u32>,
    ) -> bool {
        if limit.contains(&value) {
            return true;
        }
        self.error(
            path,
            format!("{value} {unit} is outside Lambda's limits"),
            format!("use a value from {} to {}", limit.start(), limit.end()),
        );
        false
    }

    /// `throttle:`: a 0 makes API Gateway refuse every message with 429; above the account's limits it has no effect.
    fn throttle(&mut self, prefix: &[String], t: &model::Throttle) {
        let at = |rest: &[&str]| under(prefix, rest);
        self.limits(&at(&["throttle"]), t.rate, t.burst);
        for (key, r) in t.routes.iter().flatten() {
            self.limits(&at(&["throttle", "routes", key]), r.rate, r.burst);
        }
    }

    /// A rate and a burst, the stage's or a route's, at `path`.
    fn limits(&mut self, path: &[String], rate: Option<f64>, burst: Option<u32>) {
        let at = |leaf: &str| {
            path.iter()
                .cloned()
                .chain([leaf.to_string()])
                .collect::<Vec<_>>()
        };
        if let Some(rate) = rate {
            if rate.is_nan() || rate <= 0.0 || rate.is_infinite() {
                self.error(
                    at("rate"),
                    format!("a rate of {rate} makes API Gateway refuse every message (429)"),
                    "give the requests per second the stage may take, e.g. 100",
                );
            } else if rate > f64::from(ACCOUNT_THROTTLE_RATE) {
                self.warn(
                    at("rate"),
                    format!("{rate} per second is above API Gateway's account limit ({ACCOUNT_THROTTLE_RATE})"),
                    "the account's limit applies anyway; ask AWS to raise it first",
                );
            }
        }
        if burst == Some(0) {
            self.error(
                at("burst"),
                "a burst of 0 makes API Gateway refuse every message (429)",
                "give how many requests may arrive at once, e.g. 200",
            );
        } else if let Some(b) = burst.filter(|b| *b > ACCOUNT_THROTTLE_BURST) {
            self.warn(
                at("burst"),
                format!("a burst of {b} is above API Gateway's account limit ({ACCOUNT_THROTTLE_BURST})"),
                "the account's limit applies anyway; ask AWS to raise it first",
            );
        }
    }

    /// `lambda:`: within what Lambda and CloudWatch Logs accept.
    fn lambda(&mut self, prefix: &[String], l: &model::Lambda) {
        let at = |rest: &[&str]| under(prefix, rest);
        if let Some(m) = l.memory_mb {
            self.lambda_limit(at(&["lambda", "memory_mb"]), m, "MB", &LAMBDA_MEMORY_MB);
        }
        if let Some(t) = l.timeout_s {
            let within = self.lambda_limit(at(&["lambda", "timeout_s"]), t, "s", &LAMBDA_TIMEOUT_S);
            if within && t > INTEGRATION_TIMEOUT_S {
                self.warn(
                    at(&["lambda", "timeout_s"]),
                    format!("{t} s is longer than API Gateway waits for an integration ({INTEGRATION_TIMEOUT_S} s)"),
                    format!("the client gets an error after {INTEGRATION_TIMEOUT_S} s whatever this says; {INTEGRATION_TIMEOUT_S} or less is enough"),
                );
            }
        }
        if l.reserved_concurrency == Some(0) {
            self.error(
                at(&["lambda", "reserved_concurrency"]),
                "a reserved concurrency of 0 stops every invocation of the functions",
                "give at least 1, or remove the key to let them share the account's pool",
            );
        }
        if let Some(d) = l.log_retention_days {
            self.retention(at(&["lambda", "log_retention_days"]), d);
        }
    }

    /// A number of days CloudWatch Logs can keep a log group's events for.
    fn retention(&mut self, path: Vec<String>, d: u32) {
        if !LOG_RETENTION_DAYS.contains(&d) {
            let near = LOG_RETENTION_DAYS
                .iter()
                .min_by_key(|v| v.abs_diff(d))
                .copied()
                .unwrap_or(14);
            self.error(
                path,
                format!("CloudWatch Logs does not offer a retention of {d} days"),
                format!("use {near}, or one of {LOG_RETENTION_DAYS:?}"),
            );
        }
    }

    /// `domain:`: a host name of the user's, and where its certificate and DNS zone are.
    fn domain(&mut self, prefix: &[String], dom: &model::Domain) {
        let at = |rest: &[&str]| under(prefix, rest);
        if let Some(name) = &dom.name {
            if let Err(why) = host_name(name) {
                self.error(
                    at(&["domain", "name"]),
                    format!("`{name}` is not a domain name clients can connect to: {why}"),
                    "give a host name of yours such as ws.example.com (lowercase, no scheme, no path)",
                );
            }
        }
        if let Some(arn) = &dom.certificate_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[1].starts_with("aws")
                && parts[2] == "acm"
                && parts[5].starts_with("certificate/");
            if !ok {
                self.error(
                    at(&["domain", "certificate_arn"]),
                    format!("`{arn}` is not an ACM certificate ARN"),
                    "give an ARN such as arn:aws:acm:eu-west-3:123456789012:certificate/…, or leave it out to use the ISSUED certificate that covers the name",
                );
            }
        }
        if let Some(zone) = &dom.hosted_zone_id {
            let ok = zone.starts_with('Z')
                && zone.len() <= 32
                && zone
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
            if !ok {
                self.error(
                    at(&["domain", "hosted_zone_id"]),
                    format!("`{zone}` is not a Route 53 hosted zone id"),
                    "give the zone's id as `aws route53 list-hosted-zones` shows it after /hostedzone/, e.g. Z0123456789ABCDEFGHIJ",
                );
            }
        }
    }

    /// `env:`: the env files and their variable names.
    fn env(&mut self, prefix: &[String], env: &model::Env) {
        let at = |rest: &[&str]| under(prefix, rest);
        if let Some(f) = &env.frontend {
            self.env_file(at(&["env", "frontend", "file"]), f.file.as_deref());
            self.var(at(&["env", "frontend", "url"]), f.url.as_deref());
        }
        if let Some(b) = &env.backend {
            self.env_file(at(&["env", "backend", "file"]), b.file.as_deref());
            for (key, v) in [
                ("endpoint", &b.endpoint),
                ("region", &b.region),
                ("access_key_id", &b.access_key_id),
                ("secret_access_key", &b.secret_access_key),
                ("signing_secret", &b.signing_secret),
            ] {
                self.var(at(&["env", "backend", key]), v.as_deref());
            }
        }
    }

    /// `dev:`: the app `wsdeploy dev` starts.
    fn dev(&mut self, prefix: &[String], dev: &model::Dev) {
        let at = |rest: &[&str]| under(prefix, rest);
        if dev.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            self.error(
                at(&["dev", "command"]),
                "dev.command is empty",
                "give the command that starts your backend, e.g. `npm start`, or remove the key",
            );
        }
        if let Some(url) = &dev.open {
            if let Err(why) = check_backend_url(url) {
                self.error(
                    at(&["dev", "open"]),
                    format!("`{}` {why}", redact_userinfo(url)),
                    "give the http URL of your app's page, e.g. http://127.0.0.1:3000/",
                );
            }
        }
    }

    /// A stage name: a name without '-', so that `{project}-{stage}` splits one way only (project `a-b` with stage
    /// `c`, and project `a` with stage `b-c`, would share every resource name).
    fn stage_name(&mut self, path: Vec<String>, name: &str) {
        if is_name(name) && name.contains('-') {
            self.error(
                path,
                format!("stage name `{name}` contains '-'"),
                format!(
                    "use lowercase letters and digits (e.g. `{}`): resource names are `{{project}}-{{stage}}-…`, and a '-' in the stage would let two projects' stages share them",
                    name.replace('-', "")
                ),
            );
        } else {
            self.name(path, name, "stage name", MAX_STAGE_LEN);
        }
    }

    fn name(&mut self, path: Vec<String>, name: &str, what: &str, max: usize) {
        if !is_name(name) {
            self.error(
                path,
                format!("`{name}` is not a valid {what}"),
                format!(
                    "use lowercase letters, digits and '-', starting with a letter (e.g. `{}`)",
                    suggest_name(name)
                ),
            );
        } else if name.len() > max {
            self.error(path, format!("{what} `{name}` is {} characters long; at most {max} fit AWS's resource name limits", name.len()), format!("shorten it to {max} characters or fewer"));
        }
    }

    fn path_value(&mut self, path: Vec<String>, p: &str, needs_id: bool) {
        if !p.starts_with('/') {
            self.error(
                path,
                format!("`{p}` does not start with '/'"),
                format!("write it as `/{}`", p.trim_start_matches('/')),
            );
        } else if p.chars().any(char::is_whitespace) || p.contains('?') || p.contains('#') {
            self.error(
                path,
                format!("`{p}` is not a plain URL path"),
                "use a path without spaces, '?' or '#', e.g. /socket-connections/{connectionId}",
            );
        } else if needs_id && !p.contains("{connectionId}") {
            self.error(path, format!("`{p}` does not contain {{connectionId}}"), "the backend needs to know which connection closed: e.g. /socket-connections/{connectionId}");
        }
    }

    fn route(&mut self, routes: Vec<String>, key: &str, function: &str) {
        let mut path = routes;
        path.push(key.to_string());
        if key.starts_with('$') && !SPECIAL_ROUTES.contains(&key) {
            let help = match did_you_mean(key, SPECIAL_ROUTES) {
                Some(s) => format!(
                    "did you mean `{s}`? Special routes are {}",
                    SPECIAL_ROUTES.join(", ")
                ),
                None => format!(
                    "special routes are {}; action names do not start with '$'",
                    SPECIAL_ROUTES.join(", ")
                ),
            };
            self.error(
                path.clone(),
                format!("`{key}` is not an API Gateway route"),
                help,
            );
        } else if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_graphic()) {
            self.error(path.clone(), format!("route key `{key}` is not a valid action name"), "use 1 to 128 visible ASCII characters without spaces, e.g. `auth` or `sendMessage`");
        }
        if !ROUTE_FUNCTIONS.contains(&function) {
            let help = match did_you_mean(function, ROUTE_FUNCTIONS) {
                Some(s) => format!(
                    "did you mean `{s}`? The bundled functions are {}",
                    ROUTE_FUNCTIONS.join(", ")
                ),
                None => format!(
                    "name one of the bundled functions: {}",
                    ROUTE_FUNCTIONS.join(", ")
                ),
            };
            self.error(
                path,
                format!("route `{key}` names a function `{function}` that does not exist"),
                help,
            );
        }
    }

    fn env_file(&mut self, path: Vec<String>, file: Option<&str>) {
        if file.is_some_and(|f| f.trim().is_empty()) {
            self.error(
                path,
                "the env file path is empty",
                "give a path relative to this file, e.g. ../backend/.env",
            );
        }
    }

    fn var(&mut self, path: Vec<String>, name: Option<&str>) {
        if let Some(name) = name {
            if !is_env_var(name) {
                self.error(
                    path,
                    format!("`{name}` is not a valid environment variable name"),
                    "use letters, digits and '_', not starting with a digit (e.g. WS_API_ENDPOINT)",
                );
            }
        }
    }

    fn tag(&mut self, path: Vec<String>, key: &str, value: &str) {
        let lower = key.to_ascii_lowercase();
        if lower.starts_with("aws:") || lower.starts_with("wsdeploy:") {
            self.error(
                path,
                format!("tag key `{key}` uses a reserved prefix"),
                "the `aws:` and `wsdeploy:` prefixes are reserved; choose another key",
            );
        } else if key.is_empty() || key.chars().count() > 128 {
            self.error(
                path,
                "tag keys must be 1 to 128 characters long",
                "shorten the tag key",
            );
        } else if value.chars().count() > 256 {
            self.error(
                path,
                "tag values may be at most 256 characters long",
                "shorten the tag value",
            );
        } else if let Some(c) = key
            .chars()
            .chain(value.chars())
            .find(|c| !crate::facts::tag_char(*c))
        {
            let which = if key.contains(c) { "key" } else { "value" };
            self.error(
                path,
                format!("tag {which} `{}` has {c:?}, which AWS refuses in tags", if which == "key" { key } else { value }),
                "use letters, digits, spaces and _ . : / = + - @ only (IAM, Lambda and CloudWatch Logs refuse the rest)",
            );
        }
    }
}

pub(crate) fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn suggest_name(s: &str) -> String {
    let cleaned: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string();
    match cleaned.chars().next() {
        Some(c) if c.is_ascii_lowercase() => cleaned,
        Some(_) => format!("ws-{cleaned}"),
        None => "chat".into(),
    }
}

/// `eu-west-3`, `us-gov-west-1`, `ap-southeast-2`.
pub(crate) fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `lambda.env_key`: `stage`, `aws-managed` or a key's ARN, `arn:{partition}:kms:{region}:{account}:key/{id}`. The
/// error says what is wrong and how to write it instead.
pub(crate) fn parse_env_key(s: &str) -> Result<EnvKey, (String, String)> {
    const FORMS: &str = "use `stage` (a key for this stage, the default), `aws-managed` (Lambda's own key), or a key ARN such as arn:aws:kms:eu-west-3:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    match s {
        "stage" => return Ok(EnvKey::Stage),
        "aws-managed" => return Ok(EnvKey::AwsManaged),
        _ => {}
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let arn_like = parts.len() == 6 && parts[0] == "arn" && parts[2] == "kms";
    if s.starts_with("alias/") || (arn_like && parts[5].starts_with("alias/")) {
        return Err((
            format!("`{s}` is an alias; Lambda takes a key's ARN"),
            "give the key's ARN: aws kms describe-key --key-id <alias> --query KeyMetadata.Arn"
                .into(),
        ));
    }
    let valid = arn_like
        && parts[1].starts_with("aws")
        && is_region(parts[3])
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5].strip_prefix("key/").is_some_and(|id| {
            !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(EnvKey::Arn(s.to_string()))
    } else {
        Err((format!("`{s}` is not a KMS key"), FORMS.into()))
    }
}

pub(crate) fn is_env_var(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) fn check_backend_url(s: &str) -> Result<url::Url, &'static str> {
    let url = url::Url::parse(s).map_err(|_| "is not a URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http(s) URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("holds a user name or password; the functions authenticate with the user's token and the signature, never with the URL");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("has a query or fragment; give the base URL only");
    }
    Ok(url)
}

/// Whether `name` is a host name API Gateway takes for a custom domain: lowercase labels of letters, digits and
/// '-', at least two, no wildcard, at most 253 characters, and not one of AWS's own.
pub(crate) fn host_name(name: &str) -> Result<(), &'static str> {
    if name.contains("://") || name.contains('/') {
        return Err("it has a scheme or a path");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    if name.starts_with("*.") {
        return Err("a wildcard maps every name to one stage; give the stage's own name");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("it has no parent domain");
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !labels.iter().all(label_ok) {
        return Err("each label must be 1 to 63 lowercase letters, digits or '-', not starting or ending with '-'");
    }
    if name.ends_with(".amazonaws.com") || name.ends_with(".amazonaws.com.cn") {
        return Err("it is one of AWS's own names");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for ok in [
            "eu-west-3",
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "cn-north-1",
        ] {
            assert!(is_region(ok), "{ok}");
        }
        for bad in [
            "eu-west",
            "EU-west-3",
            "euwest3",
            "eu-west-3a",
            "europe-west-3",
            "",
            "eu--3",
        ] {
            assert!(!is_region(bad), "{bad}");
        }
    }

    #[test]
    fn names_and_vars() {
        assert!(is_name("chat-2"));
        assert!(!is_name("2chat") && !is_name("Chat") && !is_name("chat_app") && !is_name(""));
        assert_eq!(suggest_name("My_App"), "my-app");
        assert_eq!(suggest_name("9lives"), "ws-9lives");
        assert!(is_env_var("VITE_WS_URL") && is_env_var("_X1"));
        assert!(!is_env_var("1X") && !is_env_var("WS-URL") && !is_env_var(""));
    }

    #[test]
    fn backend_urls() {
        assert!(check_backend_url("https://api.example.com/base").is_ok());
        assert!(check_backend_url("http://127.0.0.1:3000").is_ok());
        assert_eq!(
            check_backend_url("ftp://x.com").unwrap_err(),
            "is not an http(s) URL"
        );
        assert_eq!(
            check_backend_url("api.example.com").unwrap_err(),
            "is not a URL"
        );
        assert!(check_backend_url("https://x.com/?a=1").is_err());
    }
}
