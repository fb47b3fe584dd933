#!/bin/bash
# mkdane.sh OUTDIR -- generate the DANE test PKI and its TLSA records.
#
# Used by the DANE unit tests (tests/test_dane.c) and the DNS lab
# (tests/servers/dnslab.py).  Nothing is committed: the tests run this into
# a temporary directory.  certtool and danetool (gnutls-bin) are the only
# tools; all keys are ECDSA P-256 (fast to make).  The CAs are valid from
# 2000 to 2099, the current leaves for ten years from now.
#
# For each certificate NAME: NAME.pem, NAME.key (0600), NAME.der, and
# NAME-chain.pem, the chain a server presents (leaf first).  NAME.tlsa
# holds "USAGE SELECTOR MTYPE HEX" lines: usage 3 for leaves, 2 for CAs,
# every selector (0 certificate, 1 SubjectPublicKeyInfo) and matching type
# (0 full, 1 SHA-256, 2 SHA-512).  The digests come from danetool, the
# full values from certtool's DER output, so none of them is computed by
# the code under test.
#
#   ca          the DANE-TA root "smtpout DANE test CA"
#   ica         an intermediate CA under ca
#   mx2         mx2.secure.test, issued by ica            chain: mx2 ica ca
#   wildcard    *.secure.test, issued by ica              chain: + ica ca
#   wrongname   other.example, issued by ica              chain: + ica ca
#   cnonly      CN mx2.secure.test, DNS SAN other.example (the CN must be
#               ignored), issued by ica                   chain: + ica ca
#   expired     mx2.secure.test, issued by ica, 2001-2002 chain: + ica ca
#   clientonly  mx2.secure.test, issued by ica, EKU clientAuth only
#   ee          mx1.secure.test, self-signed (DANE-EE)    chain: ee
#   ee-expired  mx1.secure.test, self-signed, 2001-2002   chain: ee-expired
#   forged-ca   a self-signed CA with ca's exact name and another key
#   forged      mx2.secure.test, issued by forged-ca: it names ca as its
#               issuer.  chain: forged ca (the genuine ca!)
#   evil-ca     another CA; evil: mx2.secure.test under it
#               chain: evil evil-ca ca (the libgnutls-dane case)
#   notca       a leaf (CA:FALSE) under ica; undernotca: mx2.secure.test
#               signed by notca's key            chain: undernotca notca ica ca
#   plen0       a CA under ca with path length 0; plen0-sub a CA under it;
#               plen: mx2.secure.test under plen0-sub
#               chain: plen plen0-sub plen0 ca (violates the constraint)
#   mx1-ca      mx1.secure.test issued by ca (for the lab's DANE-TA host)
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 64
fi
out=$1
mkdir -p "$out"
umask 077

tool_log="$out/.tool.log"
q() {
    if ! "$@" >"$tool_log" 2>&1; then
        echo "mkdane.sh: $* failed:" >&2
        cat "$tool_log" >&2
        exit 1
    fi
}

genkey() {
    q certtool --generate-privkey --key-type ecdsa --curve secp256r1 \
        --outfile "$out/$1.key"
}

template() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$out/.$name.tmpl"
}

ca_dates=('activation_date = "2000-01-01 00:00:00 UTC"'
          'expiration_date = "2099-12-31 23:59:59 UTC"')
old_dates=('activation_date = "2001-01-01 00:00:00 UTC"'
           'expiration_date = "2002-01-01 00:00:00 UTC"')
recent=('expiration_days = 3650')
server=(tls_www_server signing_key)
ca_name=('cn = "smtpout DANE test CA"' 'organization = "smtpout tests"')

# selfsigned NAME LINES...
selfsigned() {
    local name=$1
    shift
    genkey "$name"
    template "$name" "$@"
    q certtool --generate-self-signed --load-privkey "$out/$name.key" \
        --template "$out/.$name.tmpl" --outfile "$out/$name.pem"
    cp "$out/$name.pem" "$out/$name-chain.pem"
}

# signed NAME ISSUER LINES...: the chain is NAME + ISSUER's chain.
signed() {
    local name=$1 issuer=$2
    shift 2
    genkey "$name"
    template "$name" "$@"
    q certtool --generate-certificate --load-privkey "$out/$name.key" \
        --load-ca-certificate "$out/$issuer.pem" \
        --load-ca-privkey "$out/$issuer.key" \
        --template "$out/.$name.tmpl" --outfile "$out/$name.pem"
    cat "$out/$name.pem" "$out/$issuer-chain.pem" >"$out/$name-chain.pem"
}

