"""One command-line grammar for every sluicectl command, checked from one table: --help, both
forms of a value option, options before and after a positional, and the usage errors (a bad
value, a missing value, an unknown option: exit 2, one exact first line, nothing on stdout).

Success paths run offline where the command allows it: keys on a temporary keys file, waf on
@default, s3 policy (which prints a policy and reads nothing); s3 setup runs against the stack's
S3 emulator. dlq and topics are checked for --help and usage errors only, with no Kafka
configured at all: usage errors come before any connection.
"""
import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

REQUEST = b"GET /orders/42 HTTP/1.1\r\nHost: api.example\r\n\r\n"
POLICY_FIRST = "{"


def hint(group, cmd=None):
    """The second line of every usage error."""
    return f"Run 'sluicectl {group}{' ' + cmd if cmd else ''} --help' for usage."


# Per command: the value option the table checks and its metavar, two argument lists that must
# give the same result for each of "forms" (--opt=value, --opt value) and "order" (an option
# before and after a positional, or before and after another option when the command takes
# none), a bad value, a missing value. An expectation is ("ok", stdout prefix) or
# ("usage", exact first stderr line). {ID} is a key in the keys file, {KEYS} the keys file,
# {BUCKET} a fresh bucket name.
COMMANDS = {
    ("keys", "create"): dict(
        option="--name",
        forms=(["--name=app", "--json"], ["--name", "app", "--json"], ("ok", '{"id": "key_')),
        order=(["--json", "--name", "app"], ["--name", "app", "--json"], ("ok", '{"id": "key_')),
        bad=(["--name", "x", "--expires", "2001-01-01T00:00:00Z"],
             "sluicectl keys create: --expires: 2001-01-01T00:00:00Z is not in the future"),
        missing=(["--json", "--name"], "sluicectl keys create: --name needs a value (NAME)"),
    ),
    ("keys", "list"): dict(
        option="--keys-file",
        forms=(["--keys-file={KEYS}"], ["--keys-file", "{KEYS}"], ("ok", "ID  ")),
        order=(["--json", "--keys-file", "{KEYS}"], ["--keys-file", "{KEYS}", "--json"],
               ("ok", '{"id":"{ID}"')),
        bad=(["--json=yes"], "sluicectl keys list: --json takes no value"),
        missing=(["--keys-file"], "sluicectl keys list: --keys-file needs a value (PATH)"),
    ),
    ("keys", "revoke"): dict(
        option="--keys-file",
        forms=(["{ID}", "--keys-file={KEYS}"], ["{ID}", "--keys-file", "{KEYS}"],
               ("ok", "Revoked key {ID}.")),
        order=(["--keys-file", "{KEYS}", "{ID}"], ["{ID}", "--keys-file", "{KEYS}"],
               ("ok", "Revoked key {ID}.")),
        bad=(["{ID}", "--keys-file="],
             "sluicectl keys revoke: --keys-file needs a non-empty value"),
        missing=(["{ID}", "--keys-file"],
                 "sluicectl keys revoke: --keys-file needs a value (PATH)"),
    ),
    ("keys", "rotate"): dict(
        option="--keys-file",
        forms=(["{ID}", "--json", "--keys-file={KEYS}"],
               ["{ID}", "--json", "--keys-file", "{KEYS}"],
               ("ok", '{"id": "{ID}", "key": "sk_')),
        order=(["--json", "{ID}"], ["{ID}", "--json"], ("ok", '{"id": "{ID}", "key": "sk_')),
        bad=(["{ID}", "--json=1"], "sluicectl keys rotate: --json takes no value"),
        missing=(["{ID}", "--keys-file"],
                 "sluicectl keys rotate: --keys-file needs a value (PATH)"),
    ),
    ("keys", "plans"): dict(
        option="--keys-file",
        forms=(["--keys-file={KEYS}"], ["--keys-file", "{KEYS}"], ("ok", "PLAN  ")),
        order=(["--json", "--keys-file", "{KEYS}"], ["--keys-file", "{KEYS}", "--json"],
               ("ok", '{"name":"default"')),
        bad=(["--json=no"], "sluicectl keys plans: --json takes no value"),
        missing=(["--keys-file"], "sluicectl keys plans: --keys-file needs a value (PATH)"),
    ),
    ("topics", "create"): dict(
        option="--dlq-partitions",
        forms=(["--dlq-partitions=0"], ["--dlq-partitions", "0"],
               ("usage", "sluicectl topics create: --dlq-partitions: partitions must be "
                         "1..10000, not 0")),
        order=(["--timeout-ms", "5", "--dlq-partitions", "2"],
               ["--dlq-partitions", "2", "--timeout-ms", "5"],
               ("usage", "sluicectl topics create: --timeout-ms must be 100..600000, not 5")),
        bad=(["--replication-factor", "0"],
             "sluicectl topics create: --replication-factor must be -1 or 1..32, not 0"),
        missing=(["--timeout-ms"], "sluicectl topics create: --timeout-ms needs a value (N)"),
    ),
    ("topics", "describe"): dict(
        option="--keys-file",
        forms=(["--json=1", "--keys-file=k.json"], ["--json=1", "--keys-file", "k.json"],
               ("usage", "sluicectl topics describe: --json takes no value")),
        order=(["--keys-file", "k.json", "--json=1"], ["--json=1", "--keys-file", "k.json"],
               ("usage", "sluicectl topics describe: --json takes no value")),
        bad=(["--json=yes"], "sluicectl topics describe: --json takes no value"),
        missing=(["--keys-file"], "sluicectl topics describe: --keys-file needs a value (PATH)"),
    ),
    ("config", "print"): dict(
        option="--keys-file",
        forms=(["worker", "--keys-file={KEYS}"], ["worker", "--keys-file", "{KEYS}"],
               ("ok", "SLUICE_ADMIN_LISTEN=")),
        order=(["--json", "worker"], ["worker", "--json"], ("ok", "{")),
        bad=(["workers"], "sluicectl config print: 'workers' is not a service: gateway, worker "
                          "or archiver"),
        missing=(["worker", "--keys-file"],
                 "sluicectl config print: --keys-file needs a value (PATH)"),
    ),
    ("waf", "check"): dict(
        option="--keys-file",
        forms=(["@default", "--keys-file={KEYS}"], ["@default", "--keys-file", "{KEYS}"],
               ("ok", "@default: ok: web ACL ")),
        order=(["--keys-file", "{KEYS}", "@default"], ["@default", "--keys-file", "{KEYS}"],
               ("ok", "@default: ok: web ACL ")),
        bad=(["--keys-file=", "@default"],
             "sluicectl waf check: --keys-file needs a non-empty value"),
        missing=(["@default", "--keys-file"],
                 "sluicectl waf check: --keys-file needs a value (PATH)"),
    ),
    ("waf", "eval"): dict(
        option="--ip",
        forms=(["--ip=203.0.113.9", "@default"], ["--ip", "203.0.113.9", "@default"],
               ("ok", "1\tGET /orders/42\t")),
        order=(["--json", "@default", "-"], ["@default", "--json", "-"],
               ("ok", '{"n":1,"method":"GET","target":"/orders/42"')),
        bad=(["@default", "--ip", "nope"],
             "sluicectl waf eval: --ip: 'nope' is not an IPv4 or IPv6 address"),
        missing=(["@default", "--ip"], "sluicectl waf eval: --ip needs a value (ADDR)"),
    ),
    ("s3", "setup"): dict(
        option="--bucket",
        forms=(["--bucket={BUCKET}", "--sse-s3", "--create"],
               ["--bucket", "{BUCKET}", "--sse-s3", "--create"],
               ("ok", "bucket\t{BUCKET}\tcreated")),
        order=(["--sse-s3", "--kms-key-id", "a&b", "--bucket", "b"],
               ["--bucket", "b", "--kms-key-id=a&b", "--sse-s3"],
               ("usage", "sluicectl s3 setup: choose the encryption: --kms-key-id ID or --sse-s3")),
        bad=(["--bucket", "b", "--kms-key-id", "a<b"],
             "sluicectl s3 setup: --kms-key-id: 'a<b' holds characters a key id never has"),
        missing=(["--sse-s3", "--bucket"], "sluicectl s3 setup: --bucket needs a value (NAME)"),
    ),
    ("s3", "policy"): dict(
        option="--bucket",
        forms=(["--bucket=logs", "--prefix=prod"], ["--bucket", "logs", "--prefix", "prod"],
               ("ok", POLICY_FIRST)),
        order=(["--prefix", "prod", "--bucket", "logs"], ["--bucket", "logs", "--prefix", "prod"],
               ("ok", POLICY_FIRST)),
        bad=(["--bucket", 'lo"gs'], "sluicectl s3 policy: names must not contain quotes or "
                                    "backslashes"),
        missing=(["--bucket", "logs", "--prefix"],
                 "sluicectl s3 policy: --prefix needs a value (P)"),
    ),
    ("dlq", "list"): dict(
        option="--limit",
        forms=(["--limit=0"], ["--limit", "0"],
               ("usage", "sluicectl dlq list: --limit: '0' is not a count from 1 to 100000000")),
        order=(["--json", "--since", "yesterday"], ["--since=yesterday", "--json"],
               ("usage", "sluicectl dlq list: --since: 'yesterday' is not a time (RFC 3339 UTC "
                         "such as 2026-12-01T08:00:00Z, or -15m, -2h, -7d)")),
        bad=(["--status", "abc"], "sluicectl dlq list: --status: 'abc' is not 0 or an HTTP status"),
        missing=(["--since"], "sluicectl dlq list: --since needs a value (T)"),
    ),
    ("dlq", "show"): dict(
        option="--keys-file",
        forms=(["12", "--keys-file=k.json"], ["12", "--keys-file", "k.json"],
               ("usage", "sluicectl dlq show: '12' is not PARTITION:OFFSET (e.g. 2:1045, as "
                         "'dlq list' shows)")),
        order=(["--keys-file", "k.json", "a:b"], ["a:b", "--keys-file", "k.json"],
               ("usage", "sluicectl dlq show: 'a:b' is not PARTITION:OFFSET (e.g. 2:1045, as "
                         "'dlq list' shows)")),
        bad=(["0:1", "--keys-file="], "sluicectl dlq show: --keys-file needs a non-empty value"),
        missing=(["0:1", "--keys-file"], "sluicectl dlq show: --keys-file needs a value (PATH)"),
    ),
    ("dlq", "stats"): dict(
        option="--status",
        forms=(["--status=abc"], ["--status", "abc"],
               ("usage", "sluicectl dlq stats: --status: 'abc' is not 0 or an HTTP status")),
        order=(["--json", "--until", "never"], ["--until=never", "--json"],
               ("usage", "sluicectl dlq stats: --until: 'never' is not a time (RFC 3339 UTC "
                         "such as 2026-12-01T08:00:00Z, or -15m, -2h, -7d)")),
        bad=(["--json=1"], "sluicectl dlq stats: --json takes no value"),
        missing=(["--reason"], "sluicectl dlq stats: --reason needs a value (R)"),
    ),
    ("dlq", "replay"): dict(
        option="--rate",
        forms=(["--rate=fast"], ["--rate", "fast"],
               ("usage", "sluicectl dlq replay: --rate: 'fast' is not a rate such as 50 or 50/s "
                         "(0: no limit)")),
        order=(["--dry-run", "--job", "a b"], ["--job=a b", "--dry-run"],
               ("usage", "sluicectl dlq replay: --job: 'a b' is not a job name (1-100 "
                         "letters, digits, '.', '_', '-')")),
        bad=(["--max-replays", "0"], "sluicectl dlq replay: --max-replays: '0' is not 1..1000"),
        missing=(["--dry-run", "--job"], "sluicectl dlq replay: --job needs a value (NAME)"),
    ),
    ("dlq", "jobs"): dict(
        option="--keys-file",
        forms=(["--json=1", "--keys-file=k.json"], ["--json=1", "--keys-file", "k.json"],
               ("usage", "sluicectl dlq jobs: --json takes no value")),
        order=(["--keys-file", "k.json", "--json=1"], ["--json=1", "--keys-file", "k.json"],
               ("usage", "sluicectl dlq jobs: --json takes no value")),
        bad=(["--json=yes"], "sluicectl dlq jobs: --json takes no value"),
        missing=(["--keys-file"], "sluicectl dlq jobs: --keys-file needs a value (PATH)"),
    ),
}

