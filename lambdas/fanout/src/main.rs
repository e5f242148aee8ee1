//! The `fanout` Lambda: see `common::fanout`. Built by `wsdeploy` for provided.al2023 (binary `bootstrap`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::fanout::serve().await
}
