#!/bin/bash
# deps-test.sh DEPS_SH -- what tests/deps.sh may install, checked without
# installing anything: its lists, and smtpout_install_deps() run against
# stand-ins for apt-get, apt-cache, dpkg-query and id that record what
# they were asked.  Prints TAP.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 DEPS_SH" >&2
    exit 64
fi
DEPS=$1
tmp=$(mktemp -d /tmp/smtpout-deps-test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; printf '#   %s\n' "$@"; }
# check DESC CMD...
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$desc"; else not_ok "$desc" "$out"; fi
}

# shellcheck source=deps.sh
. "$DEPS"

has() { # has LIST-NAME PACKAGE
    local -n list=$1
    local p
    for p in "${list[@]}"; do [ "$p" = "$2" ] && return 0; done
    echo "$1 lacks $2"
    return 1
}
lacks() {
    local -n list=$1
    local p
    for p in "${list[@]}"; do
        [ "$p" = "$2" ] && { echo "$1 has $2"; return 1; }
    done
    return 0
}

# ---- the lists -------------------------------------------------------------

for list in smtpout_demo_packages smtpout_test_packages smtpout_bench_packages; do
    for mta in postfix exim4 exim4-daemon-light opensmtpd sendmail msmtp-mta; do
        check "$list names no mail server ($mta)" lacks "$list" "$mta"
    done
done
# The demo: the build, certtool, aiosmtpd, and nothing only the tests use.
for p in meson ninja-build gcc libgnutls28-dev libidn2-dev libinih-dev \
         gnutls-bin python3-aiosmtpd; do
    check "the demo installs $p" has smtpout_demo_packages "$p"
done
for p in valgrind clang libclang-rt-14-dev swaks msmtp libicu72 openssl; do
    check "the demo does not install $p" lacks smtpout_demo_packages "$p"
done
# Recommends the tools need, and the private Postfix's libraries.
check "swaks comes with its TLS module" has smtpout_test_packages libnet-ssleay-perl
for p in libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3 openssl time; do
    check "the tests install $p" has smtpout_test_packages "$p"
done
check "the bench adds msmtp" has smtpout_bench_packages msmtp
for p in groff-base man-db; do
    check "the tests install $p (the manual pages)" has smtpout_test_packages "$p"
done
# Priority important, yet absent from a minbase system (found by running
# the test command in a fresh `mmdebstrap --variant=minbase bookworm`).
check "the build installs dpkg-dev (meson's multiarch libdir)" has smtpout_build_packages dpkg-dev
for p in iproute2 procps; do
    check "the tests install $p (ip, pgrep)" has smtpout_test_packages "$p"
done
for p in libhiredis-dev redis-server; do
    check "the tests install $p (the Redis store example)" has smtpout_test_packages "$p"
    check "the demo does not install $p" lacks smtpout_demo_packages "$p"
done

# ---- smtpout_install_deps against stand-ins --------------------------------

# stubs PLAN PROVIDES: a bin directory whose apt-get answers `-s install`
# with PLAN, whose apt-cache says every package provides PROVIDES (or
# nothing), where nothing is installed and we are root.  Every call is
# logged to $tmp/calls.
stubs() {
    local bin=$tmp/bin
    rm -rf "$bin"
    mkdir -p "$bin"
    : >"$tmp/calls"
    printf '%s\n' "$1" >"$tmp/plan"
    cat >"$bin/apt-get" <<EOF
#!/bin/bash
echo "apt-get \$*" >>"$tmp/calls"
case " \$* " in *" -s "*) cat "$tmp/plan" ;; esac
exit 0
EOF
    cat >"$bin/apt-cache" <<EOF
#!/bin/bash
echo "apt-cache \$*" >>"$tmp/calls"
for p in "\$@"; do
    case \$p in -*|show) continue ;; esac
    echo "Package: \$p"
    [ -n "$2" ] && echo "Provides: $2"
    echo
