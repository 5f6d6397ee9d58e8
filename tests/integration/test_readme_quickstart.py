"""The README's "Running the binaries by hand" block, run as written against the test stack:
only the addresses change (the stack's broker, free ports, a fresh topic prefix, this test's
backend), and the built binaries are put on PATH."""
import http.server
import json
import os
import pathlib
import re
import signal
import subprocess
import threading

from harness import free_port, new_prefix

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"backend": "quickstart", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def quickstart_block():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- quickstart[^>]*-->\s*```sh\n(.*?)```\s*<!-- end quickstart -->", text,
                  re.S)
    assert m, "no quickstart block in README.md"
    return m.group(1)


def test_the_readme_quickstart_works_as_written(build_dir, kafka_bootstrap, tmp_path):
    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Backend)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    gw, gw_admin, wk_admin = free_port(), free_port(), free_port()
    script = quickstart_block()
    for old, new in [
            ("localhost:9092", kafka_bootstrap),
            ("SLUICE_TOPIC_PREFIX=sluice.", f"SLUICE_TOPIC_PREFIX={new_prefix()}"),
            ("127.0.0.1:3000", f"127.0.0.1:{backend.server_port}"),
            ("sluice-worker 2>", f"SLUICE_ADMIN_LISTEN=127.0.0.1:{wk_admin} sluice-worker 2>"),
            ("sluice-gateway 2>", f"SLUICE_LISTEN=127.0.0.1:{gw} "
                                  f"SLUICE_ADMIN_LISTEN=127.0.0.1:{gw_admin} sluice-gateway 2>"),
            ("for admin in 9090 9091", f"for admin in {gw_admin} {wk_admin}"),
            ("127.0.0.1:8080", f"127.0.0.1:{gw}")]:
        assert old in script, old
        script = script.replace(old, new)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["PATH"] = os.pathsep.join([str(build_dir / "tools" / "sluicectl"),
                                   str(build_dir / "services" / "gateway"),
                                   str(build_dir / "services" / "worker"), env["PATH"]])
    env["ASAN_OPTIONS"] = "detect_leaks=0"
    # Files, not pipes: the services it starts in the background keep its stdout open.
    out_file, err_file = open(tmp_path / "out.txt", "w"), open(tmp_path / "err.txt", "w")
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                            stdout=out_file, stderr=err_file, start_new_session=True)
    try:
        proc.wait(timeout=120)
        out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the services it left running in the background
        backend.shutdown()
    logs = "".join((tmp_path / f).read_text() for f in ("gateway.log", "worker.log")
                   if (tmp_path / f).exists())
    assert proc.returncode == 0, f"{out}\n{err}\n{logs[-3000:]}"
    assert re.search(r"^API key: sk_\S+$", out, re.M), out
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer == {"backend": "quickstart", "path": "/orders/42"}, out
    assert json.loads((tmp_path / "keys.json").read_text())["keys"][0]["name"] == "me"
