"""The topic catalog: whichever binary creates the topics first, they get the catalog's shape.

The gateway and the worker create missing topics at start with SLUICE_AUTO_CREATE_TOPICS=true;
`sluicectl topics create` creates all four. Each order of the three, on a fresh prefix, must
leave the same partition counts and configs (common/src/topics.c, docs/internals/kafka.md).
"""
import itertools
import os
import subprocess
import time

import pytest
import requests
from confluent_kafka.admin import AdminClient, ConfigResource

from harness import Gateway, Service, free_port, new_key, new_prefix, write_keys_file

# The catalog, as docs/internals/kafka.md states it.
CATALOG = {
    "requests": (12, {"retention.ms": "86400000"}),
    "replies": (16, {"retention.ms": "3600000"}),
    "dlq": (3, {"retention.ms": "1209600000"}),
    "audit": (6, {"retention.ms": "604800000"}),
}
COMMON = {"cleanup.policy": "delete", "compression.type": "producer",
          "max.message.bytes": "16777216"}


def wait_ready(svc, admin_url, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if svc.proc.poll() is not None:
            raise AssertionError(f"{what} exited with {svc.proc.returncode}:\n{svc.log_text()}")
        try:
            if requests.get(admin_url + "/readyz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not ready after {timeout}s:\n{svc.log_text()}")


def run_gateway(build_dir, tmp_path, bootstrap, prefix):
    value, kid, h = new_key()
    keys = tmp_path / f"keys-{prefix}json"
    write_keys_file(keys, [{"id": kid, "hash": h}])
    gw = Gateway(build_dir, tmp_path, bootstrap, prefix, keys, SLUICE_AUTO_CREATE_TOPICS="true")
    gw.start()
    assert gw.stop() == 0, gw.log_text()


def run_worker(build_dir, tmp_path, bootstrap, prefix):
    admin_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({
        "SLUICE_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "SLUICE_TOPIC_PREFIX": prefix,
        "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
        "SLUICE_WORKER_GROUP": prefix + "worker",
        "SLUICE_WORKER_INSTANCE_ID": prefix + "w0",
        "SLUICE_WORKER_CONCURRENCY": "1",
        "SLUICE_AUTO_CREATE_TOPICS": "true",
    })
    w = Service(build_dir / "services" / "worker" / "sluice-worker", env,
                tmp_path / f"worker-{admin_port}.log").start()
    try:
        wait_ready(w, f"http://127.0.0.1:{admin_port}", "worker")
    finally:
        rc = w.stop()
    assert rc == 0, w.log_text()


def run_sluicectl(build_dir, tmp_path, bootstrap, prefix):
    env = dict(os.environ, SLUICE_KAFKA_BOOTSTRAP_SERVERS=bootstrap, SLUICE_TOPIC_PREFIX=prefix)
    r = subprocess.run([str(build_dir / "tools" / "sluicectl" / "sluicectl"), "topics", "create"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr


CREATORS = {"gateway": run_gateway, "worker": run_worker, "sluicectl": run_sluicectl}


@pytest.mark.parametrize("order", list(itertools.permutations(CREATORS)), ids="-then-".join)
def test_every_creation_order_gives_the_catalogs_shapes(build_dir, tmp_path, kafka_bootstrap,
                                                         order):
    prefix = new_prefix()
    for name in order:
        CREATORS[name](build_dir, tmp_path, kafka_bootstrap, prefix)

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    md = admin.list_topics(timeout=10)
    got_parts = {t: len(md.topics[prefix + t].partitions) for t in CATALOG
                 if prefix + t in md.topics}
    assert got_parts == {t: parts for t, (parts, _) in CATALOG.items()}
    for t, (_, configs) in CATALOG.items():
        res = ConfigResource(ConfigResource.Type.TOPIC, prefix + t)
        cfg = admin.describe_configs([res])[res].result(timeout=10)
        want = dict(COMMON, **configs)
        assert {k: cfg[k].value for k in want} == want, t
