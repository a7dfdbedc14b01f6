#!/bin/sh
# Installs the Debian 12 packages Engram needs, only when some are missing.
# Run as root (or with sudo available). Idempotent and quick when all are present.
set -eu
PKGS="flex bison libcriterion-dev llvm-19-dev clang-19 libzstd-dev zlib1g-dev libhdf5-dev hdf5-tools
      libopenmpi-dev openmpi-bin pkg-config cmake gcc g++ make python3 python3-numpy"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "engram: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
