//! The bundled Lambdas, embedded in the binary so an installed `wsdeploy` can build them anywhere: built with
//! cargo-lambda for the Lambda target (or with cargo for this machine, for `wsdeploy dev`), zipped
//! deterministically, cached by (source hash, target, profile).

mod build;
mod zip;

use std::path::{Path, PathBuf};

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

pub(crate) use build::{build, Built, Target};
pub(crate) use zip::{code_sha256, deterministic_zip};

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
