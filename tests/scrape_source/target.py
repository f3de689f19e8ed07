#!/usr/bin/env python3
"""A scrape target for tests/scrape_source.rs: a service's `/metrics`, served by the
Python Prometheus client (`prometheus_client`), whose counters advance on every scrape.

Each GET of /metrics first records a batch of `--requests` requests (`--errors` of them
with code 500, spread evenly through the batch, the rest 200) with latencies drawn from a log-normal distribution of median
`--median` seconds (seeded: `--seed`), then answers with the registry in the format the
Accept header asks for (OpenMetrics or text 0.0.4). So what the daemon sees between two
of its scrapes is exactly one batch, whatever the clock says: the test needs no sleeps.

Prints `PORT <n>` on stdout once it listens (`--port 0` picks a free port), then serves
until killed.

    http_requests_total{code="200"|"500"}   counter
    http_request_duration_seconds           histogram (buckets 15% apart from 5 ms)
"""

import argparse
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

BUCKETS = [round(0.005 * 1.15**k, 6) for k in range(50)]  # 5 ms .. 4.7 s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--errors", type=int, default=2)
    p.add_argument("--median", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()

    registry = CollectorRegistry()
    requests = Counter("http_requests", "Requests served.", ["code"], registry=registry)
    latency = Histogram(
        "http_request_duration_seconds", "Request latency.", buckets=BUCKETS, registry=registry
    )
    rng = random.Random(args.seed)
    lock = threading.Lock()
    n, e = args.requests, args.errors

    def advance():
        for i in range(n):
            failed = (i + 1) * e // n > i * e // n
            requests.labels(code="500" if failed else "200").inc()
            latency.observe(args.median * rng.lognormvariate(0.0, 0.5))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            with lock:
                advance()
                body = encoder(registry)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
