#!/bin/sh
# make-certs.sh OUTDIR [NAMESPACE] [SERVICE] [DAYS]
#
# A private CA and a serving certificate for the webhook's Service DNS names
# (SERVICE.NAMESPACE.svc and SERVICE.NAMESPACE.svc.cluster.local), both ECDSA P-256, with openssl.
# Writes OUTDIR/ca.crt, ca.key, tls.crt, tls.key (keys mode 0600). Keep ca.key offline: it is only
# needed to issue the next serving certificate. ca.crt goes into the webhook configuration's
# caBundle; tls.crt and tls.key into the Secret stockade-admission-tls.
set -eu

out=${1:?usage: make-certs.sh OUTDIR [NAMESPACE] [SERVICE] [DAYS]}
ns=${2:-stockade-system}
svc=${3:-stockade-admission}
days=${4:-365}
dns="$svc.$ns.svc"

umask 077
mkdir -p "$out"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
    -subj "/CN=$svc webhook CA" -keyout "$out/ca.key" -out "$out/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$dns" \
    -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' \
    "$dns" "$dns" > "$out/tls.ext"
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
    -days "$days" -extfile "$out/tls.ext" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/tls.ext" "$out/ca.srl"
chmod 0644 "$out/ca.crt" "$out/tls.crt"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null
echo "$out/tls.crt: serving certificate for $dns, signed by $out/ca.crt"
