"""sluice-archiver against the real broker: audit records become exactly-once objects.

Each test produces audit-like records (JSON lines with a request id) to a fresh audit topic
across several partitions and two UTC days (by record timestamp), runs the real binary, and
checks that the objects' decompressed lines are exactly the records produced: none missing,
none twice, each in the object its partition, day and offsets name.
"""
import gzip
import json
import os
import pathlib
import random
import re
import signal
import subprocess
import time
import uuid

import pytest
import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from harness import Service, create_topics, end_offsets, free_port, new_prefix

PARTITIONS = 4
# Two whole UTC days in the recent past: inside the audit topic's 7-day retention (older record
# timestamps are deleted by the broker before the archiver reads them) and not in the future
# (Kafka refuses timestamps more than an hour ahead).
_NOW_MS = int(time.time() * 1000)
DAY1 = _NOW_MS - _NOW_MS % 86_400_000 - 3 * 86_400_000
DAY2 = DAY1 + 86_400_000
KEY_RE = re.compile(r"^(?:(?P<prefix>.+)/)?api-logs/year=(?P<y>\d{4})/month=(?P<m>\d{2})/"
                    r"day=(?P<d>\d{2})/(?P<topic>[^+/]+)\+(?P<p>\d+)\+(?P<off>\d{20})\.ndjson\.gz$")


