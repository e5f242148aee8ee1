"""The release as a newcomer meets it (issue-16 rows): npm from the packed release, `npx wsdeploy dev` with no Rust
toolchain, a cold `up` with no compiler, the GitHub Action's steps, and the bundled functions' size and start."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time

import lambda_start  # scripts/, on the path of scripts/bench

from .common import ROOT, WSDEPLOY, Moto, app_dir, aws_env, free_port, only_tools, row, section, sh, timed, until_ready


def artifact_benchmarks(runs):
    section("Lambda artifacts")
    built = json.loads(sh([WSDEPLOY, "build", "--arch", "x86_64", "--output", "json"], env=aws_env("http://127.0.0.1:9")).stdout)
    out = {}
    for f, b in sorted(built["functions"].items()):
        size = b["zip_bytes"]
        row(f"zip size: {f}", size, "B", None, size / 1_500_000, "<= 1.5 MB", size <= 1_500_000)
        start = lambda_start.measure(b["bootstrap"], runs)
        row(f"start to first GET /next: {f}", start["median_ms"], "ms", f"min {start['min_ms']} max {start['max_ms']}", None, "<= 15 ms", start["median_ms"] <= 15)
        out[f] = {"zip_bytes": size, "start_ms": start}
    return out


def install_benchmarks(quick):
    """A newcomer with no Rust toolchain: npm installs the packed release, `npx wsdeploy dev` runs the example (its own
    npm install included), a cold `up` needs no compiler; and the CI action's steps, timed."""
    section("Installed as a release (npm packages from the release archive; no Rust toolchain on PATH)")
    work = tempfile.mkdtemp(prefix="wsdeploy-bench-install-")
    dist, npm_out, tarballs = (os.path.join(work, d) for d in ("dist", "npm", "tarballs"))
    sh([os.path.join(ROOT, "scripts", "release"), "package", WSDEPLOY, "x86_64-unknown-linux-musl", dist])
    sh([os.path.join(ROOT, "scripts", "release"), "npm", dist, "0.1.0", npm_out])
    os.makedirs(tarballs)
    for pkg in ("wsdeploy", "linux-x64"):
        sh(["npm", "pack", "--silent", "--pack-destination", tarballs], cwd=os.path.join(npm_out, pkg))
    project = os.path.join(work, "project")
    os.makedirs(project)
    with open(os.path.join(project, "package.json"), "w") as f:
        f.write('{"private": true}\n')
    t = time.perf_counter()
    sh(["npm", "install", "--offline", "--no-audit", "--no-fund", *[os.path.join(tarballs, x) for x in sorted(os.listdir(tarballs))]], cwd=project)
    installed = time.perf_counter() - t
    row("npm install of the packed release (tarballs)", f"{installed:.1f}", "s")
    # The example as a clone has it (no node_modules): its `npm start` installs its packages (npm's cache as this
    # machine has it), then the page answers.
    shutil.copytree(os.path.join(ROOT, "examples", "chat"), os.path.join(project, "chat"), ignore=shutil.ignore_patterns("node_modules", ".env", ".env.frontend"))
    port = free_port()
    config = os.path.join(project, "chat", "wsdeploy.yaml")
    with open(config) as f:
        text = f.read().replace("127.0.0.1:3000", f"127.0.0.1:{port}")
    with open(config, "w") as f:
        f.write(text)
    path = only_tools(["node", "npm", "npx", "sh"])
    env = dict(os.environ, PATH=path, WSDEPLOY_CACHE_DIR=tempfile.mkdtemp(prefix="wsdeploy-bench-cache-"), NO_COLOR="1")
    env.pop("AWS_ENDPOINT_URL", None)
    err = os.path.join(work, "dev.err")
    t0 = time.perf_counter()
    with open(err, "w") as e:
        dev = subprocess.Popen(["npx", "--offline", "wsdeploy", "dev", "-c", "chat/wsdeploy.yaml", "--port", "0"], cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=e, start_new_session=True)
    ready = until_ready(dev, err, 120)
    try:
        os.killpg(dev.pid, 15)
        dev.wait(timeout=40)
    except (OSError, subprocess.TimeoutExpired):
        os.killpg(dev.pid, 9)
    if ready is None:
        with open(err) as f:
            print(f.read()[-3000:])
        row("example ready: npm install + npx wsdeploy dev", "failed", "", None, None, "<= 10 s", False)
    else:
        total = installed + ready
        row("example ready: npm install + npx wsdeploy dev", f"{total:.1f}", "s", f"dev alone {ready:.1f} s", None, "<= 10 s", total <= 10)
    out = {"npm_install_s": installed, "example_ready_s": ready}
    out.update(cold_up_without_compiler(path, quick))
    shutil.rmtree(work, ignore_errors=True)
    return out


