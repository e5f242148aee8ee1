//! Faults, crashes and races against moto: the next run converges, nothing is orphaned, nothing leaks.

use std::time::{Duration, Instant};

use crate::deploy::{leftovers, App, BASE};
use crate::support::moto::Moto;
use crate::support::proxy::{Faults, Proxy};
use crate::support::util::wsdeploy;

/// Everything one stage owns in AWS, by kind, after a converged `up` of BASE.
/// API, functions, log groups, role, user, the KMS key and its alias.
/// API, two functions, two function log groups and the access log group, role, user, KMS alias and key.
const STAGE_RESOURCES: usize = 1 + 2 + 3 + 1 + 1 + 2;

fn config(project: &str) -> String {
    BASE.replace("project: chat", &format!("project: {project}"))
}

/// The user's access keys: (active, inactive).
async fn access_keys(conf: &aws_config::SdkConfig, user: &str) -> (usize, usize) {
    match aws_sdk_iam::Client::new(conf)
        .list_access_keys()
        .user_name(user)
        .send()
        .await
    {
        Ok(k) => {
            let keys = k.access_key_metadata();
            let inactive = keys
                .iter()
                .filter(|k| k.status() == Some(&aws_sdk_iam::types::StatusType::Inactive))
                .count();
            (keys.len() - inactive, inactive)
        }
        Err(_) => (0, 0),
    }
}

