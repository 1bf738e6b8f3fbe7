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
import os
import sys
import time

import boto3


def main():
    calls = collections.Counter()
    iam, secrets = boto3.client("iam"), boto3.client("secretsmanager")
    for client in (iam, secrets):
        # Once per API call, paginated ones included (retries are not counted).
        client.meta.events.register(
            "before-call", lambda model, **_: calls.update([f"{model.service_model.service_name}:{model.name}"]))

    delay = 0.05
    while iam.generate_credential_report()["State"] != "COMPLETE":
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    content = iam.get_credential_report()["Content"].decode()
    report_users = sum(1 for row in csv.DictReader(io.StringIO(content)) if row["user"] != "<root_account>")

    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User", "Group", "LocalManagedPolicy"])
    gaad_users = sum(len(page["UserDetailList"]) for page in pages)

    try:
        iam.get_account_password_policy()
    except iam.exceptions.NoSuchEntityException:
        pass
    # The registry the scan reads (bench.py sets APPROVALS_SECRET_ID for both).
    secret_id = os.environ["APPROVALS_SECRET_ID"]
    json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])
    secrets.describe_secret(SecretId=secret_id)
    print(json.dumps({"by_action": dict(calls), "report_users": report_users, "gaad_users": gaad_users}))


if __name__ == "__main__":
    sys.exit(main())
