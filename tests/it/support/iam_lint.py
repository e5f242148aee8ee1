"""Lints IAM policies with parliament (duo-labs/parliament, from PyPI): reads a JSON list of {"name", "document"} on
stdin, writes a JSON list of findings {"policy", "issue", "severity", "detail"} on stdout."""
import json
import sys

from parliament import analyze_policy_string

findings = []
for p in json.load(sys.stdin):
    doc = p["document"]
    policy = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True)
    for f in policy.findings:
        findings.append({"policy": p["name"], "issue": f.issue, "severity": f.severity, "detail": f.detail})
print(json.dumps(findings, default=str))
