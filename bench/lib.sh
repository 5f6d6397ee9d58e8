# Shared by the bench/*/run scripts (sourced): ports, readiness, nginx as the baseline, wrk runs
# pinned to a core, CPU accounting from /proc, medians. Expects $root, $tmp, $server_cpu,
# $client_cpu, $conns and the array pids=() to be set by the caller; the caller's EXIT trap
# runs bench_cleanup.

bench_cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [[ -n ${bench_topic_prefix:-} ]] && delete_topics "$bench_topic_prefix"
    rm -rf "$tmp"
}

# Deletes the topics (and consumer groups) named with prefix $1 from the stack's broker: a bench
# run writes gigabytes of audit records, and a shared broker that keeps every run's topics gets
# slower (more partitions, a larger heap to collect) for the runs that follow.
delete_topics() {
    local py=python3
    [[ -x $root/.deps/venv/bin/python ]] && py=$root/.deps/venv/bin/python
    "$py" - "${SLUICE_KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:19092}" "$1" <<'PY' || echo "bench: could not delete topics $1*" >&2
import sys
from confluent_kafka.admin import AdminClient
a = AdminClient({"bootstrap.servers": sys.argv[1]})
prefix = sys.argv[2]
topics = [t for t in a.list_topics(timeout=10).topics if t.startswith(prefix)]
for f in a.delete_topics(topics, operation_timeout=30).values() if topics else []:
    f.result()
groups = [g.group_id for g in a.list_consumer_groups().result(timeout=10).valid
          if g.group_id.startswith(prefix)]
for f in a.delete_consumer_groups(groups).values() if groups else []:
    try:
        f.result()
    except Exception:
        pass  # a group that is still settling its members goes with the broker's next sweep
PY
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until any HTTP answer comes from $1 (curl without -f: a 403 is an answer too).
wait_ready() {
    local url=$1
    for _ in $(seq 1 200); do
        curl -s -o /dev/null "$url" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: $url did not come up" >&2
    return 1
}

# Starts nginx (one worker, access log off, fixed 200 {"ok":true}) on core $server_cpu, on port
# $1; sets nginx_pid and nginx_worker.
start_nginx() {
    local port=$1 user_line=""
    # nginx ignores `user` unless run as root; as root keep the workers on root's uid so they can
    # use the temp dir, otherwise run entirely as the current user.
    [[ $(id -u) -eq 0 ]] && user_line="user root;"
    mkdir -p "$tmp"/{client_body,proxy,fastcgi,uwsgi,scgi}
    sed -e "s|@TMP@|$tmp|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$user_line|" \
        "$root/bench/http/nginx.conf" >"$tmp/nginx.conf"
    taskset -c "$server_cpu" nginx -p "$tmp" -c "$tmp/nginx.conf" 2>"$tmp/nginx-stderr.log" &
    nginx_pid=$!
    pids+=("$nginx_pid")
    wait_ready "http://127.0.0.1:$port/"
    nginx_worker=$(pgrep -P "$nginx_pid" | head -n1)
    [[ -n $nginx_worker ]] || { echo "bench: no nginx worker found" >&2; return 1; }
}

# Prints requests/s of one wrk run: wrk_rps DURATION URL [wrk options...] (keep-alive, one
# thread, pinned to the client core). Fails when wrk saw non-2xx/3xx answers unless
# BENCH_EXPECT_ERRORS=1 (the gateway's 403s are the point of one benchmark).
wrk_rps() {
    local d=$1 url=$2 out
    shift 2
    out=$(taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$d" "$@" "$url")
    if [[ ${BENCH_EXPECT_ERRORS:-0} != 1 ]] && grep -q "Non-2xx or 3xx responses" <<<"$out"; then
        echo "bench: unexpected error answers from $url:" >&2
        echo "$out" >&2
        return 1
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# One measured run: measure PID DURATION URL [wrk options...]; prints "<requests/s>
# <requests per server CPU-second>".
measure() {
    local pid=$1 d=$2 url=$3 t0 t1 rps
    shift 3
    t0=$(cpu_ticks "$pid")
    rps=$(wrk_rps "$d" "$url" "$@")
    t1=$(cpu_ticks "$pid")
    awk -v r="$rps" -v d="${d%s}" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%s %.0f\n", r, (t > 0) ? r * d / (t / hz) : 0}'
}

median() {
    sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'
}
