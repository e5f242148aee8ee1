use std::collections::BTreeMap;
use std::path::Path;

use super::Action::*;
use super::*;
use crate::config::{Config, Overrides};
use crate::deploy::action::{Phase, TagTarget};
use crate::deploy::state::*;

pub(crate) fn desired(extra: &str) -> Desired {
    let src = format!(
        "project: chat\nregion: eu-west-3\nbackend: {{ url: 'https://api.example.com' }}\n{extra}"
    );
    let c = Config::from_source(Path::new("w.yaml"), src, &Overrides::default()).unwrap();
    let s = c.stage(None).unwrap();
    let artifacts = ["connect", "disconnect"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                Artifact {
                    zip: format!("/{f}.zip").into(),
                    code_sha256: format!("sha-{f}"),
                    bytes: 1,
                },
            )
        })
        .collect();
    Desired::new(
        s,
        &aws_caller(),
        &artifacts,
        &crate::secret::SigningSecrets::single("s3cret".into()),
    )
    .unwrap()
}

fn aws_caller() -> Caller {
    Caller::new("123456789012", "arn:aws:iam::123456789012:user/deployer")
}

/// What AWS holds after a successful `up` of `d`, written independently of `apply`.
pub(crate) fn converged(d: &Desired) -> Observed {
    let api_id = "api1";
    let env_key = (d.env_key == crate::config::EnvKey::Stage).then(|| EnvKeyObs {
        id: "key1".into(),
        arn: STAGE_KEY.into(),
        state: KmsKeyState::Enabled,
        tags: d.tags.clone(),
        description: crate::deploy::key_policy::description(&d.names.prefix),
        policy: Some(crate::deploy::key_policy::wanted(d, None)),
        aliased: true,
    });
    let env_key_arn = d.env_key_arn(env_key.as_ref().map(|k| k.arn.as_str()));
    let functions: BTreeMap<String, FunctionObs> = d
        .functions
        .iter()
        .map(|f| {
            (
                f.name.clone(),
                FunctionObs {
                    arn: d.function_arn(&f.name),
                    memory_mb: f.memory_mb,
                    timeout_s: f.timeout_s,
                    architecture: Some(f.architecture),
                    runtime: RUNTIME.into(),
                    handler: HANDLER.into(),
                    role: d.role_arn(),
                    env: f.deployed_env(Some(api_id)),
                    code_sha256: f.artifact.code_sha256.clone(),
                    kms_key_arn: env_key_arn.clone(),
                    reserved: f.reserved,
                    tags: d.tags.clone(),
                    permission_source: Some(d.invoke_source_arn(api_id)),
                    broken: None,
                },
            )
        })
        .collect();
    Observed {
        role: Some(RoleObs {
            tags: d.tags.clone(),
            trust: Desired::role_trust_policy(),
            policy: Some(d.role_policy(env_key_arn.as_deref(), Some(api_id))),
            boundary: Some(d.boundary_arn()),
        }),
        log_groups: d
            .functions
            .iter()
            .map(|f| (Desired::log_group(&f.name), d.log_retention_days))
            .chain(d.logs.access.then(|| {
                (
                    d.names.access_log_group.clone(),
                    d.logs.retention_days as i32,
                )
            }))
            .map(|(name, days)| {
                let g = LogGroupObs {
                    retention: Some(days),
                    tags: d.tags.clone(),
                };
                (name, g)
            })
            .collect(),
        functions,
        apis: vec![converged_api(d, api_id)],
        user: Some(UserObs {
            tags: d.tags.clone(),
            policy: Some(d.manage_connections_policy(api_id)),
            boundary: Some(d.boundary_arn()),
            keys: vec![key("AKIA1", 1, true)],
        }),
        managed_policy: None,
        env_access_key_id: Some("AKIA1".into()),
        env_signing_secret: Some("s3cret".into()),
        env_key,
        stray_env_keys: vec![],
        account_logging_role: Some(d.account_logging_role_arn()),
        account_role: Some(AccountRoleObs {
            trust: crate::deploy::boundary::service_trust("apigateway.amazonaws.com"),
            boundary: Some(d.boundary_arn()),
        }),
        boundary: Some(PolicyObs {
            tags: Tags::new(),
            document: d.boundary_policy(),
            old_versions: vec![],
        }),
        domain: None,
        certificate: None,
        zone: None,
        record: None,
    }
}

