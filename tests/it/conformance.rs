//! `wsdeploy conformance` against `wsdeploy dev`: every gateway behaviour the product relies on holds locally, and
//! a behaviour that does not hold fails the run, named.

use crate::support::devkit::dev_with_backend;
use crate::support::util::{cache, wsdeploy};

/// connect, auth (valid and invalid token), Forbidden, POST/GET/DELETE, 410, three SigV4 refusals, 1009, 1003.
const BEHAVIOURS: usize = 14;

#[tokio::test(flavor = "multi_thread")]
async fn every_behaviour_holds_under_dev() {
    let (dev, _) = dev_with_backend("", &[], &cache()).await;
    let app = dev.dir.path().join("app");
    let run = wsdeploy(&app, &["conformance", "--local", "--token", "good-token"]).expect(0);
    run.check(
        run.stdout
            .contains(&format!("{BEHAVIOURS}/{BEHAVIOURS} behaviours passed")),
        "every behaviour passed",
    );
    eprintln!("{}", run.stdout);
    let json = wsdeploy(&app, &["conformance", "--local", "--output", "json"])
        .env("WSDEPLOY_CONFORMANCE_TOKEN", "good-token")
        .expect(0)
        .json();
    assert_eq!(json["passed"], BEHAVIOURS, "{json}");
    assert!(json["behaviours"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["result"] == "passed" && !b["behaviour"].as_str().unwrap().is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_behaviour_that_does_not_hold_fails_the_run_by_name() {
    let (mut dev, _) = dev_with_backend("", &[], &cache()).await;
    let app = dev.dir.path().join("app");
    // The backend refuses this token: the valid-token behaviour cannot hold.
    let run = wsdeploy(
        &app,
        &[
            "conformance",
            "--local",
            "--token",
            "a-token-the-backend-refuses",
        ],
    )
    .expect(1);
    run.check(
        run.stdout.contains("FAIL  auth with a valid token")
            && run.stdout.contains(&format!(
                "{}/{BEHAVIOURS} behaviours passed",
                BEHAVIOURS - 1
            )),
        "the failing behaviour is named and counted",
    );
    // Without a running stage there is nothing to check: a clear error, not a pass.
    assert_eq!(dev.stop(), 0, "{}", dev.output());
    let run = wsdeploy(&app, &["conformance", "--local", "--token", "good-token"]).run();
    run.check(
        run.code == 1 && run.stdout.contains("FAIL  connect"),
        "no stage, no pass",
    );
}
