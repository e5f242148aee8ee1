"""What the run found, three ways: rows on the terminal, target/bench/summary.json, and a Markdown table plus the
latency figure (target/bench/); `--publish` puts those two into docs/benchmarks.md and docs/bench/."""
import datetime
import json
import os
import platform
import re
import shutil
import subprocess

from .common import OUT, ROOT, ROWS, row, section
from .deploy import median

# metric key, label, unit, better ("lower" | "higher")
GATEWAY_METRICS = [
    ("first_connection_s", "command to first accepted connection", "s", "lower"),
    ("latency_p50_ms", "route -> handler -> reply, warm, p50", "ms", "lower"),
    ("latency_p99_ms", "route -> handler -> reply, warm, p99", "ms", "lower"),
    ("idle_held", "idle connections held", "", "higher"),
    ("rss_per_connection_kb", "RSS per idle connection", "KB", "lower"),
    ("connect_rate", "new connections per second", "/s", "higher"),
    ("post_rate", "@connections POST throughput, all delivered", "msg/s", "higher"),
    ("post_p99_ms", "@connections POST p99", "ms", "lower"),
]


# wsdeploy's own targets for the local gateway: (check, as written).
TARGETS = {
    "latency_p99_ms": (lambda v: v <= 5, "<= 5 ms"),
    "rss_per_connection_kb": (lambda v: v <= 15, "<= 15 KB"),
    # API Gateway's quota for new connections is 500 per second per account: dev must not be what limits a test.
    "connect_rate": (lambda v: v >= 500, ">= 500/s"),
    "post_rate": (lambda v: v >= 20000, ">= 20000"),
}


def gateway_figures(g):
    """The table's figures for one gateway's results (None where it has none)."""
    idle, post, lat = g.get("idle") or {}, g.get("post") or {}, g.get("latency") or {}
    delivered = post.get("delivered", 0) >= post.get("sent", 1) and not post.get("non2xx")
    return {
        "first_connection_s": g.get("first_connection_s"),
        "latency_p50_ms": lat.get("p50_ms"),
        "latency_p99_ms": lat.get("p99_ms"),
        "idle_held": idle.get("held"),
        "rss_per_connection_kb": idle.get("rss_per_connection_kb"),
        "connect_rate": idle.get("rate"),
        "post_rate": post.get("rate") if delivered else None,
        "post_p99_ms": post.get("p99_ms"),
    }


def _fmt(v):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.2f}" if v < 10 else f"{v:,.0f}"
    return f"{v:,}"


def gateway_notes(g):
    """Where a figure needs words: a limit reached, a behaviour missing."""
    notes = {}
    idle = g.get("idle") or {}
    if idle and idle.get("held", 0) < idle.get("target", 0):
        why = f"{idle['seconds']:.0f} s budget spent" if idle.get("timed_out") else "refused"
        errs = ", ".join(f"{k} x{v}" for k, v in (idle.get("errors") or {}).items())
        notes["idle_held"] = f"of {idle['target']:,} ({why}{'; ' + errs if errs else ''})"
    post = g.get("post") or {}
    if post.get("non2xx"):
        notes["post_rate"] = f"{post['non2xx']} non-2xx answers"
    elif post and post.get("delivered", 0) < post.get("sent", 0):
        notes["post_rate"] = f"{post['delivered']} of {post['sent']} delivered"
    return notes


def gateway_rows(results):
    """Each peer's figure as a ratio to wsdeploy's from the same run (peer / wsdeploy)."""
    base = gateway_figures(results[0])
    for key, label, unit, better in GATEWAY_METRICS:
        ours = base[key]
        check, target = TARGETS.get(key, (None, None))
        ok = None if check is None else (ours is not None and check(ours))
        row(f"{label} [{results[0]['name']}]", _fmt(ours), unit, None, None, target, ok)
        for g in results[1:]:
            theirs = gateway_figures(g)[key]
            ratio = theirs / ours if (theirs is not None and ours) else None
            row(f"  {g['name']}", _fmt(theirs), unit, f"{better} is better; {gateway_notes(g).get(key, '')}".rstrip("; "), ratio)
    for g in results:
        row(f"GET @connections/{{id}} [{g['name']}]", g.get("get_connection_status"), "", "200 = supported")
        row(f"POST to a departed connection [{g['name']}]", g.get("post_to_gone_status"), "", "410 = GoneException, as AWS")


