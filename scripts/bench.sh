#!/usr/bin/env bash
# One command for every benchmark (BENCHMARKS.md): installs the test tools,
# builds the release binaries and the bench binary, runs every suite and
# prints a summary table. Loopback only; every phase stops by itself.
#   ASM_AGENT_BIN=/path/to/aws_secretsmanager_agent  compare with the AWS
#   Secrets Manager Agent (skipped when unset).
#   scripts/bench.sh [SUITE] [ARGS...]: SUITE is all (the default), review,
#   https, hostile, agent, cold (one start vs curl), sizes, wrapper or fleet (the rollout and refresh
#   storms and the soak, docs/scale.md); ARGS go to `secrets-injector-bench
#   SUITE` (see its `--help`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*" >&2; }

step "installing test tools (moto, aws CLI, boto3)"
SECRETS_INJECTOR_TOOLS="$(scripts/install-test-tools.sh --no-images)"
export SECRETS_INJECTOR_TOOLS
export PATH="$SECRETS_INJECTOR_TOOLS/bin:$PATH"

target="${CARGO_TARGET_DIR:-$root/target}"
# Built one package at a time so the bench's extra features (hyper client…)
# never leak into the shipped binaries through feature unification.
for pkg in secrets-injector-webhook secrets-injector-agent secrets-injector-env secrets-injector-bench; do
  step "cargo build --release -p $pkg"
  cargo build --release --locked -p "$pkg"
done

if [ -z "${ASM_AGENT_BIN:-}" ]; then
  echo "AWS Secrets Manager Agent comparison: skipped: set ASM_AGENT_BIN" >&2
fi

step "machine"
echo "nproc: $(nproc)"
grep -m1 'model name' /proc/cpuinfo || true
free -h

suite=all
case "${1:-}" in
  all | review | https | hostile | agent | cold | sizes | wrapper | fleet) suite="$1"; shift ;;
esac

step "benchmarks: $suite"
exec "$target/release/secrets-injector-bench" "$suite" \
  --webhook-bin "$target/release/secrets-injector-webhook" \
  --agent-bin "$target/release/secrets-injector-agent" \
  --env-bin "$target/release/secrets-injector-env" \
  --baselines "$root/bench/baselines" "$@"
