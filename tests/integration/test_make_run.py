"""`make run`, the README's first command, as a newcomer runs it: it prints a demo key and the
curl line, the curl is answered by the echo handler, the request's audit record lands under
var/archive, and Ctrl-C (SIGINT to the process group, as a terminal sends it) stops everything
it started — gateway, worker, archiver and the worker's handler processes."""
import gzip
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import time
import uuid

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_with(marker):
    """Pids of live processes whose environment holds marker."""
    pids = []
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = (d / "environ").read_bytes()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in env and state != "Z":
            pids.append(int(d.name))
    return pids


def archived_records(root, rid):
    found = []
    for path in root.glob("api-logs/year=*/month=*/day=*/*.ndjson.gz"):
        try:
            lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        except (OSError, EOFError):
            continue  # being written
        found += [json.loads(x) for x in lines if json.loads(x).get("request_id") == rid]
    return found


def test_make_run_answers_the_printed_curl_archives_it_and_stops_on_ctrl_c(tmp_path):
    marker = f"SLUICE_RUN_TEST_{uuid.uuid4().hex}"
    listen = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_") or
           k == "SLUICE_STACK_PORT_OFFSET"}
    env.update({
        marker: "1",
        "SLUICE_KEYS_FILE": str(tmp_path / "keys.json"),
        "SLUICE_LISTEN": listen,
        "SLUICE_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
        "SLUICE_WORKER_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
        "SLUICE_ARCHIVER_ADMIN_LISTEN": f"127.0.0.1:{free_port()}",
        # Objects within a second instead of a minute; the place stays the default var/archive.
        "SLUICE_BATCH_MAX_AGE_MS": "1000",
    })
    out = open(tmp_path / "make-run.log", "w+")
    proc = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # The release build may run first (minutes on a fresh checkout).
        deadline = time.monotonic() + 900
        text = ""
        while time.monotonic() < deadline and "sluice: Ctrl-C stops" not in text:
            assert proc.poll() is None, open(tmp_path / "make-run.log").read()[-4000:]
            time.sleep(0.5)
            text = open(tmp_path / "make-run.log").read()
        assert "sluice: Ctrl-C stops" in text, text[-4000:]
        key = re.search(r"^API key: (sk_\S+)$", text, re.M).group(1)
        curl = re.search(r'curl -i -H "X-API-Key: <the key above>" (http://\S+)$', text, re.M)
        assert curl and curl.group(1) == f"http://{listen}/hello", text[-2000:]
        archive = re.search(r"archiver writing audit records to file://(\S+) ", text).group(1)
        archive_dir = (ROOT / archive).resolve()
        assert archive_dir == ROOT / "var" / "archive"

        deadline = time.monotonic() + 60
        while True:  # the gateway and worker may still be starting
            try:
                r = requests.get(curl.group(1), headers={"X-API-Key": key}, timeout=30)
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["path"] == "/hello"
        rid = r.headers["x-amzn-RequestId"]

        deadline = time.monotonic() + 60
        while not archived_records(archive_dir, rid) and time.monotonic() < deadline:
            time.sleep(0.5)
        recs = archived_records(archive_dir, rid)
        assert len(recs) == 1 and recs[0]["status"] == 200 and recs[0]["path"] == "/hello", recs
        assert len(processes_with(marker)) >= 4  # make, bash, gateway, worker, archiver...
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at the terminal
        try:
            code = proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        deadline = time.monotonic() + 15
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
    left = processes_with(marker)
    assert left == [], [open(f"/proc/{p}/cmdline").read() for p in left]
    # make reports the interrupted recipe; the services themselves ended cleanly.
    assert code in (0, 2, -signal.SIGINT, 130), code
