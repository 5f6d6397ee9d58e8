"""A minimal OTLP/HTTP JSON trace receiver for bench/e2e's tracing mode: accepts POST /v1/traces,
counts the spans and answers 200; prints nothing. Usage: otlp_sink.py PORT COUNT_FILE (the span
count is written there after every request)."""
import http.server
import json
import sys
import threading

port, count_file = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers["Content-Length"]))
        n = sum(len(ss["spans"]) for rs in json.loads(body)["resourceSpans"]
                for ss in rs["scopeSpans"])
        with lock:
            count += n
            with open(count_file, "w") as f:
                f.write(str(count))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
