"""Creates the demo account in the local emulator: users in interesting states,
the approvals registry, and the findings topic with an SQS queue subscribed.

Usage: demo_account.py setup | change | receive | tags
Reads AWS_ENDPOINT_URL and credentials from the environment.
"""
import datetime as dt
import json
import sys

import boto3

ACCOUNT = "123456789012"
SECRET_ID = "iam-sentinel/approvals"
iam = boto3.client("iam")
sns = boto3.client("sns")
sqs = boto3.client("sqs")
secrets = boto3.client("secretsmanager")


def user(name, tags=(), key=False, password=False, mfa=False):
    iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags])
    if key:
        iam.create_access_key(UserName=name)
    if password:
        iam.create_login_profile(UserName=name, Password="Demo-Passw0rd!")
    if mfa:
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")


def setup():
    now = dt.datetime.now(dt.timezone.utc)
    registry = {"exceptions": [
        {"user": "svc-legacy-erp", "approved_by": "sec-lead@example.com", "ticket": "SEC-1042",
         "expires": (now + dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": "on-prem ERP, no role support"},
        {"user": "svc-payroll-sftp", "approved_by": "sec-lead@example.com", "ticket": "SEC-0977",
         "expires": (now - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": "vendor SFTP bridge"},
        {"user": "svc-backup", "approved_by": "ciso@example.com", "ticket": "SEC-1100",
         "expires": (now + dt.timedelta(days=200)).strftime("%Y-%m-%dT%H:%M:%SZ"), "reason": "tape vault agent"},
    ]}
    secrets.create_secret(Name=SECRET_ID, SecretString=json.dumps(registry))
    user("svc-legacy-erp", [("AccessException", "True"), ("owner", "erp-team")], key=True)
    user("svc-payroll-sftp", [("AccessException", "True"), ("owner", "payroll")], key=True)
    user("svc-backup", [("AccessException", "True"), ("owner", "infra")], key=True)
    user("svc-reporting", [("AccessException", "true"), ("owner", "bi")], key=True)
    user("dev-mallory", [("owner", "platform")], key=True)
    user("analyst-dave", [("owner", "finance")])
    user("admin-carol", [("owner", "security")], key=True, password=True, mfa=True)
    iam.create_access_key(UserName="admin-carol")
    topic = sns.create_topic(Name="iam-sentinel-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="security-channel")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    print(f"export FINDINGS_TOPIC_ARN={topic} APPROVALS_SECRET_ID={SECRET_ID} DEMO_QUEUE_URL={queue}")


def receive():
    """Prints what a subscriber of the topic (e.g. a chat channel bridge) received."""
    queue = sqs.get_queue_url(QueueName="security-channel")["QueueUrl"]
    count = 0
    while True:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            body = json.loads(m["Body"])
            attrs = {k: v["Value"] for k, v in body.get("MessageAttributes", {}).items()}
            finding = json.loads(body["Message"])
            count += 1
            if "digest" in finding:
                print(f"  {body['Subject']}")
            else:
                print(f"  {body['Subject']:<58} severity={attrs.get('severity')} check={attrs.get('check')}")
                print(f"      {finding['message']}")
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    print(f"  ({count} message(s) on the subscribed queue)")


def tags():
    """Prints the tags of the users remediation acts on."""
    for name in ("dev-mallory", "contractor-eve", "svc-legacy-erp"):
        pairs = [f"{t['Key']}={t['Value']}" for t in iam.list_user_tags(UserName=name)["Tags"]]
        print(f"  {name:<16} {', '.join(pairs) or '(no tags)'}")


def change():
    """Makes the IAM changes the replayed events record."""
    iam.tag_user(UserName="dev-mallory", Tags=[{"Key": "AccessException", "Value": "True"}])
    iam.create_user(UserName="contractor-eve", Tags=[{"Key": "AccessException", "Value": "True"}, {"Key": "Team", "Value": "vendors"}])
    iam.create_login_profile(UserName="analyst-dave", Password="Demo-Passw0rd!")


if __name__ == "__main__":
    {"setup": setup, "receive": receive, "tags": tags, "change": change}[sys.argv[1]]()
