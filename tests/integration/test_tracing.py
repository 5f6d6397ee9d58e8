"""Trace spans from the services, received by a real OTLP/HTTP receiver (test_otlp.Receiver):
one successful request, one the WAF blocks and one whose handler crashes until it is
dead-lettered, each checked as a tree — parents, links, names, kinds, attributes, status — and
against the trace id the client sent and the audit record; then the archiver's batch span."""
import http.server
import json
import secrets
import threading
import time

import pytest
import requests

from harness import Gateway, consume_all, create_topics, new_key, new_prefix, write_keys_file
from test_archiver import Archiver
from test_otlp import Receiver
from test_worker import WorkerProcess

SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL = 2, 3, 4, 5, 1
ERROR = 2
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "200"}


class Upstream(http.server.BaseHTTPRequestHandler):
    """The http handler's upstream: keeps the traceparent headers it received."""
    seen = []

    def do_GET(self):
        Upstream.seen.append([v for k, v in self.headers.items() if k.lower() == "traceparent"])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def attrs(span):
    out = {}
    for a in span.get("attributes", []):
        v = a["value"]
        out[a["key"]] = v.get("stringValue", v.get("intValue", v.get("boolValue")))
    return out


@pytest.fixture(scope="module")
def traced(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tracing")
    rec = Receiver(__import__("harness").free_port())
    rec.start()
    endpoint = f"http://127.0.0.1:{rec.port}"
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    plugins = build_dir / "services" / "worker"
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    routes = tmp / "routes.json"
    routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/fail/{proxy+}", "api_key_required": True,
         "handler": "plugin", "plugin": str(plugins / "plugin-segfault.so")},
        {"method": "GET", "path": "/up/{proxy+}", "api_key_required": True, "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"},
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    value, kid, digest = new_key()
    keys = tmp / "keys.json"
    write_keys_file(keys, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes,
                           SLUICE_OTLP_ENDPOINT=endpoint, SLUICE_RETRY_BACKOFF_MS=20,
                           ASAN_OPTIONS="detect_leaks=0:symbolize=0", **FAST_EXPORT).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys, SLUICE_ROUTES_FILE=routes,
                 SLUICE_OTLP_ENDPOINT=endpoint, **FAST_EXPORT).start()
    yield {"gw": gw, "worker": worker, "rec": rec, "key": value, "key_id": kid,
           "prefix": prefix, "bootstrap": kafka_bootstrap, "endpoint": endpoint, "tmp": tmp}
    gw.stop()
    worker.stop()
    rec.stop()
    upstream.shutdown()


