"""The worker's http handler as a proxy: what passes through and what does not.

Real gateway, real worker, a Python upstream that answers as each path asks: a 5xx passes
through, a redirect is handed to the client (not followed), hop-by-hop headers stop at the
handler in both directions, and an upstream that cannot be reached is a 502 with a DLQ record.
A request the upstream received and never answered is sent again only when its method is
idempotent; a POST that never reached it (connection refused) is retried.
"""
import http.server
import json
import socket
import threading
import time

import msgpack
import pytest
import requests
from confluent_kafka import Consumer

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess

HOP_BY_HOP = ("Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization")


class Upstream(http.server.BaseHTTPRequestHandler):
    seen = []

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        Upstream.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if self.path.startswith("/base/up/status/"):
            code = int(self.path.rsplit("/", 1)[1])
            out = json.dumps({"upstream": code}).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
        elif self.path.startswith("/base/up/moved"):
            self.send_response(302)
            self.send_header("Location", "/base/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            out = b'{"ok":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Keep-Alive", "timeout=99")
            self.send_header("Upgrade", "nonsense/1")
            self.send_header("Trailer", "X-Never")
            self.send_header("X-Kept", "yes")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


class Hangup:
    """An upstream that reads each request whole and closes the connection without answering:
    the request reached it, so it may have acted on it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                method, path = lines[0].split(" ")[:2]
                self.hits.append((method, path, body))

    def close(self):
        self.sock.close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    return port


@pytest.fixture(scope="module")
def proxy(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("http-handler")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    hangup = Hangup()
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/up/{proxy+}", "api_key_required": True, "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"},
        {"method": "ANY", "path": "/gone/{proxy+}", "api_key_required": True,
         "handler": "http", "upstream": f"http://127.0.0.1:{closed_port()}/base"},
        {"method": "ANY", "path": "/hangup/{proxy+}", "api_key_required": True,
         "handler": "http", "upstream": f"http://127.0.0.1:{hangup.port}/base"},
    ]}))
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_RETRY_BACKOFF_MS=50).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file).start()
    yield {"gw": gw, "worker": worker, "key": value, "prefix": prefix,
           "bootstrap": kafka_bootstrap, "hangup": hangup}
    gcode, wcode = gw.stop(), worker.stop()
    upstream.shutdown()
    hangup.close()
    assert gcode == 0, gw.log_text()[-3000:]
    assert wcode == 0, worker.log_text()[-3000:]


def call(p, method, path, **kw):
    headers = dict(kw.pop("headers", {}), **{"X-API-Key": p["key"]})
    return requests.request(method, p["gw"].url + path, headers=headers, timeout=30,
                            allow_redirects=False, **kw)


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_an_upstream_5xx_passes_through_with_its_body_and_is_not_retried(proxy, code):
    Upstream.seen.clear()
    r = call(proxy, "GET", f"/up/status/{code}")
    assert r.status_code == code, r.text
    assert r.json() == {"upstream": code}
    assert [s["path"] for s in Upstream.seen] == [f"/base/up/status/{code}"]


def test_a_redirect_is_handed_to_the_client_not_followed(proxy):
    Upstream.seen.clear()
    r = call(proxy, "GET", "/up/moved")
    assert r.status_code == 302
    assert r.headers["Location"] == "/base/elsewhere"
    assert [s["path"] for s in Upstream.seen] == ["/base/up/moved"]


def test_hop_by_hop_headers_stop_at_the_handler_both_ways(proxy):
    Upstream.seen.clear()
    r = call(proxy, "POST", "/up/hop", data=b"x", headers={
        "Keep-Alive": "timeout=5", "TE": "trailers", "Trailer": "X-T", "Upgrade": "h2c",
        "Proxy-Authorization": "Basic Zm9vOmJhcg==", "X-End-To-End": "kept"})
    assert r.status_code == 200, r.text
    sent = {k.lower(): v for k, v in Upstream.seen[-1]["headers"].items()}
    for name in HOP_BY_HOP:
        assert name.lower() not in sent, (name, sent)
    assert sent["x-end-to-end"] == "kept"
    # The upstream's own hop-by-hop headers are not the client's connection's.
    assert "Upgrade" not in r.headers and "Trailer" not in r.headers, dict(r.headers)
    assert "timeout=99" not in r.headers.get("Keep-Alive", ""), dict(r.headers)
    assert r.headers["X-Kept"] == "yes"


def dlq_record(p, rid):
    """The DLQ record of request `rid` (its key is the request id)."""
    rid = rid.encode()
    c = Consumer({"bootstrap.servers": p["bootstrap"], "group.id": f"t-{rid[:8].decode()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([p["prefix"] + "dlq"])
    found = None
    deadline = time.monotonic() + 30
    while found is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error() and m.key() == rid:
            found = m
    c.close()
    assert found is not None, "no DLQ record"
    return found


def test_an_unreachable_upstream_is_a_502_and_a_dlq_record(proxy):
    r = call(proxy, "GET", "/gone/x")
    assert r.status_code == 502, r.text
    assert r.json() == {"message": "Internal server error"}
    found = dlq_record(proxy, r.headers["x-amzn-RequestId"])
    h = dict(found.headers())
    assert h["sluice-dlq-reason"] == b"handler_error"
    assert b"connect" in h["sluice-dlq-error"].lower() or b"refused" in h["sluice-dlq-error"].lower()
    assert msgpack.unpackb(found.value(), raw=False)["path"] == "/gone/x"


@pytest.mark.parametrize("method,hits", [
    ("POST", 1), ("PATCH", 1), ("GET", 3), ("PUT", 3), ("DELETE", 3)])
def test_a_request_that_reached_the_upstream_is_sent_again_only_when_idempotent(
        proxy, method, hits):
    """The upstream read the whole request and hung up: a POST or PATCH may have acted already,
    so it is final at once (502 + DLQ after one attempt); other methods are retried."""
    hangup = proxy["hangup"]
    hangup.hits.clear()
    r = call(proxy, method, "/hangup/order/7", data=b"pay 10")
    assert r.status_code == 502, r.text
    assert r.json() == {"message": "Internal server error"}
    h = dict(dlq_record(proxy, r.headers["x-amzn-RequestId"]).headers())
    assert h["sluice-dlq-reason"] == b"handler_error"
    assert h["sluice-attempts"] == str(hits).encode()
    assert (b"not retried" in h["sluice-dlq-error"]) == (hits == 1), h["sluice-dlq-error"]
    # The DLQ record is written once the worker gave up: no attempt comes after it.
    assert hangup.hits == [(method, "/base/hangup/order/7", b"pay 10")] * hits


def test_a_post_that_never_reached_the_upstream_is_retried(proxy):
    """Connection refused: nothing was sent, so sending the POST again cannot act twice."""
    r = call(proxy, "POST", "/gone/order", data=b"pay 10")
    assert r.status_code == 502, r.text
    h = dict(dlq_record(proxy, r.headers["x-amzn-RequestId"]).headers())
    assert h["sluice-dlq-reason"] == b"handler_error"
    assert h["sluice-attempts"] == b"3"
    assert b"not retried" not in h["sluice-dlq-error"]
