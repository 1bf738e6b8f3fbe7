"""A fault-injecting proxy in front of the test's moto server, for what moto itself never does.

Usage: fault_proxy.py UPSTREAM_URL REFUSED_ACCOUNT SLOW_ACTION
Forwards every request to UPSTREAM_URL unchanged, except:
- sts:AssumeRole into REFUSED_ACCOUNT's roles answers AccessDenied (a member whose role is
  missing or does not trust the function);
- SLOW_ACTION (e.g. GetAccountAuthorizationDetails) is held 300 ms before it is forwarded, and
  the most requests of it in flight at once is counted: GET /__max_in_flight returns it.
Prints the port it listens on, then serves until killed.
"""
import http.server
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

UPSTREAM, REFUSED, SLOW = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
in_flight = 0
max_in_flight = 0

DENIED = (
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
    "<Code>AccessDenied</Code><Message>not authorized to perform: sts:AssumeRole on {arn}</Message>"
    "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def forward(self):
        global in_flight, max_in_flight
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        action = (form.get("Action") or [""])[0]
        role = (form.get("RoleArn") or [""])[0]
        if action == "AssumeRole" and role.startswith(f"arn:aws:iam::{REFUSED}:"):
            return self.reply(403, DENIED.format(arn=role), [("Content-Type", "text/xml")])
        slow = action == SLOW
        if slow:
            with lock:
                in_flight += 1
                max_in_flight = max(max_in_flight, in_flight)
            time.sleep(0.3)
        try:
            request = urllib.request.Request(UPSTREAM + self.path, data=body or None, method=self.command)
            for k, v in self.headers.items():
                if k.lower() not in ("host", "content-length", "connection"):
                    request.add_header(k, v)
            try:
                with urllib.request.urlopen(request, timeout=60) as r:
                    status, headers, data = r.status, r.getheaders(), r.read()
            except urllib.error.HTTPError as e:
                status, headers, data = e.code, e.headers.items(), e.read()
        finally:
            if slow:
                with lock:
                    in_flight -= 1
        self.reply(status, data, headers)

    def do_GET(self):
        if self.path == "/__max_in_flight":
            return self.reply(200, str(max_in_flight))
        self.forward()

    do_POST = forward
    do_PUT = forward
    do_DELETE = forward
    do_HEAD = forward


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
