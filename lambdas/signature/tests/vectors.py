#!/usr/bin/env python3
"""Writes vectors.json: reference cases for X-Wsdeploy-Signature, computed here with Python's hmac and hashlib,
independently of every implementation that checks itself against them (the Rust crate, the Express middleware,
the NestJS guard). Run it again only to add cases; a change to an existing vector is a change of the scheme."""
import hashlib
import hmac
import json
import pathlib

T = 1_800_000_000
V1_ACCEPTED_UNTIL = 1_811_808_000  # 2027-06-01T00:00:00Z


def h(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def v2(secret, t, method, target, body, authorization):
    canonical = "\n".join(["wsdeploy-v2", str(t), method, target, h(body.encode()), h(authorization.encode())])
    return hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()


def v1(secret, t, method, target, body):
    return hmac.new(secret.encode(), f"{t}.{method}.{target}.{body}".encode(), hashlib.sha256).hexdigest()


def header(signers, t, method, target, body, authorization):
    return ",".join([f"t={t}"] + [f"v2={v2(s, t, method, target, body, authorization)}" for s in signers])


POST = dict(method="POST", target="/socket-connections", body='{"connectionId":"TWegAcC4EowCHnA="}',
            authorization="Bearer eyJhbGciOi.user-1")
DELETE = dict(method="DELETE", target="/socket-connections/TWegAcC4EowCHnA%3D", body="", authorization="")
NEW, OLD = "n3w-" + "a" * 40, "0ld-" + "b" * 40


def case(name, req, hdr, secrets, now, result, signed_by=None):
    c = dict(name=name, **req, header=hdr, secrets=secrets, now=now, result=result)
    if signed_by is not None:
        c["signed_by"] = signed_by  # sign(signed_by, t, request) must produce `header` byte for byte
        c["t"] = T
    return c


def main():
    sig = lambda signers, req, t=T: header(signers, t, **req)
    other_token = dict(POST, authorization="Bearer another-user")
    cases = [
        case("post with a token", POST, sig([NEW], POST), [NEW], T + 10, "v2", [NEW]),
        case("delete, no body, no authorization", DELETE, sig([NEW], DELETE), [NEW], T, "v2", [NEW]),
        case("query string is part of the target", dict(POST, target="/socket-connections?region=eu"),
             sig([NEW], dict(POST, target="/socket-connections?region=eu")), [NEW], T, "v2", [NEW]),
        case("rotation: signed with both, backend still knows only the old secret", POST, sig([NEW, OLD], POST),
             [OLD], T, "v2", [NEW, OLD]),
        case("rotation: signed with both, backend knows both", POST, sig([NEW, OLD], POST), [NEW, OLD], T, "v2"),
        case("rotation: signed with the old one, backend knows both", POST, sig([OLD], POST), [NEW, OLD], T, "v2"),
        case("retired: signed with the old one only, backend dropped it", POST, sig([OLD], POST), [NEW], T,
             "mismatch"),
        case("replayed with another token", other_token, sig([NEW], POST), [NEW], T, "mismatch"),
        case("another method", dict(DELETE, method="POST"), sig([NEW], DELETE), [NEW], T, "mismatch"),
        case("body altered", dict(POST, body='{"connectionId":"other="}'), sig([NEW], POST), [NEW], T, "mismatch"),
        case("fields shifted across a separator", dict(POST, method="POST", target="/socket-connections\nx"),
             sig([NEW], POST), [NEW], T, "malformed"),
        case("five minutes late is fine", POST, sig([NEW], POST), [NEW], T + 300, "v2"),
        case("five minutes early is fine", POST, sig([NEW], POST), [NEW], T - 300, "v2"),
        case("older than five minutes", POST, sig([NEW], POST), [NEW], T + 301, "expired"),
        case("v1 before its retirement date", POST, f"t={T},v1={v1(NEW, T, 'POST', POST['target'], POST['body'])}",
             [NEW], T, "v1"),
        case("v1 on its retirement date", POST,
             f"t={V1_ACCEPTED_UNTIL},v1={v1(NEW, V1_ACCEPTED_UNTIL, 'POST', POST['target'], POST['body'])}",
             [NEW], V1_ACCEPTED_UNTIL, "v1-retired"),
        case("a v2 entry decides even next to a valid v1", POST,
             f"t={T},v2={'0' * 64},v1={v1(NEW, T, 'POST', POST['target'], POST['body'])}", [NEW], T, "mismatch"),
        case("no signature", POST, "", [NEW], T, "malformed"),
        case("timestamp only", POST, f"t={T}", [NEW], T, "malformed"),
        case("short tag", POST, f"t={T},v2={'0' * 63}", [NEW], T, "malformed"),
        case("upper-case hex is not the form", POST, sig([NEW], POST).upper().replace("T=", "t=").replace("V2=", "v2="),
             [NEW], T, "malformed"),
        case("two timestamps", POST, f"t={T}," + sig([NEW], POST), [NEW], T, "malformed"),
        case("negative timestamp", POST, f"t=-{T},v2={'0' * 64}", [NEW], T, "malformed"),
        case("five signatures", POST, ",".join([f"t={T}"] + [f"v2={'0' * 64}"] * 5), [NEW], T, "malformed"),
        case("no secret to check with", POST, sig([""], POST), [""], T, "no-secret"),
    ]
    out = pathlib.Path(__file__).with_name("vectors.json")
    out.write_text(json.dumps({"scheme": "wsdeploy-v2", "v1_accepted_until": V1_ACCEPTED_UNTIL, "cases": cases},
                              indent=1) + "\n")


main()
