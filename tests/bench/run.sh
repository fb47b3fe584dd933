#!/usr/bin/env bash
# The benchmark run behind docs/performance.md, in one command:
#
#   bash tests/bench/run.sh [--rounds N] [--quick] [--out DIR] [--section N]...
#
#  1. plaintext to Postfix smtp-sink: smtpout-bench against smtp-source with
#     the same arguments, alternated, at -s 1 -m 3000, -s 20 -m 10000 and
#     -s 20 -m 20000 -d;
#  2. STARTTLS with verification, a full handshake per message, to the
#     faultsrv TLS sink: smtpout-bench against Python smtplib, msmtp, swaks
#     and tls-floor (the bare GnuTLS floor); then the same with one
#     connection for every message (-d), and with TLS session resumption
#     (a faultsrv that issues tickets);
#  3. memory per idle session, 10,000 concurrent sessions in one thread,
#     plaintext and STARTTLS, fresh and after one message each (faultsrv:
#     smtp-sink slows down quadratically with thousands of connections);
#  4. the policy engine with a 1M-line map (policy-bench);
#  5. STARTTLS to a real Postfix smtpd on loopback (tests/servers/postfix.py,
#     so root): smtpout-bench at -s 1 and -s 4 against Python smtplib, a
#     new connection per message and one connection for all;
#  6. the latency lab (tests/bench/latency-lab.sh, root): round trips per
#     message over a link that delays every packet, smtpout-bench against
#     smtp-source and smtplib;
#  7. the soak under faults (tests/bench/soak.py): 100,000 messages through
#     soak-host (a queue with retries driving smtpout sessions from one
#     epoll loop, 100 connections at a time) against faultsrv --soak; every
#     result checked against what the server stored, descriptors counted,
#     and the RSS slope held under 100 KiB per 10,000 attempts;
#  8. user-space instructions per STARTTLS message (valgrind's callgrind,
#     exact whatever the load): smtpout-bench against tls-floor and Python
#     smtplib, a full handshake per message and one connection for all.
#
# Each client run is measured from outside (tests/bench/clients.py: wall
# time, and user + system CPU from wait4), rounds alternate the order of the
# clients, and the summary gives medians and ratios.  Nothing here passes or
# fails on timing: the exit status is non-zero only when a client failed to
# deliver, or the soak found a message lost, doubled unflagged or misreported,
# a descriptor left open, or a growing RSS.  Raw figures land in DIR/results.tsv (default: a temporary
# directory, printed at the end).  --section (repeatable) runs only the
# numbered parts.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$top"
rounds=5
quick=0
out=
sections=
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --quick) quick=1; rounds=1; shift ;;
    --out) out=$2; shift 2 ;;
    --section) sections="$sections $2"; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--quick] [--out DIR] [--section N]..." >&2; exit 64 ;;
  esac
done
# want N: whether part N runs.
want() {
  [ -z "$sections" ] && return 0
  case " $sections " in *" $1 "*) return 0 ;; esac
  return 1
}

. tests/deps.sh
smtpout_install_deps bench || exit 1

builddir=${SMTPOUT_BENCH_BUILDDIR:-build-bench}
if [ ! -d "$builddir" ]; then
  meson setup "$builddir" >/dev/null
fi
ninja -C "$builddir" >/dev/null
# Postfix's smtp-sink and smtp-source: the tests' private copy of Debian's
# package (tests/servers/postfix-unpack.sh), never a system postfix.
# postfix.py (section 5, the latency lab) finds it through the
# environment.
bash tests/servers/postfix-unpack.sh "$builddir/postfix"
SMTPOUT_POSTFIX_DIR=$(cd "$builddir" && pwd)/postfix
export SMTPOUT_POSTFIX_DIR
pfx=$SMTPOUT_POSTFIX_DIR/root
pfx_env=(env LD_LIBRARY_PATH="$pfx/usr/lib/postfix")

bench=$builddir/examples/bench/smtpout-bench
floor=$builddir/tests/tls-floor
faultsrv=$builddir/tests/faultsrv
clients=tests/bench/clients.py
py=/usr/bin/python3

tmp=$(mktemp -d /tmp/smtpout-bench.XXXXXX)
out=${out:-$tmp}
mkdir -p "$out"
results=$out/results.tsv
: >"$results"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Ten thousand sessions need ten thousand descriptors on each side.
ulimit -n "$(ulimit -Hn)"

free_port() {
  $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    if $py -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "nothing listens on port $1" >&2
  exit 1
}

