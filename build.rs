// The bundled Lambdas' sources are embedded with include_dir!, which cargo does not track: rebuild when they change.
fn main() {
    for dir in [
        "lambdas/Cargo.toml",
        "lambdas/Cargo.lock",
        "lambdas/signature",
        "lambdas/common",
        "lambdas/connect",
        "lambdas/disconnect",
    ] {
        println!("cargo:rerun-if-changed={dir}");
    }
}
