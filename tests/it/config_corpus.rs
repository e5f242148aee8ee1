//! The broken-config corpus: every file in tests/fixtures/broken states, in `# expect: LINE:COL MESSAGE` comments,
//! each error it must produce. Exactly those errors, at those positions, and exit code 2, from every verb that reads
//! the config; and the whole report as a person reads it, in `tests/it/snapshots/`.

use std::path::Path;

use crate::support::util::{fixtures, wsdeploy};

/// `(line, column, "path: message")` for each error block of a rendered report.
fn reported(stderr: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = stderr.lines().collect();
    let mut out = vec![];
    for (i, l) in lines.iter().enumerate() {
        if let Some(msg) = l.strip_prefix("error: ") {
            let at = lines.get(i + 1).and_then(|n| n.trim().strip_prefix("--> "));
            let Some(at) = at else { continue };
            let mut parts = at.rsplitn(3, ':');
            let col = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let line = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            out.push((line, col, msg.to_string()));
        }
    }
    out
}

fn expected(text: &str) -> Vec<(usize, usize, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|e| {
            let (pos, msg) = e.split_once(' ').expect("`# expect: L:C message`");
            let (l, c) = pos.split_once(':').expect("L:C");
            (l.parse().unwrap(), c.parse().unwrap(), msg.to_string())
        })
        .collect()
}

#[test]
fn every_broken_config_gets_its_own_located_message() {
    let dir = fixtures().join("broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus has {} files; it should have at least 30",
        files.len()
    );
    let mut messages = std::collections::HashSet::new();
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        let want = expected(&std::fs::read_to_string(file).unwrap());
        assert!(!want.is_empty(), "{name} has no `# expect:` line");
        let run = wsdeploy(&dir, &["validate", "-c", name])
            .show(file)
            .expect(2);
        let got = reported(&run.stderr);
        run.check(
            got == want,
            &format!("{name}: the errors differ\n want: {want:#?}\n got: {got:#?}"),
        );
        run.check(
            run.stderr.contains("= help: "),
            &format!("{name}: every error says how to fix it"),
        );
        insta::with_settings!({ description => format!("wsdeploy validate -c {name}"), omit_expression => true }, {
            insta::assert_snapshot!(format!("broken_{}", name.trim_end_matches(".yaml")), run.stderr);
        });
        for (_, _, m) in want {
            messages.insert(m);
        }
    }
    assert!(
        messages.len() >= files.len(),
        "each broken config produces its own message"
    );
}

/// A bad config stops every verb before it reaches AWS: a counting proxy in front of the endpoint sees nothing.
#[tokio::test(flavor = "multi_thread")]
async fn no_verb_sends_a_request_with_a_bad_config() {
    let proxy = crate::support::proxy::Proxy::start("http://127.0.0.1:9").await;
    let dir = fixtures().join("broken");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "yaml")
        })
        .collect();
    files.sort();
    let mut runs = 0;
    for name in &files {
        for verb in [
            &["plan", "-s", "prod"][..],
            &["up", "--yes"],
            &["teardown", "--yes"],
            &["outputs"],
            &["send", "--connection", "x", "hi"],
        ] {
            let mut args = vec!["-c", name.as_str()];
            args.extend_from_slice(verb);
            let run = wsdeploy(&dir, &args)
                .envs([
                    ("AWS_ENDPOINT_URL", proxy.endpoint.clone()),
                    ("AWS_ACCESS_KEY_ID", "x".into()),
                    ("AWS_SECRET_ACCESS_KEY", "x".into()),
                ])
                .run();
            run.check(run.code == 2, &format!("{name} {verb:?} must exit 2"));
            run.check(
                run.stderr.contains("nothing was changed"),
                "the report says nothing was changed",
            );
            runs += 1;
        }
    }
    let seen = proxy.take();
    assert!(
        seen.is_empty(),
        "{} requests reached the AWS endpoint: {seen:?}",
        seen.len()
    );
    eprintln!(
        "configs tried: {} ({runs} runs), requests sent: 0",
        files.len()
    );
}

#[test]
fn json_output_carries_every_diagnostic() {
    let dir = fixtures().join("broken");
    let run = wsdeploy(
        &dir,
        &[
            "validate",
            "-c",
            "several-errors-at-once.yaml",
            "--output",
            "json",
        ],
    )
    .expect(2);
    let doc = run.json();
    let diags = doc["error"]["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 5, "{doc:#}");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert_eq!(
        (
            diags[0]["path"].as_str(),
            diags[0]["line"].as_u64(),
            diags[0]["column"].as_u64()
        ),
        (Some("project"), Some(1), Some(10))
    );
    assert!(Path::new(&dir).join("several-errors-at-once.yaml").exists());
}
