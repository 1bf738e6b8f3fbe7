"""Runs a command and reports its peak resident set size (from wait4) as JSON on stderr."""
import json
import os
import sys

pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"peak_rss_kib": usage.ru_maxrss}), file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