def cold_up_without_compiler(path, quick):
    """A cold `up` on an empty cache with nothing but the binary (its embedded functions), beside one that must build
    the functions from source first (what every `up` of a development build, and the old CI template, paid)."""
    moto = Moto()
    try:
        d = app_dir("nocompiler")
        env = dict(aws_env(moto.url), PATH=path, WSDEPLOY_CACHE_DIR=tempfile.mkdtemp(prefix="wsdeploy-bench-cache-"))
        embedded = timed([WSDEPLOY, "up", "-q"], os.path.join(d, "app"), env)
        out = {"cold_up_embedded_s": embedded}
        if quick:
            row("cold up, no compiler on PATH (embedded functions)", f"{embedded:.2f}", "s", "from source: not in --quick")
            return out
        moto.reset()
        d2 = app_dir("fromsource")
        env2 = dict(aws_env(moto.url), WSDEPLOY_CACHE_DIR=tempfile.mkdtemp(prefix="wsdeploy-bench-cache-"))
        source = timed([WSDEPLOY, "up", "-q", "--build-from-source"], os.path.join(d2, "app"), env2)
        row("cold up, no compiler on PATH (embedded functions)", f"{embedded:.2f}", "s", f"from source, empty cache {source:.0f} s", embedded / source, "<= 0.1x", embedded / source <= 0.1)
        out["cold_up_from_source_s"] = source
        return out
    finally:
        moto.stop()


def action_benchmarks():
    """The CI template's deploy job, step by step: the action's install (download from a local release, checksum,
    unpack) and its `up`, run by the action's own script against moto. Runner start-up and checkout are GitHub's."""
    section("The GitHub Action's steps (action/run.sh against a local release and moto)")
    work = tempfile.mkdtemp(prefix="wsdeploy-bench-action-")
    dist = os.path.join(work, "dist")
    sh([os.path.join(ROOT, "scripts", "release"), "package", WSDEPLOY, "x86_64-unknown-linux-musl", dist])
    moto = Moto()
    try:
        d = app_dir("action")
        runner = os.path.join(work, "runner")
        os.makedirs(runner)
        archive = os.path.join(dist, "wsdeploy-x86_64-unknown-linux-musl.tar.gz")
        with open(archive, "rb") as f:
            sha256 = hashlib.sha256(f.read()).hexdigest()
        # A local release has no checksums committed with the action and no attestation: the sha256 input vouches
        # for it, as a user pinning a build of their own would.
        env = dict(aws_env(moto.url), WSDEPLOY_ACTION_STAGE="dev", WSDEPLOY_ACTION_VERSION="v0.0.0-bench", WSDEPLOY_ACTION_BASE_URL=f"file://{dist}", WSDEPLOY_ACTION_SHA256=sha256, WSDEPLOY_ACTION_ATTESTATION="off", RUNNER_TEMP=runner, WSDEPLOY_CACHE_DIR=os.path.join(runner, "cache"))
        script = os.path.join(ROOT, "action", "run.sh")
        install = timed(["bash", script], os.path.join(d, "app"), dict(env, WSDEPLOY_ACTION_COMMAND="install"))
        up = timed(["bash", script], os.path.join(d, "app"), env)
        size = os.path.getsize(archive)
        # GitHub's runners download release assets at tens of MB/s: 10 MB/s is the cautious figure used here.
        download = size / 10e6
        row("action: install (local release, verify, unpack)", f"{install:.2f}", "s", f"archive {size / 1e6:.1f} MB")
        row("action: up (cold stage)", f"{up:.2f}", "s")
        job = download + install + up
        row("deploy job estimate (download at 10 MB/s + install + up)", f"{job:.1f}", "s", "before: compile wsdeploy + Lambdas, minutes")
        return {"install_s": install, "up_s": up, "archive_bytes": size, "job_estimate_s": job}
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)
