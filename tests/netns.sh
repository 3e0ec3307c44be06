#!/bin/bash
# tests/netns.sh: the chain on several "hosts" (issue 21's multi-host test).
#
# Each program runs in a network namespace of its own: order, two
# inventory replicas, payment, and sluice-load in a fifth. A sixth, the
# hub, holds a bridge and one end of every veth pair, so every address and
# link of the test lives inside its namespaces (none in the host's: deleting
# the namespaces removes everything). Peers are addressed BY NAME through a
# hosts file (SLUICE_HOSTS): inventory.svc has both replicas' addresses, so
# order routes each order's reserve and release to one replica by key
# (sl_http_call_key) and the books must still balance.
#
# Two scenarios (NETNS_SCENARIO), under a steady open-loop load of
# POST /orders:
#  drain (tests/netns.sh):
#   A. a steady run across both replicas;
#   B. order gets SIGTERM under load: its preStop window serves everything
#      (/readyz 503 from the first moment, /livez 200), the in-flight orders
#      finish and it exits 0; the load stops inside the window, as a load
#      balancer would on the failing readiness;
#   C. a new order process takes over on the same address and --data and
#      serves a last run of load.
#  kill (tests/netns_kill.sh):
#   A. inventory replica 1 is killed (SIGKILL) while it holds reservations
#      waiting for their charges (payment stopped meanwhile), and started
#      again on its --data, so its reservations come back. Order fails
#      those orders (the reserve call was reset) and posts their release;
#      it goes to every replica (svc_undo.h) and stays pending until
#      replica 1 is back and acknowledges, so no reservation stays RESERVED
#      for a FAILED order. (Before issue 21's fix it went to the key's
#      failover choice, replica 2, which acknowledged with a tombstone.)
# Every run of sluice-load must see no transport error of any kind
# (connect, reset, timeout, protocol). Then the ledger walk
# (tests/netns_ledger) finds every order agreeing with its reservation on
# the replicas and its charge, and the stock summed over both replicas
# exact.
#
# Needs root and `ip netns`: otherwise "SKIP: needs root and ip netns"
# (exit 77). Bounded: about 16 s (drain, with its 10 s preStop window) and
# 10 s (kill), rate 60/s; everything is torn down on every path (trap),
# and namespaces left by a killed earlier run (prefix snt<PID>-, that PID
# gone) are removed first.
set -u
bld=$(pwd)
# drain (tests/netns.sh) or kill (tests/netns_kill.sh)
scenario=${NETNS_SCENARIO:-drain}
pfx=snt$$
RATE=${NETNS_RATE:-60}
STOCK=100000
fail=0
declare -A pid

