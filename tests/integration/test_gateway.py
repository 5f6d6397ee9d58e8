"""sluice-gateway against the real stack: the error contract, the envelope, replies, keys,
usage plans, audit records and secrecy of key values (issue: the authenticated front door)."""
import concurrent.futures
import datetime
import json
import os
import re
import socket
import threading
import time

import msgpack
import pytest
import requests

from confluent_kafka import TIMESTAMP_CREATE_TIME, Producer

from harness import (FakeWorker, Gateway, consume_all, create_topics, new_key, new_prefix,
                     reply_envelope, write_keys_file)

TIMEOUT_MS = 1500
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

PLANS = {
    "default": {"throttle": {"rate": 1000, "burst": 2000}, "quota": {"limit": 10000, "period": "DAY"}},
    "tiny": {"throttle": {"rate": 1, "burst": 2}},
    "three": {"quota": {"limit": 3, "period": "DAY"}},
}


def handler(env, msg):
    """The fake worker: routes by path, like handlers would."""
    path = env["path"]
    if path.startswith("/silent"):
        return None
    if path.startswith("/garbage"):
        return b"\xc1 not msgpack"
    if path.startswith("/fail"):
        return reply_envelope(env, 502, {}, b"", {"class": "crash", "message": "segfault"})
    if path.startswith("/late"):
        threading.Timer(TIMEOUT_MS / 1000 + 0.5, lambda: late.append(env)).start()
        return None
    if path.startswith("/cors-handler"):
        # Like the seed's Lambda: its own CORS headers, with a fallback origin.
        return reply_envelope(env, 200, {"Access-Control-Allow-Origin": ["https://yourdomain.com"],
                                         "Access-Control-Allow-Credentials": ["true"],
                                         "Vary": ["Origin"], "X-Kept": ["yes"]}, b"{}")
    if path.startswith("/items/"):
        return reply_envelope(env, 201, {"X-Reply": ["a", "b"], "Content-Type": ["application/octet-stream"]},
                              b"\x00\x01reply-bytes\xff")
    body = json.dumps({"id": env["id"], "path": path, "method": env["method"]}).encode()
    return reply_envelope(env, 200, {"Content-Type": ["application/json"]}, body)


late = []


@pytest.fixture(scope="module")
def env(build_dir, kafka_bootstrap, tmp_path_factory):
    """One gateway (index 0) with a fake worker on a fresh set of topics, and a keys file."""
    tmp = tmp_path_factory.mktemp("gateway")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix, audit_partitions=6)  # as many as sluicectl creates
    keys = {}
    for name, extra in [("ok", {}), ("second", {}), ("disabled", {"enabled": False}),
                        ("expired", {"expires": "2020-01-01T00:00:00Z"}),
                        ("revoked", {"revoked": "2020-01-01T00:00:00Z", "enabled": False}),
                        ("tiny", {"plan": "tiny"}), ("three", {"plan": "three"})]:
        value, kid, digest = new_key()
        keys[name] = dict(extra, value=value, id=kid, hash=digest, name=name)
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, keys.values(), PLANS)
    worker = FakeWorker(kafka_bootstrap, prefix, handler).start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_REQUEST_TIMEOUT_MS=TIMEOUT_MS, SLUICE_MAX_BODY_BYTES=4096).start()
    yield {"gw": gw, "keys": keys, "worker": worker, "prefix": prefix, "keys_file": keys_file,
           "tmp": tmp}
    code = gw.stop()
    worker.stop()
    assert code == 0, gw.log_text()[-3000:]


def call(gw, path, key=None, method="GET", **kw):
    headers = kw.pop("headers", {})
    if key:
        headers["X-API-Key"] = key
    return requests.request(method, gw.url + path, headers=headers, timeout=10, **kw)


def assert_error(r, status, message, error_type):
    assert r.status_code == status, r.text
    assert r.text == json.dumps({"message": message}, separators=(",", ":"))
    assert r.headers.get("x-amzn-ErrorType") == error_type
    assert r.headers["Content-Type"] == "application/json"
    assert UUID_RE.match(r.headers["x-amzn-RequestId"])
    assert r.headers["x-request-id"] == r.headers["x-amzn-RequestId"]


def raw(gw, data, read_until_close=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=timeout)
    s.sendall(data)
    out = b""
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
        if not read_until_close and b"\r\n\r\n" in out:
            head, _, rest = out.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: (\d+)", head)
            if m and len(rest) >= int(m.group(1)):
                break
    s.close()
    return out


# ---- the error table ------------------------------------------------------------------------

