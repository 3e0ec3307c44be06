#!/bin/sh
# idle-wakeups.sh: how often an idle sluice process wakes up.
#
#   bench/idle-wakeups.sh BUILDDIR [--seconds S] [--settle S] [--after-load]   (`make bench-idle`)
#
# Starts the demo chain (order-svc -> inventory-svc -> payment-svc, each
# with its SQLite store in a temporary directory, as `make demo` runs them)
# once with --threads 1 and once with --threads 2, and examples/hello with
# --threads 1 and 2, all on 127.0.0.1, sends nothing, waits --settle
# seconds (default 2: start-up work ends), then counts every thread's
# context switches (voluntary + involuntary, /proc/PID/task/TID/status)
# over --seconds (default 10). A thread that sleeps and is woken costs one
# voluntary switch, so the count per second is its wake-ups per second.
# --after-load: first a second of sluice-load (4 connections, closed loop)
# against each hello and each chain's order-svc, so the idle that follows
# has what traffic leaves behind (pooled upstream connections, their
# timers, a store's WAL).
#
# One JSON object on stdout:
#   {"seconds": S,
#    "processes": {"chain1_order": {"wakeups_per_s": W,
#                                   "threads": {"TID NAME": W, ...}}, ...},
#    "max_process_wakeups_per_s": W,        the worst process (target < 10)
#    "after_load": false, or the answers by status of each --after-load run
#    "load_avg_1m": L}
# Threads are named (pthread_setname_np): sl-reactor-N, sl-watchdog,
# sl-offload, sl-log, sl-otlp, store-writer, store-ckpt; the main thread
# (reactor 0) keeps the program's name.
set -eu

me=idle-wakeups.sh
usage() { echo "usage: $me BUILDDIR [--seconds S] [--settle S] [--after-load]" >&2; exit 2; }
[ $# -ge 1 ] || usage
builddir=$(cd "$1" && pwd) || { echo "$me: no build dir $1" >&2; exit 1; }
shift
seconds=10 settle=2 after=0
while [ $# -gt 0 ]; do
    case $1 in
    --after-load) after=1 ;;
    --seconds) [ $# -ge 2 ] || usage; seconds=$2; shift ;;
    --settle) [ $# -ge 2 ] || usage; settle=$2; shift ;;
    *) usage ;;
    esac
    shift
done
PYTHON=${PYTHON:-python3}
exec "$PYTHON" - "$builddir" "$seconds" "$settle" "$after" <<'EOF'
import json, os, socket, subprocess, sys, tempfile, time

build, seconds, settle, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
addr, loaded = {}, {}
tmp = tempfile.mkdtemp(prefix="idle-wakeups.")
procs = {}

def start(name, cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, name + ".err"), "w"),
                         text=True)
    line = p.stdout.readline()
    if not line.startswith("listening on"):
        sys.exit("idle-wakeups.sh: %s did not start: %r" % (name, line))
    procs[name] = p
    addr[name] = line.split()[-1]
    return addr[name]

def switches(pid):
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
            n = 0
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for l in f:
                    if l.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        n += int(l.split()[1])
        except OSError:
            continue
        out[tid + " " + comm] = n
    return out

try:
    hello = os.path.join(build, "examples", "hello", "hello")
    svc = lambda n: os.path.join(build, "services", n, n + "-svc")
    for t in (1, 2):
        start("hello%d" % t, [hello, "--listen", "127.0.0.1:0", "--threads", str(t)])
        common = ["--listen", "127.0.0.1:0", "--threads", str(t), "--mode", "safe"]
        data = lambda n: ["--data", os.path.join(tmp, "c%d-%s" % (t, n))]
        for n in ("payment", "inventory", "order"):
            os.mkdir(os.path.join(tmp, "c%d-%s" % (t, n)))
        # each needs its upstream's address, known once that one listens;
        # payment calls order back: order's port is picked first
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        oport = s.getsockname()[1]
        s.close()
        pay = start("chain%d_payment" % t, [svc("payment")] + common + data("payment") +
                    ["--order", "http://127.0.0.1:%d" % oport])
        inv = start("chain%d_inventory" % t, [svc("inventory")] + common + data("inventory") +
                    ["--payment", "http://" + pay])
        start("chain%d_order" % t, [svc("order"), "--listen", "127.0.0.1:%d" % oport] + common[2:] +
              data("order") + ["--inventory", "http://" + inv])
    if after:
        load = os.path.join(build, "services", "load", "sluice-load")
        for n in sorted(procs):
            if n.startswith("hello"):
                url, extra = "http://%s/hello" % addr[n], []
            elif n.endswith("_order"):
                url, extra = "http://%s/orders" % addr[n], ["--method", "POST", "--body",
                                                           '{"item":"sku-{{rand:1-10}}","qty":1,"amount_cents":1250}']
            else:
                continue
            r = subprocess.run([load, url, "--connections", "4", "--duration", "1", "--warmup", "0", "--json"] +
                               extra, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False)
            try:
                loaded[n] = json.loads(r.stdout).get("status")
            except ValueError:
                loaded[n] = None
    time.sleep(settle)
    before = {n: switches(p.pid) for n, p in procs.items()}
    time.sleep(seconds)
    after = {n: switches(p.pid) for n, p in procs.items()}
    out = {"seconds": seconds, "after_load": loaded if after else False, "processes": {}}
    for n in sorted(procs):
        th = {k: round((after[n][k] - before[n].get(k, 0)) / seconds, 2) for k in after[n]}
        out["processes"][n] = {"wakeups_per_s": round(sum(th.values()), 2), "threads": th}
    out["max_process_wakeups_per_s"] = max(p["wakeups_per_s"] for p in out["processes"].values())
    out["load_avg_1m"] = os.getloadavg()[0]
    json.dump(out, sys.stdout, indent=1)
    print()
    for n, p in out["processes"].items():
        print("%-18s %8.1f wake-ups/s  %s" % (n, p["wakeups_per_s"],
              ", ".join("%s %.1f" % kv for kv in sorted(p["threads"].items(), key=lambda kv: -kv[1]))),
              file=sys.stderr)
finally:
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    subprocess.run(["rm", "-rf", tmp])
EOF
