"""docs/gateway.md's settings table matches the gateway's settings table, name by name, and its
error contract lists every row of the gateway's error table."""
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


def test_every_row_of_the_error_table_is_documented(root_dir):
    """Each row of services/gateway/errors.c (status, body, x-amzn-ErrorType, Retry-After) has
    a row of docs/gateway.md's error contract with the same status, body and error type, and a
    row that carries Retry-After says so; the page lists no status the table lacks."""
    src = (root_dir / "services" / "gateway" / "errors.c").read_text()
    rows = []
    for m in re.finditer(r"\[GW_ERR_[A-Z_]+\] = \{(.*?)\},?\s*(?=\[GW_ERR_|\};)", src, re.S):
        fields = dict(re.findall(r'\.(\w+) = ("(?:[^"\\]|\\.)*"|\d+)', m.group(1)))
        text = {k: json.loads(v) if v.startswith('"') else int(v) for k, v in fields.items()}
        rows.append((text["status"], text["body"], text.get("error_type", ""),
                     text.get("retry_after")))
    assert len(rows) >= 14, rows
    doc = (root_dir / "docs" / "gateway.md").read_text()
    section = doc.split("## Error contract", 1)[1].split("\n## ", 1)[0]
    documented = [(int(status), body, rest, etype.strip())
                  for status, body, rest, etype in re.findall(
                      r"^\|[^|]*\| (\d{3}) \| `([^`]*)`([^|]*)\|([^|]*)\|$", section, re.M)]
    for status, body, etype, retry_after in rows:
        match = [d for d in documented if d[0] == status and d[1] == body and d[3] == etype]
        assert match, (status, body, etype)
        if retry_after:
            assert all(f"`Retry-After: {retry_after}`" in d[2] for d in match), match
    assert {d[0] for d in documented} == {r[0] for r in rows}
