#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make own-tree`: build the modules the way a kernel engineer with their own
# tree does, outside the build cache, and load them in the VM:
#
#   1. extract linux-source-6.12 into a directory of their choosing,
#   2. apply patches/series in order with `patch -p1`,
#   3. configure (our fragments onto tinyconfig) and build the kernel,
#   4. `make -C $KDIR M=$PWD` in this clone, the literal command,
#   5. boot that kernel with those modules and run module_load.sh.
#
# OWN_TREE=DIR (default $TMPDIR/thin-reserve-own-tree) is where the tree goes;
# it is rebuilt from scratch every run. It must not be inside the clone:
# `make M=$PWD clean` deletes every object and module below $PWD. Steps 1-4 are what docs/building.md documents; this
# script runs them word for word so that the documented path keeps working.
source "$(dirname "$0")/lib.sh"

"$TR_TOP/scripts/deps.sh"
kdir=$(realpath -m "${OWN_TREE:-${TMPDIR:-/tmp}/thin-reserve-own-tree}")
case $kdir/ in
"$TR_TOP"/*) tr_die "OWN_TREE=$kdir is inside the clone, where M=\$PWD clean would delete its objects" ;;
esac
mapfile -t kmake < <(tr_kmake_args)
start=$(date +%s)

tr_log "1. extracting $TR_KPKG into $kdir"
rm -rf "$kdir"
mkdir -p "$kdir"
tar -xf "$TR_KTARBALL" -C "$kdir" --strip-components=1

tr_log "2. applying patches/series"
tr_series_patches | while read -r p; do
	(cd "$kdir" && patch -p1 --batch --forward --quiet) <"$TR_TOP/patches/$p" ||
		tr_die "patch $p does not apply"
done

tr_log "3. configuring and building the kernel (release config)"
make -s -C "$kdir" "${kmake[@]}" tinyconfig >/dev/null
(cd "$kdir" && scripts/kconfig/merge_config.sh -m -O . .config \
	"$TR_TOP/kernel/configs/base.config" >/dev/null)
make -s -C "$kdir" "${kmake[@]}" olddefconfig >/dev/null
grep -qx 'CONFIG_RUST=y' "$kdir/.config" || tr_die "the kernel config lost CONFIG_RUST"
make -s -C "$kdir" "${kmake[@]}" -j"$(tr_jobs)" bzImage modules
make -s -C "$kdir" "${kmake[@]}" INSTALL_MOD_PATH="$kdir/_modinst" modules_install >/dev/null

tr_log "4. make -C \$KDIR M=\$PWD in the clone"
(cd "$TR_TOP" && make -s -C "$kdir" M="$PWD" "${kmake[@]}" -j"$(tr_jobs)")
for ko in drivers/md/dm_thin_reserve.ko fs/xfs/xfs_thin.ko samples/thin_reserve/bdev_reserve_client.ko; do
	[ -s "$TR_TOP/$ko" ] || tr_die "$ko was not built"
	modinfo -F vermagic "$TR_TOP/$ko" | grep -q "^$(cat "$kdir/include/config/kernel.release") " ||
		tr_die "$ko was not built for $kdir"
done
(cd "$TR_TOP" && make -s -C "$kdir" M="$PWD" "${kmake[@]}" clean)

tr_log "5. module_load.sh in the VM, against that tree"
run=$(KDIR=$kdir "$TR_TOP/scripts/vm.sh" --flavour release --tests module_load.sh --timeout 600 | tail -n1)
grep -qE '^ok [0-9]+ selftests: thin_reservation: module_load.sh( |$)' "$run/results/ktap.txt" 2>/dev/null ||
	tr_die "module_load.sh did not pass against $kdir (console: $run/console.log)"
tr_log "own tree: built, loaded and tested in $(($(date +%s) - start)) s (console: $run/console.log)"
