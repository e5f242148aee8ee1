//! The stage's CloudWatch metrics of the last hour: API Gateway's for the stage
//! (<https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-api-logging.html#apigateway-websocket-api-metrics>)
//! and Lambda's for each function, in one `GetMetricData` call.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use serde::Serialize;

use super::{explain, Clients};
use crate::deploy::state::Desired;

/// What `status` shows of the last hour; a metric CloudWatch has no datapoint for is left out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct LastHour {
    /// API Gateway metric name -> sum over the hour.
    pub api: BTreeMap<String, f64>,
    /// Function name -> Lambda metric (`Invocations`, `Errors`, `DurationP99`) -> value.
    pub functions: BTreeMap<String, BTreeMap<String, f64>>,
}

/// API Gateway's WebSocket metrics, summed.
pub(crate) const API_METRICS: [&str; 5] = [
    "ConnectCount",
    "MessageCount",
    "IntegrationError",
    "ClientError",
    "ExecutionError",
];

/// Lambda's, with the statistic each is read with.
const FUNCTION_METRICS: [(&str, &str, &str); 3] = [
    ("Invocations", "Sum", "Invocations"),
    ("Errors", "Sum", "Errors"),
    ("Duration", "p99", "DurationP99"),
];

fn query(
    id: String,
    namespace: &str,
    name: &str,
    dims: &[(&str, &str)],
    stat: &str,
) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(name)
        .set_dimensions(Some(
            dims.iter()
                .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
                .collect(),
        ))
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(3600)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

/// The last hour of the stage's metrics. A sum adds the hour's buckets; a percentile takes the worst bucket.
pub(crate) async fn last_hour(c: &Clients, d: &Desired, api_id: &str) -> Result<LastHour> {
    let mut queries = vec![];
    let mut meaning: BTreeMap<String, (Option<String>, String, bool)> = BTreeMap::new();
    for (i, name) in API_METRICS.iter().enumerate() {
        let id = format!("api{i}");
        queries.push(query(
            id.clone(),
            "AWS/ApiGateway",
            name,
            &[("ApiId", api_id), ("Stage", &d.stage)],
            "Sum",
        ));
        meaning.insert(id, (None, (*name).to_string(), true));
    }
    for (f, spec) in d.functions.iter().enumerate() {
        for (j, (name, stat, shown)) in FUNCTION_METRICS.iter().enumerate() {
            let id = format!("f{f}m{j}");
            queries.push(query(
                id.clone(),
                "AWS/Lambda",
                name,
                &[("FunctionName", &spec.name)],
                stat,
            ));
            meaning.insert(
                id,
                (
                    Some(spec.name.clone()),
                    (*shown).to_string(),
                    *stat == "Sum",
                ),
            );
        }
    }
    let end = SystemTime::now();
    let start = end - Duration::from_secs(3600);
    let out = c
        .cloudwatch
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(start.into())
        .end_time(end.into())
        .send()
        .await
        .map_err(|e| explain("read the stage's CloudWatch metrics", e))?;
    let mut hour = LastHour::default();
    for r in out.metric_data_results() {
        let (Some(id), values) = (r.id(), r.values()) else {
            continue;
        };
        let Some((function, name, sum)) = meaning.get(id) else {
            continue;
        };
        if values.is_empty() {
            continue;
        }
        let value = if *sum {
            values.iter().sum()
        } else {
            values.iter().copied().fold(f64::MIN, f64::max)
        };
        match function {
            None => {
                hour.api.insert(name.clone(), value);
            }
            Some(f) => {
                hour.functions
                    .entry(f.clone())
                    .or_default()
                    .insert(name.clone(), value);
            }
        }
    }
    Ok(hour)
}
