"""`docker compose up` for real: compose.yaml, with the test-only override that swaps the
unpullable images for local stand-ins, run by podman-compose on podman (scripts/test-containers
builds the images first). The stack comes up in compose.yaml's dependency order, a keyed request
through the gateway's published port gets the echo handler's answer, the worker scales to 3, and
tearing down leaves no container, volume or network of the project behind.

Podman 4.3 (Debian 12) runs health checks from systemd timers, and there is no systemd here; nor
does its `podman wait` know `--condition=healthy`, so podman-compose would start a service before
the ones it needs are healthy. The fixture below therefore does what Docker Compose does with
depends_on: it starts one service at a time, in dependency order, each after its dependencies
meet their conditions (service_healthy: the service's own health check, run with `podman
healthcheck run`, passes; service_completed_successfully: it exited 0)."""
import gzip
import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time

import pytest
import requests
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("SLUICE_CT_PROJECT", "sluice-ctest")
FILES = [ROOT / "compose.yaml", ROOT / "tests" / "containers" / "compose.override.yaml"]
# Generous for a loaded 2-core machine: the JVM of Kafka and of each health check start slowly.
HEALTH_TIMEOUT = float(os.environ.get("SLUICE_CT_HEALTH_TIMEOUT", "240"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ENV = dict(os.environ,
           SLUICE_IMAGE=os.environ.get("SLUICE_IMAGE", "localhost/sluice:test"),
           SLUICE_HTTP_PORT=str(free_port()), MINIO_CONSOLE_PORT=str(free_port()))


def run(*cmd, timeout=300, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                       env=ENV)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n"
                             f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def compose(*args, timeout=300):
    files = [a for f in FILES for a in ("-f", f)]
    return run(sys.executable, "-m", "podman_compose", "--in-pod", "false", "-p", PROJECT,
               *files, *args, timeout=timeout)


def containers(service=None, all_states=True):
    cmd = ["podman", "ps", "--format", "{{.Names}}",
           "--filter", f"label=com.docker.compose.project={PROJECT}"]
    if service:
        cmd += ["--filter", f"label=com.docker.compose.service={service}"]
    if all_states:
        cmd.append("-a")
    return sorted(run(*cmd).stdout.split())


VOLUMES_BEFORE = set()


def volumes():
    return set(run("podman", "volume", "ls", "--format", "{{.Name}}").stdout.split())


def logs(name):
    p = run("podman", "logs", name, check=False)
    return (p.stdout + p.stderr)[-4000:]


def running(name):
    p = run("podman", "inspect", "--format", "{{.State.Running}}", name, check=False)
    return p.stdout.strip() == "true"


def wait_healthy(name, timeout=HEALTH_TIMEOUT):
    """Runs the container's health check until it passes (podman has no timer for it here)."""
    deadline = time.monotonic() + timeout
    while True:
        if not running(name):
            raise AssertionError(f"{name} is not running; its log:\n{logs(name)}")
        if run("podman", "healthcheck", "run", name, check=False, timeout=120).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} not healthy after {timeout:.0f}s; its log:\n{logs(name)}")
        time.sleep(2)


def wait_completed(name, timeout=HEALTH_TIMEOUT):
    code = run("podman", "wait", name, timeout=timeout).stdout.strip()
    assert code == "0", f"{name} exited {code}; its log:\n{logs(name)}"


def default_services(spec):
    """Services outside any profile, dependencies first (compose.yaml's start order)."""
    services = {k: v for k, v in spec["services"].items() if not v.get("profiles")}
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        for dep in services[name].get("depends_on", {}):
            visit(dep)
        order.append(name)

    for name in services:
        visit(name)
    return services, order


def meet(dep, condition):
    for name in containers(dep):
        if condition == "service_healthy":
            wait_healthy(name)
        elif condition == "service_completed_successfully":
            wait_completed(name)


@pytest.fixture(scope="module")
def stack():
    spec = yaml.safe_load(FILES[0].read_text())
    services, order = default_services(spec)
    if containers():  # a run that was killed before its teardown
        compose("down", "-v", "--remove-orphans", "-t", "5")
    VOLUMES_BEFORE.update(volumes())
    t0 = time.monotonic()
    try:
        for name in order:
            for dep, cond in services[name].get("depends_on", {}).items():
                meet(dep, cond["condition"])
            compose("up", "-d", "--no-deps", name)
        for name in order:
            if "restart" in services[name]:  # the long-running ones: all healthy at the end
                meet(name, "service_healthy")
        print(f"stack up and healthy in {time.monotonic() - t0:.0f}s")
        yield services
    finally:
        for name in containers():
            if run("podman", "inspect", "--format", "{{.State.ExitCode}}", name,
                   check=False).stdout.strip() not in ("0", ""):
                print(f"--- {name}:\n{logs(name)}")
        compose("down", "-v", "--remove-orphans", "-t", "10")


def demo_key():
    (name,) = containers("demo-key")
    text = logs(name)
    key = re.search(r"^API key: (sk_\S+)$", text, re.M)
    assert key, text
    return key.group(1), text


def test_the_demo_key_is_printed_with_a_curl_line_that_works(stack):
    key, text = demo_key()
    curl = re.search(r"curl -i -H 'X-API-Key: (\S+)' (http://\S+)$", text, re.M)
    assert curl and curl.group(1) == key, text
    assert curl.group(2) == f"http://localhost:{ENV['SLUICE_HTTP_PORT']}/hello"
    # The worker may still be joining its consumer group: retry until it answers.
    deadline = time.monotonic() + 120
    while True:
        r = requests.get(curl.group(2).replace("localhost", "127.0.0.1"),
                         headers={"X-API-Key": key}, timeout=40)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["data"]["path"] == "/hello", body
    assert body["stage"] == "dev", body


def test_a_request_without_a_key_is_refused(stack):
    r = requests.get(f"http://127.0.0.1:{ENV['SLUICE_HTTP_PORT']}/hello", timeout=10)
    assert r.status_code == 403, r.text


def test_the_audit_bucket_exists_and_only_published_ports_are_published(stack):
    (setup,) = containers("minio-setup")
    assert "sluice/sluice-audit" in logs(setup)
    published = {}
    for name in containers(all_states=False):
        ports = run("podman", "port", name).stdout.split("\n")
        ports = [p.split(" -> ") for p in ports if p.strip()]
        if ports:
            published[name] = ports
    assert sorted(published.values()) == [
        [["8080/tcp", f"127.0.0.1:{ENV['SLUICE_HTTP_PORT']}"]],
        [["9001/tcp", f"127.0.0.1:{ENV['MINIO_CONSOLE_PORT']}"]]], published


def test_the_archiver_writes_the_audit_trail_to_the_bucket(stack):
    key, _ = demo_key()
    url = f"http://127.0.0.1:{ENV['SLUICE_HTTP_PORT']}/archived/{os.getpid()}"
    deadline = time.monotonic() + 120
    while True:
        r = requests.get(url, headers={"X-API-Key": key}, timeout=40)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert r.status_code == 200, r.text
    rid = r.headers["x-amzn-RequestId"]
    (minio,) = containers("minio", all_states=False)
    # The archiver closes a batch 10 s after its first record (compose.yaml), then uploads it,
    # signed, to the S3 service; the emulator keeps each object as a file under /data.
    deadline = time.monotonic() + 120
    found = []
    while not found and time.monotonic() < deadline:
        out = run("podman", "exec", minio, "find", "/data/sluice-audit", "-type", "f",
                  "-path", "*/dev/api-logs/year=*", check=False).stdout.split()
        for path in (p for p in out if ".ndjson.gz" in p and "metadata" not in p):
            blob = subprocess.run(["podman", "exec", minio, "cat", path], capture_output=True,
                                  timeout=60, env=ENV).stdout
            try:
                lines = gzip.decompress(blob).decode().splitlines()
            except (OSError, EOFError):
                continue  # not the object's bytes (the emulator's metadata file)
            found += [json.loads(line) for line in lines
                      if json.loads(line).get("request_id") == rid]
        if not found:
            time.sleep(3)
    (name,) = containers("archiver", all_states=False)
    assert found, f"no audit record of {rid} in the bucket; archiver log:\n{logs(name)}"
    assert len(found) == 1, found  # in exactly one object
    assert found[0]["status"] == 200 and found[0]["path"] == f"/archived/{os.getpid()}", found[0]


def test_the_worker_scales_to_three(stack):
    compose("up", "-d", "--no-deps", "--scale", "worker=3", "worker")
    workers = containers("worker", all_states=False)
    assert len(workers) == 3, workers
    for name in workers:
        wait_healthy(name)
    key, _ = demo_key()
    # The group rebalances as the new workers join; a request caught in it may time out (504)
    # and is sent again, as a client would.
    deadline = time.monotonic() + 180
    for i in range(6):
        while True:
            r = requests.get(f"http://127.0.0.1:{ENV['SLUICE_HTTP_PORT']}/scaled/{i}",
                             headers={"X-API-Key": key}, timeout=40)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["path"] == f"/scaled/{i}"


def test_teardown_leaves_nothing_behind(stack):
    # Runs last: the fixture's own teardown then has nothing left to do. podman-compose only
    # knows the replicas the file names, so the scaled-up workers go as --remove-orphans
    # (docker compose down removes them by itself).
    compose("down", "-v", "--remove-orphans", "-t", "10")
    assert containers() == []
    assert volumes() - VOLUMES_BEFORE == set()
    nets = run("podman", "network", "ls", "--format", "{{.Name}}").stdout.split()
    assert [n for n in nets if n.startswith(PROJECT + "_")] == []