/// One of each resource, a working key, and nothing left to do.
async fn assert_converged(app: &App, conf: &aws_config::SdkConfig, project: &str, why: &str) {
    let prefix = format!("{project}-dev");
    let left = leftovers(conf, &prefix).await;
    assert_eq!(
        left.len(),
        STAGE_RESOURCES,
        "{why}: expected exactly one of each resource, found {left:?}"
    );
    let (active, spare) = access_keys(conf, &format!("{prefix}-backend")).await;
    assert!(
        active == 1 && spare <= 1,
        "{why}: one active access key and at most one deactivated spare, found {active} and {spare}"
    );
    let plan = app.run(&["plan", "--output", "json"]).expect(0).json();
    assert_eq!(
        plan["actions"],
        serde_json::json!([]),
        "{why}: a converged stage plans nothing"
    );
    let key = std::fs::read_to_string(&app.backend_env).unwrap_or_default();
    assert!(
        key.contains("WS_API_ACCESS_KEY_ID=AKIA") && key.contains("WS_API_SECRET_ACCESS_KEY="),
        "{why}: the env file holds the key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_and_teardown_survive_a_20_percent_fault_rate() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    for seed in [1u64, 2, 3] {
        let project = format!("faults{seed}");
        let app = App::new(&proxy.endpoint, &config(&project));
        proxy.faults(Some(Faults { rate: 0.2, seed }));
        let before = proxy.injected();
        // The flag, or the standard variable: both are honoured.
        let up = if seed == 3 {
            app.run(&["up"]).env("AWS_MAX_ATTEMPTS", "10")
        } else {
            app.run(&["up", "--max-attempts", "10"])
        };
        up.expect(0);
        let injected = proxy.injected() - before;
        assert!(
            injected >= 3,
            "seed {seed}: only {injected} faults were injected"
        );
        proxy.faults(None);
        assert_converged(&app, &conf, &project, &format!("seed {seed}")).await;
        proxy.faults(Some(Faults {
            rate: 0.2,
            seed: seed + 100,
        }));
        app.run(&["teardown", "--yes", "--max-attempts", "10"])
            .expect(0);
        proxy.faults(None);
        let left = leftovers(&conf, &format!("{project}-dev")).await;
        assert!(
            left.is_empty(),
            "seed {seed}: teardown under faults left {left:?}"
        );
        eprintln!("seed {seed}: {injected} faults injected during up");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_after_any_write_converges_or_tears_down() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    let probe = App::new(&proxy.endpoint, &config("probe"));
    proxy.take();
    probe.run(&["up"]).expect(0);
    let n = proxy.take().iter().filter(|r| r.mutating).count();
    assert!(n > 20, "a cold up makes {n} mutating requests");
    let mut kills = 0;
    // Each crash point is followed by one recovery, `up` and `teardown` in turn: neighbouring writes leave nearly the
    // same state, so both recoveries still meet every phase of the plan, in half the time.
    for k in 1..=n {
        {
            let converge = k % 2 == 1;
            let project = format!("{}{k}", if converge { "u" } else { "t" });
            let app = App::new(&proxy.endpoint, &config(&project));
            proxy.stop_after(k);
            let mut child = app.run(&["up"]).spawn();
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if proxy.stopped() {
                    child.kill().unwrap(); // SIGKILL: no cleanup, no last words.
                    kills += 1;
                    break;
                }
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "k={k}: the crashed run neither stopped nor ended"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            child.wait().unwrap();
            // What the killed run had sent is done, as AWS finishes what it received.
            proxy.settled().await;
            proxy.resume();
            if converge {
                app.run(&["up"]).expect(0);
                assert_converged(
                    &app,
                    &conf,
                    &project,
                    &format!("killed after mutating request {k} of {n}, then up"),
                )
                .await;
            } else {
                app.run(&["teardown", "--yes"]).expect(0);
                let left = leftovers(&conf, &format!("{project}-dev")).await;
                assert!(
                    left.is_empty(),
                    "killed after mutating request {k} of {n}, then teardown: left {left:?}"
                );
            }
        }
    }
    // Concurrent requests can make a run's request count differ by one or two; nearly every case must be a kill.
    assert!(
        kills >= n - 2,
        "only {kills} of {n} runs were killed mid-way"
    );
    eprintln!(
        "crash points tried: {n}, runs killed: {kills} (followed by up and by teardown in turn)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_ups_converge_after_one_more() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let conf = moto.sdk_config().await;
    for round in 0..3 {
        let project = format!("race{round}");
        let app = App::new(&proxy.endpoint, &config(&project));
        let (mut a, mut b) = (app.run(&["up"]).spawn(), app.run(&["up"]).spawn());
        a.wait().unwrap();
        b.wait().unwrap();
        app.run(&["up"]).expect(0);
        assert_converged(&app, &conf, &project, &format!("round {round}")).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_one_clear_sentence_within_seconds() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cases = [
        (
            "unreachable endpoint",
            App::new(&format!("http://{closed}"), &config("x")),
            "AWS could not be reached",
        ),
        (
            "expired token",
            App::new(&proxy.endpoint, &config("x")),
            "your AWS credentials have expired",
        ),
        (
            "bad credentials",
            App::new(&proxy.endpoint, &config("x")),
            "AWS rejected these credentials",
        ),
    ];
    for (what, app, says) in cases {
        proxy.answer_all(match what {
            "expired token" => Some((400, "ExpiredToken")),
            "bad credentials" => Some((403, "InvalidClientTokenId")),
            _ => None,
        });
        let started = Instant::now();
        let run = app.run(&["up", "--yes"]).expect(1);
        let took = started.elapsed();
        run.check(run.stderr.contains(says), &format!("{what}: says {says:?}"));
        run.check(
            run.stderr.trim().lines().count() == 1,
            &format!("{what}: one sentence"),
        );
        assert!(took < Duration::from_secs(15), "{what}: took {took:?}");
    }
    proxy.answer_all(None);
    // No credentials anywhere: the standard chain finds none, and says where to put them.
    let home = tempfile::tempdir().unwrap();
    let app = App::new(&moto.endpoint, &config("x"));
    let run = wsdeploy(&app.dir, &["plan"])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("HOME", home.path())
        .expect(1);
    run.check(
        run.stderr.contains("no AWS credentials were found") && run.stderr.contains("AWS_PROFILE"),
        "says how to provide credentials",
    );
    // A missing region is a config problem: named, located, exit 2, before any AWS call.
    let app = App::new(
        &proxy.endpoint,
        &config("x").replace("region: eu-west-3\n", ""),
    );
    proxy.take();
    let run = app.run(&["up"]).expect(2);
    run.check(
        run.stderr.contains("no region for stage `dev`") && run.stderr.contains("AWS_REGION"),
        "says how to set it",
    );
    assert!(proxy.take().is_empty(), "no request was made");
}

const INIT: &[&str] = &[
    "init",
    "--yes",
    "--force",
    "--project",
    "fresh",
    "--region",
    "eu-west-3",
];

/// SIGKILL in the middle of writing leaves the old file or the new one, never a mix (temp file, fsync, rename).
#[test]
fn a_killed_writer_leaves_the_old_file_or_the_new_one() {
    let reference = tempfile::tempdir().unwrap();
    wsdeploy(
        reference.path(),
        &[
            "init",
            "--yes",
            "--project",
            "fresh",
            "--region",
            "eu-west-3",
        ],
    )
    .expect(0);
    let new = std::fs::read(reference.path().join("wsdeploy.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wsdeploy.yaml");
    let old = format!(
        "# the user's file\nproject: old\n{}",
        "# padding\n".repeat(20_000)
    )
    .into_bytes();
    // Kill times spread over the writer's whole life, measured here, so that some land before, some after, and
    // some during the write.
    let started = Instant::now();
    wsdeploy(dir.path(), INIT).expect(0);
    let life = started.elapsed().as_micros() as u64;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    let (mut killed, mut old_seen, mut new_seen) = (0, 0, 0);
    for _ in 0..60 {
        std::fs::write(&config, &old).unwrap();
        let mut child = wsdeploy(dir.path(), INIT).spawn();
        std::thread::sleep(Duration::from_micros(rand::Rng::gen_range(
            &mut rng,
            life / 2..life * 3 / 2,
        )));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let now = std::fs::read(&config).unwrap();
        assert!(
            now == old || now == new,
            "a killed write left a mix of {} bytes",
            now.len()
        );
        if now == old {
            old_seen += 1;
        } else {
            new_seen += 1;
        }
    }
    eprintln!("writer life {life} µs; killed {killed} of 60; old file {old_seen} times, new file {new_seen} times, never a mix");
    assert!(
        killed > 0 && old_seen > 0 && new_seen > 0,
        "the kills did not straddle the write: the timing window missed"
    );
}
