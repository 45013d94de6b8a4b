"""A tiny HTTP server for traffic tests: it says which pod answered and counts requests.

    python counter.py [PORT]     (default 8080)

It listens on $POD_IP (the downward API's status.podIP; default 127.0.0.1) and
passes /ready only $READY_AFTER seconds after it started.

GET /         200 with the pod's name ($HOSTNAME) and the request number
GET /ready    503 for the first $READY_AFTER seconds, then 200 (a readiness probe)
GET /healthz  200 while the process runs (a liveness probe)
GET /metrics  the request counter in Prometheus' text format

Standard library only: the tests pass this file to ``python -c`` so that it runs
unchanged from any Python image on a real cluster.
"""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()
READY_AFTER = float(os.environ.get("READY_AFTER", "0"))
POD = os.environ.get("HOSTNAME", "unknown")
COUNT = {"requests": 0}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/":
            with LOCK:
                COUNT["requests"] += 1
                n = COUNT["requests"]
            self.reply(200, f"{POD} {n}\n")
        elif self.path == "/ready":
            ready = time.monotonic() - STARTED >= READY_AFTER
            self.reply(200 if ready else 503, "ready\n" if ready else "warming up\n")
        elif self.path == "/healthz":
            self.reply(200, "ok\n")
        elif self.path == "/metrics":
            self.reply(200, metrics(), "text/plain; version=0.0.4")
        else:
            self.reply(404, "not found\n")

    def reply(self, code: int, body: str, content_type: str = "text/plain") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown the pod's log


def metrics() -> str:
    with LOCK:
        n = COUNT["requests"]
    return (
        "# HELP app_requests_total Requests answered on /.\n"
        "# TYPE app_requests_total counter\n"
        f'app_requests_total{{pod="{POD}"}} {n}\n'
    )


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    address = os.environ.get("POD_IP", "127.0.0.1")
    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
