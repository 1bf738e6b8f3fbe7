"""The floor: a boto3 script making the scan's bulk reads one after another, and nothing else.

It generates and polls the credential report, downloads and parses it (CSV), pages
GetAccountAuthorizationDetails with the scan's filter (users, groups, customer managed
policies), reads the password policy and the approvals registry (GetSecretValue,
DescribeSecret) — the calls `iam-sentinel scan` makes — and judges nothing. Its wall time
is what the server needs to answer those reads plus a Python client's parsing: how close
the scan runs to the server it reads.

Run against a seeded server (AWS_ENDPOINT_URL etc. from the environment); prints one
JSON object: calls by service:Operation, users in the report and in GAAD.
"""
import collections
import csv
import io
import json
import sys
import time

import boto3

SECRET_ID = "iam-sentinel/approvals"


def main():
    calls = collections.Counter()
    iam, secrets = boto3.client("iam"), boto3.client("secretsmanager")

    def call(client, op, **params):
        calls[f"{client.meta.service_model.service_name}:{client.meta.method_to_api_mapping[op]}"] += 1
        return getattr(client, op)(**params)

    delay = 0.05
    while call(iam, "generate_credential_report")["State"] != "COMPLETE":
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    content = call(iam, "get_credential_report")["Content"].decode()
    report_users = sum(1 for row in csv.DictReader(io.StringIO(content)) if row["user"] != "<root_account>")

    gaad_users, marker = 0, None
    while True:
        params = {"Filter": ["User", "Group", "LocalManagedPolicy"]}
        if marker:
            params["Marker"] = marker
        page = call(iam, "get_account_authorization_details", **params)
        gaad_users += len(page["UserDetailList"])
        if not page.get("IsTruncated"):
            break
        marker = page["Marker"]

    try:
        call(iam, "get_account_password_policy")
    except iam.exceptions.NoSuchEntityException:
        pass
    json.loads(call(secrets, "get_secret_value", SecretId=SECRET_ID)["SecretString"])
    call(secrets, "describe_secret", SecretId=SECRET_ID)
    print(json.dumps({"by_action": dict(calls), "report_users": report_users, "gaad_users": gaad_users}))


if __name__ == "__main__":
    sys.exit(main())
