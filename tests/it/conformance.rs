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
    let token = app.join("token");
    std::fs::write(&token, "good-token\n").unwrap();
    let run = wsdeploy(
        &app,
        &[
            "conformance",
            "--local",
            "--token-file",
            token.to_str().unwrap(),
        ],
    )
    .expect(0);
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
    let run = wsdeploy(&app, &["conformance", "--local"])
        .env("WSDEPLOY_CONFORMANCE_TOKEN", "a-token-the-backend-refuses")
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
    let run = wsdeploy(&app, &["conformance", "--local"])
        .env("WSDEPLOY_CONFORMANCE_TOKEN", "good-token")
        .run();
    run.check(
        run.code == 1 && run.stdout.contains("FAIL  connect"),
        "no stage, no pass",
    );
}

/// The token never travels in the command line (other users of the machine read a process's arguments): `--token`
/// is refused with where to put it, and no token at all is bad usage, both before anything is contacted.
#[test]
fn the_token_comes_from_the_environment_or_a_file_never_argv() {
    let app = crate::support::util::fixtures();
    let run = wsdeploy(&app, &["conformance", "--local", "--token", "tok-in-argv"]).expect(2);
    run.check(
        run.stderr.contains("every user of this machine can read it: set WSDEPLOY_CONFORMANCE_TOKEN or pass --token-file FILE")
            && !run.stderr.contains("tok-in-argv"),
        "refused, with the two ways that work, and the token not repeated",
    );
    let none = wsdeploy(&app, &["conformance", "--local"]).expect(2);
    none.check(
        none.stderr
            .contains("conformance needs a token your backend accepts"),
        "no token is bad usage",
    );
    let help = wsdeploy(&app, &["conformance", "--help"]).expect(0).stdout;
    assert!(
        !help.contains("--token <") && !help.contains("--token \""),
        "{help}"
    );
}
