//! The code `wsdeploy init --backend ...` gives users: it type-checks against the real packages, it is what the
//! example runs, and its signature check agrees with the Lambdas' signer.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::util::{run_command as run, wsdeploy};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tsc(project: &Path) -> (bool, String) {
    let nest = root().join("templates/nestjs");
    assert!(
        nest.join("node_modules/typescript").is_dir(),
        "the NestJS template's packages are missing: `npm ci --prefix templates/nestjs` (scripts/test does it)"
    );
    run(Command::new("node")
        .arg(nest.join("node_modules/typescript/bin/tsc"))
        .args(["-p", project.to_str().unwrap(), "--noEmit"]))
}

#[test]
fn nestjs_template_type_checks_against_the_real_packages() {
    let (ok, out) = tsc(&root().join("templates/nestjs"));
    assert!(ok, "{out}");

    // The check has teeth: the same files with one wrong type in a call to the AWS SDK fail it.
    let t = tempfile::tempdir().unwrap();
    let nest = root().join("templates/nestjs");
    std::fs::copy(nest.join("tsconfig.json"), t.path().join("tsconfig.json")).unwrap();
    std::os::unix::fs::symlink(nest.join("node_modules"), t.path().join("node_modules")).unwrap();
    crate::support::util::copy_tree(&nest.join("src"), &t.path().join("src"), &[]);
    let service = t.path().join("src/socket/socket.service.ts");
    let text = std::fs::read_to_string(&service).unwrap();
    let broken = text.replace("ConnectionId: connectionId", "ConnectionId: 42");
    assert_ne!(text, broken);
    std::fs::write(&service, broken).unwrap();
    let (ok, out) = tsc(t.path());
    assert!(!ok, "tsc accepted a number as ConnectionId:\n{out}");
    assert!(
        out.contains("socket.service.ts(") && out.contains("error TS"),
        "{out}"
    );
}

/// The layout of examples/chat: env files beside the backend, the page in public/.
fn init_like_the_example(dir: &Path, extra: &[&str]) -> crate::support::util::Run {
    std::fs::create_dir_all(dir.join("public")).unwrap();
    let mut args = vec![
        "init",
        "--yes",
        "--project",
        "chat",
        "--region",
        "eu-west-3",
        "--backend-url",
        "http://127.0.0.1:3000",
        "--frontend-env",
        ".env.frontend",
        "--backend-env",
        ".env",
        "--frontend",
        "public",
        "--backend",
        "express",
    ];
    args.extend_from_slice(extra);
    wsdeploy(dir, &args).run()
}

#[test]
fn the_example_runs_exactly_what_init_writes() {
    let t = tempfile::tempdir().unwrap();
    let run = init_like_the_example(t.path(), &["--output", "json"]);
    run.check(run.code == 0, "init --backend express");
    let files = run.json()["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 8, "{files:?}");
    let example = root().join("examples/chat");
    for f in files {
        let rel = Path::new(f.as_str().unwrap())
            .strip_prefix(".")
            .unwrap_or(Path::new(f.as_str().unwrap()))
            .to_path_buf();
        let ours = std::fs::read(t.path().join(&rel)).unwrap();
        let theirs = std::fs::read(example.join(&rel))
            .unwrap_or_else(|e| panic!("examples/chat/{} is missing: {e}", rel.display()));
        assert!(
            ours == theirs,
            "examples/chat/{} differs from what `wsdeploy init --backend express` writes; copy templates/ again",
            rel.display()
        );
    }
}

#[test]
fn init_writes_nestjs_code_and_the_workflow_and_never_overwrites_yours() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path();
    assert!(run(Command::new("git").args(["init", "-q"]).current_dir(repo)).0);
    for d in ["infra", "api", "web/src"] {
        std::fs::create_dir_all(repo.join(d)).unwrap();
    }
    // A file of the user's where the template would go: init refuses and writes nothing.
    let mine = repo.join("api/src/socket/socket.service.ts");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "// mine\n").unwrap();
    let args = [
        "init",
        "--yes",
        "--project",
        "shop",
        "--region",
        "eu-west-3",
        "--frontend-env",
        "../web/.env",
        "--backend-env",
        "../api/.env",
        "--backend",
        "nestjs",
        "--github-actions",
    ];
    let refused = wsdeploy(&repo.join("infra"), &args).expect(2);
    assert!(
        refused.stderr.contains("socket.service.ts") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert!(!repo.join("infra/wsdeploy.yaml").exists());
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "// mine\n");

    std::fs::remove_file(&mine).unwrap();
    let done = wsdeploy(&repo.join("infra"), &args).expect(0);
    let nest = root().join("templates/nestjs/src/socket");
    for e in std::fs::read_dir(&nest).unwrap() {
        let name = e.unwrap().file_name();
        let written = repo.join("api/src/socket").join(&name);
        assert_eq!(
            std::fs::read(&written).ok(),
            std::fs::read(nest.join(&name)).ok(),
            "{}\n{}",
            written.display(),
            done.stdout
        );
    }
    assert!(
        repo.join("web/src/wsdeploy-socket.js").is_file(),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("rawBody: true"), "{}", done.stdout);

    // The workflow sits at the repository's root, where GitHub reads it: the template, with the wsdeploy action
    // pinned to the commit this wsdeploy was built from.
    let wf = std::fs::read_to_string(repo.join(".github/workflows/wsdeploy.yml")).unwrap();
    assert_eq!(wf, rendered_template());
}

