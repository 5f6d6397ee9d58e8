"""sluicectl dlq against the real stack: list, show, stats, jobs and replay (exactly once per
job, rate-limited, dry run, replay limit), its errors, and its progress bar on a terminal."""
import base64
import fnmatch
import json
import os
import pty
import random
import re
import select
import signal
import subprocess
import time
import uuid

import msgpack
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from harness import create_topics, end_offsets, new_prefix
from test_worker import WorkerProcess

DLQ_PARTITIONS = 2


def sluicectl_bin(build_dir):
    return str(build_dir / "tools" / "sluicectl" / "sluicectl")


def ctl(build_dir, bootstrap, prefix, *args, timeout=120, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SLUICE_TOPIC_PREFIX": prefix,
                "ASAN_OPTIONS": "detect_leaks=1"})
    env.update(extra)
    return subprocess.run([sluicectl_bin(build_dir), "dlq", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def envelope(rid, path, resource, *, key_id=None, reply_partition=None, deadline_ms=None,
             replay_count=0, body=b"payload"):
    now = int(time.time() * 1000)
    return {"v": 1, "id": rid, "method": "POST", "path": path, "resource": resource,
            "headers": {"content-type": ["text/plain"]}, "query": {}, "path_params": {},
            "body": body, "source_ip": "10.0.0.1", "user_agent": "it", "api_key_id": key_id,
            "stage": "test", "received_ms": now,
            "deadline_ms": deadline_ms if deadline_ms is not None else now + 60_000,
            "trace": "", "reply_partition": reply_partition, "attempt": 1,
            "replay_count": replay_count}


def read_all(bootstrap, topic, committed=True):
    """Every record of `topic` to its end offsets, read_committed by default."""
    ends = end_offsets(bootstrap, topic)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-" + uuid.uuid4().hex[:6],
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.assign([TopicPartition(topic, p, 0) for p in ends])
    out, left, deadline = [], {p for p, e in ends.items() if e > 0}, time.monotonic() + 60
    while left and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                left.discard(m.partition())
            continue
        out.append(m)
        if m.offset() + 1 >= ends[m.partition()]:
            left.discard(m.partition())
    c.close()
    assert not left, f"partitions {left} of {topic} not read to their end"
    return out


def hdrs(m):
    return {k: v for k, v in (m.headers() or [])}


def dlq_record(env, reason, *, orig_partition=0, orig_offset=0, attempts=1):
    """A DLQ record as the worker writes it (for the large replay jobs)."""
    err = f"synthetic {reason}"
    headers = [("sluice-dlq-reason", reason.encode()), ("sluice-dlq-error", err.encode()),
               ("sluice-attempts", str(attempts).encode()),
               ("sluice-first-failure-ms", str(int(time.time() * 1000)).encode()),
               ("sluice-worker", b"it"), ("kafka_dlt-original-topic", b"x.requests"),
               ("kafka_dlt-original-partition", orig_partition.to_bytes(4, "big")),
               ("kafka_dlt-original-offset", orig_offset.to_bytes(8, "big")),
               ("kafka_dlt-original-timestamp", int(time.time() * 1000).to_bytes(8, "big")),
               ("kafka_dlt-exception-message", err.encode())]
    return msgpack.packb(env, use_bin_type=True), headers


def produce(bootstrap, topic, records):
    """records: (key, value, headers) tuples."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for key, value, headers in records:
        while True:
            try:
                p.produce(topic, key=key, value=value, headers=headers)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0


def wait_for(what, predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def synthetic_job(bootstrap, n, reason="crash", replay_count=0):
    """A fresh prefix whose DLQ holds n synthetic records; no worker reads its requests."""
    prefix = new_prefix()
    create_topics(bootstrap, prefix)
    recs = []
    for i in range(n):
        env = envelope(f"s-{i}", f"/orders/{i}", "/orders/{proxy+}", replay_count=replay_count)
        value, headers = dlq_record(env, reason, orig_partition=i % 4, orig_offset=i)
        recs.append((f"s-{i}".encode(), value, headers))
    produce(bootstrap, prefix + "dlq", recs)
    return prefix


# ---- 305 records dead-lettered by the real worker ---------------------------------------------

@pytest.fixture(scope="module")
def real_dlq(build_dir, kafka_bootstrap, tmp_path_factory):
    """crash (a segfaulting plugin, reply address: 502), expired (504), route_unknown (no route,
    no reply address: 0) and decode_error (poison records): what each filter must find is known."""
    tmp = tmp_path_factory.mktemp("dlq")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    plugins = build_dir / "services" / "worker"
    routes = tmp / "routes.json"
    routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/fail/{proxy+}", "handler": "plugin",
         "plugin": str(plugins / "plugin-segfault.so")}]}))
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, routes,
                           SLUICE_MAX_ATTEMPTS=1, SLUICE_RETRY_BACKOFF_MS=10,
                           ASAN_OPTIONS="detect_leaks=0:symbolize=0").start()
    expected = []  # what each record should say: dicts
    recs = []
    for i in range(100):
        rid = f"crash-{i}"
        recs.append((rid.encode(), msgpack.packb(envelope(
            rid, f"/fail/c{i}", "/fail/{proxy+}", key_id="key_crash", reply_partition=0),
            use_bin_type=True), None))
        expected.append({"id": rid, "reason": "crash", "route": "/fail/{proxy+}", "status": 502,
                         "key_id": "key_crash", "path": f"/fail/c{i}"})
    for i in range(100):
        rid = f"expired-{i}"
        kid = "key_a" if i % 2 else "key_b"
        recs.append((rid.encode(), msgpack.packb(envelope(
            rid, f"/orders/e{i}", "/orders/{proxy+}", key_id=kid, reply_partition=0,
            deadline_ms=2), use_bin_type=True), None))
        expected.append({"id": rid, "reason": "expired", "route": "/orders/{proxy+}",
                         "status": 504, "key_id": kid, "path": f"/orders/e{i}"})
    for i in range(100):
        rid = f"noroute-{i}"
        recs.append((rid.encode(), msgpack.packb(envelope(
            rid, f"/orders/h{i}", "/orders/{proxy+}"), use_bin_type=True), None))
        expected.append({"id": rid, "reason": "route_unknown", "route": "/orders/{proxy+}",
                         "status": 0, "key_id": None, "path": f"/orders/h{i}"})
    for i in range(5):
        recs.append((f"poison-{i}".encode(), b"\xc1not msgpack " + bytes([i]), None))
        expected.append({"id": None, "reason": "decode_error", "route": None, "status": 0,
                         "key_id": None, "path": None})
    random.Random(7).shuffle(recs)
    produce(kafka_bootstrap, prefix + "requests", recs)
    wait_for("305 DLQ records",
             lambda: sum(end_offsets(kafka_bootstrap, prefix + "dlq").values()) >= 305, 240)
    worker.stop()
    dlq = read_all(kafka_bootstrap, prefix + "dlq")
    assert len(dlq) == 305
    yield {"prefix": prefix, "expected": expected, "dlq": dlq, "tmp": tmp, "routes": routes}


def listed(build_dir, bootstrap, prefix, *args):
    r = ctl(build_dir, bootstrap, prefix, "list", "--json", *args)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def by_id(rows):
    return sorted(x.get("request_id") or f"poison@{x['partition']}:{x['offset']}" for x in rows)


def expect_ids(expected, pred):
    ids = []
    for e in expected:
        if pred(e):
            ids.append(e["id"])
    return ids


@pytest.mark.parametrize("args,pred", [
    ((), lambda e: True),
    (("--reason", "crash"), lambda e: e["reason"] == "crash"),
    (("--reason", "expired", "--reason", "decode_error"),
     lambda e: e["reason"] in ("expired", "decode_error")),
    (("--route", "/orders/*"), lambda e: e["route"] == "/orders/{proxy+}"),
    (("--route", "/fail/c1*"), lambda e: e["path"] is not None and
     fnmatch.fnmatchcase(e["path"], "/fail/c1*")),
    (("--status", "502"), lambda e: e["status"] == 502),
    (("--status", "504"), lambda e: e["status"] == 504),
    (("--status", "0"), lambda e: e["status"] == 0),
    (("--key-id", "key_a"), lambda e: e["key_id"] == "key_a"),
    (("--reason", "expired", "--key-id", "key_b", "--status", "504"),
     lambda e: e["reason"] == "expired" and e["key_id"] == "key_b"),
])
def test_every_filter_selects_exactly_the_right_records(build_dir, kafka_bootstrap, real_dlq,
                                                        args, pred):
    rows = listed(build_dir, kafka_bootstrap, real_dlq["prefix"], *args)
    want = expect_ids(real_dlq["expected"], pred)
    got = [x.get("request_id") for x in rows]
    assert sorted(g for g in got if g) == sorted(w for w in want if w)
    assert got.count(None) == want.count(None)
    for x in rows:  # each row says what its DLQ record says
        assert x["reason"] in ("crash", "expired", "route_unknown", "decode_error")


def test_time_filters_and_limit(build_dir, kafka_bootstrap, real_dlq):
    prefix = real_dlq["prefix"]
    assert len(listed(build_dir, kafka_bootstrap, prefix, "--since", "-1h")) == 305
    assert listed(build_dir, kafka_bootstrap, prefix, "--until", "-1h") == []
    assert listed(build_dir, kafka_bootstrap, prefix, "--since", "2099-01-01T00:00:00Z") == []
    times = sorted(m.timestamp()[1] for m in real_dlq["dlq"])
    mid = times[150]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid // 1000)) + \
        f".{mid % 1000:03d}Z"
    assert len(listed(build_dir, kafka_bootstrap, prefix, "--since", iso)) == \
        sum(t >= mid for t in times)
    assert len(listed(build_dir, kafka_bootstrap, prefix, "--until", iso)) == \
        sum(t < mid for t in times)
    assert len(listed(build_dir, kafka_bootstrap, prefix, "--limit", "7")) == 7


def test_the_table_names_each_record(build_dir, kafka_bootstrap, real_dlq):
    r = ctl(build_dir, kafka_bootstrap, real_dlq["prefix"], "list", "--reason", "crash")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:8] == ["TIME", "P:O", "REASON", "METHOD", "PATH", "ATTEMPTS",
                                    "REPLAYS", "ERROR"]
    assert len(lines) == 101
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\S+\s+\d+:\d+\s+crash\s+POST\s+/fail/c\d+\s+1\s+0\s+",
                        line) for line in lines[1:]), lines[1]


def test_show_returns_the_exact_bytes_and_headers(build_dir, kafka_bootstrap, real_dlq):
    for m in [real_dlq["dlq"][0], real_dlq["dlq"][-1]] + \
            [m for m in real_dlq["dlq"] if hdrs(m)["sluice-dlq-reason"] == b"decode_error"][:1]:
        r = ctl(build_dir, kafka_bootstrap, real_dlq["prefix"], "show",
                f"{m.partition()}:{m.offset()}")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert (doc["partition"], doc["offset"]) == (m.partition(), m.offset())
        raw = doc["value"].encode() if "value" in doc else base64.b64decode(doc["value_base64"])
        assert raw == m.value()
        got = [(h["name"], h["value"].encode() if "value" in h else
                base64.b64decode(h["value_base64"])) for h in doc["headers"]]
        assert got == list(m.headers())
        h = hdrs(m)
        assert doc["dlq"]["reason"] == h["sluice-dlq-reason"].decode()
        assert doc["dlq"]["original"]["offset"] == int.from_bytes(h["kafka_dlt-original-offset"],
                                                                  "big")
        if h["sluice-dlq-reason"] == b"decode_error":
            assert "envelope_error" in doc
        else:
            env = msgpack.unpackb(m.value(), raw=False)
            assert doc["envelope"]["id"] == env["id"]
            assert doc["envelope"]["body"] == env["body"].decode()


def test_stats_counts_by_reason_route_and_status(build_dir, kafka_bootstrap, real_dlq):
    r = ctl(build_dir, kafka_bootstrap, real_dlq["prefix"], "stats", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["total"] == 305 and s["last_hour"] == 305
    assert s["reason"] == {"crash": 100, "expired": 100, "route_unknown": 100, "decode_error": 5}
    assert s["route"] == {"/fail/{proxy+}": 100, "/orders/{proxy+}": 200, "-": 5}
    assert s["status"] == {"502": 100, "504": 100, "0": 105}
    r = ctl(build_dir, kafka_bootstrap, real_dlq["prefix"], "stats", "--reason", "crash")
    assert r.returncode == 0 and "records: 100" in r.stdout


def test_dry_run_writes_nothing(build_dir, kafka_bootstrap, real_dlq):
    prefix = real_dlq["prefix"]
    before = end_offsets(kafka_bootstrap, prefix + "requests")
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--dry-run", "--json",
            "--reason", "crash", "--job", "dry")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 100 and {x["action"] for x in rows} == {"replay"}
    assert "would replay 100, skip 0" in r.stdout
    assert end_offsets(kafka_bootstrap, prefix + "requests") == before
    jobs = ctl(build_dir, kafka_bootstrap, prefix, "jobs", "--json")
    assert jobs.returncode == 0 and "\"dry\"" not in jobs.stdout  # no job was recorded


def test_replay_after_the_fix_executes_each_request_once_and_answers_nobody(
        build_dir, kafka_bootstrap, real_dlq):
    prefix, tmp = real_dlq["prefix"], real_dlq["tmp"]
    fixed = tmp / "fixed-routes.json"
    fixed.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/fail/{proxy+}", "handler": "echo"}]}))
    replies_before = end_offsets(kafka_bootstrap, prefix + "replies")
    dlq_before = end_offsets(kafka_bootstrap, prefix + "dlq")
    worker = WorkerProcess(build_dir, tmp, kafka_bootstrap, prefix, fixed, name="fixed").start()
    try:
        r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--reason", "crash",
                "--rate", "0", "--job", "fix-1")
        assert r.returncode == 0, r.stderr
        assert "replayed 100 in" in r.stdout
        route = 'sluice_worker_executions_total{route="ANY /fail/{proxy+}",outcome="ok"}'
        wait_for("100 executions", lambda: worker.metric(route) >= 100, 60)
        time.sleep(2)  # anything extra would show now
        assert worker.metric(route) == 100
        assert worker.metric("sluice_worker_replays_total") == 100
        # The same job again replays nothing: it resumes at its end.
        again = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--reason", "crash",
                    "--rate", "0", "--job", "fix-1")
        assert again.returncode == 0 and "replayed 0 in" in again.stdout, again.stdout
        time.sleep(1)
        assert worker.metric(route) == 100
    finally:
        assert worker.stop() == 0
    assert end_offsets(kafka_bootstrap, prefix + "replies") == replies_before
    assert end_offsets(kafka_bootstrap, prefix + "dlq") == dlq_before  # nothing left the DLQ
    replayed = [m for m in read_all(kafka_bootstrap, prefix + "requests")
                if "sluice-replay-job" in hdrs(m)]
    assert len(replayed) == 100
    for m in replayed:
        env = msgpack.unpackb(m.value(), raw=False)
        assert env["replay_count"] == 1 and env["reply_partition"] == -1  # no reply wanted
        assert env["id"].startswith("crash-") and env["body"] == b"payload"
        assert "sluice-dlq-reason" not in hdrs(m)
    jobs = [json.loads(line) for line in
            ctl(build_dir, kafka_bootstrap, prefix, "jobs", "--json").stdout.splitlines()]
    job = [j for j in jobs if j["job"] == "fix-1"]
    assert job and job[0]["selected"] == 100 and job[0]["replayed"] == 100 and \
        job[0]["skipped"] == 0 and job[0]["remaining"] == 0


def test_sigkill_at_random_points_replays_each_record_exactly_once(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 2000)
    rng = random.Random()
    args = ["replay", "--rate", "500", "--job", "killed"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SLUICE_TOPIC_PREFIX": prefix,
                "ASAN_OPTIONS": "detect_leaks=0"})
    for _ in range(3):
        p = subprocess.Popen([sluicectl_bin(build_dir), "dlq", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(1.0, 2.5))
        p.kill()
        p.wait()
    r = ctl(build_dir, kafka_bootstrap, prefix, *args)
    assert r.returncode == 0, r.stderr
    counts = {}
    for m in read_all(kafka_bootstrap, prefix + "requests"):
        counts[hdrs(m)["sluice-replay-dlq"]] = counts.get(hdrs(m)["sluice-replay-dlq"], 0) + 1
    assert len(counts) == 2000
    assert set(counts.values()) == {1}
    jobs = [json.loads(line) for line in
            ctl(build_dir, kafka_bootstrap, prefix, "jobs", "--json").stdout.splitlines()]
    assert [(j["job"], j["replayed"], j["remaining"]) for j in jobs] == [("killed", 2000, 0)]
    # The kills did leave aborted records behind: read_uncommitted sees more than 2,000.
    assert len(read_all(kafka_bootstrap, prefix + "requests", committed=False)) >= 2000


def test_rate_50_over_200_records_takes_4_seconds(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 200)
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--rate", "50/s", "--job", "paced")
    assert r.returncode == 0, r.stderr
    took = float(re.search(r"replayed 200 in ([\d.]+) s", r.stdout).group(1))
    assert 3.6 <= took <= 4.4, r.stdout
    stamps = sorted(m.timestamp()[1] for m in read_all(kafka_bootstrap, prefix + "requests"))
    assert len(stamps) == 200
    assert 3.6 <= (stamps[-1] - stamps[0]) / 1000 <= 4.4


def test_a_record_at_its_replay_limit_is_skipped_and_reported(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 10, replay_count=3)
    produce(kafka_bootstrap, prefix + "dlq", [(b"fresh", *dlq_record(
        envelope("fresh", "/orders/f", "/orders/{proxy+}", replay_count=2), "crash"))])
    dlq_before = end_offsets(kafka_bootstrap, prefix + "dlq")
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--job", "limit")
    assert r.returncode == 0, r.stderr
    assert "replayed 1 in" in r.stdout and "skipped 10 (10 at the replay limit of 3" in r.stdout
    out = read_all(kafka_bootstrap, prefix + "requests")
    assert [msgpack.unpackb(m.value(), raw=False)["replay_count"] for m in out] == [3]
    assert end_offsets(kafka_bootstrap, prefix + "dlq") == dlq_before
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--job", "limit5", "--max-replays", "5")
    assert "replayed 11 in" in r.stdout, r.stdout


def test_max_caps_the_whole_job_across_runs(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 30)
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--job", "capped", "--max", "12")
    assert "replayed 12 in" in r.stdout, r.stdout + r.stderr
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--job", "capped", "--max", "12")
    assert "replayed 0 in" in r.stdout, r.stdout
    assert len(read_all(kafka_bootstrap, prefix + "requests")) == 12


@pytest.mark.parametrize("args,code,first", [
    (("frobnicate",), 2, "sluicectl dlq: unknown command 'frobnicate'"),
    (("list", "--since", "yesterday"), 2, "sluicectl dlq list: --since: 'yesterday' is not a time"),
    (("list", "--until=2026-13-01T00:00:00Z"), 2, "sluicectl dlq list: --until:"),
    (("list", "--reason", "boom"), 2, "sluicectl dlq list: --reason: 'boom' is not one of"),
    (("list", "--status", "abc"), 2, "sluicectl dlq list: --status: 'abc' is not"),
    (("list", "--limit"), 2, "sluicectl dlq list: --limit needs a value"),
    (("list", "--colour"), 2, "sluicectl dlq list: unknown option '--colour'"),
    (("show", "12"), 2, "sluicectl dlq show: '12' is not PARTITION:OFFSET"),
    (("show", "a:b"), 2, "sluicectl dlq show: 'a:b' is not PARTITION:OFFSET"),
    (("show",), 2, "sluicectl dlq show: missing P:O"),
    (("replay", "--rate", "fast"), 2, "sluicectl dlq replay: --rate: 'fast' is not a rate"),
    (("replay", "--job", "a b"), 2, "sluicectl dlq replay: --job: 'a b' is not a job name"),
    (("replay", "--json"), 2, "sluicectl dlq replay: --json goes with --dry-run"),
])
def test_bad_input_gives_one_line_and_the_documented_code(build_dir, kafka_bootstrap, args, code,
                                                          first):
    r = ctl(build_dir, kafka_bootstrap, "nothing.", *args)
    assert r.returncode == code, r.stderr
    assert r.stdout == ""
    assert r.stderr.splitlines()[0].startswith(first), r.stderr


def test_show_of_a_record_that_does_not_exist(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 3)
    r = ctl(build_dir, kafka_bootstrap, prefix, "show", "0:999")
    assert r.returncode == 1 and r.stderr.startswith("sluicectl dlq show: no record 0:999 in ")
    r = ctl(build_dir, kafka_bootstrap, prefix, "show", "7:0")
    assert r.returncode == 1 and "partitions 0..1" in r.stderr


@pytest.mark.parametrize("cmd", [("list",), ("replay", "--job", "x"), ("jobs",), ("show", "0:0")])
def test_an_unreachable_broker_is_a_clear_error_within_10_seconds(build_dir, cmd):
    start = time.monotonic()
    r = ctl(build_dir, "127.0.0.1:1", "it.", *cmd, timeout=30)
    took = time.monotonic() - start
    assert r.returncode == 1, r.stderr
    assert took < 10 + 2, took  # the tool's own limit is 10 s; 2 s for a sanitized start-up
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "127.0.0.1:1" in lines[0] and \
        "SLUICE_KAFKA_BOOTSTRAP_SERVERS" in lines[0], r.stderr


def test_a_missing_topic_and_an_unset_broker_are_named(build_dir, kafka_bootstrap):
    r = ctl(build_dir, kafka_bootstrap, "nosuch.", "list")
    assert r.returncode == 1
    assert r.stderr.strip() == ("sluicectl dlq list: topic nosuch.dlq does not exist (run "
                                "'sluicectl topics create'; SLUICE_TOPIC_PREFIX is 'nosuch.')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    r = subprocess.run([sluicectl_bin(build_dir), "dlq", "list"], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "SLUICE_KAFKA_BOOTSTRAP_SERVERS is not set" in r.stderr


def test_the_progress_bar_redraws_in_place_and_ends_with_the_summary(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 150)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SLUICE_TOPIC_PREFIX": prefix,
                "ASAN_OPTIONS": "detect_leaks=0", "TERM": "xterm"})
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(sluicectl_bin(build_dir), [sluicectl_bin(build_dir), "dlq", "replay",
                                             "--rate", "100", "--job", "tty"], env)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out
    text = out.decode()
    draws = text.split("\r\x1b[K")
    assert len(draws) >= 10, text  # 1.5 s at 10 redraws a second
    assert "\n" not in "".join(draws[1:-1]), "a redraw moved to a new line"
    assert re.search(r"\[#+\] 150/150 read, 150 replayed, 0 skipped", draws[-1]), draws[-1]
    assert "job tty: replayed 150 in" in draws[-1]


def test_without_a_terminal_progress_is_plain_lines(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 20)
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--job", "plain", "--rate", "0")
    assert r.returncode == 0
    assert "\x1b" not in r.stderr and "\r" not in r.stderr
    assert r.stderr.splitlines()[-1].startswith("dlq replay plain: 20/20 read, 20 replayed")
    assert "job plain in total: selected 20, replayed 20, skipped 0" in r.stdout


def test_sigint_stops_between_transactions_and_says_how_to_resume(build_dir, kafka_bootstrap):
    prefix = synthetic_job(kafka_bootstrap, 300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({"SLUICE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SLUICE_TOPIC_PREFIX": prefix,
                "ASAN_OPTIONS": "detect_leaks=1"})
    p = subprocess.Popen([sluicectl_bin(build_dir), "dlq", "replay", "--rate", "100", "--job",
                          "ctrlc"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 1, err
    done = int(re.search(r"replayed (\d+) in", out).group(1))
    assert 0 < done < 300
    assert "to resume" in out and "--job ctrlc" in out
    assert len(read_all(kafka_bootstrap, prefix + "requests")) == done  # committed what it said
    r = ctl(build_dir, kafka_bootstrap, prefix, "replay", "--rate", "0", "--job", "ctrlc")
    assert f"replayed {300 - done} in" in r.stdout, r.stdout
    assert len(read_all(kafka_bootstrap, prefix + "requests")) == 300
