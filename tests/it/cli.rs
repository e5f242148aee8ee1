//! The command line: verbs and global flags, help, exit codes, output to closed pipes and full disks, the schema.

use crate::support::util::{fixtures, wsdeploy};

const VERBS: [&str; 17] = [
    "init",
    "validate",
    "plan",
    "up",
    "policy",
    "bootstrap",
    "teardown",
    "outputs",
    "send",
    "dev",
    "schema",
    "completions",
    "cost",
    "status",
    "logs",
    "conformance",
    "build",
];

fn two_stage_app() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wsdeploy.yaml"),
        "project: chat\nregion: eu-west-3\nbackend: { url: 'https://api.example.com' }\nstages:\n  dev: {}\n  prod: {}\n",
    )
    .unwrap();
    tmp
}

#[test]
fn help_lists_every_verb_with_examples() {
    let dir = fixtures();
    let help = wsdeploy(&dir, &["--help"]).expect(0).stdout;
    for verb in VERBS {
        assert!(
            help.contains(&format!("  {verb}")),
            "--help lists {verb}:\n{help}"
        );
        let own = wsdeploy(&dir, &[verb, "--help"]).expect(0).stdout;
        assert!(
            own.contains("Examples:"),
            "`{verb} --help` shows examples:\n{own}"
        );
    }
    assert!(help.contains("Exit codes: 0 success, 1 failure while running, 2 bad usage"));
}

#[test]
fn global_flags_work_before_and_after_the_verb() {
    let app = two_stage_app();
    let a = wsdeploy(app.path(), &["-s", "prod", "--output", "json", "validate"])
        .expect(0)
        .json();
    let b = wsdeploy(
        app.path(),
        &["validate", "--stage", "prod", "--output=json"],
    )
    .expect(0)
    .json();
    assert_eq!(a, b);
    assert_eq!(
        a["stages"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["prod"]
    );
    let c = wsdeploy(app.path(), &["validate", "--output", "json"])
        .env("WSDEPLOY_STAGE", "dev")
        .expect(0)
        .json();
    assert!(
        c["stages"].get("dev").is_some() && c["stages"].get("prod").is_none(),
        "WSDEPLOY_STAGE picks the stage"
    );
}

#[test]
fn the_config_is_found_by_flag_or_environment() {
    let app = two_stage_app();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = app.path().join("wsdeploy.yaml");
    let p = path.to_str().unwrap();
    wsdeploy(elsewhere.path(), &["validate", "-c", p]).expect(0);
    wsdeploy(elsewhere.path(), &["validate"])
        .env("WSDEPLOY_CONFIG", p)
        .expect(0);
    let run = wsdeploy(elsewhere.path(), &["validate"]).expect(2);
    run.check(
        run.stderr.contains("no config file at wsdeploy.yaml")
            && run.stderr.contains("wsdeploy init"),
        "says how to get one",
    );
}

#[test]
fn a_stage_must_be_picked_when_there_are_several() {
    let app = two_stage_app();
    let run = wsdeploy(app.path(), &["plan"]).expect(2);
    run.check(
        run.stderr
            .contains("has several stages (dev, prod): pick one with -s/--stage"),
        "names the stages",
    );
    let run = wsdeploy(app.path(), &["plan", "-s", "prd"]).expect(2);
    run.check(
        run.stderr.contains("did you mean `prod`?"),
        "suggests the closest stage",
    );
}

#[test]
fn bad_usage_exits_2_and_region_flag_is_checked() {
    let app = two_stage_app();
    wsdeploy(app.path(), &["validate", "--no-such-flag"]).expect(2);
    wsdeploy(app.path(), &["frobnicate"]).expect(2);
    let run = wsdeploy(app.path(), &["validate", "--region", "mars-1"]).expect(2);
    run.check(
        run.stderr.contains("`mars-1`") && run.stderr.contains("is not an AWS region name"),
        "explains the region",
    );
    let ok = wsdeploy(app.path(), &["validate", "-s", "dev", "--output", "json"])
        .env("AWS_REGION", "us-west-2")
        .expect(0)
        .json();
    assert_eq!(
        ok["stages"]["dev"]["region"], "us-west-2",
        "AWS_REGION overrides the config's region"
    );
}

#[test]
fn json_output_is_the_only_thing_on_stdout() {
    let app = two_stage_app();
    let run = wsdeploy(app.path(), &["validate", "--output", "json"]).expect(0);
    run.json();
    let text = wsdeploy(app.path(), &["validate", "-q"]).expect(0);
    text.check(
        text.stdout.contains("is valid") && text.stderr.is_empty(),
        "-q leaves only the result",
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    let dir = fixtures();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = wsdeploy(&dir, &["completions", shell]).expect(0);
        run.check(
            run.stdout.contains("teardown") && run.stdout.contains("stage"),
            "completes verbs and flags",
        );
    }
}

#[test]
fn every_example_config_validates_without_warnings() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let config = entry.unwrap().path().join("wsdeploy.yaml");
        if config.exists() {
            let run = wsdeploy(&examples, &["validate", "-c", config.to_str().unwrap()])
                .show(&config)
                .expect(0);
            run.check(
                !run.stderr.contains("warning:"),
                "an example shows best practice: no warnings",
            );
            n += 1;
        }
    }
    assert!(n >= 1, "examples/ holds at least one config");
}

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = wsdeploy(root, &["schema"]).expect(0);
    let file = std::fs::read_to_string(root.join("wsdeploy.schema.json")).unwrap();
    run.check(
        run.stdout == file,
        "wsdeploy.schema.json (which the examples point editors at) is stale: `cargo run -- schema > wsdeploy.schema.json`",
    );
}

