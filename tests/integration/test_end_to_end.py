"""The real gateway in front of the real worker: every answer of the error table a client can
provoke, with and without an allowed CORS origin, and an audit record for each.

The gateway tests mostly use a Python stand-in for the worker; here nothing is stood in: the
worker's echo handler and test plugins answer, crash and overrun, and the gateway turns that
into the client's answer.
"""
import json
import time

import pytest
import requests

from harness import Gateway, consume_all, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess

ORIGIN = "https://app.yourdomain.com"
PLANS = {
    "default": {"throttle": {"rate": 1000, "burst": 2000},
                "quota": {"limit": 10000, "period": "DAY"}},
    "tiny": {"throttle": {"rate": 1, "burst": 2}},
    "three": {"quota": {"limit": 3, "period": "DAY"}},
}


@pytest.fixture(scope="module")
def e2e(build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    plugins = build_dir / "services" / "worker"
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/items/{proxy+}", "api_key_required": True,
         "handler": "echo"},
        {"method": "GET", "path": "/public", "api_key_required": False, "handler": "echo"},
        {"method": "ANY", "path": "/crash", "api_key_required": True, "handler": "plugin",
         "plugin": str(plugins / "plugin-segfault.so")},
        {"method": "ANY", "path": "/slow", "api_key_required": True, "handler": "plugin",
         "plugin": str(plugins / "plugin-loop.so"), "timeout_ms": 4000},
    ]}))
    keys = {name: dict(zip(("value", "id", "hash"), new_key()), plan=plan)
            for name, plan in (("ok", "default"), ("tiny", "tiny"), ("three", "three"))}
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, list(keys.values()), PLANS)
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_RETRY_BACKOFF_MS=50).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file, SLUICE_REQUEST_TIMEOUT_MS=1500).start()
    yield {"gw": gw, "worker": worker, "keys": keys, "prefix": prefix,
           "bootstrap": kafka_bootstrap}
    gcode, wcode = gw.stop(), worker.stop()
    assert gcode == 0, gw.log_text()[-3000:]
    assert wcode == 0, worker.log_text()[-3000:]


def send(e2e, method, path, key="ok", origin=ORIGIN, **kw):
    headers = dict(kw.pop("headers", {}))
    if key:
        headers["X-API-Key"] = e2e["keys"][key]["value"]
    if origin:
        headers["Origin"] = origin
    return requests.request(method, e2e["gw"].url + path, headers=headers, timeout=30, **kw)


def executions(e2e, route=None):
    """Handler attempts the worker has made, over every outcome, of one route or of all."""
    text = requests.get(e2e["worker"].admin + "/metrics", timeout=5).text
    prefix = "sluice_worker_executions_total{" + (f'route="{route}",' if route else "")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix))


def assert_cors(r, origin=ORIGIN):
    """An allowed origin is answered on every response, the gateway's own errors included;
    any other origin never is."""
    if origin == ORIGIN:
        assert r.headers.get("Access-Control-Allow-Origin") == ORIGIN, (r.status_code, r.headers)
        assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    else:
        assert "Access-Control-Allow-Origin" not in r.headers, (r.status_code, r.headers)
    assert r.headers.get("Vary") == "Origin"


def assert_error(r, status, message, error_type):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json() == {"message": message}
    assert r.headers["Content-Type"] == "application/json"
    if error_type:
        assert r.headers["x-amzn-ErrorType"] == error_type
    assert r.headers["x-amzn-RequestId"]


