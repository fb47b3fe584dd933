# Sourced by tests/run.sh and examples/demo.sh: installs the Debian 12
# packages the build, the tests and the demo need, when any is missing.
# Needs root only when something must be installed.

smtpout_packages=(meson ninja-build pkg-config gcc libgnutls28-dev libidn2-dev
                  libinih-dev libcmocka-dev gnutls-bin ca-certificates python3
                  python3-aiosmtpd postfix swaks msmtp valgrind clang
                  libclang-rt-14-dev time nsd unbound ldnsutils
                  bind9-dnsutils libunbound-dev libcurl4-gnutls-dev curl
                  strace python3-venv mypy)
# SMTP AUTH (docs/relay.md): libgsasl-dev builds SCRAM-SHA-256 (meson
# -Dgsasl=auto); dovecot-core is the SASL service of the Postfix AUTH
# tests, run privately (tests/servers/dovecot.py): it is no MTA, pulls
# in none, removes nothing, and without dovecot-imapd/-pop3d the system
# service it may start serves no protocol;
# libnet-ssleay-perl is what swaks's --tls needs, only a Recommends of
# swaks.
smtpout_packages+=(libgsasl-dev dovecot-core libnet-ssleay-perl)

smtpout_install_deps() {
  local missing=() p
  for p in "${smtpout_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages (${missing[*]}); run as root to install them" >&2
    return 1
  fi
  # Postfix must not configure or start a system mail server: the tests
  # run their own instances on loopback.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" || return 1
}