def deploy_rows(d):
    w, c = d["wsdeploy"], d["aws_cli"]
    section(f"Deploying through the AWS-behaviour layer ({d['latency_ms']} ms per request, IAM propagation {d['iam_propagation_ms'] / 1000:.0f} s)")
    for kind, label in (("cold", "cold up"), ("change", "one-route change")):
        ours, theirs = median(w[kind], "seconds"), median(c[kind], "seconds")
        row(f"{label} (median)", f"{ours:.2f}", "s", f"aws CLI script {theirs:.2f} s", ours / theirs)
    noop = median(w["noop"], "seconds")
    row("no-op up (median)", f"{noop:.2f}", "s", f"aws CLI script: re-run exits {c['rerun']['exit']}", None)
    mutating = max(r["mutating"] for r in w["noop"])
    row("no-op up: mutating requests", mutating, "", None, None, "0", mutating == 0)
    for kind, target in (("noop", 2), ("cold", 7), ("change", None)):
        chain = max(r["chain_steps"] for r in w[kind])
        reqs = max(r["chain_requests"] for r in w[kind])
        ref = f"{reqs} counting retries and polls; of {max(r['requests'] for r in w[kind])} requests"
        row(f"{kind} up: longest chain of dependent requests", chain, "", ref, None, f"<= {target}" if target else None, chain <= target if target else None)
    for kind in ("cold", "change"):
        row(f"aws CLI script {kind}: longest chain", max(r["chain_steps"] for r in c[kind]), "", f"of {max(r['requests'] for r in c[kind])} requests")
    cfn = d["cloudformation"]
    row("CloudFormation (moto) stack status", cfn["status"], "", f"APIs created: {cfn['apis_created']}")


