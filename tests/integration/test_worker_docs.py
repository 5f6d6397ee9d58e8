"""docs/worker.md's settings table matches the worker's settings table, name by name."""
import json
import os
import re
import subprocess


def test_every_worker_setting_is_documented_with_its_default(build_dir, root_dir):
    exe = str(build_dir / "services/worker/sluice-worker")
    env = {"PATH": os.environ.get("PATH", "")}
    effective = json.loads(subprocess.run([exe, "--print-config", "--json"], capture_output=True,
                                          text=True, env=env, check=True).stdout)
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True, check=True).stdout
    doc = (root_dir / "docs" / "worker.md").read_text()
    rows = dict(re.findall(r"^\| `(SLUICE_[A-Z_]+)` \| ([^|]*) \|", doc, re.M))
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
