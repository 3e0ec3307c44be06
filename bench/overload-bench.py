#!/usr/bin/env python3
"""overload-bench.py: the safe chain past its capacity (issue 14).

    bench/overload-bench.py BUILDDIR [--quick] [--threads N] [--no-go]
                                     [--admission on|off|both] [--multiples 1,2,3]
                                     [--syscalls]
    (`make bench-overload`: --threads 1 then --threads 2)

For each side (sluice with admission on, sluice with --admission off, and
the Go peer bench/peers/chain), a fresh chain: order, inventory and
payment, `--threads N --timeout-ms 1000` (Go: GOMAXPROCS=N, -timeout-ms
1000). With N = 1 the three services share CPU 0 and sluice-load runs on
CPU 1 (taskset); with N = 2 the services share both cores, the load too.

 1. C: closed loop, 64 connections (201/s: the capacity), the median of
    three samples (C_samples: one sample alone moved by 40 % between runs).
 2. 0.1 C open loop: the steady p99 of the 201s.
 3. For each multiple m: open loop at m x C (the side's own C), 4000
    connections, --timeout 2500, POST /orders
    {"item":"sku-1","qty":1,"amount_cents":1250}.
 4. Recovery: right after the last multiple, 0.5 C; the seconds from the
    third on (the load dropped 2 s before) must be >= 99 % 201.

Figures per multiple: goodput (201/s) and goodput / C, 201 p50/p99 (ms),
shares of 503, 504, other answers and no answer (client timeouts, resets),
and CPU per 503: the three services' CPU time (from /proc) during the run,
less what the 201s cost at C, over the 503s; also as a share of the CPU of
a 201 (a 503 must cost a fraction of a served request). Also the load
client's own state: client_behind_share (requests it sent more than 1 ms
after their time) and client_lag_s (how much longer than asked its run
took); a run more than 0.25 s behind is client_bound (its CPU could not
keep the rate, or all its connections waited for answers): its lag turns
into latency and "no answer", and targets.valid_client_kept_rate is false. That estimate
is as noisy as the run; shed_cost measures it apart: order-svc refusing
requests whose 1 ms budget is below what the route needs, its CPU per 503
against the whole chain's CPU per 201 at C. And the estimate is biased: it
takes a 201 at its closed-loop cost, but a 201 costs more when fewer
requests share each wake-up and each group commit (open loop, admission's
limit). per_service (closed loop and every run) splits each service's CPU
per request into user and kernel (us) and context switches;
downstream_201_over_closed is inventory's and payment's CPU per 201 in the
run over the closed loop's (they see only the orders order-svc let
through): above 1, part of what cpu_us_per_503 charges to the 503s is the
201s' own (issue 14, docs/net.md "Where the CPU goes under overload").

Where the 503s came from (sluice sides): every service's /metrics is read
before and after each multiple, and the run's `refusals` holds the
differences per service: answered_NNN (its answers by status), admission
refusals by reason (http_admission_shed_total:queue_full, :queue_delay
(waited, then refused), :queue_time (refused at the head: it would have
waited past the queue's time bound), :budget, :upstream, :draining), 504s before a handler ran
(http_expired_total), its client's fail-fast by reason
(upstream_failfast_total:latency, :throttle), its calls by result, its
compensations by event (svc_compensations_total:posted, ...) and its
business answers by route and outcome (svc_answers_total:/release:not_found:
releases of orders inventory never saw); and,
read at the end, at_end:admission_limit, at_end:queue_delay_seconds,
at_end:admission_drain_per_second, at_end:admission_max_wait_seconds and
at_end:inflight_peak. A 503 a service answered that is in none of these
was its handler's (a store step, an upstream's 503 passed on).
`server_latency` per service and route: the requests it answered in the
run, their mean time and the histogram bounds under which their p50 and
p99 fall, as the server measured them (from the parsed head to the
answer, its admission queue included). A client p99 far above order-svc's
POST /orders p99 was spent outside the server's parse-to-answer: in the
kernel's socket queues, a long event-loop turn before the read, or the
load client (issue 14, "where the 201 p99 comes from").

--syscalls (needs perf and root or perf_event_paranoid <= 1): each
service's syscalls per request by kind, and its context switches, in the
closed loop and every run (`syscalls`; `perf stat -e
syscalls:sys_enter_NAME -p PID`). The tracepoints make every syscall
dearer, so the CPU figures of such a run are not comparable with others.

One JSON object on stdout, a table on stderr. The machine this runs on may
be shared: compare sides of the same run, not absolute figures.
--quick: short phases (2-3 s), for a smoke test.

Environment: GO (default go), SLUICE_LOAD, GOCACHE.
"""
import json
import re
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchproc import free_ports, listening  # noqa: E402

