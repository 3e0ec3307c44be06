#!/usr/bin/env python3
"""shed-instr.py: what a refusal costs against a served order, in user-space
instructions (callgrind), for the safe chain (issue 14).

    bench/shed-instr.py BUILDDIR [--duration S] [--grpc-timeout V]
                                                  (`make bench-shed-instr`)

CPU time per 503 measured under load swings with whatever else the machine
runs; an instruction count does not, so it is the figure to compare changes
of the refusal path by. It cannot see the kernel (a recv and a send per
request, the same for a 503 as for the first hop of a 201) nor how long each
instruction takes.

The three services run under `valgrind --tool=callgrind` (--threads 1,
--timeout-ms 30000: valgrind is some 50 times slower, the orders must still
finish), then:

 1. warm-up: closed loop, 4 connections, 3 s of POST /orders (order-svc
    learns the route's median time); then S s idle: what each service
    spends per second doing nothing (timers) is taken off the figures
    below, which then do not depend on how many requests valgrind fits in
    S s on a loaded machine;
 2. served: counters zeroed in all three, closed loop, 8 connections, S s
    (default 4); the instructions of all three over the 201s;
 3. refused: order-svc's counters zeroed, the same load with
    `grpc-timeout: 1m` (below the route's median), so order-svc refuses each
    request as soon as its head is parsed; its instructions over the
    503s and 504s (the 1 ms may be gone by then: refused the same way).
    --grpc-timeout V sends V instead of 1m: `0m` makes every request one
    whose budget is gone when its head is read, refused there (504) on
    any machine; with 1m a loaded machine may admit some (issue 14,
    cost14b: 2,018 of 2,321 were admitted and then ran out, ~100,000
    instructions each, on main at load 11).

One JSON object on stdout:
  {"served": {"requests": N, "instructions_per_201": I, "by_service": {...}},
   "refused": {"requests": N, "instructions_per_refusal": I},
   "refusal_over_201": R}
R is the share of a whole-chain 201 that a refusal costs; the target of
issue 14 is <= ~0.1. Needs valgrind (callgrind_control) and python3.
SHED_INSTR_KEEP=1 keeps the callgrind files (callgrind_annotate them).
"""
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchproc import free_ports, listening  # noqa: E402

ME = "shed-instr"
BODY = '{"item":"sku-1","qty":1,"amount_cents":1250}'


def die(msg):
    print(f"{ME}: {msg}", file=sys.stderr)
    sys.exit(1)


def ctl(flag, pid):
    subprocess.run(["callgrind_control", flag, str(pid)], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False, timeout=120)


def last_dump_ir(prefix):
    """The instructions of the newest dump of one process."""
    parts = [p for p in glob.glob(prefix + ".*") if p.rsplit(".", 1)[1].isdigit()]
    if not parts:
        die(f"no callgrind dump {prefix}.*")
    newest = max(parts, key=lambda p: int(p.rsplit(".", 1)[1]))
    with open(newest) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    die(f"no totals in {newest}")


