//! The chat example (examples/chat) as a newcomer runs it, with the README's first command (`cargo dev -c …`: the
//! build of the local verbs, the functions compiled from source as in a clone): `wsdeploy dev` starts the gateway,
//! the Lambdas and the example's own backend (`dev.command`), and two users chat in headless Chromium
//! (tests/node/chat.mjs), then receive 150 numbered pushes across the reconnects that API Gateway's limits
//! (shortened) force on them; and three users in two rooms (tests/node/rooms.mjs): messages to exactly a room's
//! members, online lists kept by the sweep when dev loses every `$disconnect`, each room resumed after a cut.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::devkit::{chat_example, pids_running, wait_ready, Dev, CHAT};
use crate::support::util::{cache, BIN};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("<{e}>"))
}

/// API Gateway's idle and connection limits (10 minutes, 2 hours), shortened so that 30 s of pushes cross several.
const LIMITS: [&str; 4] = ["--idle-timeout", "3s", "--max-connection", "10s"];

/// The README's first command (the first line of its "Try it" block), as words.
fn readme_first_command() -> Vec<String> {
    let readme = read(&root().join("README.md"));
    let block = readme
        .split("\n## Try it")
        .nth(1)
        .and_then(|section| section.split("```sh\n").nth(1))
        .expect("README.md has a `## Try it` section with a ```sh block");
    let line = block.lines().next().unwrap_or_default();
    line.split(" #")
        .next()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A cargo alias of this repository's .cargo/config.toml (`name = ["…", …]`, which is also JSON).
fn cargo_alias(name: &str) -> Vec<String> {
    let config = read(&root().join(".cargo/config.toml"));
    let value = config
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no `{name}` alias in .cargo/config.toml:\n{config}"));
    serde_json::from_str(value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

/// What `cargo dev` runs, without cargo (cargo would build it again while other tests run the default build from
/// the same target/): the build of the local verbs that scripts/test makes with the alias's flags, and its
/// arguments.
fn cargo_dev(readme_args: &[String]) -> (PathBuf, Vec<String>) {
    let alias = cargo_alias("dev");
    assert_eq!(
        alias,
        ["run", "--no-default-features", "--", "dev"],
        "`cargo dev` changed: make scripts/test build target/local-verbs/wsdeploy as it does now"
    );
    let bin = Path::new(BIN)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("local-verbs/wsdeploy");
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
            "{}: {e}: scripts/test builds it (`cargo build --no-default-features`, copied there)",
            bin.display()
        )
        });
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.contains("verbs: local only") && version.contains("none prebuilt"),
        "{} is not `cargo dev`'s build (no `aws` feature, no functions embedded):\n{version}",
        bin.display()
    );
    let mut args = vec![alias[3].clone()];
    args.extend_from_slice(readme_args);
    (bin, args)
}

/// `wsdeploy dev` on the example, in the background; its output goes to files in `dir`.
struct DevRun {
    child: std::process::Child,
    dir: PathBuf,
    command: String,
}

impl DevRun {
    fn output(&self) -> String {
        dev_output(&self.dir, &self.command)
    }

    /// SIGTERM, as Ctrl-C would; the exit code.
    fn stop(&mut self) -> i32 {
        let (dir, command) = (self.dir.clone(), self.command.clone());
        crate::support::devkit::terminate(&mut self.child, || dev_output(&dir, &command))
    }
}

fn dev_output(dir: &Path, command: &str) -> String {
    format!(
        "command: (cd {} && {command})\n--- stdout ---\n{}\n--- stderr ---\n{}\n--- {CHAT}/wsdeploy.yaml ---\n{}",
        dir.display(),
        read(&dir.join("dev.out")),
        read(&dir.join("dev.err")),
        read(&dir.join(CHAT).join("wsdeploy.yaml")),
    )
}

