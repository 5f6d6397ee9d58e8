"""What the worker promises about plugins and its own stop: a plugin of another ABI version or
whose init fails is never run, a plugin's init and shutdown run once per handler process, and
a SIGTERM lets running work finish within SLUICE_SHUTDOWN_GRACE_MS, kills it after, and
commits the offsets of what finished."""
import collections
import concurrent.futures
import json
import signal
import threading
import time

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition

from harness import (Gateway, Service, consume_all, create_topics, end_offsets, new_prefix,
                     write_keys_file)
from test_worker import WorkerProcess


def plugin(build_dir, name):
    return str(build_dir / "services" / "worker" / f"plugin-{name}.so")


def routes(tmp_path, build_dir, name, tag="", **route):
    f = tmp_path / f"routes-{name}{tag}.json"
    f.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": False, "handler": "echo"},
        {"method": "GET", "path": "/p", "api_key_required": False, "handler": "plugin",
         "plugin": plugin(build_dir, name), **route}]}))
    return f


def lines(path):
    """The lifecycle plugin's log: (what, pid, wall-clock ms) per line."""
    if not path.exists():
        return []
    return [tuple(l.split()) for l in path.read_text().splitlines()]


@pytest.mark.parametrize("name,error", [
    ("badabi", "not a version 1 handler"), ("initfail", "init failed (-5)")])
def test_a_plugin_of_another_abi_or_with_a_failing_init_is_never_run(build_dir, kafka_bootstrap,
                                                                      tmp_path, name, error):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    w = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix,
                      routes(tmp_path, build_dir, name))
    Service.start(w)  # the process only: it must not become ready
    try:
        deadline = time.monotonic() + 6
        ready = None
        while time.monotonic() < deadline and w.proc.poll() is None:
            try:
                ready = requests.get(w.admin + "/readyz", timeout=1)
                assert ready.status_code == 503, ready.text
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert w.proc.poll() is None, w.log_text()[-3000:]  # it keeps trying, with backoff
        assert ready is not None and ready.json() == {"ready": False,
                                                      "reason": "handler processes starting"}
        log = w.log_text()
        refused = f"handler child cannot start: plugin {plugin(build_dir, name)}: {error}"
        # Every attempt to start a child says why; the backoff keeps them few.
        assert 2 <= log.count(refused) <= 20, log[-3000:]
        assert log.count("exited (status 3, signal 0)") == log.count(refused)
    finally:
        assert w.stop() == 0, w.log_text()[-3000:]


@pytest.fixture
def lifecycle(build_dir, kafka_bootstrap, tmp_path, request):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [])
    # A test may set the worker's and the gateway's route (timeout_ms) and the gateway's
    # deadline.
    wroute, groute, deadline_ms = getattr(request, "param", ({}, {}, 20000))
    rf = routes(tmp_path, build_dir, "lifecycle", **wroute)
    log = tmp_path / "lifecycle.log"
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes(tmp_path, build_dir, "lifecycle", "-gw", **groute),
                 SLUICE_REQUEST_TIMEOUT_MS=deadline_ms).start()

    def worker(**settings):
        return WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, rf,
                             SLUICE_TEST_LIFECYCLE_LOG=log, **settings).start()
    yield {"gw": gw, "worker": worker, "log": log, "prefix": prefix, "bootstrap": kafka_bootstrap}
    assert gw.stop() == 0, gw.log_text()[-3000:]


def committed_equals_end(st):
    """True when the worker group's committed offset of every requests partition is the end."""
    c = Consumer({"bootstrap.servers": st["bootstrap"], "group.id": st["prefix"] + "worker",
                  "enable.auto.commit": False})
    try:
        topic = st["prefix"] + "requests"
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        committed = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
        ends = end_offsets(st["bootstrap"], topic)
        return {p: max(o, 0) for p, o in committed.items()} == ends, committed, ends
    finally:
        c.close()


def test_init_and_shutdown_run_once_per_handler_process(lifecycle):
    w = lifecycle["worker"](SLUICE_WORKER_CONCURRENCY=2)
    for i in range(4):
        r = requests.get(lifecycle["gw"].url + "/p", timeout=30)
        assert r.status_code == 200 and r.json() == {"lifecycle": True}, r.text
    assert w.stop() == 0, w.log_text()[-3000:]
    got = lines(lifecycle["log"])
    per = collections.defaultdict(list)
    for what, pid, _ in got:
        per[pid].append(what)
    assert len(per) == 2, got  # one handler process per unit of concurrency
    assert sum(whats.count("handle") for whats in per.values()) == 4
    for pid, whats in per.items():
        # init first and once, shutdown last and once, on the clean stop.
        assert whats[0] == "init" and whats[-1] == "shutdown", (pid, whats)
        assert whats.count("init") == 1 and whats.count("shutdown") == 1, (pid, whats)


