#!/usr/bin/env bash
# The latency lab: wall time per message in round trips, over a link that
# delays every packet, against Postfix's smtpd.
#
#   bash tests/bench/latency-lab.sh [--delay MS] [--rounds N] [--quick]
#                                   [--out DIR]
#
# Needs root (network namespaces).  Two namespaces of its own, a client's
# and a server's, are joined by tests/bench/delaylink (two TUN devices,
# 10.77.0.1 and 10.77.0.2, each packet held MS milliseconds, default 10:
# 20 ms round trip; this kernel has no netem).  In the server namespace run
# a Postfix smtpd from tests/servers/postfix.py (PIPELINING, CHUNKING,
# STARTTLS with the test PKI's mx.test.example certificate) and
# tests/faultsrv (STARTTLS, CHUNKING, no session tickets, TCP_NODELAY: a
# server that never holds a reply back).  Both listen on 127.0.0.1 of the server
# namespace as they do on a test machine; the client namespace reaches
# that address over the link (a host route with route_localnet on both
# ends), so the servers run unchanged.
#
# Clients, each with the same envelope (a@client.example to
# r@test.example) and a message of smtp-source's shape: smtpout-bench,
# Postfix's smtp-source (no STARTTLS) and Python's smtplib
# (tests/bench/clients.py); plaintext and STARTTLS, a new connection per
# message and one connection for all.  A new-connection figure is wall time
# / messages; a reused-connection figure is the slope between a short and
# a long run, so the connection's set-up is not spread over the messages.
# The round trip is measured (a connection refused across the link), and
# every figure is given in milliseconds and in round trips.  Raw figures
# land in DIR/lab.tsv.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
delay=10
rounds=3
quick=0
out=
while [ $# -gt 0 ]; do
  case $1 in
    --delay) delay=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; rounds=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--delay MS] [--rounds N] [--quick] [--out DIR]" >&2
       exit 64 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "latency lab: needs root (network namespaces); skipped" >&2
  exit 0
fi

builddir=${SMTPOUT_BENCH_BUILDDIR:-build-bench}
if [ ! -d "$builddir" ]; then
  meson setup "$builddir" >/dev/null
fi
ninja -C "$builddir" >/dev/null
# Postfix (smtpd through lab-postfix.py, and smtp-source) is the tests'
# private copy of Debian's package, never a system postfix
# (tests/servers/postfix-unpack.sh); postfix.py finds it through the
# environment.
bash tests/servers/postfix-unpack.sh "$builddir/postfix"
SMTPOUT_POSTFIX_DIR=$(cd "$builddir" && pwd)/postfix
export SMTPOUT_POSTFIX_DIR
smtp_source=(env LD_LIBRARY_PATH="$SMTPOUT_POSTFIX_DIR/root/usr/lib/postfix"
             "$SMTPOUT_POSTFIX_DIR/root/usr/sbin/smtp-source")
bench=$builddir/examples/bench/smtpout-bench
faultsrv=$builddir/tests/faultsrv
py=/usr/bin/python3
clients=tests/bench/clients.py

