"""Cloud Custodian (c7n, pinned in bench/requirements-peers.txt) as the benchmark's peer.

run_custodian(env, as_of) runs bench/custodian-policies.yml against the moto server
that env points at and reports what bench.py reports for iam-sentinel: wall time, AWS
API calls by service:Operation, peak RSS, findings, and the (check, user) pairs to
compare. Custodian lives in its own venv, .venv-peers, created on first use.
"""
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS_VENV = os.path.join(ROOT, ".venv-peers")
REQUIREMENTS = os.path.join(ROOT, "bench", "requirements-peers.txt")
POLICIES = os.path.join(ROOT, "bench", "custodian-policies.yml")

# iam-sentinel's defaults: a key is stale when older than 90 whole days, unused after
# 45 whole days. Whole days are truncated, so "> 90 days" means at least 91 days.
KEY_MAX_AGE_DAYS = 90
KEY_UNUSED_DAYS = 45

COMPARED_CHECKS = ("access-key-stale", "access-key-unused", "console-without-mfa", "access-key-multiple-active")

# Runs the custodian CLI in this process, counting every botocore API call by
# service:Operation (retries not included) and refusing any endpoint but the one in
# AWS_ENDPOINT_URL. The counts are written to argv[1] at exit; argv[2:] is custodian's.
WRAPPER = r"""
import atexit, collections, json, os, sys, threading
import botocore.client

counts_path, endpoint = sys.argv[1], os.environ["AWS_ENDPOINT_URL"].rstrip("/")
counts = collections.Counter()
lock = threading.Lock()
make_api_call = botocore.client.BaseClient._make_api_call


def counted(self, operation_name, api_params):
    if self.meta.endpoint_url.rstrip("/") != endpoint:
        raise RuntimeError(f"refusing {operation_name} to {self.meta.endpoint_url}: not {endpoint}")
    with lock:
        counts[f"{self.meta.service_model.service_name}:{operation_name}"] += 1
    return make_api_call(self, operation_name, api_params)


def dump():
    with open(counts_path, "w") as fh:
        json.dump(dict(counts), fh)


botocore.client.BaseClient._make_api_call = counted
atexit.register(dump)
from c7n.cli import main

sys.argv = ["custodian"] + sys.argv[2:]
main()
"""


def ensure_venv():
    """Creates .venv-peers with the pinned requirements, unless they are already installed."""
    stamp = os.path.join(PEERS_VENV, ".requirements.sha256")
    with open(REQUIREMENTS, "rb") as fh:
        want = hashlib.sha256(fh.read()).hexdigest()
    if os.path.exists(stamp):
        with open(stamp) as fh:
            if fh.read().strip() == want:
                return
    print("installing Cloud Custodian and c7n-org into .venv-peers (bench/requirements-peers.txt)", file=sys.stderr)
    subprocess.run(["python3", "-m", "venv", PEERS_VENV], check=True)
    with open(os.path.join(PEERS_VENV, ".gitignore"), "w") as fh:
        fh.write("*\n")
    subprocess.run([os.path.join(PEERS_VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
                    "-r", REQUIREMENTS], check=True)
    with open(stamp, "w") as fh:
        fh.write(want + "\n")


def cutoffs(as_of):
    """The policies' vars: an age of at least N whole days at as_of is a date at or before as_of - N days."""
    now = dt.datetime.strptime(as_of, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)

    def before(days):
        return (now - dt.timedelta(days=days)).isoformat()

    return {"key_stale_before": before(KEY_MAX_AGE_DAYS + 1), "key_unused_before": before(KEY_UNUSED_DAYS)}


def policy_names():
    with open(POLICIES) as fh:
        return re.findall(r"^\s*- name:\s*(\S+)\s*$", fh.read(), re.MULTILINE)


def run_custodian(env, as_of):
    """Runs the policies against env's endpoint; returns bench.py's result dict for Custodian."""
    ensure_venv()
    with tempfile.TemporaryDirectory(prefix="bench-custodian-") as tmp:
        out_dir = os.path.join(tmp, "out")
        vars_path = os.path.join(tmp, "vars.json")
        counts_path = os.path.join(tmp, "calls.json")
        log_path = os.path.join(tmp, "custodian.log")
        with open(vars_path, "w") as fh:
            json.dump(cutoffs(as_of), fh)
        # A fresh cache file: shared by the policies of this run (one user listing, one
        # credential report), never by another run or another moto server.
        cmd = [os.path.join(PEERS_VENV, "bin", "python"), "-c", WRAPPER, counts_path,
               "run", "-s", out_dir, "--region", "us-east-1", "--cache", os.path.join(tmp, "cache.sqlite"),
               "--vars-file", vars_path, POLICIES]
        with open(log_path, "w") as log:
            start = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)

        def fail(why):
            with open(log_path) as fh:
                tail = fh.read()[-4000:]
            raise SystemExit(f"cloud-custodian: {why}\n{tail}")

        if proc.returncode != 0:
            fail(f"exited {proc.returncode}")
        if not os.path.exists(counts_path):
            fail("no call counts were written")
        with open(counts_path) as fh:
            by_action = json.load(fh)

        findings = 0
        compared = set()
        for name in policy_names():
            policy_dir = os.path.join(out_dir, name)
            try:
                with open(os.path.join(policy_dir, "metadata.json")) as fh:
                    check = json.load(fh)["policy"]["metadata"]["check"]
                with open(os.path.join(policy_dir, "resources.json")) as fh:
                    resources = json.load(fh)
            except (OSError, KeyError, ValueError) as e:
                fail(f"policy {name} left no usable output: {e}")
            findings += len(resources)
            if check in COMPARED_CHECKS:
                compared.update((check, r["UserName"]) for r in resources)

    return {"wall_s": wall, "calls": sum(by_action.values()), "by_action": by_action,
            "rss_mib": usage.ru_maxrss / 1024, "findings": findings, "compared": sorted(compared)}


if __name__ == "__main__":
    # Against a server that is already seeded: AWS_ENDPOINT_URL etc. from the environment.
    as_of_arg = sys.argv[1] if len(sys.argv) > 1 else dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run_custodian(dict(os.environ), as_of_arg)
    print(json.dumps({k: v for k, v in result.items() if k != "compared"}, indent=1, sort_keys=True))
    print(f"{len(result['compared'])} compared findings", file=sys.stderr)