# measure SECTION SETTING CLIENT ROUND MODE N ARGS...: one client run, one
# line of results.tsv.
measure() {
  local section=$1 setting=$2 client=$3 round=$4 mode=$5 n=$6
  shift 6
  local line
  if ! line=$($py "$clients" "$mode" "$n" "$@" | grep '^RESULT'); then
    echo "FAILED: $client ($setting)" >&2
    exit 1
  fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$section" "$setting" "$client" "$round" \
    "${line#RESULT }" >>"$results"
  printf '  %-10s %-22s %-13s round %s: %s\n' "$section" "$setting" "$client" \
    "$round" "${line#RESULT }"
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'load_start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >"$out/load"

# ---------------------------------------------------------------------
if want 1; then
echo "== 1. plaintext: smtpout-bench vs smtp-source, to smtp-sink"
sink_port=$(free_port)
sink_user=()
[ "$(id -u)" -eq 0 ] && sink_user=(-u nobody)
"${pfx_env[@]}" "$pfx/usr/sbin/smtp-sink" "${sink_user[@]}" "127.0.0.1:$sink_port" 4096 &
pids+=($!)
wait_port "$sink_port"
sink=127.0.0.1:$sink_port

if [ $quick -eq 1 ]; then
  plain_settings=("-s 1 -m 300" "-s 20 -m 1000" "-s 20 -m 2000 -d")
else
  plain_settings=("-s 1 -m 3000" "-s 20 -m 10000" "-s 20 -m 20000 -d")
fi
for r in $(seq "$rounds"); do
  for setting in "${plain_settings[@]}"; do
    read -ra args <<<"$setting"
    n=${args[3]}
    # Alternate who goes first, so that a trend in the machine's load
    # does not favour one client.
    if [ $((r % 2)) -eq 1 ]; then order=(smtpout smtp-source); else order=(smtp-source smtpout); fi
    for c in "${order[@]}"; do
      if [ "$c" = smtpout ]; then
        measure plain "$setting" smtpout "$r" run "$n" "$bench" -q "${args[@]}" "$sink"
      else
        measure plain "$setting" smtp-source "$r" run "$n" "${pfx_env[@]}" \
          "$pfx/usr/sbin/smtp-source" "${args[@]}" "$sink"
      fi
    done
  done
done

fi

# ---------------------------------------------------------------------
# Parts 2 and 3 share the faultsrv sinks.
echo "== 2. STARTTLS, verified, to the faultsrv TLS sink"
tests/certs/mkcerts.sh "$tmp/certs" >/dev/null
ca=$tmp/certs/ca.pem
mx=mx.test.example
# start_faultsrv NAME ARGS...: a faultsrv on an ephemeral port; sets $port.
start_faultsrv() {
  local name=$1
  shift
  "$faultsrv" --hostname "$mx" "$@" >"$tmp/$name.out" &
  pids+=($!)
  for _ in $(seq 100); do grep -q '^PORT' "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
  port=$(sed -n 's/^PORT //p' "$tmp/$name.out")
}
tls_cert=(--cert "$tmp/certs/valid-chain.pem" --key "$tmp/certs/valid.key")
start_faultsrv tls "${tls_cert[@]}"
tls_port=$port
tsink=127.0.0.1:$tls_port
start_faultsrv tickets "${tls_cert[@]}" --tickets
ticket_sink=127.0.0.1:$port
start_faultsrv plain
plain_fsink=127.0.0.1:$port
printf 'From: <foo@vm>\r\nTo: <foo@vm>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-Id: <0001.0002.0003@vm>\r\n\r\nLa de da de da 1.\r\nLa de da de da 2.\r\nLa de da de da 3.\r\nLa de da de da 4.\r\n' >"$tmp/message"

if [ $quick -eq 1 ]; then nt=100; ns=20; nw=5; nd=1000; else nt=1000; ns=200; nw=30; nd=10000; fi
tls_rounds=$(( rounds < 3 ? rounds : 3 ))
want 2 || tls_rounds=0
tls_bench=("$bench" -q --starttls require --ca-file "$ca" --mx-name "$mx" -M vm -f foo@vm -t foo@vm)
for r in $(seq "$tls_rounds"); do
  measure tls full smtpout "$r" run "$nt" "${tls_bench[@]}" -s 1 -m "$nt" "$tsink"
  measure tls full tls-floor "$r" run "$nt" "$floor" -m "$nt" --ca-file "$ca" --mx-name "$mx" "$tsink"
  measure tls full smtplib "$r" smtplib "$ns" 127.0.0.1 "$tls_port" "$ca" "$mx"
  measure tls full msmtp "$r" spawn "$ns" "$tmp/message" msmtp --host=127.0.0.1 \
    --port="$tls_port" --tls=on --tls-starttls=on --tls-trust-file="$ca" \
    --tls-host-override="$mx" --auth=off --domain=vm --from=foo@vm foo@vm
  measure tls full swaks "$r" spawn "$nw" "$tmp/message" swaks --server "$tsink" \
    --tls --tls-verify --tls-ca-path "$ca" --tls-sni "$mx" --helo vm \
    --from foo@vm --to foo@vm --data - --silent 2
  measure tls full-s4 smtpout "$r" run "$nt" "${tls_bench[@]}" -s 4 -m "$nt" "$tsink"
  measure tls handshake-only tls-floor "$r" run "$nt" "$floor" -H -m "$nt" --ca-file "$ca" --mx-name "$mx" "$tsink"
done
for r in $(seq "$tls_rounds"); do
  measure tls reuse smtpout "$r" run "$nd" "${tls_bench[@]}" -s 1 -d -m "$nd" "$tsink"
  measure tls reuse tls-floor "$r" run "$nd" "$floor" -d -m "$nd" --ca-file "$ca" --mx-name "$mx" "$tsink"
  measure tls reuse smtplib "$r" smtplib "$nd" 127.0.0.1 "$tls_port" "$ca" "$mx" reuse
done
for r in $(seq "$tls_rounds"); do
  measure tls resume smtpout "$r" run "$nt" "${tls_bench[@]}" --resume -s 1 -m "$nt" "$ticket_sink"
  measure tls resume-s4 smtpout "$r" run "$nt" "${tls_bench[@]}" --resume -s 4 -m "$nt" "$ticket_sink"
done

# ---------------------------------------------------------------------
if want 3; then
echo "== 3. memory per idle session"
if [ $quick -eq 1 ]; then nidle=1000; else nidle=10000; fi
for kind in fresh used; do
  "$bench" --idle="$kind" -s "$nidle" "$plain_fsink" | tee "$out/idle-plain-$kind.txt"
  "$bench" --idle="$kind" -s "$nidle" --starttls require --ca-file "$ca" \
    --mx-name "$mx" "$tsink" | tee "$out/idle-tls-$kind.txt"
done
fi

# ---------------------------------------------------------------------
if want 4; then
echo "== 4. policy engine, 1M-line map"
if [ $quick -eq 1 ]; then
  "$builddir/tests/policy-bench" -n 100000 -l 1000000 | tee "$out/policy.txt"
else
  "$builddir/tests/policy-bench" | tee "$out/policy.txt"
fi
fi

# ---------------------------------------------------------------------
if want 5; then
echo "== 5. STARTTLS to Postfix smtpd on loopback: smtpout-bench vs smtplib"
if [ "$(id -u)" -ne 0 ]; then
  echo "  skipped: Postfix's master must start as root"
else
  chmod 755 "$tmp" # Postfix's own processes run as daemon (postfix.py)
  $py tests/bench/lab-postfix.py "$tmp/postfix" "$tmp/certs/valid-chain.pem" \
    "$tmp/certs/valid.key" </dev/null >"$tmp/postfix.out" 2>&1 &
  pf_pid=$!
  pids+=($pf_pid)
  for _ in $(seq 600); do
    grep -q '^PORT' "$tmp/postfix.out" && break
    sleep 0.05
  done
  pf_port=$(sed -n 's/^PORT //p' "$tmp/postfix.out")
  [ -n "$pf_port" ] || { cat "$tmp/postfix.out" >&2; exit 1; }
  if [ $quick -eq 1 ]; then npf=50; npd=200; else npf=400; npd=2000; fi
  envelope=(-f a@client.example -t r@test.example)
  pf_bench=("$bench" -q --starttls require --ca-file "$ca" --mx-name "$mx"
            -M vm "${envelope[@]}")
  pf_lib=(127.0.0.1 "$pf_port" "$ca" "$mx" --from a@client.example
          --to r@test.example)
  for r in $(seq "$(( rounds < 3 ? rounds : 3 ))"); do
    measure postfix full smtpout "$r" run "$npf" "${pf_bench[@]}" -s 1 \
      -m "$npf" "127.0.0.1:$pf_port"
    measure postfix full-s4 smtpout "$r" run "$npf" "${pf_bench[@]}" -s 4 \
      -m "$npf" "127.0.0.1:$pf_port"
    measure postfix full smtplib "$r" smtplib "$npf" "${pf_lib[@]}"
    measure postfix reuse smtpout "$r" run "$npd" "${pf_bench[@]}" -s 1 -d \
      -m "$npd" "127.0.0.1:$pf_port"
    measure postfix reuse smtplib "$r" smtplib "$npd" "${pf_lib[@]}" reuse
  done
  kill "$pf_pid" # SIGTERM: the helper stops Postfix
  wait "$pf_pid" || true
fi
fi

# ---------------------------------------------------------------------
if want 6; then
echo "== 6. the latency lab"
lab_args=(--out "$out")
[ $quick -eq 1 ] && lab_args+=(--quick)
SMTPOUT_BENCH_BUILDDIR=$builddir bash tests/bench/latency-lab.sh \
  --rounds "$(( rounds < 3 ? rounds : 3 ))" "${lab_args[@]}"
fi

# ---------------------------------------------------------------------
if want 7; then
echo "== 7. the soak under faults: faultsrv --soak, soak-host"
# --quick: a tenth, and no RSS bound (too few samples to judge a slope).
soak_args=(--messages 100000 --rss-bound 100)
[ $quick -eq 1 ] && soak_args=(--messages 10000)
$py tests/bench/soak.py --build "$builddir" --concurrency 100 --seed 1 \
  --rate 10 --timeout 400 "${soak_args[@]}" --json "$out/soak.json" |
  grep -v '^#' | sed 's/^/  /'
fi

# ---------------------------------------------------------------------
if want 8; then
echo "== 8. instructions per STARTTLS message (callgrind), to the faultsrv TLS sink"
# CPU time on a shared machine moves by tens of percent; the instructions
# a process runs in user space do not.  Each client runs N and then 2N
# messages under callgrind: the difference over N is one message,
# start-up and the first contact's chain verification left out.  (The
# kernel's share, and how fast each instruction runs, are not in it: an
# interpreter's instructions are cheap ones, so against smtplib this is a
# count, not a CPU ratio.)
if ! command -v valgrind >/dev/null; then
  echo "  skipped: no valgrind"
else
  if [ $quick -eq 1 ]; then nr=200; nf=20; np=10; else nr=1000; nf=200; np=20; fi
  # instr CMD...: the instructions CMD ran, with @N@ in it replaced by N.
  instr() {
    local n=$1 a=()
    shift
    for x in "$@"; do a+=("${x//@N@/$n}"); done
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "${a[@]}" \
      2>&1 >/dev/null | sed -n 's/.*Collected : //p'
  }
  # per_msg SETTING CLIENT N CMD...: one line of instructions.tsv.
  per_msg() {
    local setting=$1 client=$2 n=$3 a b
    shift 3
    a=$(instr "$n" "$@")
    b=$(instr $((2 * n)) "$@")
    printf '%s\t%s\t%s\n' "$setting" "$client" $(((b - a) / n)) |
      tee -a "$out/instructions.tsv"
  }
  : >"$out/instructions.tsv"
  per_msg reuse smtpout "$nr" "${tls_bench[@]}" -s 1 -d -m @N@ "$tsink"
  per_msg reuse tls-floor "$nr" "$floor" -d -m @N@ --ca-file "$ca" \
    --mx-name "$mx" "$tsink"
  per_msg reuse smtplib "$nr" $py "$clients" smtplib @N@ 127.0.0.1 \
    "$tls_port" "$ca" "$mx" reuse
  per_msg full smtpout "$nf" "${tls_bench[@]}" -s 1 -m @N@ "$tsink"
  per_msg full tls-floor "$nf" "$floor" -m @N@ --ca-file "$ca" \
    --mx-name "$mx" "$tsink"
  per_msg full smtplib "$np" $py "$clients" smtplib @N@ 127.0.0.1 \
    "$tls_port" "$ca" "$mx"
  $py - "$out/instructions.tsv" <<'PY'
import sys
ir = {}
for line in open(sys.argv[1]):
    setting, client, n = line.split()
    ir[(setting, client)] = int(n)
for setting in ("reuse", "full"):
    s, f, p = (ir[(setting, c)] for c in ("smtpout", "tls-floor", "smtplib"))
    print("  %-6s smtpout %d, tls-floor %d, smtplib %d instructions per "
          "message: %.2f x the floor, %.2f x smtplib" %
          (setting, s, f, p, s / f, s / p))
PY
fi
fi

printf 'load_end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/load"
echo "== summary (medians of $rounds plaintext and $tls_rounds TLS rounds; load $(cut -f2 "$out/load" | paste -sd' ' | sed 's/ / -> /3'))"
$py tests/bench/summary.py "$results"
echo "raw figures: $results"