class Archiver(Service):
    def __init__(self, build_dir, tmp_path, bootstrap, prefix, group, url, instance="it-archiver",
                 **settings):
        self.admin_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({
            "SLUICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SLUICE_TOPIC_PREFIX": prefix,
            "SLUICE_ARCHIVE_URL": url,
            "SLUICE_ARCHIVER_GROUP": group,
            "SLUICE_ARCHIVER_INSTANCE_ID": instance,
            "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "SLUICE_BATCH_MAX_RECORDS": "2000",
            "SLUICE_BATCH_MAX_AGE_MS": "500",
            "SLUICE_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "SLUICE_LOG_LEVEL": "info",
        })
        env.update({k: str(v) for k, v in settings.items()})
        super().__init__(build_dir / "services" / "archiver" / "sluice-archiver", env,
                         tmp_path / f"archiver-{self.admin_port}.log")
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout=30):
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"archiver exited with {self.proc.returncode}:\n"
                                     f"{self.log_text()}")
            try:
                if requests.get(self.admin + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"archiver not ready after {timeout}s:\n{self.log_text()}")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def metric(self, name):
        for line in requests.get(self.admin + "/metrics", timeout=5).text.splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def produce_records(bootstrap, topic, n, partitions=PARTITIONS):
    """n records, partition i % partitions, the first half on DAY1 and the rest on DAY2 (record
    timestamps). Returns {request_id: (partition, timestamp_ms)}."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    produced = {}
    for i in range(n):
        rid = uuid.uuid4().hex
        part = i % partitions
        ts = (DAY1 if i < n // 2 else DAY2) + (i % 86_000) * 1000
        value = json.dumps({"timestamp": ts, "request_id": rid, "method": "GET",
                            "path": f"/items/{i}", "status": 200, "latency_ms": 3,
                            "user_agent": "it", "stage": "production", "p": part})
        while True:
            try:
                p.produce(topic, value=value.encode(), partition=part, timestamp=ts)
                break
            except BufferError:
                p.poll(0.05)
        produced[rid] = (part, ts)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    return produced


# Errors a broker gives while a group's coordinator is being elected or loaded (the first
# groups on a fresh broker meet them): the question is asked again, not failed.
COORDINATOR_SETTLING = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                        KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError._TIMED_OUT}


def committed_offsets(bootstrap, group, topic, partitions=PARTITIONS, settle_s=30):
    deadline = time.monotonic() + settle_s
    while True:
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                      "enable.auto.commit": False})
        try:
            parts = c.committed([TopicPartition(topic, i) for i in range(partitions)],
                                timeout=10)
            return {tp.partition: tp.offset for tp in parts}
        except KafkaException as e:
            if e.args[0].code() not in COORDINATOR_SETTLING or time.monotonic() > deadline:
                raise
        finally:
            c.close()
        time.sleep(0.5)


def wait_committed(bootstrap, group, topic, timeout=120, partitions=PARTITIONS):
    ends = {p: end for p, end in end_offsets(bootstrap, topic, partitions).items() if end > 0}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = committed_offsets(bootstrap, group, topic, partitions)
        if all(got[p] == end for p, end in ends.items()):
            return ends
        time.sleep(0.5)
    raise AssertionError(f"not everything committed: {committed_offsets(bootstrap, group, topic)}"
                         f" vs {ends}")


def check_objects(objects, produced, topic, prefix=None):
    """objects: {key: gzip bytes}. Every produced record exactly once, in the right object."""
    seen = {}
    for key, body in objects.items():
        m = KEY_RE.match(key)
        assert m, f"key outside the layout: {key}"
        assert m["prefix"] == prefix, key
        assert m["topic"] == topic, key
        lines = gzip.decompress(body).decode().splitlines()
        assert lines, f"empty object {key}"
        for line in lines:
            rec = json.loads(line)
            rid = rec["request_id"]
            assert rid not in seen, f"{rid} twice: in {seen[rid]} and {key}"
            seen[rid] = key
            part, ts = produced[rid]
            day = time.gmtime(ts / 1000)
            assert (int(m["p"]), int(m["y"]), int(m["m"]), int(m["d"])) == \
                (part, day.tm_year, day.tm_mon, day.tm_mday), key
    missing = set(produced) - set(seen)
    assert not missing, f"{len(missing)} records missing, e.g. {sorted(missing)[:3]}"
    assert len(seen) == len(produced)


def read_dir(root):
    root = pathlib.Path(root)
    out = {}
    for f in root.rglob("*"):
        rel = f.relative_to(root).as_posix()
        if f.is_file() and not rel.startswith(".tmp/"):
            out[rel] = f.read_bytes()
    return out


@pytest.fixture
def audit_topic(kafka_bootstrap):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix, audit_partitions=PARTITIONS)
    return prefix, prefix + "audit"


class Sink:
    """Where a test's archiver writes, and how the test reads it back."""

    def __init__(self, kind, tmp_path, s3v4=None):
        self.kind = kind
        if kind == "file":
            self.dir = tmp_path / "archive"
            self.url, self.env, self.prefix = f"file://{self.dir}", {}, None
        else:
            self.bucket = os.environ.get("SLUICE_TEST_S3V4_BUCKET", "sluice-audit")
            self.prefix = f"it/{uuid.uuid4().hex[:8]}"
            self.url = f"s3://{self.bucket}/{self.prefix}"
            self.env = s3_settings(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])
            self.s3 = s3_client(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])

    def objects(self):
        if self.kind == "file":
            return read_dir(self.dir)
        return read_bucket(self.s3, self.bucket, self.prefix)


@pytest.fixture(params=["file", "s3"])
def sink(request, tmp_path, s3v4):
    return Sink(request.param, tmp_path, s3v4)


def test_archives_every_record_exactly_once_per_partition_and_day(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, sink):
    prefix, topic = audit_topic
    produced = produce_records(kafka_bootstrap, topic, 50_000)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, sink.url,
                    **sink.env).start()
    try:
        wait_committed(kafka_bootstrap, group, topic)
        objects = sink.objects()
        check_objects(objects, produced, topic, prefix=sink.prefix)
        assert arch.metric("sluice_archiver_records_total") == 50_000
        assert arch.metric("sluice_archiver_objects_total") == len(objects)
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_age_limit_closes_an_idle_batch(build_dir, tmp_path, kafka_bootstrap, audit_topic):
    prefix, topic = audit_topic
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "archive"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, f"file://{archive}",
                    SLUICE_BATCH_MAX_RECORDS="100000", SLUICE_BATCH_MAX_AGE_MS="300").start()
    try:
        produced = produce_records(kafka_bootstrap, topic, 3, partitions=1)
        wait_committed(kafka_bootstrap, group, topic, timeout=30)
        check_objects(read_dir(archive), produced, topic)
    finally:
        arch.stop()


