"""Checks each AWS request the tests send against AWS's published service model, one JSON request per line on stdin,
one JSON answer per line on stdout: `{"operation": "Iam.CreateRole", "violations": ["...", ...]}`.

The models are botocore's (`botocore/data/{service}/{version}/service-2.json`), the same facts as AWS's Smithy
models: the members each operation has, which are required, and each value's constraints (`min`/`max` lengths,
sizes and ranges, `pattern`, `enum`). AWS's front ends check these before the service runs and answer
"1 validation error detected: Value '…' at '…' failed to satisfy constraint: …" (ValidationException, or
ValidationError in the query protocol); moto checks almost none of them.

The request is read back from the wire as the service's protocol writes it
(https://smithy.io/2.0/aws/protocols/index.html): `awsJson1_0/1_1` (member names as keys), `restJson1` (the HTTP
method and URI template pick the operation; members bound to the URI, the query string, headers or the JSON body by
their `locationName`), `awsQuery` (`Name.member.N`, `Name.entry.N.key`), `restXml`, and RPC v2 CBOR, which the
caller hands over already decoded. A member the operation does not have is reported too: AWS ignores unknown JSON
members, but one there means the code believes in a field that does nothing.

Patterns are matched whole, as AWS's validators match them (Java's `Pattern.matches`), with the `regex` module,
which knows the `\\p{L}` classes the models use. Lengths count characters, as AWS counts them.

`AWS_MODEL_LOG=path` appends each answer to that file: which operations a run sent, and how often."""
import base64
import json
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.loaders
import botocore.model
import regex

LOADER = botocore.loaders.Loader()
MODELS = {}
PATTERNS = {}


def model(service):
    if service not in MODELS:
        MODELS[service] = botocore.model.ServiceModel(LOADER.load_service_model(service, "service-2"), service)
    return MODELS[service]


def pattern(p):
    if p not in PATTERNS:
        try:
            PATTERNS[p] = regex.compile(p)
        except regex.error:
            PATTERNS[p] = None
    return PATTERNS[p]


# ---- finding the operation --------------------------------------------------------------------------------------


def uri_regex(template):
    """A requestUri's path template as a regex, and its literal query keys (`?uploads`, `?tagging=`)."""
    path, _, query = template.partition("?")
    out, literal = "", 0
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            out += f"(?P<{re.sub(r'[^A-Za-z0-9_]', '_', name)}>{'.+' if greedy else '[^/]+'})"
        else:
            out += re.escape(part)
            literal += len(part)
    keys = [kv.split("=")[0] for kv in query.split("&") if kv]
    return re.compile(out.rstrip("/") + "/?$"), keys, literal


def rest_operation(m, method, path, query):
    best = None
    for name in m.operation_names:
        op = m.operation_model(name)
        if op.http.get("method") != method:
            continue
        rx, keys, literal = uri_regex(op.http["requestUri"])
        found = rx.match(path)
        if not found or any(k not in query for k in keys):
            continue
        score = (literal, len(keys))
        if best is None or score > best[0]:
            best = (score, op, found)
    return (best[1], best[2]) if best else (None, None)


# ---- reading the wire back into the model's members -------------------------------------------------------------


def scalar(shape, text):
    """A value that travels as text (URI, query string, header, query protocol, XML) in its model type."""
    t = shape.type_name
    try:
        if t in ("integer", "long"):
            return int(text)
        if t in ("float", "double"):
            return float(text)
    except ValueError:
        return text
    if t == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if t == "blob":
        try:
            return base64.b64decode(text, validate=True)
        except ValueError:
            return text
    return text


def rest_params(op, found, query, headers, body, xml):
    shape, params, unknown = op.input_shape, {}, []
    if shape is None:
        return params, unknown
    groups = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
    payload = shape.serialization.get("payload")
    bound_body = {}
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        if where == "uri":
            key = re.sub(r"[^A-Za-z0-9_]", "_", wire)
            if key in groups:
                params[name] = scalar(member, groups[key])
        elif where == "querystring":
            if member.type_name == "map":
                continue
            if wire in query:
                values = query[wire]
                params[name] = [scalar(member.member, v) for v in values] if member.type_name == "list" else scalar(member, values[0])
        elif where == "header":
            if wire.lower() in headers:
                params[name] = scalar(member, headers[wire.lower()])
        elif where == "headers":
            continue
        else:
            bound_body[wire] = (name, member)
    known_query = {m.serialization.get("name", n) for n, m in shape.members.items() if m.serialization.get("location") == "querystring"}
    unknown += [f"query parameter '{k}'" for k in query if k not in known_query and not any(
        m.serialization.get("location") == "querystring" and m.type_name == "map" for m in shape.members.values())
        and k not in uri_regex(op.http["requestUri"])[1]]
    if payload:
        member = shape.members[payload]
        if member.type_name == "structure" and body:
            value = xml_value(member, ET.fromstring(body)) if xml else json.loads(body)
            params[payload] = value
        elif body:
            params[payload] = body
        return params, unknown
    if body:
        if xml:
            root = ET.fromstring(body)
            for child in root:
                tag = child.tag.split("}")[-1]
                if tag in bound_body:
                    name, member = bound_body[tag]
                    params[name] = xml_value(member, child)
                else:
                    unknown.append(f"member '{tag}'")
        else:
            doc = json.loads(body) if body.strip() else {}
            for key, value in doc.items():
                if key in bound_body:
                    name, member = bound_body[key]
                    params[name] = json_value(member, value, unknown, key)
                else:
                    unknown.append(f"member '{key}'")
    return params, unknown


