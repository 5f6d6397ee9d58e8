"""The handler child's confinement, on a worker built without sanitizers: what a plugin can see
of the environment, the system calls it is refused, its limits, and that a process it starts
dies with it on a timeout."""
import errno
import json
import os
import pathlib
import pwd
import tempfile
import time

import pytest
import requests

from harness import Gateway, Service, create_topics, new_key, new_prefix, write_keys_file
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
    # SLUICE_CHILD_MEMORY_MB (512 by default) is the address-space limit, and it holds: an
    # allocation past it fails in the handler (the sanitized build cannot set it).
    assert got["as"] == 512 << 20
    assert got["alloc_over_as_fails"] == 1


def test_handler_sees_no_secret_in_its_environment(sandboxed):
    env = set(call(sandboxed, "/sandbox/probe").json()["env"])
    assert not {v for v in env if v.startswith("SLUICE_KAFKA_")}
    assert "AWS_SECRET_ACCESS_KEY" not in env and "DATABASE_URL" not in env
    # What it needs is there: its settings and the usual process environment.
    assert {"SLUICE_ROUTES_FILE", "PATH"} <= env


def test_a_process_the_handler_started_dies_with_it_on_timeout(sandboxed):
    # A place the handler's user can write to (under a root worker it is no longer root).
    shared = pathlib.Path(tempfile.mkdtemp(prefix="sluice-sandbox-"))
    shared.chmod(0o1777)
    marker = shared / "orphan-was-here"
    r = call(sandboxed, f"/sandbox/orphan?marker={marker}")
    assert r.status_code == 502  # the handler spun past its 1.5 s timeout and was killed
    time.sleep(4)  # the grandchild would have written the marker 3 s after it started
    assert not marker.exists()


def test_the_handler_of_a_root_worker_runs_as_an_unprivileged_user_for_good(sandboxed):
    got = call(sandboxed, "/sandbox/probe").json()
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")  # SLUICE_HANDLER_USER's default
        assert (got["uid"], got["euid"], got["gid"]) == (nobody.pw_uid, nobody.pw_uid,
                                                         nobody.pw_gid)
        assert got["groups"] == 0  # root's supplementary groups are gone too
        assert got["setuid0"] == errno.EPERM  # and root cannot be taken back
    else:
        assert (got["uid"], got["euid"]) == (os.getuid(), os.geteuid())


def test_a_handler_user_that_does_not_exist_stops_a_root_worker_at_start(
        plain_build_dir, kafka_bootstrap, tmp_path):
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    w = WorkerProcess(plain_build_dir, tmp_path, kafka_bootstrap, prefix, routes_file,
                      SLUICE_HANDLER_USER="no-such-user-here")
    if os.geteuid() != 0:  # not root: the setting does not apply and the worker starts
        w.start()
        assert w.stop() == 0
        return
    Service.start(w)  # the process alone: it is not expected to become ready
    assert w.proc.wait(timeout=30) == 1, w.log_text()[-2000:]
    assert "SLUICE_HANDLER_USER: no user" in w.log_text(), w.log_text()[-2000:]
    assert "no-such-user-here" in w.log_text()
