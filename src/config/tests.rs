use std::path::Path;

use super::diag::Diagnostic;
use super::resolve::DEFAULT_STAGE;
use super::*;

fn load(src: &str) -> Result<Config, ConfigError> {
    Config::from_source(
        Path::new("/app/wsdeploy.yaml"),
        src.to_string(),
        &Overrides::default(),
    )
}

fn errors(src: &str) -> Vec<Diagnostic> {
    match load(src) {
        Err(ConfigError::Invalid(r)) => r.errors().cloned().collect(),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

const MINIMAL: &str =
    "project: chat\nregion: eu-west-3\nbackend: { url: 'http://127.0.0.1:3000' }\n";

#[test]
fn defaults_reproduce_the_seed_recipe() {
    let c = load(MINIMAL).unwrap();
    let s = c.stage(None).unwrap();
    assert_eq!(s.stage, DEFAULT_STAGE);
    assert_eq!(s.routes, resolve::default_routes());
    assert_eq!(s.backend.connect_path, "/socket-connections");
    assert_eq!(
        s.backend.disconnect_path,
        "/socket-connections/{connectionId}"
    );
    assert_eq!(s.backend.timeout_ms, 5000);
    assert_eq!(
        (
            s.lambda.architecture,
            s.lambda.memory_mb,
            s.lambda.timeout_s
        ),
        (Architecture::Arm64, 128, 10)
    );
    assert_eq!(s.credentials, CredentialsMode::IamUser);
    assert_eq!(s.functions(), vec!["connect", "disconnect"]);
    assert_eq!(s.function_name("connect"), "chat-dev-connect");
    assert_eq!(s.names().role, "chat-dev-lambda");
}

#[test]
fn stages_override_the_top_level_field_by_field() {
    let src = format!(
        "{MINIMAL}routes: {{ auth: connect }}\nlambda: {{ memory_mb: 256 }}\ntags: {{ team: web }}\nenv:\n  backend: {{ file: ../api/.env }}\n\
         stages:\n  dev: {{}}\n  prod:\n    region: us-east-1\n    backend: {{ url: 'https://api.example.com/' }}\n    routes: {{ $disconnect: disconnect }}\n    lambda: {{ timeout_s: 20 }}\n    tags: {{ env: prod }}\n"
    );
    let c = load(&src).unwrap();
    let dev = c.stage(Some("dev")).unwrap();
    let prod = c.stage(Some("prod")).unwrap();
    assert_eq!(dev.region, "eu-west-3");
    assert_eq!(prod.region, "us-east-1");
    assert_eq!(
        prod.backend.url, "https://api.example.com",
        "trailing slash dropped"
    );
    assert_eq!(
        prod.backend.timeout_ms, 5000,
        "untouched fields come from the top level"
    );
    assert_eq!((prod.lambda.memory_mb, prod.lambda.timeout_s), (256, 20));
    assert_eq!(
        prod.routes.keys().collect::<Vec<_>>(),
        vec!["$disconnect", "auth"],
        "maps merge key by key"
    );
    assert_eq!(prod.tags.len(), 2);
    assert_eq!(
        prod.env.backend.as_ref().unwrap().file,
        Path::new("/api/.env"),
        "paths resolve against the file's folder"
    );
    assert!(c.stage(None).is_err(), "two stages: one must be picked");
}

#[test]
fn region_override_wins() {
    let c = Config::from_source(
        Path::new("w.yaml"),
        MINIMAL.into(),
        &Overrides {
            region: Some("ap-south-1".into()),
        },
    )
    .unwrap();
    assert_eq!(c.stage(None).unwrap().region, "ap-south-1");
    let bad = Config::from_source(
        Path::new("w.yaml"),
        MINIMAL.into(),
        &Overrides {
            region: Some("mars".into()),
        },
    );
    assert!(matches!(bad, Err(ConfigError::Stage(m)) if m.contains("`mars`")));
}

#[test]
fn unknown_stage_suggests_the_closest() {
    let c = load(&format!("{MINIMAL}stages: {{ dev: {{}}, prod: {{}} }}\n")).unwrap();
    let err = c.stage(Some("prd")).unwrap_err().to_string();
    assert!(err.contains("did you mean `prod`?"), "{err}");
    assert!(c
        .stage(Some("local"))
        .unwrap_err()
        .to_string()
        .contains("never deployed"));
}

#[test]
fn local_stage_exists_without_being_declared() {
    let c = load(&format!(
        "{MINIMAL}stages: {{ prod: {{ backend: {{ url: 'https://x.io' }} }} }}\n"
    ))
    .unwrap();
    let local = c.local_stage();
    assert_eq!(local.stage, LOCAL_STAGE);
    assert_eq!(local.backend.url, "http://127.0.0.1:3000");
    assert_eq!(
        c.stage(None).unwrap().stage,
        "prod",
        "local does not count as a deployable stage"
    );
}

#[test]
fn every_error_is_reported_in_one_run_with_its_position() {
    let e = errors("project: chat\nregion: eu-west-3\nbackend:\n  url: 5\n  timout_ms: 3\nlambda:\n  memory_mb: 1\n");
    let got: Vec<(String, usize, usize)> = e
        .iter()
        .map(|d| (d.path.clone(), d.line, d.column))
        .collect();
    assert_eq!(
        got,
        vec![
            ("backend.url".into(), 4, 8),
            ("backend.timout_ms".into(), 5, 3),
            ("lambda.memory_mb".into(), 7, 14)
        ],
        "{e:#?}"
    );
    assert!(e[1]
        .help
        .as_deref()
        .unwrap()
        .contains("did you mean `timeout_ms`?"));
}

#[test]
fn stage_errors_point_into_the_stage() {
    let e = errors(&format!(
        "{MINIMAL}stages:\n  prod:\n    backend:\n      url: 'ftp://x'\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(
        (e[0].path.as_str(), e[0].line, e[0].column),
        ("stages.prod.backend.url", 7, 12)
    );
}

#[test]
fn cross_field_errors_are_located_where_the_value_comes_from() {
    let e = errors(&format!("{MINIMAL}lambda: {{ timeout_s: 3 }}\nstages:\n  prod:\n    backend: {{ timeout_ms: 4000 }}\n"));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].path, "stages.prod.backend.timeout_ms");
}

#[test]
fn frontend_never_shares_the_backends_secret_file() {
    let e = errors(&format!(
        "{MINIMAL}env:\n  frontend: {{ file: .env }}\n  backend: {{ file: ./.env }}\n"
    ));
    assert!(e[0].message.contains("same env file"), "{e:#?}");
}

#[test]
fn schema_is_generated_from_the_model() {
    let s = json_schema();
    assert_eq!(s["additionalProperties"], false);
    assert!(s["properties"]["backend"].is_object());
    assert!(s["$defs"]["Stage"]["properties"].get("project").is_none());
    assert!(s["$defs"]["Stage"]["properties"].get("region").is_some());
}

#[test]
fn dev_command_runs_in_the_config_folder_unless_told() {
    let c = load(MINIMAL).unwrap();
    let s = c.local_stage();
    assert_eq!(s.dev.command, None);
    assert_eq!(s.dev.dir, Path::new("/app"));

    let src = format!(
        "{MINIMAL}dev: {{ command: npm start, dir: ../api, open: 'http://127.0.0.1:3000/' }}\nstages:\n  local:\n    dev: {{ command: npm run dev }}\n"
    );
    let s = load(&src).unwrap().local_stage();
    // `stages.local` overrides field by field: its command, the top level's folder and URL.
    assert_eq!(s.dev.command.as_deref(), Some("npm run dev"));
    assert_eq!(s.dev.dir, Path::new("/api"));
    assert_eq!(s.dev.open.as_deref(), Some("http://127.0.0.1:3000/"));
}