def test_sigkill_at_random_moments_loses_and_repeats_nothing(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, sink):
    prefix, topic = audit_topic
    produced = produce_records(kafka_bootstrap, topic, 50_000)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    rng = random.Random()
    # Small batches, so that kills land between writes and commits.
    settings = {"SLUICE_BATCH_MAX_RECORDS": "700", "SLUICE_BATCH_MAX_AGE_MS": "200", **sink.env}
    # Records keep arriving while it is killed, so that every kill lands mid-archiving.
    with SteadyProducer(kafka_bootstrap, topic, 2000) as steady:
        for _ in range(5):
            arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, sink.url,
                            **settings).start()
            time.sleep(rng.uniform(0.3, 2.0))
            arch.kill()
    produced.update(steady.produced)
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, sink.url,
                    **settings).start()
    try:
        wait_committed(kafka_bootstrap, group, topic)
        check_objects(sink.objects(), produced, topic, prefix=sink.prefix)
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_rebalances_between_two_archivers_lose_and_repeat_nothing(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, s3v4):
    prefix, topic = audit_topic
    sink = Sink("s3", tmp_path, s3v4)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    settings = {"SLUICE_BATCH_MAX_RECORDS": "300", "SLUICE_BATCH_MAX_AGE_MS": "200", **sink.env}
    with SteadyProducer(kafka_bootstrap, topic, 2000) as steady:
        a = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, sink.url,
                     instance="it-a", **settings).start()
        time.sleep(3)
        b = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, sink.url,
                     instance="it-b", **settings).start()
        time.sleep(4)
        assert a.stop() == 0, a.log_text()  # its partitions move to b after the session timeout
        time.sleep(3)
    try:
        wait_committed(kafka_bootstrap, group, topic)
        check_objects(sink.objects(), steady.produced, topic, prefix=sink.prefix)
        assert "revoked" in a.log_text() or "revoked" in b.log_text()
    finally:
        assert b.stop() == 0, b.log_text()


# ---- S3 -------------------------------------------------------------------------------------

def s3_client(endpoint, access_key, secret):
    import boto3
    import botocore.config
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(signature_version="s3v4", retries={"max_attempts": 2},
                                      s3={"addressing_style": "path"}))


def read_bucket(s3, bucket, prefix):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def s3_settings(endpoint, access_key, secret, **more):
    env = {"SLUICE_S3_ENDPOINT": endpoint, "SLUICE_S3_PATH_STYLE": "true",
           "SLUICE_S3_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": access_key,
           "AWS_SECRET_ACCESS_KEY": secret}
    env.update(more)
    return env


