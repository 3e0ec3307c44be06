#!/bin/sh
# man.sh: the sluice(7) overview formats without a warning, and names every
# installed header, so it cannot silently fall behind them (issue 18).
# Environment: top_srcdir, SL_HEADERS (Makefile.am's AM_TESTS_ENVIRONMENT).
set -u
page="$top_srcdir/docs/sluice.7"
if ! command -v groff >/dev/null 2>&1; then
  echo "man: no groff (Debian's groff-base): skipped"
  exit 77
fi
bad=0
warn=$(groff -man -ww -z "$page" 2>&1)
if [ -n "$warn" ]; then
  echo "man: groff warns:"; echo "$warn"; bad=$((bad + 1))
fi
for h in $SL_HEADERS; do
  b=$(basename "$h")
  [ "$b" = sluice.h ] && continue
  if ! grep -qx "\.B $b" "$page"; then
    echo "man: $b is installed but has no entry (.B $b) in docs/sluice.7"; bad=$((bad + 1))
  fi
done
echo "man: $(echo $SL_HEADERS | wc -w) headers, $bad problems"
[ "$bad" -eq 0 ]
