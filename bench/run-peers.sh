#!/bin/sh
# run-peers.sh: sluice's core-bench beside its Go peer (bench/peers/core).
#
#   bench/run-peers.sh BUILDDIR [--quick] [--strict]      (`make bench-peers`)
#
# Builds the Go program into BUILDDIR/bench/peers/, runs
# BUILDDIR/bench/core-bench --json and the Go program, and prints one JSON
# object on stdout:
#   {"sluice": {...}, "go": {...}, "ratios": {...}, "targets": {...}}
# A ratio is how many times better sluice is: go/sluice for times and bytes,
# sluice/go for rates (*_per_s). A figure missing on either side is null.
# A short table goes to stderr. --strict: exit 2 if a target is missed.
#
# Environment: GO (default: go), PYTHON (default: python3), GOCACHE,
# CORE_BENCH (default: BUILDDIR/bench/core-bench).
set -eu

me=run-peers.sh
usage() { echo "usage: $me BUILDDIR [--quick] [--strict]" >&2; exit 2; }

[ $# -ge 1 ] || usage
builddir=$1; shift
quick='' strict=''
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    --strict) strict=1 ;;
    *) usage ;;
    esac
done

# The Go sources live beside this script, wherever the build dir is.
srcdir=$(cd "$(dirname "$0")/.." && pwd)
builddir=$(cd "$builddir" && pwd) || { echo "$me: no build dir $1" >&2; exit 1; }

GO=${GO:-go}
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "$me: 'go' not found: install golang-go (apt-get install golang-go) to run the Go peers" >&2
    exit 1
fi
PYTHON=${PYTHON:-python3}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=/usr/bin/python3
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "$me: python3 not found: it does the JSON arithmetic" >&2
    exit 1
fi

outdir=$builddir/bench/peers
mkdir -p "$outdir"
peer=$outdir/core-peer

# Standard library only: no network, no module downloads, no toolchain
# switching. The build cache goes under TMPDIR, not the build dir: in an
# in-tree build that is bench/peers/, which `make dist` ships whole.
gocache=${GOCACHE:-${TMPDIR:-/tmp}/sluice-peers-gocache-$(id -u)}
echo "$me: building $peer" >&2
(
    cd "$srcdir/bench/peers/core"
    GOTOOLCHAIN=local GOPROXY=off GOFLAGS='' GOWORK=off GO111MODULE=on \
        GOCACHE=$gocache "$GO" build -o "$peer" .
) || { echo "$me: go build failed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-peers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# sluice first, then Go, never both at once: each gets the whole machine.
core_bench=${CORE_BENCH:-$builddir/bench/core-bench}
if [ -x "$core_bench" ]; then
    echo "$me: running $core_bench --json${quick:+ --quick}" >&2
    if ! "$core_bench" --json ${quick:+--quick} >"$tmp/sluice.json"; then
        echo "$me: core-bench failed; its figures are null" >&2
        echo '{}' >"$tmp/sluice.json"
    fi
else
    echo "$me: no $core_bench (make bench/core-bench); sluice's figures are null" >&2
    echo '{}' >"$tmp/sluice.json"
fi

echo "$me: running $peer${quick:+ -quick}" >&2
"$peer" ${quick:+-quick} >"$tmp/go.json" || { echo "$me: the Go peer failed" >&2; exit 1; }

"$PYTHON" - "$tmp/sluice.json" "$tmp/go.json" "$strict" <<'EOF'
import json, sys

def load(path, who):
    text = open(path).read()
    # Tolerate stray lines around the object; a broken object counts as empty.
    i, j = text.find("{"), text.rfind("}")
    try:
        obj = json.loads(text[i:j + 1]) if 0 <= i < j else None
    except ValueError:
        obj = None
    if not isinstance(obj, dict):
        if text.strip() != "{}":
            print("run-peers.sh: %s printed no JSON object; its figures are null" % who, file=sys.stderr)
        obj = {}
    return {k: v for k, v in obj.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

sluice = load(sys.argv[1], "core-bench")
go = load(sys.argv[2], "the Go peer")
strict = sys.argv[3] == "1"

keys = ["chan_send_recv_ns", "chan_pingpong_ns", "chan_throughput_msgs_per_s",
        "select4_ns", "task_spawn_join_ns", "bytes_per_parked_task",
        "cross_reactor_msgs_per_s", "mutex_lock_unlock_ns",
        "ctx_with_cancel_cancel_ns", "ctx_with_timeout_cancel_ns",
        "ctx_cancel_fanout_100k_ms", "ctx_cancel_chain_1000_us"]
# Figures only one side has (core-bench has more) follow, compared where both do.
keys += [k for k in list(sluice) + list(go) if k not in keys]
keys = list(dict.fromkeys(keys))

# How many times better sluice must be.
targets = {"chan_send_recv_ns": 3, "chan_pingpong_ns": 3, "bytes_per_parked_task": 8,
           "cross_reactor_msgs_per_s": 1, "ctx_with_cancel_cancel_ns": 3,
           "ctx_cancel_fanout_100k_ms": 3}

def ratio(k):
    s, g = sluice.get(k), go.get(k)
    if s is None or g is None:
        return None
    if k.endswith("_per_s"):
        return round(s / g, 3) if g > 0 else None
    return round(g / s, 3) if s > 0 else None

ratios = {k: ratio(k) for k in keys}
tres = {}
for k, need in targets.items():
    r = ratios.get(k)
    tres[k] = {"need": need, "ratio": r, "pass": None if r is None else r >= need}

out = {"sluice": {k: sluice.get(k) for k in keys},
       "go": {k: go.get(k) for k in keys},
       "ratios": ratios, "targets": tres}
json.dump(out, sys.stdout, indent=2)
print()

def fmt(v):
    if v is None:
        return "-"
    return "%.4g" % v if abs(v) < 1e6 else "%.3e" % v

w = max(len(k) for k in keys)
err = sys.stderr
print("%-*s %12s %12s %9s  %s" % (w, "figure", "sluice", "go", "x better", "target"), file=err)
for k in keys:
    t = tres.get(k)
    tt = ""
    if t:
        tt = ">= %gx %s" % (t["need"], {True: "pass", False: "FAIL", None: "unknown"}[t["pass"]])
    print("%-*s %12s %12s %9s  %s" % (w, k, fmt(sluice.get(k)), fmt(go.get(k)), fmt(ratios[k]), tt), file=err)
missed = [k for k, t in tres.items() if t["pass"] is False]
unknown = [k for k, t in tres.items() if t["pass"] is None]
print("targets: %d pass, %d fail%s, %d unknown" % (
    len(tres) - len(missed) - len(unknown), len(missed),
    " (" + ", ".join(missed) + ")" if missed else "", len(unknown)), file=err)
sys.exit(2 if strict and missed else 0)
EOF
