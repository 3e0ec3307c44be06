#!/usr/bin/env python3
"""overload-books.py: the books after an overload with faults (issue 14).

    bench/overload-books.py BUILDDIR [--threads N] [--seconds S] [--multiple M]
                                     [--admission on|off]       (`make bench-books`)

Issue 14's scene, as a user would try it: the safe chain (three services,
--timeout-ms 1000, durable stores in a fresh directory), all three pinned to
CPU 0 (both CPUs with --threads 2), sluice-load on CPU 1. Its capacity C is
measured closed loop (64 connections, 3 s); then an open loop of M x C
(default 3) for S seconds (default 10) while payment goes through a fault
matrix, one fault per fifth of the run: none, hang on /charge, 300 ms delay,
connections reset, half the charges 500. Then 0.5 C for 3 s with no fault
(the recovery), then nothing.

After it all, the books (tests/netns_ledger, the walk tests/netns.sh uses):
every compensation settled, every order against its reservation and its
charge (PAID: RESERVED and CHARGED of its amount; FAILED: neither), and the
stock conserved exactly. And the leftovers: each service's open fds and
tasks and its fds other than connections back at the warm chain's idle
baseline (read once the closed loop's connections have closed), and every
connection it serves held by a caller's upstream pool (the pools keep
their keep-alive connections open while idle, as they should); waited
for, bounded.

One JSON object on stdout; exit 0 when the books balance and nothing is
left over, 1 otherwise, 2 when the scene could not be set up.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchproc import free_ports, listening  # noqa: E402

BODY = '{"item":"sku-1","qty":1,"amount_cents":1250}'
STOCK = 10_000_000
FAULTS = [None,
          {"hang": True, "path": "/charge"},
          {"delay_ms": 300, "path": "/charge"},
          {"reset": True, "path": "/charge"},
          {"error_rate": 0.5, "path": "/charge"}]


def die(msg):
    print(f"overload-books: {msg}", file=sys.stderr)
    sys.exit(2)


def args():
    a = sys.argv[1:]
    if not a or a[0].startswith("-"):
        die("usage: overload-books.py BUILDDIR [--threads N] [--seconds S] [--multiple M] [--admission on|off]")
    o = {"build": os.path.abspath(a[0]), "threads": 1, "seconds": 10.0, "multiple": 3.0, "admission": "on"}
    i = 1
    while i < len(a):
        k = a[i].lstrip("-")
        if k not in o or k == "build" or i + 1 >= len(a):
            die(f"bad argument {a[i]}")
        v = a[i + 1]
        try:
            o[k] = v if k == "admission" else (int(v) if k == "threads" else float(v))
        except ValueError:
            die(f"--{k}: not a number: {v}")
        i += 2
    if o["admission"] not in ("on", "off") or o["threads"] < 1 or o["seconds"] < 5 or o["multiple"] <= 0:
        die("--admission on|off, --threads >= 1, --seconds >= 5, --multiple > 0")
    return o


def http(port, method, path, body=None, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=body.encode() if body else None,
                                 headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def gauges(port):
    """{'connections': served, 'upstream': connections to upstreams (any
    state), 'tasks': n (not done)} from /metrics, summed over reactors."""
    st, text = http(port, "GET", "/metrics")
    if st != 200:
        return None
    out = {"connections": 0.0, "upstream": 0.0, "tasks": 0.0}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        name, labels, v = m.groups()
        if name == "sluice_http_connections":
            out["connections"] += float(v)
        elif name == "sluice_upstream_connections" and 'state="waiting"' not in (labels or ""):
            out["upstream"] += float(v)
        elif name == "sluice_tasks" and 'state="done"' not in (labels or ""):
            out["tasks"] += float(v)
    return out


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Chain:
    NAMES = ("payment", "inventory", "order")

    def __init__(self, o, tmp):
        self.procs = []
        cpus = "0" if o["threads"] == 1 else "0,1"
        pp, pi, po = free_ports(3)
        self.ports = (pp, pi, po)
        b = o["build"] + "/services"
        common = ["--threads", str(o["threads"]), "--timeout-ms", "1000", "--mode", "safe", "--admin",
                  "--admission", o["admission"]]
        specs = [("payment", [f"{b}/payment/payment-svc", "--listen", f"127.0.0.1:{pp}",
                              "--order", f"http://127.0.0.1:{po}", "--data", f"{tmp}/payment"]),
                 ("inventory", [f"{b}/inventory/inventory-svc", "--listen", f"127.0.0.1:{pi}",
                                "--payment", f"http://127.0.0.1:{pp}", "--data", f"{tmp}/inventory",
                                "--stock", f"sku-1={STOCK}"]),
                 ("order", [f"{b}/order/order-svc", "--listen", f"127.0.0.1:{po}",
                            "--inventory", f"http://127.0.0.1:{pi}", "--data", f"{tmp}/order"])]
        for name, cmd in specs:
            os.makedirs(f"{tmp}/{name}", exist_ok=True)
            out = open(f"{tmp}/{name}.out", "w")
            err = open(f"{tmp}/{name}.err", "w")
            self.procs.append(subprocess.Popen(["taskset", "-c", cpus] + cmd + common, stdout=out, stderr=err))
        for p, name in zip(self.procs, self.NAMES):
            if not listening(p, f"{tmp}/{name}.out"):
                self.stop()
                die(f"{name}-svc did not start (see {tmp}/{name}.err)")

    def idle(self):
        """{service: {fds, connections, upstream, tasks, other_fds}}:
        other_fds are the fds that are not connections (listeners, the
        databases, pipes, epoll): a leak of anything but a connection."""
        out = {}
        for name, p, port in zip(self.NAMES, self.procs, self.ports):
            g = gauges(port) or {}
            f = fds(p.pid)
            out[name] = {"fds": f, **g, "other_fds": f - g.get("connections", 0) - g.get("upstream", 0)}
        return out

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def load(o, url, extra, duration):
    cpus = "1" if o["threads"] == 1 else "0,1"
    cmd = ["taskset", "-c", cpus, f"{o['build']}/services/load/sluice-load", url, "--method", "POST",
           "--body", BODY, "--duration", str(duration), "--json", "--quiet"] + extra
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=duration + 90)
    if r.returncode != 0:
        die(f"sluice-load failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def statuses(j):
    s = dict(j.get("status", {}))
    errs = j.get("errors", {})
    if isinstance(errs, dict):
        for k, v in errs.items():
            s[k] = s.get(k, 0) + v
    return s


def per_second(j):
    """[[t, 201, 503, 504, 502, no answer], ...] from the load's series."""
    out = []
    for e in j.get("series", []):
        st, er = e.get("status", {}), e.get("errors", {})
        out.append([e["t"]] + [st.get(c, 0) for c in ("201", "503", "504", "502")] + [er.get("timeout", 0)])
    return out


