//! Every documented option, from a cold start: pairwise combinations of the options' values (a small table below;
//! a new option is one row), each run through a whole life against one emulator behind the AWS-behaviour layer.
//! A life is: a cold `up` in an empty account, an `up` that makes no mutating request, one option changed to
//! another value (an `up`, then one that changes nothing) and back, `status` healthy, and `teardown` leaving
//! nothing with the stage's names. With two stages, the second one lives beside the first (cold `up`, no-op `up`,
//! `status`, `teardown`) while the first one changes. The lives run at once, one proxy each (so that each counts
//! its own requests) in front of the same moto, on projects of their own.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use serde_yaml::Value as Yaml;

use crate::deploy::{leftovers, App};
use crate::support::moto::{Moto, REGION};
use crate::support::proxy::Proxy;

/// One documented option and its values, each as the YAML it adds to a stage's config. `{zone}` and `{key}` are
/// the account's hosted zone's domain and a key of the user's, made before the lives start.
struct Factor {
    option: &'static str,
    values: &'static [(&'static str, &'static str)],
}

const FACTORS: &[Factor] = &[
    Factor {
        option: "credentials",
        values: &[
            ("iam-user", "credentials: iam-user"),
            ("policy", "credentials: policy"),
        ],
    },
    Factor {
        option: "heartbeat",
        values: &[("on", "heartbeat: true"), ("off", "heartbeat: false")],
    },
    Factor {
        option: "auth_timeout_s",
        values: &[("none", ""), ("30", "auth_timeout_s: 30")],
    },
    Factor {
        option: "fanout",
        values: &[("off", ""), ("on", "fanout: true")],
    },
    Factor {
        option: "lambda.env_key",
        values: &[
            ("stage", "lambda: { env_key: stage }"),
            ("aws-managed", "lambda: { env_key: aws-managed }"),
            ("ARN", "lambda: { env_key: '{key}' }"),
        ],
    },
    Factor {
        option: "lambda.reserved_concurrency",
        values: &[("none", ""), ("5", "lambda: { reserved_concurrency: 5 }")],
    },
    Factor {
        option: "throttle",
        values: &[
            ("default", ""),
            ("stage", "throttle: { rate: 50, burst: 80 }"),
            (
                "stage+routes",
                "throttle: { rate: 50, burst: 80, routes: { auth: { rate: 10, burst: 20 } } }",
            ),
        ],
    },
    Factor {
        option: "logs",
        values: &[
            ("access", ""),
            ("none", "logs: { access: false }"),
            (
                "access+execution",
                "logs: { execution: error, retention_days: 7 }",
            ),
        ],
    },
    Factor {
        option: "domain",
        values: &[
            ("none", ""),
            ("zone", "domain: { name: '{project}.{zone}' }"),
            ("no zone", "domain: { name: '{project}.elsewhere.test' }"),
        ],
    },
    Factor {
        option: "routes",
        values: &[
            ("bundled", ""),
            (
                "extra",
                "routes: { auth: connect, $disconnect: disconnect, $default: connect }",
            ),
        ],
    },
    Factor {
        option: "tags",
        values: &[
            ("one", ""),
            (
                "several",
                "tags: { team: web, cost-center: 'cc:42/a b', owner: '@ops' }",
            ),
        ],
    },
    Factor {
        option: "ip_address_type",
        values: &[("ipv4", ""), ("dualstack", "ip_address_type: dualstack")],
    },
    Factor {
        option: "stages",
        values: &[("one", ""), ("two", "")],
    },
];

/// The pairwise rows: every pair of values of two options is in at least one row. Greedy (AETG's idea): each new
/// row starts from the first pair not yet covered and takes, option by option, the value covering most new pairs.
fn pairwise(levels: &[usize]) -> Vec<Vec<usize>> {
    let n = levels.len();
    let mut uncovered: BTreeSet<(usize, usize, usize, usize)> = BTreeSet::new();
    for i in 0..n {
        for j in i + 1..n {
            for a in 0..levels[i] {
                for b in 0..levels[j] {
                    uncovered.insert((i, a, j, b));
                }
            }
        }
    }
    let mut rows = vec![];
    while let Some(&(i, a, j, b)) = uncovered.iter().next() {
        let mut row: Vec<Option<usize>> = vec![None; n];
        row[i] = Some(a);
        row[j] = Some(b);
        for f in 0..n {
            if row[f].is_some() {
                continue;
            }
            let gain = |v: usize| {
                (0..n)
                    .filter_map(|g| row[g].map(|w| (g, w)))
                    .filter(|&(g, w)| {
                        let pair = if g < f { (g, w, f, v) } else { (f, v, g, w) };
                        uncovered.contains(&pair)
                    })
                    .count()
            };
            row[f] = (0..levels[f]).max_by_key(|&v| (gain(v), std::cmp::Reverse(v)));
        }
        let row: Vec<usize> = row.into_iter().map(|v| v.unwrap_or(0)).collect();
        for x in 0..n {
            for y in x + 1..n {
                uncovered.remove(&(x, row[x], y, row[y]));
            }
        }
        rows.push(row);
    }
    rows
}

