#!/bin/sh
# chain-bench.sh: the demo chain (order → inventory → payment → order's
# callback, docs/services.md) in sluice against its Go net/http peer
# (bench/peers/chain), under the same closed-loop load.
#
# Three sides: "sluice", the durable chain (each service on its SQLite
# database in a fresh directory, --sync normal), "memory", the same
# programs with --data :memory: (nothing on disk), and "go". After the
# rounds, one short round of the durable chain per --sync mode runs under
# `strace -f -c` (fsync and fdatasync only, seccomp-filtered) to count the
# fsyncs per order (null when strace is missing).
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
#   {"sluice": {"orders_per_s", "p99_ms", "errors", ...}, "memory": {...},
#    "go": {...}, "ratio_orders": sluice/go orders/s, "p99_ratio": go/sluice
#    p99 (>= 1: sluice no worse), "ratio_durable_memory": sluice/memory
#    orders/s, "ratio_memory_go", "target_durable_met": ratio_durable_memory
#    >= 0.5 and ratio_orders >= 1 (issue 16), "target_met": the in-memory
#    chain's ratio to go >= 2 at a p99 no worse (the earlier target), both
#    with the invariant held on every side, "fsyncs_per_order": {"normal",
#    "full"}, "runs": [every round],
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
# (A PID that is strace's: its child, the service, is sent the SIGTERM.)
stop() {
    for p in "$@"; do
        for c in $(pgrep -P "$p" 2>/dev/null || :); do kill -TERM "$c" 2>/dev/null || :; done
        kill -TERM "$p" 2>/dev/null || :
    done
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
        if [ "$side" != go ]; then
            if [ "$side" = memory ]; then
                data=:memory:
            else
                data=$tmp/data.$side.$round.$tries
                mkdir -p "$data"
            fi
            start "$side-payment" ${wrap:+$wrap"payment"} "$svc_payment" --listen 127.0.0.1:$pp --threads 1 \
                --mode safe --order http://127.0.0.1:$po --data "$data" --sync "$sync"
            p1=$pid
            start "$side-inventory" ${wrap:+$wrap"inventory"} "$svc_inventory" --listen 127.0.0.1:$pi --threads 1 \
                --mode safe --payment http://127.0.0.1:$pp --data "$data" --sync "$sync"
            p2=$pid
            start "$side-order" ${wrap:+$wrap"order"} "$svc_order" --listen 127.0.0.1:$po --threads 1 \
                --mode safe --inventory http://127.0.0.1:$pi --data "$data" --sync "$sync"
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
wrap='' sync=normal
while [ $round -lt $rounds ]; do
    round=$((round + 1))
    for side in sluice memory go; do
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

# ---------------------------------------------------------------- fsyncs

# One 3 s round of the durable chain per --sync mode under strace: the
# fsync/fdatasync calls of the three services over the 201s answered.
fsyncs=$tmp/fsyncs.json
echo '{"normal": null, "full": null}' >"$fsyncs"
if command -v strace >/dev/null 2>&1; then
    for sync in normal full; do
        side=sluice round=fsync-$sync
        wrap="strace -f -c -qq --seccomp-bpf -e trace=fsync,fdatasync -o $tmp/strace.$sync."
        chain
        wrap=''
        echo "$me: fsync round: --sync $sync, $connections connections, 3s" >&2
        "$load" "$order_url/orders" --connections $connections --duration 3 --warmup 0 --method POST \
            --body '{"item":"sku-{{rand:1-10}}","qty":1,"amount_cents":1250}' --json >"$tmp/load.$sync.json" \
            2>"$tmp/load.err" || { cat "$tmp/load.err" >&2; exit 1; }
        stop $chain_pids
    done
    "$PYTHON" - "$tmp" >"$fsyncs" <<'EOF'
import glob, json, sys
tmp = sys.argv[1]
out = {}
for sync in ("normal", "full"):
    calls = 0
    for f in glob.glob("%s/strace.%s.*" % (tmp, sync)):
        for line in open(f):
            w = line.split()
            if w and w[-1] in ("fsync", "fdatasync") and len(w) >= 5:
                calls += int(w[3])
    r = json.load(open("%s/load.%s.json" % (tmp, sync)))
    ok = r.get("status", {}).get("201", 0)
    out[sync] = {"fsyncs": calls, "orders": ok, "per_order": round(calls / ok, 4) if ok else None}
print(json.dumps(out))
EOF
fi

# ---------------------------------------------------------------- report

"$PYTHON" - "$runs" "$strict" "$loadavg" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || :)" "$fsyncs" <<'EOF'
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

s, m, g = best("sluice"), best("memory"), best("go")
div = lambda a, b: round(a / b, 3) if a is not None and b else None
ratio = div(s["orders_per_s"], g["orders_per_s"])
p99 = div(g["p99_ms"], s["p99_ms"])
r_dm = div(s["orders_per_s"], m["orders_per_s"])
r_mg = div(m["orders_per_s"], g["orders_per_s"])
p99_mg = div(g["p99_ms"], m["p99_ms"])
inv = s["invariant"] and m["invariant"] and g["invariant"]
met = bool(r_mg is not None and r_mg >= 2 and p99_mg is not None and p99_mg >= 1 and inv)
met_d = bool(r_dm is not None and r_dm >= 0.5 and ratio is not None and ratio >= 1 and inv)
out = {"sluice": s, "memory": m, "go": g, "ratio_orders": ratio, "p99_ratio": p99,
       "ratio_durable_memory": r_dm, "ratio_memory_go": r_mg, "target_durable_met": met_d,
       "target_met": met, "fsyncs_per_order": json.load(open(sys.argv[5])),
       "loadavg_before": loads[0], "loadavg_after": loads[1],
       "runs": [{"side": r["side"], "round": r["round"], **{k: r["figures"][k] for k in
                 ("orders_per_s", "p50_ms", "p99_ms", "errors", "invariant")}} for r in runs]}
json.dump(out, sys.stdout, indent=2)
print()

err = sys.stderr
fmt = lambda v: "-" if v is None else "%.4g" % v
print("%-8s %10s %8s %8s %8s %7s  %s" % ("chain", "orders/s", "p50 ms", "p99 ms", "max ms",
                                         "errors", "invariant"), file=err)
for name, f in (("sluice", s), ("memory", m), ("go", g)):
    print("%-8s %10s %8s %8s %8s %7d  %s" % (name, fmt(f["orders_per_s"]), fmt(f["p50_ms"]),
          fmt(f["p99_ms"]), fmt(f["max_ms"]), f["errors"], "ok" if f["invariant"] else "BROKEN"),
          file=err)
print("durable/memory orders/s %s (need >= 0.5), durable/go %s (need >= 1): target %s" % (
    fmt(r_dm), fmt(ratio), "met" if met_d else "MISSED"), file=err)
print("memory/go orders/s %s (need >= 2), go/memory p99 %s (need >= 1): target %s" % (
    fmt(r_mg), fmt(p99_mg), "met" if met else "MISSED"), file=err)
print("fsyncs per order: %s" % json.dumps(out["fsyncs_per_order"]), file=err)
if loads[0] and loads[0][0] > 1.5:
    print("note: load average %.1f before the run: other work shared the machine" % loads[0][0], file=err)
sys.exit(2 if strict and not (met and met_d) else 0)
EOF