impl Drop for DevRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example under `wsdeploy dev` as a clone has it (the README's command, a free port, JSON output and `extra`),
/// then `script` (tests/node) driving headless Chromium against its page. The script's failure fails the test with
/// the commands, both outputs and the config; its screenshot is in target/test-artifacts.
struct ChromiumRun {
    dev: DevRun,
    dir: PathBuf,
    port: u16,
    shot: PathBuf,
    command: String,
    _tmp: tempfile::TempDir,
}

impl ChromiumRun {
    fn start(script: &str, extra: &[&str], env: &[(&str, &str)]) -> ChromiumRun {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            Path::new(&chromium).exists(),
            "{chromium} is missing: install Debian's chromium (`apt-get install chromium`; scripts/test does it)"
        );
        let runner = root().join("tests/node");
        assert!(
            runner.join("node_modules/playwright-core").is_dir(),
            "playwright-core is missing: `npm ci --prefix tests/node` (scripts/test does it)"
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // The example as a clone has it: no node_modules, no env files.
        let port = chat_example(&dir, &["node_modules", ".env", ".env.frontend"]);

        // The README's command, then what a test adds: a free port, JSON to read, its own flags.
        let readme = readme_first_command();
        assert!(
            readme.starts_with(&["cargo".into(), "dev".into()]),
            "the README's first command is `cargo dev …` (what scripts/test builds and this test runs): {readme:?}"
        );
        let (bin, mut args) = cargo_dev(&readme[2..]);
        args.extend(["--port", "0", "--output", "json"].map(String::from));
        args.extend(extra.iter().map(ToString::to_string));
        let command = format!("{} {}", bin.display(), args.join(" "));
        let mut child = Command::new(&bin);
        child
            .args(&args)
            .current_dir(&dir)
            .env("WSDEPLOY_CACHE_DIR", cache())
            .env("NO_COLOR", "1")
            .env_remove("AWS_ENDPOINT_URL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("dev.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("dev.err")).unwrap());
        let mut dev = DevRun {
            child: child.spawn().unwrap(),
            dir: dir.clone(),
            command: command.clone(),
        };
        // A first run compiles the functions and installs the example's packages (cached after).
        let report = || dev_output(&dir, &command);
        wait_ready(
            &mut dev.child,
            &dir.join("dev.err"),
            Duration::from_secs(600),
            report,
        );
        let url = format!("http://127.0.0.1:{port}/");
        let doc: serde_json::Value = serde_json::from_str(read(&dir.join("dev.out")).trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", dev.output()));
        assert_eq!(doc["open"], url.as_str(), "{}", dev.output());

        let artifacts = root().join("target/test-artifacts");
        std::fs::create_dir_all(&artifacts).unwrap();
        let shot = artifacts.join(script.replace(".mjs", ".png"));
        let _ = std::fs::remove_file(&shot);
        let mut browser = Command::new("node")
            .arg(runner.join(script))
            .args([url.as_str(), shot.to_str().unwrap()])
            .current_dir(&runner)
            .env("CHROMIUM", &chromium)
            .env("EXAMPLE_PUBLIC", dir.join(CHAT).join("public"))
            .stdout(std::fs::File::create(dir.join("browser.out")).unwrap())
            .stderr(std::fs::File::create(dir.join("browser.err")).unwrap())
            .spawn()
            .expect("node is required for the browser test");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = browser.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = browser.kill();
                break browser.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let run = ChromiumRun {
            dev,
            dir,
            port,
            shot,
            command: format!(
                "(cd {} && node {script} {url} <screenshot>)",
                runner.display()
            ),
            _tmp: tmp,
        };
        assert!(
            status.success(),
            "the browser test failed ({status}):\n{}",
            run.report()
        );
        let png = std::fs::read(&run.shot).unwrap_or_default();
        assert!(
            png.starts_with(b"\x89PNG"),
            "no screenshot at {}:\n{}",
            run.shot.display(),
            run.report()
        );
        eprintln!("screenshot: {}", run.shot.display());
        run
    }

    fn report(&self) -> String {
        format!(
            "command: {}\n--- browser stdout ---\n{}\n--- browser stderr ---\n{}\n{}",
            self.command,
            read(&self.dir.join("browser.out")),
            read(&self.dir.join("browser.err")),
            self.dev.output()
        )
    }

    /// The JSON summary the script prints last.
    fn summary(&self) -> serde_json::Value {
        read(&self.dir.join("browser.out"))
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no JSON summary from the browser test:\n{}", self.report()))
    }
}

#[test]
fn two_users_chat_in_chromium_through_the_example() {
    let mut run = ChromiumRun::start("chat.mjs", &LIMITS, &[]);
    let (dir, port) = (run.dir.clone(), run.port);
    let report = || run.report();
    // The secrets went to the backend's file only, 0600.
    let backend_env = dir.join(CHAT).join(".env");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&backend_env)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Every hop was real: the Lambdas were invoked and the backend posted through @connections.
    let log = read(&dir.join("dev.err"));
    for hop in [
        "route auth → chat-local-connect 200",
        "@connections POST",
        "chat-local-disconnect 200",
    ] {
        assert!(log.contains(hop), "no `{hop}` in dev's log:\n{}", report());
    }
    let summary = run.summary();
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    eprintln!(
        "{summary}\nheartbeats answered by the gateway: {}; sockets dropped at the connection limit: {}; auth invocations: {}",
        count("→ answered by the gateway (MOCK, no function)"),
        count("1001: maximum connection duration"),
        count("route auth → chat-local-connect 200"),
    );
    // The limits were crossed: alice renewed (make-before-break) and bob was dropped at the connection limit,
    // several times each in 30 s; no gap was reported, since the replay covered every drop.
    let lines = count;
    assert!(
        summary["sockets"]["alice"].as_u64() >= Some(3)
            && summary["sockets"]["bob"].as_u64() >= Some(2),
        "fewer new sockets than the limits force: {summary}\n{}",
        report()
    );
    assert!(
        lines("1001: maximum connection duration") >= 2,
        "bob was never dropped:\n{}",
        report()
    );
    // Make-before-break: alice's page never lost its socket; bob's did, and said so.
    assert_eq!(
        summary["statuses"]["alice"],
        serde_json::json!(["connected", "renewing"]),
        "{}",
        report()
    );
    assert!(
        summary["statuses"]["bob"]
            .as_array()
            .is_some_and(|s| s.contains(&"reconnecting".into())),
        "{}",
        report()
    );
    assert_eq!(
        summary["gaps"],
        serde_json::json!({"alice": 0, "bob": 0}),
        "{}",
        report()
    );
    // The heartbeat kept the quiet direction alive, and it is the gateway's own answer: no function ran for it.
    assert_eq!(
        lines("1001: idle timeout"),
        0,
        "a socket went idle:\n{}",
        report()
    );
    assert!(
        lines("route ping → answered by the gateway (MOCK, no function)") >= 20,
        "too few heartbeats:\n{}",
        report()
    );
    assert!(
        !log.contains("route ping → chat"),
        "a function served the ping:\n{}",
        report()
    );
    assert_eq!(run.dev.stop(), 0, "{}", run.dev.output());
    // Stopping dev stopped the example's backend too (npm and the node it started).
    assert!(
        !listening(port),
        "the backend still listens on {port} after dev stopped:\n{}",
        run.dev.output()
    );
}

