"""Produces N dead-letter records as sluice-worker writes them (a request envelope of about 600
bytes, the original headers, the DLQ headers) to a topic."""
import sys
import time

import msgpack
from confluent_kafka import Producer

bootstrap, topic, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000,
              "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
now = int(time.time() * 1000)
size = 0
for i in range(n):
    rid = f"{i:08x}-7c1e-4a5b-9d2f-{i:012x}"
    env = {"v": 1, "id": rid, "method": "POST", "path": f"/orders/{i}/items",
           "resource": "/orders/{proxy+}",
           "headers": {"content-type": ["application/json"], "accept": ["*/*"],
                       "user-agent": ["python-requests/2.32.3"],
                       "x-amzn-trace-id": [f"Root=1-{i:08x}-{i:024x}"]},
           "query": {"expand": ["items"]}, "path_params": {"proxy": f"{i}/items"},
           "body": b'{"sku":"A-1042","quantity":3,"note":"leave at the door, ring twice"}',
           "source_ip": f"203.0.113.{i % 250}", "user_agent": "python-requests/2.32.3",
           "api_key_id": f"key_{i % 40:016x}", "stage": "production", "received_ms": now,
           "deadline_ms": now + 29000, "trace": f"00-{i:032x}-{i:016x}-01",
           "reply_partition": i % 4, "attempt": 3, "replay_count": 0}
    value = msgpack.packb(env, use_bin_type=True)
    size += len(value)
    err = b"child died of signal 11 (Segmentation fault)"
    headers = [("sluice-id", rid.encode()), ("sluice-reply-partition", str(i % 4).encode()),
               ("sluice-dlq-reason", b"crash"), ("sluice-dlq-error", err),
               ("sluice-attempts", b"3"), ("sluice-first-failure-ms", str(now).encode()),
               ("sluice-worker", b"worker-0"), ("kafka_dlt-original-topic", b"bench.requests"),
               ("kafka_dlt-original-partition", (i % 4).to_bytes(4, "big")),
               ("kafka_dlt-original-offset", i.to_bytes(8, "big")),
               ("kafka_dlt-original-timestamp", now.to_bytes(8, "big")),
               ("kafka_dlt-exception-message", err)]
    while True:
        try:
            p.produce(topic, key=rid.encode(), value=value, headers=headers)
            break
        except BufferError:
            p.poll(0.05)
    if i % 10000 == 0:
        p.poll(0)
assert p.flush(120) == 0
print(size / n)
