#!/usr/bin/env bash
# Generate a throw-away PKI for the TLS tests into directory $1 (created):
#   ca.pem / ca-key.pem            test CA
#   server.pem / server-key.pem    server certificate for localhost and 127.0.0.1, by ca
#   client.pem / client-key.pem    client certificate (CN=ember-test-client), by ca
#   other-ca.pem                   an unrelated CA
#   other-client.pem / -key.pem    client certificate by other-ca
# Uses the openssl command line tool only; EC P-256 keys, valid for 2 days.
set -euo pipefail
dir=${1:?usage: gen-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ossl() { openssl "$@" 2>/dev/null; }
mkca() { # name cn
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$1-key.pem" -out "$1.pem" -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkcert() { # name ca cn ext
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1-key.pem" \
    -out "$1.csr" -subj "/CN=$3"
  printf '%s\n' "$4" > "$1.ext"
  ossl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial -days 2 \
    -out "$1.pem" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
mkca ca "Ember Test CA"
mkca other-ca "Other Test CA"
mkcert server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
mkcert client ca ember-test-client "extendedKeyUsage=clientAuth"
mkcert other-client other-ca other-client "extendedKeyUsage=clientAuth"
ls ca.pem server.pem server-key.pem client.pem client-key.pem other-ca.pem other-client.pem \
   other-client-key.pem >/dev/null
