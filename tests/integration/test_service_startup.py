"""What every service does before its real work: --version, --check, --print-config, required
and misspelt settings, and start-up errors a person at a terminal can read. None of these
touch Kafka, except the waits for unreachable brokers."""
import json
import os
import pty
import re
import signal
import socket
import subprocess
import time

import pytest

BINARIES = {"gateway": ("services", "gateway", "sluice-gateway"),
            "worker": ("services", "worker", "sluice-worker"),
            "archiver": ("services", "archiver", "sluice-archiver"),
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


SERVICES = ["gateway", "worker", "archiver"]


@pytest.mark.parametrize("name", SERVICES)
def test_help_lists_version(build_dir, name):
    out = run(build_dir, name, "--help")
    assert out.returncode == 0
    assert "--version" in out.stdout


@pytest.mark.parametrize("name", SERVICES)
def test_usage_line_lists_every_flag(build_dir, name):
    out = run(build_dir, name, "--help")
    assert out.returncode == 0
    assert out.stdout.splitlines()[0] == (
        f"Usage: sluice-{name} [--help] [--version] [--check] [--print-config [--json]]")
    assert "--check" in out.stdout.split("Configuration (environment variables):")[0]


def service_settings(name, tmp_path):
    """The least a service needs to get past its settings (no Kafka brokers named)."""
    if name == "gateway":
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps({"version": 1, "keys": []}))
        return {"SLUICE_KEYS_FILE": str(keys)}
    if name == "archiver":
        return {"SLUICE_ARCHIVE_URL": f"file://{tmp_path}/archive"}
    return {}


@pytest.mark.parametrize("name", SERVICES)
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
    # The loaders after the failing one still run (every problem is reported) and may log.
    lines = lines[lines.index("sluice-gateway: cannot start:"):]
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


# ---- --check and --print-config: the real loaders, nothing connected ----------------------

def bad_acl(tmp_path):
    acl = tmp_path / "acl.json"
    acl.write_text(json.dumps({"Name": "x", "DefaultAction": {"Allow": {}}, "Rules": [{}]}))
    return str(acl)


def bad_routes(tmp_path):
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"routes": [{"method": "GET"}]}))
    return str(routes)


def problem_lines(name, stderr):
    """The lines of --check's stderr, each "sluice-<name>: <problem>"; JSON log lines aside."""
    lines = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert all(line.startswith(f"sluice-{name}: ") for line in lines), lines
    return [line[len(f"sluice-{name}: "):] for line in lines]