def test_valid_key_gets_the_handler_answer(env):
    r = call(env["gw"], "/hello", env["keys"]["ok"]["value"])
    assert r.status_code == 200
    assert r.json() == {"id": r.headers["x-amzn-RequestId"], "path": "/hello", "method": "GET"}
    assert UUID_RE.match(r.headers["x-amzn-RequestId"])


@pytest.mark.parametrize("which", [None, "unknown", "disabled", "expired", "revoked"])
def test_missing_unknown_disabled_expired_or_revoked_key_is_forbidden(env, which):
    key = {None: None, "unknown": new_key()[0]}.get(which) or (
        env["keys"][which]["value"] if which else None)
    assert_error(call(env["gw"], "/hello", key), 403, "Forbidden", "ForbiddenException")


def test_unconfigured_route_is_missing_authentication_token(env):
    # The seed's only route is ANY /{proxy+}: the root resource has no method.
    assert_error(call(env["gw"], "/", env["keys"]["ok"]["value"]), 403,
                 "Missing Authentication Token", "MissingAuthenticationTokenException")


def test_empty_token_bucket_is_too_many_requests_with_retry_after(env):
    key = env["keys"]["tiny"]["value"]
    statuses = [call(env["gw"], "/t", key) for _ in range(3)]
    assert [r.status_code for r in statuses[:2]] == [200, 200]
    assert_error(statuses[2], 429, "Too Many Requests", "TooManyRequestsException")
    assert statuses[2].headers["Retry-After"] == "1"
    assert statuses[2].headers["RateLimit-Policy"] == '"burst";q=2;w=2'


def test_exhausted_quota_is_limit_exceeded_until_utc_midnight(env):
    key = env["keys"]["three"]["value"]
    rs = [call(env["gw"], "/q", key) for _ in range(4)]
    assert [r.status_code for r in rs[:3]] == [200, 200, 200]
    assert [r.headers["RateLimit"] for r in rs[:3]][0].startswith('"quota";r=2;t=')
    assert_error(rs[3], 429, "Limit Exceeded", "LimitExceededException")
    now = datetime.datetime.now(datetime.timezone.utc)
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(rs[3].headers["Retry-After"]) - (midnight - now).total_seconds()) <= 2
    assert rs[3].headers["RateLimit-Policy"] == '"quota";q=3;w=86400'


def test_body_over_the_limit_is_request_too_long(env):
    r = call(env["gw"], "/big", env["keys"]["ok"]["value"], "POST", data=b"x" * 4097)
    assert_error(r, 413, "Request Too Long", "RequestTooLargeException")
    assert r.headers["Connection"] == "close"


def test_declared_length_over_the_limit_is_refused_before_any_body_byte(env):
    # No body follows: the answer can only come from the declared Content-Length, at once
    # (waiting for the body would end at the 10 s body timeout, well past this socket's 2 s).
    key = env["keys"]["ok"]["value"]
    start = time.monotonic()
    out = raw(env["gw"], b"POST /big HTTP/1.1\r\nHost: gw.test\r\nX-API-Key: " + key.encode() +
              b"\r\nContent-Length: 1000000000\r\n\r\n", timeout=2)
    assert time.monotonic() - start < 2
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 413 Content Too Large"
    assert body == b'{"message":"Request Too Long"}'
    assert b"x-amzn-ErrorType: RequestTooLargeException" in lines
    assert b"Connection: close" in lines


def test_headers_over_the_limit_are_431(env):
    r = call(env["gw"], "/h", env["keys"]["ok"]["value"],
             headers={f"X-Filler-{i}": "v" * 100 for i in range(110)})
    assert_error(r, 431, "Request Header Fields Too Large", None)


def test_an_answer_the_http_server_gives_itself_is_audited(env, kafka_bootstrap):
    r = call(env["gw"], "/h", None, headers={f"X-Filler-{i}": "v" * 100 for i in range(110)})
    assert r.status_code == 431
    rid = r.headers["x-amzn-RequestId"]
    deadline, rec, stamp = time.monotonic() + 10, None, None
    while time.monotonic() < deadline and rec is None:
        for m in consume_all(kafka_bootstrap, env["prefix"] + "audit"):
            got = json.loads(m.value())
            if got["request_id"] == rid:
                rec, stamp = got, m.timestamp()
    assert rec is not None
    assert {k: rec[k] for k in ("method", "path", "route", "status", "waf", "bytes_in", "bytes_out",
                                "error", "stage", "source_ip")} == {
        "method": None, "path": None, "route": None, "status": 431, "waf": None, "bytes_in": None,
        "bytes_out": len(r.content), "error": "header_too_large", "stage": "production",
        "source_ip": "127.0.0.1"}
    when = datetime.datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert stamp == (TIMESTAMP_CREATE_TIME, round(when.timestamp() * 1000))


