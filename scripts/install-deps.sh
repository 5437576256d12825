#!/usr/bin/env bash
# Installs everything toa-build needs to build itself and run its tests on Debian 12.
# Idempotent: apt skips what is already there.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential cmake ninja-build pkg-config git
  libcli11-dev libyaml-cpp-dev libboost-dev libboost-filesystem-dev nlohmann-json3-dev catch2
  qemu-system-x86 qemu-utils debootstrap dkms busybox-static rpm cpio zstd xz-utils
  kmod libelf-dev bc flex bison clang libclang-rt-14-dev iproute2 python3 perl
  patch curl libarchive-tools
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