def figure(results, path):
    """The latency distribution of each gateway (CDF, log time axis) as SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for g in results:
        s = sorted((g.get("latency") or {}).get("samples") or [])
        if s:
            ax.step(s, [(i + 1) / len(s) for i in range(len(s))], where="post", label=f"{g['name']} (n={len(s)})")
    ax.set_xscale("log")
    ax.set_xlabel("route -> handler -> reply (ms, log scale)")
    ax.set_ylabel("share of messages answered")
    ax.set_title("Local gateway latency, warm, one message at a time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {mem / 2**20:.0f} GiB, Linux {platform.release()}, Node {node}"


def markdown(summary):
    g, d = summary["gateway"], summary["deploy"]
    lines = [
        f"Measured {summary['date']} on {summary['machine']} (`scripts/bench{' --quick' if summary['quick'] else ''}`). "
        f"Peers: {', '.join(f'{k} {v}' for k, v in summary['peers'].items() if k != 'ws')}. "
        "Ratio = peer / wsdeploy, both from the same run.",
        "",
        "| Local gateway | " + " | ".join(x["name"] for x in g) + " |",
        "|---|" + "---:|" * len(g),
    ]
    base = gateway_figures(g[0])
    for key, label, unit, better in GATEWAY_METRICS:
        cells = [" ".join(x for x in (_fmt(base[key]), unit) if x)]
        for peer in g[1:]:
            v = gateway_figures(peer)[key]
            note = gateway_notes(peer).get(key)
            ratio = f" ({v / base[key]:.2f}x)" if v is not None and base[key] else ""
            cells.append(" ".join(x for x in (_fmt(v), unit) if x) + ratio + (f" {note}" if note else ""))
        lines.append(f"| {label} ({better} is better) | " + " | ".join(cells) + " |")
    lines.append("| GET `@connections/{id}` | " + " | ".join(_status(x.get("get_connection_status"), 200) for x in g) + " |")
    lines.append("| POST to a departed connection | " + " | ".join(_status(x.get("post_to_gone_status"), 410) for x in g) + " |")
    w, c = d["wsdeploy"], d["aws_cli"]
    med = median
    lines += [
        "",
        f"Deploys through the AWS-behaviour layer: {d['latency_ms']} ms added to every request, a new role unusable by Lambda for "
        f"{d['iam_propagation_ms'] / 1000:.0f} s, new functions `Pending` for 1 s, API writes serialised.",
        "",
        "| Deploy | wsdeploy | aws CLI script | ratio |",
        "|---|---:|---:|---:|",
        f"| cold `up` | {med(w['cold'], 'seconds'):.1f} s | {med(c['cold'], 'seconds'):.1f} s | {med(w['cold'], 'seconds') / med(c['cold'], 'seconds'):.2f}x |",
        f"| one-route change | {med(w['change'], 'seconds'):.1f} s | {med(c['change'], 'seconds'):.1f} s | {med(w['change'], 'seconds') / med(c['change'], 'seconds'):.2f}x |",
        f"| no-op `up` | {med(w['noop'], 'seconds'):.2f} s, {max(r['mutating'] for r in w['noop'])} mutating requests | re-run fails (exit {c['rerun']['exit']}) | |",
        f"| longest chain, cold | {max(r['chain_steps'] for r in w['cold'])} (target 7) | {max(r['chain_steps'] for r in c['cold'])} | |",
        f"| longest chain, no-op | {max(r['chain_steps'] for r in w['noop'])} (target 2) | | |",
        f"| longest chain, one route | {max(r['chain_steps'] for r in w['change'])} | {max(r['chain_steps'] for r in c['change'])} | |",
        f"| CloudFormation (moto {summary['moto']}) | | stack {d['cloudformation']['status']}, {d['cloudformation']['apis_created']} APIs created | |",
    ]
    return "\n".join(lines) + "\n"


def _status(code, supported):
    if code is None:
        return "n/a"
    return f"yes ({code})" if code == supported else f"no ({code})"


def write(summary, publish):
    os.makedirs(OUT, exist_ok=True)
    svg = os.path.join(OUT, "gateway-latency.svg")
    if summary.get("gateway"):
        figure(summary["gateway"], svg)
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    if summary.get("fanout") and publish:
        from . import fanout

        os.makedirs(os.path.join(ROOT, "docs", "bench"), exist_ok=True)
        shutil.copy(os.path.join(OUT, "fanout.svg"), os.path.join(ROOT, "docs", "bench", "fanout.svg"))
        replace_block("fanout", fanout.markdown(summary["fanout"]))
    if not (summary.get("gateway") and summary.get("deploy")):
        return
    table = markdown(summary)
    with open(os.path.join(OUT, "table.md"), "w") as f:
        f.write(table)
    if publish:
        os.makedirs(os.path.join(ROOT, "docs", "bench"), exist_ok=True)
        shutil.copy(svg, os.path.join(ROOT, "docs", "bench", "gateway-latency.svg"))
        replace_block("peers", f"{table}\n![Local gateway latency](bench/gateway-latency.svg)")


def replace_block(name, body):
    """Puts `body` between docs/benchmarks.md's `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`."""
    page = os.path.join(ROOT, "docs", "benchmarks.md")
    text = open(page).read()
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    if start not in text:
        raise SystemExit(f"docs/benchmarks.md has no {start} ... {end} block to replace")
    new = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: f"{start}\n{body}\n{end}", text, flags=re.S)
    with open(page, "w") as f:
        f.write(new)


def today():
    return datetime.date.today().isoformat()
