# Shared by the bench/*/run scripts (sourced): ports, readiness, the test stack, nginx as the
# baseline, wrk runs pinned to a core with their statuses checked, CPU accounting from /proc,
# medians. Expects $root, $tmp, $server_cpu,
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
    local py=python3 venv
    # The repository's venv, else that of the checkout whose scripts/stack runs the broker.
    for venv in "$root/.deps/venv" "${SLUICE_STACK_DIR:-/nonexistent}/../../.deps/venv"; do
        [[ -x $venv/bin/python ]] && { py=$venv/bin/python; break; }
    done
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
# thread, pinned to the client core). Fails on any answer that is not 2xx/3xx, or, with a script
# that counts statuses (bench/gateway/load.lua: bench-* lines), on any answer whose status is not
# BENCH_EXPECT_STATUS and on any socket error (connect, read, write, timeout).
wrk_rps() {
    local d=$1 url=$2 out unexpected sockerr
    shift 2
    out=$(taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"$d" "$@" "$url")
    if grep -q '^bench-unexpected ' <<<"$out"; then
        unexpected=$(awk '/^bench-unexpected / {print $2}' <<<"$out")
        sockerr=$(awk '/^bench-socket-errors / {print $2}' <<<"$out")
        if [[ $unexpected != 0 || $sockerr != 0 ]]; then
            echo "bench: unexpected answers from $url (want ${BENCH_EXPECT_STATUS:-200} only):" >&2
            echo "$out" >&2
            return 1
        fi
        grep '^bench-statuses ' <<<"$out" >&2
    elif grep -q "Non-2xx or 3xx responses" <<<"$out"; then
        echo "bench: unexpected error answers from $url:" >&2
        echo "$out" >&2
        return 1
    fi
    awk '/^Requests\/sec:/ {print $2}' <<<"$out"
}

cpu_ticks() {
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# The CPU ticks (user + system) of the comma-separated pids in $1, summed.
cpu_ticks_sum() {
    local pid sum=0
    for pid in ${1//,/ }; do
        sum=$((sum + $(cpu_ticks "$pid")))
    done
    echo "$sum"
}

# One measured run: measure PIDS DURATION URL [wrk options...]; prints "<requests/s>
# <requests per server CPU-second>", the CPU of every pid in the comma-separated PIDS counted.
measure() {
    local pids_csv=$1 d=$2 url=$3 t0 t1 rps
    shift 3
    t0=$(cpu_ticks_sum "$pids_csv")
    rps=$(wrk_rps "$d" "$url" "$@")
    t1=$(cpu_ticks_sum "$pids_csv")
    awk -v r="$rps" -v d="${d%s}" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%s %.0f\n", r, (t > 0) ? r * d / (t / hz) : 0}'
}

# Uses the running test stack when its address is in the environment (as after
# `eval "$(scripts/stack up)"` or `. var/stack.env`), else starts it; never stops it. Sets
# kafka_pid to the broker's JVM (its pid file, else the process listening on the port) or "".
bench_stack() {
    if [[ -z ${SLUICE_KAFKA_BOOTSTRAP_SERVERS:-} ]]; then
        eval "$("$root/scripts/stack" up)"
    fi
    kafka_pid=""
    local f=${SLUICE_STACK_DIR:-$root/var/stack}/kafka.pid port=${SLUICE_KAFKA_BOOTSTRAP_SERVERS##*:}
    [[ -s $f ]] && kafka_pid=$(tr -dc '0-9' <"$f")
    if [[ -z $kafka_pid || ! -r /proc/$kafka_pid/stat ]]; then
        kafka_pid=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 |
            cut -d= -f2)
    fi
}

median() {
    sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'
}
