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

from harness import Gateway, Service, create_topics, new_prefix, write_keys_file
from test_worker import WorkerProcess


def plugin(build_dir, name):
    return str(build_dir / "services" / "worker" / f"plugin-{name}.so")


def routes(tmp_path, build_dir, name):
    f = tmp_path / f"routes-{name}.json"
    f.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": False, "handler": "echo"},
        {"method": "GET", "path": "/p", "api_key_required": False, "handler": "plugin",
         "plugin": plugin(build_dir, name)}]}))
    return f


def lines(path):
    """The lifecycle plugin's log: (what, pid) per line."""
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
def lifecycle(build_dir, kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    keys_file = tmp_path / "keys.json"
    write_keys_file(keys_file, [])
    rf = routes(tmp_path, build_dir, "lifecycle")
    log = tmp_path / "lifecycle.log"
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=rf, SLUICE_REQUEST_TIMEOUT_MS=20000).start()

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
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
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
    for what, pid in got:
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
