"""What every part of the bench shares: paths, the table of rows, processes, moto, the test app's files."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(ROOT, "target", "wsdeploy-test-cache")
OUT = os.path.join(ROOT, "target", "bench")
WSDEPLOY = os.path.join(ROOT, "target", "release", "wsdeploy")
REGION = "eu-west-3"
ACCOUNT = "123456789012"
ROWS = []


def row(name, value, unit, reference=None, ratio=None, target=None, ok=None):
    ROWS.append({"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio, "target": target, "ok": ok})
    ref = f"{reference}" if reference is not None else ""
    rat = f"{ratio:.3f}x" if ratio is not None else ""
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    print(f"  {name:<52} {value:>12} {unit:<8} {ref:<34} {rat:>8}  {target or '':<12} {verdict}", flush=True)


def section(title):
    print(f"\n{title}", flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def ensure_tools():
    """PyPI: moto's server, the aws CLI the baseline script uses, websockets, matplotlib for the figure, cargo-lambda
    and zig for the release build of the functions; Debian: wrk."""
    need = [m for m, mod in (("moto[server]", "moto"), ("awscli", "awscli"), ("websockets", "websockets"), ("matplotlib", "matplotlib")) if not _has(mod)]
    if need:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *need], check=True)
        subprocess.run(["pyenv", "rehash"], check=False, capture_output=True)
    subprocess.run([os.path.join(ROOT, "scripts", "install-lambda-tools")], check=True)
    if not shutil.which("wrk") and shutil.which("apt-get"):
        # A fresh machine's package lists may be empty: update them once if the first try finds nothing.
        if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False).returncode:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=False)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], capture_output=True, check=False)


def _has(mod):
    try:
        __import__(mod)
        return True
    except ImportError:
        return False


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, limit_s):
    """Seconds until something accepts TCP on the port; None if the process ends or time is up."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit_s:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return time.perf_counter() - t
        except OSError:
            if proc is not None and proc.poll() is not None:
                return None
            time.sleep(0.02)
    return None


class Moto:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        if wait_port(self.port, self.proc, 30) is None:
            raise SystemExit("moto_server did not start")

    def reset(self):
        urllib.request.urlopen(urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")).read()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def aws_env(endpoint):
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION, WSDEPLOY_CACHE_DIR=CACHE, CI="true", NO_COLOR="1")
    env.pop("AWS_PROFILE", None)
    return env


def timed(cmd, cwd, env):
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        # Both streams: the action reports its failures on stdout (`::error` lines), as GitHub reads them.
        raise SystemExit(f"{' '.join(cmd)} (in {cwd}) exited {done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return time.perf_counter() - t


def app_dir(project, backend="https://api.example.com", extra=""):
    """A project as `wsdeploy init` leaves it: app/wsdeploy.yaml and the env files it writes beside."""
    d = tempfile.mkdtemp(prefix="wsdeploy-bench-")
    for sub in ("app", "frontend", "backend"):
        os.makedirs(os.path.join(d, sub))
    with open(os.path.join(d, "app", "wsdeploy.yaml"), "w") as f:
        f.write(
            f"project: {project}\nregion: {REGION}\nbackend: {{ url: '{backend}' }}\n"
            "lambda: { architecture: x86_64 }\nenv:\n  frontend: { file: ../frontend/.env }\n  backend: { file: ../backend/.env }\n"
            + extra
        )
    return d


def read_env(path):
    with open(path) as f:
        return dict(line.strip().split("=", 1) for line in f if "=" in line and not line.lstrip().startswith("#"))


def only_tools(names):
    """A PATH folder holding only these tools: no cargo, rustc, zig or python can be found through it."""
    d = tempfile.mkdtemp(prefix="wsdeploy-bench-path-")
    for n in names:
        os.symlink(os.path.realpath(shutil.which(n)), os.path.join(d, n))
    return d


def until_ready(proc, err_path, limit_s):
    """Seconds until `ready: open` appears in err_path (dev's stderr), or None if the process ends or time is up."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit_s:
        with open(err_path) as f:
            if "ready: open" in f.read():
                return time.perf_counter() - t
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def session_rss_kb(sid):
    """Resident memory of every process in the session (the tool and whatever it started), in KiB."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[3]) != sid:
                continue
            with open(f"/proc/{pid}/status") as f:
                total += next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
        except (OSError, IndexError, ValueError):
            continue
    return total


def stop_session(proc, grace_s=3):
    """SIGTERM to the whole session, SIGKILL to what is left after the grace period."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=grace_s)
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def json_lines(proc):
    """The next JSON value a child prints on stdout (one per line)."""
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"{proc.args[0]} exited")
    return json.loads(line)
