//! `wsdeploy init`: the config and schema it writes, the app code, and what it refuses to overwrite.

use std::path::Path;

use crate::support::util::wsdeploy;

/// `init` unattended, as CI would run it.
const INIT_DEMO: &[&str] = &[
    "init",
    "--yes",
    "--project",
    "demo",
    "--region",
    "eu-west-3",
];

fn yaml_as_json(path: &Path) -> serde_json::Value {
    let v: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    serde_json::to_value(v).unwrap()
}

#[test]
fn init_writes_a_config_that_validates_and_a_schema_that_accepts_it() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    wsdeploy(app, INIT_DEMO).expect(0);
    let config = app.join("wsdeploy.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# yaml-language-server: $schema=./wsdeploy.schema.json\n"));
    assert!(text.contains("project: demo\n") && text.contains("region: eu-west-3\n"));
    let run = wsdeploy(app, &["validate", "--output", "json"])
        .show(&config)
        .expect(0);
    let doc = run.json();
    assert_eq!(
        doc["stages"]["dev"]["functions"]["connect"],
        "demo-dev-connect"
    );
    assert_eq!(
        doc["stages"]["dev"]["env"]["frontend"]["url"],
        "VITE_WS_URL"
    );

    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(app.join("wsdeploy.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let instance = yaml_as_json(&config);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the schema rejects the file init wrote: {errors:#?}"
    );
    // And it is a real check: a typo and a wrong type are rejected.
    let mut bad = instance.clone();
    bad["regon"] = "eu-west-3".into();
    bad["lambda"]["memory_mb"] = "lots".into();
    bad["stages"]["prod"] = serde_json::json!({ "project": "other" });
    assert_eq!(
        validator.iter_errors(&bad).count(),
        3,
        "unknown key, wrong type and a per-stage project are schema errors"
    );

    // `wsdeploy schema` prints the very file init wrote.
    let printed = wsdeploy(app, &["schema"]).expect(0).stdout;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&printed).unwrap(),
        schema
    );
}

#[test]
fn init_never_overwrites_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path();
    std::fs::write(app.join("wsdeploy.yaml"), "project: mine\n").unwrap();
    let run = wsdeploy(app, &["init", "--yes", "--project", "demo"]).expect(2);
    run.check(
        run.stderr.contains("already exists; pass --force"),
        "says how to proceed",
    );
    assert_eq!(
        std::fs::read_to_string(app.join("wsdeploy.yaml")).unwrap(),
        "project: mine\n",
        "untouched"
    );
    assert!(
        !app.join("wsdeploy.schema.json").exists(),
        "nothing written"
    );
    wsdeploy(app, &["init", "--yes", "--project", "demo", "--force"]).expect(0);
    assert!(std::fs::read_to_string(app.join("wsdeploy.yaml"))
        .unwrap()
        .contains("project: demo"));
}

#[test]
fn init_picks_the_env_prefix_from_the_frontends_package_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, web) = (tmp.path().join("app"), tmp.path().join("frontend"));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&web).unwrap();
    std::fs::write(
        web.join("package.json"),
        r#"{"dependencies":{"next":"15.0.0","react":"19"}}"#,
    )
    .unwrap();
    wsdeploy(&app, INIT_DEMO).expect(0);
    let text = std::fs::read_to_string(app.join("wsdeploy.yaml")).unwrap();
    assert!(text.contains("url: NEXT_PUBLIC_WS_URL"), "{text}");
    // An explicit frontend folder wins over the default location.
    let cra = tmp.path().join("cra");
    std::fs::create_dir_all(&cra).unwrap();
    std::fs::write(
        cra.join("package.json"),
        r#"{"dependencies":{"react-scripts":"5"}}"#,
    )
    .unwrap();
    wsdeploy(
        &app,
        &[
            "init",
            "--yes",
            "--force",
            "--project",
            "demo",
            "--frontend",
            "../cra",
            "--frontend-env",
            "../cra/.env",
        ],
    )
    .expect(0);
    let text = std::fs::read_to_string(app.join("wsdeploy.yaml")).unwrap();
    assert!(
        text.contains("url: REACT_APP_WS_URL") && text.contains("file: ../cra/.env"),
        "{text}"
    );
}

#[test]
fn init_rejects_bad_answers_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["--project", "My_App"][..],
            "--project `My_App` is not a valid project name",
        ),
        (
            &["--region", "europe"],
            "--region `europe` is not an AWS region name",
        ),
        (
            &["--backend-url", "localhost:3000"],
            "--backend-url `localhost:3000`",
        ),
        (
            &["--frontend-env", ".env", "--backend-env", ".env"],
            "name the same file",
        ),
    ] {
        let mut all = vec!["init", "--yes"];
        all.extend_from_slice(args);
        let run = wsdeploy(tmp.path(), &all).expect(2);
        run.check(run.stderr.contains(says), &format!("stderr says {says:?}"));
        assert!(!tmp.path().join("wsdeploy.yaml").exists());
    }
}

/// Every env file the config sends secrets to (`dev`'s `.env` and the dev stage's `.env.dev`) is kept out of git:
/// with `--yes` init adds each to the `.gitignore` of its folder, once; unattended without it, it names them.
#[test]
fn init_keeps_every_env_file_with_secrets_out_of_git() {
    let tmp = tempfile::tempdir().unwrap();
    let (app, api) = (tmp.path().join("app"), tmp.path().join("backend"));
    std::fs::create_dir_all(&app).unwrap();
    std::fs::create_dir_all(&api).unwrap();
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&api)
        .status();
    assert!(
        git.is_ok_and(|s| s.success()),
        "git is needed for this test"
    );
    let ignored = |name: &str| {
        std::process::Command::new("git")
            .args(["check-ignore", "-q", name])
            .current_dir(&api)
            .status()
            .unwrap()
            .success()
    };
    let run = wsdeploy(&app, &["init", "--project", "demo"]).expect(0);
    run.check(
        run.stderr.contains(
            "../backend/.env, ../backend/.env.dev will hold secrets but git does not ignore them",
        ),
        "names each file when it may not ask",
    );
    assert!(
        !api.join(".gitignore").exists(),
        "nothing written without a yes"
    );

    std::fs::write(api.join(".gitignore"), "node_modules").unwrap();
    let run = wsdeploy(&app, &["init", "--yes", "--force", "--project", "demo"]).expect(0);
    run.check(
        run.stderr
            .contains("added ../backend/.env.dev to ../backend/.gitignore"),
        "says what it added",
    );
    assert!(ignored(".env") && ignored(".env.dev") && !ignored("server.js"));
    assert_eq!(
        std::fs::read_to_string(api.join(".gitignore")).unwrap(),
        "node_modules\n/.env\n/.env.dev\n"
    );
    let run = wsdeploy(&app, &["init", "--yes", "--force", "--project", "demo"]).expect(0);
    run.check(
        !run.stderr.contains("git does not ignore") && !run.stderr.contains("added"),
        "nothing more to do once ignored",
    );
}
