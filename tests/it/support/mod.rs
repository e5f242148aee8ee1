//! The harness: what the tests run against. Nothing here is a test.

/// The AWS-behaviour layer: what real AWS does and moto does not, played in the proxy.
pub(crate) mod aws_behaviour;
/// IAM permissions boundaries (users' boundaries, which moto lacks), as part of that layer.
pub(crate) mod aws_boundary;
/// KMS's eventual consistency and Lambda's use of a customer managed key, as part of that layer.
pub(crate) mod aws_kms;
/// `wsdeploy dev` under test: a signature-checking backend, the dev process, WebSocket clients.
pub(crate) mod devkit;
/// IAM authorisation of the deploying identity, decided by moto's own policy evaluator.
pub(crate) mod iam_enforce;
/// `moto_server` on a free loopback port.
pub(crate) mod moto;
/// The proxy between wsdeploy and moto: counts, classifies, injects faults, stops after N requests.
pub(crate) mod proxy;
/// Running the real `wsdeploy` binary; failures print the command, its output and the files involved.
pub(crate) mod util;
