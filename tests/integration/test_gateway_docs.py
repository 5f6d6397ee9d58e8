"""docs/gateway.md's settings table matches the gateway's settings table, name by name."""
import json
import os
import re
import subprocess


def test_every_setting_is_documented_with_its_default(build_dir, root_dir, tmp_path):
    # --print-config loads what the start loads: the keys file must be a keys file.
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"version": 1, "keys": []}))
    env = {"SLUICE_KEYS_FILE": str(keys), "PATH": os.environ.get("PATH", "")}
    out = subprocess.run([str(build_dir / "services/gateway/sluice-gateway"), "--print-config",
                          "--json"], capture_output=True, text=True, env=env, check=True).stdout
    effective = json.loads(out)
    help_text = subprocess.run([str(build_dir / "services/gateway/sluice-gateway"), "--help"],
                               capture_output=True, text=True, check=True).stdout
    doc = (root_dir / "docs" / "gateway.md").read_text()
    rows = dict(re.findall(r"^\| `(SLUICE_[A-Z0-9_]+)` \| ([^|]*) \|", doc, re.M))
    documented = {k for k in rows if k != "SLUICE_KAFKA_"}
    assert documented == set(effective), (set(effective) ^ documented)
    for name in effective:
        assert name in help_text
        m = re.search(rf"^  {name} \([^,]+, default: (.*?)(?:, (?:range|one of|secret).*)?\)$",
                      help_text, re.M)
        default = m.group(1) if m and m.group(1) != "unset" else None
        cell = rows[name].strip()
        if default is not None:
            assert cell == f"`{default}`", (name, cell, default)
        else:
            assert cell.startswith("("), (name, cell)
