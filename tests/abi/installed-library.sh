#!/bin/bash
# An outside program builds against the INSTALLED library, found with
# pkg-config only, and runs against it:
#
#   installed-library.sh BUILD_DIR OUTSIDE.C
#
# The build is installed into a temporary DESTDIR (nothing outside it is
# touched); pkg-config reads the installed smtpout.pc first (the system's
# .pc files still answer for gnutls, libidn2 and inih), with
# PKG_CONFIG_SYSROOT_DIR pointing its -I/-L paths into the DESTDIR.  The
# program reports which libsmtpout file it loaded: it must be the installed
# one, and the installed library must carry no RUNPATH into the build tree.
# Prints TAP.
set -u
build=$(cd "$1" && pwd)
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
check() { # check NAME COMMAND...: one TAP line
  local name=$1
  shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    failed=$((failed + 1))
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
}

dest=$tmp/dest
check "meson install into a DESTDIR" \
  meson install -C "$build" --no-rebuild --quiet --destdir "$dest"
pc=$(find "$dest" -name smtpout.pc | head -n 1)
check "smtpout.pc is installed" test -n "$pc"
export PKG_CONFIG_PATH=$(dirname "${pc:-/nonexistent}")
export PKG_CONFIG_SYSROOT_DIR=$dest
# pkgconf prefixes path variables with the sysroot; pkg-config does not.
libdir=$(pkg-config --variable=libdir smtpout)
libdir=${libdir#"$dest"}
includedir=$(pkg-config --variable=includedir smtpout)
includedir=${includedir#"$dest"}
check "pkg-config --modversion matches the library" \
  test "$(pkg-config --modversion smtpout)" = "$(meson introspect "$build" --projectinfo |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
check "the installed headers are the umbrella and the topic headers" \
  test -f "$dest$includedir/smtpout/smtpout.h" -a \
    -f "$dest$includedir/smtpout/session.h" -a \
    -f "$dest$includedir/smtpout/message.h"
check "build with \$(pkg-config --cflags --libs smtpout)" \
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/outside" "$src" \
    $(pkg-config --cflags --libs smtpout)
check "the installed library has no RUNPATH" \
  bash -c "! readelf -d '$dest$libdir/libsmtpout.so.0' | grep -q 'R.*PATH'"
run() {
  LD_LIBRARY_PATH=$dest$libdir "$tmp/outside" >"$tmp/out" || return 1
  cat "$tmp/out"
  grep -qx "library $dest$libdir/libsmtpout.so.0" "$tmp/out"
}
check "the program runs a session against the installed library" run
# The static archive: only smtpout_* may be global in it, so a program
# linking it statically cannot clash with the library's internal names.
static_globals() {
  local extra
  extra=$(nm -g --defined-only "$dest$libdir/libsmtpout.a" |
    awk 'NF == 3 && $3 !~ /^smtpout_/ {print $3}')
  [ -z "$extra" ] || { echo "non-API globals: $extra"; return 1; }
  nm -g --defined-only "$dest$libdir/libsmtpout.a" | grep -q " T smtpout_session_new$"
}
check "libsmtpout.a defines only smtpout_* globals" static_globals
# smtpout linked statically, its dependencies shared: pkg-config --static
# --libs must name only libraries Debian's -dev packages provide (its
# Libs.private, never the unistring and the like of their own .pc files),
# and a program must link libsmtpout.a with them, as docs/building.md says.
static_libs=$(pkg-config --static --libs smtpout)
link_each() { # every -lNAME links on its own
  local flag
  for flag in "$@"; do
    case $flag in -l*) ;; *) continue ;; esac
    [ "$flag" = -lsmtpout ] && continue
    echo 'int main(void) { return 0; }' |
      cc -x c - -o "$tmp/link-test" "$flag" ||
      { echo "cannot link $flag"; return 1; }
  done
}
check "pkg-config --static --libs names only installed libraries" \
  link_each $static_libs
check "build with libsmtpout.a and pkg-config --static --libs" \
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/outside-static" "$src" \
    $(pkg-config --cflags smtpout) ${static_libs/-lsmtpout/-l:libsmtpout.a}
run_static() {
  "$tmp/outside-static" >"$tmp/out-static" || return 1
  ! grep -q "libsmtpout.so" "$tmp/out-static"
}
check "the static program runs without libsmtpout.so" run_static
# The manual pages: installed in MANDIR/man1, and man finds and renders
# them there ("man smtpout-send" after an install).
man_ok() {
  local page dir
  page=$(find "$dest" -path '*/man1/smtpout-send.1' | head -n 1)
  [ -n "$page" ] || { echo "no man1/smtpout-send.1 under $dest"; return 1; }
  dir=$(dirname "$(dirname "$page")")
  for t in smtpout-send smtpout-policy smtpout-tlsrpt smtpout-bench; do
    MANWIDTH=80 man -M "$dir" "$t" 2>&1 | grep -q "^${t^^}(1)" ||
      { echo "man -M $dir $t"; return 1; }
  done
}
check "man -M MANDIR smtpout-send (and the others) finds the pages" man_ok
echo "1..$n"
[ "$failed" -eq 0 ]