def json_value(shape, value, unknown, at):
    """A JSON body's value with structure members under their model names (rest-json writes `locationName`s)."""
    if shape.type_name == "structure" and isinstance(value, dict):
        out = {}
        by_wire = {m.serialization.get("name", n): (n, m) for n, m in shape.members.items()}
        for k, v in value.items():
            if k in by_wire:
                n, m = by_wire[k]
                out[n] = json_value(m, v, unknown, f"{at}.{k}")
            else:
                unknown.append(f"member '{at}.{k}'")
        return out
    if shape.type_name == "list" and isinstance(value, list):
        return [json_value(shape.member, v, unknown, f"{at}[{i}]") for i, v in enumerate(value)]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: json_value(shape.value, v, unknown, f"{at}.{k}") for k, v in value.items()}
    if shape.type_name == "blob" and isinstance(value, str):
        return scalar(shape, value)
    return value


def xml_value(shape, el):
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                items = [c for c in el if c.tag.split("}")[-1] == wire]
                if items:
                    out[name] = [xml_value(member.member, c) for c in items]
                continue
            child = next((c for c in el if c.tag.split("}")[-1] == wire), None)
            if child is not None:
                out[name] = xml_value(member, child)
        return out
    if t == "list":
        return [xml_value(shape.member, c) for c in el]
    return scalar(shape, el.text or "")


def query_params(shape, form, prefix, unknown_keys):
    """The awsQuery form's values under `prefix` read as `shape`; consumed keys leave `unknown_keys`."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            key = f"{prefix}.{wire}" if prefix else wire
            value = query_params(member, form, key, unknown_keys)
            if value is not None:
                out[name] = value
        return out if out or not prefix else None
    if t == "list":
        step = "" if shape.serialization.get("flattened") else ".member"
        items, i = [], 1
        while True:
            key = f"{prefix}{step}.{i}"
            value = query_params(shape.member, form, key, unknown_keys)
            if value is None:
                break
            items.append(value)
            i += 1
        if not items and prefix in form:
            unknown_keys.discard(prefix)  # an empty list is sent as `Name=`
            return []
        return items if items else None
    if t == "map":
        step = "" if shape.serialization.get("flattened") else ".entry"
        out, i = {}, 1
        while f"{prefix}{step}.{i}.key" in form:
            k = f"{prefix}{step}.{i}.key"
            unknown_keys.discard(k)
            out[form[k]] = query_params(shape.value, form, f"{prefix}{step}.{i}.value", unknown_keys)
            i += 1
        return out if out else None
    if prefix in form:
        unknown_keys.discard(prefix)
        return scalar(shape, form[prefix])
    return None


# ---- the constraints --------------------------------------------------------------------------------------------


def show(value):
    return value if isinstance(value, str) else json.dumps(value) if not isinstance(value, bytes) else f"<{len(value)} bytes>"


def length(meta, n, fail):
    """A string's, list's, map's or blob's `min`/`max`, in AWS's words."""
    if "min" in meta and n < meta["min"]:
        fail(f"Member must have length greater than or equal to {meta['min']}")
    if "max" in meta and n > meta["max"]:
        fail(f"Member must have length less than or equal to {meta['max']}")


