//! wsdeploy as a release delivers it: the functions prebuilt inside the binary (`up` and `dev` with no Rust
//! toolchain, cargo-lambda or zig on PATH), the npm packages installed from their tarballs with no registry, the
//! GitHub Action's install-and-run script against a local release and moto, and the release workflow's schema.
//! The binary under test is the suite's own, which scripts/test builds as a release is built (`scripts/release`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::Digest;

use crate::deploy::{App, BASE};
use crate::support::devkit::{chat_example, pids_of_exe, wait_ready};
use crate::support::moto::Moto;
use crate::support::proxy::Proxy;
use crate::support::util::{copy_tree, run_command as run, wsdeploy, BIN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder scripts/test embedded the functions from.
fn prebuilt() -> PathBuf {
    let dir = option_env!("WSDEPLOY_PREBUILT_LAMBDAS").unwrap_or_else(|| {
        panic!("this test binary was built without WSDEPLOY_PREBUILT_LAMBDAS: run the suite with scripts/test, which prebuilds the functions and embeds them as a release does")
    });
    PathBuf::from(dir)
}

/// A folder for PATH holding only `tools` (links to this machine's): cargo, rustc, zig and python cannot be found.
fn only(tools: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for tool in tools {
        let found = std::env::split_paths(&std::env::var_os("PATH").unwrap())
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is not on PATH"));
        std::os::unix::fs::symlink(found.canonicalize().unwrap(), dir.path().join(tool)).unwrap();
    }
    dir
}

fn code_sha256(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(bytes))
}

/// `scripts/release package` of the suite's binary under the name of the Linux x86_64 release, copied into `dist`.
/// Packaged once per build of the binary (gzip -9 of a debug build takes seconds) and shared by the tests, each of
/// which runs in its own process: a lock file orders them, a stamp of the binary says when to package again.
fn release_dir(dist: &Path) {
    let shared = root().join("target/test-release");
    std::fs::create_dir_all(&shared).unwrap();
    let lock = std::fs::File::create(shared.join(".lock")).unwrap();
    lock.lock().unwrap();
    let meta = std::fs::metadata(BIN).unwrap();
    let stamp = format!("{} {:?}", meta.len(), meta.modified().unwrap());
    let packaged = shared.join("dist");
    if std::fs::read_to_string(shared.join("stamp"))
        .ok()
        .as_deref()
        != Some(stamp.as_str())
    {
        let _ = std::fs::remove_dir_all(&packaged);
        let (ok, out) = run(Command::new(root().join("scripts/release")).args([
            "package",
            BIN,
            "x86_64-unknown-linux-musl",
            packaged.to_str().unwrap(),
        ]));
        assert!(ok, "{out}");
        std::fs::write(shared.join("stamp"), &stamp).unwrap();
    }
    copy_tree(&packaged, dist, &[]);
}