GROUPS = {"keys": ["create", "list", "revoke", "rotate", "plans"],
          "topics": ["create", "describe"], "s3": ["setup", "policy"], "waf": ["check", "eval"],
          "dlq": ["list", "show", "stats", "replay", "jobs"], "config": ["print"]}

ALL = sorted(COMMANDS, key=lambda c: (list(GROUPS).index(c[0]), GROUPS[c[0]].index(c[1])))
IDS = [f"{g}-{c}" for g, c in ALL]


def test_the_table_covers_every_command():
    assert set(COMMANDS) == {(g, c) for g, cmds in GROUPS.items() for c in cmds}


class Ctl:
    """sluicectl with no Kafka settings, a fresh copy of a keys file holding one key (id
    self.key_id) for every run, S3 at the stack's emulator."""

    def __init__(self, build_dir, tmp_path, s3_endpoint):
        self.binary = str(build_dir / "tools" / "sluicectl" / "sluicectl")
        self.tmp = tmp_path
        self.runs = 0
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SLUICE_", "AWS_"))}
        self.env.update({"SLUICE_S3_ENDPOINT": s3_endpoint, "SLUICE_S3_PATH_STYLE": "true",
                         "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
        self.seed = tmp_path / "seed.json"
        out = self.raw(["keys", "create", "--name", "seed", "--json"],
                       dict(self.env, SLUICE_KEYS_FILE=str(self.seed)))
        assert out.returncode == 0, out.stderr
        self.key_id = json.loads(out.stdout)["id"]

    def raw(self, args, env):
        return subprocess.run([self.binary, *args], input=REQUEST, capture_output=True, env=env,
                              timeout=60)

    def __call__(self, *args):
        """Runs args with the placeholders filled in; returns (code, stdout, stderr) with the
        run's own names (keys file, bucket) put back as placeholders."""
        self.runs += 1
        keys = self.tmp / f"keys-{self.runs}.json"
        shutil.copy(self.seed, keys)
        bucket = f"grammar-{uuid.uuid4().hex[:12]}"
        subst = {"{ID}": self.key_id, "{KEYS}": str(keys), "{BUCKET}": bucket}
        filled = []
        for a in args:
            for k, v in subst.items():
                a = a.replace(k, v)
            filled.append(a)
        # With --keys-file on the line, SLUICE_KEYS_FILE names no file: only the option works.
        env_keys = self.tmp / "unused.json" if any("{KEYS}" in a for a in args) else keys
        out = self.raw(filled, dict(self.env, SLUICE_KEYS_FILE=str(env_keys)))
        stdout, stderr = out.stdout.decode(), out.stderr.decode()
        stdout = stdout.replace(bucket, "{BUCKET}").replace(self.key_id, "{ID}")
        return out.returncode, stdout, stderr


@pytest.fixture
def ctl(build_dir, tmp_path, s3_endpoint):
    return Ctl(build_dir, tmp_path, s3_endpoint)


def normalized(stdout):
    """Output with what differs between runs (new key ids and values, times) masked."""
    stdout = re.sub(r"sk_[A-Za-z0-9_-]{43}", "sk_VALUE", stdout)
    stdout = re.sub(r"key_[0-9a-f]{16}", "key_NEW", stdout)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", stdout)


def assert_usage(result, first):
    code, stdout, stderr = result
    assert code == 2, stderr
    assert stdout == ""
    lines = stderr.splitlines()
    assert lines[0] == first
    assert len(lines) == 2 and lines[1].startswith("Run 'sluicectl ") and \
        lines[1].endswith(" --help' for usage."), stderr


def assert_expected(result, expect):
    kind, text = expect
    if kind == "usage":
        assert_usage(result, text)
        return
    code, stdout, stderr = result
    assert code == 0, stderr
    assert stdout.startswith(text), stdout


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_help_is_generated_from_the_table(ctl, group, cmd):
    for args in ([group, cmd, "--help"], [group, cmd, "-h"],
                 [group, cmd, "--keys-file", "k.json", "--help"]):
        code, stdout, stderr = ctl(*args)
        assert code == 0, stderr
        assert stderr == ""
        assert stdout.startswith(f"Usage: sluicectl {group} {cmd}"), stdout
        assert "\nOptions:\n" in stdout and "  --help " in stdout
        assert f"  {COMMANDS[(group, cmd)]['option']} " in stdout or \
            COMMANDS[(group, cmd)]["option"] == "--keys-file"
    if group == "keys":
        assert "  --keys-file PATH " in stdout  # the global option the group uses


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_opt_equals_value_and_opt_space_value_are_the_same(ctl, group, cmd):
    eq, space, expect = COMMANDS[(group, cmd)]["forms"]
    assert any("=" in a and a.startswith("--") for a in eq)
    a, b = ctl(group, cmd, *eq), ctl(group, cmd, *space)
    assert_expected(a, expect)
    assert_expected(b, expect)
    assert (a[0], normalized(a[1]), a[2]) == (b[0], normalized(b[1]), b[2])


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_an_option_before_or_after_an_argument_is_the_same(ctl, group, cmd):
    first, second, expect = COMMANDS[(group, cmd)]["order"]
    a, b = ctl(group, cmd, *first), ctl(group, cmd, *second)
    assert_expected(a, expect)
    assert_expected(b, expect)
    assert (a[0], normalized(a[1]), a[2]) == (b[0], normalized(b[1]), b[2])


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_a_bad_value_is_a_usage_error(ctl, group, cmd):
    args, first = COMMANDS[(group, cmd)]["bad"]
    assert_usage(ctl(group, cmd, *args), first)


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_a_missing_value_is_a_usage_error(ctl, group, cmd):
    args, first = COMMANDS[(group, cmd)]["missing"]
    assert_usage(ctl(group, cmd, *args), first)


@pytest.mark.parametrize("group, cmd", ALL, ids=IDS)
def test_an_unknown_option_is_a_usage_error(ctl, group, cmd):
    for bogus in ("--bogus", "--bogus=1", "-x"):
        name = bogus.split("=")[0]
        assert_usage(ctl(group, cmd, bogus), f"sluicectl {group} {cmd}: unknown option '{name}'")


@pytest.mark.parametrize("group", list(GROUPS))
def test_group_help_lists_every_command(ctl, group):
    for args in ([group, "--help"], [group, "-h"], [group, "help"],
                 [group, "--keys-file", "k.json", "--help"]):
        code, stdout, stderr = ctl(*args)
        assert code == 0, stderr
        assert stderr == ""
        assert stdout.startswith(f"Usage: sluicectl {group} <command>"), stdout
        listed = [line.split()[0] for line in stdout.split("\nCommands:\n")[1].split("\n\n")[0]
                  .splitlines()]
        assert listed == GROUPS[group]


@pytest.mark.parametrize("group", list(GROUPS))
def test_a_missing_or_unknown_command_is_a_usage_error(ctl, group):
    names = ", ".join(GROUPS[group])
    assert_usage(ctl(group), f"sluicectl {group}: missing a command ({names})")
    assert_usage(ctl(group, "frob"), f"sluicectl {group}: unknown command 'frob' ({names})")
    assert_usage(ctl(group, "--frob", GROUPS[group][0]),
                 f"sluicectl {group}: unknown option '--frob'")
    assert ctl(group, "frob")[2].splitlines()[1] == hint(group)


def test_top_level_help_lists_groups_and_global_options(ctl):
    for args in (["--help"], ["-h"], ["help"], ["--keys-file", "k.json", "--help"]):
        code, stdout, stderr = ctl(*args)
        assert code == 0, stderr
        assert stdout.startswith("Usage: sluicectl [global options] <group> <command>"), stdout
        listed = [line.split()[0] for line in stdout.split("\nGroups:\n")[1].split("\n\n")[0]
                  .splitlines()]
        assert listed == list(GROUPS)
        assert "\n  --keys-file PATH " in stdout


@pytest.mark.parametrize("args, first", [
    ([], "sluicectl: missing a group (keys, topics, s3, waf, dlq, config)"),
    (["bogus"], "sluicectl: unknown group 'bogus' (keys, topics, s3, waf, dlq, config)"),
    (["--bogus", "keys"], "sluicectl: unknown option '--bogus'"),
    (["--keys-file"], "sluicectl: --keys-file needs a value (PATH)"),
    (["--keys-file=", "keys", "list"], "sluicectl: --keys-file needs a non-empty value"),
])
def test_top_level_usage_errors(ctl, args, first):
    assert_usage(ctl(*args), first)
    assert ctl(*args)[2].splitlines()[1] == "Run 'sluicectl --help' for usage."


def test_double_dash_ends_the_options(ctl):
    # After "--", "--json" is an argument: a key id that does not exist (exit 1, not 2).
    code, stdout, stderr = ctl("keys", "revoke", "--keys-file", "{KEYS}", "--", "--json")
    assert code == 1 and stdout == ""
    assert stderr.startswith('sluicectl keys revoke: no key with id "--json" in '), stderr
    # ... and so is a global option.
    assert_usage(ctl("dlq", "show", "--", "--keys-file=x"),
                 "sluicectl dlq show: '--keys-file=x' is not PARTITION:OFFSET (e.g. 2:1045, as "
                 "'dlq list' shows)")