/// The API after a successful `up` of `d`: an integration per function (and the heartbeat's), each route on its
/// target with its response where it replies, the stage.
fn converged_api(d: &Desired, api_id: &str) -> ApiObs {
    let integrations: Vec<IntegrationObs> = d
        .functions
        .iter()
        .map(|f| IntegrationObs {
            id: format!("int-{}", f.function),
            uri: d.integration_uri(&d.function_arn(&f.name)),
            kind: "AWS_PROXY".into(),
            responses: vec![],
        })
        .chain(
            d.routes
                .iter()
                .any(|r| r.function == HEARTBEAT_TARGET)
                .then(|| IntegrationObs {
                    id: format!("int-{HEARTBEAT_TARGET}"),
                    uri: String::new(),
                    kind: "MOCK".into(),
                    responses: vec!["$default".into()],
                }),
        )
        .collect();
    let routes = d
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| RouteObs {
            id: format!("r{i}"),
            key: r.key.clone(),
            target: Some(format!("integrations/int-{}", r.function)),
            response_selection: r.reply.then(|| "$default".into()),
            responses: if r.reply {
                vec!["$default".into()]
            } else {
                vec![]
            },
        })
        .collect();
    ApiObs {
        id: api_id.into(),
        endpoint: Some(format!(
            "wss://{api_id}.execute-api.eu-west-3.amazonaws.com"
        )),
        route_selection: ROUTE_SELECTION.into(),
        ip_address_type: Some("ipv4".into()),
        tags: d.tags.clone(),
        created: 100,
        integrations,
        routes,
        stages: vec![StageObs {
            name: d.stage.clone(),
            auto_deploy: true,
            throttle: Some(d.throttle),
            route_throttle: d.route_throttle.clone(),
            logging: d.stage_logging(true),
            deployment_failure: None,
        }],
    }
}

const STAGE_KEY: &str = "arn:aws:kms:eu-west-3:123456789012:key/key1";

fn key(id: &str, created: i64, active: bool) -> KeyObs {
    KeyObs {
        id: id.into(),
        created,
        active,
    }
}

fn plan_of(d: &Desired, o: &Observed) -> Vec<Action> {
    plan(d, o, &Options::default()).unwrap()
}

#[test]
fn cold_start_creates_everything_in_dependency_order() {
    let d = desired("");
    let p = plan_of(&d, &Observed::default());
    assert!(
        p.iter().all(|a| a.change() != Change::Delete),
        "nothing to delete: {p:?}"
    );
    for (before, after) in [
        (
            CreateRole,
            CreateFunction {
                function: "connect".into(),
            },
        ),
        (
            CreateApi,
            CreateIntegration {
                function: "connect".into(),
            },
        ),
        (
            CreateFunction {
                function: "connect".into(),
            },
            CreateIntegration {
                function: "connect".into(),
            },
        ),
        (
            CreateIntegration {
                function: "connect".into(),
            },
            CreateRoute { key: "auth".into() },
        ),
        (
            CreateRoute { key: "auth".into() },
            CreateRouteResponse { key: "auth".into() },
        ),
        (CreateUser, CreateAccessKey),
    ] {
        let (i, j) = (
            p.iter().position(|a| *a == before).unwrap(),
            p.iter().position(|a| *a == after).unwrap(),
        );
        assert!(
            p[i].phase() < p[j].phase(),
            "{before:?} must come before {after:?}"
        );
    }
    assert_eq!(
        p.iter().find(|a| matches!(a, CreateRouteResponse { .. })),
        Some(&CreateRouteResponse { key: "auth".into() }),
        "$disconnect does not reply"
    );
    assert!(
        p.contains(&CreateStage)
            && p.contains(&AddPermission {
                function: "disconnect".into(),
                replace: false
            })
    );
    // The role and the API do not wait for each other.
    assert_eq!(CreateRole.phase(), CreateApi.phase());
}

#[test]
fn a_converged_stage_plans_nothing() {
    let d = desired("");
    assert_eq!(plan_of(&d, &converged(&d)), vec![]);
    let names = d.names.clone();
    assert_eq!(
        render(&[], &names),
        "No changes: the stage matches the config."
    );
}

#[test]
fn a_changed_setting_updates_only_that() {
    let before = desired("");
    let after = desired("lambda: { memory_mb: 256 }\n");
    assert_eq!(
        plan_of(&after, &converged(&before)),
        vec![
            UpdateFunctionConfig {
                function: "connect".into(),
                fields: vec!["memory_mb 128 → 256".into()]
            },
            UpdateFunctionConfig {
                function: "disconnect".into(),
                fields: vec!["memory_mb 128 → 256".into()]
            },
        ]
    );
    let mut o = converged(&before);
    o.functions.get_mut("chat-dev-connect").unwrap().code_sha256 = "old".into();
    assert_eq!(
        plan_of(&before, &o),
        vec![UpdateFunctionCode {
            function: "connect".into(),
            fields: vec!["code".into()]
        }]
    );
}

#[test]
fn secrets_never_appear_in_a_plan() {
    let d = desired("");
    let mut o = converged(&d);
    o.functions
        .get_mut("chat-dev-connect")
        .unwrap()
        .env
        .insert("WSDEPLOY_SIGNING_SECRET".into(), "old-secret".into());
    let p = plan_of(&d, &o);
    let shown = format!(
        "{}{}",
        render(&p, &d.names),
        serde_json::to_string(&p).unwrap()
    );
    assert!(
        shown.contains("env WSDEPLOY_SIGNING_SECRET")
            && !shown.contains("s3cret")
            && !shown.contains("old-secret"),
        "{shown}"
    );
}