def test_every_answer_the_http_server_gives_itself_is_audited_with_the_client_address(
        build_dir, kafka_bootstrap, tmp_path):
    """400, 408, 413, 414 and 431 are answered by the HTTP server before the pipeline runs; each
    has an audit record with its status, its error kind and the client's address (the socket
    peer: the headers were not taken in)."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [], PLANS)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_HEADER_TIMEOUT_MS=300, SLUICE_MAX_BODY_BYTES=4096).start()
    cases = {
        400: (b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", "bad_request"),
        408: (b"GET /x HTTP/1.1\r\nHost: a\r\n", "header_timeout"),  # never finished
        413: (b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n",
              "body_too_large"),
        414: (b"GET /" + b"q" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", "url_too_long"),
        431: (b"GET /x HTTP/1.1\r\nHost: a\r\n" +
              b"".join(b"X-F-%d: %s\r\n" % (i, b"v" * 100) for i in range(110)) + b"\r\n",
              "header_too_large"),
    }
    try:
        ids = {}
        for status, (data, _) in cases.items():
            out = raw(gw, data)
            assert out.startswith(b"HTTP/1.1 %d " % status), out[:200]
            ids[status] = re.search(rb"(?m)^x-amzn-RequestId: (\S+)", out).group(1).decode()
        found, deadline = {}, time.monotonic() + 15
        while len(found) < len(ids) and time.monotonic() < deadline:
            for m in consume_all(kafka_bootstrap, prefix + "audit"):
                rec = json.loads(m.value())
                found[rec["request_id"]] = rec
            found = {k: v for k, v in found.items() if k in ids.values()}
        for status, rid in ids.items():
            assert rid in found, (status, rid)
            rec = found[rid]
            assert (rec["status"], rec["error"], rec["source_ip"]) == (
                status, cases[status][1], "127.0.0.1")
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def test_request_target_over_the_limit_is_414(env):
    r = call(env["gw"], "/long?" + "q" * 9000, env["keys"]["ok"]["value"])
    assert_error(r, 414, "Request-URI Too Long", None)
    assert r.headers["Connection"] == "close"


def test_malformed_http_is_bad_request(env):
    out = raw(env["gw"], b"GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nx-amzn-ErrorType: BadRequestException\r\n" in head + b"\r\n"
    assert b"\r\nx-amzn-RequestId: " in head
    assert body == b'{"message":"Bad Request"}'


@pytest.mark.parametrize("path", [b"/public/../admin/x", b"/public/%2e%2e/admin/x",
                                  b"/public/%2E%2e/admin/x", b"/public/./x", b"/a/%2e/b", b"/..",
                                  b"/public%2fadmin", b"/public%2Fadmin", b"/public%5cadmin",
                                  b"/public%5Cadmin"])
def test_dot_segments_and_encoded_separators_are_bad_request_before_routing(env, path):
    # Sent by hand: HTTP libraries normalise such paths before they leave the client.
    seen = len(env["worker"].envelopes())
    out = raw(env["gw"], b"GET " + path + b"?a=1 HTTP/1.1\r\nHost: a\r\nX-API-Key: " +
              env["keys"]["ok"]["value"].encode() + b"\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out
    assert b"\r\nx-amzn-ErrorType: BadRequestException\r\n" in head + b"\r\n"
    assert body == b'{"message":"Bad Request"}'
    time.sleep(0.2)
    assert len(env["worker"].envelopes()) == seen  # never published


def test_a_key_free_route_cannot_reach_a_keyed_one_through_dot_segments(env, build_dir,
                                                                        kafka_bootstrap):
    """With a web ACL that lets everything through, /public/../admin/x matched the key-free
    /public/{p+} and was published with that path: an upstream behind the http handler would
    have served /admin/x. It is refused before routing, whatever the ACL, and audited."""
    tmp = env["tmp"] / "dots"
    tmp.mkdir()
    acl, routes = tmp / "acl.json", tmp / "routes.json"
    acl.write_text(json.dumps({"Name": "open", "DefaultAction": {"Allow": {}}, "Rules": []}))
    routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/public/{p+}", "api_key_required": False, "handler": "echo"},
        {"method": "ANY", "path": "/admin/{p+}", "api_key_required": True, "handler": "echo"}]}))
    gw = Gateway(build_dir, tmp, kafka_bootstrap, env["prefix"], env["keys_file"], index=1,
                 SLUICE_WAF_ACL_FILE=str(acl), SLUICE_ROUTES_FILE=str(routes)).start()
    try:
        seen = len(env["worker"].envelopes())
        for path in (b"/public/../admin/x", b"/public/%2e%2E/admin/x", b"/public/..%2fadmin/x"):
            out = raw(gw, b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n"
                          b"Connection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out[:300]
        rid = re.search(rb"(?m)^x-amzn-RequestId: (\S+)", out).group(1).decode()
        time.sleep(0.2)
        assert len(env["worker"].envelopes()) == seen  # nothing published
        assert raw(gw, b"GET /public/ok HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n"
                       b"Connection: close\r\n\r\n").startswith(b"HTTP/1.1 200 ")
        recs = [json.loads(m.value()) for m in consume_all(kafka_bootstrap, env["prefix"] + "audit")]
        [rec] = [r for r in recs if r["request_id"] == rid]
        assert (rec["status"], rec["error"], rec["path"]) == (400, "bad_request",
                                                               "/public/..%2fadmin/x")
    finally:
        assert gw.stop() == 0


def test_more_headers_than_an_envelope_carries_is_bad_request_at_once(env):
    seen = len(env["worker"].envelopes())
    t0 = time.monotonic()
    r = call(env["gw"], "/many-headers", env["keys"]["ok"]["value"],
             headers={f"X-H-{i}": "v" for i in range(600)})
    assert time.monotonic() - t0 < 1
    assert_error(r, 400, "Bad Request", "BadRequestException")
    time.sleep(0.2)
    assert len(env["worker"].envelopes()) == seen  # never published


def test_more_query_parameters_than_an_envelope_carries_is_bad_request_at_once(env):
    seen = len(env["worker"].envelopes())
    t0 = time.monotonic()
    # Short parameters: the web ACL refuses query strings over 2,048 bytes first.
    r = call(env["gw"], "/many-params?" + "&".join("a" for _ in range(600)),
             env["keys"]["ok"]["value"])
    assert time.monotonic() - t0 < 1
    assert_error(r, 400, "Bad Request", "BadRequestException")
    # 500 values under one name are as many as an envelope carries: published.
    r = call(env["gw"], "/500-params?" + "&".join("p=1" for _ in range(500)),
             env["keys"]["ok"]["value"])
    assert r.status_code == 200, r.text
    assert env["worker"].envelopes()[-1]["query"] == {"p": ["1"] * 500}
    assert len(env["worker"].envelopes()) == seen + 1


def test_repeated_header_names_are_grouped_in_first_seen_order(env):
    names = [f"X-R-{i % 7}" for i in range(300)]
    request = (b"GET /grouped HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nX-API-Key: " +
               env["keys"]["ok"]["value"].encode() + b"\r\n" +
               b"".join(f"{n}: {i}\r\n".encode() for i, n in enumerate(names)) +
               b"Connection: close\r\n\r\n")
    out = raw(env["gw"], request)
    assert out.startswith(b"HTTP/1.1 200 "), out[:200]
    got = env["worker"].envelopes()[-1]["headers"]
    want = {}
    for i, n in enumerate(names):
        want.setdefault(n, []).append(str(i))
    assert [k for k in got if k.startswith("X-R-")] == [f"X-R-{i}" for i in range(7)]
    assert {k: v for k, v in got.items() if k.startswith("X-R-")} == want


def test_no_reply_by_the_deadline_is_endpoint_request_timed_out(env):
    t0 = time.monotonic()
    r = call(env["gw"], "/silent", env["keys"]["ok"]["value"])
    elapsed = time.monotonic() - t0
    assert_error(r, 504, "Endpoint request timed out", "IntegrationTimeout")
    assert TIMEOUT_MS / 1000 - 0.05 <= elapsed <= TIMEOUT_MS / 1000 + 0.5


@pytest.mark.parametrize("path", ["/garbage", "/fail"])
def test_invalid_or_failed_reply_is_internal_server_error(env, path):
    assert_error(call(env["gw"], path, env["keys"]["ok"]["value"]), 502,
                 "Internal server error", "InternalServerErrorException")


def test_late_reply_is_dropped_and_counted(env):
    gw = env["gw"]
    before = gw.metric("sluice_gateway_late_replies_total")
    r = call(gw, "/late", env["keys"]["ok"]["value"])
    assert r.status_code == 504
    deadline = time.monotonic() + 10
    while not late and time.monotonic() < deadline:
        time.sleep(0.05)
    assert late, "the fake worker never produced the late reply"
    p = Producer({"bootstrap.servers": gw.env["SLUICE_KAFKA_BOOTSTRAP_SERVERS"]})
    envl = late[0]
    p.produce(env["prefix"] + "replies", reply_envelope(envl, 200, {}, b"too late"),
              key=envl["id"], partition=envl["reply_partition"],
              headers=[("sluice-id", envl["id"].encode())])
    p.flush(10)
    while gw.metric("sluice_gateway_late_replies_total") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.metric("sluice_gateway_late_replies_total") == before + 1
    assert call(gw, "/after-late", env["keys"]["ok"]["value"]).status_code == 200


# ---- the envelope and the reply, byte for byte -----------------------------------------------

def test_envelope_carries_the_request_exactly_and_the_reply_comes_back_byte_for_byte(env):
    gw, key = env["gw"], env["keys"]["ok"]
    body = b"\x00binary\xffbody\r\n"
    trace_in = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    request = (b"POST /items/42?a=1&a=2&b=x%20y&empty HTTP/1.1\r\n"
               b"Host: gw.test\r\n"
               b"X-API-Key: " + key["value"].encode() + b"\r\n"
               b"X-Multi: one\r\n"
               b"x-multi: two\r\n"
               b"X-Multi: three\r\n"
               b"User-Agent: sluice-it/1\r\n"
               b"traceparent: " + trace_in.encode() + b"\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n"
               b"Connection: close\r\n\r\n" + body)
    out = raw(gw, request)
    head, _, resp_body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 201 Created"
    assert resp_body == b"\x00\x01reply-bytes\xff"
    assert [l for l in lines if l.lower().startswith(b"x-reply:")] == [b"X-Reply: a", b"X-Reply: b"]
    assert b"Content-Type: application/octet-stream" in lines
    rid = next(l.split(b": ", 1)[1].decode() for l in lines if l.startswith(b"x-amzn-RequestId:"))

    [(e, msg)] = [(e, m) for e, m in env["worker"].received if e["id"] == rid]
    assert e["v"] == 1
    assert e["method"] == "POST"
    assert e["path"] == "/items/42"
    assert e["resource"] == "/{proxy+}"
    assert e["headers"] == {
        "Host": ["gw.test"], "X-Multi": ["one", "three"], "x-multi": ["two"],
        "User-Agent": ["sluice-it/1"], "traceparent": [trace_in],
        "Content-Length": [str(len(body))], "Connection": ["close"]}
    assert list(e["headers"]) == ["Host", "X-Multi", "x-multi", "User-Agent", "traceparent",
                                  "Content-Length", "Connection"]
    assert e["query"] == {"a": ["1", "2"], "b": ["x y"], "empty": [""]}
    assert e["path_params"] == {"proxy": "items/42"}
    assert e["body"] == body
    assert e["source_ip"] == "127.0.0.1"
    assert e["user_agent"] == "sluice-it/1"
    assert e["api_key_id"] == key["id"]
    assert e["stage"] == "production"
    assert e["deadline_ms"] - e["received_ms"] == TIMEOUT_MS
    assert abs(e["received_ms"] / 1000 - time.time()) < 30
    assert e["trace"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert e["trace"] != trace_in and e["trace"].endswith("-01")
    assert (e["reply_partition"], e["attempt"], e["replay_count"]) == (0, 1, 0)
    assert msg.key() == rid.encode()
    assert dict(msg.headers()) == {
        "sluice-id": rid.encode(), "traceparent": e["trace"].encode(),
        "sluice-deadline-ms": str(e["deadline_ms"]).encode(), "sluice-reply-partition": b"0"}


def test_cors_preflight_is_answered_without_a_key_and_only_for_allowed_origins(env):
    gw = env["gw"]
    ok = requests.options(gw.url + "/anything", timeout=5, headers={
        "Origin": "https://app.yourdomain.com", "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.yourdomain.com"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    assert ok.headers["Access-Control-Allow-Methods"] == "GET,POST,PUT,DELETE,OPTIONS"
    assert ok.headers["Vary"] == "Origin"
    bad = requests.options(gw.url + "/anything", timeout=5, headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert bad.status_code == 204
    assert "Access-Control-Allow-Origin" not in bad.headers
    actual = call(gw, "/c", env["keys"]["ok"]["value"], headers={"Origin": "https://yourdomain.com"})
    assert actual.status_code == 200
    assert actual.headers["Access-Control-Allow-Origin"] == "https://yourdomain.com"
    assert call(gw, "/c", env["keys"]["ok"]["value"],
                headers={"Origin": "https://evil.example"}).headers.get(
                    "Access-Control-Allow-Origin") is None


def test_gateway_alone_sets_cors_headers_on_handler_answers(env):
    gw, key = env["gw"], env["keys"]["ok"]["value"]
    evil = raw(gw, b"GET /cors-handler HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nX-API-Key: " +
               key.encode() + b"\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n")
    head = evil.partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 200")
    assert b"access-control-allow-origin" not in head
    assert b"\r\nx-kept: yes" in head
    assert head.count(b"\r\nvary: origin") == 1
    good = raw(gw, b"GET /cors-handler HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\nX-API-Key: " +
               key.encode() + b"\r\nOrigin: https://app.yourdomain.com\r\nConnection: close\r\n\r\n")
    head = good.partition(b"\r\n\r\n")[0].lower()
    assert head.count(b"\r\naccess-control-allow-origin: https://app.yourdomain.com") == 1
    assert head.count(b"access-control-allow-origin") == 1
    assert head.count(b"access-control-allow-credentials") == 1


def test_cors_is_off_when_no_origins_are_set(build_dir, kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [], PLANS)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_CORS_ORIGINS=None).start()
    try:
        pre = requests.options(gw.url + "/anything", timeout=5, headers={
            "Origin": "https://yourdomain.com", "Access-Control-Request-Method": "POST"})
        assert "Access-Control-Allow-Origin" not in pre.headers
        assert "Vary" not in pre.headers
        refused = call(gw, "/x", None, headers={"Origin": "https://yourdomain.com"})
        assert refused.status_code == 403
        assert "Access-Control-Allow-Origin" not in refused.headers
        assert "Vary" not in refused.headers
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


# ---- keys file reload -----------------------------------------------------------------------

def test_revoked_key_stops_working_within_two_seconds_and_a_corrupt_file_keeps_old_keys(env):
    gw, keys, path = env["gw"], env["keys"], env["keys_file"]
    victim = keys["second"]
    assert call(gw, "/r", victim["value"]).status_code == 200
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    changed = [dict(k, revoked=now, enabled=False) if k is victim else k for k in keys.values()]
    write_keys_file(path, changed, PLANS)
    t0 = time.monotonic()
    while call(gw, "/r", victim["value"]).status_code != 403:
        assert time.monotonic() - t0 < 2.0, "revocation not in force after 2 s"
        time.sleep(0.05)

    errors_before = gw.metric('sluice_gateway_keys_reloads_total{result="error"}')
    with open(f"{path}.tmp", "w") as f:
        f.write('{"version": 1, "keys": [ {"id": "broken"')
    os.replace(f"{path}.tmp", path)
    t0 = time.monotonic()
    while gw.metric('sluice_gateway_keys_reloads_total{result="error"}') <= errors_before:
        assert time.monotonic() - t0 < 3.0, "the corrupt file was never noticed"
        time.sleep(0.05)
    assert call(gw, "/r", keys["ok"]["value"]).status_code == 200
    assert call(gw, "/r", victim["value"]).status_code == 403
    assert "keys file" in gw.log_text()
    write_keys_file(path, changed, PLANS)  # leave a good file for the other tests


# ---- audit and secrecy -----------------------------------------------------------------------

def test_header_names_match_in_any_case_and_the_first_of_a_name_counts(env):
    gw, key = env["gw"], env["keys"]["ok"]

    def ask(*headers):
        head = b"GET /first-wins HTTP/1.1\r\nHost: a\r\n" + b"".join(h + b"\r\n" for h in headers)
        out = raw(gw, head + b"Connection: close\r\n\r\n")
        status = int(out.split(b" ", 2)[1])
        rid = re.search(rb"(?m)^x-amzn-RequestId: (\S+)", out).group(1).decode()
        return status, rid

    good, bad = b"x-API-kEY: " + key["value"].encode(), b"X-Api-Key: sk_not-a-key"
    status, rid = ask(good, bad, b"USER-agent: first/1", b"User-Agent: second/2",
                      b"TRACEPARENT: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert status == 200
    [e] = [e for e, _ in env["worker"].received if e["id"] == rid]
    assert e["user_agent"] == "first/1"
    assert e["trace"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")
    assert ask(bad, good, b"User-Agent: t")[0] == 403


def test_a_trusted_proxy_forwarded_for_lines_give_the_client_address(build_dir, kafka_bootstrap,
                                                                      tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [], PLANS)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_TRUSTED_PROXIES="127.0.0.1/32").start()
    try:
        # The client forged the first line; the trusted proxy appended its own: that one wins.
        out = raw(gw, b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n"
                      b"x-FORWARDED-for: 203.0.113.9\r\nX-Forwarded-For: 198.51.100.1\r\n"
                      b"Connection: close\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 403 ")
        rid = re.search(rb"(?m)^x-amzn-RequestId: (\S+)", out).group(1).decode()
        recs = [json.loads(m.value()) for m in consume_all(kafka_bootstrap, prefix + "audit")]
        [rec] = [r for r in recs if r["request_id"] == rid]
        assert rec["source_ip"] == "198.51.100.1"
        assert "SLUICE_TRUSTED_PROXIES is empty" not in gw.log_text()
    finally:
        assert gw.stop() == 0


def test_forwarded_for_without_trusted_proxies_is_ignored_with_one_warning(build_dir,
                                                                         kafka_bootstrap,
                                                                         tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [], PLANS)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file).start()
    try:
        for _ in range(2):
            out = raw(gw, b"GET /x HTTP/1.1\r\nHost: a\r\nUser-Agent: t\r\n"
                          b"X-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n")
            assert out.startswith(b"HTTP/1.1 403 ")
        assert gw.log_text().count("SLUICE_TRUSTED_PROXIES is empty") == 1
    finally:
        assert gw.stop() == 0


def test_audit_records_one_line_per_request_with_the_design_fields(env, kafka_bootstrap):
    gw, key = env["gw"], env["keys"]["ok"]
    r = call(gw, "/audited?x=1", key["value"], headers={"User-Agent": "audit-it"})
    denied = call(gw, "/audited", None)
    rid, did = r.headers["x-amzn-RequestId"], denied.headers["x-amzn-RequestId"]
    deadline = time.monotonic() + 10
    records, stamps = {}, {}
    while time.monotonic() < deadline and not (rid in records and did in records):
        for m in consume_all(kafka_bootstrap, env["prefix"] + "audit"):
            rec = json.loads(m.value())
            records[rec["request_id"]] = rec
            stamps[rec["request_id"]] = m.timestamp()
            assert m.key().decode() == rec["request_id"]
    ok, no = records[rid], records[did]
    # The Kafka timestamp is the record's own (the request's arrival), to the millisecond.
    when = datetime.datetime.strptime(ok["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert stamps[rid] == (TIMESTAMP_CREATE_TIME, round(when.timestamp() * 1000))
    assert set(ok) == {"timestamp", "request_id", "trace_id", "method", "path", "route", "status",
                       "latency_ms", "source_ip", "user_agent", "api_key_id", "plan", "waf",
                       "bytes_in", "bytes_out", "error", "stage", "gateway"}
    assert (ok["method"], ok["path"], ok["route"], ok["status"]) == ("GET", "/audited", "/{proxy+}", 200)
    assert (ok["source_ip"], ok["user_agent"], ok["api_key_id"], ok["plan"]) == (
        "127.0.0.1", "audit-it", key["id"], "default")
    assert ok["waf"] == {"action": "ALLOW", "rule": "Default_Action", "labels": []}
    assert ok["bytes_out"] == len(r.content) and ok["bytes_in"] == 0
    assert ok["error"] is None and ok["stage"] == "production" and ok["gateway"].endswith("/0")
    assert re.match(r"^[0-9a-f]{32}$", ok["trace_id"]) and ok["latency_ms"] >= 0
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", ok["timestamp"])
    assert (no["status"], no["error"], no["api_key_id"]) == (403, "forbidden", None)


def test_audit_record_escapes_request_strings_and_cuts_them_at_2048_bytes(env, kafka_bootstrap):
    gw = env["gw"]
    long_path = "/" + "p" * 3000
    ua = b'say "hi" \\ back\tslash \xc3\xa9'
    r = call(gw, long_path, None, headers={"User-Agent": ua})
    assert r.status_code == 403
    rid = r.headers["x-amzn-RequestId"]
    deadline, rec = time.monotonic() + 10, None
    while time.monotonic() < deadline and rec is None:
        for m in consume_all(kafka_bootstrap, env["prefix"] + "audit"):
            got = json.loads(m.value())  # valid JSON whatever the request held
            if got["request_id"] == rid:
                rec = got
    assert rec is not None
    assert rec["path"] == long_path[:2048]
    assert rec["user_agent"] == 'say "hi" \\ back\tslash \u00e9'
    # The seed's web ACL blocks a path over 1,024 bytes: a record with a label.
    assert (rec["status"], rec["error"], rec["api_key_id"], rec["plan"]) == (403, "waf_blocked", None, None)
    assert rec["waf"] == {"action": "BLOCK", "rule": "AWSManagedRulesCommonRuleSet",
                          "labels": ["awswaf:managed:aws:core-rule-set:SizeRestrictions_URIPath"]}


def _batch_codecs(log_file):
    """The compression codec of every record batch in a Kafka log segment (v2 batch header:
    base offset 8, length 4, leader epoch 4, magic 1, crc 4, attributes 2; codec = attributes & 7)."""
    data, codecs, pos = log_file.read_bytes(), [], 0
    while pos + 23 <= len(data):
        length = int.from_bytes(data[pos + 8:pos + 12], "big")
        if length == 0 or pos + 12 + length > len(data):
            break
        assert data[pos + 16] == 2, "record batch magic"
        codecs.append(int.from_bytes(data[pos + 21:pos + 23], "big") & 7)
        pos += 12 + length
    return codecs


def test_audit_records_go_lz4_compressed_to_one_partition_per_window(env, kafka_bootstrap, stack_dir):
    """docs/gateway.md, Kafka: audit records of a 100 ms window share a partition (the key alone
    would spread 20 requests over the module's 6 audit partitions), and the batches the broker
    stores are LZ4 (codec 3)."""
    gw = env["gw"]
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        rs = list(pool.map(lambda i: call(gw, f"/sticky-audit/{i}", None), range(20)))
    elapsed = time.monotonic() - start
    ids = {r.headers["x-amzn-RequestId"] for r in rs}
    assert [r.status_code for r in rs] == [403] * 20
    # An interval of `elapsed` seconds touches at most floor(elapsed / 0.1) + 2 windows.
    windows = int(elapsed / 0.1) + 2
    assert windows <= 3, f"the burst took {elapsed:.3f} s: too slow to say anything"
    parts, deadline = {}, time.monotonic() + 10
    while time.monotonic() < deadline and len(parts) < len(ids):
        for m in consume_all(kafka_bootstrap, env["prefix"] + "audit"):
            rid = json.loads(m.value())["request_id"]
            if rid in ids:
                parts[rid] = m.partition()
    assert set(parts) == ids
    assert len(set(parts.values())) <= windows, parts
    data_dir = stack_dir / "kafka" / "data"
    codecs = [c for d in data_dir.glob(env["prefix"] + "audit-*") for f in d.glob("*.log")
              for c in _batch_codecs(f)]
    assert codecs and set(codecs) == {3}, codecs


def test_audit_record_the_broker_refuses_is_counted_and_logged(build_dir, kafka_bootstrap, tmp_path):
    """The audit producer hears only of losses (docs/gateway.md, Kafka): an audit topic whose
    max.message.bytes no batch fits makes every record fail, and each one is counted in
    sluice_gateway_audit_errors_total, while the answers go out as before. The ERROR line is
    written at most once per 10 s: the first loss logs, the next two (well within 10 s) do not."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix, audit_partitions=1, audit_config={"max.message.bytes": "64"})
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [], PLANS)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file).start()
    try:
        assert gw.metric("sluice_gateway_audit_errors_total") == 0
        for i in range(3):
            assert call(gw, f"/refused/{i}", None).status_code == 403
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and gw.metric("sluice_gateway_audit_errors_total") < 3:
            time.sleep(0.1)
        assert gw.metric("sluice_gateway_audit_errors_total") == 3
        log = gw.log_text()
        assert log.count("audit record lost:") == 1
        assert ("audit record lost: Broker: Message size too large (0 more lost since the last "
                "such line, logged at most every 10 s)") in log
        assert call(gw, "/refused/after", None).status_code == 403
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
    assert list(consume_all(kafka_bootstrap, prefix + "audit")) == []


