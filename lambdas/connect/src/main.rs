//! The `connect` Lambda: see `common::connect`. Built by `wsdeploy` for provided.al2023 (binary `bootstrap`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::serve(|backend, event| async move { common::connect::handle(&backend, event).await })
        .await
}