/// The workflow template as `init` writes it: the action at this checkout's commit, the release of this version.
fn rendered_template() -> String {
    let (ok, out) = run(Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root()));
    assert!(ok, "{out}");
    let commit = out
        .lines()
        .find(|l| l.len() == 40 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap();
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    std::fs::read_to_string(root().join("templates/github/wsdeploy.yml"))
        .unwrap()
        .replace(
            "{{WSDEPLOY_ACTION}}",
            &format!("wsdeploy/wsdeploy@{commit} # {version}"),
        )
        .replace("{{WSDEPLOY_VERSION}}", &version)
}

/// What `wsdeploy init --github-actions` writes, in a temporary repository.
fn written_workflow() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    assert!(
        run(Command::new("git")
            .args(["init", "-q"])
            .current_dir(t.path()))
        .0
    );
    let args = [
        "init",
        "--yes",
        "--project",
        "shop",
        "--region",
        "eu-west-3",
        "--backend-url",
        "https://api.example.com",
        "--github-actions",
    ];
    wsdeploy(t.path(), &args).expect(0);
    let wf = t.path().join(".github/workflows/wsdeploy.yml");
    (t, wf)
}

/// The deploy job's steps, and the index of the first that uses `action`.
fn step_index(steps: &[serde_yaml::Value], action: &str) -> Option<usize> {
    steps.iter().position(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with(&format!("{action}@")))
    })
}

/// AWS credentials exist only in the deploy job, and only after everything is installed; nothing the workflow runs
/// can change under it: every action pinned to a commit (wsdeploy's own to the commit of the binary that wrote it),
/// the release pinned, nothing compiled.
#[test]
fn the_workflow_keeps_credentials_away_from_what_it_installs() {
    let (_t, wf) = written_workflow();
    let text = std::fs::read_to_string(&wf).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let mapping = |v: &serde_yaml::Value| v.as_mapping().cloned().unwrap_or_default();
    assert!(
        mapping(&doc["permissions"]).is_empty(),
        "no permission by default: {:?}",
        doc["permissions"]
    );
    let is_wsdeploy = |s: &serde_yaml::Value| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("wsdeploy/wsdeploy@"))
    };

    // The check job: no id-token, no AWS credentials; the config checked with the pinned release.
    let check = &doc["jobs"]["check"];
    assert_eq!(
        serde_yaml::to_string(&check["permissions"]).unwrap(),
        "contents: read\n",
        "the check job may read the code and nothing else"
    );
    let check_steps = check["steps"].as_sequence().unwrap();
    assert_eq!(
        step_index(check_steps, "aws-actions/configure-aws-credentials"),
        None
    );
    let validate = check_steps.iter().find(|s| is_wsdeploy(s)).unwrap();
    assert_eq!(validate["with"]["command"], "validate");

    // The deploy job: job-level OIDC, a protected environment, after the check; wsdeploy installed before the
    // credentials, which are taken right before `up`.
    let deploy = &doc["jobs"]["deploy"];
    assert_eq!(deploy["needs"], "check");
    assert_eq!(deploy["environment"], "production");
    assert_eq!(deploy["permissions"]["id-token"], "write");
    assert_eq!(deploy["permissions"]["contents"], "read");
    assert_eq!(mapping(&deploy["permissions"]).len(), 2);
    let steps = deploy["steps"].as_sequence().unwrap();
    let creds = step_index(steps, "aws-actions/configure-aws-credentials").unwrap();
    let ours: Vec<usize> = (0..steps.len())
        .filter(|&i| is_wsdeploy(&steps[i]))
        .collect();
    assert_eq!(ours.len(), 2, "install, then up: {steps:?}");
    assert_eq!(steps[ours[0]]["with"]["command"], "install");
    assert!(ours[0] < creds, "installed before the credentials exist");
    assert_eq!(
        creds + 1,
        ours[1],
        "credentials are taken right before `wsdeploy up`"
    );
    assert!(
        steps[ours[1]]["with"]["command"].is_null(),
        "the action's default command is up"
    );
    assert_eq!(steps[ours[1]]["id"], "up");
    assert_eq!(
        deploy["outputs"]["websocket_url"],
        "${{ steps.up.outputs.websocket_url }}"
    );
    assert!(
        steps.iter().all(|s| s["run"].is_null()),
        "the deploy job runs no script of its own: {steps:?}"
    );
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    for i in &ours {
        assert_eq!(steps[*i]["with"]["version"], version.as_str());
    }

    // Every action pinned to a full commit SHA with its tag beside it; every checkout keeps no token on disk.
    let mut actions = 0;
    for line in text
        .lines()
        .filter(|l| l.trim_start().trim_start_matches("- ").starts_with("uses:"))
    {
        let (reference, comment) = line.split_once(" # ").unwrap_or((line, ""));
        let sha = reference.rsplit('@').next().unwrap().trim();
        assert!(
            sha.len() == 40
                && sha.chars().all(|c| c.is_ascii_hexdigit())
                && comment.starts_with('v'),
            "pinned to a commit, its tag in a comment: {line}"
        );
        actions += 1;
    }
    assert_eq!(actions, 6, "{text}");
    for job in [check, deploy] {
        for s in job["steps"].as_sequence().unwrap() {
            if s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/checkout@"))
            {
                assert_eq!(s["with"]["persist-credentials"], false, "{s:?}");
            }
        }
    }
}

