"""Every binary is built hardened: a position-independent executable, full RELRO (the GOT
read-only after start), and stack canaries. Checked on the sanitizer build and on the plain
build (the release flags add _FORTIFY_SOURCE, which needs the optimiser)."""
import re
import subprocess

import pytest

BINARIES = ["services/gateway/sluice-gateway", "services/worker/sluice-worker",
            "services/archiver/sluice-archiver", "tools/sluicectl/sluicectl"]


def readelf(*args):
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("binary", BINARIES)
def test_binary_is_pie_with_full_relro_and_stack_canaries(build_dir, binary):
    path = str(build_dir / binary)
    assert "DYN (Position-Independent Executable file)" in readelf("-h", path)
    dynamic = readelf("-d", path)
    assert re.search(r"\(FLAGS_1\)\s+Flags:.*\bNOW\b.*\bPIE\b", dynamic), dynamic
    assert "GNU_RELRO" in readelf("-l", path)
    assert "__stack_chk_fail" in readelf("--dyn-syms", "-W", path)


def test_plain_worker_is_hardened_too(plain_build_dir):
    path = str(plain_build_dir / "services/worker/sluice-worker")
    assert "DYN (Position-Independent Executable file)" in readelf("-h", path)
    assert "GNU_RELRO" in readelf("-l", path)
    assert "__stack_chk_fail" in readelf("--dyn-syms", "-W", path)
