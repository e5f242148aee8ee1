"""The local gateway, wsdeploy dev beside serverless-offline and Architect's sandbox: each started from its command,
measured by the same client (peers/wsload.cjs) and the same HTTP load generator (wrk), one after the other."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from .common import CACHE, OUT, REGION, ROOT, WSDEPLOY, app_dir, free_port, read_env, session_rss_kb, stop_session

PEERS_SRC = os.path.join(ROOT, "scripts", "benchlib", "peers")
PEERS = os.path.join(OUT, "peers")


def install_peers():
    """The pinned peers from npm into target/bench/peers (`npm ci` on the committed lock; skipped when unchanged)."""
    os.makedirs(PEERS, exist_ok=True)
    with open(os.path.join(PEERS_SRC, "package-lock.json")) as f:
        lock = f.read()
    stamp = os.path.join(PEERS, "node_modules", ".bench-lock")
    fresh = not os.path.exists(stamp) or open(stamp).read() != lock
    shutil.copytree(PEERS_SRC, PEERS, dirs_exist_ok=True)
    t = time.perf_counter()
    if fresh:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEERS, check=True, stdout=subprocess.DEVNULL)
        with open(stamp, "w") as f:
            f.write(lock)
    versions = {}
    for pkg in ("serverless", "serverless-offline", "@architect/sandbox", "ws"):
        with open(os.path.join(PEERS, "node_modules", pkg, "package.json")) as f:
            versions[pkg] = json.load(f)["version"]
    return versions, time.perf_counter() - t


class Gateway:
    """One local gateway under test: its process (a session of its own), where clients connect, and how a backend
    reaches @connections."""

    name = ""

    def start(self):
        raise NotImplementedError

    def management(self, connection_id, method, body=b""):
        """(url, headers) of a request to @connections for this connection."""
        raise NotImplementedError

    def stop(self):
        stop_session(self.proc)


class Wsdeploy(Gateway):
    name = "wsdeploy dev"

    def __init__(self, max_connections):
        self.max_connections = max_connections

    def start(self):
        self.backend = subprocess.Popen(["node", os.path.join(PEERS, "backend.cjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        backend_url = self.backend.stdout.readline().strip()
        self.dir = app_dir("bench", backend=backend_url)
        self.proc, self.url = start_dev(self.dir, self.max_connections)
        self._creds = None

    def management(self, connection_id, method, body=b""):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if self._creds is None:
            env = read_env(os.path.join(self.dir, "backend", ".env"))
            self._creds = (env["WS_API_ENDPOINT"], Credentials(env["WS_API_ACCESS_KEY_ID"], env["WS_API_SECRET_ACCESS_KEY"]))
        endpoint, creds = self._creds
        url = f"{endpoint}/@connections/{urllib.request.quote(connection_id, safe='')}"
        req = AWSRequest(method=method, url=url, data=body)
        SigV4Auth(creds, "execute-api", REGION).add_auth(req)
        return url, {k: v for k, v in req.headers.items() if k.lower() != "host"}

    def stop(self):
        super().stop()
        self.backend.stdin.close()
        self.backend.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_dev(app, max_connections):
    """`wsdeploy dev` in the app folder `app` (as app_dir makes it): its process and its WebSocket URL."""
    env = dict(os.environ, WSDEPLOY_CACHE_DIR=tempfile.mkdtemp(prefix="wsdeploy-bench-cache-"), NO_COLOR="1", CI="true")
    env.pop("AWS_ENDPOINT_URL", None)
    # dev refuses sockets beyond --max-connections (10,000 by default): room for the idle ones and the measuring ones.
    cmd = [WSDEPLOY, "dev", "--port", "0", "-q", "--output", "json", "--max-connections", str(max_connections)]
    proc = subprocess.Popen(cmd, cwd=os.path.join(app, "app"), env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    # Its URL (the port it bound, the stage's path) is in the document it prints once it listens.
    doc = ""
    for line in proc.stdout:
        doc += line
        if line.startswith("}"):
            break
    return proc, json.loads(doc)["websocket_url"]


def _peer_env():
    # No account, no login, no telemetry or update checks; dummy credentials so that no SDK looks for an instance role.
    env = dict(os.environ, SLS_TELEMETRY_DISABLED="1", SLS_NOTIFICATIONS_MODE="off", SLS_DEPRECATION_DISABLE="*", AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION=REGION, CI="true", NO_COLOR="1")
    env.pop("AWS_ENDPOINT_URL", None)
    return env


class ServerlessOffline(Gateway):
    name = "serverless-offline"

    def start(self):
        port, http_port, lambda_port = free_port(), free_port(), free_port()
        self.url = f"ws://127.0.0.1:{port}"
        self.base = f"http://127.0.0.1:{port}/@connections"
        cmd = [os.path.join(PEERS, "node_modules", ".bin", "serverless"), "offline", "start", "--websocketPort", str(port), "--httpPort", str(http_port), "--lambdaPort", str(lambda_port)]
        self.proc = subprocess.Popen(cmd, cwd=os.path.join(PEERS, "apps", "serverless"), env=_peer_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def management(self, connection_id, method, body=b""):
        return f"{self.base}/{connection_id}", {}


class ArchitectSandbox(Gateway):
    name = "Architect sandbox"

    def start(self):
        port, internal = free_port(), free_port()
        self.url = f"ws://127.0.0.1:{port}"
        self.base = f"http://127.0.0.1:{internal}/_arc/ws/@connections"
        cmd = [os.path.join(PEERS, "node_modules", ".bin", "sandbox"), "--port", str(port)]
        env = dict(_peer_env(), ARC_INTERNAL_PORT=str(internal))
        self.proc = subprocess.Popen(cmd, cwd=os.path.join(PEERS, "apps", "architect"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def management(self, connection_id, method, body=b""):
        return f"{self.base}/{connection_id}", {}


class Client:
    """peers/wsload.cjs: one JSON command per line."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", os.path.join(PEERS, "wsload.cjs")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, cmd, **args):
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline() or '{"error": "the client exited"}')
        if "error" in answer:
            raise RuntimeError(f"{cmd}: {answer['error']}")
        return answer

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def first_connection(gw, limit_s):
    """Seconds from the command to the first handshake the gateway accepts."""
    import asyncio

    import websockets

    t = time.perf_counter()
    gw.start()

    async def attempt():
        async with websockets.connect(gw.url, open_timeout=5, ping_interval=None):
            return True

    while time.perf_counter() - t < limit_s:
        if gw.proc.poll() is not None:
            return None
        try:
            if asyncio.run(attempt()):
                return time.perf_counter() - t
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            time.sleep(0.02)
    return None


