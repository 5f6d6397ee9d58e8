"""The Kafka glue (common/src/kafka.c) against the real broker of scripts/stack.

The C side runs through tests/support/sl_kafka_roundtrip; every roundtrip is cross-checked with
the Python confluent_kafka client in at least one direction, so the C code cannot pass by only
agreeing with itself.
"""
import json
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

N = 40
BINARY = bytes([0x00, 0xFF, 0x0A, 0x0D, 0x80, 0x7F])


@pytest.fixture(scope="module")
def roundtrip(build_dir):
    exe = build_dir / "tests" / "sl_kafka_roundtrip"
    if not exe.exists():
        pytest.fail(f"{exe} is missing: build the tests first")
    return exe


def run(exe, *args, stdin=None, timeout=90):
    p = subprocess.run([str(exe), *map(str, args)], input=stdin, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"{args[0]} failed ({p.returncode}): {p.stderr[-2000:]}"
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def new_topic(exe, bootstrap, partitions):
    name = f"sluice.it.glue.{uuid.uuid4().hex[:12]}"
    [r] = run(exe, "create", bootstrap, name, partitions, 7200000)
    assert r == {"create": 0, "create_again": 0, "exist": 0, "missing": 0, "other_missing": 1}
    return name


def message(i):
    """Message i: a key, a value with binary bytes, and headers with a repeated name."""
    return {
        "key": f"key-{i}".encode(),
        "value": f"value-{i}-".encode() + BINARY + bytes([i]),
        "headers": [
            ("sluice-id", f"req-{i}".encode()),
            ("bin", BINARY + bytes([i])),
            ("traceparent", b"00-first"),
            ("traceparent", f"00-second-{i}".encode()),
            ("empty", b""),
        ],
    }


def as_json(m):
    return json.dumps({
        "key": m["key"].hex() if m["key"] is not None else None,
        "value": m["value"].hex() if m["value"] is not None else None,
        "headers": [[k, v.hex() if v is not None else None] for k, v in m["headers"]],
    })


def from_c(line):
    """A message line of the support program, decoded to bytes."""
    def unhex(h):
        return bytes.fromhex(h) if h is not None else None
    return {
        "key": unhex(line["key"]),
        "value": unhex(line["value"]),
        "headers": [(k, unhex(v)) for k, v in line["headers"]],
    }


def c_messages(lines):
    return [line for line in lines if "offset" in line and "value" in line]


def python_consume(bootstrap, topic, partition, count, offset=0):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"py-{uuid.uuid4().hex}",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, partition, offset)])
        out = []
        deadline = 60
        while len(out) < count and deadline > 0:
            m = c.poll(1.0)
            deadline -= 1
            if m is None:
                continue
            assert m.error() is None, m.error()
            out.append(m)
        return out
    finally:
        c.close()


def python_produce(bootstrap, topic, partition, msgs):
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    reports = []
    for m in msgs:
        p.produce(topic, key=m["key"], value=m["value"], headers=m["headers"],
                  partition=partition, on_delivery=lambda err, msg: reports.append((err, msg)))
    assert p.flush(30) == 0
    assert [err for err, _ in reports] == [None] * len(msgs)
    return [msg.offset() for _, msg in reports]


def test_admin_creates_topic_idempotently_with_partitions_and_config(roundtrip, kafka_bootstrap):
    topic = new_topic(roundtrip, kafka_bootstrap, 3)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    md = admin.list_topics(topic, timeout=10)
    assert len(md.topics[topic].partitions) == 3
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(timeout=10)
    assert configs["retention.ms"].value == "7200000"


def test_c_produces_and_python_reads_exact_bytes_in_order(roundtrip, kafka_bootstrap):
    topic = new_topic(roundtrip, kafka_bootstrap, 2)
    msgs = [message(i) for i in range(N)]
    reports = run(roundtrip, "produce", kafka_bootstrap, topic, 1,
                  stdin="\n".join(as_json(m) for m in msgs) + "\n")
    assert reports == [{"i": i, "err": 0, "kerr": "NO_ERROR", "partition": 1, "offset": i}
                       for i in range(N)]

    got = python_consume(kafka_bootstrap, topic, 1, N)
    assert [m.offset() for m in got] == list(range(N))
    assert [m.key() for m in got] == [m["key"] for m in msgs]
    assert [m.value() for m in got] == [m["value"] for m in msgs]
    assert [m.headers() for m in got] == [m["headers"] for m in msgs]


