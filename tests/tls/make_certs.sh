#!/bin/sh
# make_certs.sh DIR - writes the TLS test certificates into DIR with the
# openssl command: a test CA; server certificates for a.test (ECDSA P-256,
# alone, with its chain, and with its key in the same file) and b.test
# (RSA 2048, also *.b.test); one that expires in 10 days (soon.test); a
# client certificate signed by the CA and one signed by another CA; a key
# that matches nothing; a file that is not PEM. The unit tests (test_tls.c)
# and anyone trying TLS by hand use it.
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
log=openssl.log
: >"$log"
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256"

ca() { # ca NAME CN
  # shellcheck disable=SC2086
  openssl req -x509 $ec -nodes -keyout "$1.key" -out "$1.pem" -days 3650 \
    -subj "/CN=$2" 2>>"$log"
}

leaf() { # leaf NAME CA SERIAL DAYS SUBJECT EXTENSIONS NEWKEY...
  name=$1 signer=$2 serial=$3 days=$4 subj=$5 ext=$6
  shift 6
  openssl req -new "$@" -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "$subj" 2>>"$log"
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA "$signer.pem" -CAkey "$signer.key" \
    -set_serial "$serial" -days "$days" -out "$name.pem" \
    -extfile "$name.ext" 2>>"$log"
  rm -f "$name.csr" "$name.ext"
}

ca ca "websockd test CA"
ca rogue-ca "rogue test CA"
# shellcheck disable=SC2086
leaf a-ec ca 1001 365 "/CN=a.test" "subjectAltName=DNS:a.test" $ec
leaf b-rsa ca 1002 365 "/CN=b.test" \
  "subjectAltName=DNS:b.test,DNS:*.b.test" -newkey rsa:2048
# shellcheck disable=SC2086
leaf soon ca 1003 10 "/CN=soon.test" "subjectAltName=DNS:soon.test" $ec
# shellcheck disable=SC2086
leaf client ca 1004 365 "/O=websockd tests/CN=client one" \
  "extendedKeyUsage=clientAuth" $ec
# shellcheck disable=SC2086
leaf rogue-client rogue-ca 1005 365 "/CN=rogue client" \
  "extendedKeyUsage=clientAuth" $ec
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out other.key 2>>"$log"
cat a-ec.pem ca.pem >a-ec-chain.pem
cat a-ec.pem a-ec.key >a-ec-both.pem
printf 'this is not a certificate\n' >garbage.pem
