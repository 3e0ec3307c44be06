#!/bin/sh
# rss-bench.sh: the demo services' memory does not grow with the orders
# (issue 16: their state is in SQLite; nothing per order lives on the heap).
#
#   bench/rss-bench.sh BUILDDIR [--first N] [--orders N]      (`make bench-rss`)
#
# Starts the durable chain (--threads 1 --mode safe, each service's database
# in a fresh directory, --sync normal), drives POST /orders with
# BUILDDIR/services/load/sluice-load (32 connections, closed loop) in rounds
# of 5 s, and reads each service's VmRSS (/proc/PID/status) once N_first
# orders were paid (default 10,000) and again after N orders (default
# 1,000,000: minutes; not part of `make check`). Prints one JSON object:
#   {"first": {"orders", "rss_kib": {"order","inventory","payment"}},
#    "last": {...}, "growth_mib": {...}, "target_met": every growth <= 20,
#    "seconds"}
# and a line on stderr.
set -eu

me=rss-bench.sh
usage() { echo "usage: $me BUILDDIR [--first N] [--orders N]" >&2; exit 2; }
[ $# -ge 1 ] || usage
builddir=$(cd "$1" && pwd) || usage
shift
first=10000 orders=1000000
while [ $# -gt 0 ]; do
    case $1 in
    --first) [ $# -ge 2 ] || usage; first=$2; shift 2 ;;
    --orders) [ $# -ge 2 ] || usage; orders=$2; shift 2 ;;
    *) usage ;;
    esac
done
[ "$orders" -gt "$first" ] || { echo "$me: --orders must exceed --first" >&2; exit 2; }

load=$builddir/services/load/sluice-load
for f in "$load" "$builddir/services/order/order-svc" "$builddir/services/inventory/inventory-svc" \
         "$builddir/services/payment/payment-svc"; do
    [ -x "$f" ] || { echo "$me: no $f (make it first)" >&2; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rss-bench.XXXXXX")
pids=''
cleanup() {
    for p in $pids; do kill -TERM "$p" 2>/dev/null || :; done
    for p in $pids; do wait "$p" 2>/dev/null || :; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

set -- $(python3 -c 'import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
po=$1 pi=$2 pp=$3
stock=sku-1=1000000000000,sku-2=1000000000000
"$builddir/services/payment/payment-svc" --listen 127.0.0.1:$pp --threads 1 --order http://127.0.0.1:$po \
    --data "$tmp" >"$tmp/payment.out" 2>"$tmp/payment.err" &
pay=$!
"$builddir/services/inventory/inventory-svc" --listen 127.0.0.1:$pi --threads 1 --payment http://127.0.0.1:$pp \
    --data "$tmp" --stock $stock >"$tmp/inventory.out" 2>"$tmp/inventory.err" &
inv=$!
"$builddir/services/order/order-svc" --listen 127.0.0.1:$po --threads 1 --inventory http://127.0.0.1:$pi \
    --data "$tmp" >"$tmp/order.out" 2>"$tmp/order.err" &
ord=$!
pids="$ord $inv $pay"
for n in order inventory payment; do
    i=0
    until grep -q '^listening on ' "$tmp/$n.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 200 ] || { echo "$me: $n did not start:" >&2; cat "$tmp/$n.err" >&2; exit 1; }
        sleep 0.05
    done
done

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
paid=0 start=$(date +%s)
snap() { printf '{"orders": %d, "rss_kib": {"order": %d, "inventory": %d, "payment": %d}}' \
             "$paid" "$(rss $ord)" "$(rss $inv)" "$(rss $pay)"; }
first_json=''
while [ "$paid" -lt "$orders" ]; do
    "$load" "http://127.0.0.1:$po/orders" --connections 32 --duration 5 --method POST --quiet \
        --body '{"item":"sku-{{rand:1-2}}","qty":1,"amount_cents":1250}' --json >"$tmp/load.json"
    n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["status"].get("201", 0))' "$tmp/load.json")
    paid=$((paid + n))
    [ -n "$first_json" ] || [ "$paid" -lt "$first" ] || first_json=$(snap)
    echo "$me: $paid orders paid" >&2
done
last_json=$(snap)
python3 - "$first_json" "$last_json" "$(( $(date +%s) - start ))" <<'EOF'
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
growth = {k: round((b["rss_kib"][k] - a["rss_kib"][k]) / 1024, 2) for k in a["rss_kib"]}
out = {"first": a, "last": b, "growth_mib": growth, "target_met": all(g <= 20 for g in growth.values()),
       "seconds": int(sys.argv[3])}
json.dump(out, sys.stdout, indent=2)
print()
print("rss-bench.sh: RSS growth from %d to %d orders (MiB): %s: target (<= 20) %s" % (
    a["orders"], b["orders"], growth, "met" if out["target_met"] else "MISSED"), file=sys.stderr)
EOF
