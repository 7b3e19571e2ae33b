#!/bin/sh
# The one place that knows the image architectures: Docker TARGETARCH -> Rust target, GNU
# toolchain prefix, Debian cross packages, and what `file` prints for a binary of that arch.
# Used by Dockerfile.webhook, Dockerfile.agent (builder stages), scripts/build-images.sh and
# scripts/check-chart.sh. POSIX sh: the builder image runs it before anything else is installed.
#
#   target-for-arch.sh ARCH               # the Rust target, e.g. aarch64-unknown-linux-gnu
#   target-for-arch.sh --list             # every supported ARCH, one a line
#   target-for-arch.sh --host             # the ARCH of this machine
#   target-for-arch.sh --vars ARCH        # shell assignments: RUST_TARGET GNU_PREFIX CROSS_PACKAGES FILE_ARCH
#   target-for-arch.sh --cargo-env ARCH   # exports for `eval`: RUST_TARGET, RUSTFLAGS (+crt-static) and,
#                                         # when ARCH is not the host's, the cross linker/CC/AR
#   target-for-arch.sh --install ARCH     # (root, Debian) rustup target + cross gcc/libc when cross-building
set -eu

ARCHES="amd64 arm64"

die() {
  echo "target-for-arch: $*" >&2
  exit 1
}

# vars ARCH: sets RUST_TARGET GNU_PREFIX CROSS_PACKAGES FILE_ARCH, or fails naming the supported ones.
vars() {
  case "${1:-}" in
    amd64)
      RUST_TARGET=x86_64-unknown-linux-gnu
      GNU_PREFIX=x86_64-linux-gnu
      CROSS_PACKAGES="gcc-x86-64-linux-gnu libc6-dev-amd64-cross"
      FILE_ARCH=x86-64
      ;;
    arm64)
      RUST_TARGET=aarch64-unknown-linux-gnu
      GNU_PREFIX=aarch64-linux-gnu
      CROSS_PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
      FILE_ARCH="ARM aarch64"
      ;;
    "")
      die "no architecture given (TARGETARCH is empty: build with BuildKit, e.g. docker buildx build, or pass --build-arg TARGETARCH=amd64)"
      ;;
    *)
      die "unsupported architecture '$1': supported are $ARCHES"
      ;;
  esac
}

host_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "unsupported build machine $(uname -m): supported are $ARCHES" ;;
  esac
}

# Cargo's per-target variable names: upper case, '-' -> '_' (CARGO_TARGET_<T>_LINKER, CC_<t>).
upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }
lower() { echo "$1" | tr '-' '_'; }

case "${1:-}" in
  --list)
    for a in $ARCHES; do echo "$a"; done
    ;;
  --host)
    host_arch
    ;;
  --vars)
    vars "${2:-}"
    printf "RUST_TARGET='%s'\nGNU_PREFIX='%s'\nCROSS_PACKAGES='%s'\nFILE_ARCH='%s'\n" \
      "$RUST_TARGET" "$GNU_PREFIX" "$CROSS_PACKAGES" "$FILE_ARCH"
    ;;
  --cargo-env)
    vars "${2:-}"
    echo "export RUST_TARGET='$RUST_TARGET'"
    # crt-static links glibc statically, so the binaries run on scratch.
    echo "export RUSTFLAGS='-C target-feature=+crt-static'"
    if [ "$2" != "$(host_arch)" ]; then
      echo "export CARGO_TARGET_$(upper "$RUST_TARGET")_LINKER='$GNU_PREFIX-gcc'"
      echo "export CC_$(lower "$RUST_TARGET")='$GNU_PREFIX-gcc'"
      echo "export AR_$(lower "$RUST_TARGET")='$GNU_PREFIX-ar'"
    fi
    ;;
  --install)
    vars "${2:-}"
    rustup target add "$RUST_TARGET"
    if [ "$2" != "$(host_arch)" ]; then
      apt-get update -q
      # shellcheck disable=SC2086 # a word list on purpose
      apt-get install -y -q --no-install-recommends $CROSS_PACKAGES
      rm -rf /var/lib/apt/lists/*
    fi
    ;;
  -*)
    die "unknown option $1 (see the header of $0)"
    ;;
  *)
    vars "${1:-}"
    echo "$RUST_TARGET"
    ;;
esac
