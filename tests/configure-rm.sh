#!/bin/sh
# configure-rm.sh: configure is quiet about our core/ folder (issue 18).
# Autoconf's checks clean up with `rm -f core conftest.err ...`, which in
# the source tree printed "rm: cannot remove 'core': Is a directory" once
# per check. configure.ac defines an rm function that skips `core` when it
# is a directory; this runs that function, as generated into configure, the
# way autoconf's checks call it, in a scratch directory with a core/ folder.
# Environment: top_srcdir (Makefile.am's AM_TESTS_ENVIRONMENT).
set -u
fn=$(sed -n '/^rm ()$/,/^}$/p' "$top_srcdir/configure")
if [ -z "$fn" ]; then
  echo "configure-rm: configure defines no rm function"
  exit 1
fi
tmp=$(mktemp -d) || exit 1
trap 'command rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
mkdir core && : > core/keep.c && : > conftest.err && : > conftest.o && : > core.conftest.1
# a check's cleanup and the exit trap's, as configure runs them
err=$(sh -c "$fn"'
rm -f core conftest.err conftest.o conftest.beam conftest.c &&
rm -f core *.core core.conftest.* && echo second-ran' 2>&1)
bad=0
case $err in
  *"cannot remove"*) echo "configure-rm: rm still complains: $err"; bad=1 ;;
esac
case $err in
  *second-ran*) ;;
  *) echo "configure-rm: the first rm failed, the exit trap's second never ran"; bad=1 ;;
esac
for f in conftest.err conftest.o core.conftest.1; do
  [ -e "$f" ] && { echo "configure-rm: $f was not removed"; bad=1; }
done
[ -f core/keep.c ] || { echo "configure-rm: core/ lost its contents"; bad=1; }
# a file named core (a real core dump) still goes
: > "$tmp/dump" && mkdir "$tmp/sub" && cd "$tmp/sub" && : > core
sh -c "$fn"'
rm -f core' && [ ! -e core ] || { echo "configure-rm: a core file was kept"; bad=1; }
echo "configure-rm: $([ $bad -eq 0 ] && echo quiet || echo broken)"
exit $bad
