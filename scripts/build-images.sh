#!/usr/bin/env bash
# Builds the static release binaries once, checks they are static, then builds
# both images FROM scratch with buildah (the Dockerfiles' `prebuilt` target, so no
# base image is pulled) and inspects them: user 65532, entrypoint, no shell.
#
#   scripts/build-images.sh                  # cargo build --release + images
#   scripts/build-images.sh --binaries-only  # stop after the static-binary checks
#
# Env: CARGO_TARGET_DIR (honoured), IMAGE_REPO (default localhost), IMAGE_TAG (default dev),
# SECRETS_INJECTOR_PREBUILT_DIR (skip cargo: take both binaries from this directory).
# Writes target/images/<name>.tar (OCI archives). Fails on the first failed step.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

binaries_only=false
case "${1:-}" in
  "") ;;
  --binaries-only) binaries_only=true ;;
  *) echo "usage: $0 [--binaries-only]" >&2; exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

triple=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bins=(secrets-injector-webhook secrets-injector-agent)
repo="${IMAGE_REPO:-localhost}"
tag="${IMAGE_TAG:-dev}"

if [ -n "${SECRETS_INJECTOR_PREBUILT_DIR:-}" ]; then
  bin_dir="$SECRETS_INJECTOR_PREBUILT_DIR"
  step "using prebuilt binaries from $bin_dir (no cargo build)"
else
  bin_dir="$target_dir/$triple/release"
  step "cargo build --release --target $triple (static glibc; takes minutes)"
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target "$triple" -p secrets-injector-webhook -p secrets-injector-agent
fi

step "checking the binaries are static"
command -v file >/dev/null || die "'file' is missing: apt-get install -y file"
for b in "${bins[@]}"; do
  path="$bin_dir/$b"
  [ -x "$path" ] || die "$path is missing or not executable"
  desc="$(file -L "$path")"
  case "$desc" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$b is not static: $desc" ;;
  esac
  # ldd exits non-zero for a static binary; only its words matter here.
  ldd_out="$(ldd "$path" 2>&1 || true)"
  case "$ldd_out" in
    *"not a dynamic executable"* | *"statically linked"*) ;;
    *) die "ldd lists shared libraries for $b: $ldd_out" ;;
  esac
  size=$(stat -c %s "$path")
  if command -v strip >/dev/null; then
    stripped="$(mktemp)"
    strip -o "$stripped" "$path"
    ssize=$(stat -c %s "$stripped")
    rm -f "$stripped"
  else
    ssize="$size (strip not installed: size as built)"
  fi
  printf '%-26s static  %9s bytes as built, %s bytes stripped\n' "$b" "$size" "$ssize" >&2
done
"$binaries_only" && { step "binaries OK (--binaries-only: no images)"; exit 0; }

step "staging the image inputs"
ca_src=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_src" ] || die "$ca_src is missing: apt-get install -y ca-certificates"
inputs="$target_dir/image-inputs"
rm -rf "$inputs"
mkdir -p "$inputs"
for b in "${bins[@]}"; do install -m 0755 "$bin_dir/$b" "$inputs/$b"; done
install -m 0444 "$ca_src" "$inputs/ca-certificates.crt"

if ! command -v buildah >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing buildah (apt-get)"
    apt-get install -y -q buildah >/dev/null || die "apt-get install -y buildah failed (try apt-get update first)"
  else
    die "buildah is not installed: apt-get install -y buildah (or rerun with --binaries-only)"
  fi
fi

out_dir="$target_dir/images"
mkdir -p "$out_dir"
for b in "${bins[@]}"; do
  image="$repo/$b:$tag"
  dockerfile="$root/Dockerfile.${b#secrets-injector-}"
  step "buildah build $image (target prebuilt, from $dockerfile)"
  # chroot isolation: no RUN runs in the prebuilt target, but it keeps buildah working without user namespaces.
  args=(--build-arg BIN_DIR=.)
  [[ "$b" == *agent ]] && args+=(--build-arg CA_BUNDLE=ca-certificates.crt)
  buildah build --isolation chroot --target prebuilt "${args[@]}" \
    -f "$dockerfile" -t "$image" "$inputs" >&2

  step "inspecting $image"
  buildah inspect --type image "$image" >"$out_dir/$b.inspect.json"
  ctr="$(buildah from "$image")"
  mnt="$(buildah mount "$ctr")"
  set +e
  "${PYTHON:-python3}" - "$out_dir/$b.inspect.json" "$mnt" "$b" "$inputs/$b" <<'PY'
import hashlib, json, os, sys
inspect_file, root, name, staged = sys.argv[1:5]
cfg = json.load(open(inspect_file))["OCIv1"]["config"]
problems = []
if cfg.get("User") != "65532:65532":
    problems.append(f"user is {cfg.get('User')!r}, want 65532:65532")
if cfg.get("Entrypoint") != [f"/{name}"]:
    problems.append(f"entrypoint is {cfg.get('Entrypoint')!r}, want ['/{name}']")
files = sorted(
    os.path.relpath(os.path.join(d, f), root)
    for d, _, fs in os.walk(root) for f in fs
)
want = [name] + (["etc/ssl/certs/ca-certificates.crt"] if name.endswith("agent") else [])
if files != sorted(want):
    problems.append(f"image files are {files}, want exactly {sorted(want)} (no shell, nothing else)")
for sh in ("bin/sh", "bin/bash", "bin/busybox"):
    if os.path.lexists(os.path.join(root, sh)):
        problems.append(f"/{sh} exists")
digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
if os.path.exists(os.path.join(root, name)) and digest(os.path.join(root, name)) != digest(staged):
    problems.append("the binary in the image differs from the staged one")
if name.endswith("agent") and "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" not in cfg.get("Env", []):
    problems.append("SSL_CERT_FILE is not set to the bundled CA roots")
if problems:
    print(f"{name}: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{name}: user 65532:65532, entrypoint /{name}, files {files}", file=sys.stderr)
PY
  rc=$?
  set -e
  buildah umount "$ctr" >/dev/null
  buildah rm "$ctr" >/dev/null
  [ "$rc" = 0 ] || die "image $image failed its inspection"
  rm -f "$out_dir/$b.tar"
  buildah push --quiet "$image" "oci-archive:$out_dir/$b.tar:$image" >/dev/null
  printf '%s -> %s (%s bytes)\n' "$image" "$out_dir/$b.tar" "$(stat -c %s "$out_dir/$b.tar")" >&2
done
step "images OK"
