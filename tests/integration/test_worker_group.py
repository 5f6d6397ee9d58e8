"""sluice-worker as a group: two processes share the load and a stop loses nothing; a worker
killed with SIGKILL under steady load loses no request (issue 4, reconciliation)."""
import collections
import concurrent.futures
import os
import threading
import time

import requests
from confluent_kafka import Consumer

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess


def setup(build_dir, kafka_bootstrap, tmp, timeout_ms):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    routes_file = tmp / "routes.json"
    routes_file.write_text('{"routes":[{"method":"ANY","path":"/{proxy+}","api_key_required":true,'
                           '"handler":"echo"}]}')
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file, SLUICE_ROUTES_FILE=routes_file,
                 SLUICE_REQUEST_TIMEOUT_MS=timeout_ms).start()
    return prefix, value, routes_file, gw


def get(gw, key, path):
    r = requests.get(gw.url + path, headers={"X-API-Key": key}, timeout=60)
    return r.status_code, r.headers.get("x-amzn-RequestId"), r.text


def ok_count(w):
    return w.metric('sluice_worker_executions_total{route="ANY /{proxy+}",outcome="ok"}')


def test_two_workers_share_the_load_and_a_stop_loses_nothing(build_dir, kafka_bootstrap, tmp_path):
    """With the worker's default session timeout (10 s; static members do not leave the group
    when they stop), the stopped worker's partitions move to the other well within the
    gateway's deadline (30 s here), so every request after the stop is answered 200."""
    prefix, key, routes_file, gw = setup(build_dir, kafka_bootstrap, tmp_path, 30000)
    a = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file, name="a",
                      SLUICE_KAFKA_SESSION_TIMEOUT_MS=None).start()
    b = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file, name="b",
                      SLUICE_KAFKA_SESSION_TIMEOUT_MS=None).start()
    try:
        # Both members must hold partitions before the load starts.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not ("partitions assigned: 2" in a.log_text()
                                                   and "partitions assigned: 2" in b.log_text()):
            time.sleep(0.2)
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda i: get(gw, key, f"/share/{i}"), range(80)))
        assert all(s == 200 for s, _, _ in res), [r for r in res if r[0] != 200][:3]
        assert ok_count(a) > 0 and ok_count(b) > 0
        assert ok_count(a) + ok_count(b) == 80
        assert b.stop() == 0
        stopped = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            res = list(ex.map(lambda i: get(gw, key, f"/after/{i}"), range(40)))
        assert all(s == 200 for s, _, _ in res), [r for r in res if r[0] != 200][:3]
        # b's partitions waited for the session timeout, not for librdkafka's 45 s default.
        assert time.monotonic() - stopped < 25
        assert ok_count(a) >= 40 + 1
    finally:
        a.stop()
        b.stop()
        assert gw.stop() == 0


def consume_keys(bootstrap, topic, idle=3.0, timeout=60):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "t-" + os.urandom(4).hex(),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    keys = collections.Counter()
    last = time.monotonic()
    end = time.monotonic() + timeout
    while time.monotonic() < end and time.monotonic() - last < idle:
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        keys[m.key().decode()] += 1
        last = time.monotonic()
    c.close()
    return keys


def test_sigkill_under_steady_load_loses_no_request(build_dir, kafka_bootstrap, tmp_path):
    total, rate, kill_at = 2000, 200, 700
    prefix, key, routes_file, gw = setup(build_dir, kafka_bootstrap, tmp_path, 25000)
    w = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file, name="k",
                      SLUICE_WORKER_CONCURRENCY=4).start()
    restarted = {}

    def restart():
        time.sleep(0.5)
        restarted["w"] = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                                       name="k", SLUICE_WORKER_CONCURRENCY=4).start()

    results = [None] * total
    try:
        with concurrent.futures.ThreadPoolExecutor(128) as ex:
            futs = []
            t0 = time.monotonic()
            for i in range(total):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if i == kill_at:
                    w.proc.kill()
                    w.proc.wait()
                    threading.Thread(target=restart).start()
                futs.append((i, ex.submit(get, gw, key, f"/load/{i}")))
            for i, f in futs:
                results[i] = f.result()
        assert "w" in restarted
        statuses = collections.Counter(s for s, _, _ in results)
        replies = consume_keys(kafka_bootstrap, prefix + "replies")
        dlq = consume_keys(kafka_bootstrap, prefix + "dlq", idle=1.0)
        not_ok = [(s, rid) for s, rid, _ in results if not 200 <= s < 300]
        missing = [x for x in not_ok if x[1] not in replies and x[1] not in dlq]
        twice = sum(1 for _, rid, _ in results if replies.get(rid, 0) > 1)
        print(f"\nreconciliation: statuses {dict(statuses)}, not 2xx {len(not_ok)}, "
              f"dead-lettered {len(dlq)}, executed twice {twice}, missing {len(missing)}")
        assert sum(statuses.values()) == total  # every request got an HTTP answer
        assert missing == []
        # Executed twice: only what the killed worker finished after its last offset commit.
        # It commits every second (auto.commit.interval.ms = 1000), so at most one second of
        # the offered rate, plus the SLUICE_WORKER_CONCURRENCY (4) attempts that were running
        # when that commit was taken. (A run here measured 130.)
        assert twice <= rate * 1 + 4, twice
        assert all(rid in replies for s, rid, _ in results if s == 200)
    finally:
        if "w" in restarted:
            assert restarted["w"].stop() == 0
        assert gw.stop() == 0
