# Sourced by tests/run.sh, examples/demo.sh and tests/bench/run.sh:
# installs the Debian 12 packages one of them needs, when any is missing.
# Needs root only when something must be installed.
#
#   smtpout_install_deps demo|test|bench
#
# Packages are installed without their Recommends, so every package a tool
# needs only through a Recommends is named here.  No mail server is ever
# installed or removed: postfix conflicts with every other MTA (exim4,
# opensmtpd, sendmail, ...), so installing it would remove the machine's
# own.  The tests run a private copy of Debian's postfix package instead,
# unpacked into the build tree (tests/servers/postfix-unpack.sh); only its
# shared libraries are installed.

# Build smtpout: compiler, build system, the libraries it links and the
# unit-test framework.  dpkg-dev: meson asks its dpkg-architecture for
# Debian's multiarch libdir; without it (a minimal system) meson installs
# into lib64, where the dynamic linker and ldconfig do not look.
smtpout_build_packages=(meson ninja-build pkg-config gcc dpkg-dev
                        libgnutls28-dev libidn2-dev libinih-dev
                        libcmocka-dev)

# examples/demo.sh: certtool (gnutls-bin) makes its certificates, Debian's
# Python with aiosmtpd is its server.
smtpout_demo_packages=("${smtpout_build_packages[@]}" gnutls-bin python3
                       python3-aiosmtpd)

# tests/run.sh, beyond the build:
#   gnutls-bin           certtool (test PKI), danetool (TLSA records),
#                        gnutls-cli and ocsptool (the fault server's self-test)
#   openssl              signs the test OCSP responses (tests/certs/mkcerts.sh:
#                        ocsptool cannot)
#   ca-certificates      the system trust store a configuration without
#                        ca-file loads
#   python3 python3-aiosmtpd
#                        /usr/bin/python3 runs the integration tests; aiosmtpd
#                        is one of the real servers
#   swaks libnet-ssleay-perl
#                        a client nobody here wrote, for the fault server's
#                        self-test; its STARTTLS needs Net::SSLeay, only a
#                        Recommends of swaks
#   valgrind             smtpout-send's tests under memcheck
#   clang libclang-rt-14-dev
#                        the sanitizer build and libFuzzer (the fuzz targets)
#   time                 GNU time: peak RSS of the tools under test
#   libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3
#                        the shared libraries of the private Postfix (smtpd,
#                        smtp-sink; `apt-cache depends postfix`)
#   libunbound-dev libcurl4-gnutls-dev
#                        the optional parts the tests cover: the validating
#                        resolver (-Dunbound) and the MTA-STS fetcher (-Dcurl)
#   nsd unbound ldnsutils bind9-dnsutils
#                        the DNS lab (tests/servers/dnslab.py): nsd serves
#                        signed zones, unbound validates, ldnsutils signs,
#                        dig asks; the lab brings its own trust anchors, so
#                        dns-root-data (their Recommends) is not needed
#   curl                 a client for the MTA-STS policy server tests
#   strace               watches when hosts acknowledge reads
#                        (test_prompt_ack.py)
#   python3-venv mypy    the Python package installed into a venv, and its
#                        type hints checked (test_python_install.py; mypy
#                        carries the standard library's stubs, so its
#                        Recommends python3-typeshed is not needed)
#   groff-base man-db   the manual pages (docs/man.py) rendered and read as
#                        an operator would: groff -man -Tutf8 -ww for
#                        warnings, man -l and man -M (test_man_pages.py,
#                        tests/abi/installed-library.sh); Priority: important
#                        in Debian, but absent from minimal images
#   libgsasl-dev dovecot-core
#                        SMTP AUTH (docs/relay.md): GNU SASL builds SCRAM
#                        (-Dgsasl=auto); Dovecot is the SASL service of the
#                        Postfix AUTH tests, run privately
#                        (tests/servers/dovecot.py): no MTA, it pulls in none
#                        and removes nothing, and without dovecot-imapd or
#                        -pop3d the system service it may start serves no
#                        protocol
#   iproute2 procps      ip and pgrep, Priority: important in Debian but
#                        absent from minimal images: ip brings up loopback in
#                        the network namespaces the README example and the
#                        offline pip install run in (test_doc_examples.py,
#                        test_python_install.py), pgrep finds the fault
#                        server under timeout(1) (faultsrv-selftest.sh)
#   libhiredis-dev redis-server
#                        a sending cluster's shared store: the Redis adapter
#                        of examples/redis-store/ builds with hiredis, and
#                        test_redis_store.py runs a private redis-server on
#                        a unix socket (redis-tools, its Depends, brings
#                        redis-cli)
smtpout_test_packages=("${smtpout_build_packages[@]}" gnutls-bin openssl
                       ca-certificates python3 python3-aiosmtpd swaks
                       libnet-ssleay-perl valgrind clang libclang-rt-14-dev
                       time libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3
                       libunbound-dev libcurl4-gnutls-dev nsd unbound
                       ldnsutils bind9-dnsutils curl strace python3-venv mypy
                       libgsasl-dev dovecot-core groff-base man-db
                       iproute2 procps libhiredis-dev redis-server)