def trace_of(rec, trace_id, want, timeout=30):
    """The spans of one trace, once `want(spans)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in rec.spans() if s["traceId"] == trace_id]
        if want(spans) or time.monotonic() > deadline:
            return spans
        time.sleep(0.2)


def one(spans, name, service=None):
    found = [s for s in spans if s["name"] == name and
             (service is None or s["resource"]["service.name"] == service)]
    assert len(found) == 1, (name, [(s["name"], s["resource"]["service.name"]) for s in spans])
    return found[0]


def client_traceparent():
    tid, sid = secrets.token_hex(16), secrets.token_hex(8)
    return tid, sid, f"00-{tid}-{sid}-01"


def audit_record(st, rid):
    for m in consume_all(st["bootstrap"], st["prefix"] + "audit"):
        rec = json.loads(m.value())
        if rec["request_id"] == rid:
            return rec
    raise AssertionError(f"no audit record for {rid}")


def test_a_successful_request_is_one_tree_from_gateway_to_handler(traced):
    tid, sid, tp = client_traceparent()
    r = requests.get(traced["gw"].url + "/hello/traced", timeout=30,
                     headers={"X-API-Key": traced["key"], "traceparent": tp})
    assert r.status_code == 200, r.text
    spans = trace_of(traced["rec"], tid, lambda s: len(s) >= 9)
    names = sorted((s["resource"]["service.name"], s["name"]) for s in spans)
    assert names == sorted([
        ("sluice-gateway", "GET /{proxy+}"), ("sluice-gateway", "waf"),
        ("sluice-gateway", "api key"), ("sluice-gateway", "usage plan"),
        ("sluice-gateway", "publish"), ("sluice-gateway", "await reply"),
        ("sluice-worker", f"process {traced['prefix']}requests"),
        ("sluice-worker", "handler attempt"), ("sluice-worker", "reply")])
    server = one(spans, "GET /{proxy+}")
    assert server["parentSpanId"] == sid and server["kind"] == SERVER
    a = attrs(server)
    assert a["http.request.method"] == "GET" and a["url.path"] == "/hello/traced"
    assert a["http.route"] == "/{proxy+}" and int(a["http.response.status_code"]) == 200
    assert a["sluice.request_id"] == r.headers["x-amzn-RequestId"]
    assert server.get("status", {}).get("code", 0) != ERROR
    for name in ("waf", "api key", "usage plan", "publish", "await reply"):
        assert one(spans, name)["parentSpanId"] == server["spanId"], name
    publish = one(spans, "publish")
    assert publish["kind"] == PRODUCER
    assert attrs(publish)["messaging.destination.name"] == traced["prefix"] + "requests"
    assert attrs(one(spans, "api key"))["sluice.api_key.id"] == traced["key_id"]
    consumer = one(spans, f"process {traced['prefix']}requests")
    assert consumer["kind"] == CONSUMER and consumer["parentSpanId"] == publish["spanId"]
    assert [(lk["traceId"], lk["spanId"]) for lk in consumer["links"]] == \
        [(tid, publish["spanId"])]
    ca = attrs(consumer)
    assert ca["messaging.system"] == "kafka" and ca["http.route"] == "/{proxy+}"
    assert int(ca["messaging.kafka.offset"]) >= 0 and "messaging.destination.partition.id" in ca
    attempt = one(spans, "handler attempt")
    assert attempt["parentSpanId"] == consumer["spanId"]
    assert attrs(attempt)["sluice.outcome"] == "ok" and int(attrs(attempt)["sluice.attempt"]) == 1
    assert one(spans, "reply")["parentSpanId"] == consumer["spanId"]
    # Times nest: the server span holds its children.
    for s in spans:
        assert int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"])
    assert int(server["startTimeUnixNano"]) <= int(publish["startTimeUnixNano"])
    assert int(one(spans, "await reply")["endTimeUnixNano"]) <= int(server["endTimeUnixNano"])
    assert audit_record(traced, r.headers["x-amzn-RequestId"])["trace_id"] == tid


def test_the_http_upstream_hangs_under_the_exported_attempt_span(traced):
    """The traceparent the upstream receives names the worker's "handler attempt" span, the one
    exported, so the upstream's own spans join the tree under it."""
    tid, sid, tp = client_traceparent()
    Upstream.seen.clear()
    r = requests.get(traced["gw"].url + "/up/orders", timeout=30,
                     headers={"X-API-Key": traced["key"], "traceparent": tp})
    assert r.status_code == 200, r.text
    assert len(Upstream.seen) == 1 and len(Upstream.seen[0]) == 1, Upstream.seen
    version, trace_id, parent_id, flags = Upstream.seen[0][0].split("-")
    assert (version, trace_id, flags) == ("00", tid, "01")
    spans = trace_of(traced["rec"], tid, lambda s: any(
        x["name"] == "handler attempt" for x in s) and any(x["name"] == "reply" for x in s))
    attempt = one(spans, "handler attempt", "sluice-worker")
    assert attempt["spanId"] == parent_id
    assert attempt["parentSpanId"] == one(spans, f"process {traced['prefix']}requests")["spanId"]
    assert attrs(attempt)["sluice.handler"] == "http"


def test_a_waf_block_has_the_rule_on_its_span_and_reaches_no_worker(traced):
    tid, sid, tp = client_traceparent()
    r = requests.get(traced["gw"].url + "/search", params={"q": "<script>alert(1)</script>"},
                     timeout=30, headers={"X-API-Key": traced["key"], "traceparent": tp,
                                          "User-Agent": "it"})
    assert r.status_code == 403
    spans = trace_of(traced["rec"], tid, lambda s: len(s) >= 2)
    time.sleep(0.5)
    spans = trace_of(traced["rec"], tid, lambda s: True)
    # The WAF decides before routing: the server span has no route to name.
    assert sorted(s["name"] for s in spans) == ["GET", "waf"]
    waf = one(spans, "waf")
    assert waf["status"]["code"] == ERROR
    assert attrs(waf)["sluice.waf.action"] == "BLOCK"
    assert attrs(waf)["sluice.waf.rule"]
    server = [s for s in spans if s["name"] != "waf"][0]
    assert int(attrs(server)["http.response.status_code"]) == 403
    assert server.get("status", {}).get("code", 0) != ERROR  # a client error
    assert audit_record(traced, r.headers["x-amzn-RequestId"])["trace_id"] == tid


