#!/usr/bin/env bash
# The main job, end to end, on a fresh Debian 12 machine (as root):
# installs what is missing (the build tools and libraries, certtool,
# Debian's Python with aiosmtpd: tests/deps.sh, never a mail server),
# builds smtpout, makes a test CA and a server
# certificate with certtool, starts a real SMTP server (Debian's aiosmtpd)
# with STARTTLS on loopback, and delivers a message to it with smtpout-send
# under the shipped example policy (examples/policy.ini: test.example
# requires TLS), printing the JSON outcome and what the server stored.
#
#   bash examples/demo.sh
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
. tests/deps.sh
smtpout_install_deps demo

# quiet CMD...: CMD's output only when it fails (then the demo stops).
quiet() {
  local log rc=0
  log=$(mktemp)
  "$@" >"$log" 2>&1 || rc=$?
  [ $rc -eq 0 ] || cat "$log" >&2
  rm -f "$log"
  return $rc
}

builddir=build-demo
[ -d "$builddir" ] || quiet meson setup "$builddir"
quiet ninja -C "$builddir"

work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

bash tests/certs/mkcerts.sh --no-ocsp "$work/certs" >/dev/null
mkdir "$work/spool"
/usr/bin/python3 tests/servers/aiosmtpd-sink.py --spool "$work/spool" \
  --tls-cert "$work/certs/valid.pem" --tls-key "$work/certs/valid.key" \
  > "$work/server.out" 2>"$work/server.err" &
server=$!
for _ in $(seq 100); do
  grep -q '^PORT' "$work/server.out" 2>/dev/null && break
  sleep 0.1
done
port=$(awk '/^PORT/ {print $2}' "$work/server.out")
[ -n "$port" ] || { cat "$work/server.err" >&2; exit 1; }

printf 'From: demo@sender.example\nTo: rcpt@test.example\nSubject: smtpout demo\n\nHello from smtpout.\n' \
  > "$work/message.txt"

echo "== smtpout-send to aiosmtpd on 127.0.0.1:$port (MX mx.test.example), policy examples/policy.ini"
set +e
"$builddir/examples/tools/smtpout-send" --server "127.0.0.1:$port" \
  --mx-name mx.test.example --config examples/policy.ini \
  --ca-file "$work/certs/ca.pem" --from demo@sender.example \
  --to rcpt@test.example --data "$work/message.txt" --json
status=$?
set -e
echo "== smtpout-send exit status: $status"
echo "== the server stored:"
cat "$work/spool/1.json" 2>/dev/null && echo || echo "(nothing)"
exit $status
