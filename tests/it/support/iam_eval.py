"""Answers whether an IAM policy allows an action on a resource, one JSON question per line on stdin, one JSON
answer per line on stdout. moto's own policy evaluator (moto.iam.access_control.IAMPolicy) matches actions and
resources; conditions are decided here, by AWS's rules. moto's live enforcement (INITIAL_NO_AUTH_ACTION_COUNT)
refuses valid SigV4 signatures on Lambda's REST paths and names API Gateway v2 actions its own way, so the tests'
AWS-behaviour layer asks this evaluator instead.

Why conditions are not left to moto: it knows few operators (no ArnEquals, no ForAllValues), and it takes a
condition on a context key the request does not carry as met, where AWS does not ("If the key that you specify in a
policy condition is not present in the request context, the values do not match",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition.html), except for
...IfExists operators, Null, and ForAllValues, which is true of an empty set
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html).
So each statement whose conditions hold is handed to moto without them.

Statements combine as AWS combines them: an explicit Deny wins, else any Allow allows; with a permissions boundary,
the boundary must allow too (identity policy ∩ boundary,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).

A question about a KMS key carries the key's policy, which KMS asks first: "Every KMS key must have exactly one key
policy... no principal, including the account root user or key creator, has any permissions to a KMS key unless they
are explicitly allowed, and never denied, in a key policy, IAM policy, or grant", and IAM policies count only where
a key policy statement names the account (`Principal: arn:…:root`)
(https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html, key-policy-default.html). So: a
Deny in either wins; a key policy statement naming the caller (or `*`) allows by itself; one naming the account
allows what the identity's own policy (and boundary) allows. A question with no identity policy is one for an
identity allowed everything by IAM, on which only key policies are played."""
import fnmatch
import json
import sys

from moto.iam.access_control import IAMPolicy, PermissionResult

NEGATED = ("StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike", "StringNotEqualsIgnoreCase")


def as_list(v):
    return v if isinstance(v, list) else [v]


def one(base, actual, expected):
    """Whether the single context value `actual` matches any expected value under operator `base`."""
    for e in as_list(expected):
        e = str(e)
        if base in ("StringEquals", "StringNotEquals", "ArnEquals", "ArnNotEquals"):
            ok = actual == e if not base.startswith("Arn") else fnmatch.fnmatchcase(actual, e)
        elif base in ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"):
            ok = actual.lower() == e.lower()
        elif base in ("StringLike", "StringNotLike", "ArnLike", "ArnNotLike"):
            ok = fnmatch.fnmatchcase(actual, e)
        elif base == "Bool":
            ok = actual.lower() == e.lower()
        else:
            raise ValueError(f"condition operator {base} is not played by the test evaluator")
        if ok:
            return True
    return False


def holds(operator, key, expected, context):
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base[: -len("IfExists")] if if_exists else base
    if base == "Null":
        return (str(expected).lower() == "true") == (key not in context)
    if key not in context:
        return if_exists or qualifier == "ForAllValues" or (base in NEGATED and qualifier == "")
    actual = as_list(context[key])
    negated = base in NEGATED
    positive = base.replace("Not", "", 1) if negated else base
    matches = [one(positive, str(a), expected) for a in actual]
    if qualifier == "ForAllValues":
        return all(not m if negated else m for m in matches)
    if negated:
        return not any(matches)
    return any(matches)


def statements_of(policy):
    doc = json.loads(policy) if isinstance(policy, str) else policy
    s = doc.get("Statement", [])
    return doc, (s if isinstance(s, list) else [s])


def decide(policy, action, resource, context, only=None):
    """'deny', 'allow' or 'none' (no statement applies); `only` picks the statements asked."""
    doc, statements = statements_of(policy)
    allowed = False
    for s in statements:
        if only is not None and not only(s):
            continue
        condition = s.get("Condition") or {}
        if not all(holds(op, k, v, context) for op, keys in condition.items() for k, v in keys.items()):
            continue
        bare = {key: value for key, value in s.items() if key not in ("Condition", "Principal")}
        r = IAMPolicy(json.dumps(dict(doc, Statement=[bare]))).is_action_permitted(action, resource)
        if s.get("Effect") == "Deny" and r == PermissionResult.DENIED:
            return "deny"
        if r == PermissionResult.PERMITTED:
            allowed = True
    return "allow" if allowed else "none"


def named(statement, principal, account):
    """Whom a key policy statement names: 'caller' (the caller or anyone), 'account' (the account, which hands the
    decision to IAM) or None."""
    if "NotPrincipal" in statement:
        raise ValueError("NotPrincipal is not played by the test evaluator")
    p = statement.get("Principal")
    aws = ["*"] if p == "*" else as_list((p or {}).get("AWS", []))
    if "*" in aws or principal in aws:
        return "caller"
    if account in aws or any(a.endswith(f":iam::{account}:root") for a in aws):
        return "account"
    return None


def by_identity(q, context):
    if q.get("policy") is None:
        return True
    if decide(q["policy"], q["action"], q["resource"], context) != "allow":
        return False
    if q.get("boundary"):
        return decide(q["boundary"], q["action"], q["resource"], context) == "allow"
    return True


def by_key_policy(q, context):
    key_policy, principal, account = q["key_policy"], q["principal"], q["account"]
    ask = lambda who: decide(key_policy, q["action"], q["resource"], context,
                             only=lambda s: named(s, principal, account) == who)
    caller, delegated = ask("caller"), ask("account")
    if "deny" in (caller, delegated):
        return False
    if q.get("policy") is not None and decide(q["policy"], q["action"], q["resource"], context) == "deny":
        return False
    return caller == "allow" or (delegated == "allow" and by_identity(q, context))


def allowed(q):
    context = q.get("conditions") or {}
    if q.get("key_policy"):
        return by_key_policy(q, context)
    return by_identity(q, context)


for line in sys.stdin:
    print(json.dumps(allowed(json.loads(line))), flush=True)
