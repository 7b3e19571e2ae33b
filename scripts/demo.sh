#!/usr/bin/env bash
# One-command local demo: installs the test tools (moto), builds, then runs the
# real webhook and agent against the AWS emulator and prints the file tree an
# app container would see (values masked). Optional argument: an example file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
SECRETS_INJECTOR_TOOLS="$(scripts/install-test-tools.sh --no-images)"
export SECRETS_INJECTOR_TOOLS
cargo build -q -p secrets-injector-webhook -p secrets-injector-agent -p secrets-injector-tests --bins
exec "${CARGO_TARGET_DIR:-$root/target}/debug/demo" "${1:-examples/pod.yaml}"
