//! The env files wsdeploy writes read back exactly in the dotenv readers apps use: dotenvy (Rust), Node's
//! `process.loadEnvFile` and python-dotenv, for values full of quotes, backslashes, `$`, `#` and newlines.

use std::collections::BTreeMap;
use std::process::Command;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use wsdeploy::envfile;

/// Values made of what dotenv readers treat specially, and plain characters between them.
fn values(count: usize) -> Vec<String> {
    let strategy = proptest::string::string_regex("[a-z0-9\"'\\\\$#= \n\t`{}/+:.-]{0,14}").unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut out: Vec<String> = [
        "",
        "wss://abc.execute-api.eu-west-3.amazonaws.com/prod",
        "a+b/c=",
        "say \"hi\" to $USER",
        "two\nlines # not a comment",
        "it's # fine",
        "$HOME and {HOME}",
        "back\\\\slash",
        " padded ",
    ]
    .map(String::from)
    .to_vec();
    while out.len() < count {
        out.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    out
}

fn node(file: &std::path::Path) -> BTreeMap<String, String> {
    let script = "process.loadEnvFile(process.argv[1]); \
        console.log(JSON.stringify(Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('WSDT_')))))";
    read_json(Command::new("node").arg("-e").arg(script).arg(file))
}

fn python(file: &std::path::Path) -> BTreeMap<String, String> {
    let script = "import json, sys\nfrom dotenv import dotenv_values\n\
        print(json.dumps({k: v for k, v in dotenv_values(sys.argv[1]).items() if k.startswith('WSDT_')}))";
    read_json(Command::new("python3").arg("-c").arg(script).arg(file))
}

fn read_json(cmd: &mut Command) -> BTreeMap<String, String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{cmd:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn every_value_written_reads_back_exactly_in_dotenvy_node_and_python_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".env");
    // A file the user already has, with a comment and values of their own, some of which wsdeploy then rewrites.
    std::fs::write(
        &file,
        "# mine\nWSDT_0='old'\nKEEP=\"x y\" # note\nWSDT_1=\"old\"\n",
    )
    .unwrap();
    let values = values(400);
    let (mut written, mut refused) = (BTreeMap::new(), vec![]);
    for (i, v) in values.iter().enumerate() {
        let key = format!("WSDT_{i}");
        match envfile::update_file(&file, &[(&key, v)], &[], true) {
            Ok(_) => {
                written.insert(key, v.clone());
            }
            Err(_) => refused.push(v.clone()),
        }
    }
    let text = std::fs::read_to_string(&file).unwrap();
    for v in &refused {
        // Not in double quotes (readers disagree on escapes and `$`), nor in single quotes (a quote, a newline, or
        // backslashes python-dotenv unescapes there).
        let not_double = v.contains(['"', '\\', '$', '`']);
        let not_single = v.contains(['\'', '\n']) || v.contains("\\\\") || v.ends_with('\\');
        // python-dotenv expands `${NAME}` whatever the quotes.
        let expanded = v.contains("${");
        assert!(
            expanded || (not_double && not_single),
            "only values no quoting can carry are refused: {v:?}"
        );
    }
    assert!(
        written.len() > values.len() / 3,
        "enough values are written to prove something: {} of {}",
        written.len(),
        values.len()
    );
    let dotenvy: BTreeMap<String, String> = dotenvy::from_path_iter(&file)
        .unwrap()
        .map(|kv| kv.unwrap())
        .filter(|(k, _)| k.starts_with("WSDT_"))
        .collect();
    let ours: BTreeMap<String, String> = written
        .keys()
        .map(|k| (k.clone(), envfile::get(&text, k).unwrap_or_default()))
        .collect();
    for (reader, read) in [
        ("wsdeploy's own reader", ours),
        ("dotenvy", dotenvy),
        ("Node's process.loadEnvFile", node(&file)),
        ("python-dotenv", python(&file)),
    ] {
        for (key, want) in &written {
            assert_eq!(
                read.get(key),
                Some(want),
                "{reader} reads {key} back as written; the file:\n{text}"
            );
        }
    }
}