done
EOF
    printf '#!/bin/sh\nexit 1\n' >"$bin/dpkg-query"
    printf '#!/bin/sh\necho 0\n' >"$bin/id"
    chmod +x "$bin"/*
}

run_install() { # run_install WHICH: smtpout_install_deps with the stubs first
    PATH=$tmp/bin:$PATH smtpout_install_deps "$1" >"$tmp/out" 2>&1
}

installs() { grep -q -- "apt-get .* install -y " "$tmp/calls"; }

# Nothing removed, nothing an MTA: it installs, without Recommends, and
# waits for another apt instead of failing.
stubs "Inst swaks (20201014 Debian:12/stable [all])" ""
if run_install test && installs &&
   grep -q -- "-o DPkg::Lock::Timeout=600 install -y --no-install-recommends" "$tmp/calls" &&
   grep -q -- "DPkg::Lock::Timeout=600 update" "$tmp/calls"; then
    ok "a clean plan is installed, without Recommends, waiting for the dpkg lock"
else
    not_ok "a clean plan is installed, without Recommends, waiting for the dpkg lock" \
        "$(cat "$tmp/out" "$tmp/calls")"
fi

# apt would remove the machine's MTA (what installing postfix does where
# exim4 runs): refused before anything is installed.
stubs "Remv exim4-daemon-light [4.96-15+deb12u4]
Inst postfix (3.7.11-0+deb12u1 Debian:12/stable [amd64])" ""
if ! run_install test && ! installs && grep -q "would remove exim4-daemon-light" "$tmp/out"; then
    ok "a plan that removes a package is refused, nothing installed"
else
    not_ok "a plan that removes a package is refused, nothing installed" \
        "$(cat "$tmp/out" "$tmp/calls")"
fi

# A mail server pulled in by some dependency: refused too.
stubs "Inst some-mta (1.0 Debian:12/stable [amd64])" "mail-transport-agent"
if ! run_install demo && ! installs && grep -q "would install a mail server (some-mta" "$tmp/out"; then
    ok "a plan that installs a mail server is refused, nothing installed"
else
    not_ok "a plan that installs a mail server is refused, nothing installed" \
        "$(cat "$tmp/out" "$tmp/calls")"
fi

# On a systemd machine the services of test tools this run installed are
# stopped and disabled; the others, and everything without systemd, are
# left alone.
stubs "Inst nsd (4.6.1-1 Debian:12/stable [amd64])" ""
printf '#!/bin/sh\necho "systemctl $*" >>"%s"\n' "$tmp/calls" >"$tmp/bin/systemctl"
chmod +x "$tmp/bin/systemctl"
mkdir -p "$tmp/systemd"
if SMTPOUT_SYSTEMD_DIR=$tmp/systemd smtpout_systemd_dir=$tmp/systemd run_install test &&
   grep -q "^systemctl disable --now nsd.service$" "$tmp/calls" &&
   grep -q "^systemctl disable --now redis-server.service$" "$tmp/calls" &&
   grep -q "^systemctl disable --now dovecot.service$" "$tmp/calls"; then
    ok "services of the test tools it installed are stopped and disabled under systemd"
else
    not_ok "services of the test tools it installed are stopped and disabled under systemd" \
        "$(cat "$tmp/out" "$tmp/calls")"
fi
# Already installed (dpkg-query says so for everything but swaks): untouched.
printf '#!/bin/sh\n[ "$3" = swaks ] && exit 1\necho "install ok installed"\n' >"$tmp/bin/dpkg-query"
: >"$tmp/calls"
if smtpout_systemd_dir=$tmp/systemd run_install test && installs &&
   ! grep -q "^systemctl" "$tmp/calls"; then
    ok "a service package that was already installed is left as it was"
else
    not_ok "a service package that was already installed is left as it was" \
        "$(cat "$tmp/out" "$tmp/calls")"
fi
: >"$tmp/calls"
printf '#!/bin/sh\nexit 1\n' >"$tmp/bin/dpkg-query"
if smtpout_systemd_dir=$tmp/no-systemd run_install test && installs &&
   ! grep -q "^systemctl" "$tmp/calls"; then
    ok "without systemd no service is touched"
else
    not_ok "without systemd no service is touched" "$(cat "$tmp/out" "$tmp/calls")"
fi

echo "1..$n"
[ $failed -eq 0 ]
