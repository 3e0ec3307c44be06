#!/bin/sh
# http-instr.sh: user-space instructions per request, examples/hello against
# nginx, counted by valgrind (callgrind).
#
#   bench/http-instr.sh BUILDDIR [--duration S]          (`make bench-instr`)
#
# Wall-clock rounds on a shared VM swing by 20% from one minute to the
# next; an instruction count does not (0.2% here from run to run), so it is
# the figure to compare user-space changes by. What it cannot see is the
# kernel (two thirds of a request's time, the same for both servers) and
# how long each instruction takes (a TSC read costs 46 ns under this
# hypervisor and counts as a few instructions).
#
# Each server runs under `valgrind --tool=callgrind` (no CPU pinning: it is
# slow anyway), gets 2 s of `wrk -t1 -c16` to warm up, has its counters
# zeroed, then S seconds (default 4) more; instructions from the zeroing to
# the dump, divided by the requests wrk counted in that second run. One
# JSON object on stdout:
#   {"sluice": {"requests": N, "instructions_per_request": I}, "nginx": {...},
#    "ratio_vs_nginx": R, "sluice_threads2": {...}, "threads2_ratio": R2}
# sluice_threads2 is examples/hello --threads 2 measured the same way
# (valgrind runs one thread at a time, so two reactors are two threads
# taking turns): threads2_ratio, its instructions per request over
# --threads 1's, is what a second reactor adds in user space per request
# (issue 17; the CPU figure is bench/hello-threads.sh's).
# Needs valgrind (callgrind_control), wrk and python3; nginx (Debian's
# /usr/sbin/nginx, NGINX=... for another) is optional: null when missing.
set -eu

me=http-instr.sh
usage() { echo "usage: $me BUILDDIR [--duration S]" >&2; exit 2; }
[ $# -ge 1 ] || usage
builddir=$1; shift
duration=4
while [ $# -gt 0 ]; do
    case $1 in
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift ;;
    *) usage ;;
    esac
    shift
done
builddir=$(cd "$builddir" && pwd) || { echo "$me: no build dir $1" >&2; exit 1; }
hello=$builddir/examples/hello/hello
[ -x "$hello" ] || { echo "$me: no $hello (make examples/hello/hello)" >&2; exit 1; }
for tool in valgrind callgrind_control wrk python3; do
    command -v $tool >/dev/null 2>&1 || { echo "$me: '$tool' not found" >&2; exit 1; }
done
NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || NGINX=''

tmp=$(mktemp -d "${TMPDIR:-/tmp}/http-instr.XXXXXX")
pid=''
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=hello-peers.sh
. "$(dirname "$0")/hello-peers.sh"

# Waits (up to 30 s: valgrind starts slowly) until 127.0.0.1:$1 answers.
wait_port() {
    i=0
    while [ $i -lt 600 ]; do
        python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1",int(sys.argv[1])),1)' "$1" \
            2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
        i=$((i + 1))
    done
    return 1
}

# measure NAME PORT: the server already runs as $pid under callgrind.
measure() {
    name=$1 port=$2
    url=http://127.0.0.1:$port/hello
    if ! wait_port "$port"; then
        echo "$me: $name did not start" >&2
        cat "$tmp/$name.err" >&2
        echo null
        return 0
    fi
    wrk -t1 -c16 -d2s "$url" >/dev/null 2>&1 || true
    callgrind_control -z "$pid" >/dev/null 2>&1
    wrk -t1 -c16 -d"${duration}s" "$url" >"$tmp/$name.wrk" 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    kill "$pid"; wait "$pid" 2>/dev/null || true
    pid=''
    python3 - "$tmp/$name.wrk" "$tmp/$name.cg" <<'EOF'
import glob, json, re, sys
wrk, prefix = sys.argv[1], sys.argv[2]
reqs = int(re.search(r"(\d+) requests in", open(wrk).read()).group(1))
# the dump after zeroing is the first numbered part
parts = sorted(glob.glob(prefix + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
ir = None
for line in open(parts[0]):
    if line.startswith("summary:") or line.startswith("totals:"):
        ir = int(line.split()[1])
        break
print(json.dumps({"requests": reqs, "instructions_per_request": round(ir / reqs) if reqs else None}))
EOF
}

# in a build tree hello is libtool's wrapper script: valgrind the program
run=''
[ -x "$builddir/libtool" ] && run="$builddir/libtool --mode=execute"
port=$(free_port)
$run valgrind --tool=callgrind --callgrind-out-file="$tmp/sluice.cg" "$hello" --listen 127.0.0.1:"$port" \
    --threads 1 >"$tmp/sluice.out" 2>"$tmp/sluice.err" &
pid=$!
sluice=$(measure sluice "$port")
echo "$me: sluice $sluice" >&2

port=$(free_port)
$run valgrind --tool=callgrind --callgrind-out-file="$tmp/sluice2.cg" "$hello" --listen 127.0.0.1:"$port" \
    --threads 2 >"$tmp/sluice2.out" 2>"$tmp/sluice2.err" &
pid=$!
sluice2=$(measure sluice2 "$port")
echo "$me: sluice --threads 2 $sluice2" >&2

nginx=null
if [ -n "$NGINX" ]; then
    port=$(free_port)
    nginx_hello "$tmp/nginx" "$port"
    valgrind --tool=callgrind --callgrind-out-file="$tmp/nginx.cg" "$NGINX" -p "$tmp/nginx" \
        -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/logs/error.log" >"$tmp/nginx.out" 2>"$tmp/nginx.err" &
    pid=$!
    nginx=$(measure nginx "$port")
    echo "$me: nginx $nginx" >&2
fi

python3 - "$sluice" "$nginx" "$sluice2" <<'EOF'
import json, sys
s, n, s2 = (json.loads(a) for a in sys.argv[1:4])
def ratio(a, b):
    if a and b and a["instructions_per_request"] and b["instructions_per_request"]:
        return round(a["instructions_per_request"] / b["instructions_per_request"], 3)
    return None
print(json.dumps({"sluice": s, "nginx": n, "ratio_vs_nginx": ratio(s, n),
                  "sluice_threads2": s2, "threads2_ratio": ratio(s2, s)}))
EOF
