//! Running the real `wsdeploy` binary. A failed expectation prints the command, its exit code and output, and the
//! files involved, so a CI log alone says what went wrong.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_wsdeploy");

/// The bundled functions' build cache, shared by every test (and across runs) so they compile once per machine.
pub(crate) fn cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/wsdeploy-test-cache")
}

/// A dotenv file as a map (`export ` and single quotes stripped); empty if the file is missing.
pub(crate) fn env_file(path: &Path) -> std::collections::BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim_start_matches("export ").split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_string(),
                v.trim().trim_matches('\'').to_string(),
            )
        })
        .collect()
}

/// Copies the files below `from` into `to`, leaving out every entry named in `skip` (and all below it).
pub(crate) fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name), skip);
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A command under construction: the binary, a working folder and a clean environment (no ambient AWS or
/// WSDEPLOY settings leak in from the machine running the tests).
pub(crate) struct Cmd {
    command: Command,
    shown: String,
    files: Vec<PathBuf>,
}

pub(crate) fn wsdeploy(dir: &Path, args: &[&str]) -> Cmd {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("WSDEPLOY_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1")
        .env("CI", "true")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    Cmd {
        command: cmd,
        shown: format!("(cd {} && wsdeploy {})", dir.display(), args.join(" ")),
        files: vec![],
    }
}

pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    context: String,
}

impl Cmd {
    pub(crate) fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(k, v);
        self
    }

    pub(crate) fn envs<'a>(mut self, vars: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        for (k, v) in vars {
            self.command.env(k, v);
        }
        self
    }

    /// Files whose contents a failure report should show.
    pub(crate) fn show(mut self, file: impl Into<PathBuf>) -> Self {
        self.files.push(file.into());
        self
    }

    /// Without `k` in its environment.
    pub(crate) fn env_remove(mut self, k: &str) -> Self {
        self.command.env_remove(k);
        self
    }

    /// Where its stdout goes instead of being captured.
    pub(crate) fn stdout(mut self, to: impl Into<std::process::Stdio>) -> Self {
        self.command.stdout(to);
        self
    }

    /// Starts it in the background (for tests that kill or race it).
    pub(crate) fn spawn(mut self) -> std::process::Child {
        self.command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown))
    }

    /// Starts it in the background with its stdout to read.
    pub(crate) fn spawn_reading(mut self) -> std::process::Child {
        self.command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown))
    }

    pub(crate) fn run(mut self) -> Run {
        let out = self
            .command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown));
        let mut context = format!("command: {}\n", self.shown);
        for f in &self.files {
            let body = std::fs::read_to_string(f).unwrap_or_else(|e| format!("<{e}>"));
            context.push_str(&format!("--- {} ---\n{body}\n", f.display()));
        }
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            context,
        }
    }

    /// Runs and insists on `code`.
    pub(crate) fn expect(self, code: i32) -> Run {
        let run = self.run();
        run.check(run.code == code, &format!("expected exit code {code}"));
        run
    }
}

impl Run {
    /// Panics with everything needed to understand the failure unless `ok`.
    pub(crate) fn check(&self, ok: bool, what: &str) {
        assert!(
            ok,
            "{what}\n{}exit code: {}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
            self.context, self.code, self.stdout, self.stderr
        );
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            self.check(false, &format!("stdout is not one JSON document: {e}"));
            unreachable!()
        })
    }
}

/// Runs a command to its end: whether it succeeded, and a report of it (the command, its stdout and stderr) for a
/// failure message.
pub(crate) fn run_command(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "command: {cmd:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
