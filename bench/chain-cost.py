#!/usr/bin/env python3
"""chain-cost.py: what one order of the demo chain costs its three services,
measured as counts that a loaded machine disturbs far less than orders/s:
CPU time (user + system) and voluntary context switches per 201, summed
over order-svc, inventory-svc and payment-svc (every thread), read from
/proc before and after a closed-loop run of sluice-load (issue 16).

    bench/chain-cost.py BUILDDIR [--data :memory:|durable] [--seconds N]
                        [--connections N] [--sync normal|full] [--go PEER]
                        [--threads N] [--cpus LIST] [--load-cpus LIST] [--rate R]

--go PEER: the Go peer's binary instead (bench/peers/chain-peer, which
`bench/chain-bench.sh` builds), GOMAXPROCS=1 per service, as chain-bench
runs it; --data and --sync do not apply.
--threads N: each service's --threads (default 1; Go: GOMAXPROCS=N).
--cpus LIST / --load-cpus LIST: taskset -c LIST for the services / for
sluice-load (default: no pinning). With 2 vCPUs, `--cpus 0 --load-cpus 1`
compares --threads 2 against --threads 1 on one CPU: what a second reactor
costs per order (issue 17).
--rate R: open loop at R orders/s (sluice-load --rate R) instead of the
closed loop of --connections: both sides of a --vs-threads comparison then
serve the same rate. The closed loop runs each side at its own capacity,
and on one CPU the cost per order falls as the rate rises (fuller batches:
fewer wake-ups and commits per order), so a side that is slower there is
also charged for the smaller batches its lower rate makes (issue 17).
--vs-threads B [--pairs N]: --threads A (--threads' value) against
--threads B in one run, alternating B A B A ... N pairs (default 5), each
a fresh chain; prints the per-pair ratios A/B of CPU time and voluntary
switches per order and the median of the CPU ratio
(cpu_per_order_ratio_median), then each pair's figures:
    bench/chain-cost.py . --threads 2 --vs-threads 1 --cpus 0 --load-cpus 1

Prints one JSON object: orders (201s), other_answers (the rest), orders_per_s, cpu_us_per_order,
vcsw_per_order, ivcsw_per_order, spins_per_order and spin_hits_per_order (each
service's reactors' idle-spin polls and the polls that saw a message, from
/metrics: order, inventory, payment), store (each service's GET /debug/store
after the run: commits, steps, replies), loadavg. Compare two builds by
running this alternately on each (same machine, same minute): the
per-order counts are the figures; orders/s depends on the load."""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

def ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    out = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return out