/// The real-account smoke test is never run here, but it parses, explains itself, and refuses to start without a
/// region (it would otherwise reach for whatever account the machine has).
#[test]
fn the_aws_smoke_script_explains_itself_and_needs_a_region() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/aws-smoke");
    let help = std::process::Command::new("python3")
        .arg(&script)
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.status.success() && text.contains("real AWS account"),
        "{text}"
    );
    let refused = std::process::Command::new("python3")
        .arg(&script)
        .env_remove("AWS_REGION")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("set AWS_REGION"));
}

/// ripgrep's rule: a reader that goes away early (`wsdeploy plan | head -1`) is not an error, and a stdout that
/// cannot be written (`> /dev/full`) is one, said in a sentence, never a panic.
#[tokio::test]
async fn output_to_a_closed_pipe_ends_quietly_and_to_a_full_disk_fails_plainly() {
    let app = two_stage_app();
    let verbs: [&[&str]; 4] = [
        &["schema"],
        &["completions", "bash"],
        &["validate"],
        &["--output", "json", "validate"],
    ];
    for args in verbs {
        let (to, from) = tokio::net::unix::pipe::pipe().unwrap();
        drop(from);
        let closed = wsdeploy(app.path(), args)
            .stdout(to.into_blocking_fd().unwrap())
            .run();
        closed.check(
            closed.code == 0 && closed.stderr.is_empty(),
            "a closed stdout pipe ends the output quietly, exit 0",
        );
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let full = wsdeploy(app.path(), args).stdout(full).run();
        full.check(
            full.code == 1
                && full.stderr.trim()
                    == "error: cannot write the output to stdout: No space left on device (os error 28)",
            "a full disk fails with exit 1 and one sentence",
        );
    }
}

/// Every verb's `--help`, as a person reads it (and the top level's): a changed flag or sentence shows in review.
#[test]
fn every_verbs_help_reads_as_it_did() {
    let dir = fixtures();
    let top = wsdeploy(&dir, &["--help"]).expect(0).stdout;
    insta::assert_snapshot!("help", top);
    for verb in VERBS {
        let own = wsdeploy(&dir, &[verb, "--help"]).expect(0).stdout;
        insta::with_settings!({ description => format!("wsdeploy {verb} --help"), omit_expression => true }, {
            insta::assert_snapshot!(format!("help_{verb}"), own);
        });
    }
}

/// What `policy` prints, as the person who attaches it reads it: the boundary, and the deploy policy of a stage as
/// the managed policies `--out-dir` writes. A permission added or widened shows in review.
#[test]
fn policy_documents_read_as_they_did() {
    let app = two_stage_app();
    let account = ["--account", "123456789012"];
    let boundary = wsdeploy(
        app.path(),
        &[&["policy", "--boundary"][..], &account].concat(),
    )
    .expect(0);
    insta::assert_snapshot!("policy_boundary", boundary.stdout);
    let out = app.path().join("deploy-policy");
    let args = [
        &["policy", "-s", "prod", "--out-dir"][..],
        &[out.to_str().unwrap()],
        &account,
    ]
    .concat();
    let run = wsdeploy(app.path(), &args).expect(0);
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut shown = run.stdout.replace(app.path().to_str().unwrap(), "<app>");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        shown.push_str(&format!(
            "\n--- {name} ---\n{}",
            std::fs::read_to_string(f).unwrap()
        ));
    }
    insta::assert_snapshot!("policy_prod", shown);
}