def test_sticky_producer_keeps_keyed_messages_on_one_partition_per_window(roundtrip,
                                                                         kafka_bootstrap):
    """The gateway's requests go to one partition per window whatever their key (so they can
    share produce requests); without the sticky window the same keys spread by hash."""
    topic = new_topic(roundtrip, kafka_bootstrap, 6)
    msgs = [message(i) for i in range(N)]
    for m in msgs:
        m["key"] = f"request-{m['key'].hex() if m['key'] else 'none'}".encode()
    stdin = "\n".join(as_json(m) for m in msgs) + "\n"
    # A window far longer than the run (a day): every message goes to the window's partition,
    # except that right after start a partition whose leader librdkafka has not yet placed is
    # skipped for the next one: the first messages may land on one other partition.
    sticky = run(roundtrip, "produce", kafka_bootstrap, topic, "sticky:86400000", stdin=stdin)
    assert [r["err"] for r in sticky] == [0] * N
    parts = [r["partition"] for r in sticky]
    window = parts[-1]
    settled = parts.index(window)
    assert parts[settled:] == [window] * (N - settled), parts
    assert len(set(parts[:settled])) <= 1 and settled < N // 2, parts
    hashed = run(roundtrip, "produce", kafka_bootstrap, topic, -1, stdin=stdin)
    assert len({r["partition"] for r in hashed}) > 1
    got = python_consume(kafka_bootstrap, topic, window, N - settled)
    assert [m.key() for m in got] == [m["key"] for m in msgs[settled:]]


def test_python_produces_and_c_reads_by_manual_assignment(roundtrip, kafka_bootstrap):
    topic = new_topic(roundtrip, kafka_bootstrap, 1)
    msgs = [message(i) for i in range(N)]
    msgs.append({"key": None, "value": None, "headers": []})  # a tombstone with no key
    assert python_produce(kafka_bootstrap, topic, 0, msgs) == list(range(N + 1))

    lines = run(roundtrip, "consume", kafka_bootstrap, topic, 0, "beginning", N + 1, 30000)
    assert lines[0] == {"ready": 1, "position": 0}
    assert lines[-1] == {"done": N + 1}
    got = c_messages(lines)
    assert [line["offset"] for line in got] == list(range(N + 1))
    assert [line["topic"] for line in got] == [topic] * (N + 1)
    assert [from_c(line) for line in got] == msgs
    # The by-name lookup returns the LAST header of a repeated name.
    assert [line.get("last_header") for line in got[:N]] == [""] * N
    assert all(line["timestamp"] > 1_600_000_000_000 for line in got)

    # Starting from an absolute offset skips exactly what precedes it.
    lines = run(roundtrip, "consume", kafka_bootstrap, topic, 0, "offset:35", N + 1 - 35, 30000)
    assert [line["offset"] for line in c_messages(lines)] == list(range(35, N + 1))


def test_c_roundtrip_through_group_subscription(roundtrip, kafka_bootstrap):
    topic = new_topic(roundtrip, kafka_bootstrap, 1)
    msgs = [message(i) for i in range(N)]
    reports = run(roundtrip, "produce", kafka_bootstrap, topic, -1,
                  stdin="\n".join(as_json(m) for m in msgs) + "\n")
    assert [r["offset"] for r in reports] == list(range(N))
    group = f"sluice-it-{uuid.uuid4().hex[:8]}"
    lines = run(roundtrip, "consume", kafka_bootstrap, topic, 0, f"group:{group}", N, 60000)
    assert lines[-1] == {"done": N}
    assert [from_c(line) for line in c_messages(lines)] == msgs

    # The member stored each handled offset and close committed them: the group resumes at N.
    admin_consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    try:
        [tp] = admin_consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert tp.offset == N
    finally:
        admin_consumer.close()


def test_assignment_at_end_is_positioned_before_ready(roundtrip, kafka_bootstrap):
    topic = new_topic(roundtrip, kafka_bootstrap, 1)
    old = [message(i) for i in range(5)]
    assert python_produce(kafka_bootstrap, topic, 0, old) == list(range(5))

    proc = subprocess.Popen([str(roundtrip), "consume", kafka_bootstrap, topic, "0", "end", "3",
                             "30000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready == {"ready": 1, "position": 5}
        # Produced only after "ready": none of these may be missed, none of the old ones seen.
        new = [message(100 + i) for i in range(3)]
        assert python_produce(kafka_bootstrap, topic, 0, new) == [5, 6, 7]
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    got = c_messages(lines)
    assert [line["offset"] for line in got] == [5, 6, 7]
    assert [from_c(line) for line in got] == new
    assert lines[-1] == {"done": 3}
