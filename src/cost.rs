//! What a stage costs a month under a given load: API Gateway's two meters (connection minutes, messages), the
//! bundled functions (requests, GB-seconds), their logs and the stage's KMS key. Pure: the prices are one table
//! below, the load comes from the caller.

use serde::Serialize;

use crate::config::{Architecture, EnvKey, StageConfig};
use crate::facts::{HEARTBEAT_ACTION, MAX_CONNECTION_S, MESSAGE_BILLING_BYTES};

/// AWS's public list prices in us-east-1, in US dollars, as published on each service's pricing page in 2025
/// (<https://aws.amazon.com/api-gateway/pricing/>, <https://aws.amazon.com/lambda/pricing/>,
/// <https://aws.amazon.com/cloudwatch/pricing/>, <https://aws.amazon.com/kms/pricing/>). Other regions differ,
/// mostly by 0 to 30 % (Europe and Asia a little higher); the free tier is left out.
pub(crate) struct Prices {
    pub as_of: &'static str,
    pub connection_minutes_per_million: f64,
    /// Messages, in 32 KB units: the first billion a month, then beyond.
    pub messages_per_million: f64,
    pub messages_per_million_beyond: f64,
    pub messages_tier: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_gb_second_x86: f64,
    pub lambda_gb_second_arm: f64,
    pub log_ingestion_per_gb: f64,
    pub kms_key_per_month: f64,
}

pub(crate) const PRICES: Prices = Prices {
    as_of: "2025, us-east-1",
    connection_minutes_per_million: 0.25,
    messages_per_million: 1.00,
    messages_per_million_beyond: 0.80,
    messages_tier: 1e9,
    lambda_requests_per_million: 0.20,
    lambda_gb_second_x86: 0.000_016_666_7,
    lambda_gb_second_arm: 0.000_013_333_4,
    log_ingestion_per_gb: 0.50,
    kms_key_per_month: 1.00,
};

/// How long a bundled function runs when nobody says (`wsdeploy cost --function-ms`): a backend call on the
/// same continent.
pub(crate) const DEFAULT_FUNCTION_MS: f64 = 100.0;
/// AWS bills a month as 730 hours.
const MINUTES_PER_MONTH: f64 = 730.0 * 60.0;
/// How often the frontend snippet pings (its `heartbeatMs` default).
const HEARTBEAT_MINUTES: f64 = 5.0;
/// How long a socket lives: the snippet renews it at 99 to 110 minutes, before API Gateway's 2 hours.
const SOCKET_MINUTES: f64 = 104.5;
/// What one invocation of a bundled function writes to CloudWatch Logs: Lambda's START, END and REPORT lines and
/// the function's one JSON line (measured under `wsdeploy dev`: 600 to 700 bytes).
const LOG_BYTES_PER_INVOCATION: f64 = 700.0;

/// The traffic to price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Load {
    /// Sockets open at any moment, on average.
    pub connections: f64,
    /// Messages a minute, both ways (clients' to the API and the backend's pushes), heartbeats not included.
    pub messages_per_minute: f64,
    /// The average message's size, in KB: API Gateway bills each 32 KB started as one message.
    pub message_kb: f64,
    /// How long a bundled function runs, backend call included.
    pub function_ms: f64,
}

/// One line of the bill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Line {
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Estimate {
    pub lines: Vec<Line>,
    pub usd_per_month: f64,
    pub prices_as_of: &'static str,
    pub assumptions: Vec<String>,
}

