#!/bin/sh
# hello-threads.sh: what a second reactor costs per request. examples/hello
# with --threads 2 against --threads 1, and nginx with 2 workers against 1,
# in the same run.
#
#   bench/hello-threads.sh BUILDDIR [--duration S] [--connections N] [--runs N] [--strict]
#                                                       (`make bench-threads`)
#
# This machine has 2 vCPUs and the load generator needs one, so a server's
# requests per second say little; its CPU time per request does: the
# process's utime+stime (/proc/PID/stat, every thread; for nginx the
# master's and its workers') over a run of wrk -t1 (pinned to CPU 1),
# divided by the requests wrk counted. Each server runs twice over:
#   *_cpu0   pinned to CPU 0 (taskset -c 0): with 2 threads, two reactors
#            (or workers) share one CPU. This is the cost of having two:
#            a per-request cost that grows with the reactors (messages
#            between them, shared counters, locks, cache lines) shows here
#            undiluted, and the CPU the load generator needs stays its own.
#   *_all    on both CPUs (taskset -c 0,1), beside wrk: what a user running
#            `--threads 2` on this machine gets (the server competes with
#            the load generator for CPU 1).
# All servers run side by side (an idle one costs next to nothing) and are
# loaded --runs N times (default 7) for --duration S seconds (default 2),
# interleaved, the order turning round every round; each ratio is the
# median over the rounds of that round's ratio (the host's slow spells
# last longer than a round, so a round compares servers seconds apart).
#
# One JSON object on stdout:
#   {"hello_threads2_cpu_per_req_ratio": R,          hello t2 / t1, CPU 0 (target <= 1.05)
#    "hello_threads2_all_cpus_cpu_per_req_ratio": R, hello t2 on both CPUs / t1 on CPU 0
#    "nginx_workers2_cpu_per_req_ratio": R,          nginx 2 workers / 1, CPU 0
#    "nginx_workers2_all_cpus_cpu_per_req_ratio": R,
#    "hello_threads2_vs_nginx_workers2": R,          hello t2 / nginx 2 workers, CPU 0
#    "servers": {NAME: the median run's figures}, "ratios_per_round": {...},
#    "targets": {...}, "setup": {...}}
# and a table on stderr. --strict: exit 2 if the target is missed.
# Needs wrk, taskset and python3; nginx (Debian's /usr/sbin/nginx, NGINX=...
# for another) is optional: its figures are null without it.
set -eu

me=hello-threads.sh
usage() { echo "usage: $me BUILDDIR [--duration S] [--connections N] [--runs N] [--strict]" >&2; exit 2; }

[ $# -ge 1 ] || usage
builddir=$1; shift
duration=2 conns=64 runs=7 strict=''
while [ $# -gt 0 ]; do
    case $1 in
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift ;;
    --connections) [ $# -ge 2 ] || usage; conns=$2; shift ;;
    --runs) [ $# -ge 2 ] || usage; runs=$2; shift ;;
    --strict) strict=1 ;;
    *) usage ;;
    esac
    shift
done

srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$builddir" && pwd) || { echo "$me: no build dir $1" >&2; exit 1; }
hello=$builddir/examples/hello/hello
[ -x "$hello" ] || { echo "$me: no $hello (make examples/hello/hello)" >&2; exit 1; }
for tool in wrk taskset; do
    command -v $tool >/dev/null 2>&1 || { echo "$me: '$tool' not found (apt-get install $tool)" >&2; exit 1; }
done
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=/usr/bin/python3
NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || { echo "$me: no $NGINX; nginx's figures are null" >&2; NGINX=''; }
[ "$(nproc)" -ge 2 ] || echo "$me: fewer than 2 CPUs: server and load share a core" >&2

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hello-threads.XXXXXX")
# shellcheck source=hello-peers.sh
. "$srcdir/bench/hello-peers.sh"
pids=''
trap 'stop_servers; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM


# CPU ticks of a process, every thread, and of its children (nginx's workers)
tree_ticks() {
    t=0
    for p in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo $t
}

# measure NAME RUN: loads the running server NAME; writes NAME.RUN.json.
measure() {
    name=$1 run=$2
    eval "pid=\${${name}_pid:-} port=\${${name}_port:-}"
    [ -n "$pid" ] || return 0
    t0=$(tree_ticks "$pid")
    taskset -c 1 wrk -t1 -c"$conns" -d"${duration}s" "http://127.0.0.1:$port/hello" >"$tmp/wrk" 2>&1
    t1=$(tree_ticks "$pid")
    "$PYTHON" - "$tmp/wrk" "$((t1 - t0))" "$(getconf CLK_TCK)" >"$tmp/$name.$run.json" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
ticks, hz = int(sys.argv[2]), int(sys.argv[3])
m = re.search(r"(\d+) requests in", text)
reqs = int(m.group(1)) if m else 0
rps = re.search(r"Requests/sec:\s*([\d.]+)", text)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
json.dump({"requests": reqs, "requests_per_s": float(rps.group(1)) if rps else None,
           "cpu_s": round(ticks / hz, 3),
           "proc_cpu_us_per_req": round(ticks * 1e6 / hz / reqs, 3) if reqs and ticks else None,
           "errors": errors.group(0) if errors else None}, sys.stdout)
EOF
    echo "$me: $name run $run: $(cat "$tmp/$name.$run.json")" >&2
}

