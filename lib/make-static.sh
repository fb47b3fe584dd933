#!/bin/sh
# Builds the installed static archive from the internal one: every object
# is linked into a single relocatable object whose hidden symbols are then
# made local.  A program linking libsmtpout.a statically sees only the
# smtpout_* API, as with the shared library, and its own buf_append or
# name_normalize cannot clash with the library's.
#
#   make-static.sh LD OBJCOPY AR INPUT.a OUTPUT.a
set -eu
ld=$1 objcopy=$2 ar=$3 in=$4 out=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# ld reads meson's thin archives itself; ar x cannot.
"$ld" -r -o "$tmp/smtpout.o" --whole-archive "$in"
"$objcopy" --localize-hidden "$tmp/smtpout.o"
rm -f "$out"
"$ar" rcs "$out" "$tmp/smtpout.o"
