#!/bin/sh
# docs.sh: the C code blocks of README.md and docs/*.md compile (issue 18).
# A block that claims to be a program (it has an #include or a main) must
# be the whole of a file under examples/, named by the HTML comment on the
# line before its fence:
#     <!-- example: examples/first/first.c -->
# which Makefile.am builds (and make check runs, and make installcheck
# builds against the installed library). This test checks that the block
# and the file are the same, line for line. Other blocks are fragments.
# Environment: top_srcdir (Makefile.am's AM_TESTS_ENVIRONMENT).
set -u
cd "${top_srcdir:-.}" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
for md in README.md docs/*.md; do
  n=$(awk -v dir="$tmp" -v md="$md" -v n="$n" '
    /^<!-- example: [^ ]* -->$/ { ex = $3; next }
    !inb && /^```c[ \t]*$/ {
      inb = 1; n++; file = dir "/" n ".c"
      printf "" > file
      print md ":" NR " " (ex == "" ? "-" : ex) > (dir "/" n ".where")
      close(dir "/" n ".where")
      ex = ""; next
    }
    inb && /^```/ { inb = 0; close(file); next }
    inb { print > file; next }
    /[^ \t]/ { ex = "" }
    END { print n }
  ' "$md")
done
fail=0 examples=0 readme=0
i=0
while [ "$i" -lt "$n" ]; do
  i=$((i + 1))
  read -r where ex < "$tmp/$i.where"
  if [ "$ex" != "-" ]; then
    examples=$((examples + 1))
    case $where in README.md:*) readme=$((readme + 1)) ;; esac
    if [ ! -f "$ex" ]; then
      echo "FAIL $where: names $ex, which does not exist"; fail=$((fail + 1))
    elif ! diff -u "$ex" "$tmp/$i.c" > "$tmp/diff"; then
      echo "FAIL $where: the block is not $ex as it is:"; cat "$tmp/diff"; fail=$((fail + 1))
    else
      echo "ok   $where: $ex"
    fi
  elif grep -qE '^[[:space:]]*#[[:space:]]*include|(^|[^[:alnum:]_])main[[:space:]]*\(' "$tmp/$i.c"; then
    echo "FAIL $where: a program (#include or main), but no <!-- example: examples/... --> before it"
    fail=$((fail + 1))
  else
    echo "ok   $where: a fragment"
  fi
done
echo "docs: $n C blocks, $examples of them examples ($readme in README.md), $fail failed"
# the README shows a complete program at least: without one this test
# would have nothing to hold the docs to
[ "$fail" -eq 0 ] && [ "$readme" -gt 0 ]
