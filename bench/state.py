"""The state table's benchmark: three scans that publish, with STATE_TABLE set.

1. the first scan (every finding is new and announced),
2. a second scan with nothing changed (the digest only),
3. a scan after 1 % of the users changed: MFA enabled for that many console users who
   had none (each resolves one `console-without-mfa`).

The table is created as `infra/template.yaml` defines `StateTable` (key schema,
attributes, indexes, TTL read from the template). Findings go to an SNS topic with a
raw-delivery SQS subscriber; the messages it received are counted after each scan.
"""
import os
import pathlib

import boto3
import yaml

TEMPLATE = pathlib.Path(__file__).resolve().parent.parent / "infra" / "template.yaml"
TABLE = "iam-sentinel-state-bench"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...) as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _tag)


def state_table_properties():
    with open(TEMPLATE) as fh:
        template = yaml.load(fh, Loader=_CfnLoader)
    return template["Resources"]["StateTable"]["Properties"]


def create_table(name=TABLE):
    """The table as the template defines it (billing, keys, attributes, indexes, TTL)."""
    props = state_table_properties()
    ddb = boto3.client("dynamodb")
    ddb.create_table(TableName=name, BillingMode=props["BillingMode"],
                     AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                     GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []))
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def subscribe(topic, name):
    """An SQS queue subscribed to the topic with raw message delivery: (subscription, queue)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sub = sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"},
                        ReturnSubscriptionArn=True)["SubscriptionArn"]
    return sub, queue


def received(queue):
    """How many messages the subscriber's queue holds."""
    attrs = boto3.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def table_size(name=TABLE):
    """Items in the table and their approximate size (attribute names and values as JSON)."""
    import json
    pages = boto3.client("dynamodb").get_paginator("scan").paginate(TableName=name)
    items = [item for page in pages for item in page["Items"]]
    return len(items), sum(len(json.dumps(i, separators=(",", ":"))) for i in items)


def change_one_percent(n, user_name):
    """Enables MFA for n / 100 console users who had none (seed.py: i % 5 == 2)."""
    iam = boto3.client("iam")
    changed = [i for i in range(n) if i % 5 == 2][: max(1, n // 100)]
    for i in changed:
        name = user_name(i)
        serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-late")["VirtualMFADevice"]["SerialNumber"]
        iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                              AuthenticationCode2="654321")
    return len(changed)


def measure(run_scan, env, n, user_name):
    """The three scans: returns rows (label, result with `messages`)."""
    os.environ.update(env)
    table = create_table()
    topic = boto3.client("sns").create_topic(Name="iam-sentinel-findings-bench")["TopicArn"]
    scan_env = dict(env, STATE_TABLE=table, FINDINGS_TOPIC_ARN=topic)
    rows = []
    for k, label in enumerate(("first scan", "unchanged second scan", "after 1 % changed")):
        if label == "after 1 % changed":
            label = f"after {change_one_percent(n, user_name)} users changed"
        # A fresh subscriber per scan: it receives exactly that scan's messages.
        sub, queue = subscribe(topic, f"iam-sentinel-findings-bench-{k}")
        r = run_scan(scan_env)
        r["messages"] = received(queue)
        boto3.client("sns").unsubscribe(SubscriptionArn=sub)
        r["items"], r["table_bytes"] = table_size(table)
        rows.append((label, r))
    return rows