def test_s3_with_the_right_secret_writes_signed_objects_whose_keys_hold_equals_signs(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, s3v4):
    prefix, topic = audit_topic
    produced = produce_records(kafka_bootstrap, topic, 5_000)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    bucket = os.environ.get("SLUICE_TEST_S3V4_BUCKET", "sluice-audit")
    key_prefix = f"it/{uuid.uuid4().hex[:8]}"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group,
                    f"s3://{bucket}/{key_prefix}/", SLUICE_BATCH_MAX_RECORDS="500",
                    **s3_settings(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])).start()
    try:
        wait_committed(kafka_bootstrap, group, topic)
        s3 = s3_client(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])
        objects = read_bucket(s3, bucket, key_prefix)
        assert all("/year=" in k and "/day=" in k for k in objects)
        check_objects(objects, produced, topic, prefix=key_prefix)
        assert arch.metric('sluice_archiver_failures_total{class="auth"}') == 0
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_s3_with_a_wrong_secret_fails_clearly_keeps_the_batch_and_commits_nothing(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, s3v4):
    prefix, topic = audit_topic
    produce_records(kafka_bootstrap, topic, 200)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    bucket = os.environ.get("SLUICE_TEST_S3V4_BUCKET", "sluice-audit")
    key_prefix = f"it/{uuid.uuid4().hex[:8]}"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group,
                    f"s3://{bucket}/{key_prefix}", SLUICE_ARCHIVE_RETRY_SLOW_MS="500",
                    **s3_settings(s3v4["endpoint"], s3v4["access_key"],
                                  s3v4["secret"] + "-wrong")).start()
    try:
        deadline = time.monotonic() + 30
        while arch.metric('sluice_archiver_failures_total{class="auth"}') < 3:
            assert time.monotonic() < deadline, arch.log_text()
            time.sleep(0.2)
        log = arch.log_text()
        assert "SignatureDoesNotMatch" in log and "will not heal by itself" in log, log
        assert arch.metric("sluice_archiver_objects_total") == 0
        committed = committed_offsets(kafka_bootstrap, group, topic)
        assert all(off < 0 for off in committed.values()), committed
        s3 = s3_client(s3v4["endpoint"], s3v4["access_key"], s3v4["secret"])
        assert read_bucket(s3, bucket, key_prefix) == {}
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_objects_in_a_bucket_set_up_with_sluicectl_report_sse_kms(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, s3_endpoint):
    import boto3
    prefix, topic = audit_topic
    bucket = f"arch-{uuid.uuid4().hex[:10]}"
    kms = boto3.client("kms", endpoint_url=s3_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    key_id = kms.create_key(Description="archive")["KeyMetadata"]["KeyId"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update(s3_settings(s3_endpoint, "testing", "testing"))
    setup = subprocess.run([str(build_dir / "tools" / "sluicectl" / "sluicectl"), "s3", "setup",
                            "--bucket", bucket, "--kms-key-id", key_id, "--create"],
                           capture_output=True, text=True, env=env, timeout=60)
    assert setup.returncode == 0, setup.stderr
    produced = produce_records(kafka_bootstrap, topic, 2_000)
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group,
                    f"s3://{bucket}/audit", SLUICE_S3_SSE="aws:kms",
                    **s3_settings(s3_endpoint, "testing", "testing")).start()
    try:
        wait_committed(kafka_bootstrap, group, topic)
        s3 = s3_client(s3_endpoint, "testing", "testing")
        objects = read_bucket(s3, bucket, "audit")
        check_objects(objects, produced, topic, prefix="audit")
        head = s3.head_object(Bucket=bucket, Key=next(iter(objects)))
        assert head["ServerSideEncryption"] == "aws:kms"
    finally:
        assert arch.stop() == 0, arch.log_text()


# ---- S3 outages: an emulator of the test's own, stopped and started ---------------------------

NODE_MODULES = pathlib.Path(os.environ.get(
    "SLUICE_TEST_NODE_MODULES",
    pathlib.Path(__file__).resolve().parents[2] / ".deps" / "node" / "node_modules"))


class OwnS3:
    """A SigV4-checking emulator (scripts/s3rver/run.js) on a port of the test's own, so that it
    can be stopped and started without touching the shared stack. Objects live in `dir` and
    survive a restart."""

    ACCESS, SECRET, BUCKET = "OUTAGETEST", "outage-secret", "outage"

    def __init__(self, root_dir, tmp_path):
        self.run_js = root_dir / "scripts" / "s3rver" / "run.js"
        self.dir = tmp_path / "s3rver"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "s3rver.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["node", str(self.run_js), str(NODE_MODULES), str(self.dir), "127.0.0.1",
             str(self.port), self.ACCESS, self.SECRET, self.BUCKET],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.endpoint + "/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"s3rver did not start: {self.log.read_text()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self):
        return s3_client(self.endpoint, self.ACCESS, self.SECRET)