def request(url, method, headers, body=b""):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body or None, method=method, headers=headers), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def post_throughput(gw, client, connection_id, seconds):
    """wrk replays one POST to @connections (a signed one for wsdeploy: the signature stays valid for minutes) while
    the client counts what reaches the socket."""
    if not shutil.which("wrk"):
        return {"note": "wrk not installed"}
    url, headers = gw.management(connection_id, "POST", b"hello")
    lua = os.path.join(OUT, f"post-{gw.name.split()[0].lower()}.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = "hello"\n')
        for k, v in headers.items():
            f.write(f'wrk.headers["{k}"] = "{v}"\n')
    before = client("count")["received"]
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", lua, url], capture_output=True, text=True, timeout=seconds + 60).stdout
    sent = next((int(l.split()[0]) for l in out.splitlines() if "requests in" in l), 0)
    deadline = time.perf_counter() + 30
    delivered = 0
    while time.perf_counter() < deadline:
        delivered = client("count")["received"] - before
        if delivered >= sent:
            break
        time.sleep(0.2)
    rate = next((float(l.split()[1]) for l in out.splitlines() if l.startswith("Requests/sec:")), None)
    p99 = next((_ms(l.split()[1]) for l in out.splitlines() if l.strip().startswith("99%")), None)
    non2xx = next((int(l.split()[-1]) for l in out.splitlines() if "Non-2xx" in l), 0)
    return {"rate": rate, "p99_ms": p99, "sent": sent, "delivered": delivered, "non2xx": non2xx}


def _ms(text):
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def percentile(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))] if s else None


def measure(gw, limits):
    """Every figure for one gateway, in one start of it."""
    out = {"name": gw.name}
    first = first_connection(gw, limits["start_s"])
    out["first_connection_s"] = first
    if first is None:
        out["error"] = "never accepted a connection"
        gw.stop()
        return out
    client = Client()
    try:
        session = client("session", url=gw.url)
        cid = session["connectionId"]
        lat = client("latency", n=limits["latency_n"], warm=limits["warm"], seconds=limits["latency_s"])["samples"]
        out["latency"] = {"samples": lat, "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99), "n": len(lat)}
        time.sleep(2)  # what the latency run started (a peer's handler processes) has ended
        base = session_rss_kb(gw.proc.pid)
        opened = client("open", url=gw.url, n=limits["idle"], concurrency=limits["concurrency"], seconds=limits["open_s"])
        time.sleep(2)
        rss = session_rss_kb(gw.proc.pid)
        alive = client("alive")["open"]
        out["idle"] = dict(opened, held=alive, target=limits["idle"], rss_before_kb=base, rss_after_kb=rss, rss_per_connection_kb=(rss - base) / max(alive, 1), rate=opened["opened"] / max(opened["seconds"], 1e-9))
        out["post"] = post_throughput(gw, client, cid, limits["post_s"])
        url, headers = gw.management(cid, "GET")
        out["get_connection_status"] = request(url, "GET", headers)
        gone = client("gone", url=gw.url)["connectionId"]
        url, headers = gw.management(gone, "POST", b"late")
        out["post_to_gone_status"] = request(url, "POST", headers, b"late")
        client("close")
    finally:
        client.stop()
        gw.stop()
    return out