/// The monthly bill of `stage` under `load`.
pub(crate) fn estimate(stage: &StageConfig, load: &Load) -> Estimate {
    let p = &PRICES;
    let connection_minutes = load.connections * MINUTES_PER_MONTH;
    // Each socket is opened and authenticated (auth message and reply) and closed once per lifetime.
    let sockets = connection_minutes / SOCKET_MINUTES;
    let units = (load.message_kb * 1024.0 / MESSAGE_BILLING_BYTES as f64)
        .ceil()
        .max(1.0);
    let app_messages = load.messages_per_minute * MINUTES_PER_MONTH * units;
    let heartbeats = if stage.heartbeat {
        // A ping and its pong.
        2.0 * connection_minutes / HEARTBEAT_MINUTES
    } else {
        0.0
    };
    let auth_messages = 2.0 * sockets;
    let messages = app_messages + heartbeats + auth_messages;
    let invocations = 2.0 * sockets;
    let gb_seconds =
        invocations * load.function_ms / 1000.0 * f64::from(stage.lambda.memory_mb) / 1024.0;
    let gb_second = match stage.lambda.architecture {
        Architecture::Arm64 => p.lambda_gb_second_arm,
        Architecture::X86_64 => p.lambda_gb_second_x86,
    };
    let log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9;
    let mut lines = vec![
        Line {
            item: "connection minutes",
            quantity: connection_minutes,
            unit: "minutes",
            usd: connection_minutes / 1e6 * p.connection_minutes_per_million,
        },
        Line {
            item: "messages",
            quantity: messages,
            unit: "32 KB units",
            usd: message_usd(messages),
        },
        Line {
            item: "function requests",
            quantity: invocations,
            unit: "invocations",
            usd: invocations / 1e6 * p.lambda_requests_per_million,
        },
        Line {
            item: "function duration",
            quantity: gb_seconds,
            unit: "GB-seconds",
            usd: gb_seconds * gb_second,
        },
        Line {
            item: "function logs",
            quantity: log_gb,
            unit: "GB ingested",
            usd: log_gb * p.log_ingestion_per_gb,
        },
    ];
    if stage.lambda.env_key == EnvKey::Stage {
        lines.push(Line {
            item: "stage KMS key",
            quantity: 1.0,
            unit: "key",
            usd: p.kms_key_per_month,
        });
    }
    let mut assumptions = vec![
        format!(
            "each socket lives {SOCKET_MINUTES} minutes (the snippet renews before API Gateway's {} hours); \
             users who leave sooner mean more sockets, each an auth and a $disconnect invocation",
            MAX_CONNECTION_S / 3600
        ),
        format!("messages of {} KB: each 32 KB started is billed as one", load.message_kb),
        format!("functions run {} ms each, backend call included", load.function_ms),
        if stage.region == "us-east-1" {
            "no free tier".to_string()
        } else {
            format!(
                "no free tier; us-east-1 prices, and the stage is in {}, where they differ by up to about 30 %",
                stage.region
            )
        },
    ];
    if stage.heartbeat {
        assumptions.push(format!(
            "a `{HEARTBEAT_ACTION}` and its pong every {HEARTBEAT_MINUTES} minutes per socket: billed as messages, no function runs"
        ));
    }
    let usd_per_month = lines.iter().map(|l| l.usd).sum();
    Estimate {
        lines,
        usd_per_month,
        prices_as_of: p.as_of,
        assumptions,
    }
}

/// Messages are billed per million, cheaper beyond the first billion a month.
fn message_usd(messages: f64) -> f64 {
    let p = &PRICES;
    let first = messages.min(p.messages_tier);
    let beyond = (messages - p.messages_tier).max(0.0);
    first / 1e6 * p.messages_per_million + beyond / 1e6 * p.messages_per_million_beyond
}

/// `$1,234.56`, `$0.42`, `<$0.01`.
pub(crate) fn usd(amount: f64) -> String {
    if amount > 0.0 && amount < 0.005 {
        return "<$0.01".into();
    }
    let cents = (amount * 100.0).round() as u64;
    let dollars = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{:02}", cents % 100)
}