def fault_matrix(port, seconds, stop, log):
    step = seconds / len(FAULTS)
    t0 = time.monotonic()
    for i, f in enumerate(FAULTS):
        wait = t0 + i * step - time.monotonic()
        if wait > 0 and stop.wait(wait):
            break
        st = http(port, "DELETE", "/admin/fault")[0] if f is None else http(port, "POST", "/admin/fault",
                                                                               json.dumps(f))[0]
        log.append({"at_s": round(time.monotonic() - t0, 2), "fault": f, "status": st})
    http(port, "DELETE", "/admin/fault")


def steady(chain, bound_s=30):
    """The chain's fds, connections and tasks once they have stopped
    changing (three equal readings 0.3 s apart; bounded): the load client's
    connections closed, the upstream pools' keep-alive ones still open."""
    end, last, same = time.monotonic() + bound_s, None, 0
    while True:
        now = chain.idle()
        same = same + 1 if now == last else 0
        if same >= 2 or time.monotonic() > end:
            return now
        last = now
        time.sleep(0.3)


# who calls whom: a service's served connections are its callers' pool
# connections (payment's callback to order) and the scrape's own
CALLERS = {"payment": ("inventory",), "inventory": ("order",), "order": ("payment",)}


def leftovers(now, base):
    """What is left that should not be: tasks above the idle baseline, fds
    that are not connections above it, and served connections that no
    caller's pool holds (an upstream pool keeps its keep-alive connections
    open while idle, up to max_conns per reactor, as it should: those are
    not a leak)."""
    left = {}
    for name in Chain.NAMES:
        for k in ("tasks", "other_fds"):
            if k in now[name] and k in base[name] and now[name][k] > base[name][k]:
                left.setdefault(name, {})[k] = now[name][k] - base[name][k]
        held = sum(now[c].get("upstream", 0) for c in CALLERS[name])
        extra = now[name].get("connections", 0) - held - 1   # (the scrape's own)
        if extra > 0:
            left.setdefault(name, {})["connections_no_pool_holds"] = extra
    return left


