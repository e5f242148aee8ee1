//! CloudWatch speaks Smithy's RPC v2 CBOR protocol to the Rust SDK (`POST /service/{service}/operation/{op}`,
//! `smithy-protocol: rpc-v2-cbor`), which moto does not: the layer translates each call to the AWS JSON 1.0 form
//! moto serves (`X-Amz-Target: {service}.{op}`) and the answer back to CBOR, timestamps as CBOR tag 1 (epoch
//! seconds), as the protocol specifies (<https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html>).
//! moto computes no percentile (`p99` has no value): for a `pNN` statistic the layer asks moto for the maximum,
//! which is the exact nearest-rank percentile for up to 100 datapoints a bucket (the tests send fewer).

use ciborium::Value as Cbor;
use serde_json::{json, Value};

use super::{Answer, Layer, Req, Upstream};

/// The timestamp members of CloudWatch's shapes that travel through the layer.
const TIMESTAMPS: [&str; 4] = ["Timestamp", "Timestamps", "StartTime", "EndTime"];

/// `(service, operation)` of an RPC v2 CBOR request.
pub(crate) fn operation<'a>(r: &Req<'a>) -> Option<(&'a str, &'a str)> {
    if r.headers
        .get("smithy-protocol")
        .and_then(|v| v.to_str().ok())
        != Some("rpc-v2-cbor")
    {
        return None;
    }
    let mut parts = r.path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(service), Some("operation"), Some(op)) => Some((service, op)),
        _ => None,
    }
}

/// A CBOR request body as the JSON value it encodes (an unreadable one as an empty object).
pub(crate) fn decoded(body: &[u8]) -> Value {
    to_json(ciborium::from_reader(body).unwrap_or(Cbor::Map(vec![])))
}

fn to_json(v: Cbor) -> Value {
    match v {
        Cbor::Integer(i) => json!(i128::from(i) as f64),
        Cbor::Float(f) => json!(f),
        Cbor::Text(s) => json!(s),
        Cbor::Bool(b) => json!(b),
        Cbor::Tag(_, inner) => to_json(*inner),
        Cbor::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        Cbor::Map(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| Some((k.into_text().ok()?, to_json(v))))
                .collect(),
        ),
        Cbor::Bytes(b) => json!(String::from_utf8_lossy(&b)),
        // Null, and what CloudWatch does not send.
        _ => Value::Null,
    }
}

fn to_cbor(v: &Value, timestamp: bool) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) if timestamp => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default())))
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => Cbor::Integer(i.into()),
            _ => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(a.iter().map(|x| to_cbor(x, timestamp)).collect()),
        Value::Object(o) => Cbor::Map(
            o.iter()
                .map(|(k, x)| {
                    (
                        Cbor::Text(k.clone()),
                        to_cbor(x, TIMESTAMPS.contains(&k.as_str())),
                    )
                })
                .collect(),
        ),
    }
}

fn cbor_bytes(v: &Value) -> Vec<u8> {
    let mut out = vec![];
    ciborium::into_writer(&to_cbor(v, false), &mut out).expect("CBOR encodes");
    out
}

/// An answer in RPC v2 CBOR.
pub(crate) fn answer(status: u16, body: &Value) -> Answer {
    Answer {
        status,
        headers: vec![
            ("content-type".into(), "application/cbor".into()),
            ("smithy-protocol".into(), "rpc-v2-cbor".into()),
        ],
        body: cbor_bytes(body),
    }
}

impl Layer {
    /// The call, made to moto in JSON 1.0, answered in CBOR.
    pub(super) async fn translate_cbor(
        &self,
        r: &Req<'_>,
        (service, op): (&str, &str),
        upstream: &Upstream,
    ) -> Answer {
        let input: Cbor = ciborium::from_reader(r.body).unwrap_or(Cbor::Map(vec![]));
        let mut input = to_json(input);
        let mut percentile = false;
        for q in input["MetricDataQueries"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if q["MetricStat"]["Stat"]
                .as_str()
                .is_some_and(|s| s.starts_with('p'))
            {
                percentile = true;
                q["MetricStat"]["Stat"] = json!("Maximum");
            }
        }
        {
            let mut s = self.state.lock().unwrap();
            Self::hit(&mut s, "CloudWatch CBOR call translated for moto");
        }
        let (status, out) = upstream
            .post_json(
                &format!("{service}.{op}"),
                &input,
                "application/x-amz-json-1.0",
                "monitoring",
            )
            .await;
        if percentile {
            let mut s = self.state.lock().unwrap();
            Self::hit(&mut s, "CloudWatch percentile computed by the layer");
        }
        answer(status, &out)
    }
}
