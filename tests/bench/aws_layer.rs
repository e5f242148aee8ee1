//! The test harness's AWS-behaviour layer as a process of its own, for `scripts/bench`: between a deploying tool and
//! moto it plays what real AWS does (serialised API writes, `Pending` functions, IAM's propagation, ...) at AWS's
//! pace, adds AWS's answer time to every request, and reports each run's requests.
//!
//!     cargo run --example aws-layer -- --upstream http://127.0.0.1:5000 --latency-ms 60
//!
//! Prints `listening http://127.0.0.1:PORT`, then answers one command per line on stdin:
//! `take` prints what was seen since the last `take` as one JSON line
//! (`{"requests": [...], "chain": {"requests": N, "steps": N}}`); end of input stops it.

#![allow(
    dead_code,
    reason = "the harness's modules serve the tests too; this uses a part"
)]
#![allow(
    clippy::too_many_lines,
    reason = "as in the test binary the modules come from"
)]

use std::io::BufRead;
use std::time::Duration;

use clap::Parser;
use serde_json::json;

// The harness's modules name each other `crate::support::...`, as in the test binary.
#[path = "../it/support/aws_behaviour.rs"]
mod aws_behaviour;
#[path = "../it/support/aws_boundary.rs"]
mod aws_boundary;
#[path = "../it/support/aws_kms.rs"]
mod aws_kms;
#[path = "../it/support/iam_enforce.rs"]
mod iam_enforce;
#[path = "../it/support/moto.rs"]
mod moto;
#[path = "../it/support/proxy.rs"]
mod proxy;
mod support {
    pub(crate) use super::{aws_behaviour, aws_boundary, aws_kms, iam_enforce, moto, proxy};
}

use support::aws_behaviour::Behaviour;
use support::proxy::{longest_chain, Proxy};

/// AWS's timings. The defaults are typical figures, not worst cases: each names where it comes from.
#[derive(Parser)]
struct Args {
    /// moto's endpoint.
    #[arg(long)]
    upstream: String,
    /// Added to every answer. AWS's control-plane calls answer in tens of milliseconds (API Gateway's and Lambda's
    /// management calls typically 50-100 ms from a nearby region, IAM's more); moto answers in under one.
    #[arg(long, default_value_t = 60)]
    latency_ms: u64,
    /// How long a new role cannot be assumed by Lambda. AWS documents no figure ("eventually consistent"); deploys
    /// commonly see 5-10 s, which is why terraform-provider-aws retries `CreateFunction` for up to 2 minutes.
    #[arg(long, default_value_t = 7000)]
    iam_propagation_ms: u64,
    /// How long a new access key is refused.
    #[arg(long, default_value_t = 3000)]
    key_propagation_ms: u64,
    /// How long a new function stays `Pending` (a zip function outside a VPC: about a second).
    #[arg(long, default_value_t = 1000)]
    pending_ms: u64,
    /// How long an updated function's `LastUpdateStatus` stays `InProgress`.
    #[arg(long, default_value_t = 1000)]
    updating_ms: u64,
}

fn behaviour(a: &Args) -> Behaviour {
    let ms = Duration::from_millis;
    Behaviour {
        // A write holds the API for as long as AWS takes to answer it: parallel writes then meet the 409.
        apigw_write: Some(ms(a.latency_ms.max(1))),
        lambda_pending: Some(ms(a.pending_ms)),
        lambda_updating: Some(ms(a.updating_ms)),
        role_propagation: Some(ms(a.iam_propagation_ms)),
        key_propagation: Some(ms(a.key_propagation_ms)),
        ..Behaviour::aws()
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let proxy = Proxy::with(&args.upstream, behaviour(&args)).await;
    proxy.latency(Some(Duration::from_millis(args.latency_ms)));
    println!("listening {}", proxy.endpoint);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(command) = rx.recv().await {
        match command.trim() {
            "take" => println!("{}", report(&proxy.take())),
            other => eprintln!("aws-layer: unknown command {other:?} (known: take)"),
        }
    }
}

fn report(seen: &[support::proxy::Seen]) -> serde_json::Value {
    let start = seen.iter().map(|s| s.arrived).min();
    let ms = |t: std::time::Instant| start.map_or(0.0, |s| (t - s).as_secs_f64() * 1000.0);
    let (requests, steps) = longest_chain(seen);
    json!({
        "requests": seen.iter().map(|s| json!({
            "op": s.op,
            "mutating": s.mutating,
            "bytes": s.bytes,
            "arrived_ms": ms(s.arrived),
            "answered_ms": s.answered.map(ms),
            "status": s.status,
        })).collect::<Vec<_>>(),
        "chain": { "requests": requests, "steps": steps },
    })
}
