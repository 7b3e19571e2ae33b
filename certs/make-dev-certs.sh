#!/usr/bin/env bash
# Writes a development CA and a serving certificate for the webhook Service into certs/dev/
# (ca.crt, tls.crt, tls.key) with `secrets-injector-webhook certs`. Extra arguments are passed on,
# e.g. --service my-release-secrets-injector --namespace tools --days 30 --dns-name localhost.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${SECRETS_INJECTOR_CERTS_OUT_DIR:-certs/dev}"
cargo run -q -p secrets-injector-webhook -- certs --out-dir "$out" "$@"
