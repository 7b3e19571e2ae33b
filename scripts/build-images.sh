#!/usr/bin/env bash
# Builds the static release binaries for every image architecture the local toolchain can build
# (scripts/target-for-arch.sh: amd64, arm64; each needs its Rust target and, when it is not this
# machine's, the cross gcc/libc), says which it skipped and why, checks every binary is static and
# of the right architecture, then builds both images FROM scratch with buildah (the Dockerfiles'
# `prebuilt` target, so no base image is pulled) per architecture and inspects them: user 65532,
# entrypoint, architecture, exactly the expected files, no shell. An architecture skipped here is
# built where users build the images: docker buildx build --platform linux/amd64,linux/arm64 (README).
#
#   scripts/build-images.sh                  # cargo build --release + images
#   scripts/build-images.sh --binaries-only  # stop after the static-binary checks
#
# Env: CARGO_TARGET_DIR (honoured), IMAGE_REPO (default localhost), IMAGE_TAG (default dev),
# SECRETS_INJECTOR_PREBUILT_DIR (skip cargo: this machine's architecture only, binaries from this
# directory). The agent image carries secrets-injector-env when the workspace has env/Cargo.toml.
# Writes target/images/<name>.tar (OCI archive: an index over every built architecture).
# Fails on the first failed step.
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
arch_tool="$root/scripts/target-for-arch.sh"

target_dir="${CARGO_TARGET_DIR:-$root/target}"
repo="${IMAGE_REPO:-localhost}"
tag="${IMAGE_TAG:-dev}"
webhook_bins=(secrets-injector-webhook)
agent_bins=(secrets-injector-agent)
if [ -f env/Cargo.toml ]; then
  agent_bins+=(secrets-injector-env)
else
  step "env/Cargo.toml is absent: secrets-injector-env is not built, checked or put in the agent image (merge the env crate to get it)"
fi
bins=("${webhook_bins[@]}" "${agent_bins[@]}")
packages=()
for b in "${bins[@]}"; do packages+=(-p "$b"); done
host="$("$arch_tool" --host)"

# why_not ARCH: prints why this machine cannot build ARCH (nothing when it can).
why_not() {
  local RUST_TARGET GNU_PREFIX CROSS_PACKAGES FILE_ARCH libc
  eval "$("$arch_tool" --vars "$1")"
  if [ -n "${SECRETS_INJECTOR_PREBUILT_DIR:-}" ] && [ "$1" != "$host" ]; then
    echo "SECRETS_INJECTOR_PREBUILT_DIR holds binaries for this machine ($host) only"
    return
  fi
  [ -n "${SECRETS_INJECTOR_PREBUILT_DIR:-}" ] && return
  if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$RUST_TARGET/lib" ]; then
    echo "Rust target $RUST_TARGET is not installed (rustup target add $RUST_TARGET)"
    return
  fi
  if [ "$1" != "$host" ]; then
    command -v "$GNU_PREFIX-gcc" >/dev/null || { echo "cross linker $GNU_PREFIX-gcc is missing (apt-get install $CROSS_PACKAGES)"; return; }
    libc="$("$GNU_PREFIX-gcc" -print-file-name=libc.a)"
    [ -f "$libc" ] || echo "static glibc for $1 is missing (apt-get install $CROSS_PACKAGES)"
  fi
}

arches=()
skipped=()
for arch in $("$arch_tool" --list); do
  reason="$(why_not "$arch")"
  if [ -z "$reason" ]; then
    arches+=("$arch")
  else
    skipped+=("$arch: $reason")
  fi
done
step "architectures: building ${arches[*]:-none}"
for s in "${skipped[@]}"; do
  printf 'SKIPPED %s; build it with docker buildx build --platform linux/%s (README)\n' "$s" "${s%%:*}" >&2
done
[ "${#arches[@]}" -gt 0 ] || die "no architecture can be built here"

