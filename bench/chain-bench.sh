#!/bin/sh
# chain-bench.sh: the demo chain (order → inventory → payment → order's
# callback, docs/services.md) in sluice against its Go net/http peer
# (bench/peers/chain), under the same closed-loop load.
#
#   bench/chain-bench.sh BUILDDIR [--quick] [--strict]      (`make bench-chain`)
#
# Each side runs as three processes on free loopback ports: sluice's
# services/*/…-svc with --threads 1 --mode safe, the Go peer with
# GOMAXPROCS=1. BUILDDIR/services/load/sluice-load drives POST /orders with
# 32 connections for 10 s (after a 2 s warm-up), sluice and Go alternating,
# two rounds each, a fresh chain per round; each side's best round (by
# orders/s) is its figure. After every round a sample of orders is checked
# against the invariant (201 PAID, order PAID, charge CHARGED, stock down by
# exactly the sample; an out-of-stock order leaves the stock alone).
#
# Prints one JSON object on stdout:
#   {"sluice": {"orders_per_s", "p99_ms", "errors", ...}, "go": {...},
#    "ratio_orders": sluice/go orders/s, "p99_ratio": go/sluice p99 (>= 1:
#    sluice no worse), "target_met": ratio_orders >= 2 and p99_ratio >= 1
#    and the invariant held on both sides, "runs": [every round],
#    "loadavg_before"/"loadavg_after": /proc/loadavg's 1/5/15 min figures}
# and a short table on stderr. orders_per_s counts 201 answers only;
# errors is every other answer and every transport error.
# --quick: one 3 s round each (1 s warm-up), for a smoke test.
# --strict: exit 2 when the target is missed.
#
# Environment: GO (default: go), PYTHON (default: python3), GOCACHE,
# SLUICE_LOAD (default: BUILDDIR/services/load/sluice-load).
set -eu

me=chain-bench.sh
usage() { echo "usage: $me BUILDDIR [--quick] [--strict]" >&2; exit 2; }

[ $# -ge 1 ] || usage
builddir=$1; shift
quick='' strict=''
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    --strict) strict=1 ;;
    *) usage ;;
    esac
done
rounds=2 duration=10 warmup=2 connections=32
[ -z "$quick" ] || { rounds=1 duration=3 warmup=1; }

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$builddir" && pwd) || { echo "$me: no build dir $1" >&2; exit 1; }

GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "$me: 'go' not found: install golang-go (apt-get install golang-go) to run the Go peer" >&2
    exit 1
fi
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=/usr/bin/python3
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "$me: python3 not found: it reserves ports, checks the invariant and does the JSON" >&2
    exit 1
fi

load=${SLUICE_LOAD:-$builddir/services/load/sluice-load}
svc_order=$builddir/services/order/order-svc
svc_inventory=$builddir/services/inventory/inventory-svc
svc_payment=$builddir/services/payment/payment-svc
for f in "$load" "$svc_order" "$svc_inventory" "$svc_payment"; do
    [ -x "$f" ] || { echo "$me: no $f (make it first)" >&2; exit 1; }
done

outdir=$builddir/bench/peers
mkdir -p "$outdir"
peer=$outdir/chain-peer
# Standard library only, no network; the build cache stays out of the
# build dir (see run-peers.sh).
gocache=${GOCACHE:-${TMPDIR:-/tmp}/sluice-peers-gocache-$(id -u)}
echo "$me: building $peer" >&2
(
    cd "$srcdir/bench/peers/chain"
    GOTOOLCHAIN=local GOPROXY=off GOFLAGS='' GOWORK=off GO111MODULE=on \
        GOCACHE=$gocache "$GO" build -o "$peer" .
) || { echo "$me: go build failed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chain-bench.XXXXXX")

# ---------------------------------------------------------------- processes

# free_ports N: N distinct ports the kernel had free a moment ago. A start
# that loses one to another program fails and is retried.
free_ports() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# start NAME CMD...: runs CMD in the background, its stdout in $tmp/NAME.out,
# and records its pid in $pid and $pids.
start() {
    name=$1; shift
    "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pid=$!
    pids="$pids $pid"
}

