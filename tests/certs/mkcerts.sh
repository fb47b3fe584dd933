#!/bin/bash
# mkcerts.sh [--no-ocsp] OUTDIR -- generate the test PKI used by the tests.
#
# Nothing here is secret and nothing is committed: the tests run this into a
# temporary directory.  certtool (gnutls-bin) makes every key and
# certificate; openssl signs the OCSP responses (GnuTLS's ocsptool cannot
# sign one).  All keys are ECDSA P-256, which keeps generation well under a
# second.
#
# Files written to OUTDIR (keys are mode 0600):
#
#   ca.pem, ca.key           the test CA that clients are told to trust
#   other-ca.pem, other-ca.key
#                            a second CA that clients do NOT trust
#
#   For each server certificate NAME below: NAME.pem (the leaf alone),
#   NAME.key (its key) and NAME-chain.pem (leaf followed by its issuer, which
#   is what a server should present; for selfsigned it is the leaf alone).
#
#   valid       CA-signed; SAN dNSName mx.test.example and localhost,
#               SAN IP 127.0.0.1; currently valid
#   expired     CA-signed for the same names; validity 2001-01-01 .. 2002-01-01
#   wrongname   CA-signed, currently valid, for other.test.example only
#   untrusted   signed by other-ca for mx.test.example (chain ends in an
#               untrusted root)
#   selfsigned  self-signed for mx.test.example
#   wildcard    CA-signed for *.test.example (matches mx.test.example, but
#               neither test.example nor a.b.test.example)
#   muststaple  as valid, plus the TLS feature status_request (RFC 7633
#               "must-staple": without a stapled OCSP response it fails)
#   shortlived  for the same names, valid ten years, signed by short-ca
#
#   short-ca.pem, short-ca.key
#                            a CA that expires two days from now, before the
#                            leaf it signed (trust it alongside ca.pem)
#
#   OCSP responses (DER) from ca, valid for 30 days, for stapling:
#   valid-ocsp-good.der, valid-ocsp-revoked.der, muststaple-ocsp-good.der
#   (not with --no-ocsp, which examples/demo.sh uses: it needs no openssl)
#
# The CA is valid from 2000 to 2099 so that only the leaf's own dates make
# "expired" fail, and "wrongname" differs from "valid" only in its names.
set -eu

ocsp_responses=1
if [ "${1:-}" = --no-ocsp ]; then
    ocsp_responses=0
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: $0 [--no-ocsp] OUTDIR" >&2
    exit 64
fi
out=$1
mkdir -p "$out"
umask 077

# certtool is chatty; keep its output and show it only when it fails.
tool_log="$out/.certtool.log"
certtool_q() {
    if ! certtool "$@" >"$tool_log" 2>&1; then
        echo "mkcerts.sh: certtool $* failed:" >&2
        cat "$tool_log" >&2
        exit 1
    fi
}

genkey() {
    certtool_q --generate-privkey --key-type ecdsa --curve secp256r1 \
        --outfile "$out/$1.key"
}

# template NAME LINES...: write a certtool template file.
template() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$out/.$name.tmpl"
}

# A leaf is for a TLS server: digitalSignature is the only key usage an
# ECDSA key needs (no keyEncipherment).
leaf_usage=(tls_www_server signing_key)
mx_names=('cn = "mx.test.example"' 'dns_name = "mx.test.example"'
          'dns_name = "localhost"' 'ip_address = "127.0.0.1"')
recent=('expiration_days = 3650')

ca_template=(ca cert_signing_key crl_signing_key
             'activation_date = "2000-01-01 00:00:00 UTC"'
             'expiration_date = "2099-12-31 23:59:59 UTC"')

# The two CAs.
for ca in ca other-ca; do
    genkey "$ca"
    template "$ca" "cn = \"smtpout test $ca\"" \
        'organization = "smtpout tests"' "${ca_template[@]}"
    certtool_q --generate-self-signed --load-privkey "$out/$ca.key" \
        --template "$out/.$ca.tmpl" --outfile "$out/$ca.pem"
done