servers='hello1_cpu0 hello2_cpu0 hello2_all'
start_server hello1_cpu0 0 '' "$hello" --listen 127.0.0.1:0 --threads 1 || exit 1
start_server hello2_cpu0 0 '' "$hello" --listen 127.0.0.1:0 --threads 2 || exit 1
start_server hello2_all 0,1 '' "$hello" --listen 127.0.0.1:0 --threads 2 || exit 1
if [ -n "$NGINX" ]; then
    for spec in nginx1_cpu0:0:1 nginx2_cpu0:0:2 nginx2_all:0,1:2; do
        name=${spec%%:*} rest=${spec#*:}
        cpus=${rest%%:*} workers=${rest#*:}
        p=$(free_port)
        nginx_hello "$tmp/$name" "$p" "$workers"
        if start_server "$name" "$cpus" "$p" "$NGINX" -p "$tmp/$name" -c "$tmp/$name/nginx.conf" \
                -e "$tmp/$name/logs/error.log"; then
            servers="$servers $name"
        fi
    done
fi

r=1
while [ $r -le "$runs" ]; do
    list=$servers
    [ $((r % 2)) -eq 0 ] && list=$(echo "$servers" | tr ' ' '\n' | tac | tr '\n' ' ')
    for s in $list; do measure "$s" $r; done
    r=$((r + 1))
done
stop_servers

"$PYTHON" - "$tmp" "$runs" "$strict" "$duration" "$conns" <<'EOF'
import json, os, sys
tmp, runs, strict = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
duration, conns = int(sys.argv[4]), int(sys.argv[5])
KEY = "proc_cpu_us_per_req"

def load(name):
    res = {}
    for r in range(1, runs + 1):
        p = os.path.join(tmp, "%s.%d.json" % (name, r))
        if os.path.exists(p):
            x = json.load(open(p))
            if x.get(KEY) is not None:
                res[r] = x
    return res

def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

names = ["hello1_cpu0", "hello2_cpu0", "hello2_all", "nginx1_cpu0", "nginx2_cpu0", "nginx2_all"]
R = {n: load(n) for n in names}
servers = {n: (sorted(R[n].values(), key=lambda x: x[KEY])[(len(R[n]) - 1) // 2] if R[n] else None)
           for n in names}

def rounds(a, b):
    return [round(R[a][r][KEY] / R[b][r][KEY], 3) for r in sorted(R[a]) if r in R[b]]

pairs = {
    "hello_threads2_cpu_per_req_ratio": ("hello2_cpu0", "hello1_cpu0"),
    "hello_threads2_all_cpus_cpu_per_req_ratio": ("hello2_all", "hello1_cpu0"),
    "nginx_workers2_cpu_per_req_ratio": ("nginx2_cpu0", "nginx1_cpu0"),
    "nginx_workers2_all_cpus_cpu_per_req_ratio": ("nginx2_all", "nginx1_cpu0"),
    "hello_threads2_vs_nginx_workers2": ("hello2_cpu0", "nginx2_cpu0"),
    "hello_threads1_vs_nginx_workers1": ("hello1_cpu0", "nginx1_cpu0"),
}
per_round = {k: rounds(a, b) for k, (a, b) in pairs.items()}
out = {k: (round(median(v), 3) if v else None) for k, v in per_round.items()}
t = out["hello_threads2_cpu_per_req_ratio"]
out["targets"] = {"hello_threads2_cpu_per_req_ratio": {"max": 1.05, "ratio": t,
                                                        "pass": None if t is None else t <= 1.05}}
out["servers"] = servers
out["ratios_per_round"] = per_round
out["setup"] = {"duration_s": duration, "connections": conns, "runs": runs, "load": "wrk -t1", "load_cpu": 1,
                "figure": "process CPU time (utime+stime, all threads and children) per request"}
json.dump(out, sys.stdout, indent=2)
print()

err = sys.stderr
print("%-12s %12s %14s" % ("server", "requests/s", "proc us/req"), file=err)
for n in names:
    x = servers[n]
    print("%-12s %12s %14s" % (n, "-" if not x else "%.0f" % (x["requests_per_s"] or 0),
                               "-" if not x else "%.3f" % x[KEY]), file=err)
for k in pairs:
    print("%-42s %s  rounds %s" % (k, out[k], per_round[k]), file=err)
tg = out["targets"]["hello_threads2_cpu_per_req_ratio"]
print("target hello_threads2_cpu_per_req_ratio <= 1.05: %s" %
      {True: "pass", False: "FAIL", None: "unknown"}[tg["pass"]], file=err)
sys.exit(2 if strict and tg["pass"] is False else 0)
EOF
