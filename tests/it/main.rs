//! The one integration-test binary (it links once): every test drives the real `wsdeploy` binary or real services.
//! The harness is in `support/`; each other module tests one concern.

// Scenario tests read top to bottom, one step after the other, however long the scenario.
#![allow(clippy::too_many_lines)]

mod support;

/// The emulator itself answers the Rust SDK the way the tests rely on.
mod aws_emulator;
/// What real AWS does and moto does not: the layer plays it, and wsdeploy copes with it.
mod aws_quirks;
/// `wsdeploy bootstrap`: the boundary, GitHub's OIDC provider and a deploy role, and their teardown.
mod bootstrap;
/// The command line: verbs, global flags, help, exit codes, output to pipes and full disks, the schema.
mod cli;
/// The broken-config corpus: located errors for every way a config can be wrong.
mod config_corpus;
/// `wsdeploy conformance`: the gateway behaviours, checked against `dev` with real clients.
mod conformance;
/// `up`, `plan`, `outputs`, `send`, `teardown` against moto through the layer.
mod deploy;
/// `wsdeploy dev` end to end: gateway, `@connections`, the real Lambda binaries, a real backend.
mod dev;
/// `wsdeploy dev` under abuse: slow, silent and flooding clients, other sites' pages, terminal escapes; a soak.
mod dev_abuse;
/// The README and the guide in docs/: links and anchors resolve, every page is reachable, the README stays short.
mod docs;
/// The stage on its own domain: certificate, domain name, mapping, DNS record.
mod domain;
/// Env files read back exactly by dotenvy, Node and python-dotenv.
mod envfile;
/// The deploy identity tries every way to become more than it needs: refused, or capped by the boundary.
mod escalation;
/// The chat example in headless Chromium, started with the README's first command.
mod example;
/// `wsdeploy init`: what it writes, and what it refuses to overwrite.
mod init;
/// The bundled Lambdas as the CLI builds them.
mod lambdas;
/// Every documented option from a cold start: pairwise combinations, each through a whole life.
mod matrix;
/// API Gateway's logs and the account role they need, `wsdeploy logs`, the metrics in `status`.
mod observability;
/// `wsdeploy policy`: enough to deploy, and every statement needed.
mod policy;
/// A release as users install it: functions prebuilt in the binary, `npx wsdeploy`, the GitHub Action.
mod release;
/// Faults, crashes and races: the next run converges, nothing is orphaned.
mod reliability;
/// Secrets never shown, least-privilege policies.
mod security;
/// The code `init` gives users type-checks and matches what the Lambdas sign.
mod templates;
