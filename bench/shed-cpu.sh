#!/bin/sh
# shed-cpu.sh: the CPU time (user + kernel) order-svc spends per refusal,
# with the open-loop load of the overload benchmark (issue 14).
#
#   bench/shed-cpu.sh BUILDDIR [--rate R] [--duration S]
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
# One JSON object on stdout.
set -eu
me=shed-cpu.sh
usage() { echo "usage: $me BUILDDIR [--rate R] [--duration S]" >&2; exit 2; }
[ $# -ge 1 ] || usage
b=$(cd "$1" && pwd) || usage
shift
rate=20000 duration=5
while [ $# -gt 0 ]; do
    case $1 in
    --rate) [ $# -ge 2 ] || usage; rate=$2; shift ;;
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift ;;
    *) usage ;;
    esac
    shift
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/shed-cpu.XXXXXX")
pid=''
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

taskset -c 0 "$b/services/order/order-svc" --listen 127.0.0.1:0 --inventory http://127.0.0.1:1 \
    --threads 1 --timeout-ms 1000 >"$tmp/order.out" 2>"$tmp/order.err" &
pid=$!
i=0
until grep -q '^listening on ' "$tmp/order.out" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] && kill -0 "$pid" 2>/dev/null || { echo "$me: order-svc did not start" >&2; exit 1; }
    sleep 0.05
done
url=http://$(sed -n 's/^listening on //p' "$tmp/order.out" | head -1)/orders
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
load() {
    taskset -c 1 "$b/services/load/sluice-load" "$url" --method POST \
        --body '{"item":"sku-1","qty":1,"amount_cents":1250}' --rate "$rate" --connections 4000 \
        --timeout 2500 --duration "$1" --json --quiet --no-deadline-header --header 'grpc-timeout: 0m'
}
load 1 >/dev/null
c0=$(cpu)
load "$duration" >"$tmp/load.json"
c1=$(cpu)
python3 - "$tmp/load.json" "$c0" "$c1" "$(getconf CLK_TCK)" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
cpu = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4])
n = j["status"].get("504", 0) + j["status"].get("503", 0)
print(json.dumps({"refused": n, "refused_per_s": round(n / j["duration_s"]), "cpu_s": round(cpu, 2),
                  "cpu_us_per_refusal": round(cpu / n * 1e6, 1) if n else None,
                  "status": j["status"], "errors": j["errors"]}))
EOF
