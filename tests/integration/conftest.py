"""Shared fixtures for the integration tests: where the build is and where the stack listens.

The tests run against the real components `scripts/stack up` starts; `scripts/test` exports
the endpoints. Run by hand with: eval "$(scripts/stack up)"; .deps/venv/bin/pytest tests/integration
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _stack_env():
    """The stack's endpoints: from the environment, or asked of scripts/stack (no start)."""
    if "SLUICE_KAFKA_BOOTSTRAP_SERVERS" in os.environ:
        return dict(os.environ)
    out = subprocess.run([str(ROOT / "scripts" / "stack"), "env"], check=True,
                         capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v.strip("'\"")
    return env


STACK = _stack_env()


@pytest.fixture(scope="session")
def root_dir():
    return ROOT


@pytest.fixture(scope="session")
def build_dir():
    d = pathlib.Path(os.environ.get("SLUICE_BUILD_DIR", ROOT / "build-test"))
    if not d.is_dir():
        pytest.fail(f"build directory {d} does not exist: build first or set SLUICE_BUILD_DIR")
    return d


@pytest.fixture(scope="session")
def plain_build_dir():
    """A build without sanitizers (scripts/test makes it), for what AddressSanitizer hides: the
    handler's RLIMIT_AS and the seccomp filter's ptrace rule (LeakSanitizer needs ptrace)."""
    d = pathlib.Path(os.environ.get("SLUICE_PLAIN_BUILD_DIR", ROOT / "build-plain"))
    if not (d / "services" / "worker" / "sluice-worker").is_file():
        pytest.fail(f"no sluice-worker in {d}: build it without sanitizers (scripts/test does) "
                    "or set SLUICE_PLAIN_BUILD_DIR")
    return d


@pytest.fixture(scope="session")
def stack_dir():
    """Where scripts/stack keeps the components' files (Kafka's log segments: kafka/data)."""
    return pathlib.Path(STACK["SLUICE_STACK_DIR"])


@pytest.fixture(scope="session")
def kafka_bootstrap():
    return STACK["SLUICE_KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def redis_url():
    return STACK["SLUICE_TEST_REDIS_URL"]


@pytest.fixture(scope="session")
def s3_endpoint():
    return STACK["SLUICE_TEST_S3_ENDPOINT"]


@pytest.fixture(scope="session")
def s3v4():
    """The SigV4-checking emulator: endpoint, access key and secret."""
    return {
        "endpoint": STACK["SLUICE_TEST_S3V4_ENDPOINT"],
        "access_key": STACK["SLUICE_TEST_S3V4_ACCESS_KEY"],
        "secret": STACK["SLUICE_TEST_S3V4_SECRET"],
    }