#[test]
fn the_workflow_template_follows_githubs_workflow_schema() {
    let validator = root().join("tests/node/node_modules/.bin/action-validator");
    assert!(
        validator.exists(),
        "action-validator is missing: `npm ci --prefix tests/node` (scripts/test does it)"
    );
    let (_t, template) = written_workflow();
    let (ok, out) = run(Command::new(&validator).arg(&template));
    assert!(ok, "{out}");
    // And it does reject: the same file with a misspelt job key.
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("wsdeploy.yml");
    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(&bad, text.replace("runs-on:", "runs_on:")).unwrap();
    let (ok, out) = run(Command::new(&validator).arg(&bad));
    assert!(!ok && out.contains("runs_on"), "{out}");
}

/// Runs `verifySignature` from `module` (a CommonJS file) over every reference vector of `lambdas/signature` and
/// asserts each verdict: the Express and NestJS verifiers agree with the Rust crate case by case.
fn assert_agrees_with_the_reference_vectors(module: &Path, node_path: Option<&Path>) {
    let vectors = root().join("lambdas/signature/tests/vectors.json");
    let script = "const { verifySignature } = require(process.argv[1]);\n\
        const { cases } = require(process.argv[2]);\n\
        const out = {};\n\
        for (const c of cases) {\n\
          const v = verifySignature(c.secrets, c.header, { method: c.method, target: c.target, body: Buffer.from(c.body), authorization: c.authorization }, c.now);\n\
          out[c.name] = v.ok ? v.scheme : v.code;\n\
        }\n\
        console.log(JSON.stringify(out));";
    let mut cmd = Command::new("node");
    if let Some(p) = node_path {
        cmd.env("NODE_PATH", p);
    }
    let (ok, out) = run(cmd.arg("-e").arg(script).arg(module).arg(&vectors));
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("{\""))
        .unwrap_or_default();
    let got: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}"));
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&vectors).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    assert!(cases.len() > 20);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        assert_eq!(
            got[name],
            c["result"],
            "{}: case {name:?}",
            module.display()
        );
    }
}

