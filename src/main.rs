use clap::Parser;

fn main() {
    let cli = wsdeploy::cli::Cli::parse();
    wsdeploy::init_tracing(cli.global.verbose, cli.global.quiet);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    let code = runtime.block_on(wsdeploy::run(cli));
    // Don't wait for stray background tasks (e.g. an SDK connection pool) on the way out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    std::process::exit(code);
}
