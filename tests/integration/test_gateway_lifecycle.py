"""What the gateway promises about its own life: a SIGTERM drains the requests in flight, the
in-flight cap answers 503 with Retry-After, and a Redis that is gone leaves limits to the
replica's memory while requests keep being served."""
import concurrent.futures
import json
import signal
import threading
import time

import pytest
import requests

from harness import FakeWorker, Gateway, create_topics, new_key, new_prefix, reply_envelope, \
    write_keys_file


def slow_handler(delay):
    def handler(env, msg):
        time.sleep(delay)
        body = json.dumps({"path": env["path"]}).encode()
        return reply_envelope(env, 200, {"Content-Type": ["application/json"]}, body)
    return handler


@pytest.fixture
def setup(kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    workers = []

    def worker(delay):
        w = FakeWorker(kafka_bootstrap, prefix, slow_handler(delay)).start()
        workers.append(w)
        return w

    yield {"prefix": prefix, "key": value, "keys_file": keys_file, "worker": worker}
    for w in workers:
        w.stop()


def test_sigterm_drains_the_requests_in_flight_and_turns_unready(build_dir, tmp_path,
                                                                 kafka_bootstrap, setup):
    setup["worker"](0.4)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, setup["prefix"], setup["keys_file"]).start()
    headers = {"X-API-Key": setup["key"]}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(requests.get, f"{gw.url}/drain/{i}", headers=headers, timeout=30)
                for i in range(4)]
        time.sleep(0.3)  # every request is in flight: the worker answers one per 0.4 s
        gw.proc.send_signal(signal.SIGTERM)
        # The signal reaches the loop at its next turn: a /readyz answered in the same turn
        # may still say ready. Unready must follow at once, while the drain (1.6 s) runs.
        deadline = time.monotonic() + 1.2
        unready = None
        while time.monotonic() < deadline:
            try:
                unready = requests.get(gw.admin + "/readyz", timeout=1)
                if unready.status_code == 503:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        answers = [f.result() for f in futs]
    assert unready is not None and unready.status_code == 503, unready
    assert unready.json()["reason"] == "shutting down"
    for i, r in enumerate(answers):
        assert r.status_code == 200, r.text
        assert r.json() == {"path": f"/drain/{i}"}
        assert r.headers["Connection"].lower() == "close"
    assert gw.proc.wait(timeout=30) == 0, gw.log_text()[-3000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{gw.url}/after", headers=headers, timeout=5)


def test_the_in_flight_cap_answers_503_with_retry_after(build_dir, tmp_path, kafka_bootstrap,
                                                        setup):
    setup["worker"](1.0)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, setup["prefix"], setup["keys_file"],
                 SLUICE_MAX_IN_FLIGHT=1).start()
    headers = {"X-API-Key": setup["key"]}
    try:
        first = {}
        t = threading.Thread(target=lambda: first.update(
            r=requests.get(f"{gw.url}/one", headers=headers, timeout=30)))
        t.start()
        time.sleep(0.4)  # the first request holds the one place
        second = requests.get(f"{gw.url}/two", headers=headers, timeout=30)
        t.join()
        assert second.status_code == 503, second.text
        assert second.json() == {"message": "Service Unavailable"}
        assert second.headers["x-amzn-ErrorType"] == "ServiceUnavailableException"
        assert second.headers["Retry-After"] == "1"
        assert first["r"].status_code == 200
        assert requests.get(f"{gw.url}/three", headers=headers, timeout=30).status_code == 200
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]


def test_requests_are_served_from_memory_limits_while_redis_is_unreachable(
        build_dir, tmp_path, kafka_bootstrap, setup):
    setup["worker"](0)
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, setup["prefix"], setup["keys_file"],
                 SLUICE_REDIS_URL="redis://127.0.0.1:1", SLUICE_REDIS_CONNECT_TIMEOUT_MS=200)
    gw.start()
    headers = {"X-API-Key": setup["key"]}
    try:
        for i in range(5):
            r = requests.get(f"{gw.url}/mem/{i}", headers=headers, timeout=30)
            assert r.status_code == 200, r.text
            assert "RateLimit-Policy" in r.headers  # the limits were checked, in memory
        text = requests.get(gw.admin + "/metrics", timeout=5).text
        fallbacks = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                        if line.startswith("sluice_gateway_ratelimit_fallbacks_total{"))
        assert fallbacks >= 5, text
    finally:
        assert gw.stop() == 0, gw.log_text()[-3000:]