#[test]
fn express_signature_check_agrees_with_the_reference_vectors_and_the_lambdas_signer() {
    let script = root().join("templates/express/signature.js");
    assert_agrees_with_the_reference_vectors(&script, None);
    // And with what the Lambdas send right now, mid-rotation: signed with both secrets.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let target = "/socket-connections/TWegAcC4Eo%2B%2FHnA%3D";
    let req = wsdeploy_signature::Request {
        method: "DELETE",
        target,
        body: b"",
        authorization: "",
    };
    let header = wsdeploy_signature::sign(&[b"n3w", b"0ld"], now, &req);
    let check = |secrets: &str, method: &str| {
        let js = format!(
            "const {{ verifySignature }} = require({:?}); const v = verifySignature({secrets}, {header:?}, {{ method: {method:?}, target: {target:?} }}); console.log(v.ok ? v.scheme : v.code)",
            script.to_str().unwrap()
        );
        let out = Command::new("node").args(["-e", &js]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(check("'0ld'", "DELETE"), "v2");
    assert_eq!(check("['n3w', undefined]", "DELETE"), "v2");
    assert_eq!(check("'other'", "DELETE"), "mismatch");
    assert_eq!(check("'n3w'", "POST"), "mismatch");
}

/// A `node --test` file of tests/node run against `module` (a template copied as .mjs where it is ESM: Node 20
/// loads a .js file as CommonJS), given to it as $SUBJECT.
fn node_tests(file: &str, module: &Path) {
    let runner = root().join("tests/node");
    let (ok, out) = run(Command::new("node")
        .args(["--test", "--test-reporter=spec", file])
        .env("SUBJECT", module)
        .current_dir(&runner));
    assert!(ok, "{out}");
}

/// The frontend snippet's logic through a socket whose gateway side the test plays: the heartbeat, make-before-break
/// renewal, exponential backoff with jitter, resume with the last id, in-order delivery without duplicates, gaps,
/// refusals and cleartext URLs (tests/node/snippet.test.mjs says each).
#[test]
fn the_frontend_snippet_survives_the_gateways_limits() {
    let t = tempfile::tempdir().unwrap();
    let module = t.path().join("wsdeploy-socket.mjs");
    std::fs::copy(
        root().join("templates/frontend/wsdeploy-socket.js"),
        &module,
    )
    .unwrap();
    node_tests("snippet.test.mjs", &module);
}

/// The Express template's replay buffer: one id sequence per user, starting above any earlier one, bounded by
/// count and by age (tests/node/replay-buffer.test.mjs).
#[test]
fn the_express_replay_buffer_is_bounded_and_its_ids_never_go_back() {
    node_tests(
        "replay-buffer.test.mjs",
        &root().join("templates/express/replay-buffer.js"),
    );
}

/// A real `redis-server` (Debian's package) on a free loopback port, with nothing written to disk; stopped on drop.
struct Redis {
    child: std::process::Child,
    url: String,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): apt-get install redis-server (scripts/test does it)"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Redis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Both templates' topics, broadcast, presence, sweep and bounded fan-out: one list of behaviours, run on the Express
/// template's memory store, on its Redis store against a real redis-server, and on the NestJS template (compiled)
/// over TypeORM on sql.js; and two instances sharing Redis, and one database: a publish from one reaches a socket
/// registered through the other, and ids stay one sequence per user (tests/node/socket-service.test.mjs).
#[test]
fn both_templates_publish_tell_presence_and_sweep_on_every_store() {
    let redis = Redis::start();
    let nest = compiled_nestjs();
    let node_path = std::env::join_paths([
        root().join("examples/chat/node_modules"),
        root().join("templates/nestjs/node_modules"),
    ])
    .unwrap();
    let (ok, out) = run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "socket-service.test.mjs"])
        .env("SUBJECT", root().join("templates/express"))
        .env("NESTJS", nest.path())
        .env("REDIS_URL", &redis.url)
        .env("NODE_PATH", node_path)
        .current_dir(root().join("tests/node")));
    assert!(ok, "{out}");
    // The seven shared behaviours on each backend, and the two-instance one on Redis and on SQL.
    for (backend, passed) in [
        ("express memory", 8),
        ("express redis", 9),
        ("nestjs sql", 9),
    ] {
        assert_eq!(
            out.matches(&format!("✔ {backend}: ")).count(),
            passed,
            "every behaviour on {backend}:\n{out}"
        );
    }
}

/// The NestJS template compiled to JavaScript with its own TypeScript, in a temporary folder; its packages resolve
/// through NODE_PATH (templates/nestjs/node_modules).
fn compiled_nestjs() -> tempfile::TempDir {
    let nest = root().join("templates/nestjs");
    let out_dir = tempfile::tempdir().unwrap();
    let (ok, out) = run(Command::new("node")
        .arg(nest.join("node_modules/typescript/bin/tsc"))
        .args([
            "-p",
            nest.to_str().unwrap(),
            "--noEmit",
            "false",
            "--outDir",
        ])
        .arg(out_dir.path()));
    assert!(ok, "{out}");
    out_dir
}

/// The NestJS template's replay buffer on a real SQL engine (sql.js): consecutive ids per user, in-process sends
/// in order, two instances colliding on an id both kept, bounds by count and age with the sequence carried on
/// (tests/node/nestjs-replay.test.mjs).
#[test]
fn the_nestjs_replay_table_keeps_one_sequence_per_user_across_instances() {
    let out_dir = compiled_nestjs();
    let (ok, out) = run(Command::new("node")
        .args(["--test", "--test-reporter=spec", "nestjs-replay.test.mjs"])
        .env("SUBJECT", out_dir.path())
        .env("NODE_PATH", root().join("templates/nestjs/node_modules"))
        .current_dir(root().join("tests/node")));
    assert!(ok, "{out}");
}

