"""Organization benchmark: `iam-sentinel scan --organization` (and, with --peers, c7n-org)
against one moto server holding an organization of A accounts with U users each.

Measures the in-process organization scan (wall time, AWS calls in total and per account
by action, peak RSS, findings), one Step Functions child (`iam-sentinel handle` of a
`scan_account` payload: wall time, peak RSS), and the organization digest as an SQS
subscriber receives it (raw delivery, a filter policy on `account=organization` so the
queue holds only the digest parts), also replayed for 1,000 accounts from copies of the
child's answer. Usage: bench.py --org-sizes 100x200,1000x20 [--peers]
"""
import concurrent.futures as cf
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

import seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANAGEMENT = "123456789012"
MEMBER_ROLE = "iam-sentinel-member"
TOPIC = "iam-sentinel-findings"
# The organization digest is also built for this many accounts from copies of one child's answer.
DIGEST_REPLAY_ACCOUNTS = 1000
CONFIG = Config(max_pool_connections=32, retries={"max_attempts": 10})
COMPARED_CHECKS = ("access-key-stale", "access-key-unused", "console-without-mfa", "access-key-multiple-active")


def member_iam(account):
    """An IAM client acting in `account` through the member role (moto needs no role to exist)."""
    creds = boto3.client("sts", config=CONFIG).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE}", RoleSessionName="bench-seed")["Credentials"]
    return boto3.client("iam", config=CONFIG, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def seed_account(account, users, users_only=False):
    """bench/seed.py's groups, policies and user mix in one account (calls in sequence: the
    parallelism is across accounts); `users_only`: the users' mix without the groups and
    policies (about 255 calls an account in moto, the limit at a thousand accounts)."""
    iam = member_iam(account)
    if not users_only:
        seed.seed_policies(iam)
    for i in range(users):
        seed.seed_user(i, iam)
    if not users_only:
        for i in range(users):
            seed.seed_user_policies(i, iam)


def seed_org(accounts, users, users_only=False):
    """An organization of `accounts` accounts (the management account and accounts - 1
    members), each with `users` users; one approvals registry scoped by account."""
    org = boto3.client("organizations", config=CONFIG)
    org.create_organization(FeatureSet="ALL")

    def create(k):
        return org.create_account(Email=f"bench-{k:04d}@example.com",
                                  AccountName=f"bench-{k:04d}")["CreateAccountStatus"]["AccountId"]

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        members = list(pool.map(create, range(1, accounts)))
    ids = [MANAGEMENT] + members
    with cf.ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(lambda a: seed_account(a, users, users_only), ids))
    expires = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    approvals = [{"user": seed.user_name(i), "approved_by": "sec-lead@example.com", "ticket": f"SEC-{i}",
                  "expires": expires, "account": a} for a in ids for i in range(0, users, 20)]
    boto3.client("secretsmanager").create_secret(Name=seed.SECRET_ID,
                                                 SecretString=json.dumps({"exceptions": approvals}))
    return ids


def digest_queue():
    """The findings topic with one SQS subscriber (raw delivery) that keeps only the
    organization digest's parts (message attribute account=organization)."""
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue = sqs.create_queue(QueueName="org-digest")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={
        "RawMessageDelivery": "true", "FilterPolicy": json.dumps({"account": ["organization"]})})
    return topic, queue


