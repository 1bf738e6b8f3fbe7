"""Seeds a moto server with N IAM users in mixed states (the benchmark's account).

Mix: every 2nd user has an access key (stale once judged 100 days ahead, and never
used: moto cannot record use), every 6th a second key, 40 % a console password,
20 % an MFA device, 10 % the AccessException tag (half of them approved).
Usage: seed.py N   (AWS_ENDPOINT_URL and credentials from the environment)
"""
import concurrent.futures as cf
import datetime as dt
import json
import sys

import boto3
from botocore.config import Config

iam = boto3.client("iam", config=Config(max_pool_connections=16, retries={"max_attempts": 10}))
SECRET_ID = "iam-sentinel/approvals"


def user_name(i):
    return f"bench-user-{i:05d}"


def seed_user(i):
    name = user_name(i)
    tags = [{"Key": "AccessException", "Value": "True"}] if i % 10 == 0 else []
    iam.create_user(UserName=name, Tags=tags)
    if i % 2 == 0:
        iam.create_access_key(UserName=name)
    if i % 6 == 0:
        iam.create_access_key(UserName=name)
    if i % 5 in (1, 2):
        iam.create_login_profile(UserName=name, Password="Bench-Passw0rd!")
    if i % 5 == 1:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")


def main():
    n = int(sys.argv[1])
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed_user, range(n)))
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approvals = [{"user": user_name(i), "approved_by": "sec-lead@example.com", "ticket": f"SEC-{i}", "expires": expires}
                 for i in range(0, n, 20)]
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps({"exceptions": approvals}))


if __name__ == "__main__":
    main()
