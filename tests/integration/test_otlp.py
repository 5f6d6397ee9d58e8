"""The OTLP exporter against a real OTLP/HTTP receiver: what a collector receives, and what
happens to the sender while the collector is gone.

The receiver is an HTTP server in this file that accepts POST /v1/traces with an OTLP/JSON
ExportTraceServiceRequest (the encoding libsluice_otlp sends) and keeps every span it decodes.
tests/support/otlp_emit drives the real library.
"""
import http.server
import json
import os
import subprocess
import threading
import time

import pytest

from harness import free_port


class Receiver:
    """An OTLP/HTTP JSON trace receiver on 127.0.0.1:<port> that can be stopped and restarted
    on the same port."""

    def __init__(self, port):
        self.port = port
        self.requests = []  # (content type, decoded body) per POST
        self.answers = []  # (status, headers) for the next POSTs, else 200
        self.times = []  # monotonic time of every POST
        self.lock = threading.Lock()
        self.server = None

    def start(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.times.append(time.monotonic())
                    status, headers = receiver.answers.pop(0) if receiver.answers else (200, {})
                    if self.path != "/v1/traces":
                        status, headers = 404, {}
                    if status == 200:
                        receiver.requests.append((self.headers["Content-Type"], json.loads(body)))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def spans(self):
        """Every span received, each with its resource attributes as a dict."""
        out = []
        with self.lock:
            for _, req in self.requests:
                for rs in req["resourceSpans"]:
                    res = {a["key"]: a["value"]["stringValue"] for a in rs["resource"]["attributes"]}
                    for ss in rs["scopeSpans"]:
                        for s in ss["spans"]:
                            out.append(dict(s, resource=res, scope=ss["scope"]["name"]))
        return out


@pytest.fixture
def receiver():
    r = Receiver(free_port())
    r.start()
    yield r
    try:
        r.stop()
    except Exception:
        pass


def emit_env(receiver, **extra):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("OTEL_") or k == "SLUICE_OTLP_ENDPOINT":
            del env[k]
    env["SLUICE_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.port}/"
    env.update(extra)
    return env


def attrs(obj):
    out = {}
    for a in obj.get("attributes", []):
        (kind, value), = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


def test_receiver_sees_the_exact_span_tree(build_dir, receiver):
    exe = build_dir / "tests" / "otlp_emit"
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    env = emit_env(receiver, OTEL_SERVICE_NAME="sluice-gateway",
                   OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,team=edge%2Cplatform",
                   OTEL_BSP_SCHEDULE_DELAY="100")
    out = subprocess.run([str(exe), "tree", parent], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    ids = json.loads(out)
    assert ids["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ids["flags"] == 1

    assert {ct for ct, _ in receiver.requests} == {"application/json"}
    spans = receiver.spans()
    assert len(spans) == 8
    by_id = {s["spanId"]: s for s in spans}
    name_of = {v: k for k, v in ids.items() if k not in ("trace_id", "flags")}
    assert set(by_id) == set(name_of)
    for s in spans:
        assert s["traceId"] == ids["trace_id"]
        assert s["resource"] == {"service.name": "sluice-gateway",
                                 "deployment.environment": "test", "team": "edge,platform",
                                 "telemetry.sdk.name": "sluice", "telemetry.sdk.language": "c"}
        assert s["scope"] == "sluice"
        assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 1.6e18
        assert s["flags"] == 1

    # The tree: every parent, name and kind.
    parents = {name_of[s["spanId"]]: name_of.get(s.get("parentSpanId")) for s in spans}
    assert parents == {"server": None, "waf": "server", "publish": "server", "wait": "server",
                       "consumer": "publish", "attempt1": "consumer", "attempt2": "consumer",
                       "reply": "consumer"}
    # The server span's parent is the caller's span from the traceparent.
    assert by_id[ids["server"]]["parentSpanId"] == "00f067aa0ba902b7"
    kinds = {name_of[s["spanId"]]: (s["name"], s["kind"]) for s in spans}
    assert kinds == {"server": ("POST /items/{id}", 2), "waf": ("waf", 1),
                     "publish": ("sluice.requests publish", 4), "wait": ("wait reply", 1),
                     "consumer": ("sluice.requests process", 5),
                     "attempt1": ("handler echo", 1), "attempt2": ("handler echo", 1),
                     "reply": ("sluice.replies publish", 4)}

    server = by_id[ids["server"]]
    assert attrs(server) == {"http.request.method": "POST", "url.path": "/items/42",
                             "http.route": "/items/{id}", "http.response.status_code": 200,
                             "sluice.ratio": 0.5, "sluice.cached": False}
    assert attrs(by_id[ids["publish"]]) == {
        "messaging.system": "kafka", "messaging.destination.name": "sluice.requests",
        "messaging.kafka.partition": 3, "messaging.kafka.offset": 1234}
    assert "status" not in server

    consumer = by_id[ids["consumer"]]
    assert consumer["links"] == [{"traceId": ids["trace_id"], "spanId": ids["publish"],
                                  "flags": 1}]

    failed = by_id[ids["attempt1"]]
    assert failed["status"] == {"code": 2, "message": "handler crashed"}
    assert attrs(failed) == {"sluice.attempt": 1}
    [event] = failed["events"]
    assert event["name"] == "exception"
    assert attrs(event) == {"exception.type": "SIGSEGV", "exception.message": "handler crashed"}
    assert int(failed["startTimeUnixNano"]) <= int(event["timeUnixNano"]) <= \
        int(failed["endTimeUnixNano"])
    assert by_id[ids["attempt2"]]["status"] == {"code": 1}


def test_unsampled_trace_sends_nothing(build_dir, receiver):
    exe = build_dir / "tests" / "otlp_emit"
    env = emit_env(receiver, OTEL_BSP_SCHEDULE_DELAY="100")
    out = subprocess.run([str(exe), "tree", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out)["flags"] == 0
    assert receiver.spans() == []


def test_retry_after_is_honoured_and_a_refused_batch_is_not_retried(build_dir, receiver):
    exe = build_dir / "tests" / "otlp_emit"
    env = emit_env(receiver, OTEL_BSP_SCHEDULE_DELAY="100")
    receiver.answers = [(503, {"Retry-After": "1"})]
    subprocess.run([str(exe), "tree"], env=env, capture_output=True, text=True, timeout=60,
                   check=True)
    assert len(receiver.spans()) == 8
    assert len(receiver.times) == 2
    assert receiver.times[1] - receiver.times[0] >= 0.95

    # 400 will not get better: the batch is counted as failed and not sent again.
    receiver.requests.clear()
    receiver.times.clear()
    receiver.answers = [(400, {})]
    subprocess.run([str(exe), "tree"], env=env, capture_output=True, text=True, timeout=60,
                   check=True)
    assert receiver.spans() == []
    assert len(receiver.times) == 1


def run_stream(exe, env, seconds, rate):
    """Starts otlp_emit stream; returns the process and a list the stats lines land in."""
    proc = subprocess.Popen([str(exe), "stream", str(seconds), str(rate)], env=env,
                            stdout=subprocess.PIPE, text=True)
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(json.loads(line))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    return proc, lines, t


def wait_for(pred, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_collector_outage_drops_without_blocking_and_export_resumes(build_dir, receiver):
    exe = build_dir / "tests" / "otlp_emit"
    env = emit_env(receiver, OTEL_BSP_SCHEDULE_DELAY="100", OTEL_BSP_MAX_QUEUE_SIZE="256",
                   OTEL_BSP_MAX_EXPORT_BATCH_SIZE="64", OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="1000",
                   OTEL_BSP_EXPORT_TIMEOUT="20000")
    proc, lines, reader = run_stream(exe, env, 9, 1000)
    try:
        assert wait_for(lambda: lines and lines[-1]["exported"] >= 500, 15), lines[-1:]
        assert lines[-1]["dropped"] == 0

        receiver.stop()
        at_stop = lines[-1]
        # While the collector is down the queue fills and new spans are dropped and counted.
        assert wait_for(lambda: lines[-1]["dropped"] >= 500, 10), lines[-1]
        time.sleep(1.0)
        down = lines[-1]
        # The sender kept its pace: about 1,000 spans a second were emitted through the outage.
        assert down["emitted"] - at_stop["emitted"] >= 1000
        assert down["queued"] <= 256

        receiver.start()
        assert wait_for(lambda: lines[-1]["exported"] > down["exported"] + 1000, 10), lines[-1]
    finally:
        proc.wait(timeout=60)
        reader.join(timeout=10)
    assert proc.returncode == 0
    final = lines[-1]
    assert final["queued"] == 0
    assert final["exported"] + final["failed"] + final["dropped"] == final["emitted"]
    # Ending a span never waited on the network. The bound is below the 1 s POST timeout but
    # generous: on a loaded host the emitting thread can be descheduled for tens of ms.
    assert final["max_end_ns"] < 250_000_000, final
    # The receiver got exactly the spans counted as exported, each once.
    ids = [s["spanId"] for s in receiver.spans()]
    assert len(ids) == len(set(ids)) == final["exported"]
