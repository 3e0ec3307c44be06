#!/bin/sh
# nocompile.sh: the mistakes the headers turn into compile errors (issue
# 18), checked the way projects check their static assertions. Each
# tests/nocompile-cases/*.c holds a correct use and, under -DSL_WRONG, the
# mistake; its line `expect: TEXT` names what the compiler must say, and
# an optional line `flags: ...` adds compiler flags. The
# correct form must compile (so the failure is the mistake's, not a typo's)
# and the wrong one must fail with TEXT in its errors.
# Environment (Makefile.am's AM_TESTS_ENVIRONMENT): top_srcdir, CC,
# SL_CPPFLAGS (the staged <sluice/...> headers, as the examples see them),
# SL_CFLAGS (the library's own flags, -Werror included when
# configured so).
set -u
fail=0
n=0
out=nocompile.out
for f in "$top_srcdir"/tests/nocompile-cases/*.c; do
  n=$((n + 1))
  name=$(basename "$f")
  expect=$(sed -n 's/.*expect: \(.*[^ ]\) *\*\/.*/\1/p' "$f" | head -n 1)
  if [ -z "$expect" ]; then
    echo "FAIL $name: no 'expect:' line"; fail=$((fail + 1)); continue
  fi
  flags=$(sed -n 's/.*flags: \(.*[^ ]\) *$/\1/p' "$f" | head -n 1)
  # shellcheck disable=SC2086
  if ! $CC $SL_CPPFLAGS $SL_CFLAGS $flags -fsyntax-only "$f" >"$out" 2>&1; then
    echo "FAIL $name: the correct form does not compile:"; cat "$out"; fail=$((fail + 1)); continue
  fi
  # shellcheck disable=SC2086
  if $CC $SL_CPPFLAGS $SL_CFLAGS $flags -DSL_WRONG -fsyntax-only "$f" >"$out" 2>&1; then
    echo "FAIL $name: the mistake compiles"; fail=$((fail + 1)); continue
  fi
  if ! grep -qF -- "$expect" "$out"; then
    echo "FAIL $name: it fails, but without '$expect':"; cat "$out"; fail=$((fail + 1)); continue
  fi
  echo "ok   $name: $expect"
done
rm -f "$out"
echo "nocompile: $n checks, $fail failed"
[ "$n" -gt 0 ] && [ "$fail" -eq 0 ]
