#!/usr/bin/env bash
# The one test command (README "Quick start", and what CI runs):
# installs every test tool under target/tools (idempotent), builds the
# workspace once, runs every Rust test (unit, router, HTTPS, agent vs moto,
# end to end), then the chart, manifest and image checks (the images are
# built from static release binaries with buildah).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*" >&2; }

step "installing test tools (moto, kubernetes-validate, helm, yamllint, hadolint, cel-python)"
SECRETS_INJECTOR_TOOLS="$(scripts/install-test-tools.sh)"
export SECRETS_INJECTOR_TOOLS
export PATH="$SECRETS_INJECTOR_TOOLS/bin:$PATH"

step "cargo build --workspace"
cargo build --workspace --all-targets --locked

step "cargo test --workspace"
cargo test --workspace --locked --no-fail-fast

step "chart, manifests, Dockerfiles, docs (scripts/check-chart.sh)"
scripts/check-chart.sh

step "static release binaries and scratch images (scripts/build-images.sh)"
scripts/build-images.sh

step "all tests passed"