def test_no_key_value_appears_in_logs_metrics_audit_or_kafka(env, kafka_bootstrap):
    gw = env["gw"]
    secrets_ = [k["value"] for k in env["keys"].values()]
    for s in secrets_:  # every key, valid or not, has been presented at least once now
        call(gw, "/secrecy", s)
    # Wait until the audit records of those requests are on the topic, then look.
    deadline = time.monotonic() + 30
    while sum(json.loads(m.value()).get("path") == "/secrecy"
              for m in consume_all(kafka_bootstrap, env["prefix"] + "audit")) < len(secrets_):
        assert time.monotonic() < deadline, "the audit records of /secrecy never arrived"
        time.sleep(0.2)
    haystacks = {"log": gw.log_text(), "metrics": gw.metrics()}
    for topic in ("requests", "replies", "audit"):
        msgs = consume_all(kafka_bootstrap, env["prefix"] + topic)
        assert msgs, topic
        blob = b"".join((m.value() or b"") + (m.key() or b"") +
                        b"".join(k.encode() + (v or b"") for k, v in (m.headers() or []))
                        for m in msgs)
        haystacks[topic] = blob.decode("latin-1")
    for where, text in haystacks.items():
        for s in secrets_:
            assert s not in text, f"a key value leaked into {where}"