def proc_cost(pid):
    """(cpu seconds, voluntary, involuntary switches) of every thread of pid."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tck
    v = iv = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        v += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        iv += int(line.split()[1])
        except FileNotFoundError:
            pass   # a thread that ended meanwhile
    return cpu, v, iv

BRIEF = ("sluice_reactor_brief_polls_total", "sluice_reactor_brief_poll_hits_total",
         "sluice_reactor_brief_poll_empty_seconds_total")

def spin_counts(port):
    """(spins, spin hits, brief polls, their hits, seconds in the empty
    ones) summed over the reactors of the service at
    port, from its /metrics (sluice_reactor_spins_total, _spin_hits_total,
    the BRIEF families: 0 for a build without them)."""
    c = [0.0] * 5
    names = ("sluice_reactor_spins_total", "sluice_reactor_spin_hits_total") + BRIEF
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as f:
        for line in f.read().decode().splitlines():
            for i, name in enumerate(names):
                if line.startswith(name + "{") or line.startswith(name + " "):
                    c[i] += float(line.split()[-1])
    return tuple(c)

def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    build = args.pop(0)
    opt = {"--data": "durable", "--seconds": "5", "--connections": "32", "--sync": "normal", "--go": "",
           "--threads": "1", "--cpus": "", "--load-cpus": "", "--vs-threads": "", "--pairs": "5",
           "--rate": ""}
    while args:
        k = args.pop(0)
        if k not in opt or not args:
            sys.exit(__doc__)
        opt[k] = args.pop(0)
    if not opt["--vs-threads"]:
        print(json.dumps(run(build, opt)))
        return
    # --threads A against --vs-threads B in one run, B A B A ...: the ratio
    # of each pair, taken a minute apart at most, so the machine's drift
    # (other work, CPU frequency) cancels in it; the median of the pairs
    a, b = dict(opt), dict(opt, **{"--threads": opt["--vs-threads"]})
    pairs = []
    for _ in range(int(opt["--pairs"])):
        rb, ra = run(build, b), run(build, a)
        pairs.append({"b": rb, "a": ra})
        print("chain-cost.py: --threads %s %s us/order, --threads %s %s us/order: %.3f" %
              (a["--threads"], ra["cpu_us_per_order"], b["--threads"], rb["cpu_us_per_order"],
               ra["cpu_us_per_order"] / rb["cpu_us_per_order"]), file=sys.stderr)
    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
    ratio = lambda k: [round(p["a"][k] / p["b"][k], 3) for p in pairs if p["a"][k] and p["b"][k]]
    out = {"threads": int(a["--threads"]), "vs_threads": int(b["--threads"]), "cpus": opt["--cpus"] or None,
           "rate": float(opt["--rate"]) if opt["--rate"] else None,
           "cpu_per_order_ratio": ratio("cpu_us_per_order"), "vcsw_per_order_ratio": ratio("vcsw_per_order"),
           "pairs": [{"cpu_us_per_order": [p["a"]["cpu_us_per_order"], p["b"]["cpu_us_per_order"]],
                      "vcsw_per_order": [p["a"]["vcsw_per_order"], p["b"]["vcsw_per_order"]],
                      "other_answers": [p["a"]["other_answers"], p["b"]["other_answers"]],
                      "orders_per_s": [p["a"]["orders_per_s"], p["b"]["orders_per_s"]],
                      "spins_per_order": [p["a"]["spins_per_order"], p["b"]["spins_per_order"]],
                      "spin_hits_per_order": [p["a"]["spin_hits_per_order"], p["b"]["spin_hits_per_order"]],
                      "loadavg": p["a"]["loadavg"]} for p in pairs]}
    out["cpu_per_order_ratio_median"] = med(out["cpu_per_order_ratio"])
    print(json.dumps(out))

def run(build, opt):
    """One chain, one closed-loop run: the per-order figures (a dict)."""
    tmp = tempfile.mkdtemp(prefix="chain-cost.")
    data = opt["--data"] if opt["--data"] == ":memory:" else tmp
    po, pi, pp = ports(3)
    svc = lambda name: os.path.join(build, "services", name, name + "-svc")
    common = ["--threads", opt["--threads"], "--mode", "safe", "--data", data, "--sync", opt["--sync"]]
    procs = []
    try:
        for name, port, up in (("payment", pp, ["--order", "http://127.0.0.1:%d" % po]),
                               ("inventory", pi, ["--payment", "http://127.0.0.1:%d" % pp]),
                               ("order", po, ["--inventory", "http://127.0.0.1:%d" % pi])):
            if opt["--go"]:
                cmd = [opt["--go"], "-role", name, "-listen", "127.0.0.1:%d" % port, up[0][1:], up[1]]
                env = dict(os.environ, GOMAXPROCS=opt["--threads"])
            else:
                cmd = [svc(name), "--listen", "127.0.0.1:%d" % port] + common + up
                env = None
            if opt["--cpus"]:
                cmd = ["taskset", "-c", opt["--cpus"]] + cmd
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            procs.append(p)
            if not opt["--go"]:
                line = p.stdout.readline()
                if not line.startswith("listening on"):
                    sys.exit("chain-cost.py: %s-svc did not start" % name)
            else:   # the peer prints nothing: wait until it accepts
                for _ in range(200):
                    try:
                        socket.create_connection(("127.0.0.1", port), 0.1).close()
                        break
                    except OSError:
                        time.sleep(0.05)
                else:
                    sys.exit("chain-cost.py: the Go %s peer did not start" % name)
        load = (["taskset", "-c", opt["--load-cpus"]] if opt["--load-cpus"] else []) + [
                os.path.join(build, "services", "load", "sluice-load"), "http://127.0.0.1:%d/orders" % po,
                "--method", "POST", "--json",
                "--body", '{"item":"sku-{{rand:1-10}}","qty":1,"amount_cents":1250}'] + (
                ["--rate", opt["--rate"]] if opt["--rate"] else ["--connections", opt["--connections"]])
        subprocess.run(load + ["--duration", "1", "--warmup", "0"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        svc_ports = (po, pi, pp) if not opt["--go"] else ()
        spins0 = [spin_counts(port) for port in svc_ports]
        before = [proc_cost(p.pid) for p in procs]
        t0 = time.monotonic()
        r = subprocess.run(load + ["--duration", opt["--seconds"], "--warmup", "0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL,
                           check=True, text=True)
        wall = time.monotonic() - t0
        after = [proc_cost(p.pid) for p in procs]
        spins1 = [spin_counts(port) for port in svc_ports]
        res = json.loads(r.stdout)
        n = res.get("status", {}).get("201", 0)
        store = {}
        for name, port in (("order", po), ("inventory", pi), ("payment", pp)) if not opt["--go"] else ():
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/debug/store" % port, timeout=5) as f:
                    store[name] = json.load(f)
            except Exception as e:   # an older build without the route's fields: report what there is
                store[name] = str(e)
        d = [tuple(a[i] - b[i] for i in range(3)) for a, b in zip(after, before)]
        out = {"threads": int(opt["--threads"]), "cpus": opt["--cpus"] or None,
               "rate": float(opt["--rate"]) if opt["--rate"] else None, "orders": n, "other_answers": res.get("requests", 0) - n, "statuses": res.get("status"), "orders_per_s": round(n / wall, 1) if wall else 0,
               "cpu_us_per_order": round(sum(x[0] for x in d) * 1e6 / n, 1) if n else None,
               "vcsw_per_order": round(sum(x[1] for x in d) / n, 2) if n else None,
               "ivcsw_per_order": round(sum(x[2] for x in d) / n, 2) if n else None,
               "per_service_cpu_us": [round(x[0] * 1e6 / n, 1) for x in d] if n else None,
               # the idle spin's polls and the polls that saw a message, per
               # order, each service (order, inventory, payment): /metrics
               "spins_per_order": [round((b[0] - a[0]) / n, 3) for a, b in zip(spins0, spins1)] if n else None,
               "spin_hits_per_order": [round((b[1] - a[1]) / n, 4) for a, b in zip(spins0, spins1)] if n else None,
               # a wake-up's brief polls per order, those that saw a message,
               # and the wall us per order of those that saw none, an upper
               # bound on their CPU (each service; 0 for a build before the
               # counters)
               "brief_polls_per_order": [round((b[2] - a[2]) / n, 3) for a, b in zip(spins0, spins1)] if n else None,
               "brief_hits_per_order": [round((b[3] - a[3]) / n, 3) for a, b in zip(spins0, spins1)] if n else None,
               "brief_empty_us_per_order": [round((b[4] - a[4]) * 1e6 / n, 1) for a, b in zip(spins0, spins1)] if n else None,
               "store": store, "loadavg": open("/proc/loadavg").read().split()[:3]}
        return out
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)

if __name__ == "__main__":
    main()
