"""Benchmark: iam-sentinel's bulk scan vs a per-user scan (and, with --peers, Cloud
Custodian) against the same moto server, at 1,000 and 5,000 users.

Measures wall time, AWS API calls by action, peak RSS and findings count of each.
With --org (or --org-sizes AxU,...), the organization benchmark instead (bench/organization.py):
an organization of A accounts with U users each, `scan --organization`, one Step Functions
child, the organization digest, and with --peers c7n-org.
With --peers, also bench/bulk_reads.py: the same bulk reads from a boto3 script, nothing judged.
With --state, also three publishing scans with the state table (bench/state.py).
With --baseline BINARY, an earlier build scans the same seeded server first (before/after).
Usage: bench.py [--sizes 1000,5000] [--peers] [--state] [--baseline BINARY] [--skip-per-user]
       (run through scripts/bench)
       bench.py --org [--org-sizes 100x200,1000x20] [--max-concurrency 20] [--peers]
"""
import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
# Keys are created "now" in moto; judging 100 days ahead makes them stale and unused.
AS_OF = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=100)).strftime("%Y-%m-%dT%H:%M:%SZ")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_moto(managed_policies=True):
    """moto on a free port; `managed_policies`: every account holds AWS's managed policies
    (about 24 MB of moto's memory per account: a thousand accounts do not fit in 24 GB)."""
    port = free_port()
    proc = subprocess.Popen([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": str(managed_policies).lower()})
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def measure(cmd, env):
    """Runs cmd; returns (wall seconds, stdout, stderr, exit code)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    return time.monotonic() - start, out, err, proc.returncode


def run_sentinel(binary, env, per_user, publish=False):
    cmd = [binary, "scan", "--format", "json", "--stats", "--as-of", AS_OF]
    if not publish:
        cmd.append("--no-publish")
    if per_user:
        cmd.append("--per-user")
    wrapped = [sys.executable, os.path.join(ROOT, "bench", "rss.py")] + cmd
    wall, out, err, code = measure(wrapped, env)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err}")
    objects = [json.loads(l) for l in err.splitlines() if l.startswith("{")]
    stats = next(o for o in objects if "aws_calls" in o)
    # Where the time went (binaries that print phases); phases may overlap.
    phases = next((o for o in objects if "phases" in o), None)
    rss = next(o for o in objects if "peak_rss_kib" in o)["peak_rss_kib"] / 1024
    findings = [json.loads(l) for l in out.splitlines() if l.strip()]
    compared = sorted({(f["check"], f["user"]) for f in findings
                      if f["check"] in ("access-key-stale", "access-key-unused", "console-without-mfa",
                                        "access-key-multiple-active")})
    return {"wall_s": wall, "calls": stats["aws_calls"], "by_action": stats["by_action"], "rss_mib": rss,
            "findings": len(findings), "compared": compared, "phases": phases}


def run_bulk_reads(env, users):
    """bench/bulk_reads.py: the scan's reads from a boto3 script, nothing judged (the floor)."""
    cmd = [sys.executable, os.path.join(ROOT, "bench", "rss.py"), sys.executable,
           os.path.join(ROOT, "bench", "bulk_reads.py")]
    wall, out, err, code = measure(cmd, env)
    if code != 0:
        raise SystemExit(f"bench/bulk_reads.py failed ({code}):\n{err}")
    result = json.loads(out)
    if result["report_users"] != users or result["gaad_users"] != users:
        raise SystemExit(f"bench/bulk_reads.py read {result['report_users']} users in the report and "
                         f"{result['gaad_users']} in GAAD, not {users}")
    rss = next(json.loads(l) for l in err.splitlines() if l.startswith("{"))["peak_rss_kib"] / 1024
    return {"wall_s": wall, "calls": sum(result["by_action"].values()), "by_action": result["by_action"],
            "rss_mib": rss, "findings": None, "compared": None, "phases": None}


def print_phases(n, name, phases):
    print(f"{n} {name}: phases (start ms + duration ms; reads overlap), total {phases['total_ms']:.0f} ms")
    for p in phases["phases"]:
        print(f"    {p['phase']:<28} {p['start_ms']:>8.1f} + {p['ms']:>8.1f}")


def base_env():
    return dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                APPROVALS_SECRET_ID="iam-sentinel/approvals", RUST_LOG="error",
                # The fallback network policy is judged too (the seeded groups carry it).
                NETWORK_GUARDRAIL="identity-policy",
                ENTERPRISE_CIDRS="192.0.2.0/24,203.0.113.0/24,2001:db8:1234::/48")


def main_org(args):
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import organization as org  # noqa: E402
    results = []
    for size in args.org_sizes.split(","):
        accounts, users = (int(x) for x in size.lower().split("x"))
        # Users only: no AdministratorAccess attachments, so moto need not hold AWS's managed policies.
        start = (lambda: start_moto(managed_policies=False)) if args.org_users_only else start_moto
        results.append(org.measure_size(args.binary, base_env(), start, accounts, users, AS_OF,
                                        args.max_concurrency, args.peers, args.org_users_only))
        org.report(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--peers", action="store_true", help="also a boto3 script making the same bulk reads, and Cloud Custodian (c7n, pinned), on the same moto")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--baseline", metavar="BINARY",
                    help="also scan with this (earlier) build on the same seeded server: before and after")
    ap.add_argument("--skip-per-user", action="store_true", help="do not run the per-user scan")
    ap.add_argument("--state", action="store_true",
                    help="also the state table: first scan, unchanged second scan, scan after 1 %% changed")
    ap.add_argument("--org", action="store_true", help="the organization benchmark (bench/organization.py)")
    ap.add_argument("--org-sizes", help="accounts x users, e.g. 100x200,1000x20 (implies --org)")
    ap.add_argument("--max-concurrency", type=int, default=20, help="scan --organization --max-concurrency")
    ap.add_argument("--json", metavar="FILE", help="with --org: also write the results as JSON")
    ap.add_argument("--org-users-only", action="store_true",
                    help="with --org: seed the users' mix without groups and policies (faster to seed)")
    args = ap.parse_args()
    if args.org or args.org_sizes:
        args.org_sizes = args.org_sizes or "100x200,1000x20"
        return main_org(args)
    rows, state_rows = [], []
    for n in [int(s) for s in args.sizes.split(",")]:
        proc, url = start_moto()
        try:
            env = dict(base_env(), AWS_ENDPOINT_URL=url)
            t = time.monotonic()
            subprocess.run([sys.executable, os.path.join(ROOT, "bench", "seed.py"), str(n)], env=env, check=True)
            print(f"seeded {n} users in {time.monotonic() - t:.1f} s", file=sys.stderr)
            results = {}
            if args.baseline:
                results["baseline scan"] = run_sentinel(args.baseline, env, per_user=False)
            results["iam-sentinel scan"] = run_sentinel(args.binary, env, per_user=False)
            if not args.skip_per_user:
                results["per-user scan"] = run_sentinel(args.binary, env, per_user=True)
            if args.peers:
                results["bulk reads (boto3)"] = run_bulk_reads(env, n)
                sys.path.insert(0, os.path.join(ROOT, "bench"))
                import peers  # noqa: E402
                results["cloud-custodian"] = peers.run_custodian(env, AS_OF)
            # The bulk reads judge nothing: they have no findings to compare.
            agree = len({json.dumps(r["compared"]) for r in results.values() if r["compared"] is not None}) == 1
            for name, r in results.items():
                rows.append((n, name, r, agree))
            if args.state:
                os.environ.update(env)  # boto3 in this process talks to the same moto
                sys.path.insert(0, os.path.join(ROOT, "bench"))
                import seed  # noqa: E402
                import state  # noqa: E402
                scan = lambda e: run_sentinel(args.binary, e, per_user=False, publish=True)  # noqa: E731
                state_rows.extend((n, label, r) for label, r in state.measure(scan, env, n, seed.user_name))
        finally:
            proc.kill()
            proc.wait()
    print(f"\n{'users':>6}  {'tool':<18} {'wall s':>8} {'AWS calls':>10} {'peak RSS MiB':>13} {'findings':>9} {'compared':>9}  agree")
    for n, name, r, agree in rows:
        findings, compared = ("-", "-") if r["compared"] is None else (r["findings"], len(r["compared"]))
        print(f"{n:>6}  {name:<18} {r['wall_s']:>8.2f} {r['calls']:>10} {r['rss_mib']:>13.1f} {findings:>9} {compared:>9}  "
              f"{'-' if r['compared'] is None else 'yes' if agree else 'NO'}")
    for n, name, r, _ in rows:
        print(f"{n} {name}: {json.dumps(r['by_action'], sort_keys=True)}")
    for n, name, r, _ in rows:
        if r.get("phases"):
            print_phases(n, name, r["phases"])
    by = {(n, name): r for n, name, r, _ in rows}
    for n in sorted({n for n, *_ in rows}):
        a, b = by[(n, "iam-sentinel scan")], by.get((n, "per-user scan"))
        for peer in ("bulk reads (boto3)", "cloud-custodian"):
            if (n, peer) in by:
                print(f"{n} users: the scan takes {a['wall_s'] / by[(n, peer)]['wall_s']:.2f}x the time of {peer}")
        if b:
            print(f"{n} users: bulk scan is {b['wall_s'] / a['wall_s']:.0f}x faster than the per-user scan, "
                  f"{b['calls'] / max(a['calls'], 1):.0f}x fewer calls")
    if state_rows:
        print(f"\nwith STATE_TABLE, publishing:\n{'users':>6}  {'scan':<26} {'wall s':>7} {'DynamoDB calls':>15} "
              f"{'SNS messages':>13} {'peak RSS MiB':>13} {'items':>7} {'table KB':>9}")
        for n, label, r in state_rows:
            ddb = {k: v for k, v in r["by_action"].items() if k.startswith("dynamodb:")}
            print(f"{n:>6}  {label:<26} {r['wall_s']:>7.2f} {sum(ddb.values()):>15} {r['messages']:>13} {r['rss_mib']:>13.1f} {r['items']:>7} {r['table_bytes'] / 1000:>9.1f}")
        for n, label, r in state_rows:
            print(f"{n} {label}: {json.dumps(r['by_action'], sort_keys=True)}")
        for n, label, r in state_rows:
            if r.get("phases"):
                print_phases(n, label, r["phases"])
    if not all(agree for *_, agree in rows):
        raise SystemExit("the tools disagree on the compared findings")


if __name__ == "__main__":
    main()
