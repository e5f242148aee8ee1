"""Answers whether an IAM policy allows an action on a resource, with moto's own policy evaluator
(moto.iam.access_control.IAMPolicy), one JSON question per line on stdin, one JSON answer per line on stdout.
moto's live enforcement (INITIAL_NO_AUTH_ACTION_COUNT) refuses valid SigV4 signatures on Lambda's REST paths and
names API Gateway v2 actions its own way, so the tests' AWS-behaviour layer asks this evaluator instead."""
import json
import sys

from moto.iam.access_control import IAMPolicy, PermissionResult

for line in sys.stdin:
    q = json.loads(line)
    result = IAMPolicy(q["policy"]).is_action_permitted(
        q["action"], q["resource"], incoming_condition_values=q.get("conditions") or None
    )
    print(json.dumps(result == PermissionResult.PERMITTED), flush=True)