/// The NestJS guard, compiled with the real packages and run: it looks at the signature before anything else, so
/// an unsigned call is a 401 even where the app's own set-up would fail (no raw body), and a signed one on a body
/// Nest did not keep raw is a 401 too, never a 500; and its verifier gives the reference vectors' verdicts.
#[test]
fn the_nestjs_guard_answers_401_first_and_agrees_with_the_reference_vectors() {
    let nest = root().join("templates/nestjs");
    let out_dir = compiled_nestjs();
    let guard = out_dir.path().join("socket/lambda-signature.guard.js");
    assert!(guard.is_file(), "{}", guard.display());
    // The compiled guard lives outside the template: its packages resolve through NODE_PATH.
    let script = "require('reflect-metadata');\n\
        const { LambdaSignatureGuard } = require(process.argv[1]);\n\
        const guard = new LambdaSignatureGuard({ signingSecret: 's'.repeat(43) });\n\
        const call = (method, headers, rawBody) => {\n\
          const req = { method, originalUrl: '/socket-connections', rawBody, header: (h) => headers[h.toLowerCase()] };\n\
          try { guard.canActivate({ switchToHttp: () => ({ getRequest: () => req }) }); return 'allowed'; }\n\
          catch (e) { return typeof e.getStatus === 'function' ? e.getStatus() : 'error: ' + e.message; }\n\
        };\n\
        console.log(JSON.stringify({\n\
          unsigned_without_raw_body: call('POST', {}, undefined),\n\
          malformed: call('POST', { 'x-wsdeploy-signature': 't=1,v1=zz' }, Buffer.from('{}')),\n\
          signed_without_raw_body: call('POST', { 'x-wsdeploy-signature': 't=' + Math.floor(Date.now() / 1000) + ',v2=' + '0'.repeat(64) }, undefined),\n\
          wrong: call('DELETE', { 'x-wsdeploy-signature': 't=' + Math.floor(Date.now() / 1000) + ',v2=' + '0'.repeat(64) }, undefined),\n\
        }));";
    let (ok, out) = run(Command::new("node")
        .env("NODE_PATH", nest.join("node_modules"))
        .arg("-e")
        .arg(script)
        .arg(&guard));
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("{\""))
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_default(),
        serde_json::json!({ "unsigned_without_raw_body": 401, "signed_without_raw_body": 401, "malformed": 401, "wrong": 401 }),
        "{out}"
    );
    assert_agrees_with_the_reference_vectors(&guard, Some(&nest.join("node_modules")));
}

/// The NestJS template refuses to start an app created without raw bodies (over which the guard verifies the
/// functions' signatures), rather than answer 401 to every call; with `{ rawBody: true }` it starts. Real Nest,
/// real Express and body-parser, the template compiled.
#[test]
fn the_nestjs_template_refuses_to_start_without_raw_bodies() {
    let nest = root().join("templates/nestjs");
    let out_dir = compiled_nestjs();
    let check = out_dir.path().join("socket/raw-body.check.js");
    let script = "require('reflect-metadata');\n\
        const { Module } = require('@nestjs/common');\n\
        const { NestFactory } = require('@nestjs/core');\n\
        const { RawBodyCheck } = require(process.argv[1]);\n\
        class App {}\n\
        Module({ providers: [RawBodyCheck] })(App);\n\
        (async () => {\n\
          const started = {};\n\
          for (const rawBody of [false, true]) {\n\
            const app = await NestFactory.create(App, { rawBody, logger: false });\n\
            try { await app.init(); started[rawBody] = 'started'; } catch (e) { started[rawBody] = e.message; }\n\
            await app.close().catch(() => {});\n\
          }\n\
          console.log(JSON.stringify(started));\n\
        })();";
    let (ok, out) = run(Command::new("node")
        .env("NODE_PATH", nest.join("node_modules"))
        .arg("-e")
        .arg(script)
        .arg(&check));
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("{\""))
        .unwrap_or_default();
    let started: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    assert_eq!(started["true"], "started", "{out}");
    assert!(
        started["false"]
            .as_str()
            .is_some_and(|m| m.contains("created without raw bodies")
                && m.contains("NestFactory.create(AppModule, { rawBody: true })")),
        "{out}"
    );
}

/// A node process killed when dropped.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wsdeploy dev` in front of an Express backend on the template (`store`, `sockets` and `app` are defined for
/// `routes`, which add the app's own endpoints), up once `ready` answers.
async fn express_backend_under_dev(
    routes: &str,
    ready: &str,
    (config, service_opts): (&str, &str),
    dev_args: &[&str],
) -> (crate::support::devkit::Dev, String, Node) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backend = format!("http://127.0.0.1:{port}");
    let dev = crate::support::devkit::Dev::start(&backend, config, dev_args);
    let server = dev.dir.path().join("backend/server.js");
    std::fs::write(
        &server,
        format!(
            "const express = require('express');\n\
             const {{ socketConnections, SocketService, MemoryConnectionStore }} = require(process.env.TEMPLATE);\n\
             process.loadEnvFile(require('node:path').join(__dirname, '.env'));\n\
             const store = new MemoryConnectionStore();\n\
             const sockets = new SocketService(store, process.env, JSON.parse(process.env.SERVICE_OPTS || '{{}}'));\n\
             const app = express();\n\
             {routes}\
             app.listen(Number(process.env.PORT), '127.0.0.1');\n"
        ),
    )
    .unwrap();
    let node = Node(
        std::process::Command::new("node")
            .arg(&server)
            .env("PORT", port.to_string())
            .env("TEMPLATE", root().join("templates/express"))
            .env("SERVICE_OPTS", service_opts)
            .env("NODE_PATH", root().join("examples/chat/node_modules"))
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reqwest::get(format!("{backend}{ready}")).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the backend did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (dev, backend, node)
}

