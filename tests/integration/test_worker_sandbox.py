"""The handler child's confinement, on a worker built without sanitizers: what a plugin can see
of the environment, the system calls it is refused, its limits, and that a process it starts
dies with it on a timeout."""
import errno
import json
import time

import pytest
import requests

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_worker import WorkerProcess


@pytest.fixture(scope="module")
def sandboxed(plain_build_dir, build_dir, kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sandbox")
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    plugin = plain_build_dir / "services" / "worker" / "plugin-sandbox.so"
    routes = {"routes": [{"method": "ANY", "path": "/sandbox/{proxy+}", "api_key_required": True,
                          "handler": "plugin", "plugin": str(plugin)}]}
    routes_file = tmp / "routes.json"
    routes_file.write_text(json.dumps(routes))
    value, kid, digest = new_key()
    keys_file = tmp / "keys.json"
    write_keys_file(keys_file, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(plain_build_dir, tmp, kafka_bootstrap, prefix, routes_file,
                           SLUICE_HANDLER_TIMEOUT_MS=1500, SLUICE_MAX_ATTEMPTS=1,
                           # Secrets a handler must never see: librdkafka's (passed through,
                           # harmless without SASL) and a cloud credential.
                           SLUICE_KAFKA_SASL_PASSWORD="kafka-secret",
                           AWS_SECRET_ACCESS_KEY="aws-secret", DATABASE_URL="postgres://x").start()
    gw = Gateway(build_dir, tmp, kafka_bootstrap, prefix, keys_file,
                 SLUICE_ROUTES_FILE=routes_file, SLUICE_REQUEST_TIMEOUT_MS=8000).start()
    yield {"gw": gw, "key": value, "tmp": tmp}
    gw.stop()
    assert worker.stop() == 0, worker.log_text()[-3000:]


def call(st, path):
    return requests.get(st["gw"].url + path, headers={"X-API-Key": st["key"]}, timeout=30)


def test_handler_is_refused_tracing_raw_sockets_and_leaving_its_group(sandboxed):
    r = call(sandboxed, "/sandbox/probe")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["ptrace"] == errno.EPERM
    assert got["raw"] == errno.EPERM
    assert got["packet"] == errno.EPERM
    assert got["setsid"] == errno.EPERM


def test_handler_runs_under_its_limits(sandboxed):
    got = call(sandboxed, "/sandbox/probe").json()
    assert (got["core"], got["nofile"], got["nproc"]) == (0, 256, 256)


def test_handler_sees_no_secret_in_its_environment(sandboxed):
    env = set(call(sandboxed, "/sandbox/probe").json()["env"])
    assert not {v for v in env if v.startswith("SLUICE_KAFKA_")}
    assert "AWS_SECRET_ACCESS_KEY" not in env and "DATABASE_URL" not in env
    # What it needs is there: its settings and the usual process environment.
    assert {"SLUICE_ROUTES_FILE", "PATH"} <= env


def test_a_process_the_handler_started_dies_with_it_on_timeout(sandboxed):
    marker = sandboxed["tmp"] / "orphan-was-here"
    r = call(sandboxed, f"/sandbox/orphan?marker={marker}")
    assert r.status_code == 502  # the handler spun past its 1.5 s timeout and was killed
    time.sleep(4)  # the grandchild would have written the marker 3 s after it started
    assert not marker.exists()