/// Who may connect is one `UpdateApi`, both ways; an API made before AWS had IP address types is IPv4.
#[test]
fn the_ip_address_type_is_changed_in_place() {
    let ipv4 = desired("");
    let dual = desired("ip_address_type: dualstack\n");
    let mut o = converged(&ipv4);
    assert_eq!(plan_of(&ipv4, &o), vec![]);
    assert_eq!(
        plan_of(&dual, &o),
        vec![UpdateApi {
            id: "api1".into(),
            fields: vec!["ip address type dualstack".into()]
        }]
    );
    o.apis[0].ip_address_type = None;
    assert_eq!(plan_of(&ipv4, &o), vec![], "no type is IPv4");
    o.apis[0].ip_address_type = Some("dualstack".into());
    assert_eq!(
        plan_of(&ipv4, &o),
        vec![UpdateApi {
            id: "api1".into(),
            fields: vec!["ip address type ipv4".into()]
        }]
    );
}

#[test]
fn added_and_removed_routes() {
    let before = desired("");
    let added = desired("routes: { auth: connect, $disconnect: disconnect, $default: connect }\n");
    assert_eq!(
        plan_of(&added, &converged(&before)),
        vec![
            CreateRoute {
                key: "$default".into()
            },
            CreateRouteResponse {
                key: "$default".into()
            }
        ]
    );
    let removed = desired("routes: { auth: connect }\n");
    let p = plan_of(&removed, &converged(&before));
    assert_eq!(
        p,
        vec![
            SetEnvKeyPolicy {
                id: "key1".into(),
                policy: crate::deploy::key_policy::wanted(&removed, None),
            },
            PutRolePolicy,
            DeleteRoute {
                key: "$disconnect".into(),
                id: "r0".into()
            },
            DeleteIntegration {
                id: "int-disconnect".into()
            },
            DeleteFunction {
                name: "chat-dev-disconnect".into()
            },
            DeleteLogGroup {
                name: "/aws/lambda/chat-dev-disconnect".into()
            },
        ],
        "the role's log permissions and the functions that may decrypt with the key shrink too"
    );
}

#[test]
fn duplicates_from_a_race_are_removed_keeping_the_oldest() {
    let d = desired("");
    let mut o = converged(&d);
    let mut newer = o.apis[0].clone();
    newer.id = "api2".into();
    newer.created = 200;
    o.apis.insert(0, newer);
    assert_eq!(
        plan_of(&d, &o),
        vec![DeleteApi {
            id: "api2".into(),
            reason: "duplicate left by an earlier concurrent run".into()
        }]
    );
    let uri = o.apis[1].integrations[0].uri.clone();
    o.apis[1].integrations.push(IntegrationObs {
        id: "int-dup".into(),
        uri,
        kind: "AWS_PROXY".into(),
        responses: vec![],
    });
    assert!(plan_of(&d, &o).contains(&DeleteIntegration {
        id: "int-dup".into()
    }));
}

#[test]
fn resources_of_another_stage_are_never_touched() {
    let d = desired("");
    let mut o = converged(&d);
    o.role
        .as_mut()
        .unwrap()
        .tags
        .insert(TAG_STAGE.into(), "prod".into());
    let err = plan(&d, &o, &Options::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("IAM role chat-dev-lambda exists but is not this stage's"),
        "{err}"
    );
    assert!(plan_teardown(&d, &o).is_err());
}

fn rotating(now: i64) -> Options {
    Options {
        rotate_credentials: true,
        now,
        key_grace_secs: 100,
        setup_account_logging: false,
    }
}

fn keeping(now: i64) -> Options {
    Options {
        rotate_credentials: false,
        ..rotating(now)
    }
}

