"""What every service does before its real work: --version, required and misspelt settings,
and start-up errors a person at a terminal can read. None of these touch Kafka."""
import json
import os
import pty
import re
import subprocess

import pytest

BINARIES = {"gateway": ("services", "gateway", "sluice-gateway"),
            "worker": ("services", "worker", "sluice-worker"),
            "sluicectl": ("tools", "sluicectl", "sluicectl")}


def binary(build_dir, name):
    return build_dir.joinpath(*BINARIES[name])


def clean_env(**settings):
    """The environment without any SLUICE_* variable of the test run, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(settings)
    return env


def run(build_dir, name, *args, **settings):
    return subprocess.run([str(binary(build_dir, name)), *args], capture_output=True, text=True,
                          env=clean_env(**settings), timeout=60)


@pytest.mark.parametrize("name", list(BINARIES))
def test_version_names_the_program_commit_and_libraries(build_dir, name):
    out = run(build_dir, name, "--version")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    program = "sluicectl" if name == "sluicectl" else f"sluice-{name}"
    assert re.fullmatch(rf"{program} \d+\.\d+\.\d+ \(commit \S+\)", lines[0]), lines
    assert re.fullmatch(r"librdkafka \d+\.\d+\.\d+\S*", lines[1]), lines
    assert re.fullmatch(r"libuv \d+\.\d+\.\d+\S*", lines[2]), lines
    if name == "worker":
        assert re.fullmatch(r"libcurl \d+\.\d+\.\d+\S*", lines[3]), lines


@pytest.mark.parametrize("name", ["gateway", "worker"])
def test_help_lists_version(build_dir, name):
    out = run(build_dir, name, "--help")
    assert out.returncode == 0
    assert "--version" in out.stdout


def service_settings(name, tmp_path):
    """The least a service needs to get past its settings (no Kafka brokers named)."""
    if name == "gateway":
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps({"version": 1, "keys": []}))
        return {"SLUICE_KEYS_FILE": str(keys)}
    return {}


@pytest.mark.parametrize("name", ["gateway", "worker"])
def test_missing_bootstrap_servers_is_one_line_naming_the_setting(build_dir, tmp_path, name):
    out = run(build_dir, name, **service_settings(name, tmp_path))
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        f"sluice-{name}: SLUICE_KAFKA_BOOTSTRAP_SERVERS is not set: name the Kafka brokers, "
        "e.g. SLUICE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092"]


def test_a_misspelt_variable_gets_a_warning_naming_the_closest_setting(build_dir, tmp_path):
    settings = service_settings("gateway", tmp_path)
    out = run(build_dir, "gateway", SLUICE_LISTNE="127.0.0.1:8080",
              SLUICE_SOMETHING_FOR_ANOTHER_PROGRAM="1", **settings)
    assert out.returncode == 2
    assert out.stderr.splitlines()[0] == (
        "sluice-gateway: warning: SLUICE_LISTNE is not a setting of sluice-gateway; "
        "did you mean SLUICE_LISTEN?")
    # A name far from every setting may belong to another program sharing the environment.
    assert "SLUICE_SOMETHING_FOR_ANOTHER_PROGRAM" not in out.stderr


def test_start_up_errors_are_plain_lines_on_a_terminal(build_dir, tmp_path):
    acl = tmp_path / "acl.json"
    acl.write_text(json.dumps({"Name": "x", "DefaultAction": {"Allow": {}},
                               "Rules": [{"Name": "a"}, {"Name": "b"}]}))
    env = clean_env(SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1", SLUICE_WAF_ACL_FILE=str(acl),
                    **service_settings("gateway", tmp_path))
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([str(binary(build_dir, "gateway"))], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=secondary, env=env, timeout=60)
    finally:
        os.close(secondary)
    out = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(primary)
    assert proc.returncode == 1
    lines = out.decode().replace("\r\n", "\n").splitlines()
    assert lines[0] == "sluice-gateway: cannot start:"
    assert lines[1] == f"  {acl}: Rules[0].Priority: missing"
    assert f"  {acl}: Rules[1].Statement: missing" in lines
    assert not any(line.startswith("{") and "cannot start" in line for line in lines)
    assert "\\n" not in out.decode()


def test_start_up_errors_off_a_terminal_stay_one_json_log_line(build_dir, tmp_path):
    acl = tmp_path / "acl.json"
    acl.write_text(json.dumps({"Name": "x", "DefaultAction": {"Allow": {}}, "Rules": [{}]}))
    out = run(build_dir, "gateway", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              SLUICE_WAF_ACL_FILE=str(acl), **service_settings("gateway", tmp_path))
    assert out.returncode == 1
    [error] = [json.loads(line) for line in out.stderr.splitlines()
               if json.loads(line)["level"] == "error"]
    assert error["msg"].startswith("cannot start: ")
    assert not error["msg"].endswith("\n")


def test_the_admin_ports_of_gateway_and_worker_differ_by_default(build_dir):
    def admin_default(name):
        text = run(build_dir, name, "--help").stdout
        return re.search(r"SLUICE_ADMIN_LISTEN \(host:port, default: (\S+)\)", text).group(1)
    assert admin_default("gateway") == "0.0.0.0:9090"
    assert admin_default("worker") == "0.0.0.0:9091"
