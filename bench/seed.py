"""Seeds a moto server with N IAM users in mixed states (the benchmark's account).

Mix: every 2nd user has an access key (stale once judged 100 days ahead, and never
used: moto cannot record use), every 6th a second key, 40 % a console password,
20 % an MFA device, 10 % the AccessException tag (half of them approved).
Policies: 20 groups (even ones with the published EnterpriseNetworkRestriction and
RequireMFA, odd ones with a network copy that lets 0.0.0.0/0 in), 50 more customer
managed policies attached to them, every user but each 7th in a group, each 25th
with an inline policy, each 50th with AdministratorAccess attached directly; a CIS
password policy.
Usage: seed.py N   (AWS_ENDPOINT_URL and credentials from the environment)
"""
import concurrent.futures as cf
import datetime as dt
import json
import pathlib
import sys

import boto3
from botocore.config import Config

iam = boto3.client("iam", config=Config(max_pool_connections=16, retries={"max_attempts": 10}))
SECRET_ID = "iam-sentinel/approvals"


def user_name(i):
    return f"bench-user-{i:05d}"


def seed_user(i, iam=iam):
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


GROUPS = 20
POLICIES = pathlib.Path(__file__).resolve().parent.parent / "infra" / "policies"
ALLOW_READ = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]})


def seed_policies(iam=iam):
    network = (POLICIES / "EnterpriseNetworkRestriction.json").read_text()
    published = {
        "EnterpriseNetworkRestriction": network,
        "RequireMFA": (POLICIES / "RequireMFA.json").read_text(),
        "VendorNetwork": network.replace('"192.0.2.0/24"', '"0.0.0.0/0"'),
    }
    arns = {name: iam.create_policy(PolicyName=name, PolicyDocument=doc)["Policy"]["Arn"]
            for name, doc in published.items()}
    extra = [iam.create_policy(PolicyName=f"team-read-{k:02d}", PolicyDocument=ALLOW_READ)["Policy"]["Arn"]
             for k in range(50)]
    for g in range(GROUPS):
        group = f"team-{g:02d}"
        iam.create_group(GroupName=group)
        network_policy = "EnterpriseNetworkRestriction" if g % 2 == 0 else "VendorNetwork"
        for arn in [arns[network_policy], arns["RequireMFA"]] + extra[g::GROUPS]:
            iam.attach_group_policy(GroupName=group, PolicyArn=arn)
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)


def seed_user_policies(i, iam=iam):
    name = user_name(i)
    if i % 7 != 0:
        iam.add_user_to_group(GroupName=f"team-{i % GROUPS:02d}", UserName=name)
    if i % 25 == 0:
        iam.put_user_policy(UserName=name, PolicyName="own-bucket", PolicyDocument=ALLOW_READ)
    if i % 50 == 0:
        iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")


def main():
    n = int(sys.argv[1])
    seed_policies()
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(seed_user, range(n)))
        list(pool.map(seed_user_policies, range(n)))
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approvals = [{"user": user_name(i), "approved_by": "sec-lead@example.com", "ticket": f"SEC-{i}", "expires": expires}
                 for i in range(0, n, 20)]
    boto3.client("secretsmanager").create_secret(Name=SECRET_ID, SecretString=json.dumps({"exceptions": approvals}))


if __name__ == "__main__":
    main()