# listening PID NAME: waits (up to 10 s) for NAME's "listening on" line;
# fails when the process exits first.
listening() {
    i=0
    while [ $i -lt 200 ]; do
        grep -q '^listening on ' "$tmp/$2.out" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# stop PID...: SIGTERM, then SIGKILL for whoever has not drained in 10 s.
stop() {
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || :; done
    for p in "$@"; do
        i=0
        while kill -0 "$p" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        kill -KILL "$p" 2>/dev/null || :
        wait "$p" 2>/dev/null || :
    done
    keep=''
    for q in $pids; do
        case " $* " in *" $q "*) ;; *) keep="$keep $q" ;; esac
    done
    pids=$keep
}

# chain SIDE: starts SIDE's three services (payment, inventory, order: each
# is given the next one's URL) and sets $order_url and $chain_pids.
chain() {
    tries=0
    while [ $tries -lt 3 ]; do
        tries=$((tries + 1))
        set -- $(free_ports 3)
        po=$1 pi=$2 pp=$3
        if [ "$side" = sluice ]; then
            start "$side-payment" "$svc_payment" --listen 127.0.0.1:$pp --threads 1 --mode safe \
                --order http://127.0.0.1:$po
            p1=$pid
            start "$side-inventory" "$svc_inventory" --listen 127.0.0.1:$pi --threads 1 --mode safe \
                --payment http://127.0.0.1:$pp
            p2=$pid
            start "$side-order" "$svc_order" --listen 127.0.0.1:$po --threads 1 --mode safe \
                --inventory http://127.0.0.1:$pi
            p3=$pid
        else
            start "$side-payment" env GOMAXPROCS=1 "$peer" -role payment -listen 127.0.0.1:$pp \
                -order http://127.0.0.1:$po
            p1=$pid
            start "$side-inventory" env GOMAXPROCS=1 "$peer" -role inventory -listen 127.0.0.1:$pi \
                -payment http://127.0.0.1:$pp
            p2=$pid
            start "$side-order" env GOMAXPROCS=1 "$peer" -role order -listen 127.0.0.1:$po \
                -inventory http://127.0.0.1:$pi
            p3=$pid
        fi
        chain_pids="$p1 $p2 $p3"
        if listening $p1 "$side-payment" && listening $p2 "$side-inventory" &&
            listening $p3 "$side-order"; then
            order_url=http://127.0.0.1:$po
            stock_url=http://127.0.0.1:$pi
            charge_url=http://127.0.0.1:$pp
            return 0
        fi
        echo "$me: $side chain did not start (try $tries):" >&2
        cat "$tmp/$side-payment.err" "$tmp/$side-inventory.err" "$tmp/$side-order.err" >&2
        stop $chain_pids
    done
    echo "$me: giving up on the $side chain" >&2
    exit 1
}

pids=''
cleanup() {
    [ -z "$pids" ] || stop $pids
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- checks

# invariant: a sample of orders placed one at a time on the quiet chain.
invariant() {
    "$PYTHON" - "$order_url" "$stock_url" "$charge_url" <<'EOF'
import json, sys, urllib.request, urllib.error

order, stock, charge = sys.argv[1:4]
def call(method, url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def available(item):
    st, b = call("GET", "%s/stock/%s" % (stock, item))
    assert st == 200, ("stock", st, b)
    return b["available"]

bad = []
def check(cond, what):
    if not cond:
        bad.append(what)

before = available("sku-1")
for _ in range(10):
    st, b = call("POST", order + "/orders", {"item": "sku-1", "qty": 1, "amount_cents": 1250})
    check(st == 201 and b.get("status") == "PAID", "POST /orders: %s %s" % (st, b))
    oid = b.get("order_id")
    if not oid:
        continue
    st, b = call("GET", "%s/orders/%s" % (order, oid))
    check(st == 200 and b.get("status") == "PAID", "GET /orders/%s: %s %s" % (oid, st, b))
    st, b = call("GET", "%s/charges/%s" % (charge, oid))
    check(st == 200 and b.get("status") == "CHARGED", "GET /charges/%s: %s %s" % (oid, st, b))
check(available("sku-1") == before - 10, "stock of sku-1 did not go down by exactly 10")

# The failure path: an order the stock cannot cover leaves it alone.
before = available("sku-2")
st, b = call("POST", order + "/orders", {"item": "sku-2", "qty": before + 1, "amount_cents": 1})
check(st == 409 and b.get("error") == "out_of_stock", "oversized order: %s %s" % (st, b))
if b.get("order_id"):
    st, o = call("GET", "%s/orders/%s" % (order, b["order_id"]))
    check(st == 200 and o.get("status") == "FAILED", "oversized order state: %s %s" % (st, o))
check(available("sku-2") == before, "an out-of-stock order changed the stock")

for b in bad:
    print("chain-bench.sh: invariant: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# ---------------------------------------------------------------- rounds

# Other work on the machine moves both sides' figures: say how busy it was.
loadavg=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '')

round=0
runs=$tmp/runs.jsonl
: >"$runs"
while [ $round -lt $rounds ]; do
    round=$((round + 1))
    for side in sluice go; do
        chain
        echo "$me: round $round/$rounds: $side, $connections connections, ${duration}s" >&2
        if ! "$load" "$order_url/orders" --connections $connections --duration $duration \
            --warmup $warmup --method POST \
            --body '{"item":"sku-{{rand:1-10}}","qty":1,"amount_cents":1250}' \
            --json >"$tmp/load.json" 2>"$tmp/load.err"; then
            echo "$me: sluice-load failed against the $side chain:" >&2
            cat "$tmp/load.err" >&2
            exit 1
        fi
        inv=true
        invariant || inv=false
        stop $chain_pids
        "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"side": sys.argv[2], "round": int(sys.argv[3]), "invariant": sys.argv[4] == "true",
                  "load": r}))' "$tmp/load.json" "$side" "$round" "$inv" >>"$runs"
    done
