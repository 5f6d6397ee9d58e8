"""The worker's http handler as a proxy: what passes through and what does not.

Real gateway, real worker, a Python upstream that answers as each path asks: a 5xx passes
through, a redirect is handed to the client (not followed), hop-by-hop headers stop at the
handler in both directions, and an upstream that cannot be reached is a 502 with a DLQ record.
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
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/up/{proxy+}", "api_key_required": True, "handler": "http",
         "upstream": f"http://127.0.0.1:{upstream.server_port}/base"},
        {"method": "ANY", "path": "/gone/{proxy+}", "api_key_required": True,
         "handler": "http", "upstream": f"http://127.0.0.1:{closed_port()}/base"},
    ]}))
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_RETRY_BACKOFF_MS=50).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file).start()
    yield {"gw": gw, "worker": worker, "key": value, "prefix": prefix,
           "bootstrap": kafka_bootstrap}
    gcode, wcode = gw.stop(), worker.stop()
    upstream.shutdown()
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


def test_an_unreachable_upstream_is_a_502_and_a_dlq_record(proxy):
    r = call(proxy, "GET", "/gone/x")
    assert r.status_code == 502, r.text
    assert r.json() == {"message": "Internal server error"}
    rid = r.headers["x-amzn-RequestId"].encode()
    c = Consumer({"bootstrap.servers": proxy["bootstrap"], "group.id": f"t-{rid[:8].decode()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([proxy["prefix"] + "dlq"])
    found = None
    deadline = time.monotonic() + 30
    while found is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error() and m.key() == rid:
            found = m
    c.close()
    assert found is not None, "no DLQ record"
    h = dict(found.headers())
    assert h["sluice-dlq-reason"] == b"handler_error"
    assert b"connect" in h["sluice-dlq-error"].lower() or b"refused" in h["sluice-dlq-error"].lower()
    assert msgpack.unpackb(found.value(), raw=False)["path"] == "/gone/x"
