#!/usr/bin/env bash
# Mutation testing of the pure core (docs/mutation-testing.md): installs a pinned
# cargo-mutants under target/tools (idempotent) and runs it part by part, each
# part with only the tests that cover it (--cargo-arg: the build and the test
# run name the same test targets, so no other test binary is built per mutant).
# Not in CI: it takes minutes per part.
#
#   scripts/mutants.sh [PART...] [-- extra cargo-mutants args]
#   PART: shared | webhook | agent | all (default: all), or one step of the
#   agent: agent-classify | agent-split | agent-write
#
# Results land in target/mutants/<part>/mutants.out (caught.txt, missed.txt, …);
# the agent runs as agent-classify, agent-split and agent-write.
# One job at a time; MUTANTS_JOBS=2 runs shared/ two at a time on an idle machine
# (the webhook and agent parts share one target dir, so they stay at one; run
# two instances of this script at once only with distinct MUTANTS_TARGET_DIR).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

MUTANTS_VERSION="27.1.0"
tools="$root/target/tools"
bin="$tools/bin/cargo-mutants"

parts=()
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    shared | webhook | agent | agent-classify | agent-split | agent-write) parts+=("$1") ;;
    all) parts+=(shared webhook agent) ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mutants.sh: unknown part $1 (shared, webhook, agent, agent-classify, agent-split, agent-write, all)" >&2; exit 2 ;;
  esac
  shift
done
[ ${#parts[@]} -gt 0 ] || parts=(shared webhook agent)

# The version is checked, not just the file: changing the pin reinstalls.
if ! { [ -x "$bin" ] && "$bin" mutants --version 2>/dev/null | grep -qx "cargo-mutants $MUTANTS_VERSION"; }; then
  echo "mutants.sh: installing cargo-mutants $MUTANTS_VERSION into $tools" >&2
  cargo install --locked --root "$tools" "cargo-mutants@$MUTANTS_VERSION"
fi

# The webhook's fixture tests run kubernetes-validate from the test tools.
if [ -z "${SECRETS_INJECTOR_TOOLS:-}" ]; then
  SECRETS_INJECTOR_TOOLS="$(scripts/install-test-tools.sh --no-images)"
fi
export SECRETS_INJECTOR_TOOLS
export PATH="$SECRETS_INJECTOR_TOOLS/bin:$PATH"
# The webhook and agent build in their own target dir, target/mutants-build,
# seeded once with the dependency builds of target/debug (their heavy
# dependencies would otherwise build cold in every scratch copy). Not target/
# itself: cargo names a workspace crate's artifacts by its path relative to the
# workspace, so an ordinary build there would replace a mutant's test binary.
warm_target="${MUTANTS_TARGET_DIR:-$root/target/mutants-build}"
if [ ! -d "$warm_target/debug/deps" ] && [ -d "$root/target/debug/deps" ]; then
  echo "mutants.sh: seeding $warm_target with the dependency builds of target/debug" >&2
  mkdir -p "$warm_target/debug/deps"
  cp -a "$root/target/debug/build" "$root/target/debug/.fingerprint" "$warm_target/debug/"
  find "$root/target/debug/deps" -maxdepth 1 -name 'lib*' ! -name 'libsecrets_injector*' \
    -exec cp -a -t "$warm_target/debug/deps/" {} +
fi

common=(--timeout "${MUTANTS_TIMEOUT:-300}" --build-timeout "${MUTANTS_BUILD_TIMEOUT:-600}" --no-shuffle)

run() {
  local part="$1"
  shift
  echo "mutants.sh: $part" >&2
  mkdir -p "target/mutants/$part"
  # cargo-mutants exits 2 when mutants were missed: report, don't stop the other parts.
  "$bin" mutants "${common[@]}" "${extra[@]}" --output "target/mutants/$part" "$@" || status=$?
}

status=0
for part in "${parts[@]}"; do
  case "$part" in
    # The contract crate: every module but the log set-up (I/O, behind a
    # feature), by its unit tests and tests/ (no doctests: they build slowly).
    shared)
      run shared --jobs "${MUTANTS_JOBS:-1}" -p secrets-injector-shared --exclude shared/src/logging.rs \
        --test-package secrets-injector-shared --cargo-arg=--tests
      ;;
    # The webhook's pure core: its unit tests plus the golden fixtures (every
    # outcome pinned, mutated pods validated by kubernetes-validate).
    webhook)
      CARGO_TARGET_DIR="$warm_target" run webhook --jobs 1 -p secrets-injector-webhook \
        -f webhook/src/decide.rs -f webhook/src/patch.rs -f webhook/src/containers.rs \
        -f webhook/src/identity.rs -f webhook/src/owner.rs -f webhook/src/env_wrap.rs \
        -f webhook/src/template.rs \
        --test-package secrets-injector-webhook --cargo-arg=--lib --cargo-arg=--test=mutate_fixtures
      ;;
    # The agent's pure modules, each with the tests that cover it (fewer test
    # binaries per mutant: the agent links the AWS SDK into every one).
    agent | agent-classify | agent-split | agent-write)
      if [ "$part" = agent ] || [ "$part" = agent-classify ]; then
        CARGO_TARGET_DIR="$warm_target" run agent-classify --jobs 1 -p secrets-injector-agent \
          -f agent/src/classify.rs -f agent/src/failure.rs \
          --test-package secrets-injector-agent --cargo-arg=--lib
      fi
      if [ "$part" = agent ] || [ "$part" = agent-split ]; then
        CARGO_TARGET_DIR="$warm_target" run agent-split --jobs 1 -p secrets-injector-agent -f agent/src/split.rs \
          --test-package secrets-injector-agent --cargo-arg=--lib --cargo-arg=--test=split_render
      fi
      if [ "$part" = agent ] || [ "$part" = agent-write ]; then
        CARGO_TARGET_DIR="$warm_target" run agent-write --jobs 1 -p secrets-injector-agent -f agent/src/write.rs \
          --test-package secrets-injector-agent --cargo-arg=--lib --cargo-arg=--test=write_atomic
      fi
      ;;
  esac
done
summary=()
for part in "${parts[@]}"; do
  case "$part" in
    agent) summary+=(agent-classify agent-split agent-write) ;;
    *) summary+=("$part") ;;
  esac
done
for part in "${summary[@]}"; do
  out="target/mutants/$part/mutants.out/outcomes.json"
  [ -f "$out" ] || continue
  python3 - "$part" "$out" <<'PY'
import json, sys
part, path = sys.argv[1], sys.argv[2]
o = json.load(open(path))
caught, missed, timeout, unviable = (o.get(k, 0) for k in ("caught", "missed", "timeout", "unviable"))
viable = caught + missed + timeout
pct = 100.0 * (caught + timeout) / viable if viable else 100.0
print(f"{part}: {o.get('total_mutants', 0)} mutants, {caught} caught, {timeout} timeout, "
      f"{missed} missed, {unviable} unviable: {pct:.1f}% of viable caught")
PY
done
exit "$status"
