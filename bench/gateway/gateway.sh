# Shared by bench/gateway/run and bench/gateway/instructions (sourced after bench/lib.sh): the
# gateway's files and its start. Expects $root, $tmp, $server_cpu and pids=() from the caller.

# Writes $tmp/keys.json (one key the benchmark never presents: every keyed request is a 403) and
# $tmp/acl.json (the default web ACL with its IP rate limit counting instead of blocking: every
# rule is still evaluated on every request, but one load generator on one address would otherwise
# be rate-limited within a second and the benchmark would measure WAF blocks); sets origins (16
# allowed CORS origins) and bench_topic_prefix.
gateway_files() {
    python3 - "$tmp/keys.json" <<'PY'
import hashlib, json, sys
h = hashlib.sha256(b"sk_bench-key-that-is-never-sent").hexdigest()
json.dump({"version": 1, "keys": [{"id": "key_bench", "name": "bench", "hash": "sha256:" + h,
           "plan": "default", "enabled": True, "created": "2026-01-01T00:00:00Z",
           "expires": None, "revoked": None}]}, open(sys.argv[1], "w"))
PY
    python3 - "$root/data/waf/default-acl.json" "$tmp/acl.json" <<'PY'
import json, sys
acl = json.load(open(sys.argv[1]))
for rule in acl["Rules"]:
    if "RateBasedStatement" in rule["Statement"]:
        rule["Action"] = {"Count": {}}
json.dump(acl, open(sys.argv[2], "w"))
PY
    origins=$(seq -f 'https://app%g.bench.example' 1 16 | paste -sd,)
    bench_topic_prefix="bench$$."
}

# start_gateway BINARY PORT ADMIN_PORT LOG [WRAPPER...]: starts a gateway (under WRAPPER, e.g.
# valgrind, when given) pinned to the server core and waits up to 60 s for its readiness; sets
# started_pid (the wrapper's pid when there is one: it runs the gateway in its own process).
start_gateway() {
    local bin=$1 port=$2 admin=$3 log=$4
    shift 4
    SLUICE_CORS_ORIGINS=$origins SLUICE_TOPIC_PREFIX=$bench_topic_prefix SLUICE_AUTO_CREATE_TOPICS=true \
        SLUICE_KEYS_FILE="$tmp/keys.json" SLUICE_WAF_ACL_FILE="$tmp/acl.json" \
        SLUICE_LISTEN="127.0.0.1:$port" SLUICE_ADMIN_LISTEN="127.0.0.1:$admin" \
        SLUICE_LOG_LEVEL=warn taskset -c "$server_cpu" "$@" "$bin" 2>"$log" &
    started_pid=$!
    pids+=("$started_pid")
    for _ in $(seq 1 1200); do
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin/readyz") == 200 ]] && return 0
        kill -0 "$started_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.05
    done
    echo "bench/gateway: $bin did not turn ready" >&2
    exit 1
}