/// A quantity for people: 43800 -> `43.8k`, 1.5e9 -> `1.5G`.
pub(crate) fn amount(n: f64) -> String {
    let (value, suffix) = match n.abs() {
        x if x >= 1e9 => (n / 1e9, "G"),
        x if x >= 1e6 => (n / 1e6, "M"),
        x if x >= 1e3 => (n / 1e3, "k"),
        _ => (n, ""),
    };
    let text = if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        // 0.50 -> 0.5, 2.00 -> 2: trailing zeros of the decimals only.
        format!("{value:.2}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    };
    format!("{text}{suffix}")
}

/// The estimate as aligned lines.
pub(crate) fn render(e: &Estimate) -> String {
    let mut out = String::new();
    for l in &e.lines {
        out.push_str(&format!(
            "  {:<20} {:>10} {:<13} {:>12}\n",
            l.item,
            amount(l.quantity),
            l.unit,
            usd(l.usd)
        ));
    }
    out.push_str(&format!(
        "  {:<45} {:>12}\n\nAssumptions (prices of {}):\n",
        "total a month",
        usd(e.usd_per_month),
        e.prices_as_of
    ));
    for a in &e.assumptions {
        out.push_str(&format!("  - {a}\n"));
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    fn stage(extra: &str) -> StageConfig {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("wsdeploy.yaml");
        std::fs::write(
            &path,
            format!("project: chat\nregion: eu-west-3\nbackend: {{ url: https://api.example.com }}\n{extra}stages: {{ prod: {{}} }}\n"),
        )
        .unwrap();
        let c = Config::load(&path, &Overrides::default()).unwrap();
        c.stage(Some("prod")).unwrap().clone()
    }

    const LOAD: Load = Load {
        connections: 1000.0,
        messages_per_minute: 600.0,
        message_kb: 1.0,
        function_ms: 100.0,
    };

    #[test]
    fn a_thousand_sockets_and_ten_messages_a_second() {
        let e = estimate(&stage(""), &LOAD);
        let line = |item: &str| e.lines.iter().find(|l| l.item == item).unwrap().clone();
        // 1000 sockets x 43,800 minutes.
        assert!((line("connection minutes").quantity - 43_800_000.0).abs() < 1e-3);
        assert!((line("connection minutes").usd - 10.95).abs() < 1e-9);
        // 600/min x 43,800 = 26.28M, pings and pongs 2 x 43.8M / 5 = 17.52M, auth 2 x 419,139 sockets.
        let sockets = 43_800_000.0 / SOCKET_MINUTES;
        let messages = 26_280_000.0 + 17_520_000.0 + 2.0 * sockets;
        assert!((line("messages").quantity - messages).abs() < 1e-3);
        assert!((line("messages").usd - messages / 1e6).abs() < 1e-9);
        // arm64 and 128 MB by default: 2 invocations per socket, 0.1 s x 0.125 GB each.
        assert!((line("function duration").quantity - 2.0 * sockets * 0.0125).abs() < 1e-6);
        assert!((line("stage KMS key").usd - 1.0).abs() < 1e-12);
        let total: f64 = e.lines.iter().map(|l| l.usd).sum();
        assert!((e.usd_per_month - total).abs() < 1e-9);
        // 10.95 + 44.64 + 0.17 + 0.14 + 0.29 + 1.00, worked out by hand.
        assert_eq!(usd(e.usd_per_month), "$57.19");
    }

    #[test]
    fn big_messages_count_per_32_kb_and_a_billion_is_cheaper_beyond() {
        let small = estimate(&stage("heartbeat: false\n"), &LOAD);
        let big = estimate(
            &stage("heartbeat: false\n"),
            &Load {
                message_kb: 33.0,
                ..LOAD
            },
        );
        let msgs = |e: &Estimate| e.lines[1].quantity;
        let auth = msgs(&small) - 26_280_000.0;
        assert!(
            (msgs(&big) - auth - 2.0 * 26_280_000.0).abs() < 1e-3,
            "33 KB is two units"
        );
        assert!((message_usd(2e9) - (1000.0 + 800.0)).abs() < 1e-6);
    }

    #[test]
    fn the_stages_settings_change_the_bill() {
        let x86 = estimate(
            &stage("lambda: { architecture: x86_64, memory_mb: 256, env_key: aws-managed }\n"),
            &LOAD,
        );
        let arm = estimate(&stage(""), &LOAD);
        assert!(
            x86.lines[3].usd > 2.0 * arm.lines[3].usd,
            "twice the memory, x86's higher price"
        );
        assert!(!x86.lines.iter().any(|l| l.item == "stage KMS key"));
    }

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(usd(1234.567), "$1,234.57");
        assert_eq!(usd(0.001), "<$0.01");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(amount(43_800.0), "43.8k");
        assert_eq!(amount(1_500_000_000.0), "1.5G");
        assert_eq!(amount(1.0), "1");
        assert_eq!(amount(600.0), "600");
        assert_eq!(amount(100_000.0), "100k");
        assert_eq!(amount(0.0131), "0.01");
    }
}
