// Two things cargo cannot see by itself:
// - the bundled Lambdas' sources are embedded with include_dir!, which cargo does not track: rebuild when they change;
// - a release embeds the functions prebuilt by `scripts/release lambdas` (WSDEPLOY_PREBUILT_LAMBDAS names their
//   folder): generate the table of them, `$OUT_DIR/prebuilt.rs`, empty in a development build.
use std::fmt::Write as _;
use std::path::Path;

fn main() {
    for dir in [
        "lambdas/Cargo.toml",
        "lambdas/Cargo.lock",
        "lambdas/signature",
        "lambdas/common",
        "lambdas/connect",
        "lambdas/disconnect",
        "lambdas/fanout",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
    if let Some(commit) = commit() {
        println!("cargo:rustc-env=WSDEPLOY_COMMIT={commit}");
    }
    println!("cargo:rerun-if-env-changed=WSDEPLOY_PREBUILT_LAMBDAS");
    let table = match std::env::var_os("WSDEPLOY_PREBUILT_LAMBDAS").filter(|d| !d.is_empty()) {
        Some(dir) => prebuilt_table(Path::new(&dir)),
        None => "&[]".to_string(),
    };
    let out =
        Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("prebuilt.rs");
    std::fs::write(out, format!("static PREBUILT: &[Prebuilt] = {table};\n"))
        .expect("OUT_DIR is writable");
}

/// The commit this is built from: `init` pins the workflow's wsdeploy action to it. From git in a checkout, from the
/// `.cargo_vcs_info.json` cargo writes into a published crate otherwise.
fn commit() -> Option<String> {
    if let Ok(info) = std::fs::read_to_string(".cargo_vcs_info.json") {
        let (_, rest) = info.split_once("\"sha1\"")?;
        return rest.split('"').nth(1).map(str::to_string);
    }
    if Path::new(".git").is_dir() {
        // Only what exists: cargo counts a missing path as changed, and would build wsdeploy again every time. A
        // `git gc` that creates packed-refs also empties refs/heads, which is watched.
        for watched in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
            if Path::new(watched).exists() {
                println!("cargo:rerun-if-changed={watched}");
            }
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && commit.len() == 40).then_some(commit)
}

/// `dir/lambda-{arch}/source-hash` and `dir/lambda-{arch}/{function}.zip`, as `wsdeploy build --out` writes them.
/// Whether they are complete and of these sources is the binary's to judge at run time: it knows the sources' hash.
fn prebuilt_table(dir: &Path) -> String {
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("WSDEPLOY_PREBUILT_LAMBDAS={}: {e}", dir.display()));
    let mut sets: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("lambda-"))
        .map(|e| e.path())
        .collect();
    sets.sort();
    assert!(
        !sets.is_empty(),
        "WSDEPLOY_PREBUILT_LAMBDAS={}: no lambda-<arch> folder (make one with `wsdeploy build --arch <arch> --out {}`)",
        dir.display(),
        dir.display()
    );
    let mut table = String::from("&[");
    for set in sets {
        let arch = set.file_name().unwrap().to_string_lossy()["lambda-".len()..].to_string();
        let hash_file = set.join("source-hash");
        println!("cargo:rerun-if-changed={}", hash_file.display());
        let hash = std::fs::read_to_string(&hash_file)
            .unwrap_or_else(|e| panic!("{}: {e}", hash_file.display()));
        let mut zips: Vec<_> = std::fs::read_dir(&set)
            .unwrap_or_else(|e| panic!("{}: {e}", set.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "zip"))
            .collect();
        zips.sort();
        let _ = write!(
            table,
            "Prebuilt {{ arch: {arch:?}, source_hash: {:?}, functions: &[",
            hash.trim()
        );
        for zip in zips {
            println!("cargo:rerun-if-changed={}", zip.display());
            let function = zip.file_stem().unwrap().to_string_lossy().to_string();
            let path = zip.canonicalize().expect("the zip exists");
            let _ = write!(
                table,
                "({function:?}, include_bytes!({:?})), ",
                path.display().to_string()
            );
        }
        table.push_str("] }, ");
    }
    table.push(']');
    table
}
