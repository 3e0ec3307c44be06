#!/bin/sh
# load-vs-wrk.sh BUILDDIR: can sluice-load drive as many requests/s as wrk?
#
# Starts examples/hello/hello --threads 1 on a free port, then runs, in
# alternation (ROUNDS rounds each), `wrk -t1 -cC -dD` and `sluice-load
# --connections C --threads 1 --duration D` (closed loop) against it, and
# prints one JSON object with the best round of each:
#   {"wrk_rps":..., "sluice_load_rps":..., "ratio":..., ...}
# and a short table on stderr. The best round, because on a shared machine
# a round can only lose throughput to noise, never gain it.
# sluice-load runs with --no-deadline-header so that both send the same
# request (the grpc-timeout header costs the server, not the client, a
# little); the default run is measured and reported as well.
# Environment: CONNS (50), DURATION (5), ROUNDS (3).
set -eu
B=${1:?usage: load-vs-wrk.sh BUILDDIR}
CONNS=${CONNS:-50}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || { echo "load-vs-wrk: wrk is not installed" >&2; exit 1; }
OUT=$(mktemp)
"$B/examples/hello/hello" --listen 127.0.0.1:0 --threads 1 >"$OUT" 2>/dev/null &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -f "$OUT"' EXIT
i=0
while ! grep -q '^listening on' "$OUT"; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "load-vs-wrk: hello did not start" >&2; exit 1; }
  sleep 0.1
done
PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$OUT")
URL=http://127.0.0.1:$PORT/hello

wrk_rps() { wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL" | awk '/^Requests\/sec:/ {print $2}'; }
sl_rps() {
  "$B/services/load/sluice-load" "$URL" --connections "$CONNS" --threads 1 \
    --duration "$DURATION" --json --quiet "$@" | sed -n 's/.*"rps":\([0-9.eE+-]*\).*/\1/p' | tail -1
}
max() { awk -v a="$1" -v b="$2" 'BEGIN {print (a + 0 > b + 0) ? a : b}'; }

W=0; S=0; SD=0
printf '%-6s %14s %18s %24s\n' round wrk_rps sluice_load_rps sluice_load_rps_deadline >&2
r=1
while [ $r -le "$ROUNDS" ]; do
  w=$(wrk_rps); s=$(sl_rps --no-deadline-header); sd=$(sl_rps)
  printf '%-6s %14s %18s %24s\n' "$r" "$w" "$s" "$sd" >&2
  W=$(max "$W" "$w"); S=$(max "$S" "$s"); SD=$(max "$SD" "$sd")
  r=$((r + 1))
done
awk -v w="$W" -v s="$S" -v sd="$SD" -v c="$CONNS" -v d="$DURATION" -v n="$ROUNDS" 'BEGIN {
  printf "{\"wrk_rps\":%.1f,\"sluice_load_rps\":%.1f,\"ratio\":%.3f,\"sluice_load_rps_with_deadline_header\":%.1f,\"connections\":%d,\"duration_s\":%d,\"rounds\":%d}\n",
         w, s, (w > 0 ? s / w : 0), sd, c, d, n }'
