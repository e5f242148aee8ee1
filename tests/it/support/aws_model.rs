//! Every request through the layer is checked against AWS's published service models (botocore's JSON data, the
//! same facts as the Smithy models) by `aws_model.py`: the operation's members, which are required, lengths,
//! patterns, enums, ranges, list and map sizes. AWS's front end refuses a request that breaks one before the service
//! sees it ("1 validation error detected: Value '…' at '…' failed to satisfy constraint: …", `ValidationException`;
//! `ValidationError` in the query protocol,
//! <https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html>); moto checks almost none of them, so the
//! layer answers as AWS does and keeps what it refused, which fails the test even where the code under test
//! tolerates the error.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

use super::{cbor, is_query, Answer, Req};

/// The checker process, started on the first request.
#[derive(Default)]
pub(crate) struct Models {
    process: Option<(Child, ChildStdin, BufReader<ChildStdout>)>,
    /// Each refused request: its operation and what it broke.
    pub violations: Vec<String>,
}

impl Drop for Models {
    fn drop(&mut self) {
        if let Some((child, _, _)) = &mut self.process {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The SigV4 credential scope's service: which model the request is checked against.
fn signed_as(r: &Req<'_>) -> Option<String> {
    let auth = r.headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?.split(',').next()?;
    Some(scope.split('/').nth(3)?.to_string())
}

impl Models {
    fn ask(&mut self, question: &Value) -> Value {
        let (_, stdin, stdout) = self.process.get_or_insert_with(|| {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/support/aws_model.py");
            let mut child = Command::new("python3")
                .arg(script)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 with botocore and regex runs the service-model check");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            (child, stdin, stdout)
        });
        writeln!(stdin, "{question}").expect("the model check reads its question");
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("the model check answers");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the model check answered {line:?}: {e}"))
    }

    /// AWS's validation answer when `r` breaks its operation's model, in the protocol's error shape.
    pub(crate) fn refuse(&mut self, r: &Req<'_>) -> Option<Answer> {
        let service = signed_as(r)?;
        let cbor_op = cbor::operation(r);
        // Every header but the signature: header-bound members are read from them, the rest is ignored.
        let headers: serde_json::Map<String, Value> = r
            .headers
            .iter()
            .filter(|(k, _)| *k != "authorization")
            .filter_map(|(k, v)| Some((k.as_str().to_string(), json!(v.to_str().ok()?))))
            .collect();
        let question = json!({
            "signed_as": service,
            "method": r.method.as_str(),
            "path": r.path,
            "query": r.query,
            "headers": headers,
            "body": base64::engine::general_purpose::STANDARD.encode(r.body),
            "protocol": cbor_op.map(|_| "cbor"),
            "operation": cbor_op.map(|(_, op)| op),
            "decoded": cbor_op.map(|_| cbor::decoded(r.body)),
        });
        let answer = self.ask(&question);
        if let Some(e) = answer["error"].as_str() {
            panic!("the service-model check could not read {question}: {e}");
        }
        let broken: Vec<String> = answer["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        if broken.is_empty() {
            return None;
        }
        let operation = answer["operation"].as_str().unwrap_or("?").to_string();
        let message = format!(
            "{} validation error{} detected: {}",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" },
            broken.join("; ")
        );
        self.violations.push(format!("{operation}: {message}"));
        Some(if cbor_op.is_some() {
            cbor::answer(
                400,
                &json!({ "__type": "ValidationException", "message": message }),
            )
        } else if is_query(r) {
            Answer::query(400, "ValidationError", &xml_escaped(&message))
        } else if r.headers.contains_key("x-amz-target") {
            Answer::json11(400, "ValidationException", &message)
        } else if service == "apigateway" {
            Answer::rest(400, "BadRequestException", &message)
        } else if service == "route53" {
            Answer::query(400, "InvalidInput", &xml_escaped(&message))
        } else {
            Answer::rest(400, "ValidationException", &message)
        })
    }
}

fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
