//! The AWS emulator itself: moto answers the Rust SDK the way the other tests rely on.

use crate::support::moto::{Moto, ACCOUNT};

/// The emulator the deploy tests stand on answers the real SDK, with `SigV4` and all.
#[tokio::test]
async fn moto_answers_the_rust_sdk() {
    let moto = Moto::start();
    let config = moto.sdk_config().await;
    let who = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect("sts answers");
    assert_eq!(who.account(), Some(ACCOUNT));
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_role()
        .role_name("probe")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .expect("create_role");
    let roles = iam.list_roles().send().await.expect("list_roles");
    assert!(roles.roles().iter().any(|r| r.role_name() == "probe"));
}
