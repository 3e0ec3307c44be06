#!/bin/sh
# exports.sh: libsluice.so exports the public API and nothing else (issue
# 18): every symbol it defines for the dynamic linker is named in the code
# (comments stripped, when the compiler can) of one of the installed
# headers, core's sl__ internals and the sl_heap_/sl_mpsc_/sl_http_parser_
# helpers are not among them, and the soname follows the -version-info
# that configure.ac sets.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): top_srcdir, NM,
# SL_HEADERS (the installed headers, relative to top_srcdir), SL_LT_VERSION.
set -u
so=.libs/libsluice.so
if [ ! -f "$so" ]; then
  echo "exports: no $so (a build without shared libraries): skipped"
  exit 77
fi
nm=${NM:-nm}
code=$(mktemp) || exit 1
trap 'rm -f "$code"' EXIT
for h in $SL_HEADERS; do
  # -fpreprocessed: comments out, nothing expanded (GCC, clang)
  ${CC:-cc} -fpreprocessed -dD -E -P "$top_srcdir/$h" >>"$code" 2>/dev/null || cat "$top_srcdir/$h" >>"$code"
done

syms=$($nm -D --defined-only "$so" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u)
n=$(echo "$syms" | grep -c .)
if [ "$n" -lt 100 ]; then
  echo "exports: only $n symbols found in $so: is nm working?"
  exit 1
fi
bad=0
for s in $syms; do
  if ! grep -qw -- "$s" "$code"; then
    echo "exports: $s is exported but named in no installed header"
    bad=$((bad + 1))
  fi
done
echo "exports: $n symbols exported, $bad not in the public headers"
for internal in sl_heap_push sl_mpsc_push sl_http_parser_feed sl__reactor_init; do
  if echo "$syms" | grep -qx "$internal"; then
    echo "exports: internal $internal is exported"
    bad=$((bad + 1))
  fi
done

# current:revision:age -> libsluice.so.(current - age)
cur=${SL_LT_VERSION%%:*}
age=${SL_LT_VERSION##*:}
want="libsluice.so.$((cur - age))"
soname=$(readelf -d "$so" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ -n "$soname" ] && [ "$soname" != "$want" ]; then
  echo "exports: soname $soname, want $want (-version-info $SL_LT_VERSION)"
  bad=$((bad + 1))
fi
echo "exports: soname ${soname:-(readelf missing)}"
[ "$bad" -eq 0 ]
