//! Building the embedded functions: cargo-lambda for Lambda, plain cargo for this machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Architecture;

use super::{cache_dir, code_sha256, deterministic_zip, extract, source_hash};
use crate::config::rules::BUNDLED_FUNCTIONS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// provided.al2023 on this architecture, built with cargo-lambda.
    Lambda(Architecture),
    /// This machine, for `wsdeploy dev`.
    Host,
}

impl Target {
    pub(super) fn key(self) -> &'static str {
        match self {
            Target::Lambda(Architecture::Arm64) => "lambda-arm64",
            Target::Lambda(Architecture::X86_64) => "lambda-x86_64",
            Target::Host => "host",
        }
    }

    /// The functions' workspace's profile: Lambda's is small and starts fast; this machine's (for `dev`) builds in
    /// about half the time (27 s against 47 s from cold on 2 cores), which is most of a first `cargo dev`.
    fn profile(self) -> &'static str {
        match self {
            Target::Lambda(_) => "release",
            Target::Host => "local",
        }
    }

    fn rust_target(self) -> Option<&'static str> {
        match self {
            Target::Lambda(Architecture::Arm64) => Some("aarch64-unknown-linux-gnu"),
            Target::Lambda(Architecture::X86_64) => Some("x86_64-unknown-linux-gnu"),
            Target::Host => None,
        }
    }
}

/// One built function.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub function: &'static str,
    /// The executable (named `bootstrap` inside the zip).
    pub bootstrap: PathBuf,
    /// The deterministic zip, for Lambda targets.
    pub zip: Option<PathBuf>,
    /// base64 SHA-256 of the zip: Lambda's `CodeSha256`.
    pub code_sha256: Option<String>,
    pub zip_bytes: u64,
    /// Whether this call compiled it (false: from the cache).
    pub compiled: bool,
}

