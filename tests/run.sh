#!/usr/bin/env bash
# The test command.  On a fresh Debian 12 machine (as root) it installs what
# the build and the tests need, builds with warnings as errors, runs every
# test, and ends with the line "N passed, N failed" (test cases, counted
# from the TAP each test prints).  Exit status 0 only when nothing failed.
#
#   bash tests/run.sh            # from the top of the source tree
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"
builddir=${SMTPOUT_TEST_BUILDDIR:-build-test}

. tests/deps.sh
smtpout_install_deps || exit 1

echo "== build ($builddir)"
if [ -d "$builddir" ]; then
  meson setup --wipe "$builddir" -Dwerror=true >/dev/null || exit 1
else
  meson setup "$builddir" -Dwerror=true >/dev/null || exit 1
fi
ninja -C "$builddir" || exit 1

echo "== tests"
meson test -C "$builddir" --print-errorlogs
status=$?

/usr/bin/python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    ok_lines = re.findall(r"^(ok|not ok) \d+", t.get("stdout") or "", re.M)
    p = sum(1 for s in ok_lines if s == "ok")
    f = len(ok_lines) - p
    if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and f == 0:
        f = 1  # the test failed outside any test case (crash, timeout)
    if not ok_lines and t["result"] in ("OK", "EXPECTEDFAIL"):
        p = 1  # a test that does not speak TAP counts as one case
    if f:
        print("FAILED: %s (%s)" % (t["name"], t["result"]))
    passed += p
    failed += f
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
summary=$?
[ $status -eq 0 ] && [ $summary -eq 0 ]
