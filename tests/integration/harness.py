"""Helpers the service integration tests share: topics, keys files, service processes, and a
fake worker that answers requests through the real Kafka broker.

Everything here drives the real binaries and the real stack; nothing is mocked.
"""
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid

import msgpack
import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_topics(bootstrap, prefix, replies_partitions=4, requests_partitions=4, audit_partitions=2,
                  audit_config=None, requests_config=None):
    """Creates <prefix>requests/replies/audit/dlq and waits until they exist."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(prefix + "requests", requests_partitions, 1, config=requests_config or {}),
              NewTopic(prefix + "replies", replies_partitions, 1),
              NewTopic(prefix + "audit", audit_partitions, 1, config=audit_config or {}),
              NewTopic(prefix + "dlq", 2, 1)]
    for f in admin.create_topics(topics).values():
        f.result(timeout=30)


# Errors a broker gives for a partition whose leadership the client does not know yet (a new
# client's metadata, a topic created a moment ago): asked again, not failed.
LEADERSHIP_SETTLING = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                       KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TIMED_OUT,
                       KafkaError._TRANSPORT}


def end_offsets(bootstrap, topic, partitions=None, settle_s=30):
    """{partition: high watermark} of `topic` (all its partitions, or range(partitions))."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "it-watermarks"})
    deadline = time.monotonic() + settle_s
    try:
        if partitions is None:
            parts = sorted(c.list_topics(topic, timeout=10).topics[topic].partitions)
        else:
            parts = range(partitions)
        out = {}
        for p in parts:
            while True:
                try:
                    out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    break
                except KafkaException as e:
                    if e.args[0].code() not in LEADERSHIP_SETTLING or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        return out
    finally:
        c.close()


def new_prefix():
    return f"it{uuid.uuid4().hex[:10]}."


def new_key():
    """A key value in Sluice's format, its id, and the keys-file hash."""
    value = "sk_" + secrets.token_urlsafe(32)[:43]
    return value, "key_" + secrets.token_hex(8), "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def write_keys_file(path, keys, plans=None):
    """Writes a keys file atomically (temp + rename), like sluicectl and Kubernetes do.

    keys: dicts with id, hash and optionally name, plan, enabled, expires, revoked.
    """
    doc = {"version": 1, "keys": []}
    if plans is not None:
        doc["plans"] = plans
    for k in keys:
        doc["keys"].append({
            "id": k["id"], "name": k.get("name", k["id"]), "hash": k["hash"],
            "plan": k.get("plan", "default"), "enabled": k.get("enabled", True),
            "created": "2026-01-01T00:00:00Z", "expires": k.get("expires"),
            "revoked": k.get("revoked")})
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:6]}"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


class Service:
    """A Sluice binary run as a child process with a log file; stopped with SIGTERM."""

    def __init__(self, binary, env, log_path):
        self.binary = binary
        self.env = env
        self.log_path = log_path
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary)], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, timeout=30):
        """SIGTERM, wait, and return the exit code (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self.log.close()

    def signal(self, sig):
        self.proc.send_signal(sig)


class Gateway(Service):
    def __init__(self, build_dir, tmp_path, bootstrap, prefix, keys_file, index=0, **settings):
        self.port = free_port()
        self.admin_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
        env.update({
            "SLUICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "SLUICE_TOPIC_PREFIX": prefix,
            "SLUICE_KEYS_FILE": str(keys_file),
            "SLUICE_LISTEN": f"127.0.0.1:{self.port}",
            "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "SLUICE_GATEWAY_INDEX": str(index),
            "SLUICE_LOG_LEVEL": "debug",
            # The demo's origins, as `make run` sets them: CORS is off unless origins are named.
            "SLUICE_CORS_ORIGINS": "https://yourdomain.com,https://app.yourdomain.com",
        })
        # A setting given as None is left unset, to see the binary's own default.
        env.update({k: str(v) for k, v in settings.items() if v is not None})
        for k in [k for k, v in settings.items() if v is None]:
            env.pop(k, None)
        super().__init__(build_dir / "services" / "gateway" / "sluice-gateway", env,
                         tmp_path / f"gateway-{index}-{self.port}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout=30):
        super().start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(self.admin + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"gateway not ready after {timeout}s:\n{self.log_text()}")

    def metrics(self):
        return requests.get(self.admin + "/metrics", timeout=5).text

    def metric(self, name_and_labels):
        """The value of one sample, e.g. 'sluice_gateway_late_replies_total'; 0 if absent."""
        for line in self.metrics().splitlines():
            if line.startswith(name_and_labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def reply_envelope(req, status=200, headers=None, body=b"", error=None):
    rep = {"v": 1, "id": req["id"], "status": status, "headers": headers or {}, "body": body}
    if error:
        rep["error"] = error
    return msgpack.packb(rep, use_bin_type=True)


class FakeWorker(threading.Thread):
    """Consumes <prefix>requests and answers on the reply partition each request names.

    `handler(envelope, message)` returns the reply value (bytes) to produce, or None to stay
    silent. Envelopes and Kafka headers of everything received are kept for assertions.
    """

    def __init__(self, bootstrap, prefix, handler):
        super().__init__(daemon=True)
        self.prefix = prefix
        self.handler = handler
        self.received = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.consumer = Consumer({"bootstrap.servers": bootstrap,
                                  "group.id": f"fake-worker-{uuid.uuid4().hex[:8]}",
                                  "auto.offset.reset": "earliest",
                                  "fetch.wait.max.ms": 10})
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

    def run(self):
        self.consumer.subscribe([self.prefix + "requests"],
                                on_assign=lambda c, parts: self.ready.set())
        while not self.stopping.is_set():
            msg = self.consumer.poll(0.05)
            if msg is None or msg.error():
                continue
            env = msgpack.unpackb(msg.value(), raw=False)
            with self.lock:
                self.received.append((env, msg))
            out = self.handler(env, msg)
            if out is not None:
                self.producer.produce(self.prefix + "replies", value=out, key=env["id"],
                                      partition=env["reply_partition"],
                                      headers=[("sluice-id", env["id"].encode())])
                self.producer.poll(0)
        self.producer.flush(10)
        self.consumer.close()

    def start(self):
        super().start()
        assert self.ready.wait(30), "fake worker got no partition assignment"
        return self

    def stop(self):
        self.stopping.set()
        self.join(30)

    def envelopes(self):
        with self.lock:
            return [e for e, _ in self.received]


def echo_handler(env, msg):
    """Answers 200 with a JSON summary of what the gateway published."""
    body = json.dumps({"method": env["method"], "path": env["path"]}).encode()
    return reply_envelope(env, 200, {"Content-Type": ["application/json"]}, body)


def consume_all(bootstrap, topic, timeout=10, expect=None):
    """Every message of a topic from the beginning (stops after `expect` or an idle second)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    out, idle_since, deadline = [], time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is None or m.error():
            if expect is None and time.monotonic() - idle_since > 1.0:
                break
            if expect is not None and len(out) >= expect:
                break
            continue
        idle_since = time.monotonic()
        out.append(m)
    c.close()
    return out