mx2=('cn = "mx2.secure.test"' 'dns_name = "mx2.secure.test"')

selfsigned ca "${ca_name[@]}" ca cert_signing_key "${ca_dates[@]}"
signed ica ca 'cn = "smtpout DANE intermediate"' ca cert_signing_key \
    "${ca_dates[@]}"
signed mx2 ica "${mx2[@]}" "${server[@]}" "${recent[@]}"
signed wildcard ica 'cn = "*.secure.test"' 'dns_name = "*.secure.test"' \
    "${server[@]}" "${recent[@]}"
signed wrongname ica 'cn = "other.example"' 'dns_name = "other.example"' \
    "${server[@]}" "${recent[@]}"
signed cnonly ica 'cn = "mx2.secure.test"' 'dns_name = "other.example"' \
    "${server[@]}" "${recent[@]}"
signed expired ica "${mx2[@]}" "${server[@]}" "${old_dates[@]}"
signed clientonly ica "${mx2[@]}" tls_www_client signing_key "${recent[@]}"
signed mx1-ca ca 'cn = "mx1.secure.test"' 'dns_name = "mx1.secure.test"' \
    "${server[@]}" "${recent[@]}"

selfsigned ee 'cn = "mx1.secure.test"' 'dns_name = "mx1.secure.test"' \
    "${server[@]}" "${recent[@]}"
selfsigned ee-expired 'cn = "mx1.secure.test"' \
    'dns_name = "mx1.secure.test"' "${server[@]}" "${old_dates[@]}"

# The forgery: a CA with the genuine CA's name, its leaf presented with the
# genuine CA behind it.
selfsigned forged-ca "${ca_name[@]}" ca cert_signing_key "${ca_dates[@]}"
signed forged forged-ca "${mx2[@]}" "${server[@]}" "${recent[@]}"
cat "$out/forged.pem" "$out/ca.pem" >"$out/forged-chain.pem"

selfsigned evil-ca 'cn = "evil CA"' ca cert_signing_key "${ca_dates[@]}"
signed evil evil-ca "${mx2[@]}" "${server[@]}" "${recent[@]}"
cat "$out/evil.pem" "$out/evil-ca.pem" "$out/ca.pem" >"$out/evil-chain.pem"

# A leaf used as an issuer: certtool signs with any key it is given.
signed notca ica 'cn = "not a CA"' "${server[@]}" "${recent[@]}"
signed undernotca notca "${mx2[@]}" "${server[@]}" "${recent[@]}"

signed plen0 ca 'cn = "path length 0 CA"' ca cert_signing_key \
    'path_len = 0' "${ca_dates[@]}"
signed plen0-sub plen0 'cn = "CA under a path length 0 CA"' ca \
    cert_signing_key "${ca_dates[@]}"
signed plen plen0-sub "${mx2[@]}" "${server[@]}" "${recent[@]}"

# DER forms, and the TLSA records of every certificate.
for pem in "$out"/*.pem; do
    case $pem in *-chain.pem) continue ;; esac
    name=$(basename "$pem" .pem)
    q certtool --certificate-info --infile "$pem" --outder \
        --outfile "$out/$name.der"
    q certtool --pubkey-info --load-certificate "$pem" --outder \
        --outfile "$out/$name.spki"
    usage=3 ca=()
    if certtool --certificate-info --infile "$pem" 2>/dev/null |
        grep -q 'Certificate Authority (CA): TRUE'; then
        usage=2 ca=(--ca)
    fi
    {
        for sel in 0 1; do
            x509=()
            file=$out/$name.spki
            if [ $sel = 0 ]; then x509=(--x509); file=$out/$name.der; fi
            echo "$usage $sel 0 $(od -An -v -tx1 "$file" | tr -d ' \n')"
            for mt in 1 2; do
                hash=sha256
                [ $mt = 2 ] && hash=sha512
                danetool --tlsa-rr --host x.test --load-certificate "$pem" \
                    "${ca[@]}" "${x509[@]}" --hash $hash 2>/dev/null |
                    sed -n 's/.*( *\([0-9 a-f]*\) *).*/\1/p' |
                    awk '{ printf "%d %d %d %s\n", $1, $2, $3, $4 }'
            done
        done
    } >"$out/$name.tlsa"
    [ "$(wc -l <"$out/$name.tlsa")" = 6 ] || {
        echo "mkdane.sh: TLSA records for $name incomplete" >&2
        exit 1
    }
done

rm -f "$out"/.*.tmpl "$tool_log"
chmod 0644 "$out"/*.pem "$out"/*.der "$out"/*.spki "$out"/*.tlsa
