"""sluice-worker against the real stack with the real gateway: the echo handler, plugins,
failures and the DLQ (issue 4)."""
import datetime
import http.server
import json
import os
import re
import threading
import time

import msgpack
import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from harness import (Gateway, Service, consume_all, create_topics, free_port, new_key, new_prefix,
                     write_keys_file)

TIMEOUT_MS = 8000


class WorkerProcess(Service):
    """The real sluice-worker binary with its own group, instance id and admin port."""

    def __init__(self, build_dir, tmp_path, bootstrap, prefix, routes_file, name="w0", **settings):
        self.admin_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({
            "SLUICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SLUICE_TOPIC_PREFIX": prefix,
            "SLUICE_ROUTES_FILE": str(routes_file),
            "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "SLUICE_WORKER_GROUP": prefix + "worker",
            "SLUICE_WORKER_INSTANCE_ID": f"{prefix}{name}",
            "SLUICE_WORKER_CONCURRENCY": "2",
            "SLUICE_LOG_LEVEL": "debug",
            "SLUICE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "ASAN_OPTIONS": "detect_leaks=1:allocator_may_return_null=1",
        })
        env.update({k: str(v) for k, v in settings.items() if v is not None})
        for k in [k for k, v in settings.items() if v is None]:
            env.pop(k, None)  # None: leave the setting at the binary's default
        super().__init__(build_dir / "services" / "worker" / "sluice-worker", env,
                         tmp_path / f"worker-{name}-{self.admin_port}.log")
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout=60):
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.admin + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log_text()}")

    def metric(self, name_and_labels):
        for line in requests.get(self.admin + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


class Upstream(http.server.BaseHTTPRequestHandler):
    """The http handler's upstream: answers what it received as JSON."""
    seen = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path.startswith("/base/up/slow"):
            time.sleep(3)
        if self.path.startswith("/base/nap/"):
            time.sleep(0.1)
        Upstream.seen.append({"method": self.command, "path": self.path,
                              "headers": dict(self.headers), "body": body})
        out = json.dumps({"method": self.command, "path": self.path,
                          "body": body.decode(errors="replace")}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "yes")
        if self.path.startswith("/base/up/cookies"):
            for cookie in ("a=1; Path=/", "b=2; HttpOnly", "c=3"):
                self.send_header("Set-Cookie", cookie)
            self.send_header("Vary", "Accept")
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stack(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    plugins = build_dir / "services" / "worker"
    routes = {"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"},
        {"method": "GET", "path": "/hello/{name}", "api_key_required": True, "handler": "plugin",
         "plugin": str(plugins / "plugin-hello.so")},
    ] + [{"method": "ANY", "path": f"/fail/{p}", "api_key_required": True, "handler": "plugin",
          "plugin": str(plugins / f"plugin-{p}.so")} for p in ("segfault", "loop", "alloc", "garbage")]}
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    routes["routes"].append({"method": "ANY", "path": "/up/{proxy+}", "api_key_required": True,
                             "handler": "http",
                             "upstream": f"http://127.0.0.1:{upstream.server_port}/base"})
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps(routes))
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_HANDLER_TIMEOUT_MS=1500,
                           SLUICE_CHILD_MEMORY_MB=128, SLUICE_RETRY_BACKOFF_MS=50).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file, SLUICE_REQUEST_TIMEOUT_MS=TIMEOUT_MS,
                 SLUICE_STAGE="test-stage").start()
    yield {"gw": gw, "worker": worker, "key": value, "key_id": kid, "prefix": prefix,
           "bootstrap": kafka_bootstrap}
    gcode = gw.stop()
    wcode = worker.stop()
    upstream.shutdown()
    assert gcode == 0, gw.log_text()[-3000:]
    assert wcode == 0, worker.log_text()[-5000:]
    # The segfault plugin's SEGV is reported by AddressSanitizer in its child; nothing else may be.
    log = worker.log_text()
    assert "LeakSanitizer" not in log
    assert not re.search(r"ERROR: AddressSanitizer: (?!SEGV on unknown address 0x000000000000)", log)


def call(st, method, path, **kw):
    headers = dict(kw.pop("headers", {}), **{"X-API-Key": st["key"]})
    return requests.request(method, st["gw"].url + path, headers=headers, timeout=30, **kw)


