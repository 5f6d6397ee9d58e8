"""docs/worker.md's and docs/archiver.md's settings tables match the binaries' own settings
tables, name by name, with the defaults --help gives (the gateway's: test_gateway_docs.py); so
does docs/sluicectl.md's environment table."""
import json
import os
import re
import subprocess

import pytest


@pytest.mark.parametrize("binary,page", [("services/worker/sluice-worker", "worker.md"),
                                         ("services/archiver/sluice-archiver", "archiver.md")])
def test_every_setting_is_documented_with_its_default(build_dir, root_dir, binary, page):
    exe = str(build_dir / binary)
    env = {"PATH": os.environ.get("PATH", "")}
    effective = json.loads(subprocess.run([exe, "--print-config", "--json"], capture_output=True,
                                          text=True, env=env, check=True).stdout)
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    doc = (root_dir / "docs" / page).read_text()
    rows = dict(re.findall(r"^\| `(SLUICE_[A-Z0-9_]+)` \| ([^|]*) \|", doc, re.M))
    documented = {k for k in rows if k != "SLUICE_KAFKA_"}
    assert documented == set(effective), (set(effective) ^ documented)
    for name in effective:
        m = re.search(rf"^  {name} \([^,]+, default: (.*?)(?:, (?:range|one of|secret).*)?\)$",
                      help_text, re.M)
        assert m, name
        default = m.group(1) if m.group(1) != "unset" else None
        cell = rows[name].strip()
        if default is not None:
            assert cell == f"`{default}`", (name, cell, default)
        else:
            assert cell.startswith("("), (name, cell)


def test_every_sluicectl_variable_is_documented(build_dir, root_dir):
    """docs/sluicectl.md's environment table names exactly the variables sluicectl's own
    settings table reads (as its --help lists them)."""
    help_text = subprocess.run([str(build_dir / "tools/sluicectl/sluicectl"), "--help"],
                               capture_output=True, text=True, check=True).stdout
    listed = help_text.split("\nEnvironment:\n", 1)[1]
    read = set(re.findall(r"^  (SLUICE_[A-Z0-9_]+) ", listed, re.M))
    assert len(read) >= 6, listed
    doc = (root_dir / "docs" / "sluicectl.md").read_text()
    table = doc.split("## Environment", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for first_cell in re.findall(r"^\| ([^|]*) \|", table, re.M):
        documented |= set(re.findall(r"`(SLUICE_[A-Z0-9_]+)`", first_cell))
    assert documented == read, documented ^ read