/// `validate`'s summary, as a person reads it (snapshot in `tests/it/snapshots/`).
#[test]
fn validate_summarises_every_stage() {
    let app = two_stage_app();
    let run = wsdeploy(app.path(), &["validate"]).expect(0);
    insta::assert_snapshot!(run.stdout);
}

/// `cost` as a person reads it: each meter of the bill with its quantity and price, the total and what it assumes.
/// The load comes from flags or from the stage's `expect:`; without either it is bad usage (exit 2).
#[test]
fn cost_itemizes_a_month_of_the_expected_load() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("wsdeploy.yaml"),
        "project: chat\nregion: eu-west-3\nbackend: { url: 'https://api.example.com' }\nstages:\n  dev: {}\n  prod:\n    expect: { connections: 1000, messages_per_minute: 600 }\n",
    )
    .unwrap();
    let from_config = wsdeploy(tmp.path(), &["cost", "-s", "prod"]).expect(0);
    insta::assert_snapshot!(from_config.stdout);
    let flags = [
        "cost",
        "-s",
        "dev",
        "--connections",
        "1000",
        "--messages",
        "10",
        "--per",
        "second",
    ];
    let from_flags = wsdeploy(tmp.path(), &flags).expect(0);
    assert_eq!(
        from_flags.stdout.replace("Stage dev", "Stage prod"),
        from_config.stdout
    );
    let json = wsdeploy(tmp.path(), &[&flags[..], &["--output", "json"]].concat()).expect(0);
    let total = json.json()["usd_per_month"].as_f64().unwrap();
    assert!((total - 57.19).abs() < 0.005, "{total}");
    let none = wsdeploy(tmp.path(), &["cost", "-s", "dev"]).expect(2);
    assert!(
        none.stderr.contains("give --connections and --messages"),
        "{}",
        none.stderr
    );
    let negative = wsdeploy(tmp.path(), &["cost", "-s", "prod", "--connections", "-5"]).expect(2);
    assert!(
        negative
            .stderr
            .contains("--connections must be a number of 0 or more"),
        "{}",
        negative.stderr
    );
}

/// Only a regular file is read as a config: a device without end (`/dev/zero`) and a FIFO no one writes to (which
/// would block the open) are refused at once, exit 2, with what to point -c at instead.
#[test]
fn a_config_that_is_not_a_regular_file_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("wsdeploy.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    for path in ["/dev/zero", fifo.to_str().unwrap()] {
        let run = wsdeploy(dir.path(), &["validate", "-c", path]).expect(2);
        run.check(
            run.stderr.contains(&format!(
                "{path} is not a regular file (a FIFO, a device or a directory): point -c at the config file itself"
            )),
            "refused, with what to do",
        );
    }
}

/// A file too large to be a config, or nested far too deep, is refused before any YAML parser reads it: quickly,
/// with a sentence, exit 2.
#[test]
fn huge_and_deeply_nested_files_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let head = "project: chat\nregion: eu-west-3\nbackend: { url: 'https://api.example.com' }\n";
    std::fs::write(
        dir.path().join("huge.yaml"),
        format!("{head}{}", "# padding\n".repeat(120_000)),
    )
    .unwrap();
    let run = wsdeploy(dir.path(), &["validate", "-c", "huge.yaml"]).expect(2);
    run.check(
        run.stderr.contains(
            "huge.yaml is 1200076 bytes; a wsdeploy config is a few kilobytes and at most 1048576",
        ),
        "the size is refused",
    );
    let depth = 200_000;
    std::fs::write(
        dir.path().join("deep.yaml"),
        format!("{head}tags: {}{}\n", "[".repeat(depth), "]".repeat(depth)),
    )
    .unwrap();
    let run = wsdeploy(dir.path(), &["validate", "-c", "deep.yaml"]).expect(2);
    run.check(
        run.stderr
            .contains("collections nest deeper than 32 levels")
            && run.stderr.lines().all(|l| l.chars().count() < 200),
        "the nesting is refused, and the report shows a window of the long line",
    );
}
