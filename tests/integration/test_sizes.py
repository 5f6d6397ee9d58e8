"""Records larger than Kafka takes: 413 at the gateway, 502 + DLQ at the worker, never a wedge.

Real gateway, real worker, real Kafka. The topics here are created the way an operator's tool
would without saying otherwise, so they have the broker's own max.message.bytes (1 MB), below
Sluice's record limit (16 MiB): Kafka refuses a 2 MB reply or request for good. A plugin that
answers 70 MB is over Sluice's own limit, whatever the topics say. In every case the client
gets a final answer at once, and the worker's commit point moves past the record.
"""
import http.server
import json
import threading
import time

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess, dlq_records, headers_of

RECORD_LIMIT = 16 << 20
ENVELOPE_LIMIT = RECORD_LIMIT - (64 << 10)


class TwoMegabytes(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        out = b"y" * 2_000_000
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sizes")
    prefix = new_prefix()
    # One requests partition: every request below shares it, so a wedge would show.
    create_topics(kafka_bootstrap, prefix, requests_partitions=1)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), TwoMegabytes)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    plugins = build_dir / "services" / "worker"
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "GET", "path": "/up/{proxy+}", "api_key_required": True, "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"},
        {"method": "GET", "path": "/big", "api_key_required": True, "handler": "plugin",
         "plugin": str(plugins / "plugin-big.so")},
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"},
    ]}))
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    # The default ACL blocks bodies over 8 KiB (SizeRestrictions_BODY): an open one here.
    acl = tmp / "acl.json"
    acl.write_text(json.dumps({"Name": "open", "DefaultAction": {"Allow": {}}, "Rules": []}))
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_CHILD_MEMORY_MB=2048, SLUICE_RETRY_BACKOFF_MS=50).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file, SLUICE_REQUEST_TIMEOUT_MS=20000,
                 SLUICE_MAX_BODY_BYTES="20MiB", SLUICE_WAF_ACL_FILE=str(acl)).start()
    yield {"gw": gw, "worker": worker, "key": value, "prefix": prefix,
           "bootstrap": kafka_bootstrap}
    gcode, wcode = gw.stop(), worker.stop()
    upstream.shutdown()
    assert gcode == 0, gw.log_text()[-3000:]
    assert wcode == 0, worker.log_text()[-3000:]


def call(st, method, path, **kw):
    headers = dict(kw.pop("headers", {}), **{"X-API-Key": st["key"]})
    return requests.request(method, st["gw"].url + path, headers=headers, timeout=60, **kw)


def committed_is_end(st, settle_s=20):
    """True once the worker group's commit point on requests/0 is the partition's end."""
    c = Consumer({"bootstrap.servers": st["bootstrap"], "group.id": st["prefix"] + "worker",
                  "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + settle_s
        while time.monotonic() < deadline:
            tp = TopicPartition(st["prefix"] + "requests", 0)
            _, high = c.get_watermark_offsets(tp, timeout=5)
            committed = c.committed([tp], timeout=5)[0].offset
            if committed == high:
                return True
            time.sleep(0.5)
        return False
    finally:
        c.close()


def assert_dead_lettered(st, r, reply_at_least):
    assert r.status_code == 502, r.text[:300]
    assert r.json() == {"message": "Internal server error"}
    rid = r.headers["x-amzn-RequestId"]
    recs = [m for m in dlq_records(st, lambda out: any(m.key() == rid.encode() for m in out))
            if m.key() == rid.encode()]
    assert len(recs) == 1
    h = headers_of(recs[0])
    assert h["sluice-dlq-reason"] == b"invalid_reply"
    assert h["sluice-attempts"] == b"1"  # the same handler would answer the same: no retry
    assert int(h["sluice-dlq-reply-dropped-bytes"]) >= reply_at_least
    assert "sluice-dlq-value-dropped-bytes" not in h  # the request itself fits
    assert recs[0].value()  # the original request envelope, kept
    return h


def assert_partition_moves_on(st):
    ok = call(st, "GET", "/after")
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"]["path"] == "/after"
    assert committed_is_end(st), "the worker's commit point is stuck behind a record"


def test_a_reply_the_topic_refuses_is_a_502_and_a_dlq_record(stack):
    w = stack["worker"]
    dropped_before = w.metric("sluice_worker_records_dropped_total")
    r = call(stack, "GET", "/up/two-mb")
    h = assert_dead_lettered(stack, r, 2_000_000)
    assert b"refused by Kafka" in h["sluice-dlq-error"]
    assert w.metric('sluice_worker_dlq_records_total{reason="invalid_reply"}') >= 1
    # The 502 and the DLQ record were written: nothing was dropped.
    assert w.metric("sluice_worker_records_dropped_total") == dropped_before
    assert_partition_moves_on(stack)


def test_a_reply_over_the_record_limit_is_a_502_and_a_dlq_record(stack):
    r = call(stack, "GET", "/big", params={"mb": "70"})
    h = assert_dead_lettered(stack, r, 70_000_000)
    assert f"over the {ENVELOPE_LIMIT}-byte record limit".encode() in h["sluice-dlq-error"]
    assert_partition_moves_on(stack)


def test_a_body_whose_envelope_is_over_the_record_limit_is_413(stack):
    gw = stack["gw"]
    r = call(stack, "POST", "/echo", data=b"z" * (ENVELOPE_LIMIT + 1))
    assert r.status_code == 413, r.text[:300]
    assert r.json() == {"message": "Request Too Long"}
    assert "Retry-After" not in r.headers
    assert gw.metric("sluice_gateway_kafka_unavailable_total") == 0
    assert_partition_moves_on(stack)


def test_a_body_the_topic_refuses_is_413_not_503(stack):
    r = call(stack, "POST", "/echo", data=b"z" * 2_000_000)
    assert r.status_code == 413, r.text[:300]
    assert r.json() == {"message": "Request Too Long"}
    assert "Retry-After" not in r.headers
    assert_partition_moves_on(stack)


def test_topics_sluice_creates_take_a_2mb_reply(build_dir, kafka_bootstrap, tmp_path):
    """With the catalog's topics (max.message.bytes = the record limit) a 2 MB reply fits."""
    prefix = new_prefix()
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "GET", "path": "/big", "api_key_required": True, "handler": "plugin",
         "plugin": str(build_dir / "services" / "worker" / "plugin-big.so")}]}))
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file, SLUICE_AUTO_CREATE_TOPICS="true").start()
    worker = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                           SLUICE_AUTO_CREATE_TOPICS="true").start()
    try:
        r = requests.get(gw.url + "/big", params={"mb": "2"}, headers={"X-API-Key": value},
                         timeout=60)
        assert r.status_code == 200, r.text[:300]
        assert r.content == b"x" * 2_000_000
    finally:
        gcode, wcode = gw.stop(), worker.stop()
    assert gcode == 0 and wcode == 0