@pytest.mark.parametrize("name", SERVICES)
def test_check_accepts_a_good_config_and_says_what_it_checked(build_dir, tmp_path, name):
    out = run(build_dir, name, "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              **service_settings(name, tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    [line] = out.stdout.splitlines()
    assert line.startswith(f"sluice-{name}: configuration ok: settings, SLUICE_KAFKA_* properties, ")
    if name == "archiver":  # a check creates nothing: another archiver may use the directory
        assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize("name", SERVICES)
def test_check_connects_to_nothing(build_dir, tmp_path, name):
    # One listening socket stands for Kafka, Redis and S3: --check must not connect to it.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        addr = "127.0.0.1:%d" % listener.getsockname()[1]
        settings = service_settings(name, tmp_path)
        if name == "gateway":
            settings["SLUICE_REDIS_URL"] = f"redis://{addr}"
        if name == "archiver":
            settings.update(SLUICE_ARCHIVE_URL="s3://sluice-archive/logs",
                            SLUICE_S3_ENDPOINT=f"http://{addr}", AWS_ACCESS_KEY_ID="k",
                            AWS_SECRET_ACCESS_KEY="s")
        out = run(build_dir, name, "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS=addr, **settings)
        assert out.returncode == 0, out.stderr
        listener.settimeout(0.5)
        with pytest.raises(socket.timeout):
            listener.accept()


@pytest.mark.parametrize("name", SERVICES)
def test_check_without_brokers_names_the_setting(build_dir, tmp_path, name):
    out = run(build_dir, name, "--check", **service_settings(name, tmp_path))
    assert out.returncode == 1
    assert out.stdout == ""
    assert problem_lines(name, out.stderr) == [
        "SLUICE_KAFKA_BOOTSTRAP_SERVERS: not set: name the Kafka brokers, "
        "e.g. SLUICE_KAFKA_BOOTSTRAP_SERVERS=localhost:9092"]


@pytest.mark.parametrize("name", SERVICES)
def test_check_refuses_an_invalid_setting_value(build_dir, tmp_path, name):
    out = run(build_dir, name, "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              SLUICE_LOG_LEVEL="loud", **service_settings(name, tmp_path))
    assert out.returncode == 1
    [line] = problem_lines(name, out.stderr)
    assert line.startswith("SLUICE_LOG_LEVEL: 'loud' ")


BAD_VALUES = {
    "acl": ("gateway", "SLUICE_WAF_ACL_FILE", bad_acl),
    "routes": ("gateway", "SLUICE_ROUTES_FILE", bad_routes),
    "cors": ("gateway", "SLUICE_CORS_ORIGINS", lambda _: "*"),
    "cidr": ("gateway", "SLUICE_TRUSTED_PROXIES", lambda _: "10.0.0.0/33"),
    "keys": ("gateway", "SLUICE_KEYS_FILE", lambda p: str(p / "missing.json")),
    "redis": ("gateway", "SLUICE_REDIS_URL", lambda _: "http://127.0.0.1:6379"),
    "worker-routes": ("worker", "SLUICE_ROUTES_FILE", bad_routes),
    "archive-url": ("archiver", "SLUICE_ARCHIVE_URL", lambda _: "ftp://example.com/x"),
    "archive-dir": ("archiver", "SLUICE_ARCHIVE_URL",
                    lambda p: (p / "file").write_text("") or f"file://{p}/file/archive"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_check_refuses_a_bad_value_naming_its_setting(build_dir, tmp_path, case):
    name, setting, value = BAD_VALUES[case]
    settings = service_settings(name, tmp_path)
    settings[setting] = value(tmp_path)
    out = run(build_dir, name, "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              **settings)
    assert out.returncode == 1, out.stdout
    assert out.stdout == ""
    assert any(line.startswith(f"{setting}: ") for line in problem_lines(name, out.stderr)), \
        out.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_check_refuses_kafka_properties_librdkafka_refuses(build_dir, tmp_path, name):
    out = run(build_dir, name, "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              SLUICE_KAFKA_SOCKET_TIMEOUT_MS="soon", SLUICE_KAFKA_NO_SUCH_THING="1",
              SLUICE_KAFKA_SSL_KEY_PASSWORD="hunter2", **service_settings(name, tmp_path))
    assert out.returncode == 1
    assert problem_lines(name, out.stderr) == [
        "SLUICE_KAFKA_SOCKET_TIMEOUT_MS: kafka property 'socket.timeout.ms': Invalid value for "
        "configuration property \"socket.timeout.ms\"",
        "SLUICE_KAFKA_NO_SUCH_THING: kafka property 'no.such.thing': No such configuration "
        "property: \"no.such.thing\""]
    assert "hunter2" not in out.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the handler user is resolved only by a root worker")
def test_worker_check_resolves_the_handler_user_as_a_root_start_does(build_dir, tmp_path):
    out = run(build_dir, "worker", "--check", SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
              SLUICE_HANDLER_USER="no-such-user-here", SLUICE_ROUTES_FILE=bad_routes(tmp_path))
    assert out.returncode == 1
    named = [line.split(":")[0] for line in problem_lines("worker", out.stderr)]
    assert named == ["SLUICE_ROUTES_FILE", "SLUICE_HANDLER_USER"], out.stderr


def test_check_lists_every_problem_at_once(build_dir, tmp_path):
    out = run(build_dir, "gateway", "--check", SLUICE_CORS_ORIGINS="*",
              SLUICE_TRUSTED_PROXIES="10.0.0.0/33", SLUICE_ROUTES_FILE=bad_routes(tmp_path),
              SLUICE_WAF_ACL_FILE=bad_acl(tmp_path), **service_settings("gateway", tmp_path))
    assert out.returncode == 1
    named = {line.split(":")[0] for line in problem_lines("gateway", out.stderr)}
    assert {"SLUICE_CORS_ORIGINS", "SLUICE_TRUSTED_PROXIES", "SLUICE_ROUTES_FILE",
            "SLUICE_WAF_ACL_FILE", "SLUICE_KAFKA_BOOTSTRAP_SERVERS"} <= named, out.stderr


@pytest.mark.parametrize("case", ["cors", "cidr", "acl", "routes"])
@pytest.mark.parametrize("fmt", [[], ["--json"]])
def test_print_config_refuses_what_the_start_refuses(build_dir, tmp_path, case, fmt):
    name, setting, value = BAD_VALUES[case]
    settings = service_settings(name, tmp_path)
    settings[setting] = value(tmp_path)
    out = run(build_dir, name, "--print-config", *fmt, **settings)
    assert out.returncode == 1
    assert out.stdout == ""
    assert any(line.startswith(f"{setting}: ") for line in problem_lines(name, out.stderr)), \
        out.stderr


@pytest.mark.parametrize("name", SERVICES)
def test_print_config_shows_kafka_properties_in_text_and_json_redacted(build_dir, tmp_path, name):
    kafka = {"SLUICE_KAFKA_BOOTSTRAP_SERVERS": "broker-1:9092,broker-2:9092",
             "SLUICE_KAFKA_SASL_PASSWORD": "hunter2", "SLUICE_KAFKA_SASL_USERNAME": "svc"}
    settings = service_settings(name, tmp_path)
    text = run(build_dir, name, "--print-config", **kafka, **settings)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert "SLUICE_KAFKA_BOOTSTRAP_SERVERS=broker-1:9092,broker-2:9092" in lines
    assert "SLUICE_KAFKA_SASL_USERNAME=svc" in lines
    assert "SLUICE_KAFKA_SASL_PASSWORD=<redacted>" in lines
    js = run(build_dir, name, "--print-config", "--json", **kafka, **settings)
    assert js.returncode == 0, js.stderr
    effective = json.loads(js.stdout)
    assert effective["SLUICE_KAFKA_BOOTSTRAP_SERVERS"] == "broker-1:9092,broker-2:9092"
    assert effective["SLUICE_KAFKA_SASL_USERNAME"] == "svc"
    assert effective["SLUICE_KAFKA_SASL_PASSWORD"] == "<redacted>"
    assert "hunter2" not in text.stdout + text.stderr + js.stdout + js.stderr


# ---- the wait for Kafka: /healthz answers, SIGTERM ends it, the failure names the brokers --

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(port, path):
    """The status of GET path on 127.0.0.1:port, or None when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(64).decode(errors="replace")
    except OSError:
        return None
    m = re.match(r"HTTP/1\.1 (\d{3})", head)
    return int(m.group(1)) if m else None


def start_unreachable(build_dir, tmp_path, name):
    """The service started against a Kafka nobody listens on; returns (process, admin port)."""
    admin = free_port()
    env = clean_env(SLUICE_KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
                    SLUICE_ADMIN_LISTEN=f"127.0.0.1:{admin}",
                    SLUICE_LISTEN=f"127.0.0.1:{free_port()}", **service_settings(name, tmp_path))
    proc = subprocess.Popen([str(binary(build_dir, name))], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    return proc, admin


@pytest.mark.parametrize("name", SERVICES)
def test_healthz_answers_and_sigterm_ends_the_wait_for_unreachable_kafka(build_dir, tmp_path,
                                                                        name):
    proc, admin = start_unreachable(build_dir, tmp_path, name)
    try:
        deadline = time.monotonic() + 8  # inside the 10 s the start waits for Kafka
        while http_status(admin, "/healthz") != 200:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no /healthz while waiting for Kafka"
            time.sleep(0.05)
        assert http_status(admin, "/readyz") == 503
        time.sleep(1)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    assert rc == 0, stderr
    assert took < 2, f"{took:.2f} s after SIGTERM"
    assert "SIGTERM while starting: stopping" in stderr


def test_unreachable_brokers_failure_names_the_brokers_and_the_setting(build_dir, tmp_path):
    procs = {name: start_unreachable(build_dir, tmp_path, name)[0] for name in SERVICES}
    for name, proc in procs.items():
        try:
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert rc == 1
        [error] = [json.loads(line)["msg"] for line in proc.stderr.read().splitlines()
                   if line.startswith("{") and json.loads(line)["level"] == "error"
                   and "cannot start" in line]
        assert error.startswith("cannot start: kafka: "), error
        assert error.endswith(
            "(brokers tried: 127.0.0.1:1, from SLUICE_KAFKA_BOOTSTRAP_SERVERS)"), error
