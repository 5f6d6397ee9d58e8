"""The deployment files stay true to the binaries: the Prometheus alerts (promtool's checks and
unit tests, and every metric they name exported by a running service) and the Kubernetes
manifests (both overlays build, validate against the Kubernetes schemas, and every workload has
the security context, probes, resources and network policies docs/deploy.md promises)."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import kubernetes_validate
import pytest
import requests
import yaml

from harness import Gateway, create_topics, new_key, new_prefix, write_keys_file
from test_archiver import Archiver
from test_worker import WorkerProcess

ROOT = pathlib.Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
K8S = ROOT / "deploy" / "k8s"
WORKLOADS = ("StatefulSet", "Deployment", "Job")


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{p.stdout}\n{p.stderr}"
    return p.stdout


def kustomize(overlay):
    """kubectl's kustomize when it is v5, else the one scripts/install-deps builds."""
    if shutil.which("kubectl") and "Kustomize Version: v5" in run("kubectl", "version", "--client"):
        out = run("kubectl", "kustomize", str(K8S / "overlays" / overlay))
    else:
        out = run(str(ROOT / ".deps" / "kustomize" / "bin" / "kustomize"), "build",
                  str(K8S / "overlays" / overlay))
    return [d for d in yaml.safe_load_all(out) if d]


def test_alert_rules_pass_promtool_checks_and_unit_tests():
    assert "SUCCESS: 9 rules found" in run("promtool", "check", "rules", str(ALERTS))
    assert "SUCCESS" in run("promtool", "test", "rules",
                            str(ROOT / "deploy" / "prometheus" / "alerts_test.yaml"))


def alert_metrics():
    names = set()
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            names |= set(re.findall(r"\bsluice_[a-z_]+", rule["expr"]))
    return names


def exported_metrics(build_dir, kafka_bootstrap, tmp_path):
    """The metric families the gateway, the worker and the archiver export, after one request
    went through (so that per-route families have a sample as well as a TYPE line) and its
    audit record was archived."""
    prefix = new_prefix()
    create_topics(kafka_bootstrap, prefix)
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"routes": [
        {"method": "ANY", "path": "/{proxy+}", "api_key_required": True, "handler": "echo"}]}))
    value, kid, digest = new_key()
    keys = tmp_path / "keys.json"
    write_keys_file(keys, [{"id": kid, "hash": digest}])
    worker = WorkerProcess(build_dir, tmp_path, kafka_bootstrap, prefix, routes).start()
    gw = Gateway(build_dir, tmp_path, kafka_bootstrap, prefix, keys,
                 SLUICE_ROUTES_FILE=routes).start()
    archiver = Archiver(build_dir, tmp_path, kafka_bootstrap, prefix, prefix + "archiver",
                        f"file://{tmp_path / 'archive'}").start()
    try:
        r = requests.get(gw.url + "/x", headers={"X-API-Key": value}, timeout=30)
        assert r.status_code == 200, r.text
        exported = set()
        for text in (gw.metrics(), requests.get(worker.admin + "/metrics", timeout=5).text,
                     requests.get(archiver.admin + "/metrics", timeout=5).text):
            exported |= set(re.findall(r"^# TYPE (\S+)", text, re.M))
    finally:
        gw.stop()
        worker.stop()
        archiver.stop()
    return exported


def test_every_metric_an_alert_names_is_exported(build_dir, kafka_bootstrap, tmp_path):
    missing = alert_metrics() - exported_metrics(build_dir, kafka_bootstrap, tmp_path)
    assert not missing, f"alerts name metrics no service exports: {sorted(missing)}"
    assert {"sluice_archiver_failures_total", "sluice_archiver_consumer_lag"} <= alert_metrics()


@pytest.fixture(scope="module", params=["dev", "prod"])
def manifests(request):
    return request.param, kustomize(request.param)


def test_overlays_build_and_validate_against_the_kubernetes_schemas(manifests):
    env, docs = manifests
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("StatefulSet") == 1 and kinds.count("Deployment") == 2  # worker, archiver
    assert kinds.count("PodDisruptionBudget") == 3
    assert {"Job", "HorizontalPodAutoscaler", "NetworkPolicy", "Service", "ConfigMap", "Secret",
            "ServiceAccount"} <= set(kinds)
    for d in docs:
        kubernetes_validate.validate(d, "1.32.0", strict=True)
        assert d["metadata"]["name"].split("-")[-1] in (env, ) or \
            re.search(rf"-{env}-[a-z0-9]{{10}}$", d["metadata"]["name"]), d["metadata"]["name"]
        assert d["metadata"]["namespace"] == f"sluice-{env}"


def containers(docs):
    for d in docs:
        if d["kind"] in WORKLOADS:
            spec = d["spec"]["template"]["spec"]
            for c in spec["containers"]:
                yield d, spec, c


def test_every_container_is_locked_down_and_bounded(manifests):
    _, docs = manifests
    seen = 0
    for d, pod, c in containers(docs):
        seen += 1
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (d["metadata"]["name"], kind)
    assert seen == 4  # gateway, worker, archiver, topic-init


def test_services_have_probes_on_the_admin_port(manifests):
    _, docs = manifests
    for d, _, c in containers(docs):
        if d["kind"] == "Job":
            continue
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        assert env["SLUICE_ADMIN_LISTEN"] == f"0.0.0.0:{ports['admin']}"
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}


