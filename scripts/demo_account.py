"""Creates the demo account in the local emulator: users in interesting states,
the approvals registry, and the findings topic with an SQS queue subscribed.

Usage: demo_account.py setup | change | tags | organization | fix-mfa USER | root-session DIR
       demo_account.py state-table                      the state table, as infra/template.yaml defines it
       demo_account.py receive [QUEUE] [--tally FILE]   what a subscriber received (default: security-channel)
       demo_account.py subscribe QUEUE [SEVERITY...]    an SQS queue subscribed to the findings topic
       demo_account.py summary DIR                      the demo's closing summary from the outputs in DIR
Reads AWS_ENDPOINT_URL and credentials from the environment.
"""
import collections
import datetime as dt
import json
import pathlib
import re
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
    # Opted in to key rotation: its consumers read the key from Secrets Manager.
    user("svc-build", [("owner", "ci"), ("iam-sentinel:rotation", "auto")], key=True)
    # The fallback network policy and the MFA policy, published in infra/policies/, through groups;
    # the vendors' copy of the network policy lets the whole internet in.
    network = pathlib.Path("infra/policies/EnterpriseNetworkRestriction.json").read_text()
    policies = {
        "EnterpriseNetworkRestriction": network,
        "RequireMFA": pathlib.Path("infra/policies/RequireMFA.json").read_text(),
        "VendorNetwork": network.replace('"192.0.2.0/24"', '"0.0.0.0/0"'),
    }
    arns = {name: iam.create_policy(PolicyName=name, PolicyDocument=doc)["Policy"]["Arn"] for name, doc in policies.items()}
    for group, attached in {"staff": ["EnterpriseNetworkRestriction", "RequireMFA"], "vendors": ["VendorNetwork"]}.items():
        iam.create_group(GroupName=group)
        for name in attached:
            iam.attach_group_policy(GroupName=group, PolicyArn=arns[name])
    for name in ("svc-backup", "admin-carol", "dev-mallory", "svc-build"):
        iam.add_user_to_group(GroupName="staff", UserName=name)
    iam.add_user_to_group(GroupName="vendors", UserName="svc-legacy-erp")
    iam.attach_user_policy(UserName="admin-carol", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    topic = sns.create_topic(Name="iam-sentinel-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="security-channel")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    print(f"export FINDINGS_TOPIC_ARN={topic} APPROVALS_SECRET_ID={SECRET_ID} DEMO_QUEUE_URL={queue}")


def receive(name="security-channel", tally=None):
    """Prints what a subscriber of the topic (e.g. a chat channel bridge) received."""
    queue = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    count = 0
    digests = 0
    by_severity = collections.Counter()
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
                digests += 1
                print(f"  {body['Subject']}")
            else:
                by_severity[attrs.get("severity")] += 1
                print(f"  {body['Subject']:<58} severity={attrs.get('severity')} check={attrs.get('check')}")
                print(f"      {finding['message']}")
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    print(f"  ({count} message(s) on the subscribed queue)")
    if tally:
        pathlib.Path(tally).write_text(json.dumps({"messages": count, "digests": digests, "findings": by_severity}))


def subscribe(name, *severities):
    """Creates queue NAME and subscribes it to the findings topic, filtered on severity if given."""
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(":iam-sentinel-findings"))
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": json.dumps({"severity": list(severities)})} if severities else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    print(f"  queue {name} subscribed to {topic}" + (f" (severity: {', '.join(severities)})" if severities else ""))


SEVERITIES = ("critical", "high", "medium", "low", "info")


def table_counts(text):
    """Findings by severity and remediated users in the CLI's table output (`HIGH (3)` headings)."""
    counts = collections.Counter()
    remediated = []
    for line in text.splitlines():
        heading = re.fullmatch(r"(CRITICAL|HIGH|MEDIUM|LOW|INFO) \((\d+)\)", line)
        if heading:
            counts[heading[1].lower()] += int(heading[2])
        elif line.rstrip().endswith("[untag: applied]"):
            remediated.append(line.split()[1])
    return counts, remediated


def by_severity(counts):
    total = sum(counts.values())
    parts = [f"{counts[s]} {s}" for s in SEVERITIES if counts.get(s)]
    return f"{total} finding{'' if total == 1 else 's'}" + (f" ({', '.join(parts)})" if parts else "")


def summary(directory):
    """The closing summary: what each part of the demo found, remediated and delivered."""
    d = pathlib.Path(directory)

    def read(name):
        return (d / name).read_text() if (d / name).exists() else ""

    replays = sorted(d.glob("event-*.out"))
    events, remediated = table_counts("".join(p.read_text() for p in replays))
    ignored = sum(any(line.startswith("ignored:") for line in p.with_suffix(".err").read_text().splitlines())
                  for p in replays)
    scan, scan_remediated = table_counts(read("scan.txt"))
    later, _ = table_counts(read("scan-later.txt"))
    remediated += scan_remediated
    rows = [("events replayed", f"{len(replays)} ({ignored} ignored as no-ops): {by_severity(events)}"),
            ("scan, today", by_severity(scan)),
            ("scan, in 100 days", by_severity(later) + " (--as-of: what will be due; remediates nothing)")]
    lambda_text = read("lambda.json")
    if lambda_text:
        response = json.loads(lambda_text)
        rows.append(("Lambda (schedule)", f"{response['summary']}; {response['published']} message(s) published"))
    else:
        rows.append(("Lambda (schedule)", "did not run"))
    users = list(dict.fromkeys(remediated))
    rows.append(("remediated", f"{len(users)} user(s), AccessException removed: {', '.join(users)}" if users else "nobody"))
    received = json.loads(read("received.json") or "{}")
    if received:
        findings = collections.Counter(received["findings"])
        rows.append(("subscriber received", f"{received['messages']} message(s): {received['digests']} scan digest, "
                                            f"{by_severity(findings)} one per message"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def tags():
    """Prints the tags of the users remediation acts on."""
    for name in ("dev-mallory", "contractor-eve", "svc-payroll-sftp", "svc-legacy-erp"):
        pairs = [f"{t['Key']}={t['Value']}" for t in iam.list_user_tags(UserName=name)["Tags"]]
        print(f"  {name:<16} {', '.join(pairs) or '(no tags)'}")


def change():
    """Makes the IAM changes the replayed events record."""
    iam.tag_user(UserName="dev-mallory", Tags=[{"Key": "AccessException", "Value": "True"}])
    iam.create_user(UserName="contractor-eve", Tags=[{"Key": "AccessException", "Value": "True"}, {"Key": "Team", "Value": "vendors"}])
    iam.create_login_profile(UserName="analyst-dave", Password="Demo-Passw0rd!")
    iam.attach_user_policy(UserName="analyst-dave", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.update_account_password_policy(MinimumPasswordLength=8, PasswordReusePrevention=5)


def state_table():
    """Creates the state table exactly as infra/template.yaml's StateTable defines it."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) read as plain values.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node))
    template = yaml.load(pathlib.Path("infra/template.yaml").read_text(), Loader=Loader)
    props = template["Resources"]["StateTable"]["Properties"]
    ddb = boto3.client("dynamodb")
    name = "iam-sentinel-state"
    ddb.create_table(TableName=name, BillingMode=props["BillingMode"], KeySchema=props["KeySchema"],
                     AttributeDefinitions=props["AttributeDefinitions"],
                     GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
    ttl = props["TimeToLiveSpecification"]
    ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"],
                                                                     "Enabled": bool(ttl["Enabled"])})
    print(f"export STATE_TABLE={name}")


def change_again():
    """dev-mallory tags itself with AccessException=True once more (the replayed TagUser)."""
    iam.tag_user(UserName="dev-mallory", Tags=[{"Key": "AccessException", "Value": "True"}])


def fix_mfa(name):
    """The fix lands: USER enrols an MFA device."""
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-fix")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")
    print(f"  {name} enrolled an MFA device")


def organization():
    """Turns the demo account into an organization's management account with three members in
    two OUs: seed 000's SCP on Production, a copy open to every network on Sandbox, none on
    Workloads; users in the members (reached, as the function does, through the member role);
    the registry migrated to organization mode (every approval names its account)."""
    orgs = boto3.client("organizations")
    sts = boto3.client("sts")
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    ous = {name: orgs.create_organizational_unit(ParentId=root, Name=name)["OrganizationalUnit"]["Id"]
           for name in ("Production", "Sandbox", "Workloads")}
    accounts = {}
    for name, ou in (("payments-prod", "Production"), ("data-sandbox", "Sandbox"), ("ml-workloads", "Workloads")):
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        accounts[name] = status["AccountId"]
        orgs.move_account(AccountId=accounts[name], SourceParentId=root, DestinationParentId=ous[ou])
    seed = pathlib.Path("infra/policies/RestrictIAMUserAccessWithExceptions.scp.json").read_text()
    open_copy = seed.replace('["192.0.2.0/24", "203.0.113.0/24", "2001:db8:1234::/48"]', '["0.0.0.0/0"]')
    for name, document, target in (("RestrictIAMUserAccessWithExceptions", seed, ous["Production"]),
                                    ("RestrictIAMUserAccessWithExceptions-sandbox", open_copy, ous["Sandbox"])):
        policy = orgs.create_policy(Name=name, Description="seed 000", Type="SERVICE_CONTROL_POLICY", Content=document)
        orgs.attach_policy(PolicyId=policy["Policy"]["PolicySummary"]["Id"], TargetId=target)

    def member_iam(account):
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/iam-sentinel-member", RoleSessionName="demo")["Credentials"]
        return boto3.client("iam", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=c["SessionToken"])

    for name in ("payments-prod", "data-sandbox"):
        member_iam(accounts[name]).create_user(UserName="alice", Tags=[{"Key": "AccessException", "Value": "True"}])
    ml = member_iam(accounts["ml-workloads"])
    ml.create_user(UserName="notebook-bob")
    ml.create_login_profile(UserName="notebook-bob", Password="Demo-Passw0rd!")
    registry = json.loads(secrets.get_secret_value(SecretId=SECRET_ID)["SecretString"])
    for entry in registry["exceptions"]:
        entry["account"] = ACCOUNT
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry["exceptions"].append({"user": "alice", "account": accounts["payments-prod"], "approved_by": "sec-lead@example.com",
                                   "ticket": "SEC-1200", "expires": expires, "reason": "card network VPN"})
    secrets.put_secret_value(SecretId=SECRET_ID, SecretString=json.dumps(registry))
    for name, account in accounts.items():
        print(f"# {name}: {account}")


def root_session(directory):
    """Writes two events of one root session into `directory`, from the samples in events/: the
    management account's AssumeRoot into payments-prod (task S3UnlockBucketPolicy), then
    payments-prod's record of the bucket policy the session deleted, with the same temporary key."""
    orgs = boto3.client("organizations")
    member = next(a["Id"] for a in orgs.list_accounts()["Accounts"] if a["Name"] == "payments-prod")
    now = dt.datetime.now(dt.timezone.utc)
    started, called = now - dt.timedelta(minutes=2), now - dt.timedelta(minutes=1)
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
    assume = json.loads(pathlib.Path("events/assume-root-unlock-bucket-policy.json").read_text())
    assume["time"] = assume["detail"]["eventTime"] = stamp(started)
    assume["detail"]["requestParameters"]["targetPrincipal"] = member
    call = json.loads(pathlib.Path("events/root-session-delete-bucket-policy.json").read_text())
    call["time"] = call["detail"]["eventTime"] = stamp(called)
    text = json.dumps(call).replace("444455556666", member)
    pathlib.Path(directory, "assume-root.json").write_text(json.dumps(assume))
    pathlib.Path(directory, "root-session-call.json").write_text(text)
    print(f"# AssumeRoot by RootTaskOperator/dana into payments-prod ({member}), S3UnlockBucketPolicy;")
    print("# then payments-prod records DeleteBucketPolicy by its root user, with the session's key")


def main(args):
    command, rest = args[0], args[1:]
    if command == "receive":
        tally = None
        if "--tally" in rest:
            i = rest.index("--tally")
            tally = rest[i + 1]
            rest = rest[:i] + rest[i + 2:]
        receive(*rest, tally=tally)
    else:
        {"setup": setup, "tags": tags, "change": change, "subscribe": subscribe, "summary": summary,
         "organization": organization, "state-table": state_table, "fix-mfa": fix_mfa,
         "change-again": change_again, "root-session": root_session}[command](*rest)


if __name__ == "__main__":
    main(sys.argv[1:])
