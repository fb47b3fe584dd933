#!/usr/bin/env bash
# Fuzz smoke test: runs the libFuzzer target FUZZER over its seed corpus,
# then RUNS mutations of it with a fixed seed.  New inputs go to a
# temporary directory, never into the source tree.  Exit status: the
# fuzzer's (non-zero on a crash, a leak, a sanitizer report, an input
# running over 10 s or a process over 1 GiB).
#
#   tests/fuzz/smoke.sh FUZZER CORPUS_DIR RUNS
set -euo pipefail
fuzzer=$(realpath "$1") corpus=$(realpath "$2") runs=$3
# Any sanitizer report fails the run (the suite sets these too).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/smtpout-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"   # crash-*/leak-* artefacts land here, and are printed below
status=0
# The target's dictionary, if it has one: tests/fuzz/TARGET.dict for the
# corpus tests/fuzz/corpus/TARGET.
dict=()
dictfile=$(dirname "$(dirname "$corpus")")/$(basename "$corpus").dict
[ -f "$dictfile" ] && dict=(-dict="$dictfile")
"$fuzzer" -seed=1 -runs="$runs" -timeout=10 -rss_limit_mb=1024 \
  -max_len=4096 -print_final_stats=1 "${dict[@]}" "$tmp" "$corpus" ||
  status=$?
for f in "$tmp"/crash-* "$tmp"/leak-* "$tmp"/timeout-* "$tmp"/oom-*; do
  [ -e "$f" ] || continue
  echo "== $(basename "$f") (base64):"
  base64 -w 76 "$f"
done
exit $status
