#!/usr/bin/env bash
# Baseline: the do-it-yourself init container most teams write — one AWS CLI
# call per secret. Usage: cli_loop.sh OUT_DIR SECRET_ID... (AWS_CLI overrides `aws`).
# Identity, region and endpoint come from the environment, as in a pod.
set -euo pipefail
out="$1"
shift
aws="${AWS_CLI:-aws}"
mkdir -p "$out"
for id in "$@"; do
  "$aws" secretsmanager get-secret-value --secret-id "$id" \
    --query SecretString --output text >"$out/$(basename "$id")"
done
