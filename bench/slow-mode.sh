#!/bin/sh
# slow-mode.sh: tells this machine's two modes apart (docs/core.md, "The
# slow mode"). Each round runs, each under `flock /tmp/sluice-bench.lock
# chrt -f 10`: sluice's cross-reactor ping-pong, the bare two-thread flag
# round trip (no sluice code), then Go's flag, Go's ping-pong through
# channels with both goroutines polling (legs crossing CPUs) and Go's own
# ping-pong; one line per round with the load average. The flag's figure
# says the mode (about 45 ns fast, 400 slow on the machine of that section).
#
#   bench/slow-mode.sh BUILDDIR PEER [ROUNDS]
#
# BUILDDIR: a built tree (its bench/.libs/core-bench and .libs); PEER: the
# Go peer, built from bench/peers/core (`go build -o PEER .` there).
set -eu
[ $# -ge 2 ] || { echo "usage: slow-mode.sh BUILDDIR PEER [ROUNDS]" >&2; exit 2; }
b=$1 peer=$2 rounds=${3:-10}
lock="flock /tmp/sluice-bench.lock chrt -f 10"
fig() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
sl() { LD_LIBRARY_PATH="$b/.libs" $lock "$b/bench/.libs/core-bench" --json --only "$1" | fig "$1"; }
go_() { $lock "$peer" -only "$1" | fig "$1"; }
i=0
while [ $i -lt "$rounds" ]; do
    i=$((i + 1))
    load=$(cut -d' ' -f1 /proc/loadavg)
    pp=$(sl cross_reactor_chan_pingpong_ns)
    fl=$(sl thread_flag_roundtrip_ns)
    gf=$(go_ thread_flag_roundtrip_ns)
    gc=$(go_ cross_cpu_chan_pingpong_ns)
    gp=$(go_ cross_reactor_chan_pingpong_ns)
    echo "round $i load $load: sluice pingpong $pp ns, C flag $fl ns; Go flag $gf ns, Go crossing CPUs $gc ns, Go pingpong $gp ns"
done