#[test]
fn access_keys_rotate_by_deactivating_and_later_deleting() {
    let d = desired("");
    let mut o = converged(&d);
    let deactivate = |id: &str| DeactivateAccessKey { id: id.into() };
    let delete = |id: &str| DeleteAccessKey { id: id.into() };
    // Rotation: a new key, and the previous one deactivated (after the env file holds the new one), not deleted.
    let p = plan(&d, &o, &rotating(10)).unwrap();
    assert_eq!(p, vec![CreateAccessKey, deactivate("AKIA1")]);
    assert_eq!(p[1].phase(), Phase::AfterEnv);
    // The env file lost its key (a fresh CI runner): the same.
    o.env_access_key_id = None;
    assert_eq!(plan_of(&d, &o), vec![CreateAccessKey, deactivate("AKIA1")]);
    // After a rotation: the spare is kept through the grace period (counted from the new key's creation)...
    o.env_access_key_id = Some("AKIA2".into());
    o.user.as_mut().unwrap().keys = vec![key("AKIA1", 1, false), key("AKIA2", 50, true)];
    assert_eq!(plan(&d, &o, &keeping(149)).unwrap(), vec![]);
    // ...and deleted once it is over.
    assert_eq!(plan(&d, &o, &keeping(150)).unwrap(), vec![delete("AKIA1")]);
    // Rotating again within the grace period: at most one spare, so it makes room first.
    assert_eq!(
        plan(&d, &o, &rotating(60)).unwrap(),
        vec![delete("AKIA1"), CreateAccessKey, deactivate("AKIA2")]
    );
    // A key nobody here holds, still active (a crashed run, another machine): deactivated, never deleted at once.
    o.user.as_mut().unwrap().keys = vec![key("AKIA1", 1, true), key("AKIA2", 50, true)];
    assert_eq!(
        plan(&d, &o, &keeping(60)).unwrap(),
        vec![deactivate("AKIA1")]
    );
    // Two active keys, neither in the env file: the oldest makes room, the other is deactivated.
    o.env_access_key_id = None;
    assert_eq!(
        plan(&d, &o, &keeping(60)).unwrap(),
        vec![delete("AKIA1"), CreateAccessKey, deactivate("AKIA2")]
    );
    // An inactive key in the env file is not usable: a new one.
    o.env_access_key_id = Some("AKIA1".into());
    o.user.as_mut().unwrap().keys = vec![key("AKIA1", 1, false)];
    assert_eq!(plan(&d, &o, &keeping(60)).unwrap(), vec![CreateAccessKey]);
}

#[test]
fn a_lost_route_response_is_created_again() {
    let d = desired("");
    let mut o = converged(&d);
    let auth = o.apis[0]
        .routes
        .iter_mut()
        .find(|r| r.key == "auth")
        .unwrap();
    auth.responses.clear();
    assert_eq!(
        plan_of(&d, &o),
        vec![CreateRouteResponse { key: "auth".into() }],
        "the selection is set but the response is gone"
    );
}

#[test]
fn changed_tags_are_applied_to_what_exists() {
    let before = desired(
        "tags: { team: web, cost: a }
",
    );
    let after = desired(
        "tags: { team: api }
",
    );
    let mut o = converged(&before);
    o.role
        .as_mut()
        .unwrap()
        .tags
        .insert("aws:cloudformation:stack".into(), "x".into());
    let p = plan_of(&after, &o);
    let diff = TagDiff {
        set: [("team".to_string(), "api".to_string())].into(),
        remove: vec!["cost".into()],
    };
    let targets: Vec<&TagTarget> = p
        .iter()
        .map(|a| match a {
            Retag { target, diff: got } => {
                assert_eq!(got, &diff, "aws: tags are AWS's own and stay");
                target
            }
            other => panic!("only tags change: {other:?}"),
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            &TagTarget::EnvKey { id: "key1".into() },
            &TagTarget::Role,
            &TagTarget::LogGroup {
                name: "/aws/lambda/chat-dev-connect".into()
            },
            &TagTarget::LogGroup {
                name: "/aws/lambda/chat-dev-disconnect".into()
            },
            &TagTarget::LogGroup {
                name: "/aws/apigateway/chat-dev-access".into()
            },
            &TagTarget::Api { id: "api1".into() },
            &TagTarget::User,
            &TagTarget::Function {
                function: "connect".into()
            },
            &TagTarget::Function {
                function: "disconnect".into()
            },
        ]
    );
    assert!(render(&p, &after.names).contains("(tag team, untag cost)"));
}

#[test]
fn arns_and_endpoints_follow_the_partition() {
    let cases = [
        (
            "arn:aws:sts::123456789012:assumed-role/ci/x",
            "aws",
            "amazonaws.com",
        ),
        (
            "arn:aws-cn:iam::123456789012:user/ci",
            "aws-cn",
            "amazonaws.com.cn",
        ),
        (
            "arn:aws-us-gov:iam::123456789012:root",
            "aws-us-gov",
            "amazonaws.com",
        ),
    ];
    for (arn, partition, suffix) in cases {
        let mut d = desired("");
        let caller = Caller::new("123456789012", arn);
        assert_eq!(caller.partition.id, partition);
        d.partition = caller.partition;
        let p = format!("arn:{partition}:");
        for a in [
            d.role_arn(),
            d.policy_arn(),
            d.function_arn("f"),
            d.invoke_source_arn("api1"),
            d.integration_uri("x"),
            d.log_group_arn("/aws/lambda/f"),
            d.api_arn("api1"),
            d.manage_connections_policy("api1")["Statement"][0]["Resource"]
                .as_str()
                .unwrap()
                .to_string(),
        ] {
            assert!(a.starts_with(&p), "{a} is not in {partition}");
        }
        // Without the API's own endpoint, the partition's suffix; with it, exactly what AWS said.
        let bare = ApiRef {
            id: "api1".into(),
            endpoint: None,
        };
        assert_eq!(
            d.websocket_url(&bare),
            format!("wss://api1.execute-api.eu-west-3.{suffix}/dev")
        );
        let given = ApiRef {
            endpoint: Some(format!("wss://api1.execute-api.eu-west-3.{suffix}")),
            ..bare
        };
        assert_eq!(
            d.management_endpoint(&given),
            format!("https://api1.execute-api.eu-west-3.{suffix}/dev")
        );
        // Service principals are the same in every partition for Lambda and API Gateway.
        assert_eq!(
            Desired::role_trust_policy()["Statement"][0]["Principal"]["Service"],
            "lambda.amazonaws.com"
        );
    }
}