def test_a_dead_lettered_request_shows_every_attempt_and_why(traced):
    tid, sid, tp = client_traceparent()
    r = requests.post(traced["gw"].url + "/fail/boom", data=b"x", timeout=30,
                      headers={"X-API-Key": traced["key"], "traceparent": tp})
    assert r.status_code == 502
    process = f"process {traced['prefix']}requests"
    spans = trace_of(traced["rec"], tid,
                     lambda s: any(x["name"] == process for x in s) and
                     any(x["name"] == "POST /fail/{proxy+}" for x in s))
    consumer = one(spans, process)
    attempts = sorted((s for s in spans if s["name"] == "handler attempt"),
                      key=lambda s: int(attrs(s)["sluice.attempt"]))
    assert [int(attrs(s)["sluice.attempt"]) for s in attempts] == [1, 2, 3]
    for s in attempts:
        assert s["parentSpanId"] == consumer["spanId"]  # siblings
        assert s["status"]["code"] == ERROR and attrs(s)["sluice.outcome"] == "crash"
    assert consumer["status"]["code"] == ERROR and attrs(consumer)["error.type"] == "crash"
    assert [e["name"] for e in consumer["events"]] == ["dead-lettered"]
    dead = one(spans, "dead-letter")
    assert dead["parentSpanId"] == consumer["spanId"] and dead["kind"] == PRODUCER
    assert attrs(dead)["messaging.destination.name"] == traced["prefix"] + "dlq"
    server = one(spans, "POST /fail/{proxy+}")
    assert server["status"]["code"] == ERROR
    assert int(attrs(server)["http.response.status_code"]) == 502


def test_the_archiver_sends_a_span_per_batch(traced, build_dir, tmp_path):
    arch = Archiver(build_dir, tmp_path, traced["bootstrap"], traced["prefix"],
                    traced["prefix"] + "archiver", f"file://{tmp_path / 'archive'}",
                    SLUICE_OTLP_ENDPOINT=traced["endpoint"], **FAST_EXPORT).start()
    try:
        deadline = time.monotonic() + 30
        batches = []
        while not batches and time.monotonic() < deadline:
            batches = [s for s in traced["rec"].spans()
                       if s["resource"]["service.name"] == "sluice-archiver"]
            time.sleep(0.2)
    finally:
        arch.stop()
    assert batches
    b = batches[0]
    a = attrs(b)
    assert b["name"] == "archive batch" and b["kind"] == CLIENT and not b.get("parentSpanId")
    assert a["sluice.archive.object"].startswith("api-logs/year=")
    assert int(a["sluice.archive.records"]) >= 1 and int(a["sluice.archive.attempts"]) == 1
    assert int(a["sluice.archive.last_offset"]) >= int(a["sluice.archive.first_offset"])


def test_tracing_off_sends_nothing_and_sampling_follows_the_client(traced, build_dir,
                                                                    kafka_bootstrap, tmp_path):
    # The client's unsampled flag is followed: no span of that trace leaves the gateway.
    tid, sid, _ = client_traceparent()
    r = requests.get(traced["gw"].url + "/unsampled", timeout=30,
                     headers={"X-API-Key": traced["key"], "traceparent": f"00-{tid}-{sid}-00"})
    assert r.status_code == 200
    tid2, _, tp2 = client_traceparent()
    requests.get(traced["gw"].url + "/sampled", timeout=30,
                 headers={"X-API-Key": traced["key"], "traceparent": tp2})
    trace_of(traced["rec"], tid2, lambda s: len(s) >= 9)  # later spans have arrived
    assert [s for s in traced["rec"].spans() if s["traceId"] == tid] == []
    assert audit_record(traced, r.headers["x-amzn-RequestId"])["trace_id"] == tid