def settled(chain, base, bound_s=30):
    """Waits (bounded) until nothing is left over (leftovers()); returns
    what is, {} when nothing."""
    end = time.monotonic() + bound_s
    while True:
        left = leftovers(chain.idle(), base)
        if not left or time.monotonic() > end:
            return left
        time.sleep(0.2)


def main():
    o = args()
    for f in ("services/order/order-svc", "services/load/sluice-load", "tests/netns_ledger"):
        if not os.access(f"{o['build']}/{f}", os.X_OK):
            die(f"{o['build']}/{f} is missing: make && make check TESTS= builds it")
    tmp = tempfile.mkdtemp(prefix="sl-books-")
    chain = Chain(o, tmp)
    res = {"threads": o["threads"], "admission": o["admission"], "multiple": o["multiple"],
           "seconds": o["seconds"], "load_average": os.getloadavg()[0]}
    try:
        pp, pi, po = chain.ports
        url = f"http://127.0.0.1:{po}/orders"
        closed = load(o, url, ["--connections", "64", "--timeout", "2500"], 3)
        cap = closed["status"].get("201", 0) / 3
        res["capacity_201_per_s"] = round(cap)
        if cap < 50:
            die(f"the chain's capacity measured {cap:.0f}/s: something is wrong ({tmp})")
        # the baseline is the warm chain's: after the closed loop each
        # upstream pool holds its keep-alive connections (up to max_conns
        # per reactor), which stay open while idle, as they should
        base = steady(chain)
        res["idle"] = base
        rate = o["multiple"] * cap
        stop, log = threading.Event(), []
        t = threading.Thread(target=fault_matrix, args=(pp, o["seconds"], stop, log))
        t.start()
        over = load(o, url, ["--rate", f"{rate:.0f}", "--connections", "4000", "--timeout", "2500"], o["seconds"])
        stop.set()
        t.join()
        rec = load(o, url, ["--rate", f"{0.5 * cap:.0f}", "--connections", "4000", "--timeout", "2500"], 3)
        res["faults"] = log
        res["overload"] = {"offered_per_s": round(rate), "requests": over["requests"], "status": statuses(over),
                           "behind_schedule": over.get("behind_schedule"),
                           "per_second_201_503_504_502_noanswer": per_second(over)}
        res["recovery"] = {"offered_per_s": round(0.5 * cap), "requests": rec["requests"], "status": statuses(rec),
                           "per_second_201_503_504_502_noanswer": per_second(rec)}
        t0 = time.monotonic()
        w = subprocess.run([f"{o['build']}/tests/netns_ledger", "--order", f"127.0.0.1:{po}", "--payment",
                            f"127.0.0.1:{pp}", "--inventory", f"127.0.0.1:{pi}", "--items", "1", "--stock",
                            str(STOCK)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
        res["walk_s"] = round(time.monotonic() - t0, 1)
        m = re.search(r"ledger: (\d+) orders walked over \d+ order process\(es\), (\d+) paid, (\d+) failed, "
                      r"(\d+) disagreements, (\d+) items with wrong stock", w.stdout)
        res["books"] = {"exit": w.returncode, "line": w.stdout.strip(),
                        "first_disagreements": w.stderr.strip().splitlines()[:10]}
        if m:
            res["books"].update(orders=int(m[1]), paid=int(m[2]), failed=int(m[3]), disagreements=int(m[4]),
                                wrong_stock_items=int(m[5]))
        res["left_over"] = settled(chain, base)
        res["after"] = chain.idle()
        res["alive"] = all(p.poll() is None for p in chain.procs)
    finally:
        chain.stop()
    ok = res["books"]["exit"] == 0 and not res["left_over"] and res["alive"]
    res["ok"] = ok
    print(json.dumps(res, indent=1))
    if ok:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print(f"overload-books: kept {tmp} (the services' logs and databases)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