BODY = '{"item":"sku-1","qty":1,"amount_cents":1250}'
ME = "overload-bench"


def die(msg):
    print(f"{ME}: {msg}", file=sys.stderr)
    sys.exit(1)


def args():
    a = sys.argv[1:]
    if not a or a[0].startswith("--"):
        die("usage: overload-bench.py BUILDDIR [--quick] [--threads N] [--no-go] "
            "[--admission on|off|both] [--multiples 1,2,3] [--syscalls]")
    o = {"build": os.path.abspath(a[0]), "quick": False, "threads": 1, "go": True,
         "admission": "both", "multiples": [1, 2, 3], "syscalls": False}
    i = 1
    while i < len(a):
        if a[i] == "--quick":
            o["quick"] = True
        elif a[i] == "--no-go":
            o["go"] = False
        elif a[i] == "--syscalls":
            o["syscalls"] = True
        elif a[i] == "--threads" and i + 1 < len(a):
            o["threads"] = int(a[i + 1])
            i += 1
        elif a[i] == "--admission" and i + 1 < len(a) and a[i + 1] in ("on", "off", "both"):
            o["admission"] = a[i + 1]
            i += 1
        elif a[i] == "--multiples" and i + 1 < len(a):
            o["multiples"] = [float(x) for x in a[i + 1].split(",")]
            i += 1
        else:
            die(f"unknown argument {a[i]}")
        i += 1
    return o


def cpu_s(pid):
    """utime + stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def usage(pid):
    """A process's user and kernel CPU (s, all its threads) and its
    threads' context switches (voluntary: one slept; involuntary: one was
    preempted), from /proc (a process's own status counts only its first
    thread's switches: the threads' are summed; a thread that ended in
    between is lost)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        out = {"user": int(fields[11]) / tck, "sys": int(fields[12]) / tck, "vcs": 0, "ncs": 0}
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    st = dict(line.split(":", 1) for line in f if ":" in line)
                out["vcs"] += int(st["voluntary_ctxt_switches"])
                out["ncs"] += int(st["nonvoluntary_ctxt_switches"])
            except (OSError, KeyError, ValueError):
                pass
        return out
    except (OSError, ValueError):
        return {"user": 0.0, "sys": 0.0, "vcs": 0, "ncs": 0}


def per_service(u0, u1, n):
    """Per service, from two Chain.usage() readings over n requests: user
    and kernel CPU in us and context switches, per request."""
    out = {}
    for svc in u1:
        d = {k: u1[svc][k] - u0.get(svc, {}).get(k, 0) for k in u1[svc]}
        out[svc] = {"user_us": round(d["user"] / n * 1e6, 1), "sys_us": round(d["sys"] / n * 1e6, 1),
                    "cs": round((d["vcs"] + d["ncs"]) / n, 2)}
    return out


# The syscalls --syscalls counts: a request's network and loop, the SQLite
# writer's, and the hand-offs between threads. A short list: with every
# syscall tracepoint attached the services slowed until the load timed out.
SYSCALLS = ("recvfrom", "sendto", "sendmsg", "writev", "readv", "ioctl", "epoll_wait", "epoll_ctl",
            "timerfd_settime", "accept4", "close", "setsockopt", "futex", "read", "write", "pwrite64",
            "pread64", "fcntl", "fdatasync", "clock_nanosleep")


