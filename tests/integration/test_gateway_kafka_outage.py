"""Kafka goes away under a running gateway: fast 503s, then recovery without a restart.

This test stops and restarts the stack's broker (its data is kept), so it restores Kafka
before it returns, whatever happens."""
import subprocess
import time

import pytest
import requests

from harness import FakeWorker, Gateway, create_topics, echo_handler, new_key, new_prefix, write_keys_file


def stack(root_dir, *args):
    p = subprocess.run([str(root_dir / "scripts" / "stack"), *args], capture_output=True,
                       text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-3000:]


def test_kafka_down_gives_fast_503_and_recovery_needs_no_restart(build_dir, root_dir, tmp_path,
                                                                  kafka_bootstrap):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    value, kid, digest = new_key()
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    worker = FakeWorker(kafka_bootstrap, prefix, echo_handler).start()
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file).start()
    s = requests.Session()
    s.headers["X-API-Key"] = value
    try:
        assert s.get(gw.url + "/before", timeout=10).status_code == 200
        stack(root_dir, "stop", "kafka")
        slowest = 0.0
        for i in range(5):
            t0 = time.monotonic()
            r = s.get(gw.url + f"/during/{i}", timeout=10)
            slowest = max(slowest, time.monotonic() - t0)
            assert r.status_code == 503, r.text
            assert r.json() == {"message": "Service Unavailable"}
            assert r.headers["x-amzn-ErrorType"] == "ServiceUnavailableException"
            assert r.headers["Retry-After"] == "1"
        assert slowest <= 1.0, f"a 503 took {slowest:.2f}s"
        # Still ready: the replica stays in the load balancer and answers 503 + Retry-After,
        # rather than every replica dropping out together and clients meeting refused
        # connections.
        assert requests.get(gw.admin + "/readyz", timeout=5).status_code == 200
        assert gw.metric("sluice_gateway_kafka_unavailable_total") >= 5
    finally:
        stack(root_dir, "up", "kafka")
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            status = s.get(gw.url + "/after", timeout=30).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200, gw.log_text()[-3000:]
        assert requests.get(gw.admin + "/readyz", timeout=5).status_code == 200
    finally:
        code = gw.stop()
        worker.stop()
    assert code == 0, gw.log_text()[-3000:]