# signed NAME ISSUER TEMPLATE-LINES...: a leaf signed by ISSUER.
signed() {
    local name=$1 issuer=$2
    shift 2
    genkey "$name"
    template "$name" "$@"
    certtool_q --generate-certificate --load-privkey "$out/$name.key" \
        --load-ca-certificate "$out/$issuer.pem" \
        --load-ca-privkey "$out/$issuer.key" \
        --template "$out/.$name.tmpl" --outfile "$out/$name.pem"
    cat "$out/$name.pem" "$out/$issuer.pem" >"$out/$name-chain.pem"
}

signed valid ca "${mx_names[@]}" "${leaf_usage[@]}" "${recent[@]}"
signed expired ca "${mx_names[@]}" "${leaf_usage[@]}" \
    'activation_date = "2001-01-01 00:00:00 UTC"' \
    'expiration_date = "2002-01-01 00:00:00 UTC"'
signed wrongname ca 'cn = "other.test.example"' \
    'dns_name = "other.test.example"' "${leaf_usage[@]}" "${recent[@]}"
signed untrusted other-ca "${mx_names[@]}" "${leaf_usage[@]}" "${recent[@]}"
signed wildcard ca 'cn = "*.test.example"' 'dns_name = "*.test.example"' \
    "${leaf_usage[@]}" "${recent[@]}"

genkey selfsigned
template selfsigned "${mx_names[@]}" "${leaf_usage[@]}" "${recent[@]}"
certtool_q --generate-self-signed --load-privkey "$out/selfsigned.key" \
    --template "$out/.selfsigned.tmpl" --outfile "$out/selfsigned.pem"
cp "$out/selfsigned.pem" "$out/selfsigned-chain.pem"

signed muststaple ca "${mx_names[@]}" "${leaf_usage[@]}" "${recent[@]}" \
    'tls_feature = 5'

genkey short-ca
template short-ca 'cn = "smtpout test short-ca"' 'organization = "smtpout tests"' \
    ca cert_signing_key crl_signing_key 'expiration_days = 2'
certtool_q --generate-self-signed --load-privkey "$out/short-ca.key" \
    --template "$out/.short-ca.tmpl" --outfile "$out/short-ca.pem"
signed shortlived short-ca "${mx_names[@]}" "${leaf_usage[@]}" "${recent[@]}"

# ocsp NAME STATUS: NAME-ocsp-STATUS.der, ca's answer for NAME.pem (good
# or revoked), made the way a responder would: a request, an index of
# what the CA issued, the signed response.
ocsp() {
    local name=$1 status=$2 serial line
    serial=$(openssl x509 -noout -serial -in "$out/$name.pem")
    serial=${serial#serial=}
    if [ "$status" = good ]; then
        line="V\t300101000000Z\t\t$serial\tunknown\t/CN=mx.test.example"
    else
        line="R\t300101000000Z\t200101000000Z,keyCompromise\t$serial\tunknown\t/CN=mx.test.example"
    fi
    printf "$line\n" >"$out/.index.txt"
    if ! { openssl ocsp -issuer "$out/ca.pem" -cert "$out/$name.pem" -no_nonce \
               -reqout "$out/.req.der" &&
           openssl ocsp -index "$out/.index.txt" -rsigner "$out/ca.pem" \
               -rkey "$out/ca.key" -CA "$out/ca.pem" -reqin "$out/.req.der" \
               -respout "$out/$name-ocsp-$status.der" -ndays 30; } \
             >"$tool_log" 2>&1; then
        echo "mkcerts.sh: openssl ocsp for $name ($status) failed:" >&2
        cat "$tool_log" >&2
        exit 1
    fi
}
if [ $ocsp_responses -eq 1 ]; then
    ocsp valid good
    ocsp valid revoked
    ocsp muststaple good
fi

rm -f "$out"/.*.tmpl "$out/.index.txt" "$out/.req.der" "$tool_log"
# Certificates are public; only the keys stay owner-only.
chmod 0644 "$out"/*.pem
[ $ocsp_responses -eq 0 ] || chmod 0644 "$out"/*.der
