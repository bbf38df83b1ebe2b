#!/usr/bin/env bash
# Writes a self-signed CA, a certificate for the qcal servers and the router, and a tokens file
# into this folder, for secrets/kustomization.yaml. For a first try; use your own CA for real.
#   ./make-dev-secrets.sh [NAMESPACE]      (default: default)
# The certificate names the replicas (qcal-N.qcal.NS.svc...), the headless Service and the router
# (qcal-router), the names clients and the router dial. It allows client authentication too, so
# the router and Prometheus can present it to servers that require client certificates
# (components/mtls). Existing files are kept: delete them to start again.
set -euo pipefail
cd "$(dirname "$0")"
ns=${1:-default}
replicas=${QCAL_REPLICAS:-3}

if [[ -e tls.key || -e tokens ]]; then
  echo "make-dev-secrets: tls.key or tokens exists here; delete them to make new ones" >&2
  exit 1
fi
umask 077
sans="DNS:qcal,DNS:qcal.$ns.svc,DNS:qcal.$ns.svc.cluster.local,DNS:qcal-router,DNS:qcal-router.$ns.svc"
sans+=",DNS:qcal-router.$ns.svc.cluster.local,DNS:localhost,IP:127.0.0.1"
for ((i = 0; i < replicas; i++)); do
  sans+=",DNS:qcal-$i,DNS:qcal-$i.qcal,DNS:qcal-$i.qcal.$ns.svc,DNS:qcal-$i.qcal.$ns.svc.cluster.local"
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj "/CN=qcal dev CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign -keyout ca.key -out ca.crt
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=qcal" \
  -keyout tls.key -out tls.csr
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 -out tls.crt \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans")
rm -f tls.csr ca.srl

metrics=$(openssl rand -hex 32)
{
  echo "# ROLE  TOKEN  [MODEL_PREFIX]"
  echo "admin   $(openssl rand -hex 32)"
  echo "# Prometheus: no model prefix (a prefixed token gets 403 on /metrics)."
  echo "reader  $metrics"
} >tokens
printf '%s' "$metrics" >metrics-token
echo "make-dev-secrets: wrote ca.crt ca.key tls.crt tls.key tokens metrics-token in $(pwd) (namespace $ns)"
echo "make-dev-secrets: the admin token is the 'admin' line of tokens; keep ca.key out of the cluster"