@pytest.fixture
def own_s3(root_dir, tmp_path):
    if not (NODE_MODULES / "@20minutes" / "s3rver").is_dir():
        pytest.fail(f"s3rver is not installed in {NODE_MODULES} (scripts/install-deps)")
    s3 = OwnS3(root_dir, tmp_path).start()
    yield s3
    s3.stop()


class SteadyProducer:
    """Produces audit records at `rate` per second in a thread until stopped."""

    def __init__(self, bootstrap, topic, rate, partitions=PARTITIONS):
        import threading
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                                  "acks": "all"})
        self.topic, self.rate, self.partitions = topic, rate, partitions
        self.produced = {}
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        start = time.monotonic()
        i = 0
        while not self.stopping.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while i < due:
                rid = uuid.uuid4().hex
                part = i % self.partitions
                ts = int(time.time() * 1000)
                value = json.dumps({"timestamp": ts, "request_id": rid, "method": "POST",
                                    "path": f"/orders/{i}", "status": 201, "p": part,
                                    "user_agent": "steady", "stage": "production"})
                try:
                    self.producer.produce(self.topic, value=value.encode(), partition=part,
                                          timestamp=ts)
                except BufferError:
                    self.producer.poll(0.01)
                    continue
                self.produced[rid] = (part, ts)
                i += 1
            self.producer.poll(0)
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        assert self.producer.flush(60) == 0


def test_s3_outage_pauses_commits_and_loses_nothing(
        build_dir, tmp_path, kafka_bootstrap, audit_topic, own_s3):
    prefix, topic = audit_topic
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group,
                    f"s3://{own_s3.BUCKET}/outage", SLUICE_BATCH_MAX_RECORDS="500",
                    SLUICE_BATCH_MAX_AGE_MS="300", SLUICE_S3_TIMEOUT_MS="2000",
                    SLUICE_ARCHIVE_RETRY_MAX_MS="2000",
                    **s3_settings(own_s3.endpoint, own_s3.ACCESS, own_s3.SECRET)).start()
    try:
        with SteadyProducer(kafka_bootstrap, topic, 1000) as steady:
            deadline = time.monotonic() + 30
            while arch.metric("sluice_archiver_objects_total") < 8:
                assert time.monotonic() < deadline, arch.log_text()
                time.sleep(0.2)
            own_s3.stop()
            time.sleep(3)  # a write that was under way when S3 went may still commit
            during = committed_offsets(kafka_bootstrap, group, topic)
            time.sleep(17)
            assert committed_offsets(kafka_bootstrap, group, topic) == during
            assert arch.metric('sluice_archiver_failures_total{class="connect"}') > 0
            assert arch.metric("sluice_archiver_paused_partitions") > 0
            own_s3.start()
            time.sleep(3)
        wait_committed(kafka_bootstrap, group, topic)
        check_objects(read_bucket(own_s3.client(), own_s3.BUCKET, "outage"), steady.produced,
                      topic, prefix="outage")
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_a_partition_paused_when_the_group_rebalances_is_fetched_again(
        build_dir, tmp_path, kafka_bootstrap, audit_topic):
    """Pausing survives a revoke and re-assignment in librdkafka: a partition that was paused
    (closed batches waiting) when the group rebalanced must not stay paused for ever."""
    prefix, topic = audit_topic
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "api-logs").write_text("a file where the layout needs a directory")
    produced = produce_records(kafka_bootstrap, topic, 4_000)
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group, f"file://{archive}",
                    SLUICE_BATCH_MAX_RECORDS="100", SLUICE_BATCH_MAX_AGE_MS="200",
                    SLUICE_ARCHIVE_RETRY_SLOW_MS="300").start()
    try:
        deadline = time.monotonic() + 30
        while arch.metric("sluice_archiver_paused_partitions") < PARTITIONS:
            assert time.monotonic() < deadline, arch.log_text()
            time.sleep(0.1)
        # A second member joins and leaves: every partition is revoked and assigned again.
        other = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group,
                          "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        other.subscribe([topic])
        deadline = time.monotonic() + 30
        while not other.assignment():
            assert time.monotonic() < deadline, "the second member got no partition"
            other.poll(0.2)
        other.close()
        deadline = time.monotonic() + 30
        while "assigned: 4" not in arch.log_text().rsplit("revoked", 1)[-1]:
            assert time.monotonic() < deadline, arch.log_text()
            time.sleep(0.2)
        (archive / "api-logs").unlink()
        wait_committed(kafka_bootstrap, group, topic, timeout=60)
        check_objects(read_dir(archive), produced, topic)
        assert arch.metric("sluice_archiver_paused_partitions") == 0
    finally:
        assert arch.stop() == 0, arch.log_text()