#[test]
fn policy_mode_uses_a_managed_policy_instead_of_a_user() {
    let before = desired("");
    let d = desired("credentials: policy\n");
    assert_eq!(
        plan_of(&d, &converged(&before)),
        // The policy names the API, so it is created in the phase after the API's.
        vec![DeleteUser, CreatePolicy]
    );
}

#[test]
fn teardown_deletes_everything_found() {
    let d = desired("");
    let p = plan_teardown(&d, &converged(&d)).unwrap();
    assert_eq!(p.len(), 1 + 2 + 3 + 1 + 1 + 1, "{p:?}");
    assert!(p.iter().all(|a| a.change() == Change::Delete));
    assert_eq!(plan_teardown(&d, &Observed::default()).unwrap(), vec![]);
    let text = render(&p, &d.names);
    assert!(
        text.contains("  - websocket api     chat-dev (api1)")
            && text.ends_with("0 to create, 0 to update, 9 to delete."),
        "{text}"
    );
}

/// What `plan` and `up` print, reviewed as a whole: the snapshots are in `src/deploy/snapshots/`.
#[test]
fn rendered_plans_read_as_reviewed() {
    let d = desired("");
    insta::assert_snapshot!(
        "cold_start",
        render(&plan_of(&d, &Observed::default()), &d.names)
    );
    let after = desired(
        "lambda: { memory_mb: 256 }\nroutes: { auth: connect, typing: connect, $disconnect: disconnect }\ntags: { team: web }\n",
    );
    insta::assert_snapshot!(
        "changed_settings_and_a_new_route",
        render(&plan_of(&after, &converged(&d)), &after.names)
    );
    insta::assert_snapshot!(
        "teardown",
        render(&plan_teardown(&d, &converged(&d)).unwrap(), &d.names)
    );
}