done

# ---------------------------------------------------------------- report

"$PYTHON" - "$runs" "$strict" "$loadavg" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || :)" <<'EOF'
import json, sys

runs = [json.loads(l) for l in open(sys.argv[1])]
strict = sys.argv[2] == "1"
loads = [[float(x) for x in a.split()] if a.strip() else None for a in sys.argv[3:5]]

def figures(run):
    r = run["load"]
    ok = r.get("status", {}).get("201", 0)
    others = sum(n for s, n in r.get("status", {}).items() if s != "201")
    errors = others + sum(r.get("errors", {}).values())
    lat = r.get("latency_ms", {})
    dur = r.get("duration_s") or 0
    return {"orders_per_s": round(ok / dur, 1) if dur > 0 else 0.0,
            "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"), "max_ms": lat.get("max"),
            "errors": errors, "requests": r.get("requests"), "status": r.get("status"),
            "errors_by_kind": r.get("errors"), "invariant": run["invariant"]}

per_side = {}
for run in runs:
    run["figures"] = figures(run)
    per_side.setdefault(run["side"], []).append(run)

def best(side):
    rs = per_side[side]
    f = dict(max(rs, key=lambda r: r["figures"]["orders_per_s"])["figures"])
    f["invariant"] = all(r["invariant"] for r in rs)   # every round, not just the best
    f["rounds"] = len(rs)
    return f

s, g = best("sluice"), best("go")
ratio = round(s["orders_per_s"] / g["orders_per_s"], 3) if g["orders_per_s"] > 0 else None
p99 = round(g["p99_ms"] / s["p99_ms"], 3) if s["p99_ms"] and g["p99_ms"] else None
met = bool(ratio is not None and ratio >= 2 and p99 is not None and p99 >= 1
           and s["invariant"] and g["invariant"])
out = {"sluice": s, "go": g, "ratio_orders": ratio, "p99_ratio": p99, "target_met": met,
       "loadavg_before": loads[0], "loadavg_after": loads[1],
       "runs": [{"side": r["side"], "round": r["round"], **{k: r["figures"][k] for k in
                 ("orders_per_s", "p50_ms", "p99_ms", "errors", "invariant")}} for r in runs]}
json.dump(out, sys.stdout, indent=2)
print()

err = sys.stderr
fmt = lambda v: "-" if v is None else "%.4g" % v
print("%-8s %10s %8s %8s %8s %7s  %s" % ("chain", "orders/s", "p50 ms", "p99 ms", "max ms",
                                         "errors", "invariant"), file=err)
for name, f in (("sluice", s), ("go", g)):
    print("%-8s %10s %8s %8s %8s %7d  %s" % (name, fmt(f["orders_per_s"]), fmt(f["p50_ms"]),
          fmt(f["p99_ms"]), fmt(f["max_ms"]), f["errors"], "ok" if f["invariant"] else "BROKEN"),
          file=err)
print("sluice/go orders/s %s (need >= 2), go/sluice p99 %s (need >= 1): target %s" % (
    fmt(ratio), fmt(p99), "met" if met else "MISSED"), file=err)
if loads[0] and loads[0][0] > 1.5:
    print("note: load average %.1f before the run: other work shared the machine" % loads[0][0], file=err)
sys.exit(2 if strict and not met else 0)
EOF
