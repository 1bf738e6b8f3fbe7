"""Lints the IAM policy JSON in infra/policies with parliament; exits 1 on any finding.

One finding is checked differently: parliament's `Ip` type pattern accepts neither hex
digits nor `::`, so it rejects every valid IPv6 CIDR in aws:SourceIp. Those values are
validated with Python's ipaddress module instead, and the finding is accepted only then.
"""
import ipaddress
import json
import pathlib
import sys

from parliament import analyze_policy_string


def source_ips(node):
    """Every aws:SourceIp value in a policy document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.lower() == "aws:sourceip":
                yield from (value if isinstance(value, list) else [value])
            else:
                yield from source_ips(value)
    elif isinstance(node, list):
        for item in node:
            yield from source_ips(item)


failed = False
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    text = path.read_text()
    cidrs = list(source_ips(json.loads(text)))
    for cidr in cidrs:
        ipaddress.ip_network(cidr)  # raises on an invalid CIDR
    policy = analyze_policy_string(text, include_community_auditors=False)
    real = [f for f in policy.findings
            if not (f.issue == "MISMATCHED_TYPE" and "aws:SourceIp" in str(f.detail)
                    and any(":" in c for c in cidrs))]
    for finding in real:
        failed = True
        print(f"{path}: {finding.severity} {finding.issue}: {finding.detail} {finding.location}")
    print(f"{path}: parliament found {len(real)} issue(s); {len(cidrs)} aws:SourceIp CIDR(s) valid")
sys.exit(1 if failed else 0)