def test_sigterm_lets_running_work_finish_within_the_grace_and_commits_it(lifecycle):
    w = lifecycle["worker"](SLUICE_WORKER_CONCURRENCY=2, SLUICE_SHUTDOWN_GRACE_MS=10000)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        futs = [ex.submit(requests.get, lifecycle["gw"].url + f"/p?sleep_ms=1500&i={i}",
                          timeout=30) for i in range(2)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and \
                [l[0] for l in lines(lifecycle["log"])].count("handle") < 2:
            time.sleep(0.02)
        t0 = time.monotonic()
        w.signal(signal.SIGTERM)
        answers = [f.result() for f in futs]
    code = w.proc.wait(30)
    took = time.monotonic() - t0
    assert code == 0, w.log_text()[-3000:]
    for r in answers:
        assert r.status_code == 200 and r.json() == {"lifecycle": True}, r.text
    assert took < 8, took  # the work's own 1.5 s and the stop, not the 10 s grace
    whats = [l[0] for l in lines(lifecycle["log"])]
    assert whats.count("done") == 2 and whats.count("shutdown") == 2, whats
    ok, committed, ends = committed_equals_end(lifecycle)
    assert ok, (committed, ends)


def test_sigterm_kills_work_still_running_after_the_grace(lifecycle):
    w = lifecycle["worker"](SLUICE_WORKER_CONCURRENCY=1, SLUICE_SHUTDOWN_GRACE_MS=500)
    # The client's answer comes from the gateway's deadline; it is not what is checked here.
    threading.Thread(target=lambda: requests.get(lifecycle["gw"].url + "/p?sleep_ms=8000",
                                                 timeout=30), daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and \
            [l[0] for l in lines(lifecycle["log"])].count("handle") < 1:
        time.sleep(0.02)
    t0 = time.monotonic()
    w.signal(signal.SIGTERM)
    code = w.proc.wait(30)
    took = time.monotonic() - t0
    assert code == 0, w.log_text()[-3000:]
    assert 0.4 < took < 4, took  # the 0.5 s grace, not the handler's 8 s
    whats = [l[0] for l in lines(lifecycle["log"])]
    # Killed, so it neither finished nor shut down cleanly.
    assert whats == ["init", "handle"], whats
    # Not finished, so its offset is not committed: the group reads it again later.
    ok, committed, ends = committed_equals_end(lifecycle)
    assert not ok and sum(ends.values()) - sum(max(o, 0) for o in committed.values()) == 1, \
        (committed, ends)


@pytest.mark.parametrize("lifecycle", [({"timeout_ms": 400}, {}, 2000)], indirect=True)
def test_a_routes_timeout_ms_bounds_each_attempt_and_no_attempt_starts_past_the_deadline(
        lifecycle):
    """The worker's route's 400 ms, not its 30 s handler timeout, ends each attempt; retries
    (10 allowed, 50 ms backoff) go on only while the gateway's 2 s deadline has not passed.
    (The gateway's copy of the route has no timeout_ms here: with one, it would be the
    request's deadline, as the next test shows.)"""
    w = lifecycle["worker"](SLUICE_WORKER_CONCURRENCY=1, SLUICE_MAX_ATTEMPTS=10,
                            SLUICE_RETRY_BACKOFF_MS=50)
    # The echo route first: the worker's first fetch must not eat into the 2 s measured below.
    assert requests.get(lifecycle["gw"].url + "/warm", timeout=30).status_code == 200
    sent_ms = int(time.time() * 1000)
    r = requests.get(lifecycle["gw"].url + "/p?sleep_ms=5000", timeout=30)
    assert r.status_code in (502, 504), r.text
    deadline = time.monotonic() + 10
    dlq = []
    while time.monotonic() < deadline and not dlq:
        dlq = [m for m in consume_all(lifecycle["bootstrap"], lifecycle["prefix"] + "dlq")
               if m.key() == r.headers["x-amzn-RequestId"].encode()]
    assert len(dlq) == 1
    h = dict(dlq[0].headers())
    starts = [int(ms) for what, _, ms in lines(lifecycle["log"]) if what == "handle"]
    n = len(starts)
    assert int(h["sluice-attempts"]) == n
    # Given up at the deadline: the last attempt cut short by it (timeout), or the retry due
    # after it found it passed (expired, not run). Only a timeout given up before the deadline
    # is answered by the worker (502); otherwise the gateway's deadline gives the 504.
    assert h["sluice-dlq-reason"] in (b"timeout", b"expired"), h
    assert r.status_code == 504 or h["sluice-dlq-reason"] == b"timeout", (r.status_code, h)
    # 2 s / (400 ms + backoff + a fresh handler process): a few attempts, never the ten.
    assert 3 <= n <= 5, starts
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(400 <= g < 1000 for g in gaps), gaps  # each ran its 400 ms, no more
    deadline_ms = int(h["sluice-deadline-ms"])
    assert sent_ms + 1900 < deadline_ms < sent_ms + 2500, (sent_ms, deadline_ms)
    assert all(s < deadline_ms for s in starts), (deadline_ms, starts)
    assert "done" not in [l[0] for l in lines(lifecycle["log"])]
    assert w.stop() == 0, w.log_text()[-3000:]


@pytest.mark.parametrize("lifecycle", [({"timeout_ms": 400}, {"timeout_ms": 400}, 20000)],
                         indirect=True)
def test_a_routes_timeout_ms_is_the_gateways_deadline_for_it(lifecycle):
    lifecycle["worker"](SLUICE_WORKER_CONCURRENCY=1)
    assert requests.get(lifecycle["gw"].url + "/warm", timeout=30).status_code == 200
    t0 = time.monotonic()
    sent_ms = int(time.time() * 1000)
    r = requests.get(lifecycle["gw"].url + "/p?sleep_ms=5000", timeout=30)
    took = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert r.json() == {"message": "Endpoint request timed out"}
    assert 0.35 < took < 2, took  # the route's 400 ms, not SLUICE_REQUEST_TIMEOUT_MS' 20 s
    rid = r.headers["x-amzn-RequestId"].encode()
    reqs = [m for m in consume_all(lifecycle["bootstrap"], lifecycle["prefix"] + "requests")
            if m.key() == rid]
    assert len(reqs) == 1
    deadline_ms = int(dict(reqs[0].headers())["sluice-deadline-ms"])
    assert sent_ms + 400 <= deadline_ms < sent_ms + 400 + 200, (sent_ms, deadline_ms)