#[test]
fn the_rows_cover_every_pair_of_values() {
    let levels: Vec<usize> = FACTORS.iter().map(|f| f.values.len()).collect();
    let rows = pairwise(&levels);
    for i in 0..levels.len() {
        for j in i + 1..levels.len() {
            for a in 0..levels[i] {
                for b in 0..levels[j] {
                    assert!(
                        rows.iter().any(|r| r[i] == a && r[j] == b),
                        "{}={} with {}={} is in no row",
                        FACTORS[i].option,
                        FACTORS[i].values[a].0,
                        FACTORS[j].option,
                        FACTORS[j].values[b].0
                    );
                }
            }
        }
    }
    // Far fewer than every combination (2·2·2·2·3·2·3·3·3·2·2·2·2 = 41,472), and not fewer than the largest pair's 9.
    assert!((9..=16).contains(&rows.len()), "{} rows", rows.len());
}

/// Merges `over` into `base`, maps key by key (so that two options under `lambda:` both apply).
fn merge(base: &mut Yaml, over: Yaml) {
    match (base, over) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// What a life's config is made of besides its row: the account's hosted zone, and a key of the user's (each life
/// has its own, made through its own proxy, whose layer then plays that key's policy for Lambda).
struct Account {
    zone: String,
    key: String,
}

/// The config of one row.
fn config(project: &str, row: &[usize], account: &Account) -> String {
    let mut doc: Yaml = serde_yaml::from_str(&format!(
        "project: {project}\nregion: {REGION}\nbackend:\n  url: https://api.example.com\n  timeout_ms: 3000\nlambda:\n  architecture: x86_64\nenv:\n  frontend: {{ file: ../frontend/.env }}\n  backend: {{ file: ../backend/.env }}\ntags: {{ team: web }}\n"
    ))
    .unwrap();
    for (f, &v) in FACTORS.iter().zip(row) {
        let yaml = f.values[v]
            .1
            .replace("{project}", project)
            .replace("{zone}", &account.zone)
            .replace("{key}", &account.key);
        if !yaml.is_empty() {
            merge(&mut doc, serde_yaml::from_str(&yaml).unwrap());
        }
    }
    if stages(row).len() == 2 {
        // The second stage has its own env files and its own domain, as two stages cannot share one.
        let mut prod: Yaml = serde_yaml::from_str(
            "env:\n  frontend: { file: ../frontend/.env.prod }\n  backend: { file: ../backend/.env.prod }\n",
        )
        .unwrap();
        if let Some(Yaml::Mapping(d)) = doc.get("domain").cloned() {
            let name = d.get("name").and_then(Yaml::as_str).unwrap_or_default();
            merge(
                &mut prod,
                serde_yaml::from_str(&format!("domain: {{ name: 'prod-{name}' }}")).unwrap(),
            );
        }
        merge(
            &mut doc,
            serde_yaml::from_str("stages: { dev: {} }").unwrap(),
        );
        doc["stages"]["prod"] = prod;
    }
    serde_yaml::to_string(&doc).unwrap()
}

fn stages(row: &[usize]) -> Vec<&'static str> {
    let i = FACTORS.iter().position(|f| f.option == "stages").unwrap();
    if row[i] == 1 {
        vec!["dev", "prod"]
    } else {
        vec!["dev"]
    }
}

