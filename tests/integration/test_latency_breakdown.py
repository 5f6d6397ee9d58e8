"""The request path split in hops: the histograms bench/e2e reads to say where a slow request
spent its time (docs/gateway.md, docs/worker.md, docs/benchmarks.md).

After N requests through the real gateway and worker, each hop histogram has observed exactly N
more values, its buckets are cumulative and end in the count, and the values are plausible for
a local broker (under 5 s each, so not a clock in the wrong unit).
"""
import json
import math
import re

import pytest
import requests

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess

N = 25
GATEWAY_HOPS = ["sluice_gateway_publish_ack_seconds", "sluice_gateway_reply_record_age_seconds"]
LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
                   10, 30]
# The new hop histograms resolve below a millisecond, where most hops are on an idle machine.
HOP_BUCKETS = [0.0001, 0.00025] + LATENCY_BUCKETS
WORKER_HOPS = ["sluice_worker_request_record_age_seconds", "sluice_worker_queue_wait_seconds",
               "sluice_worker_handler_duration_seconds", "sluice_worker_reply_ack_seconds"]


@pytest.fixture(scope="module")
def path(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hops")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "GET", "path": "/items/{id}", "api_key_required": True, "handler": "echo"}]}))
    value, key_id, key_hash = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"value": value, "id": key_id, "hash": key_hash}],
                    {"default": {"throttle": {"rate": 1000, "burst": 2000}}})
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file).start()
    yield {"gw": gw, "worker": worker, "key": value}
    gcode, wcode = gw.stop(), worker.stop()
    assert gcode == 0, gw.log_text()[-3000:]
    assert wcode == 0, worker.log_text()[-3000:]


def histograms(admin):
    """{name: {"count": n, "sum": s, "buckets": [(le, cumulative), ...]}}, children summed."""
    out = {}
    for line in requests.get(admin + "/metrics", timeout=5).text.splitlines():
        m = re.match(r'^(\w+)_(bucket|count|sum)(\{.*\})? (\S+)$', line)
        if not m:
            continue
        name, part, labels, value = m.group(1), m.group(2), m.group(3) or "", float(m.group(4))
        h = out.setdefault(name, {"count": 0.0, "sum": 0.0, "buckets": {}})
        if part == "bucket":
            le = re.search(r'le="([^"]+)"', labels).group(1)
            le = math.inf if le == "+Inf" else float(le)
            h["buckets"][le] = h["buckets"].get(le, 0.0) + value
        else:
            h[part] += value
    for h in out.values():
        h["buckets"] = sorted(h["buckets"].items())
    return out


def test_each_hop_observes_every_request_once(path):
    gw, worker = path["gw"], path["worker"]
    before = {**histograms(gw.admin), **histograms(worker.admin)}
    for i in range(N):
        r = requests.get(f"{gw.url}/items/{i}", headers={"X-API-Key": path["key"]}, timeout=30)
        assert r.status_code == 200, r.text
    after = {**histograms(gw.admin), **histograms(worker.admin)}
    for name in GATEWAY_HOPS + WORKER_HOPS:
        assert name in after, f"{name} not exported"
        a, b = after[name], before.get(name, {"count": 0.0, "sum": 0.0, "buckets": []})
        assert a["count"] - b["count"] == N, (name, a["count"], b["count"])
        les = [le for le, _ in a["buckets"]]
        assert les[-1] == math.inf and les == sorted(les), (name, les)
        want = LATENCY_BUCKETS if name == "sluice_worker_handler_duration_seconds" else HOP_BUCKETS
        assert les[:-1] == want, (name, les)
        cumulative = [v for _, v in a["buckets"]]
        assert cumulative == sorted(cumulative), (name, cumulative)
        assert cumulative[-1] == a["count"], (name, cumulative, a["count"])
        # Every one of the N values below 5 s: the 5 s bucket rose by N as well.
        b5 = dict(b["buckets"]).get(5, 0.0)
        assert dict(a["buckets"])[5] - b5 == N, (name, a["buckets"], b["buckets"])
        assert 0 < a["sum"] - b["sum"] < 5 * N, (name, a["sum"], b["sum"])


def test_each_hop_is_documented(root_dir):
    gateway = (root_dir / "docs" / "gateway.md").read_text()
    worker = (root_dir / "docs" / "worker.md").read_text()
    for name in GATEWAY_HOPS:
        assert f"`{name}`" in gateway, name
    for name in WORKER_HOPS:
        assert f"`{name}" in worker, name
