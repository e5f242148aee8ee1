#!/usr/bin/env python3
"""Time from a bootstrap's process start to its first GET /2018-06-01/runtime/invocation/next.

A minimal Lambda Runtime API on 127.0.0.1 (ephemeral port) records when the request arrives and holds it open;
the process is then killed. Prints the median and spread over N starts as JSON.

    scripts/lambda_start.py BOOTSTRAP [N]
"""
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

arrived = threading.Event()
stamp = [0.0]


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.endswith("/runtime/invocation/next"):
            stamp[0] = time.perf_counter()
            arrived.set()
            time.sleep(5)  # held open, as the real API does while there is no event
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def measure(bootstrap: str, runs: int) -> dict:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "WSDEPLOY_BACKEND_URL": "http://127.0.0.1:9",
        "WSDEPLOY_SIGNING_SECRET": "bench",
        "WSDEPLOY_API_ID": "bench00001",
        "WSDEPLOY_STAGE": "dev",
        # What Lambda gives every function: the fan-out function reads its region and role's keys from them.
        "AWS_REGION": "eu-west-3",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "PATH": os.environ.get("PATH", ""),
    }
    samples = []
    for _ in range(runs):
        arrived.clear()
        start = time.perf_counter()
        proc = subprocess.Popen([bootstrap], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ok = arrived.wait(10)
        proc.kill()
        proc.wait()
        if not ok:
            raise SystemExit(f"{bootstrap} made no GET /next within 10 s")
        samples.append((stamp[0] - start) * 1000)
    server.shutdown()
    return {
        "bootstrap": bootstrap,
        "runs": runs,
        "median_ms": round(statistics.median(samples), 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
    }


if __name__ == "__main__":
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    print(json.dumps(measure(sys.argv[1], n)))
