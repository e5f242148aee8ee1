"""Answers whether an IAM policy allows an action on a resource, with moto's own policy evaluator
(moto.iam.access_control.IAMPolicy), one JSON question per line on stdin, one JSON answer per line on stdout.
moto's live enforcement (INITIAL_NO_AUTH_ACTION_COUNT) refuses valid SigV4 signatures on Lambda's REST paths and
names API Gateway v2 actions its own way, so the tests' AWS-behaviour layer asks this evaluator instead.

moto takes a condition on a context key the request does not carry as met; AWS does not ("If the key that you
specify in a policy condition is not present in the request context, the values do not match",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html). So a statement whose
condition names a key the request lacks (other than with an ...IfExists operator) is dropped before moto decides:
a key whose tags KMS does not yet apply to authorization has no aws:ResourceTag values at all.

moto also takes an Allow statement whose condition does not match as a refusal of the whole policy, even when another
statement allows the request (two iam:PassRole statements, for two services). AWS combines statements: an explicit
Deny wins, else any Allow allows
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html). So each statement is
asked on its own and the answers combined that way."""
import json
import sys

from moto.iam.access_control import IAMPolicy, PermissionResult


def applicable(policy: str, present: set) -> str:
    doc = json.loads(policy)
    statements = doc.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = []
    for s in statements:
        condition = s.get("Condition") or {}
        needed = {
            key
            for operator, keys in condition.items()
            if not operator.endswith("IfExists") and operator != "Null"
            for key in keys
        }
        if needed <= present:
            kept.append(s)
    doc["Statement"] = kept
    return json.dumps(doc)


def allowed(policy: str, action: str, resource: str, conditions: dict) -> bool:
    doc = json.loads(applicable(policy, set(conditions)))
    results = []
    for s in doc["Statement"]:
        one = dict(doc, Statement=[s])
        r = IAMPolicy(json.dumps(one)).is_action_permitted(
            action, resource, incoming_condition_values=conditions or None
        )
        if s.get("Effect") == "Deny" and r == PermissionResult.DENIED:
            return False
        results.append(r)
    return PermissionResult.PERMITTED in results


for line in sys.stdin:
    q = json.loads(line)
    print(
        json.dumps(allowed(q["policy"], q["action"], q["resource"], q.get("conditions") or {})),
        flush=True,
    )