/// A socket on `dev` per user, each authenticated with the token `tok-{user}`.
async fn authed_sockets(
    dev: &crate::support::devkit::Dev,
    users: &[&str],
) -> Vec<crate::support::devkit::Ws> {
    use futures_util::SinkExt;
    let mut sockets = vec![];
    for user in users {
        let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            format!(r#"{{"action":"auth","token":"tok-{user}"}}"#).into(),
        ))
        .await
        .unwrap();
        assert_eq!(
            crate::support::devkit::next_text(&mut ws).await,
            r#"{"ok":true,"type":"auth"}"#,
            "{}",
            dev.output()
        );
        sockets.push(ws);
    }
    sockets
}

/// Topics end to end, node and `wsdeploy dev` and the real functions: a publish reaches exactly the topic's
/// subscribers' sockets (with the topic named), counted; presence events reach the other subscribers when a user
/// comes online in the topic and when its socket closes (the real `$disconnect`); `presence()` lists who is online.
#[tokio::test(flavor = "multi_thread")]
async fn the_express_template_publishes_to_a_topics_sockets_and_tells_presence_through_dev() {
    use crate::support::devkit::next_text;
    use futures_util::SinkExt;
    let (dev, backend, _node) = express_backend_under_dev(
        "app.use(socketConnections({ express, store, sockets, signingSecret: process.env.WS_SIGNING_SECRET,\n\
           userFromToken: (t) => t.replace(/^tok-/, '') }));\n\
         app.post('/subscribe/:user/:topic', async (req, res) => { await sockets.subscribe(req.params.user, req.params.topic); res.end(); });\n\
         app.post('/publish/:topic', express.json(), async (req, res) => res.json(await sockets.publish(req.params.topic, req.body)));\n\
         app.get('/presence/:topic', async (req, res) => res.json((await sockets.presence(req.params.topic)).sort()));\n",
        "/presence/none",
        ("", ""),
        &[],
    )
    .await;
    let http = reqwest::Client::new();
    let mut sockets = authed_sockets(&dev, &["alice", "bob", "carol"]).await;
    let [alice, bob, carol] = &mut sockets[..] else {
        unreachable!()
    };
    let call = |path: String| http.post(format!("{backend}{path}")).send();
    call("/subscribe/bob/room-1".into()).await.unwrap();
    call("/subscribe/alice/room-1".into()).await.unwrap();
    let json = |t: String| serde_json::from_str::<serde_json::Value>(&t).unwrap();
    assert_eq!(
        json(next_text(bob).await),
        serde_json::json!({ "type": "presence", "topic": "room-1", "userId": "alice", "online": true })
    );
    let result = http
        .post(format!("{backend}/publish/room-1"))
        .header("content-type", "application/json")
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let result = json(result);
    assert_eq!(
        result,
        serde_json::json!({ "delivered": 2, "gone": 0, "failed": 0 })
    );
    for ws in [&mut *alice, &mut *bob] {
        let got = json(next_text(ws).await);
        assert_eq!(
            (got["type"].as_str(), got["topic"].as_str()),
            (Some("push"), Some("room-1")),
            "{got}"
        );
        assert_eq!(got["data"], serde_json::json!({ "text": "hi" }));
    }
    let presence = |topic: &str| {
        let url = format!("{backend}/presence/{topic}");
        async move {
            serde_json::from_str::<Vec<String>>(
                &reqwest::get(url).await.unwrap().text().await.unwrap(),
            )
            .unwrap()
        }
    };
    assert_eq!(presence("room-1").await, ["alice", "bob"]);
    alice.close(None).await.unwrap();
    assert_eq!(
        json(next_text(bob).await),
        serde_json::json!({ "type": "presence", "topic": "room-1", "userId": "alice", "online": false }),
        "{}",
        dev.output()
    );
    assert_eq!(presence("room-1").await, ["bob"]);
    // Carol, in no topic, got nothing but her auth answer.
    carol
        .send(tokio_tungstenite::tungstenite::Message::Text(
            r#"{"action":"ping"}"#.into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_text(carol).await, r#"{"action":"pong"}"#);
}

/// `fanout: true` end to end under `dev`: the backend's env file names the fan-out function and dev's Lambda API,
/// and the template hands a publish to at least `threshold` sockets to the real function, which posts through
/// dev's `@connections`: every socket gets the message once, a socket found gone comes back and is forgotten, and
/// a smaller publish is posted directly.
#[tokio::test(flavor = "multi_thread")]
async fn the_express_template_hands_large_publishes_to_the_fanout_function_under_dev() {
    use crate::support::devkit::next_text;
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (dev, backend, _node) = express_backend_under_dev(
        "app.use(socketConnections({ express, store, sockets, signingSecret: process.env.WS_SIGNING_SECRET,\n\
           userFromToken: async (t) => { const u = t.replace(/^tok-/, ''); await sockets.subscribe(u, u < 'u2' ? 'small' : 'big'); return u; } }));\n\
         app.post('/publish/:topic', async (req, res) => res.json(await sockets.publish(req.params.topic, { n: 1 })));\n\
         app.get('/ready', (req, res) => res.end());\n",
        "/ready",
        ("fanout: true\n", r#"{"fanout":{"threshold":3},"presence":false}"#),
        &["--lose-disconnects", "100"],
    )
    .await;
    assert_eq!(dev.env["WS_FANOUT_FUNCTION"], "chat-local-fanout");
    assert!(
        dev.env["WS_FANOUT_FUNCTION_ENDPOINT"].starts_with("http://127.0.0.1:"),
        "{:?}",
        dev.env
    );
    let mut sockets = authed_sockets(&dev, &["u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7"]).await;
    // u7 leaves without the backend hearing of it: the function finds it gone.
    let mut left = sockets.pop().unwrap();
    left.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dev.output().contains("$disconnect not delivered") {
        assert!(std::time::Instant::now() < deadline, "{}", dev.output());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let publish = |topic: &'static str| {
        let url = format!("{backend}/publish/{topic}");
        async move {
            let text = reqwest::Client::new()
                .post(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            serde_json::from_str::<serde_json::Value>(&text).unwrap()
        }
    };
    assert_eq!(
        publish("big").await,
        serde_json::json!({ "delivered": 5, "gone": 1, "failed": 0 }),
        "{}",
        dev.output()
    );
    let invokes = |out: &str| out.matches("lambda invoke chat-local-fanout").count();
    assert_eq!(invokes(&dev.output()), 1, "{}", dev.output());
    assert_eq!(
        publish("big").await,
        serde_json::json!({ "delivered": 5, "gone": 0, "failed": 0 }),
        "the gone one was forgotten"
    );
    assert_eq!(
        publish("small").await,
        serde_json::json!({ "delivered": 2, "gone": 0, "failed": 0 })
    );
    assert_eq!(
        invokes(&dev.output()),
        2,
        "two sockets are posted directly:\n{}",
        dev.output()
    );
    for (i, ws) in sockets.iter_mut().enumerate() {
        let times = if i < 2 { 1 } else { 2 };
        for _ in 0..times {
            let got: serde_json::Value = serde_json::from_str(&next_text(ws).await).unwrap();
            assert_eq!(
                (got["type"].as_str(), &got["data"]),
                (Some("push"), &serde_json::json!({ "n": 1 })),
                "{got}"
            );
        }
        ws.send(Message::Text(r#"{"action":"ping"}"#.into()))
            .await
            .unwrap();
        assert_eq!(
            next_text(ws).await,
            r#"{"action":"pong"}"#,
            "socket {i} got each message once"
        );
    }
}

/// A socket whose `$disconnect` never reaches the backend (`dev --lose-disconnects 100`, as AWS sometimes loses it)
/// stays in presence until the sweep asks `@connections`, which answers 410: then it is forgotten and the topic's
/// other subscribers are told. Node, dev and the real functions.
#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_forgets_a_socket_whose_disconnect_was_lost() {
    use crate::support::devkit::next_text;
    let (dev, backend, _node) = express_backend_under_dev(
        "app.use(socketConnections({ express, store, sockets, signingSecret: process.env.WS_SIGNING_SECRET,\n\
           userFromToken: async (t) => { const u = t.replace(/^tok-/, ''); await sockets.subscribe(u, 'room'); return u; } }));\n\
         app.post('/sweep', async (req, res) => res.json(await sockets.sweep({ idleMs: 0 })));\n\
         app.get('/presence', async (req, res) => res.json((await sockets.presence('room')).sort()));\n",
        "/presence",
        ("", ""),
        &["--lose-disconnects", "100"],
    )
    .await;
    let mut sockets = authed_sockets(&dev, &["alice", "bob"]).await;
    let [alice, bob] = &mut sockets[..] else {
        unreachable!()
    };
    let presence = || {
        let url = format!("{backend}/presence");
        async move {
            serde_json::from_str::<Vec<String>>(
                &reqwest::get(url).await.unwrap().text().await.unwrap(),
            )
            .unwrap()
        }
    };
    assert_eq!(presence().await, ["alice", "bob"]);
    alice.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !dev.output().contains("$disconnect not delivered") {
        assert!(std::time::Instant::now() < deadline, "{}", dev.output());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        presence().await,
        ["alice", "bob"],
        "without its $disconnect, the backend still counts her"
    );
    let swept = reqwest::Client::new()
        .post(format!("{backend}/sweep"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&swept).unwrap(),
        serde_json::json!({ "checked": 2, "gone": 1 })
    );
    assert_eq!(presence().await, ["bob"]);
    let told: serde_json::Value = serde_json::from_str(&next_text(bob).await).unwrap();
    // Bob first heard alice come online (she subscribed after his socket authenticated), then go.
    let told = if told["online"] == true {
        serde_json::from_str(&next_text(bob).await).unwrap()
    } else {
        told
    };
    assert_eq!(
        told,
        serde_json::json!({ "type": "presence", "topic": "room", "userId": "alice", "online": false })
    );
}

/// A backend whose only user is alice (token `good-token`), and `/bound`: her connections.
const ALICE_BACKEND: &str =
    "app.use(socketConnections({ express, store, sockets, signingSecret: process.env.WS_SIGNING_SECRET,\n\
       userFromToken: (t) => (t === 'good-token' ? 'alice' : null) }));\n\
     app.get('/bound', async (req, res) => res.json(await store.forUser('alice')));\n";

/// `auth_timeout_s`, end to end: the connect function runs on `$connect` and reports the socket as pending, and the
/// template closes it at the deadline through `@connections` unless its `auth` went through. A socket that sends
/// only heartbeats is closed; one that authenticated outlives the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_socket_that_never_authenticates_is_closed_at_the_auth_timeout() {
    use crate::support::devkit::{close_code, next_text};
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let (dev, backend, _node) =
        express_backend_under_dev(ALICE_BACKEND, "/bound", ("auth_timeout_s: 2\n", ""), &[]).await;
    let (mut silent, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let (mut authed, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let started = std::time::Instant::now();
    authed
        .send(Message::Text(
            r#"{"action":"auth","token":"good-token"}"#.into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut authed).await,
        r#"{"ok":true,"type":"auth"}"#,
        "{}",
        dev.output()
    );
    // The heartbeat, which would otherwise keep it open for two hours.
    silent
        .send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut silent).await, r#"{"action":"pong"}"#);
    let code = close_code(&mut silent, 10).await;
    let waited = started.elapsed();
    assert!(
        code.is_some(),
        "the silent socket was not closed:\n{}",
        dev.output()
    );
    assert!(
        waited >= std::time::Duration::from_millis(1900),
        "closed after {waited:?}, before its 2 s were up"
    );
    assert!(dev.output().contains("$connect"), "{}", dev.output());
    authed
        .send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut authed).await,
        r#"{"action":"pong"}"#,
        "the authenticated socket stays"
    );
    let bound: Vec<String> = serde_json::from_str(
        &reqwest::get(format!("{backend}/bound"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(bound.len(), 1, "{bound:?}");
}

/// The Express template's backend (socketConnections with a SocketService) against `wsdeploy dev`, node and all
/// real. Holding the signing secret is not enough to hijack a socket: a signed POST binds a connection only while
/// it is open and from the signed address, and a signed DELETE forgets it only once it is closed; the real
/// functions' calls go through.
#[tokio::test(flavor = "multi_thread")]
async fn the_express_template_binds_only_open_sockets_from_the_signed_address() {
    use crate::support::devkit::next_text;
    use futures_util::SinkExt;
    let (dev, backend, _node) =
        express_backend_under_dev(ALICE_BACKEND, "/bound", ("", ""), &[]).await;
    let http = reqwest::Client::new();
    let bound = || async {
        http.get(format!("{backend}/bound"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
            .and_then(|t| serde_json::from_str::<Vec<String>>(&t).ok())
    };

    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"action":"auth","token":"good-token"}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"ok":true,"type":"auth"}"#,
        "{}",
        dev.output()
    );
    let ids = bound().await.unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0].clone();

    // Calls signed with the real secret, as someone who learnt it would make them.
    let secret = dev.env["WS_SIGNING_SECRET"].clone();
    let signed = |method: reqwest::Method, target: String, body: String| {
        let authorization = "Bearer good-token";
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let req = wsdeploy_signature::Request {
            method: method.as_str(),
            target: &target,
            body: body.as_bytes(),
            authorization,
        };
        let signature = wsdeploy_signature::sign(&[secret.as_bytes()], now, &req);
        http.request(method, format!("{backend}{target}"))
            .header("authorization", authorization)
            .header("content-type", "application/json")
            .header("x-wsdeploy-signature", signature)
            .body(body)
            .send()
    };
    let post = |connection: &str, ip: &str| {
        signed(
            reqwest::Method::POST,
            "/socket-connections".into(),
            serde_json::json!({ "connectionId": connection, "sourceIp": ip }).to_string(),
        )
    };
    let elsewhere = post(&id, "203.0.113.9").await.unwrap();
    assert_eq!(
        elsewhere.status(),
        403,
        "another address binds the open socket"
    );
    let closed = post("AAAAAAAAAAAAAAA=", "127.0.0.1").await.unwrap();
    assert_eq!(closed.status(), 403, "a socket that is not open is bound");
    let encoded = id
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let forget = signed(
        reqwest::Method::DELETE,
        format!("/socket-connections/{encoded}"),
        String::new(),
    )
    .await
    .unwrap();
    assert_eq!(forget.status(), 409, "an open socket is forgotten");
    assert_eq!(bound().await.unwrap(), vec![id.clone()]);

    ws.close(None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !bound().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the real $disconnect did not forget the closed socket\n{}",
            dev.output()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