class Syscalls:
    """perf stat on every service of a chain while a run lasts (--syscalls);
    a no-op without it."""

    def __init__(self, o, ch, tmp):
        self.procs, self.files = [], []
        if not o.get("syscalls") or ch.side == "go":
            return
        events = ",".join(f"syscalls:sys_enter_{n}" for n in SYSCALLS) + ",context-switches"
        for name, p in zip(("payment", "inventory", "order"), ch.procs):
            f = f"{tmp}/perf-{name}"
            self.files.append((name, f))
            self.procs.append(subprocess.Popen(["perf", "stat", "-x", ",", "-o", f, "-e", events, "-p", str(p.pid)],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.3)   # attached before the run starts

    def stop(self, n):
        """{service: {syscall: per request}} over n requests, or None."""
        if not self.procs:
            return None
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait()
        out = {}
        for name, f in self.files:
            d = {}
            try:
                with open(f) as fh:
                    for line in fh:
                        parts = line.strip().split(",")
                        if len(parts) > 3 and parts[0].isdigit() and int(parts[0]) > 0:
                            d[parts[2].replace("syscalls:sys_enter_", "")] = round(int(parts[0]) / n, 3)
            except OSError:
                pass
            out[name] = dict(sorted(d.items(), key=lambda kv: -kv[1]))
        return out


class Chain:
    def __init__(self, side, o, tmp, peer):
        self.side, self.o, self.tmp, self.procs = side, o, tmp, []
        cpus = "0" if o["threads"] == 1 else "0,1"
        for attempt in range(3):
            po, pi, pp = free_ports(3)
            specs = []
            if side == "go":
                env = dict(os.environ, GOMAXPROCS=str(o["threads"]))
                specs = [("payment", [peer, "-role", "payment", "-listen", f"127.0.0.1:{pp}",
                                      "-order", f"http://127.0.0.1:{po}", "-timeout-ms", "1000"]),
                         ("inventory", [peer, "-role", "inventory", "-listen", f"127.0.0.1:{pi}",
                                        "-payment", f"http://127.0.0.1:{pp}", "-timeout-ms", "1000"]),
                         ("order", [peer, "-role", "order", "-listen", f"127.0.0.1:{po}",
                                    "-inventory", f"http://127.0.0.1:{pi}", "-timeout-ms", "1000"])]
            else:
                env = dict(os.environ)
                b = o["build"] + "/services"
                common = ["--threads", str(o["threads"]), "--timeout-ms", "1000", "--mode", "safe",
                          "--admission", "off" if side == "sluice-off" else "on"]
                specs = [("payment", [f"{b}/payment/payment-svc", "--listen", f"127.0.0.1:{pp}",
                                      "--order", f"http://127.0.0.1:{po}"] + common),
                         ("inventory", [f"{b}/inventory/inventory-svc", "--listen", f"127.0.0.1:{pi}",
                                        "--payment", f"http://127.0.0.1:{pp}"] + common),
                         ("order", [f"{b}/order/order-svc", "--listen", f"127.0.0.1:{po}",
                                    "--inventory", f"http://127.0.0.1:{pi}"] + common)]
            self.procs = []
            for name, cmd in specs:
                out = open(f"{tmp}/{side}-{name}.out", "w")
                err = open(f"{tmp}/{side}-{name}.err", "w")
                self.procs.append(subprocess.Popen(["taskset", "-c", cpus] + cmd, stdout=out,
                                                   stderr=err, env=env))
            if all(listening(p, f"{tmp}/{side}-{n}.out", 10) for p, (n, _) in zip(self.procs, specs)):
                self.url = f"http://127.0.0.1:{po}/orders"
                self.ports = (pp, pi, po)
                return
            self.stop()
        die(f"the {side} chain did not start")

    def cpu(self):
        return sum(cpu_s(p.pid) for p in self.procs)

    def usage(self):
        """{service: usage()} (payment, inventory, order)."""
        return {name: usage(p.pid) for name, p in zip(("payment", "inventory", "order"), self.procs)}

    def scrape(self):
        """Each service's refusal counters from its /metrics (sluice only;
        {} for the Go peer): {service: {counter: value}}."""
        if self.side == "go":
            return {}
        return {name: refusal_counters(port) for name, port in zip(("payment", "inventory", "order"), self.ports)}

    def alive(self):
        return all(p.poll() is None for p in self.procs)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Tracer:
    """order-svc's admission state every 0.25 s while a run lasts (a
    thread; sluice sides only): the gauges as they are, the counters as
    differences from the last sample."""
    GAUGES = ("sluice_http_admission_limit", "sluice_http_admission_overloaded",
              "sluice_http_admission_flooded", "sluice_http_admission_max_wait_seconds",
              "sluice_http_queue_delay_seconds", "sluice_http_inflight", "sluice_http_queued",
              "sluice_http_admission_drain_per_second")
    COUNTERS = ("sluice_http_admission_shed_total", "sluice_http_expired_total")

    def __init__(self, ch):
        import threading
        self.out, self.port, self.done = [], None if ch.side == "go" else ch.ports[2], threading.Event()
        if self.port is None:
            return
        self.t0 = time.monotonic()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def sample(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode("utf-8", "replace")
        except OSError:
            return None
        d = {}
        for line in text.splitlines():
            m = SAMPLE.match(line)
            if not m:
                continue
            name = m.group(1)
            labels = dict(LABEL.findall(m.group(2) or ""))
            if name in self.GAUGES:
                key = name.replace("sluice_http_", "")
            elif name in self.COUNTERS:
                key = name.replace("sluice_http_", "") + (f":{labels['reason']}" if "reason" in labels else "")
            elif name == "sluice_http_requests_total" and labels.get("route") == "/orders":
                key = f"answered_{labels.get('status')}"
            else:
                continue
            try:
                d[key] = d.get(key, 0) + float(m.group(3))
            except ValueError:
                pass
        return d

    def run(self):
        last = self.sample() or {}
        while not self.done.wait(0.25):
            d = self.sample()
            if d is None:
                continue
            row = {"t": round(time.monotonic() - self.t0, 2)}
            for k, v in sorted(d.items()):
                if k.split(":")[0] in [g.replace("sluice_http_", "") for g in self.GAUGES]:
                    row[k] = round(v, 4)
                elif v - last.get(k, 0):
                    row[k] = round(v - last.get(k, 0))
            last = d
            self.out.append(row)

    def stop(self):
        if self.port is None:
            return None
        self.done.set()
        self.th.join()
        return self.out


# What /metrics says about refusals, summed over reactors and label sets
# not named here: family -> the labels whose values split it (none: one
# figure). A 503 that is none of these was made by a handler (a store or
# offload step that could not start, an upstream's 503 passed on).
REFUSALS = {
    "sluice_http_admission_shed_total": ("reason",),     # the server's admission, by reason
    "sluice_http_expired_total": (),                     # 504 before a handler ran
    "sluice_upstream_failfast_total": ("reason",),       # calls refused by the client
    "sluice_upstream_calls_total": ("result",),          # attempts by result (busy: the pool's queue)
    # compensations posted / retried / completed, and the business routes'
    # outcomes (svc_answers_total:/release:not_found is a release of an
    # order inventory never saw)
    "sluice_svc_compensations_total": ("event",),
    "sluice_svc_answers_total": ("route", "outcome"),
}
# Gauges read at the end of a run (not differences): where the adaptive
# limit stood, and how long the oldest waiter had waited.
GAUGES = ("sluice_http_admission_limit", "sluice_http_queue_delay_seconds", "sluice_http_inflight_peak",
          "sluice_http_admission_drain_per_second", "sluice_http_admission_max_wait_seconds")
DURATION = "sluice_http_request_duration_seconds"

# name{labels} value; a label value may hold braces (route="/orders/{id}/paid"),
# so the labels are read as quoted values, not up to the first "}" (which
# counted only the bench's /metrics scrapes as order's answered_200)
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def refusal_counters(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode("utf-8", "replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if not m:
            continue
        name, value = m.group(1), m.group(3)
        labels = dict(LABEL.findall(m.group(2) or ""))
        if name.startswith(DURATION) and labels.get("route") not in (None, "/metrics"):
            # the server's own time per request (head parsed to answer), kept
            # per route as raw histogram figures; server_latency() reads them
            part = name[len(DURATION):]
            route = f"{labels.get('method', '')} {labels['route']}"
            key = (f"dur|{route}|le={labels.get('le', '')}" if part == "_bucket" else
                   f"dur|{route}|{part[1:]}" if part in ("_sum", "_count") else None)
            if key is None:
                continue
        elif name == "sluice_http_requests_total" and "status" in labels:
            if labels.get("route") == "/metrics":
                continue   # the bench's own scrapes
            key = f"answered_{labels['status']}"
        elif name in GAUGES:
            key = "at_end:" + name.replace("sluice_http_", "")
        elif name in REFUSALS:
            key = name.replace("sluice_", "") + "".join(f":{labels.get(lab, '')}" for lab in REFUSALS[name])
        else:
            continue
        try:
            out[key] = out.get(key, 0) + float(value)
        except ValueError:
            pass
    return out


def server_latency(d):
    """From one service's histogram differences (dur|ROUTE|... keys, taken
    out of d): per route, how many requests it answered, their mean time
    and the bucket bounds their p50 and p99 fall under (ms), as the server
    measured them (head parsed to answer: its admission queue included,
    the kernel's socket queues and the load client not). Against the
    client's p99 it tells where a slow 201 spent its time."""
    routes = {}
    for k in [k for k in d if k.startswith("dur|")]:
        _, route, part = k.split("|", 2)
        routes.setdefault(route, {})[part] = d.pop(k)
    out = {}
    for route, h in sorted(routes.items()):
        n = h.get("count", 0)
        if n <= 0:
            continue
        buckets = sorted((float(k[3:]), v) for k, v in h.items() if k.startswith("le="))

        def q(f):
            for le, c in buckets:
                if c >= f * n:
                    return le * 1e3
            return None

        out[route] = {"n": round(n), "mean_ms": round(h.get("sum", 0) / n * 1e3, 2),
                      "p50_le_ms": q(0.5), "p99_le_ms": q(0.99)}
    return out


def refusal_delta(before, after):
    """after - before, per service, the counters that moved; the duration
    histograms' differences become the service's server_latency."""
    d = {}
    for svc, a in after.items():
        b = before.get(svc, {})
        raw = {k: v - b.get(k, 0) for k, v in a.items() if k.startswith("dur|")}
        d[svc] = {k: (round(v, 4) if k.startswith("at_end:") else round(v - b.get(k, 0)))
                  for k, v in sorted(a.items())
                  if not k.startswith("dur|") and (k.startswith("at_end:") or v - b.get(k, 0))}
        lat = server_latency(raw)
        if lat:
            d[svc]["server_latency"] = lat
    return d


def load(o, url, extra, duration, warmup=0):
    cpus = "1" if o["threads"] == 1 else "0,1"
    cmd = ["taskset", "-c", cpus, o["load"], url, "--method", "POST", "--body", BODY,
           "--duration", str(duration), "--json", "--quiet"] + extra
    if warmup:
        cmd += ["--warmup", str(warmup)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=duration + warmup + 60)
    if r.returncode != 0:
        die(f"sluice-load failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def count(j, code):
    return j["status"].get(str(code), 0)


def open_loop(o, url, rate, duration, warmup=0):
    return load(o, url, ["--rate", f"{rate:.0f}", "--connections", "4000", "--timeout", "2500"],
                duration, warmup)


# A run whose load client fell behind its schedule by more than this (its
# last request left that much after the end of the window) did not offer
# the rate asked: either its CPU could not keep up (CPU 1 shared with other
# work) or every one of its 4000 connections was waiting for an answer.
# Its lag counts in every latency (taken from the intended send times) and
# turns into "no answer" past --timeout; the servers' /metrics (in flight,
# queued) and `ss -tn` (unread bytes) tell which side it was.
CLIENT_LAG_MAX_S = 0.25


def summary(j, cap, cpu=None, cpu_201=None, asked_s=None):
    n = max(j["requests"], 1)
    n201, n503, n504 = count(j, 201), count(j, 503), count(j, 504)
    noans = sum(j["errors"].values())
    r = {"offered_per_s": round(j["requests"] / j["duration_s"]),
         "goodput_per_s": round(n201 / j["duration_s"]),
         "goodput_over_C": round(n201 / j["duration_s"] / cap, 3) if cap else None,
         "p50_201_ms": round(j["latency_2xx_ms"]["p50"], 2) if n201 else None,
         "p99_201_ms": round(j["latency_2xx_ms"]["p99"], 2) if n201 else None,
         "max_ms": round(j["latency_ms"]["max"], 1),
         "share_503": round(n503 / n, 4), "share_504": round(n504 / n, 4),
         "share_other": round((j["requests"] - n201 - n503 - n504 - noans) / n, 4),
         "share_no_answer": round(noans / n, 4),
         "requests": j["requests"], "status": j["status"], "errors": j["errors"],
         "client_behind_share": round(j.get("behind_schedule", 0) / n, 4)}
    if asked_s is not None:
        # the client sends every request of its schedule, late if it must:
        # a run longer than asked is a client that could not keep the rate
        r["client_lag_s"] = round(max(j["duration_s"] - asked_s, 0), 2)
        r["client_bound"] = r["client_lag_s"] > CLIENT_LAG_MAX_S
    if cpu is not None:
        r["cpu_s"] = round(cpu, 3)
        if cpu_201 and n503 >= 1000:
            per = (cpu - n201 * cpu_201) / n503
            r["cpu_us_per_503"] = round(per * 1e6, 1)
            r["cpu_503_over_201"] = round(per / cpu_201, 3)
    return r


def shed_cost(o, ch, cpu_201, duration):
    """CPU per 503 apart from everything else: closed loop, 64 connections,
    every request with 1 ms of budget, below what POST /orders needs (its
    median, learned during the C phase), so order-svc refuses each at once.
    Only order-svc works; its CPU over the 503s, against the whole chain's
    CPU per 201."""
    order = ch.procs[2].pid
    c0 = cpu_s(order)
    j = load(o, ch.url, ["--connections", "64", "--no-deadline-header", "--header", "grpc-timeout: 1m"],
             duration)
    cpu = cpu_s(order) - c0
    # 503 (less budget than the route's median) or 504 (the 1 ms was gone
    # by the time the head was parsed): both refused at once, before a
    # handler runs
    n = count(j, 503) + count(j, 504)
    if n < 100:
        return {"error": f"only {n} refusals", "status": j["status"]}
    per = cpu / n
    return {"refused_per_s": round(n / j["duration_s"]), "cpu_us_per_503": round(per * 1e6, 1),
            "cpu_503_over_201": round(per / cpu_201, 3), "status": j["status"]}


def side_run(side, o, tmp, peer):
    q = o["quick"]
    ch = Chain(side, o, tmp, peer)
    try:
        load(o, ch.url, ["--connections", "64"], 1)   # warm up
        # C is the median of three closed-loop samples: one sample moved
        # 3,212-4,534/s between runs of one build minutes apart (a quiet
        # machine), and every figure below is a multiple of it
        samples = []
        for _ in range(3):
            sc = Syscalls(o, ch, tmp)
            c0, u0 = ch.cpu(), ch.usage()
            j = load(o, ch.url, ["--connections", "64"], 2 if q else 5)
            samples.append((count(j, 201) / j["duration_s"], j, ch.cpu() - c0, u0, ch.usage(),
                            sc.stop(max(j["requests"], 1))))
        samples.sort(key=lambda x: x[0])
        cap, jc, cpu_c, cu0, cu1, csc = samples[1]
        if cap < 10:
            die(f"{side}: no capacity measured ({jc['status']}, {jc['errors']})")
        cpu_201 = cpu_c / max(count(jc, 201), 1)
        res = {"C": round(cap), "C_samples": [round(x[0]) for x in samples],
               "cpu_us_per_201": round(cpu_201 * 1e6, 1),
               "closed_loop": summary(jc, cap)}
        # where a 201's CPU goes at C, per service: user, kernel, context
        # switches (per request: in the closed loop nearly all are 201s)
        res["closed_loop"]["per_service"] = per_service(cu0, cu1, max(jc["requests"], 1))
        if csc:
            res["closed_loop"]["syscalls"] = csc
        res["steady"] = summary(open_loop(o, ch.url, 0.1 * cap, 2 if q else 3), cap)
        if side == "sluice":
            res["shed_cost"] = shed_cost(o, ch, cpu_201, 2 if q else 5)
        runs = []
        for m in o["multiples"]:
            sc = Syscalls(o, ch, tmp)
            c0, m0, u0 = ch.cpu(), ch.scrape(), ch.usage()
            secs = 3 if q else 10
            tr = Tracer(ch)
            j = open_loop(o, ch.url, m * cap, secs)
            trace = tr.stop()
            scr = sc.stop(max(j["requests"], 1))
            r = summary(j, cap, ch.cpu() - c0, cpu_201, secs)
            u1 = ch.usage()
            r["per_service"] = per_service(u0, u1, max(j["requests"], 1))
            if scr:
                r["syscalls"] = scr
            # inventory and payment see only the orders that order-svc let
            # through: their CPU per 201 against the closed loop's says
            # whether a 201 got dearer here (fewer requests per wake-up and
            # per group commit), which cpu_us_per_503 would blame on the
            # 503s (it takes a 201 at its closed-loop cost)
            n201 = count(j, 201)
            ds = sum(u1[s]["user"] + u1[s]["sys"] - u0[s]["user"] - u0[s]["sys"] for s in ("inventory", "payment"))
            dc = sum(cu1[s]["user"] + cu1[s]["sys"] - cu0[s]["user"] - cu0[s]["sys"] for s in ("inventory", "payment"))
            if n201 >= 100 and count(jc, 201):
                r["downstream_cpu_us_per_201"] = round(ds / n201 * 1e6, 1)
                r["downstream_201_over_closed"] = round(ds / n201 / (dc / count(jc, 201)), 3) if dc > 0 else None
            r["multiple"] = m
            if trace:
                # order-svc's admission over the run, every 0.25 s: how
                # often CoDel's overload state changed, the share of
                # samples overloaded, the limit and the queue
                ov = [t.get("admission_overloaded", 0) for t in trace]
                r["order_admission"] = {
                    "samples": len(trace), "overloaded_share": round(sum(ov) / len(ov), 3),
                    "flooded_share": round(sum(t.get("admission_flooded", 0) for t in trace) / len(trace), 3),
                    "max_wait_ms_mean": round(sum(t.get("admission_max_wait_seconds", 0) for t in trace)
                                              / len(trace) * 1e3, 1),
                    "state_changes": sum(1 for a, b in zip(ov, ov[1:]) if a != b),
                    "limit_mean": round(sum(t.get("admission_limit", 0) for t in trace) / len(trace), 1),
                    "queued_mean": round(sum(t.get("queued", 0) for t in trace) / len(trace), 1),
                    "queued_max": max(t.get("queued", 0) for t in trace)}
                print(f"{ME}: {side:10} {m:g}C:   order-svc admission every 0.25 s: " +
                      ", ".join(f"{k} {v}" for k, v in r["order_admission"].items()), file=sys.stderr)
            if m0:
                r["refusals"] = refusal_delta(m0, ch.scrape())
            r["series"] = [{"t": p["t"], "requests": p["requests"], "201": p["status"].get("201", 0),
                            "503": p["status"].get("503", 0), "504": p["status"].get("504", 0),
                            "no_answer": sum(p["errors"].values()), "p99_ms": round(p["latency_ms"]["p99"], 1)}
                           for p in j["series"]]
            runs.append(r)
            for svc, d in r.get("refusals", {}).items():
                print(f"{ME}: {side:10} {m:g}C:   {svc}: " + ", ".join(f"{k} {v}" for k, v in d.items()
                                                                    if k != "server_latency"),
                      file=sys.stderr)
                for route, h in d.get("server_latency", {}).items():
                    print(f"{ME}: {side:10} {m:g}C:   {svc}: {route}: {h['n']} answered in {h['mean_ms']} ms "
                          f"mean, p50 <= {h['p50_le_ms']} ms, p99 <= {h['p99_le_ms']} ms (server side)",
                          file=sys.stderr)
            print(f"{ME}: {side:10} {m:g}C: offered {r['offered_per_s']}/s goodput {r['goodput_per_s']}/s "
                  f"({r['goodput_over_C']} C) p50/p99 {r['p50_201_ms']}/{r['p99_201_ms']} ms "
                  f"503 {r['share_503']:.1%} 504 {r['share_504']:.1%} no answer {r['share_no_answer']:.1%}"
                  + (f" cpu/503 {r['cpu_us_per_503']} us ({r['cpu_503_over_201']} of a 201)"
                     if "cpu_us_per_503" in r else "")
                  + (f" inv+pay cpu/201 x{r['downstream_201_over_closed']} of C's"
                     if r.get("downstream_201_over_closed") else "")
                  + (f" CLIENT-BOUND (the load client ran {r['client_lag_s']} s behind)"
                     if r["client_bound"] else ""), file=sys.stderr)
        res["runs"] = runs
        # recovery: 0.5 C right after the last multiple; seconds 3.. of it,
        # with order-svc's admission state every 0.25 s meanwhile (why a
        # second of it refused: the limit, CoDel's state, the queue delay,
        # the refusals by reason)
        tr = Tracer(ch)
        rsecs = 5 if not q else 4
        j = open_loop(o, ch.url, 0.5 * cap, rsecs)
        trace = tr.stop()
        late = [p for p in j["series"] if p["t"] >= 3]
        n = sum(p["requests"] for p in late)
        ok = sum(p["status"].get("201", 0) for p in late)
        res["recovery"] = {"share_201_after_2s": round(ok / n, 4) if n else None,
                           # the load client's own lag (as summary()'s): a
                           # recovery whose requests got no answer while
                           # order_trace shows order-svc idle measured the
                           # client or the machine, not admission
                           "client_lag_s": round(max(j["duration_s"] - rsecs, 0), 2),
                           "p99_ms_after_2s": round(max((p["latency_ms"]["p99"] for p in late), default=0), 2),
                           "series": [{"t": p["t"], "201": p["status"].get("201", 0), "requests": p["requests"],
                                       "503": p["status"].get("503", 0), "504": p["status"].get("504", 0),
                                       "no_answer": sum(p["errors"].values()),
                                       "p99_ms": round(p["latency_ms"]["p99"], 1)} for p in j["series"]]}
        if trace:
            res["recovery"]["order_trace"] = trace
            for t in trace:
                print(f"{ME}: {side:10} recovery t={t['t']:.2f}s order-svc: " +
                      ", ".join(f"{k} {v}" for k, v in t.items() if k != "t"), file=sys.stderr)
        res["alive_after"] = ch.alive()
        if "shed_cost" in res and "cpu_us_per_503" in res["shed_cost"]:
            sc = res["shed_cost"]
            print(f"{ME}: {side:10} a 503 (budget refusal, order-svc) costs {sc['cpu_us_per_503']} us of CPU, "
                  f"{sc['cpu_503_over_201']} of a 201's ({res['cpu_us_per_201']} us, whole chain)",
                  file=sys.stderr)
        print(f"{ME}: {side:10} C {res['C']}/s (samples {res['C_samples']}), recovery: {res['recovery']['share_201_after_2s']} 201 "
              f"(client lag {res['recovery']['client_lag_s']} s) "
              f"after 2 s, p99 {res['recovery']['p99_ms_after_2s']} ms (steady p99 "
              f"{res['steady']['p99_201_ms']} ms)", file=sys.stderr)
        return res
    finally:
        ch.stop()


def targets(s):
    """issue 14's targets, for sluice with admission on."""
    by = {r["multiple"]: r for r in s["runs"]}
    t = {}
    if 1 in by:
        t["goodput_1C_ge_0.9"] = by[1]["goodput_over_C"] >= 0.9
    for m in (2, 3):
        if m in by:
            t[f"goodput_{m}C_ge_0.8"] = by[m]["goodput_over_C"] >= 0.8
    if 3 in by and s["steady"]["p99_201_ms"] is not None and by[3]["p99_201_ms"] is not None:
        t["p99_3C_le_max(2x_steady,25ms)"] = by[3]["p99_201_ms"] <= max(2 * s["steady"]["p99_201_ms"], 25)
    t["no_client_timeouts"] = all(r["errors"]["timeout"] == 0 for r in s["runs"])
    # a run the load client could not keep up with says nothing either way
    t["valid_client_kept_rate"] = not any(r.get("client_bound") for r in s["runs"])
    if s["recovery"]["share_201_after_2s"] is not None:
        t["recovery_ge_0.99"] = s["recovery"]["share_201_after_2s"] >= 0.99
    return t


def main():
    o = args()
    o["load"] = os.environ.get("SLUICE_LOAD", o["build"] + "/services/load/sluice-load")
    for f in [o["load"]] + [f"{o['build']}/services/{s}/{s}-svc" for s in ("order", "inventory", "payment")]:
        if not os.access(f, os.X_OK):
            die(f"no {f} (make it first)")
    if not shutil.which("taskset"):
        die("taskset not found (util-linux)")
    tmp = tempfile.mkdtemp(prefix="overload-bench.")
    peer = None
    if o["go"]:
        go = os.environ.get("GO", "go")
        if not shutil.which(go):
            die("'go' not found: install golang-go, or pass --no-go")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "chain")
        peer = o["build"] + "/bench/peers/chain-peer"
        os.makedirs(os.path.dirname(peer), exist_ok=True)
        env = dict(os.environ, GOTOOLCHAIN="local", GOPROXY="off", GOFLAGS="", GOWORK="off", GO111MODULE="on",
                   GOCACHE=os.environ.get("GOCACHE", f"{tempfile.gettempdir()}/sluice-peers-gocache-{os.getuid()}"))
        if subprocess.run([go, "build", "-o", peer, "."], cwd=src, env=env).returncode != 0:
            die("go build failed")
    sides = {"both": ["sluice", "sluice-off"], "on": ["sluice"], "off": ["sluice-off"]}[o["admission"]]
    if o["go"]:
        sides.append("go")
    with open("/proc/loadavg") as f:
        before = f.read().split()[:3]
    out = {"threads": o["threads"], "quick": o["quick"], "multiples": o["multiples"], "loadavg_before": before}
    try:
        for side in sides:
            out[side.replace("-", "_")] = side_run(side, o, tmp, peer)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open("/proc/loadavg") as f:
        out["loadavg_after"] = f.read().split()[:3]
    if "sluice" in out:
        out["targets"] = targets(out["sluice"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