impl Built {
    fn new(
        function: &'static str,
        bootstrap: PathBuf,
        zip: Option<(PathBuf, Vec<u8>)>,
        compiled: bool,
    ) -> Built {
        let (zip, zip_bytes, code_sha256) = match zip {
            Some((path, bytes)) => (Some(path), bytes.len() as u64, Some(code_sha256(&bytes))),
            None => (None, 0, None),
        };
        Built {
            function,
            bootstrap,
            zip,
            code_sha256,
            zip_bytes,
            compiled,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("building the Lambdas for {target} from source{} needs tools this machine lacks:\n{}", .because.as_ref().map(|b| format!(" ({b})")).unwrap_or_default(), .missing.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    MissingTools {
        target: String,
        missing: Vec<String>,
        /// Why from source: a release of wsdeploy carries them prebuilt.
        because: Option<String>,
    },
    #[error("building the Lambdas failed ({command}):\n{output}")]
    Failed { command: String, output: String },
    #[error("no folder to build the Lambdas in: set WSDEPLOY_CACHE_DIR (or HOME) to a folder only you can write")]
    NoCacheDir,
    #[error("cannot prepare the Lambda build in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl BuildError {
    /// Says why the functions were built from source, where that helps the reader (a missing tool).
    pub(crate) fn because(self, why: &str) -> BuildError {
        match self {
            BuildError::MissingTools {
                target, missing, ..
            } => BuildError::MissingTools {
                target,
                missing,
                because: Some(why.to_string()),
            },
            other => other,
        }
    }
}

pub(super) fn io(dir: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        dir: dir.to_path_buf(),
        source,
    }
}

/// Builds every bundled function for `target`, or returns the cached result for these sources.
pub(crate) fn build(target: Target) -> Result<Vec<Built>, BuildError> {
    let hash = source_hash();
    let cache = cache_dir().ok_or(BuildError::NoCacheDir)?;
    let artifacts =
        cache
            .join("artifacts")
            .join(format!("{hash}-{}-{}", target.key(), target.profile()));
    if let Some(done) = cached(&artifacts, target) {
        return Ok(done);
    }
    preflight(target)?;
    let src = cache.join("src").join(&hash);
    extract(&src).map_err(io(&src))?;
    // One target dir for every version of the sources: a changed function recompiles only itself.
    let target_dir = cache.join("target");
    // One build at a time per cache, from compiling to the artifacts written: cargo locks the target dir only while
    // it compiles, and cargo-lambda copies each binary into target/lambda/ after that, so a second run reading the
    // binary meanwhile (two `up`s on one CI runner) could zip half of it. Whoever waited finds the work done.
    std::fs::create_dir_all(&target_dir).map_err(io(&target_dir))?;
    let lock_path = target_dir.join(".wsdeploy-build.lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    if let Some(done) = cached(&artifacts, target) {
        return Ok(done);
    }
    let mut cmd = command(target, &src, &target_dir);
    let shown = format!("{cmd:?}");
    tracing::debug!(command = %shown, "building the Lambdas");
    let out = cmd.output().map_err(|e| BuildError::Failed {
        command: shown.clone(),
        output: e.to_string(),
    })?;
    if !out.status.success() {
        let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        return Err(BuildError::Failed {
            command: shown,
            output,
        });
    }
    std::fs::create_dir_all(&artifacts).map_err(io(&artifacts))?;
    let mut built = vec![];
    for function in BUNDLED_FUNCTIONS {
        let exe = match target {
            Target::Lambda(_) => target_dir.join("lambda").join(function).join("bootstrap"),
            Target::Host => target_dir.join(target.profile()).join(function),
        };
        let bytes = std::fs::read(&exe).map_err(io(&exe))?;
        let dest = artifacts.join(function);
        std::fs::create_dir_all(&dest).map_err(io(&dest))?;
        let bootstrap = dest.join("bootstrap");
        write_artifact(&bootstrap, &bytes, 0o755)?;
        let zip = match target {
            Target::Lambda(_) => {
                let zip = deterministic_zip(&bytes).map_err(io(&dest))?;
                let path = dest.join("bootstrap.zip");
                write_artifact(&path, &zip, 0o644)?;
                Some((path, zip))
            }
            Target::Host => None,
        };
        let b = Built::new(function, bootstrap, zip, true);
        built.push(b);
    }
    // Written last: an interrupted build is redone, never half-used.
    std::fs::write(artifacts.join(".complete"), b"").map_err(io(&artifacts))?;
    Ok(built)
}

/// The build of the embedded sources in `src` for `target`: in its profile, and `--locked`, so that it builds exactly the
/// dependencies the embedded `Cargo.lock` names, never newer ones resolved on the user's machine.
fn command(target: Target, src: &Path, target_dir: &Path) -> Command {
    let mut cmd = match target {
        Target::Lambda(arch) => {
            let mut c = Command::new("cargo");
            c.args([
                "lambda",
                "build",
                "--release",
                "--locked",
                if arch == Architecture::Arm64 {
                    "--arm64"
                } else {
                    "--x86-64"
                },
            ]);
            c
        }
        Target::Host => {
            let mut c = Command::new("cargo");
            c.args(["build", "--profile", target.profile(), "--locked", "--bins"]);
            c
        }
    };
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(inherited_build_setting) {
            cmd.env_remove(key);
        }
    }
    // After the removals: one target dir for every version of the sources.
    cmd.arg("--manifest-path")
        .arg(src.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    cmd
}

/// Settings a `cargo` or `npm` script around wsdeploy leaves in the environment that must not reach the functions'
/// build: flags for another crate or target (`RUSTFLAGS=-C target-cpu=native` would build code Lambda's CPUs may
/// not run), the variables cargo sets for the package it is building or running (which also make cargo rebuild the
/// functions whenever they differ: ring's build script reruns when `OUT_DIR` changes, and `cargo test` sets it), and
/// a wrapper meant for the user's own workspace.
fn inherited_build_setting(key: &str) -> bool {
    const EXACT: [&str; 8] = [
        "OUT_DIR",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "LD_LIBRARY_PATH",
    ];
    const PREFIXES: [&str; 6] = [
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_PKG_",
        "CARGO_CRATE_",
        "CARGO_BIN_",
        "CARGO_TARGET_",
    ];
    EXACT.contains(&key)
        || PREFIXES.iter().any(|p| key.starts_with(p))
        || key == "CARGO_PRIMARY_PACKAGE"
}

pub(super) fn cached(artifacts: &Path, target: Target) -> Option<Vec<Built>> {
    if !artifacts.join(".complete").exists() {
        return None;
    }
    BUNDLED_FUNCTIONS
        .iter()
        .map(|&function| {
            let dir = artifacts.join(function);
            let bootstrap = dir.join("bootstrap");
            if !bootstrap.exists() {
                return None;
            }
            let zip = match target {
                Target::Lambda(_) => {
                    let path = dir.join("bootstrap.zip");
                    let zip = std::fs::read(&path).ok()?;
                    Some((path, zip))
                }
                Target::Host => None,
            };
            let b = Built::new(function, bootstrap, zip, false);
            Some(b)
        })
        .collect()
}

/// Replaced atomically: a concurrent run may be reading, or uploading, the previous (identical) copy.
pub(super) fn write_artifact(path: &Path, bytes: &[u8], mode: u32) -> Result<(), BuildError> {
    crate::fsutil::write_atomic(path, bytes, Some(mode)).map_err(|e| BuildError::Io {
        dir: path.to_path_buf(),
        source: std::io::Error::other(e),
    })
}

fn succeeds(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Everything missing for this target, said once, with the command that installs each.
fn preflight(target: Target) -> Result<(), BuildError> {
    let mut missing = vec![];
    if !succeeds("cargo", &["--version"]) {
        missing.push("Rust and cargo: install them from https://rustup.rs".to_string());
    }
    if let Some(triple) = target.rust_target() {
        if !succeeds("cargo", &["lambda", "--version"]) {
            missing.push("cargo-lambda: `pip install cargo-lambda` (or `cargo install --locked cargo-lambda`)".into());
        }
        let python = if succeeds("python3", &["--version"]) {
            "python3"
        } else {
            "python"
        };
        if !succeeds("zig", &["version"]) && !succeeds(python, &["-m", "ziglang", "version"]) {
            missing.push("zig, which cargo-lambda cross-links with: `pip install ziglang`".into());
        }
        // Only a rustup toolchain can say which targets it has; a distribution's rustc is left to cargo to judge.
        if let Ok(out) = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
        {
            let installed = String::from_utf8_lossy(&out.stdout);
            if out.status.success() && !installed.lines().any(|l| l.trim() == triple) {
                missing.push(format!(
                    "the Rust target {triple}: `rustup target add {triple}`"
                ));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let target = match target {
        Target::Lambda(a) => format!("Lambda ({})", a.as_str()),
        Target::Host => "this machine".into(),
    };
    Err(BuildError::MissingTools {
        target,
        missing,
        because: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_meant_for_another_build_do_not_reach_this_one() {
        for key in [
            "RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_PKG_NAME",
            "CARGO_PROFILE_RELEASE_LTO",
            "RUSTC_WORKSPACE_WRAPPER",
            "LD_LIBRARY_PATH",
            "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
        ] {
            assert!(inherited_build_setting(key), "{key}");
        }
        for key in [
            "CARGO_HOME",
            "RUSTUP_TOOLCHAIN",
            "RUSTC_WRAPPER",
            "PATH",
            "HOME",
            "CARGO_NET_OFFLINE",
        ] {
            assert!(!inherited_build_setting(key), "{key}");
        }
    }

    #[test]
    fn every_build_is_locked_to_the_embedded_lockfile() {
        for target in [
            Target::Host,
            Target::Lambda(Architecture::Arm64),
            Target::Lambda(Architecture::X86_64),
        ] {
            let cmd = command(target, Path::new("/src"), Path::new("/target"));
            let args: Vec<_> = cmd
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            assert!(args.iter().any(|a| a == "--locked"), "{target:?}: {args:?}");
            assert!(
                args.windows(2)
                    .any(|w| w == ["--manifest-path", "/src/Cargo.toml"]),
                "{args:?}"
            );
            let target_dir = cmd.get_envs().find(|(k, _)| *k == "CARGO_TARGET_DIR");
            assert_eq!(
                target_dir,
                Some((
                    std::ffi::OsStr::new("CARGO_TARGET_DIR"),
                    Some(std::ffi::OsStr::new("/target"))
                ))
            );
        }
    }
}