fn describe(row: &[usize]) -> String {
    FACTORS
        .iter()
        .zip(row)
        .map(|(f, &v)| format!("{}={}", f.option, f.values[v].0))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One life of one row; the first error says which step and shows the command.
async fn life(index: usize, row: Vec<usize>, moto: String, zone: String) -> Result<(), String> {
    let project = format!("mx{index}");
    let proxy = Proxy::start(&moto).await;
    let key = aws_sdk_kms::Client::new(&crate::support::moto::sdk_config_at(&proxy.endpoint).await)
        .create_key()
        .description("the user's own key")
        .send()
        .await
        .unwrap();
    let account = Account {
        zone,
        key: key.key_metadata().unwrap().arn().unwrap().to_string(),
    };
    let app = Arc::new(App::new(&proxy.endpoint, &config(&project, &row, &account)));
    let stages = stages(&row);
    // Which option this life changes and back: a different one in each row, to its next value.
    let changed = index % FACTORS.len();
    let changed = if FACTORS[changed].option == "stages" {
        0
    } else {
        changed
    };
    let mut other = row.clone();
    other[changed] = (row[changed] + 1) % FACTORS[changed].values.len();
    let run = |args: Vec<String>, code: i32| {
        let app = app.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                app.run(&args).expect(code)
            })
            .await
            .map_err(|e| panic_text(e.into_panic()))
        }
    };
    // Every stage: a cold `up`, then one that changes nothing. The first stage: the change and the change back,
    // the first one followed by an `up` that changes nothing (the way back is checked by `status`).
    let steps: [(&str, Option<&[usize]>, bool); 3] = [
        ("cold up", None, true),
        ("change", Some(&other), true),
        ("change back", Some(&row), false),
    ];
    for (n, (step, to, again)) in steps.into_iter().enumerate() {
        if let Some(to) = to {
            app.config(&config(&project, to, &account));
        }
        for stage in stages.iter().take(if n == 0 { stages.len() } else { 1 }) {
            let args = vec![
                "up".into(),
                "-s".into(),
                (*stage).to_string(),
                "--yes".into(),
            ];
            run(args.clone(), 0)
                .await
                .map_err(|e| format!("{step} of stage {stage}: {e}"))?;
            if !again {
                continue;
            }
            proxy.take();
            run(args, 0)
                .await
                .map_err(|e| format!("the up after {step} of stage {stage}: {e}"))?;
            let writes = proxy.take_writes();
            if !writes.is_empty() {
                return Err(format!(
                    "the up after {step} of stage {stage} made mutating requests: {writes:?}"
                ));
            }
        }
    }
    let conf = crate::support::moto::sdk_config_at(&moto).await;
    for stage in &stages {
        run(vec!["status".into(), "-s".into(), (*stage).to_string()], 0)
            .await
            .map_err(|e| format!("status of stage {stage}: {e}"))?;
        run(
            vec![
                "teardown".into(),
                "-s".into(),
                (*stage).to_string(),
                "--yes".into(),
            ],
            0,
        )
        .await
        .map_err(|e| format!("teardown of stage {stage}: {e}"))?;
        let left = leftovers(&conf, &format!("{project}-{stage}")).await;
        if !left.is_empty() {
            return Err(format!("teardown of stage {stage} left {left:?}"));
        }
    }
    Ok(())
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
        .unwrap_or_else(|| "a panic".into())
}

/// The account the lives share: API Gateway's CloudWatch role set once (it is the account's, not a stage's), a
/// public hosted zone, and an issued certificate for each domain a row may name. Returns the zone's domain.
async fn account(moto: &Moto, rows: &[Vec<usize>]) -> String {
    let conf = moto.sdk_config().await;
    let zone = "matrix.example".to_string();
    aws_sdk_route53::Client::new(&conf)
        .create_hosted_zone()
        .name(&zone)
        .caller_reference("matrix")
        .send()
        .await
        .unwrap();
    let acm = aws_sdk_acm::Client::new(&conf);
    for i in 0..rows.len() {
        for domain in [format!("mx{i}.{zone}"), format!("mx{i}.elsewhere.test")] {
            for name in [domain.clone(), format!("prod-{domain}")] {
                acm.request_certificate()
                    .domain_name(&name)
                    .validation_method(aws_sdk_acm::types::ValidationMethod::Dns)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    // The account role, through one stage's first `up` with --setup-account-logging, then that stage gone.
    let proxy = Proxy::start(&moto.endpoint).await;
    let setup = App::new(
        &proxy.endpoint,
        &config(
            "mxsetup",
            &vec![0; FACTORS.len()],
            &Account {
                zone: zone.clone(),
                key: String::new(),
            },
        ),
    );
    setup
        .run(&["up", "--setup-account-logging", "--yes"])
        .expect(0);
    setup.run(&["teardown", "--yes"]).expect(0);
    zone
}

/// The configuration space, pairwise, each combination through a whole life (see the module's doc).
#[tokio::test(flavor = "multi_thread")]
async fn every_option_pairwise_through_a_whole_life() {
    let moto = Moto::start();
    let levels: Vec<usize> = FACTORS.iter().map(|f| f.values.len()).collect();
    let rows = pairwise(&levels);
    let zone = account(&moto, &rows).await;
    let started = Instant::now();
    let mut lives = tokio::task::JoinSet::new();
    for (i, row) in rows.iter().enumerate() {
        let (row, endpoint, zone) = (row.clone(), moto.endpoint.clone(), zone.clone());
        lives.spawn(async move { (i, life(i, row, endpoint, zone).await) });
    }
    let mut failed = vec![];
    while let Some(done) = lives.join_next().await {
        let (i, result) = done.unwrap();
        eprintln!(
            "matrix row {i} ({}): {} after {:.0?}",
            describe(&rows[i]),
            if result.is_ok() { "ok" } else { "FAILED" },
            started.elapsed()
        );
        if let Err(e) = result {
            failed.push(format!("row {i} ({}): {e}", describe(&rows[i])));
        }
    }
    eprintln!("matrix: {} rows, {:.0?}", rows.len(), started.elapsed());
    assert!(
        failed.is_empty(),
        "{} of {} lives failed:\n\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n\n")
    );
}