def test_gateway_replicas_never_exceed_the_replies_partitions(manifests, build_dir):
    _, docs = manifests
    text = run(build_dir / "tools" / "sluicectl" / "sluicectl", "topics", "create", "--help")
    replies = int(re.search(r"partitions of <prefix>replies \((\d+)\)", text).group(1))
    gw = next(d for d in docs if d["kind"] == "StatefulSet")
    assert 1 <= gw["spec"]["replicas"] <= replies
    assert gw["spec"]["serviceName"].startswith("sluice-gateway-pods")
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == next(
        d["metadata"]["name"] for d in docs if d["kind"] == "Deployment" and
        d["metadata"]["name"].startswith("sluice-worker"))


def test_network_policies_expose_only_the_gateway_and_admin_to_monitoring(manifests):
    _, docs = manifests
    pols = {d["metadata"]["name"].rsplit("-", 1)[0]: d["spec"] for d in docs
            if d["kind"] == "NetworkPolicy"}
    assert pols["sluice-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    http = pols["sluice-gateway-http"]
    assert http["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "sluice-gateway"
    assert http["ingress"] == [{"ports": [{"protocol": "TCP", "port": 8080}]}]
    admin = pols["sluice-admin-from-monitoring"]["ingress"]
    assert admin == [{"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}],
        "ports": [{"protocol": "TCP", "port": 9090}]}]


def declared_settings(build_dir):
    names = set()
    for binary in ("services/gateway/sluice-gateway", "services/worker/sluice-worker",
                   "services/archiver/sluice-archiver"):
        names |= set(re.findall(r"\bSLUICE_[A-Z0-9_]+", run(build_dir / binary, "--help")))
    return names


def test_every_setting_the_manifests_set_is_declared_by_a_binary(manifests, build_dir):
    _, docs = manifests
    used = set()
    for d in docs:
        if d["kind"] == "ConfigMap":
            used |= set(d.get("data", {}))
        if d["kind"] in WORKLOADS:
            for c in d["spec"]["template"]["spec"]["containers"]:
                used |= {e["name"] for e in c.get("env", [])}
    used = {u for u in used if u.startswith("SLUICE_") and not u.startswith("SLUICE_KAFKA_")}
    assert used - declared_settings(build_dir) == set()


# ---- the container image ------------------------------------------------------------------

DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"


def dockerfile_stages():
    """[(base image, alias, [instructions joined across continuation lines])]"""
    stages, lines, cur = [], [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not cur and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        cur += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(cur.strip())
            cur = ""
    for line in lines:
        word = line.split()[0].upper()
        if word == "FROM":
            parts = line.split()
            stages.append((parts[1], parts[3] if len(parts) > 3 else None, []))
        else:
            stages[-1][2].append(line)
    return stages


def apt_installs(instructions):
    pkgs = set()
    for ins in instructions:
        for m in re.finditer(r"apt-get install ([^&]*)", ins):
            pkgs |= {w for w in m.group(1).split() if not w.startswith("-")}
    return pkgs


def test_dockerfile_builds_on_bookworm_and_runs_slim_as_a_fixed_non_root_user():
    stages = dockerfile_stages()
    assert [(base, alias) for base, alias, _ in stages] == [
        ("debian:bookworm", "build"), ("debian:bookworm-slim", None)]
    runtime = stages[-1][2]
    users = [i.split()[1] for i in runtime if i.upper().startswith("USER ")]
    assert users == ["10001:10001"]
    assert any(i.upper().startswith("HEALTHCHECK ") and "/healthz" in i for i in runtime)
    assert any("org.opencontainers.image.title" in i for i in runtime if i.startswith("LABEL"))
    # No compiler in the final image.
    assert not {"build-essential", "gcc", "cmake", "clang"} & apt_installs(runtime)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {"build*/", ".deps/", "var/"} <= set(ignore)


def test_dockerfile_build_stage_installs_the_libraries_install_deps_builds_with():
    text = (ROOT / "scripts" / "install-deps").read_text()
    debs = set(re.search(r"debs=\((.*?)\)", text, re.S).group(1).split())
    build_libs = {d for d in debs if d.startswith("lib") and d.endswith("-dev")} - {
        "libcmocka-dev", "libclang-rt-14-dev", "libmodsecurity-dev"}  # tests and benches only
    assert build_libs <= apt_installs(dockerfile_stages()[0][2])


def needed_libraries(binary):
    out = run("readelf", "-d", str(binary))
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))


def owner(path):
    """The Debian package that ships a library, by any of its names (/usr merged or not)."""
    real = os.path.realpath(path)
    for candidate in (path, real, real.replace("/usr/lib/", "/lib/", 1),
                      path.replace("/usr/lib/", "/lib/", 1)):
        p = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if p.returncode == 0:
            return p.stdout.split(":")[0]
    raise AssertionError(f"no Debian package ships {path}")


def test_dockerfile_runtime_stage_provides_every_library_the_binaries_load(build_dir):
    runtime = apt_installs(dockerfile_stages()[-1][2]) | {"libc6", "libgcc-s1"}  # in the base
    binaries = [build_dir / "services/gateway/sluice-gateway",
                build_dir / "services/worker/sluice-worker",
                build_dir / "services/archiver/sluice-archiver", build_dir / "tools/sluicectl/sluicectl"]
    checked = 0
    for lib in set().union(*(needed_libraries(b) for b in binaries)):
        if lib.startswith(("libasan", "libubsan")):
            continue  # the sanitizers of the test build; the image's release build has none
        path = run("/sbin/ldconfig", "-p").split(f"{lib} (")[1].split("=> ")[1].split()[0]
        package = owner(path)
        assert package in runtime, f"{lib} comes from {package}, which the runtime stage lacks"
        checked += 1
    assert checked >= 10