#[test]
fn teardown_deletes_only_log_groups_and_policies_tagged_for_this_stage() {
    let d = desired("credentials: policy\n");
    let mut o = converged(&d);
    let theirs: Tags = [("wsdeploy:project", "chat"), ("wsdeploy:stage", "dev-x")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // Another stage's group matches the name prefix; a group nobody tagged is nobody's to delete.
    for (name, tags) in [
        ("/aws/lambda/chat-dev-x-connect", theirs.clone()),
        ("/aws/lambda/chat-dev-old", Tags::new()),
    ] {
        o.log_groups.insert(
            name.into(),
            LogGroupObs {
                retention: Some(14),
                tags,
            },
        );
    }
    o.managed_policy = Some(PolicyObs {
        tags: d.tags.clone(),
        document: serde_json::json!({}),
        old_versions: vec![],
    });
    let p = plan_teardown(&d, &o).unwrap();
    let groups: Vec<&str> = p
        .iter()
        .filter_map(|a| match a {
            DeleteLogGroup { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        groups,
        [
            "/aws/apigateway/chat-dev-access",
            "/aws/lambda/chat-dev-connect",
            "/aws/lambda/chat-dev-disconnect"
        ]
    );
    assert!(p.contains(&DeletePolicy));
    o.managed_policy.as_mut().unwrap().tags = theirs;
    assert!(
        plan_teardown(&d, &o).is_err(),
        "a managed policy of another stage is refused"
    );
}

/// The stage's KMS key: made before anything uses it, named in the role's policy, given to the functions.
#[test]
fn the_stage_key_is_created_first_and_used_by_the_role_and_the_functions() {
    let d = desired("");
    let mut o = converged(&d);
    o.env_key = None;
    let p = plan_of(&d, &o);
    assert_eq!(p.first(), Some(&CreateEnvKey), "{p:?}");
    assert!(
        p.contains(&PutRolePolicy),
        "the role's policy must name the new key: {p:?}"
    );
    assert!(
        Action::CreateEnvKey.phase() < PutRolePolicy.phase(),
        "the policy needs the key's ARN"
    );
    for a in &p {
        if let UpdateFunctionConfig { fields, .. } = a {
            assert_eq!(fields, &vec!["env key → the stage's new key".to_string()]);
        }
    }
    assert_eq!(
        p.iter()
            .filter(|a| matches!(a, UpdateFunctionConfig { .. }))
            .count(),
        2
    );
}

#[test]
fn a_half_made_or_half_deleted_stage_key_is_repaired() {
    let d = desired("");
    let mut o = converged(&d);
    let k = o.env_key.as_mut().unwrap();
    k.aliased = false;
    k.state = KmsKeyState::PendingDeletion;
    assert_eq!(
        plan_of(&d, &o),
        vec![
            RestoreEnvKey {
                id: "key1".into(),
                pending: true
            },
            AliasEnvKey { id: "key1".into() }
        ]
    );
    // Teardown of a key already pending deletion only drops its alias, and forgets a key without one.
    let mut o = converged(&d);
    o.env_key.as_mut().unwrap().state = KmsKeyState::PendingDeletion;
    let p = plan_teardown(&d, &o).unwrap();
    assert!(p.contains(&DeleteEnvKey {
        id: "key1".into(),
        schedule: false,
        alias: true
    }));
    o.env_key.as_mut().unwrap().aliased = false;
    let p = plan_teardown(&d, &o).unwrap();
    assert!(!p.iter().any(|a| matches!(a, DeleteEnvKey { .. })), "{p:?}");
}

#[test]
fn another_env_key_moves_the_functions_and_retires_the_stage_key() {
    let before = desired("");
    let o = converged(&before);
    let mine = "arn:aws:kms:eu-west-3:123456789012:key/mine";
    let after = desired(&format!("lambda: {{ env_key: '{mine}' }}\n"));
    let p = plan_of(&after, &o);
    assert!(p.contains(&PutRolePolicy));
    assert!(p.contains(&UpdateFunctionConfig {
        function: "connect".into(),
        fields: vec![format!("env key → {mine}")]
    }));
    let delete = DeleteEnvKey {
        id: "key1".into(),
        schedule: true,
        alias: true,
    };
    assert!(p.contains(&delete), "{p:?}");
    assert_eq!(
        delete.phase(),
        Phase::Cleanup,
        "after the functions moved off it"
    );
    let managed = desired("lambda: { env_key: aws-managed }\n");
    let p = plan_of(&managed, &o);
    assert!(p.contains(&UpdateFunctionConfig {
        function: "connect".into(),
        fields: vec!["env key → Lambda's AWS-managed key".into()]
    }));
    assert_eq!(plan_of(&managed, &converged(&managed)), vec![]);
    assert_eq!(plan_of(&after, &converged(&after)), vec![]);
    // Once retired (pending deletion, alias gone), the key is still found by its description and policy, and is
    // nothing more to do: the next `up` changes nothing, and `status` has nothing to report.
    let mut retired = converged(&after);
    let mut key = o.env_key.clone().unwrap();
    key.state = KmsKeyState::PendingDeletion;
    key.aliased = false;
    retired.env_key = Some(key.clone());
    assert_eq!(plan_of(&after, &retired), vec![]);
    key.aliased = true;
    retired.env_key = Some(key);
    assert_eq!(
        plan_of(&after, &retired),
        vec![DeleteEnvKey {
            id: "key1".into(),
            schedule: false,
            alias: true
        }]
    );
}

#[test]
fn a_second_key_from_a_race_is_scheduled_for_deletion_and_the_kept_one_stays() {
    let d = desired("");
    let mut o = converged(&d);
    let mut stray = o.env_key.clone().unwrap();
    stray.id = "key2".into();
    stray.aliased = false;
    o.stray_env_keys = vec![stray.clone()];
    let retire = DeleteEnvKey {
        id: "key2".into(),
        schedule: true,
        alias: false,
    };
    assert_eq!(plan_of(&d, &o), vec![retire.clone()]);
    assert!(plan_teardown(&d, &o).unwrap().contains(&retire));
    o.stray_env_keys[0].state = KmsKeyState::PendingDeletion;
    assert_eq!(plan_of(&d, &o), vec![], "already on its way out");
}

#[test]
fn a_key_behind_the_alias_that_is_not_the_stages_is_never_touched() {
    let d = desired("");
    let mut o = converged(&d);
    // The stage's tags on a key of the account's default policy: not wsdeploy's.
    o.env_key.as_mut().unwrap().policy = Some(serde_json::json!({ "Statement": [{ "Sid": "Enable IAM User Permissions",
        "Effect": "Allow", "Principal": { "AWS": "arn:aws:iam::123456789012:root" }, "Action": "kms:*", "Resource": "*" }] }));
    let err = plan(&d, &o, &Options::default()).unwrap_err();
    assert!(
        err.to_string().contains(
            "the KMS alias alias/wsdeploy/chat-dev points at the key key1, which wsdeploy did not make for this stage"
        ),
        "{err}"
    );
    assert!(plan_teardown(&d, &o).is_err());
    let mut o = converged(&d);
    o.env_key.as_mut().unwrap().description = "payroll".into();
    assert!(plan(&d, &o, &Options::default()).is_err());
    // wsdeploy's own key whose tags someone changed: its tags are put back.
    let mut o = converged(&d);
    o.env_key.as_mut().unwrap().tags = [(TAG_STAGE.to_string(), "prod".to_string())].into();
    let p = plan(&d, &o, &Options::default()).unwrap();
    assert!(
        p.iter().any(|a| matches!(a, Retag { target: TagTarget::EnvKey { .. }, .. })),
        "{p:?}"
    );
}

/// A run by a caller the key policy does not name yet adds it, keeping the others.
#[test]
fn a_new_deployer_is_added_to_the_stage_keys_policy() {
    let d = desired("");
    let mut o = converged(&d);
    let mut other = d.clone();
    other.deployer = Some("arn:aws:iam::123456789012:role*/ci".into());
    o.env_key.as_mut().unwrap().policy = Some(crate::deploy::key_policy::wanted(&other, None));
    let p = plan(&d, &o, &Options::default()).unwrap();
    let Some(SetEnvKeyPolicy { policy, .. }) = p.iter().find(|a| matches!(a, SetEnvKeyPolicy { .. })) else {
        panic!("{p:?}");
    };
    let named = crate::deploy::key_policy::deployers(policy);
    assert!(named.contains(&"arn:aws:iam::123456789012:role*/ci".to_string()), "{named:?}");
    assert!(named.contains(&"arn:aws:iam::123456789012:user/deployer".to_string()), "{named:?}");
}

/// The heartbeat: a MOCK integration that API Gateway answers itself, on the `ping` route, which replies.
#[test]
fn the_heartbeat_is_a_mock_on_its_own_route_and_a_half_made_one_is_replaced() {
    let d = desired("");
    let cold = plan_of(&d, &Observed::default());
    for a in [
        CreateIntegration {
            function: HEARTBEAT_TARGET.into(),
        },
        CreateRoute { key: "ping".into() },
        CreateRouteResponse { key: "ping".into() },
    ] {
        assert!(cold.contains(&a), "{a:?} in {cold:?}");
    }
    // A MOCK without its integration response answers nothing: a new one, the route moved to it, the old one gone.
    let mut o = converged(&d);
    let mock = o.apis[0]
        .integrations
        .iter_mut()
        .find(|i| i.kind == "MOCK")
        .unwrap();
    mock.responses.clear();
    let p = plan_of(&d, &o);
    assert!(p.contains(&CreateIntegration {
        function: HEARTBEAT_TARGET.into()
    }));
    assert!(p.contains(&DeleteIntegration {
        id: format!("int-{HEARTBEAT_TARGET}")
    }));
    assert!(
        p.iter()
            .any(|a| matches!(a, UpdateRoute { key, .. } if key == "ping")),
        "{p:?}"
    );
    // Turned off: the route and the MOCK go.
    let off = desired("heartbeat: false\n");
    let p = plan_of(&off, &converged(&d));
    assert!(
        p.iter()
            .any(|a| matches!(a, DeleteRoute { key, .. } if key == "ping")),
        "{p:?}"
    );
    assert!(p.contains(&DeleteIntegration {
        id: format!("int-{HEARTBEAT_TARGET}")
    }));
}

#[test]
fn the_stage_is_throttled_from_its_creation_and_a_new_limit_is_one_update() {
    let d = desired("");
    assert_eq!(d.throttle, (100.0, 200), "a small app's defaults");
    let tighter = desired("throttle: { rate: 20.5, burst: 40 }\n");
    assert_eq!(
        plan_of(&tighter, &converged(&d)),
        vec![UpdateStage {
            fields: vec!["throttle 20.5/s, burst 40".into()]
        }]
    );
    let mut o = converged(&d);
    o.apis[0].stages[0].auto_deploy = false;
    o.apis[0].stages[0].throttle = None;
    assert_eq!(
        plan_of(&d, &o),
        vec![UpdateStage {
            fields: vec!["auto-deploy".into(), "throttle 100/s, burst 200".into()]
        }]
    );
}

#[test]
fn a_routes_own_throttle_is_set_after_the_routes_and_removed_before_them() {
    let d = desired("throttle: { routes: { auth: { rate: 5 } } }\n");
    assert_eq!(d.route_throttle["auth"], (5.0, 200), "the stage's burst");
    let throttle = ThrottleRoute {
        key: "auth".into(),
        fields: vec!["throttle 5/s, burst 200".into()],
    };
    // A new stage: after its routes exist.
    let fresh = plan_of(&d, &Observed::default());
    let at = |a: &Action| fresh.iter().position(|x| x == a).unwrap();
    assert!(at(&throttle) > at(&CreateRoute { key: "auth".into() }));
    assert_eq!(throttle.phase(), Phase::Responses);
    // A stage without it: one action.
    assert_eq!(plan_of(&d, &converged(&desired(""))), vec![throttle]);
    // Gone from the config: removed, in a phase before routes are deleted.
    let removed = plan_of(&desired(""), &converged(&d));
    assert_eq!(removed, vec![UnthrottleRoute { key: "auth".into() }]);
    assert!(
        removed[0].phase()
            < DeleteRoute {
                key: "x".into(),
                id: "r".into()
            }
            .phase()
    );
}

/// Logging needs the account's CloudWatch role: without it the stage is left without logs (no drift to chase), the
/// role is created and set only when asked, before the stage; the execution log group API Gateway made is kept as
/// long as the others and goes with the API.
#[test]
fn stage_logging_waits_for_the_account_role_and_is_set_up_only_when_asked() {
    let d = desired("");
    let mut o = converged(&d);
    o.account_logging_role = None;
    o.account_role = None;
    o.apis[0].stages[0].logging = d.stage_logging(false);
    assert_eq!(plan_of(&d, &o), vec![], "nothing API Gateway would accept");
    let asked = Options {
        setup_account_logging: true,
        ..Options::default()
    };
    let p = plan(&d, &o, &asked).unwrap();
    assert_eq!(
        p,
        vec![
            CreateAccountLoggingRole,
            SetAccountLoggingRole,
            UpdateStage {
                fields: vec!["access logs → /aws/apigateway/chat-dev-access".into()]
            }
        ]
    );
    assert!(p[1].phase() < p[2].phase());

    let quiet = desired("logs: { access: false, execution: error, retention_days: 7 }\n");
    let mut o = converged(&d);
    let exec = d.execution_log_group("api1");
    o.log_groups.insert(
        exec.clone(),
        LogGroupObs {
            retention: None,
            tags: Tags::new(),
        },
    );
    assert_eq!(
        plan_of(&quiet, &o),
        vec![
            PutRetention {
                name: exec.clone(),
                days: 7
            },
            UpdateStage {
                fields: vec!["access logs off".into(), "execution logs error".into()]
            },
            DeleteLogGroup {
                name: "/aws/apigateway/chat-dev-access".into()
            },
        ]
    );
    let down = plan_teardown(&d, &o).unwrap();
    assert!(
        down.contains(&DeleteExecutionLogGroup { name: exec }),
        "{down:?}"
    );
}

/// The boundary exists before any role or user is made with it; a boundary wsdeploy wrote differently gets a new
/// version; roles and users made before boundaries get one.
#[test]
fn every_role_and_user_carries_the_projects_boundary() {
    let d = desired("");
    let cold = plan_of(&d, &Observed::default());
    assert_eq!(cold[0], CreateBoundary);
    assert!(cold
        .iter()
        .all(|a| a == &CreateBoundary || a.phase() > Phase::Boundary));
    let mut o = converged(&d);
    assert_eq!(plan_of(&d, &o), vec![]);
    o.boundary.as_mut().unwrap().document = serde_json::json!({ "Statement": [] });
    o.boundary.as_mut().unwrap().old_versions = ["v1", "v2", "v3", "v4"].map(String::from).to_vec();
    o.role.as_mut().unwrap().boundary = None;
    o.user.as_mut().unwrap().boundary = Some("arn:aws:iam::123456789012:policy/other".into());
    assert_eq!(
        plan_of(&d, &o),
        vec![
            UpdateBoundary {
                delete_oldest: Some("v1".into())
            },
            SetBoundary {
                target: BoundaryTarget::Role
            },
            SetBoundary {
                target: BoundaryTarget::User
            },
        ]
    );
}

/// An account role of wsdeploy's name is adopted only when API Gateway alone may assume it; one without a wsdeploy
/// boundary gets this project's before it is set in the account.
#[test]
fn the_account_role_is_adopted_only_when_api_gateway_alone_trusts_it() {
    let d = desired("");
    let mut o = converged(&d);
    o.account_logging_role = None;
    let asked = Options {
        setup_account_logging: true,
        ..Options::default()
    };
    o.account_role.as_mut().unwrap().boundary = None;
    let p = plan(&d, &o, &asked).unwrap();
    let at = |a: &Action| p.iter().position(|x| x == a).unwrap();
    assert!(
        at(&SetBoundary {
            target: BoundaryTarget::AccountRole
        }) < at(&SetAccountLoggingRole)
    );
    o.account_role.as_mut().unwrap().boundary =
        Some("arn:aws:iam::123456789012:policy/web-wsdeploy-boundary".into());
    assert!(!plan(&d, &o, &asked)
        .unwrap()
        .iter()
        .any(|a| matches!(a, SetBoundary { .. })));
    o.account_role.as_mut().unwrap().trust["Statement"][0]["Principal"] =
        serde_json::json!({ "AWS": "arn:aws:iam::999999999999:root" });
    let e = plan(&d, &o, &asked).unwrap_err().to_string();
    assert!(
        e.contains("wsdeploy-apigateway-cloudwatch exists and its trust policy also lets AWS \"arn:aws:iam::999999999999:root\" assume it"),
        "{e}"
    );
}

/// The managed policy names the API: on a first `up` it is created once the API exists.
#[test]
fn a_first_up_with_a_managed_policy_creates_it_after_the_api() {
    let d = desired("credentials: policy\n");
    let p = plan_of(&d, &Observed::default());
    let phase = |a: &Action| p.iter().find(|x| *x == a).unwrap().phase();
    assert!(phase(&CreatePolicy) > phase(&CreateApi));
    assert!(!p.contains(&CreateUser));
}