def main():
    a = sys.argv[1:]
    if not a or a[0].startswith("--"):
        die("usage: shed-instr.py BUILDDIR [--duration S] [--grpc-timeout V]")
    build, duration, budget = os.path.abspath(a[0]), 4.0, "1m"
    rest = a[1:]
    while rest:
        if len(rest) >= 2 and rest[0] == "--duration":
            duration = float(rest[1])
        elif len(rest) >= 2 and rest[0] == "--grpc-timeout":
            budget = rest[1]
        else:
            die("usage: shed-instr.py BUILDDIR [--duration S] [--grpc-timeout V]")
        rest = rest[2:]
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            die(f"'{tool}' not found")
    load_bin = os.environ.get("SLUICE_LOAD", f"{build}/services/load/sluice-load")
    run = [f"{build}/libtool", "--mode=execute"] if os.access(f"{build}/libtool", os.X_OK) else []
    tmp = tempfile.mkdtemp(prefix="shed-instr.")
    procs = {}
    try:
        po, pi, pp = free_ports(3)
        b = build + "/services"
        common = ["--threads", "1", "--timeout-ms", "30000", "--mode", "safe", "--admission", "on"]
        specs = [("payment", [f"{b}/payment/payment-svc", "--listen", f"127.0.0.1:{pp}",
                              "--order", f"http://127.0.0.1:{po}"] + common),
                 ("inventory", [f"{b}/inventory/inventory-svc", "--listen", f"127.0.0.1:{pi}",
                                "--payment", f"http://127.0.0.1:{pp}"] + common),
                 ("order", [f"{b}/order/order-svc", "--listen", f"127.0.0.1:{po}",
                            "--inventory", f"http://127.0.0.1:{pi}"] + common)]
        for name, cmd in specs:
            vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/{name}.cg"]
            procs[name] = subprocess.Popen(run + vg + cmd, stdout=open(f"{tmp}/{name}.out", "w"),
                                           stderr=open(f"{tmp}/{name}.err", "w"))
        for name in procs:
            if not listening(procs[name], f"{tmp}/{name}.out", 60):
                die(f"{name} did not start: {open(f'{tmp}/{name}.err').read()[-2000:]}")
        url = f"http://127.0.0.1:{po}/orders"

        def load(conns, secs, extra=()):
            cmd = [load_bin, url, "--method", "POST", "--body", BODY, "--connections", str(conns),
                   "--duration", str(secs), "--timeout", "60000", "--json", "--quiet"] + list(extra)
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=secs + 120)
            if r.returncode != 0:
                die(f"sluice-load failed: {r.stderr.strip()}")
            return json.loads(r.stdout)

        load(4, 3)
        # what each service spends idle (timers, the clock), per second, so
        # that it is not charged to the requests: how many fit in S s under
        # valgrind depends on the machine's load, the idle cost does not
        for p in procs.values():
            ctl("-z", p.pid)
        t0 = time.time()
        time.sleep(duration)
        for p in procs.values():
            ctl("-d", p.pid)
        idle = {name: last_dump_ir(f"{tmp}/{name}.cg") / (time.time() - t0) for name in procs}

        for p in procs.values():
            ctl("-z", p.pid)
        t0 = time.time()
        j = load(8, duration)
        for p in procs.values():
            ctl("-d", p.pid)
        secs = time.time() - t0
        n201 = j["status"].get("201", 0)
        if n201 < 20:
            die(f"only {n201} orders served: {j['status']} {j['errors']}")
        by = {name: max(last_dump_ir(f"{tmp}/{name}.cg") - idle[name] * secs, 0) for name in procs}
        per201 = sum(by.values()) / n201
        served = {"requests": n201, "instructions_per_201": round(per201),
                  "by_service": {k: round(v / n201) for k, v in by.items()}}
        print(f"{ME}: served {served}", file=sys.stderr)

        order = procs["order"].pid
        ctl("-z", order)
        t0 = time.time()
        j = load(8, duration, ["--no-deadline-header", "--header", f"grpc-timeout: {budget}"])
        ctl("-d", order)
        secs = time.time() - t0
        nref = j["status"].get("503", 0) + j["status"].get("504", 0)
        if nref < 100:
            die(f"only {nref} refusals: {j['status']} {j['errors']}")
        perref = max(last_dump_ir(f"{tmp}/order.cg") - idle["order"] * secs, 0) / nref
        refused = {"requests": nref, "instructions_per_refusal": round(perref), "status": j["status"]}
        print(f"{ME}: refused {refused}", file=sys.stderr)
        print(json.dumps({"served": served, "refused": refused,
                          "refusal_over_201": round(perref / per201, 4)}))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if os.environ.get("SHED_INSTR_KEEP"):
            print(f"{ME}: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
