"""Where a bench/e2e measurement spent its time: snapshots before and after it, and the difference.

  hops.py snap OUT GW_ADMIN WK_ADMIN GC_LOG [NAME:PID,...]
                                              the gateway's and the worker's /metrics (either
                                              port may be "-"), /proc/stat's cpu line, the
                                              broker's GC log length and the CPU time of the
                                              named processes, into OUT (JSON)
  hops.py diff BEFORE AFTER OUT               prints one line, writes the figures to OUT (JSON)

The hops are the services' histograms (docs/gateway.md, docs/worker.md); p50 and p99 are
estimated from the bucket deltas as Prometheus' histogram_quantile does (linear within the
bucket), so they are as coarse as the buckets (0.5, 1, 2.5, 5, 10, 25 ms, ...). Steal is the
share of the machine's CPU time the hypervisor gave to others (/proc/stat, all CPUs), busy the
share not idle (every process, ours included), and CPU pressure the share of the time some
runnable task waited for a CPU (/proc/pressure/cpu "some"): other load on a shared machine
shows there, not in steal. The GC
figures are the broker's pauses logged between the two snapshots (-Xlog:gc, scripts/stack).
"""
import json
import math
import os
import re
import sys
import time
import urllib.request

# (label, metric) in path order; the worker's handler histogram is per route, summed here.
HOPS = [
    ("publish->ack", "sluice_gateway_publish_ack_seconds"),
    ("request age", "sluice_worker_request_record_age_seconds"),
    ("queue", "sluice_worker_queue_wait_seconds"),
    ("handler", "sluice_worker_handler_duration_seconds"),
    ("reply ack", "sluice_worker_reply_ack_seconds"),
    ("reply age", "sluice_gateway_reply_record_age_seconds"),
    ("gateway total", "sluice_gateway_request_duration_seconds"),
]
PAUSE = re.compile(r"\bPause\b.*?([0-9.]+)ms\s*$")


def scrape(port):
    if port == "-":
        return ""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def cpu_pressure_us():
    """Microseconds some runnable task waited for a CPU (PSI, Linux 4.20+), or -1."""
    try:
        with open("/proc/pressure/cpu") as f:
            return int(re.search(r"total=(\d+)", f.readline()).group(1))
    except (OSError, AttributeError):
        return -1


def proc_ticks(pids):
    """{name: CPU ticks (user + system)} of NAME:PID,... (names may repeat: summed)."""
    out = {}
    for item in filter(None, pids.split(",")):
        name, _, pid = item.partition(":")
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out.setdefault(name, {})[pid] = int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return out


def snap(out, gw, wk, gc_log, pids=""):
    with open("/proc/stat") as f:
        cpu = [int(v) for v in f.readline().split()[1:]]
    gc_size = os.path.getsize(gc_log) if os.path.exists(gc_log) else -1
    json.dump({"t": time.time(), "metrics": scrape(gw) + scrape(wk), "cpu": cpu,
               "psi_us": cpu_pressure_us(), "gc_log": gc_log, "gc_size": gc_size,
               "procs": proc_ticks(pids)},
              open(out, "w"))


def buckets(text):
    """{metric: {le: cumulative count}}, the children of a family summed."""
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(\w+)_bucket\{(.*)\} (\S+)$', line)
        if not m:
            continue
        le = re.search(r'le="([^"]+)"', m.group(2)).group(1)
        le = math.inf if le == "+Inf" else float(le)
        h = out.setdefault(m.group(1), {})
        h[le] = h.get(le, 0.0) + float(m.group(3))
    return out


def quantile(q, cum):
    """histogram_quantile over [(le, cumulative)] sorted by le; None when empty."""
    total = cum[-1][1] if cum else 0
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in cum:
        if c >= rank:
            if le == math.inf:
                return prev_le  # above the largest bound: the bound is all that is known
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c) if c > prev_c else le
        prev_le, prev_c = le, c
    return prev_le


