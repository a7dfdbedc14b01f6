#!/bin/bash
# `cmake --install` gives a working compiler: the installed engramc finds its
# runtime libraries and stdlib relative to itself, builds a simulator and runs it.
# Run from the repository root with the build directory as $1.
set -euo pipefail
build=${1:?usage: install.sh BUILD_DIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
installed="$tmp/prefix/bin/engramc"
[ -x "$installed" ] || { echo "FAIL: no engramc in the install tree"; exit 1; }
# a copy of the model outside the source tree: nothing may come from the checkout
cp examples/cuba.engram "$tmp/model.engram"
(cd "$tmp" && "$installed" build model.engram -o sim)
"$tmp/sim" --quiet --duration 50ms --out "$tmp/out"
grep -q '"engram_version"' "$tmp/out/summary.json" || { echo "FAIL: no summary"; exit 1; }
"$installed" --version >/dev/null
echo "install: engramc from $tmp/prefix builds and runs examples/cuba.engram"
