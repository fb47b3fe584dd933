#!/bin/bash
# smtpout as a meson subproject of an outside project, found with
# dependency('smtpout') (lib/meson.build calls meson.override_dependency):
#
#   subproject.sh SOURCE_DIR OUTSIDE.C
#
# The source tree (without tests and build directories) is copied into
# the outside project's subprojects/smtpout; --force-fallback-for makes
# meson use it even where an installed smtpout.pc exists.  Only the
# outside program and what it needs are built.  Prints TAP.
set -u
src=$(cd "$1" && pwd)
outside_c=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0 failed=0
check() {
  local name=$1
  shift
  n=$((n + 1))
  if out=$("$@" 2>&1); then
    echo "ok $n - $name"
  else
    echo "not ok $n - $name"
    failed=$((failed + 1))
    printf '%s\n' "$out" | tail -n 40 | sed 's/^/# /'
  fi
}

proj=$tmp/outside
mkdir -p "$proj/subprojects/smtpout"
cp -r "$src/meson.build" "$src/meson_options.txt" "$src/include" \
  "$src/lib" "$src/pkgconfig" "$src/examples" "$src/docs" \
  "$proj/subprojects/smtpout/"
cp "$outside_c" "$proj/outside.c"
cat >"$proj/meson.build" <<'MESON'
project('outside', 'c', default_options: ['c_std=c11', 'warning_level=2'])
smtpout_dep = dependency('smtpout', version: '>= 0.1',
                         default_options: ['tests=false'])
executable('outside', 'outside.c', dependencies: smtpout_dep)
MESON

check "meson setup with smtpout as a subproject" \
  meson setup "$tmp/build" "$proj" --force-fallback-for=smtpout -Dwerror=true
check "build the outside program (and the library it needs)" \
  ninja -C "$tmp/build" outside
run() {
  "$tmp/build/outside" >"$tmp/out" || return 1
  cat "$tmp/out"
  grep -q "^library $tmp/build/subprojects/smtpout/" "$tmp/out"
}
check "the program runs against the subproject's library" run
echo "1..$n"
[ "$failed" -eq 0 ]
