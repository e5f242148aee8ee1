//! Cutting a policy into documents IAM accepts: each at most `MANAGED_POLICY_CHARS` characters, white space not
//! counted. Statements are packed in order; a statement too large alone is cut by its resources. Pure.

use serde_json::{json, Value};

/// The characters IAM counts in a document: its JSON without white space outside strings.
pub(crate) fn chars(doc: &Value) -> usize {
    doc.to_string().chars().count()
}

/// `doc` as one or more documents of at most `limit` characters each, with the same statements in the same order.
pub(crate) fn split(doc: &Value, limit: usize) -> Vec<Value> {
    let version = doc["Version"].clone();
    let wrap = |statements: Vec<Value>| json!({ "Version": version, "Statement": statements });
    let overhead = chars(&wrap(vec![]));
    let mut docs = vec![];
    let mut current: Vec<Value> = vec![];
    let mut size = overhead;
    for s in doc["Statement"].as_array().into_iter().flatten() {
        for part in fit(s, limit - overhead) {
            // A comma between statements.
            let n = chars(&part) + usize::from(!current.is_empty());
            if size + n > limit && !current.is_empty() {
                docs.push(wrap(std::mem::take(&mut current)));
                size = overhead;
            }
            size += chars(&part) + usize::from(!current.is_empty());
            current.push(part);
        }
    }
    if !current.is_empty() || docs.is_empty() {
        docs.push(wrap(current));
    }
    docs
}

/// A statement as pieces of at most `limit` characters: halves of its resources, each a statement of its own
/// (`Sid1`, `Sid2`, …: a Sid must be unique in a document and alphanumeric).
fn fit(s: &Value, limit: usize) -> Vec<Value> {
    let resources = s["Resource"].as_array().cloned().unwrap_or_default();
    if chars(s) <= limit || resources.len() < 2 {
        return vec![s.clone()];
    }
    let (a, b) = resources.split_at(resources.len() / 2);
    let sid = s["Sid"].as_str().unwrap_or("Part");
    let half = |r: &[Value], n: u8| {
        let mut h = s.clone();
        h["Resource"] = json!(r);
        h["Sid"] = json!(format!("{sid}{n}"));
        h
    };
    fit(&half(a, 1), limit)
        .into_iter()
        .chain(fit(&half(b, 2), limit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize, resources: usize) -> Value {
        let statements: Vec<Value> = (0..n)
            .map(|i| {
                json!({ "Sid": format!("S{i}"), "Effect": "Allow", "Action": "logs:PutLogEvents",
                        "Resource": (0..resources).map(|r| format!("arn:aws:logs:eu-west-3:123456789012:log-group:/aws/lambda/app-{i}-{r}")).collect::<Vec<_>>() })
            })
            .collect();
        json!({ "Version": "2012-10-17", "Statement": statements })
    }

    #[test]
    fn every_part_fits_and_nothing_is_lost_or_reordered() {
        for (n, r) in [(1, 1), (40, 2), (3, 200)] {
            let whole = doc(n, r);
            let parts = split(&whole, 6144);
            assert!(parts.iter().all(|p| chars(p) <= 6144), "{n} x {r}");
            let resources = |d: &Value| -> Vec<Value> {
                d["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["Resource"].as_array().unwrap().clone())
                    .collect()
            };
            let back: Vec<Value> = parts.iter().flat_map(resources).collect();
            assert_eq!(back, resources(&whole), "{n} x {r}");
        }
        assert_eq!(split(&doc(1, 1), 6144).len(), 1);
        assert!(split(&doc(3, 200), 6144).len() > 3);
    }
}