def diff(before_path, after_path, out_path):
    a, b = json.load(open(after_path)), json.load(open(before_path))
    ba, bb = buckets(a["metrics"]), buckets(b["metrics"])
    hops = {}
    for label, name in HOPS:
        if name not in ba:
            continue
        cum = sorted((le, c - bb.get(name, {}).get(le, 0.0)) for le, c in ba[name].items())
        n = cum[-1][1] if cum else 0
        p50, p99 = quantile(0.5, cum), quantile(0.99, cum)
        hops[label] = {"metric": name, "count": int(n),
                       "p50_ms": None if p50 is None else round(p50 * 1e3, 3),
                       "p99_ms": None if p99 is None else round(p99 * 1e3, 3)}
    d = [x - y for x, y in zip(a["cpu"], b["cpu"])]
    total = sum(d[:8]) or 1  # user nice system idle iowait irq softirq steal (guest is in user)
    steal = 100.0 * (d[7] if len(d) > 7 else 0) / total
    busy = 100.0 * (total - d[3] - d[4]) / total  # the whole machine's, ours included
    seconds = a["t"] - b["t"]
    pressure = None
    if a.get("psi_us", -1) >= 0 and b.get("psi_us", -1) >= 0 and seconds > 0:
        pressure = 100.0 * (a["psi_us"] - b["psi_us"]) / 1e6 / seconds
    gc = {"log": a["gc_log"], "count": 0, "total_ms": 0.0, "max_ms": 0.0}
    if a["gc_size"] < 0:
        gc["count"] = None
    else:
        start = b["gc_size"] if 0 <= b["gc_size"] <= a["gc_size"] else 0  # a new broker: all
        with open(a["gc_log"], "rb") as f:
            f.seek(start)
            for line in f.read(max(a["gc_size"] - start, 0)).decode(errors="replace").splitlines():
                m = PAUSE.search(line)
                if m:
                    ms = float(m.group(1))
                    gc["count"] += 1
                    gc["total_ms"] = round(gc["total_ms"] + ms, 3)
                    gc["max_ms"] = max(gc["max_ms"], ms)
    # The path's own processes, in % of one CPU: what Sluice and the broker took of the busy.
    procs = {}
    hz = os.sysconf("SC_CLK_TCK")
    for name, ticks in a.get("procs", {}).items():
        t = sum(v - b.get("procs", {}).get(name, {}).get(pid, v) for pid, v in ticks.items())
        if seconds > 0:
            procs[name] = round(100.0 * t / hz / seconds, 1)
    result = {"seconds": round(seconds, 1), "process_cpu_pct": procs, "steal_pct": round(steal, 2),
              "cpu_busy_pct": round(busy, 1),
              "cpu_pressure_pct": None if pressure is None else round(pressure, 1), "gc": gc,
              "hops": hops}
    json.dump(result, open(out_path, "w"))
    fmt = lambda v: "-" if v is None else f"{v:.2f}"
    parts = [f"{k} {fmt(h['p50_ms'])}/{fmt(h['p99_ms'])}" for k, h in hops.items()]
    line = ""
    if parts:
        line += "hops p50/p99 ms: " + ", ".join(parts) + "; "
    line += f"steal {steal:.1f} %, CPUs busy {busy:.0f} %"
    if pressure is not None:
        line += f", CPU pressure {pressure:.0f} %"
    if procs:
        line += " (of one CPU: " + ", ".join(f"{k} {v:.0f} %" for k, v in procs.items()) + ")"
    line += "; broker GC "
    if gc["count"] is None:
        line += "unknown (no GC log: restart the stack with scripts/stack)"
    else:
        line += f"{gc['count']} pauses, total {gc['total_ms']:.1f} ms, max {gc['max_ms']:.1f} ms"
    print(line)


if __name__ == "__main__":
    if len(sys.argv) in (6, 7) and sys.argv[1] == "snap":
        snap(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "diff":
        diff(*sys.argv[2:])
    else:
        sys.exit(__doc__)