skip() { echo "SKIP: needs root and ip netns ($*)"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root"
command -v ip > /dev/null || skip "no ip command"
ip netns add "$pfx-probe" 2> /dev/null || skip "ip netns add failed"
ip netns del "$pfx-probe"

bad() { echo "netns.sh: FAIL: $*" >&2; fail=1; }
ns_gone() {   # kills what runs in namespace $1, then deletes it
  local p
  for p in $(ip netns pids "$1" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
  ip netns del "$1" 2> /dev/null
}
# namespaces of earlier runs whose test process is gone
for ns in $(ip netns list | awk '{print $1}' | grep -E '^snt[0-9]+-'); do
  p=${ns#snt}; p=${p%%-*}
  kill -0 "$p" 2> /dev/null || { echo "netns.sh: removing stale namespace $ns"; ns_gone "$ns"; }
done

tmp=$(mktemp -d /tmp/sl-netns-XXXXXX)
NSES=(hub order inv1 inv2 pay load)
cleanup() {
  for p in "${pid[@]}"; do kill -9 "$p" 2> /dev/null; wait "$p" 2> /dev/null; done
  for n in "${NSES[@]}"; do ns_gone "$pfx-$n"; done
  if ip netns list | grep -q "^$pfx-"; then echo "netns.sh: FAIL: namespaces left: $(ip netns list | grep "^$pfx-")" >&2; fi
  [ "${KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the network -------------------------------------------------------------------
declare -A addr=([order]=10.21.0.11 [inv1]=10.21.0.21 [inv2]=10.21.0.22 [pay]=10.21.0.31 [load]=10.21.0.41)
net() {
  local n hub=$pfx-hub
  ip netns add "$hub" && ip -n "$hub" link add br0 type bridge && ip -n "$hub" link set br0 up &&
  ip -n "$hub" link set lo up || return 1
  for n in order inv1 inv2 pay load; do
    ip netns add "$pfx-$n" &&
    ip -n "$hub" link add "v-$n" type veth peer name eth0 netns "$pfx-$n" &&
    ip -n "$hub" link set "v-$n" master br0 && ip -n "$hub" link set "v-$n" up &&
    ip -n "$pfx-$n" addr add "${addr[$n]}/24" dev eth0 && ip -n "$pfx-$n" link set eth0 up &&
    ip -n "$pfx-$n" link set lo up || return 1
  done
}
net || { bad "could not build the network"; exit 1; }
cat > "$tmp/hosts" << EOF
${addr[order]} order.svc
${addr[inv1]} inventory.svc inventory-1.svc
${addr[inv2]} inventory.svc inventory-2.svc
${addr[pay]} payment.svc
EOF
mkdir -p "$tmp/order" "$tmp/inv1" "$tmp/inv2" "$tmp/pay"

# ---- programs ------------------------------------------------------------------------
# start KEY NS PROGRAM ARGS...: runs it in namespace NS, waits (<= 20 s) for
# its "listening on" line.
start() {
  local key=$1 ns=$2; shift 2
  ip netns exec "$pfx-$ns" env SLUICE_HOSTS="$tmp/hosts" "$@" > "$tmp/$key.out" 2> "$tmp/$key.err" &
  pid[$key]=$!
  for _ in $(seq 200); do
    grep -q '^listening on ' "$tmp/$key.out" && return 0
    kill -0 "${pid[$key]}" 2> /dev/null || break
    sleep 0.1   # polls for the line, up to 20 s
  done
  bad "$key did not start: $(tail -c 400 "$tmp/$key.err")"
  exit 1
}
svc_bin() { echo "$bld/services/$1/$1-svc"; }
stocks="sku-1=$STOCK,sku-2=$STOCK,sku-3=$STOCK"
start_inv() {
  start "$1" "$1" "$(svc_bin inventory)" --listen "${addr[$1]}:8082" --payment http://payment.svc:8083 \
    --stock "$stocks" --data "$tmp/$1" --threads 2
}
# The preStop window must outlast the reaction of the "load balancer", here
# the test: probes through `ip netns exec`, then SIGINT to a sluice-load
# that must notice it. 70-85 ms at load 10 with two busy loops (ASan), but
# 3 s were once too short under ASan on a starved machine (the load still
# sent after the window, into a closing listener): 10 s, at the cost of
# order's exit coming 10 s after SIGTERM.
PRESTOP_MS=10000
start_order() {
  start order order "$(svc_bin order)" --listen order.svc:8081 --inventory http://inventory.svc:8082 \
    --data "$tmp/order" --threads 2 --prestop-ms "$PRESTOP_MS"
}
start pay pay "$(svc_bin payment)" --listen "${addr[pay]}:8083" --order http://order.svc:8081 --data "$tmp/pay" \
  --threads 2
start_inv inv1
start_inv inv2
start_order

# GET path at order from inside the load namespace; prints the status line's
# code, or with "body" the whole answer
probe() {
  ip netns exec "$pfx-load" bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 0
    printf "GET %s HTTP/1.0\r\nHost: t\r\n\r\n" "$2" >&3; if [ "$3" = body ]; then cat <&3
    else read -r -t 5 l <&3; echo "$l" | cut -d" " -f2; fi' "${addr[order]}" 8081 "$1" "${2:-}" 2> /dev/null
}
# POST /orders answered by the running order process (any status)
answered() {
  probe /metrics body | grep '^sluice_svc_answers_total' | grep 'route="/orders"' |
    awk '{s += $NF} END {print s + 0}'
}
# waits (<= 30 s) until order answered N more POST /orders than now
more_answers() {
  local want=$(($(answered) + $1))
  for _ in $(seq 300); do [ "$(answered)" -ge "$want" ] && return 0; sleep 0.1; done
  bad "$2: fewer than $1 orders answered within 30 s"
  return 1
}

# load KEY: sluice-load in the load namespace, by name, in the background,
# for up to 60 s: each phase ends it with SIGINT once what it tests happened
load() {
  ip netns exec "$pfx-load" env SLUICE_HOSTS="$tmp/hosts" "$bld/services/load/sluice-load" \
    http://order.svc:8081/orders --method POST --rate "$RATE" --duration 60 --timeout 5000 --quiet --json \
    --body '{"item":"sku-{{rand:1-3}}","qty":{{rand:1-3}},"amount_cents":{{rand:100-999}}}' \
    > "$tmp/$1.json" 2> "$tmp/$1.err" &
  pid[$1]=$!
}
# stops load KEY (SIGINT: it sends no more and follows every request sent
# to its end), waits for it (<= 20 s), asserts it saw no transport error
# of any kind and some orders paid, and prints what it saw
load_end() {
  local key=$1 rc n kind errs status
  kill -INT "${pid[$key]}"
  for _ in $(seq 200); do kill -0 "${pid[$key]}" 2> /dev/null || break; sleep 0.1; done
  kill -0 "${pid[$key]}" 2> /dev/null && { bad "$key: sluice-load still running 20 s after SIGINT"; return; }
  wait "${pid[$key]}"; rc=$?
  unset "pid[$key]"
  [ "$rc" = 0 ] || { bad "$key: sluice-load exited $rc: $(head -c 300 "$tmp/$key.err")"; return; }
  errs=$(grep -o '"errors": *{[^}]*}' "$tmp/$key.json" | head -1)
  status=$(grep -o '"status": *{[^}]*}' "$tmp/$key.json" | head -1)
  echo "netns.sh: $key: $(grep -o '"requests": *[0-9]*' "$tmp/$key.json" | head -1), $status, $errs"
  for kind in connect reset timeout protocol; do
    n=$(echo "$errs" | grep -o "\"$kind\": *[0-9]*" | grep -o '[0-9]*$')
    [ "$n" = 0 ] || bad "$key: $n transport errors of kind $kind (want 0); per second: $(grep -o '"series".*' \
      "$tmp/$key.json" | head -c 3000)"
  done
  echo "$status" | grep -q '"201": *[1-9]' || bad "$key: no order was paid ($status)"
}

# sum of a gauge in inv1's /metrics
inv1_inflight() {
  ip netns exec "$pfx-load" bash -c 'exec 3<>"/dev/tcp/$0/8082" || exit 0
    printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' "${addr[inv1]}" 2> /dev/null |
    grep '^sluice_http_inflight{' | awk '{s += $NF} END {print s + 0}'
}

if [ "$scenario" = kill ]; then
  # ---- A: kill -9 of one inventory replica with reservations in flight ----------------
  # Payment is stopped (SIGSTOP: its kernel still accepts), so inventory
  # replica 1 holds reservations it made and waits for their charges; it
  # is killed then (>= 3 requests in flight there, the /metrics scrape
  # being one), payment resumes, the replica comes back on its --data.
  load A
  more_answers 60 "A, before the kill"
  kill -STOP "${pid[pay]}"
  for _ in $(seq 100); do [ "$(inv1_inflight)" -ge 3 ] && break; sleep 0.05; done
  [ "$(inv1_inflight)" -ge 3 ] || bad "A: inventory replica 1 never had reservations in flight"
  kill -9 "${pid[inv1]}"; wait "${pid[inv1]}" 2> /dev/null; unset "pid[inv1]"
  kill -CONT "${pid[pay]}"
  more_answers 60 "A, replica 1 down"
  start_inv inv1   # same --data: its reservations come back
  more_answers 60 "A, replica 1 back"
  load_end A
else
  # ---- A: steady load across the replicas ----------------------------------------------
  load A
  more_answers 150 "A, steady"
  load_end A
fi

if [ "$scenario" = drain ]; then
# ---- B: SIGTERM-drain of order under load ------------------------------------------------
load B
more_answers 60 "B, before the drain"
[ "$(probe /readyz)" = 200 ] || bad "order: /readyz not 200 before the drain"
kill -TERM "${pid[order]}"; t_term=$(date +%s%N)
# the preStop window (--prestop-ms, 10 s): readiness fails at once, liveness
# holds, and everything is still served; the load balancer (here: the test)
# sees the failing readiness and sends no more
for _ in $(seq 50); do [ "$(probe /readyz)" = 503 ] && break; sleep 0.1; done
[ "$(probe /readyz)" = 503 ] || bad "order: /readyz not 503 within 5 s of SIGTERM"
[ "$(probe /livez)" = 200 ] || bad "order: /livez not 200 in the preStop window"
late=$(( ($(date +%s%N) - t_term) / 1000000 ))
echo "netns.sh: B: the load stopped $late ms after SIGTERM"
# the window's claims hold for load sent within it; past it the test was
# too slow, which this says instead of a transport error's riddle
[ "$late" -lt "$PRESTOP_MS" ] || bad "B: the test stopped the load $late ms after SIGTERM, after the preStop window"
load_end B
for _ in $(seq 300); do kill -0 "${pid[order]}" 2> /dev/null || break; sleep 0.1; done
if kill -0 "${pid[order]}" 2> /dev/null; then
  bad "order did not exit within 30 s of SIGTERM"
else
  wait "${pid[order]}"; rc=$?
  [ "$rc" = 0 ] || bad "order exited $rc after SIGTERM: $(tail -c 300 "$tmp/order.err")"
fi
unset "pid[order]"

# ---- C: a new order process takes over -------------------------------------------------
start_order
load C
more_answers 60 "C, the new order process"
load_end C

fi

# ---- the books ---------------------------------------------------------------------------
ip netns exec "$pfx-load" "$bld/tests/netns_ledger" --order "${addr[order]}:8081" --payment "${addr[pay]}:8083" \
  --inventory "${addr[inv1]}:8082" --inventory "${addr[inv2]}:8082" --items 3 --stock "$STOCK" ||
  bad "the ledger walk found the books unbalanced"
# both replicas took part (key affinity spreads the orders)
for n in inv1 inv2; do
  c=$(ip netns exec "$pfx-load" bash -c 'exec 3<>"/dev/tcp/$0/8082" || exit 0
      printf "GET /stock/sku-1 HTTP/1.0\r\n\r\n" >&3; cat <&3' "${addr[$n]}" | grep -o '"available":[0-9]*' | cut -d: -f2)
  [ -n "$c" ] && [ "$c" -lt "$STOCK" ] || bad "replica $n took no sku-1 order (available '$c')"
done
[ "$fail" = 0 ] && echo "netns.sh: PASS"
exit "$fail"
