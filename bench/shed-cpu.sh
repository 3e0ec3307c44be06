#!/bin/sh
# shed-cpu.sh: the CPU time (user + kernel) order-svc spends per refusal,
# with the open-loop load of the overload benchmark (issue 14).
#
#   bench/shed-cpu.sh BUILDDIR [--rate R] [--duration S] [--syscalls] [--peer nginx]
#
# order-svc alone (--threads 1, pinned to CPU 0; its inventory is nobody,
# it is never called), sluice-load on CPU 1 at R requests/s (default
# 20000) over 4000 connections, every request with `grpc-timeout: 0m`, so
# each is refused as soon as its head is parsed (504: its budget is gone,
# the same path as a 503 for too little budget). The CPU of order-svc
# (/proc, utime + stime) over S s (default 5, after 1 s of warm-up),
# divided by the refusals answered meanwhile. Unlike shed-instr.py this
# counts the kernel (the recv and send of each refusal, most of its cost),
# and so moves with the machine: compare builds in the same minute.
# user_us and sys_us split it. --syscalls (perf, root or
# perf_event_paranoid <= 1): order-svc's syscalls per refusal by kind and
# its context switches (`perf stat -e syscalls:sys_enter_NAME -p PID`; the
# tracepoints make each syscall dearer, so the CPU of such a run is not
# comparable). One JSON object on stdout.
#
# --peer nginx: Debian's nginx (one worker, pinned to CPU 0) in order-svc's
# place, answering every POST /orders with `return 503` and a Retry-After:
# the cheapest refusal an HTTP/1.1 server makes, the floor to hold
# order-svc's against (run both in the same minute; docs/net.md, "Where the
# CPU goes under overload").
set -eu
me=shed-cpu.sh
usage() { echo "usage: $me BUILDDIR [--rate R] [--duration S] [--syscalls] [--peer nginx]" >&2; exit 2; }
[ $# -ge 1 ] || usage
b=$(cd "$1" && pwd) || usage
shift
rate=20000 duration=5 syscalls=0 peer=''
while [ $# -gt 0 ]; do
    case $1 in
    --peer) [ $# -ge 2 ] && [ "$2" = nginx ] || usage; peer=$2; shift ;;
    --rate) [ $# -ge 2 ] || usage; rate=$2; shift ;;
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift ;;
    --syscalls) syscalls=1 ;;
    *) usage ;;
    esac
    shift
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shed-cpu.XXXXXX")
pid='' perf_pid=''
cleanup() {
    if [ -n "$perf_pid" ]; then kill -INT "$perf_pid" 2>/dev/null || true; wait "$perf_pid" 2>/dev/null || true; fi
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$peer" = nginx ]; then
    command -v nginx >/dev/null || { echo "$me: nginx not found (apt-get install nginx-light)" >&2; exit 1; }
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$tmp/logs"
    cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location /orders {
            add_header Retry-After 1 always;
            default_type application/json;
            return 503 '{"error":"overloaded"}';
        }
    }
}
EOF
    taskset -c 0 nginx -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>"$tmp/nginx.err" &
    pid=$!
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null || { echo "$me: nginx did not start" >&2; exit 1; }
        sleep 0.05
    done
    echo "listening on 127.0.0.1:$port" >"$tmp/order.out"
else
    taskset -c 0 "$b/services/order/order-svc" --listen 127.0.0.1:0 --inventory http://127.0.0.1:1 \
        --threads 1 --timeout-ms 1000 >"$tmp/order.out" 2>"$tmp/order.err" &
    pid=$!
    i=0
    until grep -q '^listening on ' "$tmp/order.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null || { echo "$me: order-svc did not start" >&2; exit 1; }
        sleep 0.05
    done
fi
url=http://$(sed -n 's/^listening on //p' "$tmp/order.out" | head -1)/orders
cpu() { awk '{ print $14, $15 }' "/proc/$pid/stat"; }
load() {
    taskset -c 1 "$b/services/load/sluice-load" "$url" --method POST \
        --body '{"item":"sku-1","qty":1,"amount_cents":1250}' --rate "$rate" --connections 4000 \
        --timeout 2500 --duration "$1" --json --quiet --no-deadline-header --header 'grpc-timeout: 0m'
}
load 1 >/dev/null
: >"$tmp/perf"
if [ "$syscalls" = 1 ]; then
    ev=''
    for s in recvfrom sendto sendmsg writev readv epoll_wait epoll_ctl timerfd_settime accept4 close setsockopt \
             futex read write; do
        ev="${ev}syscalls:sys_enter_$s,"
    done
    perf stat -x, -o "$tmp/perf" -e "${ev}context-switches" -p "$pid" &
    perf_pid=$!
    sleep 0.3
fi
c0=$(cpu)
load "$duration" >"$tmp/load.json"
c1=$(cpu)
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; perf_pid=''; fi
python3 - "$tmp/load.json" "$c0" "$c1" "$(getconf CLK_TCK)" "$tmp/perf" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
(u0, s0), (u1, s1), tck = map(float, sys.argv[2].split()), map(float, sys.argv[3].split()), float(sys.argv[4])
cpu = (u1 + s1 - u0 - s0) / tck
n = j["status"].get("504", 0) + j["status"].get("503", 0)
out = {"refused": n, "refused_per_s": round(n / j["duration_s"]), "cpu_s": round(cpu, 2),
       "cpu_us_per_refusal": round(cpu / n * 1e6, 1) if n else None,
       "user_us": round((u1 - u0) / tck / n * 1e6, 1) if n else None,
       "sys_us": round((s1 - s0) / tck / n * 1e6, 1) if n else None,
       "status": j["status"], "errors": j["errors"],
       # a run whose requests timed out measured a starved order-svc (or
       # load client): the load reconnects, and accepts and closes enter
       # every figure
       "valid": sum(j["errors"].values()) == 0}
sc = {}
for line in open(sys.argv[5]):
    p = line.strip().split(",")
    if len(p) > 3 and p[0].isdigit() and int(p[0]) > 0 and n:
        sc[p[2].replace("syscalls:sys_enter_", "")] = round(int(p[0]) / n, 3)
if sc:
    out["syscalls_per_refusal"] = sc
print(json.dumps(out))
EOF