def check_common(body, r, before):
    assert body["success"] is True
    assert body["stage"] == "test-stage"
    assert body["request_id"] == r.headers["x-amzn-RequestId"]
    ts = datetime.datetime.fromisoformat(body["timestamp"])
    assert ts.tzinfo is None
    assert before - datetime.timedelta(seconds=5) <= ts <= datetime.datetime.utcnow() + datetime.timedelta(seconds=1)
    assert r.headers["Content-Type"] == "application/json"


def test_echo_get_with_query_string_answers_the_seeds_body(stack):
    before = datetime.datetime.utcnow()
    r = call(stack, "GET", "/items/42?a=1&b=two&a=3&empty=")
    assert r.status_code == 200, r.text
    body = r.json()
    check_common(body, r, before)
    assert list(body) == ["success", "data", "timestamp", "stage", "request_id"]
    assert body["data"] == {"message": "GET request processed successfully", "path": "/items/42",
                            "query_parameters": {"a": "3", "b": "two", "empty": ""},
                            "method": "GET"}
    assert list(body["data"]) == ["message", "path", "query_parameters", "method"]
    # json.dumps separators, exactly as the seed's Lambda writes them.
    assert r.text.startswith('{"success": true, "data": {"message": "GET request processed successfully", ')


def test_echo_get_without_query_has_an_empty_map(stack):
    r = call(stack, "GET", "/plain")
    assert r.status_code == 200
    assert r.json()["data"]["query_parameters"] == {}
    assert r.json()["data"]["path"] == "/plain"