command -v file >/dev/null || die "'file' is missing: apt-get install -y file"
command -v readelf >/dev/null || die "'readelf' is missing: apt-get install -y binutils"
inputs="$target_dir/image-inputs"
rm -rf "$inputs"
mkdir -p "$inputs"
for arch in "${arches[@]}"; do
  eval "$("$arch_tool" --vars "$arch")"
  if [ -n "${SECRETS_INJECTOR_PREBUILT_DIR:-}" ]; then
    bin_dir="$SECRETS_INJECTOR_PREBUILT_DIR"
    step "$arch: using prebuilt binaries from $bin_dir (no cargo build)"
  else
    bin_dir="$target_dir/$RUST_TARGET/release"
    step "$arch: cargo build --release --target $RUST_TARGET (static glibc; takes minutes)"
    (eval "$("$arch_tool" --cargo-env "$arch")" && cargo build --release --locked --target "$RUST_TARGET" "${packages[@]}")
  fi

  step "$arch: checking the binaries are static $FILE_ARCH executables"
  for b in "${bins[@]}"; do
    path="$bin_dir/$b"
    [ -x "$path" ] || die "$path is missing or not executable"
    desc="$(file -L "$path")"
    case "$desc" in
      *"statically linked"* | *"static-pie linked"*) ;;
      *) die "$b is not static: $desc" ;;
    esac
    case "$desc" in
      *"$FILE_ARCH"*) ;;
      *) die "$b is not a $arch ($FILE_ARCH) binary: $desc" ;;
    esac
    # No program interpreter and no NEEDED entry: nothing for a dynamic loader to do on scratch.
    if readelf -lW "$path" | grep -q 'Requesting program interpreter'; then
      die "$b has a program interpreter: $(readelf -lW "$path" | grep 'program interpreter')"
    fi
    if readelf -dW "$path" | grep -q '(NEEDED)'; then
      die "$b needs shared libraries: $(readelf -dW "$path" | grep '(NEEDED)' | tr -s ' ')"
    fi
    size=$(stat -c %s "$path")
    stripped="$(mktemp)"
    if command -v "$GNU_PREFIX-strip" >/dev/null && "$GNU_PREFIX-strip" -o "$stripped" "$path" 2>/dev/null; then
      ssize="$(stat -c %s "$stripped") bytes stripped"
    elif [ "$arch" = "$host" ] && command -v strip >/dev/null && strip -o "$stripped" "$path" 2>/dev/null; then
      ssize="$(stat -c %s "$stripped") bytes stripped"
    else
      ssize="(no strip for $arch: size as built only)"
    fi
    rm -f "$stripped"
    printf '%-6s %-26s static  %9s bytes as built, %s\n' "$arch" "$b" "$size" "$ssize" >&2
  done

  # The Dockerfiles' prebuilt layout: <arch>/secrets-injector-webhook, <arch>/agent/<agent binaries>.
  mkdir -p "$inputs/$arch/agent"
  for b in "${webhook_bins[@]}"; do install -m 0755 "$bin_dir/$b" "$inputs/$arch/$b"; done
  for b in "${agent_bins[@]}"; do install -m 0755 "$bin_dir/$b" "$inputs/$arch/agent/$b"; done
done
"$binaries_only" && { step "binaries OK for ${arches[*]} (--binaries-only: no images)"; exit 0; }

