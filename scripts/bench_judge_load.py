#!/usr/bin/env python3
"""/healthz latency while the daemon judges the largest allowed models.

Usage: scripts/bench_judge_load.py PATH/TO/augury [SECONDS]

Starts `augury serve` on a temp SQLite database and free ports, creates three analyses
with an inline model of 1,000 metrics (the limit) judged every second, and keeps two
clients posting one-shot judgments of a 1,000-metric model with 40 samples a side
(about 0.9 MiB, under the 1 MiB body limit). Meanwhile it asks /healthz every 50 ms and
prints its p50/p90/p99/max, the judge requests' answers, the daemon's peak RSS and the
CPU-seconds it used. Standard library only.
"""
import json, os, re, socket, subprocess, sys, tempfile, threading, time, urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post(url, body, timeout=60):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def model(n):
    return {"name": "wide", "metrics": [{"name": f"m{i}"} for i in range(n)]}


def main():
    binary = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30
    tmp = tempfile.mkdtemp()
    api, grpc, http = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--database", f"sqlite://{tmp}/a.db",
         "--listen", f"127.0.0.1:{api}", "--otlp-grpc-listen", f"127.0.0.1:{grpc}",
         "--otlp-http-listen", f"127.0.0.1:{http}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{api}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except Exception:
            time.sleep(0.05)
    for i in range(3):
        status = post(base + "/api/v1/analyses", {
            "key": f"big-{i}", "model": model(1000),
            "baseline": {"service.name": "s", "service.version": "1"},
            "canary": {"service.name": "s", "service.version": "2"},
            "interval": "1s", "lifetime": "1h"})
        assert status == 201, status
    samples = [float(k % 97) for k in range(40)]
    heavy = {"model": model(1000),
             "metrics": {f"m{i}": {"baseline": samples, "canary": samples} for i in range(1000)}}
    print("judge body bytes:", len(json.dumps(heavy)))
    stop = time.time() + seconds
    answers = {}

    def judge_loop():
        while time.time() < stop:
            s = post(base + "/api/v1/judge", heavy)
            answers[s] = answers.get(s, 0) + 1

    clients = [threading.Thread(target=judge_loop) for _ in range(2)]
    for c in clients:
        c.start()
    lat = []
    while time.time() < stop:
        t = time.time()
        urllib.request.urlopen(base + "/healthz", timeout=30).read()
        lat.append(time.time() - t)
        time.sleep(0.05)
    for c in clients:
        c.join()
    status = open(f"/proc/{proc.pid}/status").read()
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status).group(1)
    stat = open(f"/proc/{proc.pid}/stat").read().split(")")[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    metrics = urllib.request.urlopen(base + "/metrics").read().decode()
    proc.terminate()
    proc.wait()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(f"healthz n={len(lat)} p50={q(0.5):.1f}ms p90={q(0.9):.1f}ms "
          f"p99={q(0.99):.1f}ms max={lat[-1]*1000:.1f}ms")
    print("judge answers:", answers)
    print(f"peak RSS {int(hwm)/1024:.0f} MiB, CPU {cpu:.1f} s over {seconds:.0f} s")
    for line in metrics.splitlines():
        if line.startswith(("augury_judge_", "augury_interval_duration_seconds_sum",
                            "augury_interval_duration_seconds_count")):
            print(line)


main()