class TestRealWorkerBehindTheGateway:
    @pytest.mark.parametrize("origin", [ORIGIN, "https://evil.example"])
    def test_the_echo_handler_answers_through_the_gateway(self, e2e, origin):
        r = send(e2e, "POST", "/items/42?colour=blue", origin=origin, json={"a": [1, 2.5]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True
        assert body["data"] == {"message": "POST request processed successfully",
                                "path": "/items/42", "received_data": {"a": [1, 2.5]},
                                "method": "POST"}
        assert_cors(r, origin)

    def test_a_route_without_a_key_requirement_needs_no_key(self, e2e):
        r = send(e2e, "GET", "/public", key=None)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["path"] == "/public"
        assert_cors(r)
        assert executions(e2e) > 0  # what the refusals below compare with is counted

    @pytest.mark.parametrize("origin", [ORIGIN, "https://evil.example"])
    def test_a_path_no_route_serves_is_a_missing_token_403(self, e2e, origin):
        r = send(e2e, "GET", "/nowhere", origin=origin)
        assert_error(r, 403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        assert_cors(r, origin)

    @pytest.mark.parametrize("presented", [None, "sk_" + "x" * 43])
    def test_a_missing_or_unknown_key_is_forbidden(self, e2e, presented):
        headers = {"X-API-Key": presented} if presented else {}
        r = send(e2e, "GET", "/items/1", key=None, headers=headers)
        assert_error(r, 403, "Forbidden", "ForbiddenException")
        assert_cors(r)

    def test_a_waf_block_is_forbidden_and_runs_nothing(self, e2e):
        before = executions(e2e)
        r = send(e2e, "GET", "/items/1?q=<script>alert(1)</script>")
        assert_error(r, 403, "Forbidden", "WAFFilteredException")
        assert_cors(r)
        assert executions(e2e) == before

    def test_the_throttle_and_the_quota_are_429s(self, e2e):
        got = [send(e2e, "GET", "/items/t", key="tiny") for _ in range(4)]
        assert [r.status_code for r in got[:2]] == [200, 200]
        assert_error(got[-1], 429, "Too Many Requests", "TooManyRequestsException")
        assert_cors(got[-1])
        got = [send(e2e, "GET", "/items/q", key="three") for _ in range(4)]
        assert [r.status_code for r in got[:3]] == [200, 200, 200]
        assert_error(got[3], 429, "Limit Exceeded", "LimitExceededException")
        assert_cors(got[3])

    def test_a_crashing_handler_is_a_502(self, e2e):
        r = send(e2e, "POST", "/crash", data=b"x")
        assert_error(r, 502, "Internal server error", "InternalServerErrorException")
        assert_cors(r)

    def test_a_handler_slower_than_the_gateway_deadline_is_a_504(self, e2e):
        t0 = time.monotonic()
        r = send(e2e, "GET", "/slow")
        took = time.monotonic() - t0
        assert_error(r, 504, "Endpoint request timed out", "IntegrationTimeout")
        assert_cors(r)
        assert 1.4 < took < 10, took  # the gateway's 1.5 s deadline, not the handler's 4 s

    def test_a_preflight_is_answered_by_the_gateway_alone(self, e2e):
        # The route the preflight's path maps to (the slow handler of the test before may still
        # be finishing its attempt on another route).
        route = "ANY /items/{proxy+}"
        before = executions(e2e, route)
        r = requests.options(e2e["gw"].url + "/items/1", timeout=5, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
        assert r.status_code == 204
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "PUT" in r.headers["Access-Control-Allow-Methods"].split(",")
        # OPTIONS without Access-Control-Request-Method is not a preflight: it needs a key.
        plain = requests.options(e2e["gw"].url + "/items/1", timeout=5,
                                 headers={"Origin": ORIGIN})
        assert_error(plain, 403, "Forbidden", "ForbiddenException")
        time.sleep(0.5)  # a request sent on by mistake would have run by now
        assert executions(e2e, route) == before

    def test_every_answer_has_its_audit_record_with_the_status_sent(self, e2e):
        sent = {}
        for path, key in (("/items/audit", "ok"), ("/nowhere-audit", "ok"),
                          ("/items/audit-forbidden", None), ("/crash", "ok")):
            r = send(e2e, "GET", path, key=key)
            sent[r.headers["x-amzn-RequestId"]] = (path, r.status_code)
        deadline = time.monotonic() + 30
        while True:
            recs = {}
            for m in consume_all(e2e["bootstrap"], e2e["prefix"] + "audit"):
                rec = json.loads(m.value())
                recs[rec["request_id"]] = rec
            if all(rid in recs for rid in sent) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for rid, (path, status) in sent.items():
            assert rid in recs, f"no audit record for {path}"
            assert (recs[rid]["path"], recs[rid]["status"]) == (path, status)


def test_a_route_only_the_gateway_has_gets_502_and_route_unknown_and_runs_nothing(
        build_dir, kafka_bootstrap, tmp_path):
    """A gateway and a worker with different routes tables (a rolling change half done): the
    worker runs a request only for the route the gateway matched."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    gw_routes, wk_routes = tmp_path / "gw-routes.json", tmp_path / "wk-routes.json"
    gw_routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/orders/{id}", "api_key_required": True, "handler": "echo"},
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    # The worker lacks /orders/{id}: its table sends /orders/7 to the catch-all.
    wk_routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    value, kid, digest = new_key()
    keys = tmp_path / "keys.json"
    write_keys_file(keys, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, wk_routes).start()
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys,
                 SLUICE_ROUTES_FILE=gw_routes).start()
    try:
        ok = requests.get(gw.url + "/other", headers={"X-API-Key": value}, timeout=30)
        assert ok.status_code == 200  # a route both tables share runs
        r = requests.get(gw.url + "/orders/7", headers={"X-API-Key": value}, timeout=30)
        assert r.status_code == 502, r.text
        rid = r.headers["x-amzn-RequestId"]
        executed = worker.metric('sluice_worker_executions_total{route="ANY /{proxy+}",'
                                 'outcome="ok"}')
        assert executed == 1  # only /other ran: /orders/7 ran no handler
        deadline = time.monotonic() + 20
        dead = []
        while not dead and time.monotonic() < deadline:
            dead = [m for m in consume_all(kafka_bootstrap, prefix + "dlq")
                    if m.key() == rid.encode()]
        assert len(dead) == 1
        h = dict(dead[0].headers())
        assert h["sluice-dlq-reason"] == b"route_unknown"
        assert b"/orders/{id}" in h["sluice-dlq-error"] and h["sluice-attempts"] == b"0"
        assert worker.metric('sluice_worker_dlq_records_total{reason="route_unknown"}') == 1
    finally:
        gw.stop()
        worker.stop()
