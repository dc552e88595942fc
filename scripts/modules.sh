#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the out-of-tree modules against a prepared kernel tree:
#
#   scripts/modules.sh FLAVOUR [make args...]   prints the build directory
#
# Equivalent to `make -C $KDIR M=$PWD` in the clone, but each flavour builds
# in its own copy under out/build/ so that switching between the release and
# debug trees never links an object built for the other.
source "$(dirname "$0")/lib.sh"

flavour=${1:-release}
shift || true
tree=$(scripts_dir=$(dirname "$0") && "$scripts_dir/kernel.sh" "$flavour")
build=$TR_TOP/out/build/$flavour
mkdir -p "$build"
# tar keeps the sources' mtimes, so kbuild rebuilds only what changed.
(cd "$TR_TOP" && git ls-files -co --exclude-standard Kbuild Kconfig drivers fs samples |
	tar -c -T -) | tar -x -C "$build"
mapfile -t kmake < <(tr_kmake_args)
make -s -C "$tree" M="$build" "${kmake[@]}" -j"$(tr_jobs)" "$@" >&2
echo "$build"
