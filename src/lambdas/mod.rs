//! The bundled Lambdas. A release carries them prebuilt (`embedded`); every build carries their sources, so an
//! installed `wsdeploy` can also build them anywhere: with cargo-lambda for the Lambda target (or with cargo for
//! this machine, for `wsdeploy dev`), zipped deterministically, cached by (source hash, target).

mod build;
mod embedded;
mod zip;

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

pub(crate) use build::{build, BuildError, Built, Target};
use embedded::{host_arch, usable_arches};
pub(crate) use zip::{code_sha256, deterministic_zip};

use embedded::Embedded;

/// Where the bundled functions come from: this concern's flag, on every verb that deploys or runs them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// Build the bundled Lambdas from the sources wsdeploy carries (needs Rust, cargo-lambda and zig) even when
    /// this wsdeploy carries them prebuilt.
    #[arg(long, env = "WSDEPLOY_BUILD_FROM_SOURCE")]
    pub build_from_source: bool,
}

/// Where a set of functions came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Origin {
    /// Prebuilt by the release, embedded in this binary.
    Embedded,
    /// Compiled by this run.
    Compiled,
    /// Compiled by an earlier run of these sources (the cache).
    Cached,
}

/// The functions for a target, where they came from, and why from source when they were.
#[derive(Debug)]
pub(crate) struct Functions {
    pub built: Vec<Built>,
    pub origin: Origin,
    pub from_source_because: Option<String>,
}

impl Functions {
    /// One line for a progress step or a report: "prebuilt (embedded in wsdeploy)", "compiled from source: …".
    pub(crate) fn describe(&self) -> String {
        let what = match self.origin {
            Origin::Embedded => return "prebuilt (embedded in wsdeploy)".into(),
            Origin::Compiled => "compiled from source",
            Origin::Cached => "built from source earlier (cached)",
        };
        match &self.from_source_because {
            Some(why) => format!("{what}: {why}"),
            None => what.into(),
        }
    }
}

/// The embedded set `get` uses for `target`, or why it builds from source instead.
fn usable_embedded(
    target: Target,
    args: &SourceArgs,
) -> Result<&'static embedded::Prebuilt, String> {
    if args.build_from_source {
        return Err("--build-from-source".into());
    }
    let arch = match target {
        Target::Lambda(arch) => arch,
        Target::Host => {
            host_arch().ok_or("this machine cannot run the Lambda binaries as they are")?
        }
    };
    match embedded::for_arch(arch) {
        Embedded::Usable(set) => Ok(set),
        Embedded::Absent => Err(format!(
            "this wsdeploy carries none prebuilt for {} (a development build)",
            arch.as_str()
        )),
        Embedded::Stale | Embedded::Incomplete => {
            Err("the prebuilt ones this wsdeploy carries are not of its sources".into())
        }
    }
}

/// Whether `get` would use the embedded functions (nothing to build).
pub(crate) fn prebuilt_for(target: Target, args: &SourceArgs) -> bool {
    usable_embedded(target, args).is_ok()
}

/// The bundled functions for `target`: the embedded ones when they are of these sources and the target runs them,
/// else built from source (cached). Blocking: call it from `spawn_blocking`.
pub(crate) fn get(target: Target, args: &SourceArgs) -> Result<Functions, BuildError> {
    let because = match usable_embedded(target, args) {
        Ok(set) => {
            return Ok(Functions {
                built: embedded::materialize(set, target)?,
                origin: Origin::Embedded,
                from_source_because: None,
            })
        }
        Err(because) => because,
    };
    let built = build(target).map_err(|e| e.because(&because))?;
    let origin = if built.iter().any(|b| b.compiled) {
        Origin::Compiled
    } else {
        Origin::Cached
    };
    Ok(Functions {
        built,
        origin,
        from_source_because: Some(because),
    })
}

/// `--version`'s second line: the functions' sources and the architectures carried prebuilt.
pub(crate) fn version_note() -> String {
    let arches = usable_arches();
    let prebuilt = if arches.is_empty() {
        "none prebuilt (a development build: `up` and `dev` build them with cargo-lambda)"
            .to_string()
    } else {
        format!("prebuilt for {}", arches.join(", "))
    };
    format!("bundled Lambdas: sources {}, {prebuilt}", source_hash())
}

static SOURCES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/lambdas");

/// Embedded files that are sources (tool settings of this repository's checkout are not).
fn source_files() -> Vec<&'static include_dir::File<'static>> {
    fn walk(d: &'static Dir<'static>, out: &mut Vec<&'static include_dir::File<'static>>) {
        for f in d.files() {
            out.push(f);
        }
        for sub in d.dirs() {
            let name = sub
                .path()
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            if !matches!(name, "target" | ".cargo" | ".config") {
                walk(sub, out);
            }
        }
    }
    let mut out = vec![];
    walk(&SOURCES, &mut out);
    out.sort_by_key(|f| f.path());
    out
}

/// Identifies the embedded sources: equal hashes, equal code.
pub(crate) fn source_hash() -> String {
    let mut h = Sha256::new();
    for f in source_files() {
        h.update(f.path().to_string_lossy().as_bytes());
        h.update([0]);
        h.update((f.contents().len() as u64).to_le_bytes());
        h.update(f.contents());
    }
    hex(&h.finalize()[..8])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Writes the embedded sources to `dir`, once per source hash. They are written to a temporary folder beside it
/// and renamed into place, so a concurrent run (two `up`s on one CI runner) never sees, or rewrites, a half-written
/// tree while its cargo reads it.
fn extract(dir: &Path) -> std::io::Result<()> {
    if dir.join(".extracted").exists() {
        return Ok(());
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(".extract-")
        .tempdir_in(parent)?;
    for f in source_files() {
        let p = tmp.path().join(f.path());
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, f.contents())?;
    }
    std::fs::write(tmp.path().join(".extracted"), b"")?;
    match std::fs::rename(tmp.path(), dir) {
        Ok(()) => Ok(()),
        // Another run got there first with the same sources: use theirs (`tmp` is removed on drop).
        Err(_) if dir.join(".extracted").exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `WSDEPLOY_CACHE_DIR`, else the user's cache folder. Never a shared temporary folder: another user of the
/// machine could plant the code `up` uploads there.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WSDEPLOY_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("wsdeploy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_the_function_sources_and_not_build_output() {
        let files: Vec<String> = source_files()
            .iter()
            .map(|f| f.path().display().to_string())
            .collect();
        for want in [
            "Cargo.toml",
            "Cargo.lock",
            "connect/src/main.rs",
            "disconnect/src/main.rs",
            "signature/src/lib.rs",
            "common/src/connect.rs",
        ] {
            assert!(
                files.iter().any(|f| f == want),
                "{want} is embedded: {files:?}"
            );
        }
        assert!(
            !files
                .iter()
                .any(|f| f.starts_with("target/") || f.starts_with(".cargo/")),
            "{files:?}"
        );
        assert_eq!(source_hash(), source_hash());
        assert_eq!(source_hash().len(), 16);
    }

    #[test]
    fn concurrent_extractions_leave_one_complete_tree() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("src");
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let t = target.clone();
                std::thread::spawn(move || extract(&t))
            })
            .collect();
        for r in runs {
            r.join().unwrap().unwrap();
        }
        for f in source_files() {
            assert_eq!(
                std::fs::read(target.join(f.path())).unwrap(),
                f.contents(),
                "{}",
                f.path().display()
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(std::result::Result::ok)
            .filter(|e| e.file_name() != "src")
            .collect();
        assert!(leftovers.is_empty(), "temporary folders are removed");
    }
}
