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
# smtpout linked statically; its dependencies shared: the Requires.private
# of smtpout.pc (libcurl too when built with it), and the Libs.private of
# optional ones such as libunbound.
requires_private=$(pkg-config --print-requires-private smtpout |
  awk '{print $1}')
libs_private=$(sed -n 's/^Libs.private: //p' \
  "$dest$libdir/pkgconfig/smtpout.pc")
check "build with libsmtpout.a and the shared dependencies" \
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/outside-static" "$src" \
    $(pkg-config --cflags smtpout) "$dest$libdir/libsmtpout.a" \
    $(pkg-config --libs $requires_private) $libs_private -pthread -ldl
run_static() {
  "$tmp/outside-static" >"$tmp/out-static" || return 1
  ! grep -q "libsmtpout.so" "$tmp/out-static"
}
check "the static program runs without libsmtpout.so" run_static
echo "1..$n"
[ "$failed" -eq 0 ]
