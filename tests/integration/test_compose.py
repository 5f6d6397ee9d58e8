"""compose.yaml's wiring, without running it (tests/containers runs it): it validates against the
Compose Specification's JSON schema, every SLUICE_* variable it sets is one the service's binary
declares and every variable a binary requires is set, every depends_on target exists and can
meet its condition, every command names a binary and subcommand that exist, and the
observability profile's Prometheus config, rules and Grafana dashboard hold together (each
dashboard query parses, and names only metrics the services export)."""
import json
import pathlib
import re
import subprocess

import jsonschema
import pytest
import requests
import yaml

from test_deploy import exported_metrics

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
OVERRIDE = ROOT / "tests" / "containers" / "compose.override.yaml"
SCHEMA = ROOT / ".deps" / "compose-spec.json"
DASHBOARD = ROOT / "deploy" / "grafana" / "sluice.json"
BINARIES = {"sluice-gateway": "services/gateway/sluice-gateway",
            "sluice-worker": "services/worker/sluice-worker",
            "sluice-archiver": "services/archiver/sluice-archiver",
            "sluicectl": "tools/sluicectl/sluicectl"}


def run(*cmd, check=True):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120)
    assert not check or p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(COMPOSE.read_text())


def sluice_services(spec):
    return {n: s for n, s in spec["services"].items()
            if "SLUICE_IMAGE" in s.get("image", "")}


def command_text(service):
    cmd = service.get("command", [])
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def binary_of(service):
    """The Sluice binary a service runs: its command, or the one its shell script calls."""
    text = command_text(service)
    for name in BINARIES:
        if re.search(rf"(^|[\s;(]){re.escape(name)}\b", text):
            return name
    raise AssertionError(f"no Sluice binary in {text!r}")


@pytest.mark.parametrize("path", [COMPOSE, OVERRIDE], ids=["compose.yaml", "override"])
def test_validates_against_the_compose_specification(path):
    if not SCHEMA.is_file():
        pytest.fail(f"{SCHEMA} is missing: run scripts/install-deps")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(yaml.safe_load(path.read_text()), schema)


def test_the_override_only_swaps_images(spec):
    override = yaml.safe_load(OVERRIDE.read_text())
    assert set(override) == {"services"}
    for name, svc in override["services"].items():
        assert name in spec["services"]
        assert set(svc) <= {"image", "pull_policy"}, (name, svc)
        assert not spec["services"][name]["image"].startswith("${"), name


def help_of(build_dir, binary):
    p = run(build_dir / BINARIES[binary], "--help")
    return p.stdout + p.stderr


def declared(text):
    return set(re.findall(r"\bSLUICE_[A-Z0-9_]*[A-Z0-9]\b", text))


def required(text):
    return set(re.findall(r"^\s*(SLUICE_[A-Z0-9_]+) \([^)]*\brequired\b", text, re.M))


def test_every_setting_is_declared_and_every_required_one_set(spec, build_dir):
    checked = 0
    for name, svc in sluice_services(spec).items():
        binary = binary_of(svc)
        text = help_of(build_dir, binary)
        env = set(svc.get("environment", {}))
        for var in sorted(v for v in env if v.startswith("SLUICE_")):
            if var.startswith("SLUICE_KAFKA_") and "SLUICE_KAFKA_<PROPERTY>" in text:
                continue  # any librdkafka property
            assert var in declared(text), f"{name} sets {var}, which {binary} does not declare"
            checked += 1
        assert required(text) <= env, f"{name} lacks {required(text) - env}"
        if binary != "sluicectl" or "topics" in command_text(svc):
            assert "SLUICE_KAFKA_BOOTSTRAP_SERVERS" in env, name
    assert checked >= 8


def test_gateway_requires_a_keys_file_which_demo_key_writes(spec):
    # The check above leans on --help marking required settings; make sure it still does.
    gw = spec["services"]["gateway"]["environment"]["SLUICE_KEYS_FILE"]
    assert spec["services"]["demo-key"]["environment"]["SLUICE_KEYS_FILE"] == gw


def test_every_dependency_exists_and_can_meet_its_condition(spec):
    services = spec["services"]
    seen = 0
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            seen += 1
            assert dep in services, f"{name} depends on {dep}, which does not exist"
            target = services[dep]
            assert not set(target.get("profiles", [])) - set(svc.get("profiles", [])), (name, dep)
            condition = cond["condition"]
            if condition == "service_healthy":
                hc = target.get("healthcheck", {})
                assert hc.get("test") and not hc.get("disable"), f"{dep} has no health check"
            elif condition == "service_completed_successfully":
                assert target.get("restart", "no") == "no", f"{dep} restarts: it never completes"
            else:
                assert condition == "service_started", condition
    assert seen >= 10


def test_every_command_names_a_binary_and_subcommand_that_exist(spec, build_dir):
    checked = 0
    for name, svc in sluice_services(spec).items():
        text = command_text(svc)
        binary = binary_of(svc)
        assert (build_dir / BINARIES[binary]).is_file()
        for group, cmd in re.findall(r"\bsluicectl\s+([a-z]+)\s+([a-z]+)", text):
            run(build_dir / BINARIES["sluicectl"], group, cmd, "--help")
            checked += 1
    assert checked >= 2


def test_only_the_gateway_and_the_minio_console_are_published(spec):
    published = {n: s["ports"] for n, s in spec["services"].items()
                 if s.get("ports") and not s.get("profiles")}
    assert set(published) == {"gateway", "minio"}
    assert published["gateway"][0].endswith(":8080") and published["minio"][0].endswith(":9001")
    worker = spec["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker


def test_prometheus_config_and_rules_pass_promtool():
    out = run("promtool", "check", "config", ROOT / "deploy" / "prometheus" / "compose.yml")
    assert "SUCCESS" in out.stdout


def dashboard_queries():
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_queries_parse(tmp_path):
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:q{i}", "expr": q.replace("$__rate_interval", "5m")}
        for i, q in enumerate(dashboard_queries())]}]}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    run("promtool", "check", "rules", path)


def test_every_metric_the_dashboard_names_is_exported(build_dir, kafka_bootstrap, tmp_path):
    names = set()
    for q in dashboard_queries():
        names |= {re.sub(r"_(bucket|sum|count)$", "", n)
                  for n in re.findall(r"\bsluice_[a-z_]+", q)}
    exported = exported_metrics(build_dir, kafka_bootstrap, tmp_path)
    missing = names - exported
    assert not missing, f"the dashboard names metrics no service exports: {sorted(missing)}"
    assert len(names) >= 12
