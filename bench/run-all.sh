#!/bin/sh
# run-all.sh BUILDDIR: `make bench`. Prints one JSON object on stdout:
#   {"core": <bench/core-bench --json>,
#    "load_vs_wrk": <bench/load-vs-wrk.sh>,    sluice-load against wrk
#    "chain_vs_go": <bench/chain-bench.sh>,    the demo chain against Go
#    "http_vs_peers": <bench/http-bench.sh>,   examples/hello against nginx and Go
#    "http_instructions": <bench/http-instr.sh>,   user-space instructions per request
#    "hello_threads": <bench/hello-threads.sh>,    hello --threads 2 vs 1, CPU per request
#    "overload": <bench/overload-bench.py>,   the chain at 1-3 x capacity (issue 14)
#    "idle_wakeups": <bench/idle-wakeups.sh>}  an idle process's wake-ups per second (~14 s)
# Each part's table goes to stderr. A part whose peer is not installed
# (wrk, go) or that fails is null, with the reason on stderr; the exit
# status is then 1, so a missing figure is never silent.
set -u
B=${1:?usage: run-all.sh BUILDDIR}
here=$(dirname "$0")
status=0

part() {   # part NAME NEEDED-COMMAND ITS-DEBIAN-PACKAGE COMMAND...
    name=$1 need=$2 pkg=$3
    shift 3
    if [ -n "$need" ] && ! command -v "$need" >/dev/null 2>&1; then
        echo "bench: $name skipped: '$need' is not installed (apt-get install $pkg)" >&2
        status=1
        echo null
        return
    fi
    if ! out=$("$@"); then
        echo "bench: $name failed" >&2
        status=1
        echo null
        return
    fi
    echo "$out"
}

core=$(part core "" "" "$B/bench/core-bench" --json)
lw=$(part load_vs_wrk wrk wrk sh "$here/load-vs-wrk.sh" "$B")
chain=$(part chain_vs_go go golang-go sh "$here/chain-bench.sh" "$B")
http=$(part http_vs_peers wrk wrk sh "$here/http-bench.sh" "$B")
instr=$(part http_instructions valgrind valgrind sh "$here/http-instr.sh" "$B")
threads=$(part hello_threads wrk wrk sh "$here/hello-threads.sh" "$B")
over=$(part overload go golang-go python3 "$here/overload-bench.py" "$B" --threads 1)
idle=$(part idle_wakeups python3 python3 sh "$here/idle-wakeups.sh" "$B")
printf '{"core": %s,\n "load_vs_wrk": %s,\n "chain_vs_go": %s,\n "http_vs_peers": %s,\n "http_instructions": %s,\n "hello_threads": %s,\n "overload": %s,\n "idle_wakeups": %s}\n' \
    "$core" "$lw" "$chain" "$http" "$instr" "$threads" "$over" "$idle"
exit $status