def drain(queue):
    """Every message body in the queue."""
    sqs = boto3.client("sqs")
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        bodies.extend(m["Body"] for m in got)
        sqs.delete_message_batch(QueueUrl=queue, Entries=[
            {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(got)])


def rss_run(cmd, env):
    """Runs cmd under bench/rss.py: (wall s, stdout, stderr, peak RSS MiB)."""
    wrapped = [sys.executable, os.path.join(ROOT, "bench", "rss.py")] + cmd
    start = time.monotonic()
    proc = subprocess.run(wrapped, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    # moto has no iam:ListOrganizationsFeatures: the organization digest names that failed read and
    # exits 1 after doing everything else, which is what is measured here.
    moto_lacks_root_features = proc.returncode == 1 and "iam:ListOrganizationsFeatures" in proc.stderr
    if proc.returncode != 0 and not moto_lacks_root_features:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    rss = next(json.loads(l) for l in proc.stderr.splitlines() if l.startswith('{"peak_rss_kib"'))
    return wall, proc.stdout, proc.stderr, rss["peak_rss_kib"] / 1024


def run_org_scan(binary, env, accounts, as_of, max_concurrency, queue):
    cmd = [binary, "scan", "--organization", "--max-concurrency", str(max_concurrency), "--stats",
           "--format", "json", "--as-of", as_of]
    wall, out, err, rss = rss_run(cmd, env)
    stats = next(json.loads(l) for l in err.splitlines() if l.startswith("{") and "aws_calls" in l)
    findings = [json.loads(l) for l in out.splitlines() if l.strip()]
    parts = drain(queue)
    per_account = {k: v / accounts for k, v in stats["by_action"].items()}
    compared = sorted({(f["account"], f["check"], f["user"]) for f in findings if f["check"] in COMPARED_CHECKS})
    return {"wall_s": wall, "calls": stats["aws_calls"], "by_action": stats["by_action"],
            "per_account": per_account, "rss_mib": rss, "findings": len(findings), "compared": compared,
            "digest_parts": [len(b.encode()) for b in parts], "max_concurrency": max_concurrency}


def run_child(binary, env, account, as_of, tmp):
    """One Step Functions child, as the Lambda runs it: `handle` of a scan_account payload."""
    payload = os.path.join(tmp, f"scan-{account}.json")
    with open(payload, "w") as fh:
        json.dump({"scan_account": account, "management_account": MANAGEMENT}, fh)
    wall, out, _, rss = rss_run([binary, "handle", payload, "--as-of", as_of], env)
    start = out.find("\n{", out.find("\n") if out.startswith("{") else 0)
    answer = json.loads(out[start:] if start >= 0 else out)
    return {"account": account, "wall_s": wall, "rss_mib": rss, "answer": answer}


def run_digest_replay(binary, env, answer, accounts, queue, tmp):
    """The last step alone for `accounts` accounts: an `org_digest` payload whose results are
    copies of one measured child's answer, run through `handle`; the parts the queue receives."""
    keys = ("users_scanned", "findings", "by_severity", "by_check")
    results = [dict({k: answer[k] for k in keys}, account=f"{100000000000 + k:012d}", account_name=f"bench-{k:04d}")
               for k in range(accounts)]
    payload = os.path.join(tmp, "org-digest.json")
    with open(payload, "w") as fh:
        json.dump({"org_digest": {"accounts": [r["account"] for r in results], "results": results}}, fh)
    drain(queue)
    wall, _, _, rss = rss_run([binary, "handle", payload], env)
    return {"accounts": accounts, "wall_s": wall, "rss_mib": rss, "digest_parts": [len(b.encode()) for b in drain(queue)]}


class TreeRss:
    """Samples the summed proportional set size (PSS: shared pages divided among the processes
    sharing them) of a process and its descendants (c7n-org forks workers)."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while not self.stop.is_set():
            parents, rss = {}, {}
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open(f"/proc/{d}/status") as fh:
                        fields = dict(l.split(":", 1) for l in fh if ":" in l)
                    parents[int(d)] = int(fields["PPid"])
                    with open(f"/proc/{d}/smaps_rollup") as fh:
                        rss[int(d)] = next(int(l.split()[1]) for l in fh if l.startswith("Pss:"))
                except (StopIteration, PermissionError):
                    continue
                except (OSError, KeyError, ValueError):
                    continue
            tree, grew = {self.pid}, True
            while grew:
                more = {p for p, pp in parents.items() if pp in tree} - tree
                tree |= more
                grew = bool(more)
            self.peak = max(self.peak, sum(rss.get(p, 0) for p in tree))
            self.stop.wait(0.2)

    def done(self):
        self.stop.set()
        self.thread.join()
        return self.peak / 1024


# Loaded into every Python process of the c7n-org run (PYTHONPATH): counts each botocore API
# call by service:Operation, one line per call appended to a file per process (workers are
# forked and leave without atexit), and refuses any endpoint but AWS_ENDPOINT_URL.
SITECUSTOMIZE = r"""
import os
if os.environ.get("BENCH_CALLS_DIR"):
    import botocore.client
    _endpoint = os.environ["AWS_ENDPOINT_URL"].rstrip("/")
    _call = botocore.client.BaseClient._make_api_call
    _files = {}

    def _counted(self, operation_name, api_params):
        if self.meta.endpoint_url.rstrip("/") != _endpoint:
            raise RuntimeError(f"refusing {operation_name} to {self.meta.endpoint_url}: not {_endpoint}")
        pid = os.getpid()
        if pid not in _files:
            _files[pid] = os.open(os.path.join(os.environ["BENCH_CALLS_DIR"], f"{pid}.calls"),
                                  os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(_files[pid], f"{self.meta.service_model.service_name}:{operation_name}\n".encode())
        return _call(self, operation_name, api_params)

    botocore.client.BaseClient._make_api_call = _counted
"""


def run_c7n_org(env, ids, as_of):
    """c7n-org run of bench/custodian-policies.yml over the same accounts through the member role."""
    import peers
    peers.ensure_venv()
    with tempfile.TemporaryDirectory(prefix="bench-c7n-org-") as tmp:
        calls_dir, cache_dir, out_dir = (os.path.join(tmp, d) for d in ("calls", "cache", "out"))
        for d in (calls_dir, cache_dir):
            os.makedirs(d)
        with open(os.path.join(tmp, "sitecustomize.py"), "w") as fh:
            fh.write(SITECUSTOMIZE)
        accounts_yml = os.path.join(tmp, "accounts.yml")
        with open(accounts_yml, "w") as fh:
            json.dump({"vars": peers.cutoffs(as_of), "accounts": [
                {"account_id": a, "name": a, "regions": ["us-east-1"],
                 "role": f"arn:aws:iam::{a}:role/{MEMBER_ROLE}"} for a in ids]}, fh, indent=1)
        log_path = os.path.join(tmp, "c7n-org.log")
        cmd = [os.path.join(peers.PEERS_VENV, "bin", "c7n-org"), "run", "-c", accounts_yml, "-s", out_dir,
               "-u", peers.POLICIES, "--cache-path", cache_dir]
        run_env = dict(env, PYTHONPATH=tmp, BENCH_CALLS_DIR=calls_dir)
        with open(log_path, "w") as log:
            start = time.monotonic()
            proc = subprocess.Popen(cmd, env=run_env, stdout=log, stderr=subprocess.STDOUT)
            tree = TreeRss(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
            tree_mib = tree.done()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            with open(log_path) as fh:
                raise SystemExit(f"c7n-org exited {code}:\n{fh.read()[-4000:]}")
        by_action = {}
        for name in os.listdir(calls_dir):
            with open(os.path.join(calls_dir, name)) as fh:
                for line in fh:
                    by_action[line.strip()] = by_action.get(line.strip(), 0) + 1
        findings, compared, missing = 0, set(), []
        for a in ids:
            for name in peers.policy_names():
                policy_dir = os.path.join(out_dir, a, "us-east-1", name)
                try:
                    with open(os.path.join(policy_dir, "metadata.json")) as fh:
                        check = json.load(fh)["policy"]["metadata"]["check"]
                    with open(os.path.join(policy_dir, "resources.json")) as fh:
                        resources = json.load(fh)
                except (OSError, KeyError, ValueError):
                    missing.append(f"{a}/{name}")
                    continue
                findings += len(resources)
                if check in COMPARED_CHECKS:
                    compared.update((a, check, r["UserName"]) for r in resources)
        if missing:
            raise SystemExit(f"c7n-org left no usable output for {len(missing)} account/policy pairs, "
                             f"e.g. {missing[:3]}")
    return {"wall_s": wall, "calls": sum(by_action.values()), "by_action": by_action,
            "per_account": {k: v / len(ids) for k, v in by_action.items()},
            "rss_mib": usage.ru_maxrss / 1024, "tree_pss_mib": tree_mib, "findings": findings,
            "compared": sorted(compared), "workers": int(os.environ.get("C7N_ORG_PARALLEL", os.cpu_count() * 4))}


def measure_size(binary, base_env, start_moto, accounts, users, as_of, max_concurrency, with_peers, users_only=False):
    proc, url = start_moto()
    try:
        env = dict(base_env, AWS_ENDPOINT_URL=url)
        os.environ.update(env)  # the seeding and queue clients (boto3) read the same endpoint
        t = time.monotonic()
        ids = seed_org(accounts, users, users_only)
        seeded = time.monotonic() - t
        print(f"seeded {accounts} accounts x {users} users in {seeded:.1f} s", file=sys.stderr)
        topic, queue = digest_queue()
        env.update(ORGANIZATION_MODE="true", MEMBER_ROLE_NAME=MEMBER_ROLE, FINDINGS_TOPIC_ARN=topic)
        result = {"accounts": accounts, "users": users, "seed_s": seeded, "users_only": users_only}
        result["org_scan"] = run_org_scan(binary, env, accounts, as_of, max_concurrency, queue)
        with tempfile.TemporaryDirectory(prefix="bench-child-") as tmp:
            result["child"] = run_child(binary, env, ids[1], as_of, tmp)
            result["digest_replay"] = run_digest_replay(binary, env, result["child"]["answer"], DIGEST_REPLAY_ACCOUNTS,
                                                        queue, tmp)
        if with_peers:
            result["c7n_org"] = run_c7n_org(env, ids, as_of)
        return result
    finally:
        proc.kill()
        proc.wait()


def report(results):
    print(f"\n{'size':>10}  {'tool':<28} {'wall s':>8} {'AWS calls':>10} {'calls/acct':>10} "
          f"{'peak RSS MiB':>13} {'findings':>9} {'compared':>9}  agree")
    for r in results:
        size = f"{r['accounts']}x{r['users']}"
        rows = [("iam-sentinel scan --org", r["org_scan"])]
        if "c7n_org" in r:
            rows.append(("c7n-org 0.6.52", r["c7n_org"]))
        agree = len({json.dumps(x["compared"]) for _, x in rows}) == 1
        for name, x in rows:
            rss = f"{x['rss_mib']:.1f}" + (f" (tree PSS {x['tree_pss_mib']:.0f})" if "tree_pss_mib" in x else "")
            print(f"{size:>10}  {name:<28} {x['wall_s']:>8.2f} {x['calls']:>10} {x['calls'] / r['accounts']:>10.2f} "
                  f"{rss:>13} {x['findings']:>9} {len(x['compared']):>9}  {'yes' if agree else 'NO'}")
        c = r["child"]
        print(f"{size:>10}  {'handle scan_account (child)':<28} {c['wall_s']:>8.2f} {'':>10} {'':>10} "
              f"{c['rss_mib']:>13.1f}")
    for r in results:
        size = f"{r['accounts']}x{r['users']}"
        o = r["org_scan"]
        print(f"{size} seeded in {r['seed_s']:.0f} s; --max-concurrency {o['max_concurrency']}; "
              f"child wall {r['child']['wall_s']:.2f} s, peak RSS {r['child']['rss_mib']:.1f} MiB")
        print(f"{size} iam-sentinel calls per account: {json.dumps(o['per_account'], sort_keys=True)}")
        print(f"{size} organization digest parts (SQS raw bodies, bytes): {o['digest_parts']}")
        d = r["digest_replay"]
        print(f"{size} organization digest replayed for {d['accounts']} accounts (handle org_digest, "
              f"{d['wall_s']:.2f} s, {d['rss_mib']:.1f} MiB): parts {d['digest_parts']}")
        print(f"{size} child answer: {json.dumps(r['child']['answer'], sort_keys=True)[:600]}")
        if "c7n_org" in r:
            print(f"{size} c7n-org calls per account ({r['c7n_org']['workers']} workers): "
                  f"{json.dumps(r['c7n_org']['per_account'], sort_keys=True)}")
    if not all(len({json.dumps(r[k]["compared"]) for k in ("org_scan", "c7n_org") if k in r}) == 1 for r in results):
        raise SystemExit("iam-sentinel and c7n-org disagree on the compared findings")