#[test]
fn the_binary_carries_the_functions_of_its_own_sources() {
    let version = wsdeploy(Path::new("."), &["--version"]).expect(0);
    version.check(
        version.stdout.contains("prebuilt for x86_64"),
        "--version lists the embedded architectures",
    );
    // With nothing on PATH and an empty cache: the embedded zips, byte for byte.
    let cache = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let built = wsdeploy(
        cache.path(),
        &["build", "--arch", "x86_64", "--output", "json"],
    )
    .env("PATH", empty.path())
    .env("WSDEPLOY_CACHE_DIR", cache.path())
    .expect(0)
    .json();
    assert_eq!(built["origin"], "embedded", "{built}");
    for f in ["connect", "disconnect"] {
        let embedded = std::fs::read(prebuilt().join(format!("lambda-x86_64/{f}.zip"))).unwrap();
        assert_eq!(
            built["functions"][f]["code_sha256"],
            code_sha256(&embedded).as_str(),
            "{f}"
        );
    }
    // arm64 is not embedded here: from source, and the missing tools are named with the reason.
    let arm = wsdeploy(cache.path(), &["build", "--arch", "arm64"])
        .env("PATH", empty.path())
        .env("WSDEPLOY_CACHE_DIR", cache.path())
        .expect(1);
    arm.check(
        arm.stderr
            .contains("from source (this wsdeploy carries none prebuilt for arm64")
            && arm
                .stderr
                .contains("cargo-lambda: `pip install cargo-lambda`"),
        "says why it builds from source and what it needs",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn up_deploys_the_embedded_functions_with_no_toolchain_on_path() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let empty = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let up = app
        .run(&["up", "--output", "json"])
        .env("PATH", empty.path())
        .env("WSDEPLOY_CACHE_DIR", cache.path())
        .expect(0);
    up.check(
        up.stderr.contains("prebuilt (embedded in wsdeploy)"),
        "the progress says where the functions came from",
    );
    let lambda = aws_sdk_lambda::Client::new(&moto.sdk_config().await);
    for f in ["connect", "disconnect"] {
        let got = lambda
            .get_function()
            .function_name(format!("chat-dev-{f}"))
            .send()
            .await
            .unwrap();
        let embedded = std::fs::read(prebuilt().join(format!("lambda-x86_64/{f}.zip"))).unwrap();
        assert_eq!(
            got.configuration().unwrap().code_sha256(),
            Some(code_sha256(&embedded).as_str()),
            "{f}: the embedded zip is what Lambda runs"
        );
    }
    // Asked to build from source with no toolchain: nothing changes, and the message says what to install.
    let forced = app
        .run(&["up", "--build-from-source"])
        .env("PATH", empty.path())
        .env("WSDEPLOY_CACHE_DIR", cache.path())
        .expect(1);
    forced.check(
        forced
            .stderr
            .contains("from source (--build-from-source) needs tools this machine lacks")
            && forced.stderr.contains("https://rustup.rs"),
        "one message naming the tools",
    );
    app.run(&["teardown", "--yes"])
        .env("PATH", empty.path())
        .expect(0);
}

/// `npm pack` of each package made by `scripts/release npm`, into `tarballs`.
fn pack_npm(dist: &Path, work: &Path) -> Vec<PathBuf> {
    let packages = work.join("npm");
    let (ok, out) = run(Command::new(root().join("scripts/release")).args([
        "npm",
        dist.to_str().unwrap(),
        "0.1.0",
        packages.to_str().unwrap(),
    ]));
    assert!(ok, "{out}");
    let tarballs = work.join("tarballs");
    std::fs::create_dir_all(&tarballs).unwrap();
    for pkg in ["wsdeploy", "linux-x64"] {
        let (ok, out) = run(Command::new("npm")
            .args(["pack", "--silent", "--pack-destination"])
            .arg(&tarballs)
            .current_dir(packages.join(pkg)));
        assert!(ok, "{out}");
    }
    let mut got: Vec<PathBuf> = std::fs::read_dir(&tarballs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    got
}

/// The dev process group's output files, for a failure report.
fn report(dir: &Path) -> String {
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
    format!(
        "command: (cd {} && npx wsdeploy dev -c examples/chat/wsdeploy.yaml --port 0 --output json)\n--- stdout ---\n{}\n--- stderr ---\n{}",
        dir.display(),
        read("dev.out"),
        read("dev.err")
    )
}

/// One HTTP GET on loopback; the status line and body.
fn http_get(url: &str) -> String {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn npx_wsdeploy_installs_from_tarballs_and_runs_dev_with_no_toolchain() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    release_dir(&dist);
    let tarballs = pack_npm(&dist, work.path());
    // A project with no registry: npm installs the two tarballs, and the launcher's other optional dependencies
    // (the other platforms) are skipped.
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(project.join("package.json"), "{\"private\":true}\n").unwrap();
    let npm_cache = work.path().join("npm-cache");
    let (ok, out) = run(Command::new("npm")
        .args(["install", "--offline", "--no-audit", "--no-fund"])
        .args(&tarballs)
        .env("npm_config_cache", &npm_cache)
        .current_dir(&project));
    assert!(ok, "{out}");
    let tools = only(&["node", "npm", "npx", "sh"]);
    let (ok, out) = run(Command::new("npx")
        .args(["--offline", "wsdeploy", "--version"])
        .env("PATH", tools.path())
        .env("npm_config_cache", &npm_cache)
        .current_dir(&project));
    assert!(
        ok && out.contains("wsdeploy 0.1.0") && out.contains("prebuilt for x86_64"),
        "{out}"
    );

    // The example, as a newcomer has it after its own `npm install` (no registry here either), under `npx wsdeploy
    // dev`: the functions are the embedded ones, the page answers, the gateway takes a WebSocket.
    chat_example(&project, &[".env", ".env.frontend"]);
    let cache = tempfile::tempdir().unwrap();
    let mut dev = Command::new("npx")
        .args([
            "--offline",
            "wsdeploy",
            "dev",
            "-c",
            "examples/chat/wsdeploy.yaml",
            "--port",
            "0",
            "--output",
            "json",
        ])
        .env("PATH", tools.path())
        .env("npm_config_cache", &npm_cache)
        .env("npm_config_offline", "true")
        .env("WSDEPLOY_CACHE_DIR", cache.path())
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .current_dir(&project)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(project.join("dev.out")).unwrap())
        .stderr(std::fs::File::create(project.join("dev.err")).unwrap())
        .spawn()
        .unwrap();
    wait_ready(
        &mut dev,
        &project.join("dev.err"),
        Duration::from_secs(120),
        || report(&project),
    );
    let doc: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(project.join("dev.out"))
            .unwrap()
            .trim(),
    )
    .unwrap_or_else(|e| panic!("{e}:\n{}", report(&project)));
    assert_eq!(
        doc["functions"],
        "prebuilt (embedded in wsdeploy)",
        "{}",
        report(&project)
    );
    let page = http_get(doc["open"].as_str().unwrap());
    assert!(
        page.starts_with("HTTP/1.1 200"),
        "{page}\n{}",
        report(&project)
    );
    let (ws, _) = tokio_tungstenite::connect_async(doc["websocket_url"].as_str().unwrap())
        .await
        .unwrap_or_else(|e| panic!("{e}:\n{}", report(&project)));
    drop(ws);
    // SIGTERM to npx, as a process manager sends it. npm does not pass it on through its shell; the launcher sees
    // itself orphaned and stops wsdeploy, which closes its sockets and stops the example's backend.
    crate::support::devkit::terminate(&mut dev, || report(&project));
    let binary = project.join("node_modules/@wsdeploy/linux-x64/bin/wsdeploy");
    let deadline = Instant::now() + Duration::from_secs(40);
    while !pids_of_exe(&binary).is_empty() {
        assert!(
            Instant::now() < deadline,
            "wsdeploy dev still runs after npx was stopped:\n{}",
            report(&project)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = std::fs::read_to_string(project.join("dev.err")).unwrap();
    assert!(
        err.contains("stopped: every socket closed"),
        "{}",
        report(&project)
    );
}

/// The action as a workflow pinned to one commit of it gets it: the script, and the checksums that commit holds
/// (`committed`: the SHA256SUMS the release workflow committed for v0.1.0; None: a commit older than that release).
fn checkout(work: &Path, committed: Option<&Path>) -> PathBuf {
    let dir = work.join(format!("action-{}", committed.is_some()));
    if dir.exists() {
        return dir;
    }
    std::fs::create_dir_all(dir.join("action/checksums")).unwrap();
    std::fs::copy(root().join("action/run.sh"), dir.join("action/run.sh")).unwrap();
    if let Some(sums) = committed {
        std::fs::copy(sums, dir.join("action/checksums/v0.1.0")).unwrap();
    }
    dir
}

/// Runs the action's script as GitHub would (its environment), for `app`, against the release in `dist`, from an
/// action commit that holds the release's checksums.
fn action(app: &App, dist: &Path, runner: &Path, extra: &[(&str, &str)]) -> (bool, String) {
    let pinned = checkout(runner.parent().unwrap(), Some(&dist.join("SHA256SUMS")));
    action_from(&pinned, app, dist, runner, extra)
}

fn action_from(
    checkout: &Path,
    app: &App,
    dist: &Path,
    runner: &Path,
    extra: &[(&str, &str)],
) -> (bool, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(checkout.join("action/run.sh"))
        .current_dir(&app.dir)
        .env("WSDEPLOY_ACTION_STAGE", "dev")
        .env("WSDEPLOY_ACTION_VERSION", "v0.1.0")
        .env(
            "WSDEPLOY_ACTION_BASE_URL",
            format!("file://{}", dist.display()),
        )
        .env("RUNNER_TEMP", runner)
        .env("GITHUB_OUTPUT", runner.join("output"))
        .env("GITHUB_STEP_SUMMARY", runner.join("summary"))
        .env("GITHUB_PATH", runner.join("path"))
        .env("NO_COLOR", "1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("WSDEPLOY_CACHE_DIR", runner.join("cache"));
    for (k, _) in std::env::vars() {
        if k.starts_with("WSDEPLOY_PREBUILT") || k == "AWS_PROFILE" || k == "GH_TOKEN" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    run(&mut cmd)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_action_installs_the_pinned_release_and_deploys() {
    let moto = Moto::start();
    let proxy = Proxy::start(&moto.endpoint).await;
    let app = App::new(&proxy.endpoint, BASE);
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    release_dir(&dist);
    let runner = work.path().join("runner");
    std::fs::create_dir_all(&runner).unwrap();
    let endpoint = [("AWS_ENDPOINT_URL", proxy.endpoint.as_str())];
    let (ok, out) = action(&app, &dist, &runner, &endpoint);
    assert!(ok, "{out}");
    let outputs = std::fs::read_to_string(runner.join("output")).unwrap();
    let get = |k: &str| {
        outputs
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k} in $GITHUB_OUTPUT:\n{outputs}\n{out}"))
            .to_string()
    };
    let api_id = get("api_id");
    assert!(!api_id.is_empty(), "{outputs}");
    assert_eq!(
        get("websocket_url"),
        format!("wss://{api_id}.execute-api.eu-west-3.amazonaws.com/dev")
    );
    assert!(
        get("management_endpoint").starts_with("https://"),
        "{outputs}"
    );
    let summary = std::fs::read_to_string(runner.join("summary")).unwrap();
    assert!(
        summary.contains(&format!("| API id | `{api_id}` |")) && summary.contains("v0.1.0"),
        "{summary}"
    );
    let path = std::fs::read_to_string(runner.join("path")).unwrap();
    assert!(
        Path::new(path.trim()).join("wsdeploy").is_file(),
        "wsdeploy is on the job's PATH for later steps: {path}"
    );
    let backend = crate::support::util::env_file(&app.backend_env);
    for secret in ["WS_API_SECRET_ACCESS_KEY", "WS_SIGNING_SECRET"] {
        let value = &backend[secret];
        assert!(value.len() >= 20, "{secret} is in the backend's env file");
        assert!(
            !out.contains(value.as_str())
                && !outputs.contains(value.as_str())
                && !summary.contains(value.as_str()),
            "{secret} in the step's output:\n{out}"
        );
    }
    // A second step of the job (`up` again) reuses the installed binary: nothing to change.
    std::fs::remove_dir_all(&dist).unwrap();
    let (ok, again) = action(&app, &dist, &runner, &endpoint);
    assert!(ok, "installed once per runner:\n{again}");
    // ... but not once a step in between changed it.
    let installed = Path::new(path.trim()).join("wsdeploy");
    let original = std::fs::read(&installed).unwrap();
    let mut changed = original.clone();
    changed.extend_from_slice(b"#!/bin/sh\necho pwned\n");
    std::fs::write(&installed, &changed).unwrap();
    let (ok, out) = action(&app, &dist, &runner, &endpoint);
    assert!(
        !ok && out.contains("is not the binary of the verified release")
            && out.contains("Nothing was run.")
            && !out.contains("pwned"),
        "{out}"
    );
    std::fs::write(&installed, &original).unwrap();
    let (ok, out) = action(
        &app,
        &dist,
        &runner,
        &[
            ("AWS_ENDPOINT_URL", proxy.endpoint.as_str()),
            ("WSDEPLOY_ACTION_COMMAND", "teardown"),
        ],
    );
    assert!(
        !ok && out.contains("up, plan, validate or install"),
        "{out}"
    );
    app.run(&["teardown", "--yes"]).expect(0);
}

#[test]
fn the_action_refuses_an_archive_whose_checksum_differs() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    release_dir(&dist);
    // Nothing to reach: a run that got past the checksum would fail on AWS, not on the checksum.
    let app = App::new("http://127.0.0.1:9", BASE);
    let runner = work.path().join("runner");
    std::fs::create_dir_all(&runner).unwrap();

    // A pinned checksum that is not the archive's.
    let (ok, out) = action(
        &app,
        &dist,
        &runner,
        &[("WSDEPLOY_ACTION_SHA256", &"0".repeat(64))],
    );
    assert!(
        !ok && out.contains("the sha256 input pins") && out.contains("Nothing was run."),
        "{out}"
    );

    // An archive changed after its checksum was listed.
    let archive = dist.join("wsdeploy-x86_64-unknown-linux-musl.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&archive, bytes).unwrap();
    let (ok, out) = action(&app, &dist, &runner, &[]);
    assert!(
        !ok && out.contains("::error title=wsdeploy::checksum mismatch for wsdeploy-x86_64-unknown-linux-musl.tar.gz"),
        "{out}"
    );
    assert!(
        !runner
            .join("wsdeploy-v0.1.0-x86_64-unknown-linux-musl")
            .exists(),
        "nothing installed"
    );
    assert!(
        std::fs::read_to_string(runner.join("output"))
            .unwrap_or_default()
            .is_empty(),
        "no outputs"
    );
}

/// The release's SHA256SUMS sits beside its archives, so whoever replaces an archive can regenerate it: the action
/// trusts only what comes from outside the release. The checksums committed into the action's repository when the
/// release was published refuse a replaced archive; an action commit without them refuses the version unless the
/// sha256 input (or a verified attestation) vouches for it.
#[test]
fn the_action_trusts_checksums_from_outside_the_release_only() {
    let work = tempfile::tempdir().unwrap();
    let dist = work.path().join("dist");
    release_dir(&dist);
    let published = work.path().join("published-SHA256SUMS");
    std::fs::copy(dist.join("SHA256SUMS"), &published).unwrap();
    let app = App::new("http://127.0.0.1:9", BASE);
    let runner = work.path().join("runner");
    std::fs::create_dir_all(&runner).unwrap();
    let name = "wsdeploy-x86_64-unknown-linux-musl.tar.gz";
    let installed = runner.join("wsdeploy-v0.1.0-x86_64-unknown-linux-musl");

    // The archive replaced after publication, and SHA256SUMS regenerated to match it.
    let archive = dist.join(name);
    let original = std::fs::read(&archive).unwrap();
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let forged = {
        use sha2::Digest as _;
        let hex = sha2::Sha256::digest(&bytes)
            .iter()
            .fold(String::new(), |mut h, b| {
                use std::fmt::Write as _;
                let _ = write!(h, "{b:02x}");
                h
            });
        let sums = std::fs::read_to_string(&published).unwrap();
        sums.lines()
            .map(|l| {
                if l.ends_with(name) {
                    format!("{hex}  {name}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    std::fs::write(dist.join("SHA256SUMS"), forged).unwrap();
    let pinned = checkout(work.path(), Some(&published));
    let (ok, out) = action_from(&pinned, &app, &dist, &runner, &[]);
    assert!(
        !ok && out.contains("the checksums committed for v0.1.0 when it was published say")
            && out.contains("Nothing was run."),
        "{out}"
    );
    assert!(!installed.exists(), "nothing installed:\n{out}");

    // The real release, from an action commit older than it: nothing outside the release vouches for it.
    std::fs::write(&archive, &original).unwrap();
    std::fs::copy(&published, dist.join("SHA256SUMS")).unwrap();
    let older = checkout(work.path(), None);
    let (ok, out) = action_from(&older, &app, &dist, &runner, &[]);
    assert!(
        !ok && out.contains("nothing outside the release vouches for")
            && out.contains("Nothing was run."),
        "{out}"
    );
    assert!(!installed.exists(), "nothing installed:\n{out}");
    // ... unless the workflow pins the archive itself.
    let sha = std::fs::read_to_string(&published)
        .unwrap()
        .lines()
        .find(|l| l.ends_with(name))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let extra = [
        ("WSDEPLOY_ACTION_SHA256", sha.as_str()),
        ("WSDEPLOY_ACTION_COMMAND", "install"),
    ];
    let (ok, out) = action_from(&older, &app, &dist, &runner, &extra);
    assert!(ok && out.contains("verified (the sha256 input)"), "{out}");
    assert!(installed.join("wsdeploy").is_file());

    // A version is a tag, never a path.
    let (ok, out) = action_from(
        &pinned,
        &app,
        &dist,
        &runner,
        &[("WSDEPLOY_ACTION_VERSION", "v0.1.0/../../x")],
    );
    assert!(
        !ok && out.contains("is a release tag such as v0.1.0"),
        "{out}"
    );
}

#[test]
fn the_action_and_the_release_workflow_follow_githubs_schemas() {
    let validator = root().join("tests/node/node_modules/.bin/action-validator");
    // action-validator 0.6's schema predates the `attestations` permission GitHub added for artifact attestations
    // (actions/attest-build-provenance asks for `attestations: write`): that one line is checked as text instead.
    let t = tempfile::tempdir().unwrap();
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    let line = "      attestations: write  # stores them\n";
    assert!(
        workflow.contains(line),
        "the publish job may store attestations"
    );
    let without = t.path().join("release.yml");
    std::fs::write(&without, workflow.replace(line, "")).unwrap();
    for file in [root().join("action.yml"), without] {
        let (ok, out) = run(Command::new(&validator).arg(&file));
        assert!(ok, "{}: {out}", file.display());
    }
    // And it does reject: an input with a misspelt key.
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("action.yml");
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    std::fs::write(
        &bad,
        text.replacen("    required: true", "    requird: true", 1),
    )
    .unwrap();
    let (ok, out) = run(Command::new(&validator).arg(&bad));
    assert!(!ok && out.contains("requird"), "{out}");
    // The release builds with the script the suite runs, every step of it.
    let workflow = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    for step in [
        "scripts/release lambdas",
        "scripts/release binary",
        "scripts/release package",
        "scripts/release npm",
    ] {
        assert!(workflow.contains(step), "{step}");
    }
}
