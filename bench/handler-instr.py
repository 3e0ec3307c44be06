#!/usr/bin/env python3
"""handler-instr.py BUILDDIR [N]: what the services' business handlers cost,
in instructions (callgrind, --toggle-collect=route_step: the handler and
all it calls: the fault check, the body's parse, the steps' start and end,
the upstream call's start, the answer and its JSON; not the HTTP layer, the
store's threads or the wait). One reactor each, --data :memory:, safe mode.

N (default 200) chains, each: POST /orders (order, inventory's /reserve,
payment's /charge and order's callback), then GET /orders/{id},
GET /charges/{id}, GET /reservations/{id} and a GET /orders/{id} that is
404. Prints one JSON object: per service the instructions per chain
(`ir_per_chain`), and their sum. Counts, not times: a loaded machine does
not change them, so two builds compare to the percent (issue 19: the
handlers' JSON and svc_route_db). Needs valgrind."""
import glob, http.client, json, os, shutil, socket, subprocess, sys, tempfile
if len(sys.argv) not in (2, 3):
    sys.exit(__doc__)
build, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 200
def port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
po, pi, pp = port(), port(), port()
tmp = tempfile.mkdtemp(prefix="instr.")
procs = []
for name, p, up in (("payment", pp, ["--order", "http://127.0.0.1:%d" % po]),
                    ("inventory", pi, ["--payment", "http://127.0.0.1:%d" % pp]),
                    ("order", po, ["--inventory", "http://127.0.0.1:%d" % pi])):
    cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=route_step", "--callgrind-out-file=%s/%s.out" % (tmp, name),
           os.path.join(build, "services", name, name + "-svc"), "--listen", "127.0.0.1:%d" % p,
           "--threads", "1", "--mode", "safe", "--data", ":memory:", "--timeout-ms", "60000"] + up
    pr = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if not pr.stdout.readline().startswith("listening"):
        sys.exit("did not start: " + name)
    procs.append(pr)
def req(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, data
ids = []
for i in range(n):
    st, data = req(po, "POST", "/orders", '{"item":"sku-1","qty":1,"amount_cents":1250}')
    assert st == 201, (st, data)
    ids.append(json.loads(data)["order_id"])
for i in ids:
    assert req(po, "GET", "/orders/" + i)[0] == 200
    assert req(pp, "GET", "/charges/" + i)[0] == 200
    assert req(pi, "GET", "/reservations/" + i)[0] == 200
    assert req(po, "GET", "/orders/x" + i[1:])[0] == 404   # an error answer
for pr in procs:
    pr.terminate()
for pr in procs:
    pr.wait(120)
tot = {}
for name in ("order", "inventory", "payment"):
    ir = 0
    for f in glob.glob("%s/%s.out*" % (tmp, name)):
        for line in open(f):
            if line.startswith("summary:") or line.startswith("totals:"):
                ir = max(ir, int(line.split()[1]))
    tot[name] = ir
shutil.rmtree(tmp, ignore_errors=True)
print(json.dumps({"chains": n, "ir_per_chain": {k: round(v / n) for k, v in tot.items()},
                  "ir_per_chain_total": round(sum(tot.values()) / n)}))
