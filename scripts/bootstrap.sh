#!/usr/bin/env bash
# The two entry points README.md opens with, for a fresh Debian 12 machine as root:
#   scripts/bootstrap.sh demo   install what is needed, build, run the main job on its default:
#                               build TOA and UOA for the default kernel row, boot it in QEMU,
#                               show the real client addresses the modules recovered
#   scripts/bootstrap.sh test   install, build, run every test (unit, fuzz, the VM matrix)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-}
case "$mode" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "bootstrap.sh: run as root (it installs packages and builds kernel roots); e.g. sudo $0 $mode" >&2
  exit 1
fi
bash "$here/scripts/install-deps.sh"
build=${TOA_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$build" -j "$(nproc)"
if [ "$mode" = demo ]; then
  exec "$build/builder/toa-build" verify
fi
cd "$build"
exec ctest --output-on-failure --timeout 3000