def test_every_setting_is_documented_with_its_default(build_dir, root_dir):
    binary = str(build_dir / "services/archiver/sluice-archiver")
    env = {"PATH": os.environ.get("PATH", "")}
    effective = json.loads(subprocess.run([binary, "--print-config", "--json"],
                                          capture_output=True, text=True, env=env,
                                          check=True).stdout)
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                               check=True).stdout
    doc = (root_dir / "docs" / "archiver.md").read_text()
    rows = dict(re.findall(r"^\| `(SLUICE_[A-Z0-9_]+)` \| ([^|]*) \|", doc, re.M))
    assert set(rows) == set(effective), set(rows) ^ set(effective)
    for name in effective:
        m = re.search(rf"^  {name} \([^,]+, default: (.*?)(?:, (?:range|one of|secret).*)?\)$",
                      help_text, re.M)
        default = m.group(1) if m and m.group(1) != "unset" else None
        cell = rows[name].strip()
        if default is not None:
            assert cell == f"`{default}`", (name, cell, default)
        else:
            assert cell.startswith("("), (name, cell)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


RSS_BOUND_MIB = 256


def test_memory_stays_bounded_while_s3_is_down_under_steady_load_and_it_resumes(
        build_dir, tmp_path, kafka_bootstrap, own_s3):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix, audit_partitions=6)  # the catalog's count
    topic = prefix + "audit"
    group = f"it-archiver-{uuid.uuid4().hex[:8]}"
    # A sanitizer build keeps freed memory in quarantine (256 MiB by default), which says
    # nothing about the archiver's own bound: keep it small.
    asan = os.environ.get("ASAN_OPTIONS", "")
    arch = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, group,
                    f"s3://{own_s3.BUCKET}/mem", SLUICE_BATCH_MAX_AGE_MS="2000",
                    SLUICE_S3_TIMEOUT_MS="2000", SLUICE_ARCHIVE_RETRY_MAX_MS="2000",
                    ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=16",
                    **s3_settings(own_s3.endpoint, own_s3.ACCESS, own_s3.SECRET)).start()
    peak = 0.0
    try:
        with SteadyProducer(kafka_bootstrap, topic, 10_000, partitions=6) as steady:
            time.sleep(10)
            own_s3.stop()
            down_since = time.monotonic()
            while time.monotonic() - down_since < 60:
                peak = max(peak, rss_mib(arch.proc.pid))
                time.sleep(0.5)
            assert arch.metric("sluice_archiver_paused_partitions") > 0
            assert len(steady.produced) > 500_000  # the load really was ~10,000/s
            own_s3.start()
            time.sleep(5)
        wait_committed(kafka_bootstrap, group, topic, timeout=300, partitions=6)
        check_objects(read_bucket(own_s3.client(), own_s3.BUCKET, "mem"), steady.produced,
                      topic, prefix="mem")
        print(f"peak RSS while S3 was down: {peak:.0f} MiB for {len(steady.produced)} records")
        assert peak < RSS_BOUND_MIB, f"peak RSS {peak:.0f} MiB"
    finally:
        assert arch.stop() == 0, arch.log_text()