# tests/bench/run.sh, beyond the tests: msmtp is one of the clients it
# measures.
smtpout_bench_packages=("${smtpout_test_packages[@]}" msmtp)

# Packages installed only as test tools that come with a system service
# (package:unit).  Debian starts a service when its package is installed;
# the tests never use these (they run private instances on loopback), so
# where this run installed one on a systemd machine it is stopped and
# disabled again: nsd would otherwise answer on port 53 of every interface.
# A package that was already installed is left as it was.
smtpout_service_packages=(nsd:nsd.service unbound:unbound.service
                          unbound:unbound-resolvconf.service
                          redis-server:redis-server.service
                          dovecot-core:dovecot.service)
smtpout_systemd_dir=${SMTPOUT_SYSTEMD_DIR:-/run/systemd/system}
# A Debian package that is a mail server provides this virtual package.
smtpout_mta=mail-transport-agent

smtpout_install_deps() {
  local list p missing=() plan removed mtas
  case ${1:-} in
    demo) list=("${smtpout_demo_packages[@]}") ;;
    test) list=("${smtpout_test_packages[@]}") ;;
    bench) list=("${smtpout_bench_packages[@]}") ;;
    *) echo "smtpout_install_deps: demo, test or bench" >&2; return 64 ;;
  esac
  for p in "${list[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages (${missing[*]}); run as root to install them" >&2
    return 1
  fi
  echo "== installing: ${missing[*]}"
  local apt=(apt-get -q -o DPkg::Lock::Timeout=600)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" update || return 1
  # What apt would do, before it does it: nothing may be removed, and no
  # mail server installed, whatever the Depends pull in.
  plan=$(DEBIAN_FRONTEND=noninteractive "${apt[@]}" -s install \
           --no-install-recommends "${missing[@]}") || {
    echo "$plan" | tail -5 >&2
    return 1
  }
  removed=$(sed -n 's/^Remv \([^ ]*\).*/\1/p' <<<"$plan" | tr '\n' ' ')
  if [ -n "$removed" ]; then
    echo "refusing to install ${missing[*]}: apt would remove $removed" >&2
    return 1
  fi
  mtas=$(sed -n 's/^Inst \([^ ]*\).*/\1/p' <<<"$plan" |
         xargs -r apt-cache show --no-all-versions 2>/dev/null |
         awk -v mta="$smtpout_mta" '
           /^Package:/ { pkg = $2 }
           /^Provides:/ && index($0, mta) { print pkg }' | sort -u | tr '\n' ' ')
  if [ -n "$mtas" ]; then
    echo "refusing to install ${missing[*]}: it would install a mail server ($mtas)" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y \
    --no-install-recommends "${missing[@]}" || return 1
  [ -d "$smtpout_systemd_dir" ] || return 0
  local s
  for s in "${smtpout_service_packages[@]}"; do
    for p in "${missing[@]}"; do
      if [ "$p" = "${s%%:*}" ]; then
        echo "== ${s#*:}: stopped and disabled (a test tool, not a service here)"
        systemctl disable --now "${s#*:}" >/dev/null 2>&1 || true
      fi
    done
  done
  return 0
}
