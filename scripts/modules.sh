#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build out-of-tree modules against a prepared kernel tree:
#
#   scripts/modules.sh FLAVOUR [--src DIR] [make args...]   prints the build directory
#
# Without --src: the project's modules, equivalent to `make -C $KDIR M=$PWD`
# in the clone. With --src: the Kbuild directory DIR (the harness's faulty
# modules). Each source and flavour builds in its own copy under out/build/,
# so that switching between the release and debug trees never links an object
# built for the other.
source "$(dirname "$0")/lib.sh"

flavour=${1:-release}
shift || true
tree=$("$TR_TOP/scripts/kernel.sh" "$flavour")
if [ "${1:-}" = --src ]; then
	src=$(cd "$2" && pwd)
	shift 2
	build=$TR_TOP/out/build/extra-$(basename "$src")-$flavour
	mkdir -p "$build"
	cp -p "$src"/* "$build/"
else
	build=$TR_TOP/out/build/$flavour
	mkdir -p "$build"
	# tar keeps the sources' mtimes, so kbuild rebuilds only what changed.
	(cd "$TR_TOP" && git ls-files -co --exclude-standard Kbuild Kconfig drivers fs samples |
		tar -c -T -) | tar -x -C "$build"
fi
mapfile -t kmake < <(tr_kmake_args)
make -s -C "$tree" M="$build" "${kmake[@]}" -j"$(tr_jobs)" "$@" >&2
echo "$build"