def check(shape, value, at, out):
    t, meta = shape.type_name, shape.metadata
    fail = lambda what: out.append(f"Value '{show(value)[:200]}' at '{at}' failed to satisfy constraint: {what}")
    if t == "structure":
        if not isinstance(value, dict):
            return fail("Member must be a structure")
        for name in shape.required_members:
            if name not in value:
                out.append(f"Value null at '{at + '.' if at else ''}{name}' failed to satisfy constraint: Member must not be null")
        for name, v in value.items():
            if name in shape.members and v is not None:
                check(shape.members[name], v, f"{at}.{name}" if at else name, out)
        return
    if t == "list":
        if not isinstance(value, list):
            return fail("Member must be a list")
        length(meta, len(value), fail)
        for i, v in enumerate(value):
            check(shape.member, v, f"{at}.{i + 1}.member", out)
        return
    if t == "map":
        if not isinstance(value, dict):
            return fail("Member must be a map")
        length(meta, len(value), fail)
        for k, v in value.items():
            check(shape.key, k, f"{at}.key", out)
            check(shape.value, v, f"{at}.{k}", out)
        return
    if t == "string":
        if not isinstance(value, str):
            return fail("Member must be a string")
        if shape.enum and value not in shape.enum:
            fail(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        length(meta, len(value), fail)
        rx = pattern(meta["pattern"]) if "pattern" in meta else None
        if rx is not None and not rx.fullmatch(value):
            fail(f"Member must satisfy regular expression pattern: {meta['pattern']}")
        return
    if t in ("integer", "long", "float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return fail(f"Member must be a number ({t})")
        if "min" in meta and value < meta["min"]:
            fail(f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            fail(f"Member must have value less than or equal to {meta['max']}")
        return
    if t == "boolean":
        if not isinstance(value, bool):
            fail("Member must be a boolean")
        return
    if t == "blob":
        length(meta, len(value) if isinstance(value, (bytes, str)) else 0, fail)


# ---- one request ------------------------------------------------------------------------------------------------

# The signing name in SigV4's credential scope, as the Rust SDK signs each service, to botocore's service name.
SIGNED_AS = {"apigateway": None, "lambda": "lambda", "iam": "iam", "sts": "sts", "kms": "kms", "logs": "logs",
             "acm": "acm", "route53": "route53", "monitoring": "cloudwatch", "execute-api": "apigatewaymanagementapi",
             # The bench's CloudFormation baseline (scripts/benchlib/deploy.py), the aws CLI's calls.
             "cloudformation": "cloudformation"}
# Signing names whose requests pass unchecked: only the bench's CloudFormation baseline uploads its zips to S3
# (wsdeploy never calls S3), and S3's blob payloads are beyond this check's reading of bodies.
UNCHECKED = {"s3"}


def service_of(q):
    scope = q.get("signed_as")
    if scope == "apigateway":
        return "apigatewayv2" if q["path"].startswith("/v2/") else "apigateway"
    return SIGNED_AS.get(scope)


def find(q):
    """The service model, the operation and the request's members."""
    service = service_of(q)
    if service is None:
        return None, None, None, [f"a request signed for '{q.get('signed_as')}', which the check does not know"]
    m = model(service)
    protocol = q.get("protocol") or m.metadata["protocol"]
    body = base64.b64decode(q.get("body") or "")
    headers = {k.lower(): v for k, v in q.get("headers", {}).items()}
    query = urllib.parse.parse_qs(q.get("query") or "", keep_blank_values=True)
    if protocol in ("json", "cbor"):
        target = headers.get("x-amz-target", "")
        name = q.get("operation") or target.rpartition(".")[2]
        if name not in m.operation_names:
            return m, None, None, [f"{service} has no operation '{name}'"]
        op = m.operation_model(name)
        doc = q["decoded"] if protocol == "cbor" else (json.loads(body) if body.strip() else {})
        unknown = []
        params = json_value(op.input_shape, doc, unknown, "") if op.input_shape else {}
        return m, op, params, [u.replace("'.", "'") for u in unknown]
    if protocol == "query":
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(), keep_blank_values=True).items()}
        name = form.pop("Action", "")
        form.pop("Version", None)
        if name not in m.operation_names:
            return m, None, None, [f"{service} has no operation '{name}'"]
        op = m.operation_model(name)
        keys = set(form)
        params = query_params(op.input_shape, form, "", keys) if op.input_shape else {}
        return m, op, params or {}, [f"parameter '{k}'" for k in sorted(keys)]
    op, found = rest_operation(m, q["method"], urllib.parse.unquote(q["path"]) if service == "route53" else q["path"], query)
    if op is None:
        return m, None, None, [f"{service} has no operation for {q['method']} {q['path']}"]
    params, unknown = rest_params(op, found, query, headers, body, protocol == "rest-xml")
    return m, op, params, unknown


def answer(q):
    if q.get("signed_as") in UNCHECKED:
        return {"operation": None, "violations": []}
    m, op, params, problems = find(q)
    if op is None:
        return {"operation": None, "violations": problems}
    out = [f"{op.name} has no {p}" for p in problems]
    if op.input_shape is not None:
        check(op.input_shape, params, "", out)
    return {"operation": f"{m.metadata.get('serviceId', m.service_name)}.{op.name}", "violations": out}


def main():
    for line in sys.stdin:
        try:
            reply = answer(json.loads(line))
        except Exception as e:  # a request the checker cannot read is the checker's bug, said as such
            reply = {"operation": None, "violations": [], "error": f"{type(e).__name__}: {e}"}
        if os.environ.get("AWS_MODEL_LOG"):
            with open(os.environ["AWS_MODEL_LOG"], "a") as f:
                f.write(json.dumps(reply) + "\n")
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
