"""sluicectl topics create against the real broker: the four topics, their shapes, idempotence."""
import os
import subprocess
import uuid

from confluent_kafka.admin import AdminClient, ConfigResource


def run(build_dir, bootstrap, *args, prefix):
    env = dict(os.environ, SLUICE_KAFKA_BOOTSTRAP_SERVERS=bootstrap, SLUICE_TOPIC_PREFIX=prefix)
    return subprocess.run([str(build_dir / "tools" / "sluicectl" / "sluicectl"), "topics", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_topics_create_makes_the_four_topics_and_is_idempotent(build_dir, kafka_bootstrap):
    prefix = f"ctl{uuid.uuid4().hex[:8]}."
    first = run(build_dir, kafka_bootstrap, "create", "--replies-partitions", "3", prefix=prefix)
    assert first.returncode == 0, first.stderr
    names = [prefix + t for t in ("requests", "replies", "dlq", "audit")]
    assert first.stdout == "".join(f"{n}\tready\n" for n in names)
    again = run(build_dir, kafka_bootstrap, "create", prefix=prefix)
    assert again.returncode == 0 and again.stdout == first.stdout

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    md = admin.list_topics(timeout=10)
    parts = {n: len(md.topics[n].partitions) for n in names}
    assert parts == {names[0]: 12, names[1]: 3, names[2]: 3, names[3]: 6}
    res = ConfigResource(ConfigResource.Type.TOPIC, names[2])
    cfg = admin.describe_configs([res])[res].result(timeout=10)
    assert cfg["retention.ms"].value == "1209600000"  # the DLQ keeps 14 days


def test_topics_create_reports_an_unreachable_cluster(build_dir):
    r = run(build_dir, "127.0.0.1:1", "create", "--timeout-ms", "1500", prefix="x.")
    assert r.returncode == 1
    assert "sluicectl topics create:" in r.stderr


def test_topics_usage_errors_exit_2(build_dir, kafka_bootstrap):
    r = run(build_dir, kafka_bootstrap, "create", "--replies-partitions", "0", prefix="x.")
    assert r.returncode == 2
    assert "partitions must be 1..10000, not 0" in r.stderr
    assert run(build_dir, kafka_bootstrap, "drop", prefix="x.").returncode == 2
