#!/bin/bash
# store-switches.sh BUILDDIR [RATE] [PORT0]: where an order's context switches go
# under an open-loop overload (issue 14, docs/overload-log.md "The writer woken once a turn").
#
# The safe chain (order, inventory, payment; --threads 1 --timeout-ms 1000
# --admission on, durable stores in temporary directories) pinned to CPU 0,
# sluice-load on CPU 1 at RATE a second (default 30000) for 7 s. In seconds
# 3-5, `perf stat --per-thread` on each service (futex, context switches,
# recvfrom, write, epoll_wait, task-clock) and GET /debug/store before and
# after. Prints, per service and per 201 (the 201s of the whole run over its
# 7 s, times the 2 s window): the process's counts, then each thread's
# (the reactor carries the service's name, the store's threads are
# store-writer and store-ckpt), and the store's commits, steps, replies and
# writer wake-ups. Ports PORT0..PORT0+2 (default 18821). Run it under
# `flock /tmp/sluice-bench.lock` and note `uptime`: it is a timed run.
set -eu
B=$(cd "$1" && pwd); RATE=${2:-30000}; P0=${3:-18821}
W=$(mktemp -d /tmp/store-switches.XXXXXX)
trap 'for p in ord inv pay; do [ -f $W/$p.pid ] && kill $(cat $W/$p.pid) 2>/dev/null; done; sleep 1; rm -rf $W' EXIT
common="--threads 1 --timeout-ms 1000 --mode safe --admission on"
po=$P0; pi=$((P0 + 1)); pp=$((P0 + 2))
taskset -c 0 $B/services/payment/payment-svc --listen 127.0.0.1:$pp --order http://127.0.0.1:$po $common >$W/pay.log 2>&1 & echo $! >$W/pay.pid
taskset -c 0 $B/services/inventory/inventory-svc --listen 127.0.0.1:$pi --payment http://127.0.0.1:$pp $common >$W/inv.log 2>&1 & echo $! >$W/inv.pid
taskset -c 0 $B/services/order/order-svc --listen 127.0.0.1:$po --inventory http://127.0.0.1:$pi $common >$W/ord.log 2>&1 & echo $! >$W/ord.pid
for port in $po $pi $pp; do
    for i in $(seq 1 100); do curl -s -m 1 -o /dev/null http://127.0.0.1:$port/debug/store && break; sleep 0.1; done
done
uptime
taskset -c 1 $B/services/load/sluice-load http://127.0.0.1:$po/orders --method POST \
    --body '{"item":"sku-1","qty":1,"amount_cents":1250}' --duration 7 --rate $RATE \
    --connections 4000 --timeout 2500 --json --quiet >$W/load.json 2>$W/load.err &
lp=$!
sleep 3
perfs=""
for p in ord:$po inv:$pi pay:$pp; do
    n=${p%%:*}; port=${p##*:}
    curl -s http://127.0.0.1:$port/debug/store >$W/st0-$n.json
    perf stat --per-thread -x, -o $W/perf-$n.txt -p $(cat $W/$n.pid) \
        -e syscalls:sys_enter_futex,context-switches,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait,task-clock \
        -- sleep 2 &
    perfs="$perfs $!"
done
wait $perfs
for p in ord:$po inv:$pi pay:$pp; do curl -s http://127.0.0.1:${p##*:}/debug/store >$W/st1-${p%%:*}.json; done
wait $lp
uptime
python3 - "$W" <<'PY'
import collections, json, sys
w = sys.argv[1]
d = json.load(open(f"{w}/load.json"))
n201 = d["status"].get("201", 0)
print("status", d["status"], "201/s %.0f" % (n201 / 7))
per = n201 / 7 * 2 or 1
for s in ("ord", "inv", "pay"):
    tot, th = collections.Counter(), collections.defaultdict(collections.Counter)
    for line in open(f"{w}/perf-{s}.txt"):
        f = line.strip().split(",")
        if len(f) > 4 and f[1][:1].isdigit():
            ev = f[3].replace("syscalls:sys_enter_", "")
            tot[ev] += float(f[1])
            th[f[0]][ev] += float(f[1])
    a, b = json.load(open(f"{w}/st0-{s}.json")), json.load(open(f"{w}/st1-{s}.json"))
    store = " ".join(f"{k}={(b[k] - a[k]) / per:.2f}" for k in ("commits", "steps", "replies", "wakeups") if k in b)
    fmt = lambda c: " ".join(f"{k}={v / per:.2f}" for k, v in c.items() if k != "task-clock") + \
        " cpu_us=%.1f" % (c["task-clock"] * 1000 / per)
    print(f"  {s} per 201: {fmt(tot)} | store: {store}")
    for name, c in sorted(th.items(), key=lambda kv: -kv[1]["context-switches"]):
        if c["context-switches"] / per >= 0.02:
            print(f"      {name}: {fmt(c)}")
PY
