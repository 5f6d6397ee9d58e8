"""Several gateway replicas: replies reach only the replica that asked, and usage plans held in
Redis are one limit across replicas; the token bucket's burst and rate, measured."""
import concurrent.futures
import json
import time
import uuid

import pytest
import requests

from harness import (FakeWorker, Gateway, create_topics, new_key, new_prefix, reply_envelope,
                     write_keys_file)


def answer(env, msg):
    body = json.dumps({"id": env["id"], "path": env["path"],
                       "partition": env["reply_partition"]}).encode()
    return reply_envelope(env, 200, {"Content-Type": ["application/json"]}, body)


@pytest.fixture
def topics(kafka_bootstrap):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix, replies_partitions=2)
    worker = FakeWorker(kafka_bootstrap, prefix, answer).start()
    yield prefix
    worker.stop()


def start_gateways(build_dir, tmp_path, bootstrap, prefix, keys_file, n, **settings):
    gws = [Gateway(build_dir, tmp_path, bootstrap, prefix, keys_file, index=i, **settings)
           for i in range(n)]
    for g in gws:
        g.start()
    return gws


def stop_all(gws):
    codes = [g.stop() for g in gws]
    assert codes == [0] * len(gws), "\n".join(g.log_text()[-2000:] for g in gws)


def test_replies_reach_only_the_replica_that_asked(build_dir, tmp_path, kafka_bootstrap, topics):
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    gws = start_gateways(build_dir, tmp_path, kafka_bootstrap, topics, keys_file, 2)
    try:
        def one(i):
            g = gws[i % 2]
            path = f"/r/{i}/{uuid.uuid4().hex[:6]}"
            r = requests.get(g.url + path, headers={"X-API-Key": value}, timeout=20)
            return i, path, r

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(100)))
        for i, path, r in results:
            assert r.status_code == 200, (i, r.status_code, r.text)
            body = r.json()
            assert body == {"id": r.headers["x-amzn-RequestId"], "path": path, "partition": i % 2}
        for g in gws:
            assert g.metric("sluice_gateway_late_replies_total") == 0
            assert g.metric('sluice_gateway_requests_total{route="ANY /{proxy+}",status="200"}') == 50
    finally:
        stop_all(gws)


def test_two_replicas_sharing_redis_enforce_one_quota(build_dir, tmp_path, kafka_bootstrap,
                                                      topics, redis_url):
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest, "plan": "fifty"}],
                    {"fifty": {"throttle": {"rate": 10000, "burst": 10000},
                               "quota": {"limit": 50, "period": "DAY"}}})
    gws = start_gateways(build_dir, tmp_path, kafka_bootstrap, topics, keys_file, 2,
                         SLUICE_REDIS_URL=redis_url)
    try:
        def one(i):
            return requests.get(gws[i % 2].url + f"/q/{i}", headers={"X-API-Key": value},
                                timeout=20)

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            results = list(pool.map(one, range(80)))
        ok = [r for r in results if r.status_code == 200]
        limited = [r for r in results if r.status_code == 429]
        assert len(ok) == 50 and len(limited) == 30, [r.status_code for r in results]
        assert {r.json()["message"] for r in limited} == {"Limit Exceeded"}
        assert {r.headers["x-amzn-ErrorType"] for r in limited} == {"LimitExceededException"}
        # Both replicas answered some of each: the limit really was shared, not split.
        per_gateway = [sum(1 for i, r in enumerate(results) if i % 2 == k and r.status_code == 200)
                       for k in (0, 1)]
        assert all(n > 0 for n in per_gateway)
    finally:
        stop_all(gws)


def test_token_bucket_allows_the_burst_then_the_rate(build_dir, tmp_path, kafka_bootstrap,
                                                     topics):
    """Burst 10 at once, then 20/s. The burst is checked on a key whose plan refills one token
    a second, so 15 requests sent at once get exactly 10 answers (at most one more per whole
    second the sending took, on a machine loaded enough to need it). The rate is measured over 3 s after
    the burst: 60 allowed, +-3 (one token of rounding at each end of the window plus scheduling
    jitter)."""
    rate, burst, window = 20, 10, 3.0
    value, kid, digest = new_key()
    burst_value, burst_kid, burst_digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest, "plan": "bucket"},
                                {"id": burst_kid, "hash": burst_digest, "plan": "burst"}],
                    {"bucket": {"throttle": {"rate": rate, "burst": burst}},
                     "burst": {"throttle": {"rate": 1, "burst": burst}}})
    # An empty web ACL: the seed's IP rate limit (2000 per 5 minutes) would otherwise answer
    # 403 to the thousands of requests this test makes from one address.
    acl = tmp_path / "acl.json"
    acl.write_text('{"DefaultAction": {"Allow": {}}, "Rules": []}')
    [gw] = start_gateways(build_dir, tmp_path, kafka_bootstrap, topics, keys_file, 1,
                          SLUICE_WAF_ACL_FILE=acl)
    try:
        s = requests.Session()
        s.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=burst + 5))
        hdr = {"X-API-Key": burst_value}
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=burst + 5) as pool:
            first = list(pool.map(
                lambda i: s.get(gw.url + f"/b/{i}", headers=hdr, timeout=20).status_code,
                range(burst + 5)))
        refilled = int(time.monotonic() - started)  # at most this many tokens came back
        ok = first.count(200)
        assert first.count(429) == len(first) - ok, first
        assert burst <= ok <= burst + refilled, (ok, refilled)
        s.headers["X-API-Key"] = value
        while s.get(gw.url + "/b", timeout=20).status_code == 200:
            pass  # this key's own burst, spent before the rate is measured
        # Four clients keep asking for the whole window, so the bucket, not the client's speed
        # (a request that is let through makes a Kafka round trip), decides what passes.
        t0 = time.monotonic()

        def hammer(_):
            ok = 0
            while time.monotonic() - t0 < window:
                r = s.get(gw.url + "/b", timeout=20)
                assert r.status_code in (200, 429)
                ok += r.status_code == 200
            return ok

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            allowed = sum(pool.map(hammer, range(4)))
        assert abs(allowed - rate * window) <= 3, allowed
    finally:
        stop_all([gw])


def test_a_second_replica_on_the_same_index_makes_the_first_stop(build_dir, tmp_path,
                                                                 kafka_bootstrap, topics):
    """Two live replicas must never share a replies partition: the one started later takes the
    index, the older turns unready, drains and exits, saying why."""
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    first = Gateway(build_dir, tmp_path, kafka_bootstrap, topics, keys_file, index=1).start()
    second = None
    try:
        assert requests.get(first.url + "/a", headers={"X-API-Key": value},
                            timeout=20).status_code == 200
        time.sleep(2)  # the first replica's claim is in the group before the second one starts
        second = Gateway(build_dir, tmp_path, kafka_bootstrap, topics, keys_file, index=1)
        second.start()
        deadline = time.monotonic() + 30
        while first.proc.poll() is None:
            assert time.monotonic() < deadline, first.log_text()[-3000:]
            time.sleep(0.2)
        assert "gateway index 1 was claimed by another replica" in first.log_text()
        r = requests.get(second.url + "/b", headers={"X-API-Key": value}, timeout=20)
        assert r.status_code == 200, r.text
        assert r.json()["partition"] == 1
        assert requests.get(second.admin + "/readyz", timeout=5).status_code == 200
        assert "claimed by another replica" not in second.log_text()
    finally:
        first.stop()
        if second:
            assert second.stop() == 0, second.log_text()[-3000:]
