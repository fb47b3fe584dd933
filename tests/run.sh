#!/usr/bin/env bash
# The test command.  On a fresh Debian 12 machine (as root) it installs what
# the build and the tests need (tests/deps.sh; never a mail server: the
# tests unpack a private copy of Debian's postfix package into each build
# directory instead, tests/servers/postfix-unpack.sh), then runs the suite
# four ways:
#
#   1. a normal build with warnings as errors ($SMTPOUT_TEST_BUILDDIR,
#      default build-test): every test;
#   2. the tests of smtpout-send (meson suite "cli") again from that build
#      under valgrind memcheck, failing on any error or leak;
#   3. a build without any optional library (-Dcurl, -Dunbound and -Dgsasl
#      disabled: what a machine with only the demo's packages builds,
#      build-min): it must build with warnings as errors, and its unit
#      tests pass;
#   4. a build with AddressSanitizer and UndefinedBehaviorSanitizer
#      ($SMTPOUT_TEST_SANITIZE_BUILDDIR, default build-asan): every test,
#      with any sanitizer report fatal; built with clang when it can link
#      libFuzzer, and then also a short smoke run of each fuzz target (meson
#      suite "fuzz"), else with gcc.
#
# It ends with the line "N passed, N failed": test cases over the four
# runs, counted from the TAP each test prints.  Exit status 0 only when
# nothing failed.  SMTPOUT_TEST_QUICK=1 runs only the first.
#
#   bash tests/run.sh            # from the top of the source tree
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
builddir=${SMTPOUT_TEST_BUILDDIR:-build-test}
sanbuild=${SMTPOUT_TEST_SANITIZE_BUILDDIR:-build-asan}
minbuild=${SMTPOUT_TEST_MIN_BUILDDIR:-build-min}
quick=${SMTPOUT_TEST_QUICK:-0}
start=$SECONDS

. tests/deps.sh
smtpout_install_deps test || exit 1

# setup DIR OPTIONS...: a fresh meson build directory.
setup() {
  local dir=$1 log rc=0
  shift
  log=$(mktemp)
  if [ -d "$dir" ]; then
    meson setup --wipe "$dir" "$@" >"$log" 2>&1 || rc=$?
  else
    meson setup "$dir" "$@" >"$log" 2>&1 || rc=$?
  fi
  [ $rc -eq 0 ] || cat "$log"
  rm -f "$log"
  return $rc
}

status=0
logs=()

# postfix BUILDDIR: the private Postfix the tests run, unpacked now (the
# tests would on first use) so that a missing network or library stops
# the run at once, with its reason.
postfix() {
  bash tests/servers/postfix-unpack.sh "$1/postfix"
}

echo "== 1. build ($builddir) and test"
setup "$builddir" -Dwerror=true || exit 1
ninja -C "$builddir" || exit 1
postfix "$builddir" || exit 1
meson test -C "$builddir" --print-errorlogs || status=1
logs+=("normal build=$builddir/meson-logs/testlog.json")

if [ "$quick" != 1 ]; then
  echo "== 2. smtpout-send's tests under valgrind memcheck ($builddir)"
  meson test -C "$builddir" --setup valgrind --suite cli --print-errorlogs ||
    status=1
  logs+=("valgrind=$builddir/meson-logs/testlog-valgrind.json")

  echo "== 3. build ($minbuild, no optional library) and unit tests"
  if setup "$minbuild" -Dwerror=true -Dcurl=disabled -Dunbound=disabled \
       -Dgsasl=disabled && ninja -C "$minbuild"; then
    meson test -C "$minbuild" --suite unit --print-errorlogs || status=1
    logs+=("no optional library=$minbuild/meson-logs/testlog.json")
  else
    echo "FAILED: the build without optional libraries"
    status=1
    logs+=("no optional library=")
  fi

  # clang with libFuzzer (Debian's libclang-rt-14-dev) also builds the fuzz
  # targets; the sanitizer runtimes then live in the executables, so the
  # shared library links with -Db_lundef=false.
  cc=gcc
  fuzz=(-Dfuzzers=false)
  if command -v clang >/dev/null &&
     echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)
           { (void)d; (void)n; return 0; }' |
       clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
    cc=clang
    fuzz=(-Dfuzzers=true -Dc_args=-fsanitize=fuzzer-no-link)
  fi
  echo "== 4. build ($sanbuild, $cc, ASan+UBSan) and test"
  if CC=$cc setup "$sanbuild" -Dwerror=true -Db_sanitize=address,undefined \
       -Db_lundef=false "${fuzz[@]}" && ninja -C "$sanbuild" &&
     postfix "$sanbuild"; then
    # Any report is fatal and fails the test that caused it; leaks too.
    ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
      meson test -C "$sanbuild" --print-errorlogs || status=1
    logs+=("sanitizers ($cc)=$sanbuild/meson-logs/testlog.json")
  else
    echo "FAILED: the sanitizer build"
    status=1
    logs+=("sanitizers ($cc)=")
  fi
fi

echo "== test cases (tests/run.sh took $((SECONDS - start)) s)"
/usr/bin/python3 - "${logs[@]}" <<'PY'
import json, os, re, sys
total_p = total_f = 0
for arg in sys.argv[1:]:
    name, path = arg.split("=", 1)
    passed = failed = 0
    if not path or not os.path.exists(path):
        failed = 1  # the run could not happen (build failure)
    else:
        for line in open(path):
            t = json.loads(line)
            ok_lines = re.findall(r"^(ok|not ok) \d+", t.get("stdout") or "",
                                  re.M)
            p = sum(1 for s in ok_lines if s == "ok")
            f = len(ok_lines) - p
            if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and f == 0:
                f = 1  # the test failed outside any test case (crash, timeout)
            if not ok_lines and t["result"] in ("OK", "EXPECTEDFAIL"):
                p = 1  # a test that does not speak TAP counts as one case
            if f:
                print("FAILED: %s: %s (%s)" % (name, t["name"], t["result"]))
            passed += p
            failed += f
    print("  %-20s %5d ok, %d not ok" % (name, passed, failed))
    total_p += passed
    total_f += failed
print("%d passed, %d failed" % (total_p, total_f))
sys.exit(1 if total_f else 0)
PY
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