def test_echo_post_json_body_is_parsed(stack):
    before = datetime.datetime.utcnow()
    doc = {"name": "widget", "n": 3, "tags": ["a", "é"], "nested": {"ok": True, "x": None}}
    r = call(stack, "POST", "/orders", data=json.dumps(doc),
             headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    check_common(body, r, before)
    assert body["data"] == {"message": "POST request processed successfully", "path": "/orders",
                            "received_data": doc, "method": "POST"}
    assert list(body["data"]) == ["message", "path", "received_data", "method"]
    assert '"received_data": {"name": "widget", "n": 3, "tags": ["a", "\\u00e9"]' in r.text


def test_echo_post_non_json_body_is_echoed_as_a_string(stack):
    r = call(stack, "POST", "/raw", data=b"plain text, not {json")
    assert r.status_code == 200
    assert r.json()["data"]["received_data"] == "plain text, not {json"


def test_echo_post_without_body_has_null_received_data(stack):
    r = call(stack, "POST", "/empty")
    assert r.status_code == 200
    assert r.json()["data"]["received_data"] is None


def test_echo_put_parses_the_body(stack):
    r = call(stack, "PUT", "/items/7", data=b"[1, 2.5, \"x\"]")
    assert r.status_code == 200
    assert r.json()["data"] == {"message": "PUT request processed successfully", "path": "/items/7",
                                "received_data": [1, 2.5, "x"], "method": "PUT"}


def test_echo_delete_has_only_message_path_method(stack):
    r = call(stack, "DELETE", "/items/7?ignored=1", data=b"{}")
    assert r.status_code == 200
    assert r.json()["data"] == {"message": "DELETE request processed successfully",
                                "path": "/items/7", "method": "DELETE"}


def test_echo_patch_is_405_with_the_seeds_error(stack):
    r = call(stack, "PATCH", "/items/7", data=b"{}")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, POST, PUT, DELETE"
    body = r.json()
    assert body["success"] is False
    assert body["data"] == {"error": "Method PATCH not supported",
                            "supported_methods": ["GET", "POST", "PUT", "DELETE"]}
    assert body["stage"] == "test-stage"


def route_labels(admin_url, metric):
    text = requests.get(admin_url + "/metrics", timeout=5).text
    return set(re.findall(r'^' + metric + r'\{route="([^"]*)"', text, re.M))


def test_the_gateway_and_the_worker_label_a_route_alike(stack):
    """One route, one label (`METHOD /pattern`) in both services' series, so they join."""
    assert call(stack, "GET", "/hello/labels").status_code == 200
    assert call(stack, "GET", "/up/labels").status_code == 201
    gw = route_labels(stack["gw"].admin, "sluice_gateway_requests_total")
    wk = route_labels(stack["worker"].admin, "sluice_worker_executions_total")
    assert {"GET /hello/{name}", "ANY /up/{proxy+}"} <= gw & wk, (gw, wk)
    assert gw - {"none"} <= wk, (gw, wk)


def test_hello_plugin_answers_with_its_path_parameter(stack):
    r = call(stack, "GET", "/hello/ada")
    assert r.status_code == 200, r.text
    assert r.json()["hello"] == "ada"
    assert r.headers["X-Plugin"] == "hello"


def dlq_records(st, expect, timeout=30, topic="dlq"):
    c = Consumer({"bootstrap.servers": st["bootstrap"], "group.id": "t-" + os.urandom(4).hex(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([st["prefix"] + topic])
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not expect(out):
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append(m)
    c.close()
    return out


def headers_of(m):
    return {k: v for k, v in (m.headers() or [])}


@pytest.mark.parametrize("plugin,reason,status", [
    ("segfault", "crash", 502), ("loop", "timeout", 502), ("alloc", "crash", 502),
    ("garbage", "invalid_reply", 502)])
def test_failing_plugin_gives_502_and_a_dlq_record(stack, plugin, reason, status):
    w = stack["worker"]
    before = w.metric(f'sluice_worker_dlq_records_total{{reason="{reason}"}}')
    restarts_before = w.metric("sluice_worker_child_restarts_total")
    r = call(stack, "POST", f"/fail/{plugin}", data=b"payload")
    assert r.status_code == status, r.text
    assert r.json() == {"message": "Internal server error"}
    rid = r.headers["x-amzn-RequestId"]
    recs = dlq_records(stack, lambda out: any(m.key() == rid.encode() for m in out))
    rec = [m for m in recs if m.key() == rid.encode()]
    assert len(rec) == 1
    h = headers_of(rec[0])
    assert h["sluice-dlq-reason"] == reason.encode()
    assert h["sluice-attempts"] == b"3"
    assert h["sluice-worker"] == (stack["prefix"] + "w0").encode()
    assert int(h["sluice-first-failure-ms"]) > 0
    assert h["sluice-dlq-error"] and h["kafka_dlt-exception-message"] == h["sluice-dlq-error"]
    assert h["kafka_dlt-original-topic"] == (stack["prefix"] + "requests").encode()
    # The original record's place and time, as big-endian integers, exactly.
    orig = [m for m in dlq_records(stack, lambda out: any(m.key() == rid.encode() for m in out),
                                   topic="requests") if m.key() == rid.encode()]
    assert len(orig) == 1
    assert h["kafka_dlt-original-partition"] == orig[0].partition().to_bytes(4, "big")
    assert h["kafka_dlt-original-offset"] == orig[0].offset().to_bytes(8, "big")
    assert h["kafka_dlt-original-timestamp"] == orig[0].timestamp()[1].to_bytes(8, "big")
    assert h["sluice-id"] == rid.encode()  # the original record's headers are kept
    env = msgpack.unpackb(rec[0].value(), raw=False)  # the original value, unchanged
    assert env["id"] == rid and env["path"] == f"/fail/{plugin}" and env["body"] == b"payload"
    assert w.metric(f'sluice_worker_dlq_records_total{{reason="{reason}"}}') == before + 1
    assert w.metric(f'sluice_worker_executions_total{{route="ANY /fail/{plugin}",outcome="{reason}"}}') >= 3
    # The worker carries on.
    ok = call(stack, "GET", "/still-alive")
    assert ok.status_code == 200 and ok.json()["data"]["path"] == "/still-alive"
    # A child that crashed or overran is replaced after each of the three attempts; one that
    # answered garbage is still alive and is kept.
    assert w.metric("sluice_worker_child_restarts_total") - restarts_before == \
        (3 if reason != "invalid_reply" else 0)


def test_every_worker_log_line_about_a_request_carries_its_trace_id(stack):
    tid = os.urandom(16).hex()
    r = call(stack, "POST", "/fail/segfault", data=b"x",
             headers={"traceparent": f"00-{tid}-{os.urandom(8).hex()}-01"})
    assert r.status_code == 502
    rid = r.headers["x-amzn-RequestId"]
    deadline = time.monotonic() + 10
    lines = []
    while time.monotonic() < deadline and not any("to the DLQ" in x.get("msg", "") for x in lines):
        lines = []
        for raw in stack["worker"].log_text().splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue  # AddressSanitizer's report of the crashing child
            if rec.get("request_id") == rid:
                lines.append(rec)
        time.sleep(0.2)
    # Three failed attempts and the dead letter, each naming the request and its trace.
    assert len(lines) >= 4, lines
    assert {x.get("trace_id") for x in lines} == {tid}


def test_a_dlq_record_kafka_refuses_for_good_is_dropped_and_the_offset_moves_on(
        build_dir, kafka_bootstrap, tmp_path):
    """A DLQ topic too small for any record refuses every DLQ produce with MSG_SIZE_TOO_LARGE,
    which producing again cannot fix: the record is produced once with its value, once without,
    then logged and counted as dropped (never as written), and the commit point moves past it
    instead of holding the partition forever."""
    prefix = new_prefix()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([
            NewTopic(prefix + "requests", 1, 1), NewTopic(prefix + "replies", 1, 1),
            NewTopic(prefix + "audit", 1, 1),
            NewTopic(prefix + "dlq", 1, 1, config={"max.message.bytes": "64"})]).values():
        f.result(timeout=30)
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    w = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                      SLUICE_SHUTDOWN_GRACE_MS=500).start()
    try:
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        p.produce(prefix + "requests", key=b"k", value=b"\xc1\xc1 not an envelope " + b"x" * 100)
        p.flush(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and w.metric("sluice_worker_records_dropped_total") < 1:
            time.sleep(0.2)
        assert w.metric("sluice_worker_records_dropped_total") == 1, w.log_text()[-3000:]
        time.sleep(2.5)  # room for re-produces, one a second, if there were any
        assert w.metric("sluice_worker_produce_errors_total") == 2
        assert w.metric('sluice_worker_dlq_records_total{reason="decode_error"}') == 0
        assert "DLQ record refused by Kafka: Broker: Message size too large; producing it " \
            "without its value" in w.log_text()
        c = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": prefix + "worker",
                      "enable.auto.commit": False})
        try:
            committed, deadline = None, time.monotonic() + 20
            while committed != 1 and time.monotonic() < deadline:
                committed = c.committed([TopicPartition(prefix + "requests", 0)],
                                        timeout=5)[0].offset
                time.sleep(0.5)
            assert committed == 1
        finally:
            c.close()
    finally:
        w.stop()


def test_a_dlq_record_produced_again_is_counted_once(build_dir, kafka_bootstrap, tmp_path):
    """A DLQ topic that takes a record without its 20 kB value but not with it: the DLQ record
    is produced twice (refused, then written without the value) and counted once, when written."""
    prefix = new_prefix()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for f in admin.create_topics([
            NewTopic(prefix + "requests", 1, 1), NewTopic(prefix + "replies", 1, 1),
            NewTopic(prefix + "audit", 1, 1),
            NewTopic(prefix + "dlq", 1, 1, config={"max.message.bytes": "4096"})]).values():
        f.result(timeout=30)
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    w = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                      SLUICE_SHUTDOWN_GRACE_MS=500).start()
    try:
        p = Producer({"bootstrap.servers": kafka_bootstrap})
        value = b"\xc1 not an envelope " + b"x" * 20000
        p.produce(prefix + "requests", key=b"twice", value=value)
        p.flush(10)
        recs = dlq_records({"bootstrap": kafka_bootstrap, "prefix": prefix},
                           lambda out: any(m.key() == b"twice" for m in out))
        assert [m.key() for m in recs] == [b"twice"], w.log_text()[-3000:]
        assert recs[0].value() is None
        assert headers_of(recs[0])["sluice-dlq-value-dropped-bytes"] == str(len(value)).encode()
        time.sleep(1.5)  # room for a re-produce, were there one
        assert w.metric('sluice_worker_dlq_records_total{reason="decode_error"}') == 1
        assert w.metric("sluice_worker_produce_errors_total") == 1
        assert w.metric("sluice_worker_records_dropped_total") == 0
    finally:
        assert w.stop() == 0, w.log_text()[-3000:]


def test_garbage_record_goes_to_dlq_as_decode_error_and_the_next_request_is_served(stack):
    p = Producer({"bootstrap.servers": stack["bootstrap"]})
    p.produce(stack["prefix"] + "requests", key=b"garbage-key", value=b"\xc1\xc1 not an envelope",
              headers=[("x-origin", b"test")])
    p.flush(10)
    recs = dlq_records(stack, lambda out: any(m.key() == b"garbage-key" for m in out))
    rec = [m for m in recs if m.key() == b"garbage-key"]
    assert len(rec) == 1
    assert rec[0].value() == b"\xc1\xc1 not an envelope"
    h = headers_of(rec[0])
    assert h["sluice-dlq-reason"] == b"decode_error"
    assert h["sluice-attempts"] == b"0"  # final at once: nothing ran
    assert h["x-origin"] == b"test"
    # The original record's place and time, exactly; the error says what did not decode.
    orig = [m for m in dlq_records(stack, lambda out: any(m.key() == b"garbage-key" for m in out),
                                   topic="requests") if m.key() == b"garbage-key"]
    assert len(orig) == 1
    assert h["kafka_dlt-original-topic"] == (stack["prefix"] + "requests").encode()
    assert h["kafka_dlt-original-partition"] == orig[0].partition().to_bytes(4, "big")
    assert h["kafka_dlt-original-offset"] == orig[0].offset().to_bytes(8, "big")
    assert h["kafka_dlt-original-timestamp"] == orig[0].timestamp()[1].to_bytes(8, "big")
    assert h["sluice-worker"] == (stack["prefix"] + "w0").encode()
    assert h["sluice-dlq-error"] == h["kafka_dlt-exception-message"]
    assert h["sluice-dlq-error"] == b"envelope: not one complete msgpack value"
    r = call(stack, "GET", "/after-garbage")
    assert r.status_code == 200
    assert stack["worker"].metric('sluice_worker_dlq_records_total{reason="decode_error"}') >= 1


def test_garbage_record_with_a_reply_address_gets_a_502_reply_at_once(stack):
    # The gateway's Kafka headers carry the reply address even when the value does not decode.
    # Partition 3: the gateway reads partition 0 only, so this reply stays for the test to read.
    rid = "garbage-" + os.urandom(4).hex()
    now = int(time.time() * 1000)
    p = Producer({"bootstrap.servers": stack["bootstrap"]})
    p.produce(stack["prefix"] + "requests", key=rid.encode(), value=b"\xc1 not an envelope",
              headers=[("sluice-id", rid.encode()), ("sluice-reply-partition", b"3"),
                       ("sluice-deadline-ms", str(now + 30000).encode())])
    p.flush(10)
    c = Consumer({"bootstrap.servers": stack["bootstrap"], "group.id": "t-" + os.urandom(4).hex(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(stack["prefix"] + "replies", 3, 0)])
    reply, deadline = None, time.monotonic() + 20
    while reply is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error() and m.key() == rid.encode():
            reply = m
    c.close()
    assert reply is not None, "no reply for the undecodable record"
    assert headers_of(reply)["sluice-id"] == rid.encode()
    env = msgpack.unpackb(reply.value(), raw=False)
    assert env["id"] == rid and env["status"] == 502
    assert env["error"]["class"] == "decode_error"
    recs = dlq_records(stack, lambda out: any(m.key() == rid.encode() for m in out))
    assert [headers_of(m)["sluice-dlq-reason"] for m in recs if m.key() == rid.encode()] == [
        b"decode_error"]


def test_the_gateway_publishes_exactly_what_the_worker_decodes(stack):
    # requests adds Host, User-Agent, Accept-Encoding, Accept and Connection; the key is dropped.
    filler = {f"X-H-{i}": "v" for i in range(495)}
    r = call(stack, "GET", "/fields", headers=filler)
    assert r.status_code == 200, r.text  # 500 header values: the worker decodes it
    t0 = time.monotonic()
    r = call(stack, "GET", "/fields", headers=dict(filler, **{"X-H-495": "v"}))
    assert r.status_code == 400 and time.monotonic() - t0 < 1  # 501: refused at the gateway
    # Short parameters: the web ACL refuses query strings over 2,048 bytes first.
    r = call(stack, "GET", "/fields?" + "&".join("q" for _ in range(500)))
    assert r.status_code == 200, r.text
    r = call(stack, "GET", "/fields?" + "&".join("q" for _ in range(501)))
    assert r.status_code == 400


def test_expired_request_is_not_executed_and_goes_to_dlq(stack):
    ok_before = stack["worker"].metric(
        'sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}')
    env = {"v": 1, "id": "expired-1", "method": "GET", "path": "/x", "resource": "/{proxy+}",
           "headers": {}, "query": {}, "path_params": {}, "body": b"", "source_ip": "1.2.3.4",
           "user_agent": "t", "api_key_id": None, "stage": "s", "received_ms": 1,
           "deadline_ms": 2, "trace": "", "reply_partition": 0, "attempt": 1, "replay_count": 0}
    p = Producer({"bootstrap.servers": stack["bootstrap"]})
    p.produce(stack["prefix"] + "requests", key=b"expired-1",
              value=msgpack.packb(env, use_bin_type=True))
    p.flush(10)
    recs = dlq_records(stack, lambda out: any(m.key() == b"expired-1" for m in out))
    rec = [m for m in recs if m.key() == b"expired-1"]
    assert len(rec) == 1
    assert headers_of(rec[0])["sluice-dlq-reason"] == b"expired"
    assert headers_of(rec[0])["sluice-attempts"] == b"0"
    assert replies_for(stack, "expired-1") == []  # nobody waits for it: no reply is sent
    assert stack["worker"].metric(
        'sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}') == ok_before
    answered = call(stack, "GET", "/answered").headers["x-amzn-RequestId"]
    assert len(replies_for(stack, answered)) == 1  # what a reply looks like is found


def replies_for(st, rid):
    """Every record on the replies topic for request `rid` (by key or by envelope id)."""
    out = []
    for m in consume_all(st["bootstrap"], st["prefix"] + "replies"):
        try:
            env_id = msgpack.unpackb(m.value(), raw=False).get("id")
        except Exception:
            env_id = None
        if m.key() == rid.encode() or env_id == rid:
            out.append(m)
    return out


def test_admin_endpoints(stack):
    w = stack["worker"]
    assert requests.get(w.admin + "/healthz", timeout=5).status_code == 200
    assert requests.get(w.admin + "/readyz", timeout=5).status_code == 200
    text = requests.get(w.admin + "/metrics", timeout=5).text
    assert 'sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}' in text
    assert "sluice_worker_handler_duration_seconds_bucket" in text


def test_http_handler_forwards_to_the_upstream_and_maps_its_answer(stack):
    Upstream.seen.clear()
    r = call(stack, "POST", "/up/orders/9?q=a%20b&q=2", data=b"hello upstream",
             headers={"X-Custom": "v1", "Connection": "keep-alive"})
    assert r.status_code == 201, r.text
    assert r.headers["X-Upstream"] == "yes"
    assert r.json() == {"method": "POST", "path": "/base/up/orders/9?q=a%20b&q=2",
                        "body": "hello upstream"}
    seen = Upstream.seen[-1]
    assert seen["headers"]["X-Custom"] == "v1"
    assert seen["headers"]["X-Amzn-RequestId"] == r.headers["x-amzn-RequestId"]
    assert "traceparent" in {k.lower() for k in seen["headers"]}


def test_http_handler_sets_forwarding_headers_from_the_envelope_not_the_client(stack):
    Upstream.seen.clear()
    r = call(stack, "GET", "/up/who", headers={
        "X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6;proto=https",
        "X-Forwarded-Proto": "https", "X-Real-IP": "6.6.6.6", "X-Sluice-Key-Id": "key_forged"})
    assert r.status_code == 201, r.text
    seen = {k.lower(): v for k, v in Upstream.seen[-1]["headers"].items()}
    # The gateway trusts no proxy here, so the client is the socket peer.
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-sluice-key-id"] == stack["key_id"]
    assert "forwarded" not in seen and "x-real-ip" not in seen


def test_http_handler_sends_its_own_span_as_the_trace_parent(stack):
    client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    parents = set()
    for _ in range(2):
        Upstream.seen.clear()
        r = call(stack, "GET", "/up/traced", headers={"traceparent": client})
        assert r.status_code == 201, r.text
        sent = [v for k, v in Upstream.seen[-1]["headers"].items() if k.lower() == "traceparent"]
        assert len(sent) == 1
        version, trace_id, parent_id, flags = sent[0].split("-")
        assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
        assert parent_id != "00f067aa0ba902b7" and parent_id != "0" * 16
        parents.add(parent_id)
    assert len(parents) == 2  # a new span for every attempt


def test_http_handler_passes_repeated_header_names_with_every_value(stack):
    r = call(stack, "GET", "/up/cookies")
    assert r.status_code == 201, r.text
    assert r.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; HttpOnly", "c=3"]
    # The upstream's two Vary values, then the gateway's own (CORS is on in this stack).
    assert r.raw.headers.getlist("Vary") == ["Accept", "Accept-Encoding", "Origin"]


def test_http_handler_get_and_delete(stack):
    r = call(stack, "GET", "/up/x")
    assert r.status_code == 201 and r.json()["method"] == "GET" and r.json()["path"] == "/base/up/x"
    r = call(stack, "DELETE", "/up/x")
    assert r.status_code == 201 and r.json()["method"] == "DELETE"


def test_http_handler_upstream_timeout_gives_502_and_dlq_timeout(stack):
    w = stack["worker"]
    before = w.metric('sluice_worker_dlq_records_total{reason="timeout"}')
    r = call(stack, "GET", "/up/slow")  # the upstream sleeps 3 s; the handler timeout is 1.5 s
    assert r.status_code == 502, r.text
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            w.metric('sluice_worker_dlq_records_total{reason="timeout"}') < before + 1:
        time.sleep(0.1)
    assert w.metric('sluice_worker_dlq_records_total{reason="timeout"}') == before + 1


def test_replayed_request_without_reply_partition_is_executed_and_counted(stack):
    w = stack["worker"]
    before = w.metric("sluice_worker_replays_total")
    ok_before = w.metric('sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}')
    now = int(time.time() * 1000)
    env = {"v": 1, "id": "replay-1", "method": "GET", "path": "/replayed", "resource": "/{proxy+}",
           "headers": {}, "query": {}, "path_params": {}, "body": b"", "source_ip": "1.2.3.4",
           "user_agent": "t", "api_key_id": None, "stage": "s", "received_ms": now,
           "deadline_ms": now + 30000, "trace": "", "reply_partition": None, "attempt": 1,
           "replay_count": 1}
    p = Producer({"bootstrap.servers": stack["bootstrap"]})
    p.produce(stack["prefix"] + "requests", key=b"replay-1", value=msgpack.packb(env, use_bin_type=True))
    p.flush(10)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and w.metric("sluice_worker_replays_total") < before + 1:
        time.sleep(0.1)
    assert w.metric("sluice_worker_replays_total") == before + 1
    assert w.metric('sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}') == \
        ok_before + 1
    assert replies_for(stack, "replay-1") == []  # a replay has no client waiting: no reply


def consumer_lag(worker):
    """sluice_worker_consumer_lag by partition, from the worker's /metrics."""
    out = {}
    for line in requests.get(worker.admin + "/metrics", timeout=5).text.splitlines():
        m = re.match(r'sluice_worker_consumer_lag\{partition="(\d+)"\} (\S+)$', line)
        if m:
            out[int(m.group(1))] = float(m.group(2))
    return out


def test_consumer_lag_rises_with_a_backlog_and_returns_to_zero(build_dir, kafka_bootstrap, tmp_path):
    """60 requests produced while no worker runs, each taking 0.1 s in the one handler process:
    the lag gauge shows the backlog, then 0 once everything is finished."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/nap/{proxy+}", "api_key_required": False, "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"}]}))
    n = 60
    now = int(time.time() * 1000)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    for i in range(n):
        env = {"v": 1, "id": f"lag-{i}", "method": "GET", "path": f"/nap/{i}", "resource": "/nap/{proxy+}",
               "headers": {}, "query": {}, "path_params": {"proxy": str(i)}, "body": b"",
               "source_ip": "1.2.3.4", "user_agent": "t", "api_key_id": None, "stage": "s",
               "received_ms": now, "deadline_ms": now + 120000, "trace": "",
               "reply_partition": None, "attempt": 1, "replay_count": 1}
        p.produce(prefix + "requests", key=f"lag-{i}".encode(), value=msgpack.packb(env, use_bin_type=True))
    p.flush(10)
    worker = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file, name="lag",
                           SLUICE_WORKER_CONCURRENCY=1).start()
    try:
        peak, samples = 0.0, []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lag = consumer_lag(worker)
            samples.append(lag)
            peak = max(peak, sum(lag.values()))
            if peak > 0 and worker.metric("sluice_worker_replays_total") >= n and \
                    lag and sum(lag.values()) == 0:
                break
            time.sleep(0.2)
        assert peak > 0, samples
        assert peak <= n, samples
        assert worker.metric("sluice_worker_replays_total") == n
        assert lag and sum(lag.values()) == 0, samples[-5:]
        assert set(lag) <= {0, 1, 2, 3}
    finally:
        code = worker.stop()
        upstream.shutdown()
    assert code == 0, worker.log_text()[-3000:]


def test_a_plugin_that_cannot_be_opened_stops_the_start_with_its_route(build_dir, kafka_bootstrap,
                                                                       tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "handler": "echo"},
        {"method": "POST", "path": "/orders", "handler": "plugin",
         "plugin": str(tmp_path / "missing-plugin.so")},
        {"method": "GET", "path": "/dir", "handler": "plugin", "plugin": str(tmp_path)}]}))
    w = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes)
    Service.start(w)  # the process only: it is expected to stop, not to become ready
    try:
        code = w.proc.wait(30)
    finally:
        if w.proc.poll() is None:
            w.proc.kill()
    log = w.log_text()
    assert code != 0, log
    assert f"routes[1].plugin (POST /orders): cannot open {tmp_path}/missing-plugin.so: " \
           "No such file or directory" in log, log
    assert f"routes[2].plugin (GET /dir): {tmp_path} is not a file" in log, log


def test_a_retry_whose_deadline_passes_while_it_waits_is_expired_without_a_reply(
        build_dir, kafka_bootstrap, tmp_path):
    """One handler process. Request A crashes it (its first attempt) and waits for its retry
    behind request B, which holds the process for 3 s at a slow upstream; A's deadline (1.5 s)
    passes meanwhile. A ends `expired` after one attempt and nothing goes to the replies topic
    for it: the gateway has answered 504 already. B's reply shows what a reply looks like."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/fail/segfault", "handler": "plugin",
         "plugin": str(build_dir / "services" / "worker" / "plugin-segfault.so")},
        {"method": "ANY", "path": "/up/{proxy+}", "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"}]}))
    worker = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                           name="late", SLUICE_WORKER_CONCURRENCY=1, SLUICE_RETRY_BACKOFF_MS=50,
                           SLUICE_HANDLER_TIMEOUT_MS=10000, SLUICE_SHUTDOWN_GRACE_MS=1000).start()
    st = {"bootstrap": kafka_bootstrap, "prefix": prefix}
    try:
        now = int(time.time() * 1000)
        base = {"v": 1, "headers": {}, "query": {}, "body": b"", "source_ip": "1.2.3.4",
                "user_agent": "t", "api_key_id": None, "stage": "s", "received_ms": now,
                "trace": "", "reply_partition": 0, "attempt": 1, "replay_count": 0}
        a = dict(base, id="late-a", method="POST", path="/fail/segfault",
                 resource="/fail/segfault", path_params={}, deadline_ms=now + 1500)
        b = dict(base, id="late-b", method="GET", path="/up/slow", resource="/up/{proxy+}",
                 path_params={"proxy": "slow"}, deadline_ms=now + 30000)
        p = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 50})
        for env in (a, b):  # one partition, A first: B is queued before A's attempt fails
            p.produce(prefix + "requests", key=env["id"].encode(), partition=0,
                      value=msgpack.packb(env, use_bin_type=True))
        p.flush(10)
        recs = dlq_records(st, lambda out: any(m.key() == b"late-a" for m in out))
        rec = [m for m in recs if m.key() == b"late-a"]
        assert len(rec) == 1, worker.log_text()[-3000:]
        h = headers_of(rec[0])
        assert h["sluice-dlq-reason"] == b"expired"
        assert h["sluice-attempts"] == b"1"
        assert h["sluice-dlq-error"].startswith(b"deadline passed before attempt 2 (attempt 1: "), h
        replies = [m for m in consume_all(kafka_bootstrap, prefix + "replies", timeout=15,
                                          expect=1)]
        assert [m.key() for m in replies] == [b"late-b"]
        assert msgpack.unpackb(replies[0].value(), raw=False)["status"] == 201
        assert replies_for(st, "late-a") == []
    finally:
        code = worker.stop()
        upstream.shutdown()
    assert code == 0, worker.log_text()[-3000:]
