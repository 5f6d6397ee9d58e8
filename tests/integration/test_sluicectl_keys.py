"""sluicectl keys: create, list, revoke and rotate against a real keys file, as an operator would."""
import hashlib
import json
import os
import re
import stat
import subprocess

import pytest

KEY_RE = re.compile(r"^sk_[A-Za-z0-9_-]{43}$")
ID_RE = re.compile(r"^key_[0-9a-f]{16}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def ctl(build_dir, tmp_path):
    """Runs sluicectl with SLUICE_KEYS_FILE pointing at a fresh file in tmp_path."""
    binary = build_dir / "tools" / "sluicectl" / "sluicectl"
    keys_file = tmp_path / "keys.json"
    env = dict(os.environ, SLUICE_KEYS_FILE=str(keys_file))

    def run(*args, env_extra=None):
        e = dict(env, **(env_extra or {}))
        return subprocess.run([str(binary), *args], capture_output=True, text=True, env=e,
                              timeout=30)

    run.keys_file = keys_file
    run.binary = binary
    return run


def list_json(ctl):
    out = ctl("keys", "list", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_create_prints_exactly_id_and_key_once_and_stores_only_the_hash(ctl):
    out = ctl("keys", "create", "--name", "mobile-app", "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 1
    created = json.loads(out.stdout)
    assert list(created) == ["id", "key"]
    assert out.stdout == f'{{"id": "{created["id"]}", "key": "{created["key"]}"}}\n'
    assert ID_RE.match(created["id"])
    assert KEY_RE.match(created["key"])

    text = ctl.keys_file.read_text()
    assert created["key"] not in text
    digest = hashlib.sha256(created["key"].encode()).hexdigest()
    doc = json.loads(text)
    assert doc["version"] == 1
    [entry] = doc["keys"]
    assert list(entry) == ["id", "name", "hash", "plan", "enabled", "created", "expires",
                           "revoked"]
    assert entry["hash"] == f"sha256:{digest}"
    assert entry["id"] == created["id"]
    assert entry["name"] == "mobile-app"
    assert entry["plan"] == "default"
    assert entry["enabled"] is True
    assert TIME_RE.match(entry["created"])
    assert entry["expires"] is None and entry["revoked"] is None
    assert stat.S_IMODE(ctl.keys_file.stat().st_mode) == 0o600

    # The key value appears nowhere else: not in list output, not in the file.
    listing = ctl("keys", "list")
    assert created["key"] not in listing.stdout + listing.stderr


def test_human_create_shows_the_key_with_a_warning(ctl):
    out = ctl("keys", "create", "--name", "web")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert re.match(r'^Created key key_[0-9a-f]{16} \(plan "default"\)\.$', lines[0])
    assert re.match(r"^API key: sk_[A-Za-z0-9_-]{43}$", lines[1])
    assert "will not be shown again" in lines[2]


def test_create_list_revoke_list(ctl):
    a = json.loads(ctl("keys", "create", "--name", "a", "--json").stdout)
    b = json.loads(ctl("keys", "create", "--name", "b", "--expires", "2099-01-01T00:00:00Z",
                       "--json").stdout)
    rows = list_json(ctl)
    created = [r["created"] for r in rows]
    assert rows == [
        {"id": a["id"], "name": "a", "plan": "default", "enabled": True, "created": created[0],
         "expires": None, "revoked": None, "status": "ok"},
        {"id": b["id"], "name": "b", "plan": "default", "enabled": True, "created": created[1],
         "expires": "2099-01-01T00:00:00Z", "revoked": None, "status": "ok"},
    ]

    out = ctl("keys", "revoke", a["id"])
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"Revoked key {a['id']}.\n"
    rows = list_json(ctl)
    assert TIME_RE.match(rows[0]["revoked"])
    assert rows[0] == {"id": a["id"], "name": "a", "plan": "default", "enabled": False,
                       "created": created[0], "expires": None, "revoked": rows[0]["revoked"],
                       "status": "revoked"}
    assert rows[1]["status"] == "ok"

    table = ctl("keys", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "PLAN", "STATUS", "CREATED", "EXPIRES", "REVOKED"]
    assert table[1].split()[:4] == [a["id"], "a", "default", "revoked"]
    assert table[2].split()[:4] == [b["id"], "b", "default", "ok"]


def test_rotate_keeps_id_name_plan_and_changes_the_hash(ctl):
    a = json.loads(ctl("keys", "create", "--name", "a", "--json").stdout)
    before = json.loads(ctl.keys_file.read_text())["keys"][0]
    out = ctl("keys", "rotate", a["id"], "--json")
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout)
    assert new["id"] == a["id"] and new["key"] != a["key"] and KEY_RE.match(new["key"])
    after = json.loads(ctl.keys_file.read_text())["keys"][0]
    assert after["hash"] == "sha256:" + hashlib.sha256(new["key"].encode()).hexdigest()
    assert {k: v for k, v in after.items() if k != "hash"} == \
        {k: v for k, v in before.items() if k != "hash"}
    assert new["key"] not in ctl.keys_file.read_text()


def test_expires_in_and_plans_from_the_file(ctl):
    ctl.keys_file.write_text(json.dumps({"version": 1, "plans": {"gold": {
        "throttle": {"rate": 5, "burst": 10}}}, "keys": []}))
    out = ctl("keys", "create", "--name", "g", "--plan", "gold", "--expires-in", "30d", "--json")
    assert out.returncode == 0, out.stderr
    [row] = list_json(ctl)
    assert row["plan"] == "gold"
    assert TIME_RE.match(row["expires"])
    doc = json.loads(ctl.keys_file.read_text())
    assert doc["plans"] == {"gold": {"throttle": {"rate": 5, "burst": 10}}}

    out = ctl("keys", "create", "--name", "x", "--plan", "platinum")
    assert out.returncode == 1
    assert 'no plan named "platinum"' in out.stderr
    assert out.stdout == ""


@pytest.mark.parametrize("args, message", [
    ([], "missing a group"),
    (["bogus"], "unknown group 'bogus'"),
    (["keys"], "missing a command"),
    (["keys", "frob"], "unknown command 'frob'"),
    (["keys", "create"], "--name is required"),
    (["keys", "create", "--name", "x", "--frob"], "unknown option '--frob'"),
    (["keys", "create", "--name"], "--name needs a value (NAME)"),
    (["keys", "create", "--name", ""], "--name needs a non-empty value"),
    (["keys", "create", "--name", "   "], "--name must not be blank"),
    (["keys", "create", "--name", "x", "--expires", "2001-01-01T00:00:00Z"],
     "--expires: 2001-01-01T00:00:00Z is not in the future"),
    (["keys", "create", "--name", "x", "--expires", "tomorrow"], "--expires: expected"),
    (["keys", "create", "--name", "x", "--expires-in", "30y"], "--expires-in: expected"),
    (["keys", "create", "--name", "x", "--expires", "2099-01-01T00:00:00Z", "--expires-in", "1d"],
     "exclude each other"),
    (["keys", "revoke"], "missing ID"),
    (["keys", "revoke", "a", "b"], "unexpected argument 'b'"),
    (["keys", "list", "--name", "x"], "unknown option '--name'"),
])
def test_usage_errors_exit_2_with_a_message_on_stderr(ctl, args, message):
    out = ctl(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stdout == ""
    assert not ctl.keys_file.exists()


def test_missing_keys_file_setting_is_a_usage_error(ctl):
    out = ctl("keys", "list", env_extra={"SLUICE_KEYS_FILE": ""})
    assert out.returncode == 2
    assert "pass --keys-file PATH or set SLUICE_KEYS_FILE" in out.stderr


@pytest.mark.parametrize("where", ["before the group", "after the group", "after the command",
                                   "at the end"])
@pytest.mark.parametrize("form", ["--keys-file PATH", "--keys-file=PATH"])
def test_keys_file_option_overrides_the_environment_in_any_position(ctl, tmp_path, where, form):
    other = tmp_path / "other.json"
    opt = ["--keys-file", str(other)] if " " in form else [f"--keys-file={other}"]
    cmd = ["create", "--name", "a", "--json"]
    args = {"before the group": [*opt, "keys", *cmd],
            "after the group": ["keys", *opt, *cmd],
            "after the command": ["keys", "create", *opt, *cmd[1:]],
            "at the end": ["keys", *cmd, *opt]}[where]
    out = ctl(*args)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    # A positional before and after it: rotate ID --keys-file P, rotate --keys-file P ID.
    for rotate in (["keys", "rotate", created["id"], *opt],
                   ["keys", "rotate", *opt, created["id"]]):
        out = ctl(*rotate)
        assert out.returncode == 0, out.stderr
    [entry] = json.loads(other.read_text())["keys"]
    assert entry["id"] == created["id"] and entry["name"] == "a"
    assert not ctl.keys_file.exists()


@pytest.mark.parametrize("args, first", [
    (["--keys-file"], "sluicectl: --keys-file needs a value (PATH)"),
    (["keys", "--keys-file"], "sluicectl keys: --keys-file needs a value (PATH)"),
    (["keys", "list", "--keys-file"], "sluicectl keys list: --keys-file needs a value (PATH)"),
    (["keys", "list", "--keys-file="], "sluicectl keys list: --keys-file needs a non-empty value"),
    (["keys", "--frob", "list"], "sluicectl keys: unknown option '--frob'"),
])
def test_keys_file_without_a_value_is_a_usage_error(ctl, args, first):
    out = ctl(*args)
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == first
    assert out.stdout == ""


def test_operational_errors_exit_1(ctl):
    assert ctl("keys", "list").returncode == 1  # no file yet
    ctl("keys", "create", "--name", "a")
    out = ctl("keys", "revoke", "key_0000000000000000")
    assert out.returncode == 1
    assert 'no key with id "key_0000000000000000"' in out.stderr
    ctl.keys_file.write_text('{"version": 1, "keys": [{"id": "x", "hash": "nope"}]}')
    out = ctl("keys", "list")
    assert out.returncode == 1
    assert 'keys[0].hash: expected "sha256:" followed by 64 lowercase hex digits' in out.stderr


def test_help_at_every_level_exits_0(ctl):
    for args in (["--help"], ["keys", "--help"], ["keys", "create", "--help"],
                 ["keys", "list", "--help"], ["keys", "revoke", "--help"],
                 ["keys", "rotate", "--help"]):
        out = ctl(*args)
        assert out.returncode == 0, args
        assert out.stdout.startswith("Usage: sluicectl"), args


def test_concurrent_creates_all_land_in_the_file(ctl):
    binary_args = ["keys", "create", "--name", "n", "--json"]
    procs = [subprocess.Popen([str(ctl.binary), *binary_args], stdout=subprocess.PIPE,
                              env=dict(os.environ, SLUICE_KEYS_FILE=str(ctl.keys_file)))
             for _ in range(8)]
    ids = {json.loads(p.communicate(timeout=30)[0])["id"] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert {r["id"] for r in list_json(ctl)} == ids
    assert len(ids) == 8


def file_hashes(ctl):
    return {e["id"]: e["hash"] for e in json.loads(ctl.keys_file.read_text())["keys"]}


def no_key_value_on_disk(tmp_path):
    """No file next to the keys file (the lock file above all) holds a key value."""
    for f in tmp_path.iterdir():
        assert "sk_" not in f.read_text(errors="replace"), f


def run_shell(ctl, redirect, *args):
    """Runs sluicectl through sh with a redirection of its stdout (">&-", "> /dev/full")."""
    env = dict(os.environ, SLUICE_KEYS_FILE=str(ctl.keys_file))
    return subprocess.run(["sh", "-c", f'exec "$0" "$@" {redirect}', str(ctl.binary), *args],
                          capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_create_with_stdout_closed_refuses_and_writes_no_key(ctl, tmp_path, json_flag):
    out = run_shell(ctl, ">&-", "keys", "create", "--name", "cron", *json_flag)
    assert out.returncode == 1
    assert out.stderr.startswith("sluicectl keys create: standard output is closed"), out.stderr
    assert not ctl.keys_file.exists()
    no_key_value_on_disk(tmp_path)


def test_create_with_stdout_full_revokes_the_key_and_names_it(ctl, tmp_path):
    out = run_shell(ctl, "> /dev/full", "keys", "create", "--name", "cron")
    assert out.returncode == 1
    [entry] = list_json(ctl)
    assert out.stderr == (f"sluicectl keys create: cannot print the new key: No space left on "
                          f"device; key "
                          f"{entry['id']} was revoked at once; create another\n")
    assert entry["status"] == "revoked" and entry["enabled"] is False
    no_key_value_on_disk(tmp_path)


def test_rotate_with_stdout_closed_refuses_and_keeps_the_old_value(ctl, tmp_path):
    created = json.loads(ctl("keys", "create", "--name", "a", "--json").stdout)
    before = file_hashes(ctl)
    out = run_shell(ctl, ">&-", "keys", "rotate", created["id"])
    assert out.returncode == 1
    assert out.stderr.startswith("sluicectl keys rotate: standard output is closed"), out.stderr
    assert file_hashes(ctl) == before
    no_key_value_on_disk(tmp_path)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_rotate_with_stdout_full_undoes_the_rotation(ctl, tmp_path, json_flag):
    created = json.loads(ctl("keys", "create", "--name", "a", "--json").stdout)
    before = file_hashes(ctl)
    out = run_shell(ctl, "> /dev/full", "keys", "rotate", created["id"], *json_flag)
    assert out.returncode == 1
    assert out.stderr == (f"sluicectl keys rotate: cannot print the new value: No space left "
                          f"on device; the rotation of key {created['id']} was undone and its old value still "
                          f"works\n")
    assert file_hashes(ctl) == before
    assert [e["status"] for e in list_json(ctl)] == ["ok"]
    no_key_value_on_disk(tmp_path)


def test_a_revoked_key_is_not_rotated(ctl):
    created = json.loads(ctl("keys", "create", "--name", "a", "--json").stdout)
    assert ctl("keys", "revoke", created["id"]).returncode == 0
    before = ctl.keys_file.read_text()
    out = ctl("keys", "rotate", created["id"])
    assert out.returncode == 1
    assert out.stderr.startswith(f"sluicectl keys rotate: key {created['id']} is revoked"), \
        out.stderr
    assert out.stdout == ""
    assert ctl.keys_file.read_text() == before


def test_plans_shows_the_built_in_default_and_the_files_plans(ctl):
    out = ctl("keys", "plans")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split() == ["default", "1000", "2000", "10000/DAY"]
    assert not ctl.keys_file.exists()

    ctl.keys_file.write_text(json.dumps({"version": 1, "plans": {
        "gold": {"throttle": {"rate": 5, "burst": 10}},
        "partner": {"quota": {"limit": 100000, "period": "WEEK"}}}, "keys": []}))
    out = ctl("keys", "plans", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert rows["default"] == {"name": "default", "throttle": {"rate": 1000, "burst": 2000},
                               "quota": {"limit": 10000, "period": "DAY"}}
    assert rows["gold"] == {"name": "gold", "throttle": {"rate": 5, "burst": 10}, "quota": None}
    assert rows["partner"] == {"name": "partner", "throttle": None,
                               "quota": {"limit": 100000, "period": "WEEK"}}
    assert '"plans"' in ctl("keys", "plans", "--help").stdout