step "staging the CA roots"
ca_src=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_src" ] || die "$ca_src is missing: apt-get install -y ca-certificates"
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
for b in secrets-injector-webhook secrets-injector-agent; do
  list="$repo/$b:$tag"
  dockerfile="$root/Dockerfile.${b#secrets-injector-}"
  if [ "$b" = secrets-injector-agent ]; then want_bins=("${agent_bins[@]}"); else want_bins=("${webhook_bins[@]}"); fi
  # A list or an image (older runs of this script) under the same name would block `manifest create`.
  buildah manifest rm "$list" >/dev/null 2>&1 || buildah rmi -f "$list" >/dev/null 2>&1 || true
  buildah manifest create "$list" >/dev/null
  for arch in "${arches[@]}"; do
    image="$repo/$b:$tag-$arch"
    step "buildah build $image (linux/$arch, target prebuilt, from $dockerfile)"
    # chroot isolation: no RUN runs in the prebuilt target, but it keeps buildah working without user namespaces.
    args=(--platform "linux/$arch" --build-arg "TARGETARCH=$arch" --build-arg "BIN_DIR=$arch")
    [ "$b" = secrets-injector-agent ] && args+=(--build-arg CA_BUNDLE=ca-certificates.crt)
    buildah build --isolation chroot --target prebuilt "${args[@]}" \
      -f "$dockerfile" -t "$image" "$inputs" >&2

    step "inspecting $image"
    buildah inspect --type image "$image" >"$out_dir/$b-$arch.inspect.json"
    ctr="$(buildah from "$image")"
    mnt="$(buildah mount "$ctr")"
    set +e
    "${PYTHON:-python3}" - "$out_dir/$b-$arch.inspect.json" "$mnt" "$b" "$arch" "$inputs/$arch" "${want_bins[@]}" <<'PY'
import hashlib, json, os, sys
inspect_file, root, name, arch, staged = sys.argv[1:6]
want_bins = sys.argv[6:]
oci = json.load(open(inspect_file))["OCIv1"]
cfg = oci["config"]
problems = []
if (oci.get("os"), oci.get("architecture")) != ("linux", arch):
    problems.append(f"platform is {oci.get('os')}/{oci.get('architecture')}, want linux/{arch}")
if cfg.get("User") != "65532:65532":
    problems.append(f"user is {cfg.get('User')!r}, want 65532:65532")
if cfg.get("Entrypoint") != [f"/{name}"]:
    problems.append(f"entrypoint is {cfg.get('Entrypoint')!r}, want ['/{name}']")
files = sorted(
    os.path.relpath(os.path.join(d, f), root)
    for d, _, fs in os.walk(root) for f in fs
)
want = want_bins + (["etc/ssl/certs/ca-certificates.crt"] if name.endswith("agent") else [])
if files != sorted(want):
    problems.append(f"image files are {files}, want exactly {sorted(want)} (no shell, nothing else)")
for sh in ("bin/sh", "bin/bash", "bin/busybox"):
    if os.path.lexists(os.path.join(root, sh)):
        problems.append(f"/{sh} exists")
digest = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
for b in want_bins:
    src = os.path.join(staged, b) if b == name and not name.endswith("agent") else os.path.join(staged, "agent", b)
    got = os.path.join(root, b)
    if os.path.exists(got) and digest(got) != digest(src):
        problems.append(f"/{b} in the image differs from the staged one")
    if os.path.exists(got) and not os.stat(got).st_mode & 0o111:
        problems.append(f"/{b} is not executable")
if name.endswith("agent") and "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" not in cfg.get("Env", []):
    problems.append("SSL_CERT_FILE is not set to the bundled CA roots")
if problems:
    print(f"{name} ({arch}): " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{name} ({arch}): linux/{arch}, user 65532:65532, entrypoint /{name}, files {files}", file=sys.stderr)
PY
    rc=$?
    set -e
    buildah umount "$ctr" >/dev/null
    buildah rm "$ctr" >/dev/null
    [ "$rc" = 0 ] || die "image $image failed its inspection"
    buildah manifest add "$list" "$image" >/dev/null
  done
  rm -f "$out_dir/$b.tar"
  buildah manifest push --quiet --all "$list" "oci-archive:$out_dir/$b.tar:$list" >/dev/null
  printf '%s (%s) -> %s (%s bytes)\n' "$list" "${arches[*]}" "$out_dir/$b.tar" "$(stat -c %s "$out_dir/$b.tar")" >&2
done
for s in "${skipped[@]}"; do printf 'SKIPPED %s\n' "$s" >&2; done
step "images OK for ${arches[*]}"