/// Rooms, presence and resume in the example (tests/node/rooms.mjs): three users in two rooms, a message reaches
/// exactly its room's members; a page that closes while dev loses every $disconnect (as AWS may) leaves the online
/// lists by the backend's sweep (every second here) alone; a page whose socket is cut gets, when it comes back, what
/// each of its rooms said meanwhile, once.
#[test]
fn rooms_presence_and_resume_in_chromium_through_the_example() {
    let mut run = ChromiumRun::start(
        "rooms.mjs",
        &["--lose-disconnects", "100"],
        &[("CHAT_SWEEP_MS", "1000")],
    );
    let log = read(&run.dir.join("dev.err"));
    // The sweep, not a $disconnect, told the backend: dev fired none, and it asked @connections about the socket.
    assert!(
        !log.contains("chat-local-disconnect 200"),
        "a $disconnect reached the backend:\n{}",
        run.report()
    );
    assert!(
        log.contains("$disconnect not delivered (--lose-disconnects)"),
        "dev lost no $disconnect:\n{}",
        run.report()
    );
    assert!(
        log.lines()
            .any(|l| l.contains("@connections GET") && l.contains("410 Gone")),
        "the sweep never found a closed socket through @connections:\n{}",
        run.report()
    );
    eprintln!("{}", run.summary());
    assert_eq!(run.dev.stop(), 0, "{}", run.dev.output());
}

#[test]
fn dev_stops_when_its_command_exits() {
    let mut dev = Dev::start(
        "http://127.0.0.1:9",
        "dev: { command: 'echo starting; exit 3' }\n",
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(s) = dev.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            Instant::now() < deadline,
            "dev kept running:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = dev.output();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("[app] starting"), "{out}");
    assert!(
        out.contains("dev.command `echo starting; exit 3` stopped (exit status: 3)"),
        "{out}"
    );
}

#[test]
fn the_command_does_not_outlive_a_killed_dev() {
    // A grandchild, as with `npm start` -> sh -> node: the case a plain signal to the child would miss.
    let mut dev = Dev::start(
        "http://127.0.0.1:9",
        "dev: { command: 'sh -c \"sleep 317\"; echo done' }\n",
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids_running(&["sleep", "317"]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the command never started:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    dev.child.kill().unwrap(); // SIGKILL: dev gets no chance to clean up; the kernel tells the command.
    dev.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pids_running(&["sleep", "317"]).is_empty() {
        assert!(
            Instant::now() < deadline,
            "`sleep 317` survived a SIGKILLed dev:\n{}",
            dev.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The frontend template's React hooks (tests/node/react.mjs): one socket in StrictMode, messages routed by topic,
/// presence followed, the socket closed on unmount; against the example under `wsdeploy dev`.
#[test]
fn the_react_hooks_keep_one_socket_route_topics_and_follow_presence() {
    let mut run = ChromiumRun::start("react.mjs", &[], &[]);
    let summary = run.summary();
    eprintln!("{summary}");
    // StrictMode's double mount opened a socket that was closed at once: no more than two ever opened.
    assert!(
        summary["strict_mode_sockets_opened"].as_u64() <= Some(2),
        "{}",
        run.report()
    );
    assert_eq!(run.dev.stop(), 0, "{}", run.dev.output());
}
