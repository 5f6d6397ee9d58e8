"""Produces N audit records shaped like the gateway's (about 500 bytes each) to a topic."""
import json
import random
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
              "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
paths = ["/orders", "/orders/8842/items", "/users/me", "/search", "/hello"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0 Safari/537.36", "curl/8.5.0", "python-requests/2.32.3"]
size = 0
rng = random.Random()
t = int(time.time() * 1000)
for i in range(n):
    ts = t + i // 10
    rec = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1000)) +
                     f".{ts % 1000:03d}Z",
        "request_id": "%08x-%04x-4%03x-a%03x-%012x" % (
            rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12),
            rng.getrandbits(48)),
        "trace_id": "%032x" % rng.getrandbits(128),
        "method": "GET" if i % 3 else "POST", "path": paths[i % 5], "route": "ANY /{proxy+}",
        "status": 200 if i % 17 else 429, "latency_ms": round(2 + (i % 97) * 0.37, 2),
        "source_ip": f"203.0.113.{i % 250}", "user_agent": agents[i % 3],
        "api_key_id": f"key_{(i % 40):016x}", "plan": "default",
        "waf": {"action": "ALLOW", "rule": None, "labels": []},
        "bytes_in": 0 if i % 3 else 512, "bytes_out": 87 + i % 400, "error": None,
        "stage": "production", "gateway": f"gateway-{i % 2}",
    }
    value = json.dumps(rec, separators=(",", ":")).encode()
    size += len(value)
    while True:
        try:
            p.produce(topic, value=value, partition=i % 6, timestamp=ts)
            break
        except BufferError:
            p.poll(0.05)
    if i % 10000 == 0:
        p.poll(0)
assert p.flush(120) == 0
print(size / n)
