"""Deploy times that model AWS: every tool talks to moto through the test harness's AWS-behaviour layer (the
`aws-layer` example), which adds AWS's answer time to each request and plays IAM's propagation, `Pending`
functions and API Gateway's serialised writes. The layer reports each run's requests and their longest chain."""
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from .common import REGION, ROOT, WSDEPLOY, Moto, app_dir, aws_env, sh, timed


class AwsLayer:
    """tests/bench/aws_layer.rs between the tool and moto."""

    @staticmethod
    def build():
        """The dev profile, as the tests build it (scripts/bench builds it before measuring)."""
        subprocess.run(["cargo", "build", "--quiet", "--example", "aws-layer"], cwd=ROOT, check=True)

    def __init__(self, upstream, latency_ms, iam_propagation_ms):
        exe = os.path.join(ROOT, "target", "debug", "examples", "aws-layer")
        cmd = [exe, "--upstream", upstream, "--latency-ms", str(latency_ms), "--iam-propagation-ms", str(iam_propagation_ms)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().split()[-1]

    def take(self):
        """What the tool sent since the last call: requests, mutating ones, bytes uploaded, the longest chain."""
        self.proc.stdin.write("take\n")
        self.proc.stdin.flush()
        seen = json.loads(self.proc.stdout.readline())
        reqs = seen["requests"]
        return {
            "requests": len(reqs),
            "mutating": sum(1 for r in reqs if r["mutating"]),
            "mutating_ops": sorted({r["op"] for r in reqs if r["mutating"]}),
            "uploaded_bytes": sum(r["bytes"] for r in reqs if r["op"].startswith(("POST /2015-03-31/functions", "PUT /2015-03-31/functions"))),
            "chain_requests": seen["chain"]["requests"],
            "chain_steps": seen["chain"]["steps"],
        }

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def fresh_account(moto, layer):
    """moto emptied, then each service it plays touched once, straight (not through the layer): moto builds a
    service's state on its first request (IAM's managed policies take seconds), a cost real AWS does not have and
    that would otherwise fall on whichever tool runs first."""
    import botocore.session

    moto.reset()
    session = botocore.session.get_session()
    kw = dict(region_name=REGION, endpoint_url=moto.url, aws_access_key_id="testing", aws_secret_access_key="testing")
    touch = [("iam", "list_roles", {}), ("iam", "get_policy", {"PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}),
             ("sts", "get_caller_identity", {}), ("kms", "list_aliases", {}), ("lambda", "list_functions", {}),
             ("apigatewayv2", "get_apis", {}), ("logs", "describe_log_groups", {}),
             ("resourcegroupstaggingapi", "get_resources", {}), ("cloudformation", "list_stacks", {})]
    for service, op, args in touch:
        try:
            getattr(session.create_client(service, **kw), op)(**args)
        except Exception:  # noqa: BLE001 - a miss still warms the service
            pass
    layer.take()


ROUTE_CHANGE = "routes:\n  auth: connect\n  $disconnect: disconnect\n  login: connect\n"


def wsdeploy_runs(moto, layer, runs):
    """Cold `up`, then a no-op `up`, then `up` after adding one route, on a fresh account each run."""
    out = {"cold": [], "noop": [], "change": []}
    for i in range(runs):
        fresh_account(moto, layer)
        d = app_dir(f"bench{i}")
        app = os.path.join(d, "app")
        env = aws_env(layer.url)
        for kind in ("cold", "noop", "change"):
            if kind == "change":
                with open(os.path.join(app, "wsdeploy.yaml"), "a") as f:
                    f.write(ROUTE_CHANGE)
            seconds = timed([WSDEPLOY, "up", "-q"], app, env)
            out[kind].append(dict(layer.take(), seconds=seconds))
        shutil.rmtree(d, ignore_errors=True)
    return out


# The same resources with the aws CLI, written as a careful script must be against real AWS: Lambda refuses a role
# for seconds after it is created, so `create-function` is retried; `add-permission` waits for the function to be
# Active. Every command is one process: the CLI's own start-up is part of what a script costs.
AWS_COLD = r"""set -eu
P=$1; ZC=$2; ZD=$3; R=eu-west-3; A=123456789012
echo '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}' > trust.json
echo "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"logs:CreateLogStream\",\"logs:PutLogEvents\"],\"Resource\":[\"arn:aws:logs:$R:$A:log-group:/aws/lambda/$P-*\"]}]}" > logs.json
aws iam create-role --role-name $P-lambda --assume-role-policy-document file://trust.json > /dev/null
aws iam put-role-policy --role-name $P-lambda --policy-name $P-logs --policy-document file://logs.json
for f in connect disconnect; do
  aws logs create-log-group --log-group-name /aws/lambda/$P-$f
  aws logs put-retention-policy --log-group-name /aws/lambda/$P-$f --retention-in-days 14
done
for f in connect disconnect; do
  Z=$ZC; [ $f = disconnect ] && Z=$ZD
  until aws lambda create-function --function-name $P-$f --runtime provided.al2023 --handler bootstrap --architectures x86_64 --role arn:aws:iam::$A:role/$P-lambda --zip-file fileb://$Z --environment 'Variables={WSDEPLOY_BACKEND_URL=https://api.example.com,WSDEPLOY_SIGNING_SECRET=s}' > /dev/null 2>&1; do sleep 1; done
done
API=$(aws apigatewayv2 create-api --name $P --protocol-type WEBSOCKET --route-selection-expression '$request.body.action' --query ApiId --output text)
for f in connect disconnect; do
  I=$(aws apigatewayv2 create-integration --api-id $API --integration-type AWS_PROXY --integration-method POST --integration-uri arn:aws:apigateway:$R:lambda:path/2015-03-31/functions/arn:aws:lambda:$R:$A:function:$P-$f/invocations --query IntegrationId --output text)
  eval "INT_$f=$I"
  aws lambda wait function-active-v2 --function-name $P-$f
  aws lambda add-permission --function-name $P-$f --statement-id apigw --action lambda:InvokeFunction --principal apigateway.amazonaws.com --source-arn "arn:aws:execute-api:$R:$A:$API/*" > /dev/null
done
RID=$(aws apigatewayv2 create-route --api-id $API --route-key auth --target integrations/$INT_connect --route-response-selection-expression '$default' --query RouteId --output text)
aws apigatewayv2 create-route-response --api-id $API --route-id $RID --route-response-key '$default' > /dev/null
aws apigatewayv2 create-route --api-id $API --route-key '$disconnect' --target integrations/$INT_disconnect > /dev/null
aws apigatewayv2 create-stage --api-id $API --stage-name dev --auto-deploy > /dev/null
aws iam create-user --user-name $P-backend > /dev/null
echo "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"execute-api:ManageConnections\",\"Resource\":\"arn:aws:execute-api:$R:$A:$API/dev/*/@connections/*\"}]}" > manage.json
aws iam put-user-policy --user-name $P-backend --policy-name $P-manage-connections --policy-document file://manage.json
aws iam create-access-key --user-name $P-backend > /dev/null
"""

# One more route on the connect function, found by name as a script must.
AWS_CHANGE = r"""set -eu
P=$1
API=$(aws apigatewayv2 get-apis --query "Items[?Name=='$P'].ApiId" --output text)
INT=$(aws apigatewayv2 get-integrations --api-id $API --query "Items[?contains(IntegrationUri, ':function:$P-connect/')].IntegrationId" --output text)
RID=$(aws apigatewayv2 create-route --api-id $API --route-key login --target integrations/$INT --route-response-selection-expression '$default' --query RouteId --output text)
aws apigatewayv2 create-route-response --api-id $API --route-id $RID --route-response-key '$default' > /dev/null
"""


def aws_cli_runs(moto, layer, zips, runs):
    work = tempfile.mkdtemp(prefix="wsdeploy-bench-aws-")
    for name, text in (("cold.sh", AWS_COLD), ("change.sh", AWS_CHANGE)):
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    out = {"cold": [], "change": [], "rerun": None}
    env = aws_env(layer.url)
    for i in range(runs):
        fresh_account(moto, layer)
        p = f"bench{i}"
        out["cold"].append(dict(seconds=timed(["bash", "cold.sh", p, *zips], work, env), **layer.take()))
        out["change"].append(dict(seconds=timed(["bash", "change.sh", p], work, env), **layer.take()))
    # A script is not a plan: run again, it stops at its first create.
    again = subprocess.run(["bash", "cold.sh", f"bench{runs - 1}", *zips], cwd=work, env=env, capture_output=True, text=True)
    layer.take()
    out["rerun"] = {"exit": again.returncode, "error": (again.stderr.strip().splitlines() or [""])[-1][:200]}
    shutil.rmtree(work, ignore_errors=True)
    return out


CFN_TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: '2012-10-17', Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: 'sts:AssumeRole'}]}
  Connect:
    Type: AWS::Lambda::Function
    Properties: {Runtime: provided.al2023, Handler: bootstrap, Role: !GetAtt Role.Arn, Code: {S3Bucket: bench-cfn, S3Key: connect.zip}}
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: bench-cfn, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.action}
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: {ApiId: !Ref Api, IntegrationType: AWS_PROXY, IntegrationUri: !Sub 'arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Connect.Arn}/invocations'}
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties: {ApiId: !Ref Api, RouteKey: auth, Target: !Sub 'integrations/${Integration}'}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Api, StageName: dev, AutoDeploy: true}
"""


def cloudformation(moto, layer, zip_path):
    """What Serverless, SAM and CDK deploy through: does moto's CloudFormation create the same stack?"""
    fresh_account(moto, layer)
    env = aws_env(layer.url)
    work = tempfile.mkdtemp(prefix="wsdeploy-bench-cfn-")
    with open(os.path.join(work, "stack.yaml"), "w") as f:
        f.write(CFN_TEMPLATE)
    t = time.perf_counter()
    sh(["aws", "s3api", "create-bucket", "--bucket", "bench-cfn", "--create-bucket-configuration", "LocationConstraint=eu-west-3"], env=env)
    sh(["aws", "s3", "cp", zip_path, "s3://bench-cfn/connect.zip"], env=env)
    sh(["aws", "cloudformation", "create-stack", "--stack-name", "bench-cfn", "--template-body", "file://stack.yaml", "--capabilities", "CAPABILITY_IAM"], cwd=work, env=env)
    status = "?"
    for _ in range(120):
        status = sh(["aws", "cloudformation", "describe-stacks", "--stack-name", "bench-cfn", "--query", "Stacks[0].StackStatus", "--output", "text"], env=env).stdout.strip()
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.5)
    seconds = time.perf_counter() - t
    apis = json.loads(sh(["aws", "apigatewayv2", "get-apis"], env=env).stdout).get("Items", [])
    functions = json.loads(sh(["aws", "lambda", "list-functions"], env=env).stdout).get("Functions", [])
    resources = json.loads(sh(["aws", "cloudformation", "list-stack-resources", "--stack-name", "bench-cfn"], env=env).stdout).get("StackResourceSummaries", [])
    layer.take()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "status": status,
        "seconds": seconds,
        "apis_created": len(apis),
        "functions_created": len(functions),
        "resources_listed": sorted(r["ResourceType"] for r in resources),
    }


def measure(runs, latency_ms, iam_propagation_ms):
    moto = Moto()
    layer = AwsLayer(moto.url, latency_ms, iam_propagation_ms)
    try:
        built = json.loads(sh([WSDEPLOY, "build", "--arch", "x86_64", "--output", "json"], env=aws_env(moto.url)).stdout)
        zips = [built["functions"][f]["zip"] for f in ("connect", "disconnect")]
        # Alternate tools run by run would interleave states; each tool gets its runs on a fresh account instead.
        ours = wsdeploy_runs(moto, layer, runs)
        theirs = aws_cli_runs(moto, layer, zips, runs)
        cfn = cloudformation(moto, layer, zips[0])
        return {"latency_ms": latency_ms, "iam_propagation_ms": iam_propagation_ms, "wsdeploy": ours, "aws_cli": theirs, "cloudformation": cfn}
    finally:
        layer.stop()
        moto.stop()


def median(runs, key):
    return statistics.median(r[key] for r in runs)
