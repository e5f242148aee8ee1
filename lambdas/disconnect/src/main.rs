//! The `disconnect` Lambda: see `common::disconnect`. Built by `wsdeploy` for provided.al2023 (binary `bootstrap`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::serve(|backend, event| async move { common::disconnect::handle(&backend, event).await })
        .await
}