tmp=$(mktemp -d /tmp/smtpout-lab.XXXXXX)
chmod 755 "$tmp" # Postfix's own processes run as daemon (postfix.py)
out=${out:-$tmp}
mkdir -p "$out"
tsv=$out/lab.tsv
: >"$tsv"
cns=smtpout-lab-c$$
sns=smtpout-lab-s$$
pids=()
cleanup() {
  # SIGTERM: the Postfix helper stops Postfix.
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$cns" 2>/dev/null || true
  ip netns del "$sns" 2>/dev/null || true
  [ "$out" = "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (the
# servers print their port once they listen).
wait_line() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "latency lab: no '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

# --- the link ----------------------------------------------------------
ip netns add "$cns"
ip netns add "$sns"
"$builddir/tests/delaylink" -d "$delay" "$cns" lab0 "$sns" lab1 \
  >"$tmp/delaylink.out" &
pids+=($!)
wait_line "$tmp/delaylink.out" READY
ip -n "$cns" addr add 10.77.0.1/24 dev lab0
ip -n "$sns" addr add 10.77.0.2/24 dev lab1
ip -n "$cns" link set lab0 up
ip -n "$sns" link set lab1 up
ip -n "$sns" link set lo up
# The servers listen on the server namespace's 127.0.0.1: let packets to
# and from 127.0.0.1 cross the link (route_localnet), and route it there
# from the client namespace, whose own loopback stays down.
ip netns exec "$cns" sysctl -qw net.ipv4.conf.lab0.route_localnet=1
ip netns exec "$sns" sysctl -qw net.ipv4.conf.lab1.route_localnet=1
ip -n "$cns" route add 127.0.0.1/32 dev lab0 src 10.77.0.1
inc() { ip netns exec "$cns" "$@"; }

# --- the servers ---------------------------------------------------------
tests/certs/mkcerts.sh "$tmp/certs" >/dev/null
ca=$tmp/certs/ca.pem
mx=mx.test.example
ip netns exec "$sns" "$py" tests/bench/lab-postfix.py "$tmp/postfix" \
  "$tmp/certs/valid-chain.pem" "$tmp/certs/valid.key" \
  </dev/null >"$tmp/postfix.out" 2>&1 &
pf_pid=$!
pids+=($pf_pid)
wait_line "$tmp/postfix.out" '^PORT'
pf_port=$(sed -n 's/^PORT //p' "$tmp/postfix.out")
ip netns exec "$sns" "$faultsrv" --hostname "$mx" --chunking \
  --cert "$tmp/certs/valid-chain.pem" --key "$tmp/certs/valid.key" \
  >"$tmp/faultsrv.out" &
pids+=($!)
wait_line "$tmp/faultsrv.out" '^PORT'
fs_port=$(sed -n 's/^PORT //p' "$tmp/faultsrv.out")

# The round trip: a SYN to a closed port and the RST back, the median of
# 21.
rtt=$(inc "$py" - <<'EOF'
import socket, statistics, time
t = []
for _ in range(21):
    s = socket.socket()
    t0 = time.monotonic()
    try:
        s.connect(("127.0.0.1", 1))
    except ConnectionRefusedError:
        t.append(time.monotonic() - t0)
    s.close()
print("%.3f" % (statistics.median(t) * 1000))
EOF
)
echo "== latency lab: ${delay} ms each way, measured round trip ${rtt} ms;" \
  "Postfix $(postconf -dh mail_version 2>/dev/null || echo '?')"
printf 'rtt_ms\t%s\n' "$rtt" >"$out/lab-rtt"

if [ $quick -eq 1 ]; then nnew=5; nshort=3; nlong=10; else
  nnew=20; nshort=5; nlong=25; fi
env_args=(-f a@client.example -t r@test.example)
tls_args=(--starttls require --ca-file "$ca" --mx-name "$mx")

# lab ROUND CLIENT SERVER MODE N CLIENTS.PY-ARGS...: one run, one line of
# lab.tsv.
lab() {
  local round=$1 client=$2 server=$3 mode=$4 n=$5
  shift 5
  local line
  if ! line=$(inc "$py" "$clients" "$@" | grep '^RESULT'); then
    echo "FAILED: $client $mode to $server" >&2
    exit 1
  fi
  local wall
  wall=$(sed -n 's/.* wall=\([0-9.]*\).*/\1/p' <<<"$line")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$client" "$server" "$mode" \
    "$n" "$wall" >>"$tsv"
  printf '  round %s %-12s %-8s %-11s %3s messages: %7.3f s\n' "$round" \
    "$client" "$server" "$mode" "$n" "$wall"
}

# One client in one mode: a new connection per message (N messages), or
# one connection (a short and a long run).
each() {
  local round=$1 client=$2 server=$3 mode=$4
  shift 4
  case $mode in
    *-new) lab "$round" "$client" "$server" "$mode" "$nnew" \
             "${@//@N@/$nnew}" ;;
    *-reuse)
      lab "$round" "$client" "$server" "$mode" "$nshort" "${@//@N@/$nshort}"
      lab "$round" "$client" "$server" "$mode" "$nlong" "${@//@N@/$nlong}" ;;
  esac
}

