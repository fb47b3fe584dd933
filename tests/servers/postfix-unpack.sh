#!/bin/bash
# postfix-unpack.sh DIR -- Debian's postfix package unpacked into DIR/root,
# never installed.
#
# The tests need Postfix's programs: master and smtpd (tests/servers/
# postfix.py), smtp-sink and smtp-source (tests/integration/testlib.py,
# tests/bench/run.sh).  Installing the postfix package is not an option:
# it conflicts with every other mail server (exim4, opensmtpd, sendmail,
# ...), so apt would remove the machine's own MTA, and it would configure a
# system mail server besides.  So every machine runs the same private copy,
# whether or not a system postfix exists: `apt-get download` (which needs no
# root) and `dpkg-deb -x`.  postfix.py points it at its own directories.
# The shared libraries it links (`apt-cache depends postfix`: libdb5.3,
# libicu72, libnsl2, libsasl2-2, libssl3) are ordinary packages, which
# tests/deps.sh installs.
#
# Idempotent, and safe to run concurrently (flock): the first caller
# unpacks, the others wait.  Silent on success; on failure, exit 1 with
# one line on stderr saying why.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 64
fi
dir=$1
root=$dir/root
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9

if [ ! -x "$root/usr/sbin/postfix" ]; then
    tmp=$(mktemp -d "$dir/.unpack.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # As root, apt downloads as its sandbox user _apt, which must be able
    # to write here.
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
        chown _apt "$tmp"
    fi
    if ! (cd "$tmp" && apt-get download -q postfix) >"$tmp/log" 2>&1; then
        echo "postfix-unpack.sh: 'apt-get download postfix' failed" \
             "(network, or no apt lists: apt-get update):" \
             "$(grep -v '^W:' "$tmp/log" | tail -1)" >&2
        exit 1
    fi
    dpkg-deb -x "$tmp"/postfix_*.deb "$tmp/root"
    dpkg-deb -f "$tmp"/postfix_*.deb Version >"$tmp/root/VERSION"
    rm -rf "$root"
    mv "$tmp/root" "$root"
fi

# Every library the programs the tests run need must be there.
lib=$root/usr/lib/postfix
missing=$(for p in "$lib/sbin/master" "$lib/sbin/smtpd" "$lib/sbin/virtual" \
                   "$root/usr/sbin/postfix" "$root/usr/sbin/smtp-sink" \
                   "$root/usr/sbin/smtp-source"; do
              LD_LIBRARY_PATH=$lib ldd "$p"
          done | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p' |
          sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
    echo "postfix-unpack.sh: the private Postfix in $root lacks libraries:" \
         "${missing% } (install the packages tests/deps.sh lists)" >&2
    exit 1
fi