pf=127.0.0.1:$pf_port
fs=127.0.0.1:$fs_port
for r in $(seq "$rounds"); do
  each "$r" smtpout postfix plain-new run @N@ "$bench" -q -s 1 -m @N@ \
    --starttls disable "${env_args[@]}" "$pf"
  each "$r" smtpout postfix plain-reuse run @N@ "$bench" -q -s 1 -d -m @N@ \
    --starttls disable "${env_args[@]}" "$pf"
  each "$r" smtpout postfix tls-new run @N@ "$bench" -q -s 1 -m @N@ \
    "${tls_args[@]}" "${env_args[@]}" "$pf"
  each "$r" smtpout postfix tls-reuse run @N@ "$bench" -q -s 1 -d -m @N@ \
    "${tls_args[@]}" "${env_args[@]}" "$pf"
  # The same with DATA: Postfix offers CHUNKING, so the runs above send
  # BDAT; these show the round trip it saves.
  each "$r" smtpout-data postfix plain-new run @N@ "$bench" -q -s 1 -m @N@ \
    --no-chunking --starttls disable "${env_args[@]}" "$pf"
  each "$r" smtpout-data postfix plain-reuse run @N@ "$bench" -q -s 1 -d \
    -m @N@ --no-chunking --starttls disable "${env_args[@]}" "$pf"
  each "$r" smtpout-data postfix tls-new run @N@ "$bench" -q -s 1 -m @N@ \
    --no-chunking "${tls_args[@]}" "${env_args[@]}" "$pf"
  each "$r" smtpout-data postfix tls-reuse run @N@ "$bench" -q -s 1 -d \
    -m @N@ --no-chunking "${tls_args[@]}" "${env_args[@]}" "$pf"
  each "$r" smtp-source postfix plain-new run @N@ "${smtp_source[@]}" \
    -s 1 -m @N@ "${env_args[@]}" "$pf"
  each "$r" smtp-source postfix plain-reuse run @N@ "${smtp_source[@]}" \
    -s 1 -d -m @N@ "${env_args[@]}" "$pf"
  for m in plain-new plain-reuse tls-new tls-reuse; do
    extra=()
    case $m in plain-*) extra+=(--plain) ;; esac
    case $m in *-reuse) extra+=(reuse) ;; esac
    each "$r" smtplib postfix "$m" smtplib @N@ 127.0.0.1 "$pf_port" "$ca" \
      "$mx" "${extra[@]}" --from a@client.example --to r@test.example
  done
  each "$r" smtpout faultsrv tls-new run @N@ "$bench" -q -s 1 -m @N@ \
    "${tls_args[@]}" "${env_args[@]}" "$fs"
  each "$r" smtpout faultsrv tls-reuse run @N@ "$bench" -q -s 1 -d -m @N@ \
    "${tls_args[@]}" "${env_args[@]}" "$fs"
  each "$r" smtpout-data faultsrv tls-new run @N@ "$bench" -q -s 1 -m @N@ \
    --no-chunking "${tls_args[@]}" "${env_args[@]}" "$fs"
  each "$r" smtpout-data faultsrv tls-reuse run @N@ "$bench" -q -s 1 -d \
    -m @N@ --no-chunking "${tls_args[@]}" "${env_args[@]}" "$fs"
  each "$r" smtplib faultsrv tls-new smtplib @N@ 127.0.0.1 "$fs_port" "$ca" \
    "$mx" --from a@client.example --to r@test.example
done

# Stop Postfix: its helper then prints smtpd's command counters, one line
# per connection (the commands each client sent).
kill "$pf_pid"
wait "$pf_pid" || true
grep '^SESSION' "$tmp/postfix.out" | sort | uniq -c | sort -rn \
  >"$out/lab-postfix-sessions" || true

echo "== Postfix smtpd's command counters (connections: commands)"
cat "$out/lab-postfix-sessions"
echo "== round trips per message (medians of $rounds rounds; RTT ${rtt} ms)"
"$py" tests/bench/lab-summary.py "$tsv" "$rtt"
echo "raw figures: $tsv"
