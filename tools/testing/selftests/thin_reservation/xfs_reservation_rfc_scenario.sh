#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# THE GOAL: the 2016 RFC's scenario with reservations on. Three buffered
# writers fill a 10 GiB thin volume on a 1 GiB pool (mounted -o discard):
# each must stop with ENOSPC, the pool must never go out of data space,
# nothing may be lost (every acknowledged byte reads back after a remount),
# and unmount must give every reservation back with the filesystem and the
# pool metadata clean. stock_rfc_scenario_loses_data.sh is the same scenario
# without our modules, for comparison. The debug kernel runs it on a
# 512 MiB pool (`make demo` runs the full size on the release kernel).

. "$(dirname "$0")/lib.sh"

: "${RFC_POOL_SIZE:=$(tr_repeat 1G 512M)}" "${RFC_WRITERS:=3}"
: "${RFC_DD_LIMIT_MIB:=$(tr_repeat 3072 1536)}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs xfs_repair dd cmp blkdiscard wipefs
ktap_set_plan 13

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume "$RFC_POOL_SIZE" 10G thin
before=$(tr_pool_reserved pool)

tr_dmesg_mark
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_check "mount logs 'Thin pool reservation enabled' with the thin block size" \
	sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'Thin pool reservation enabled, thin block size 64 KiB'"

tr_watch_pool
start=$(date +%s)
tr_run_writers "$RFC_WRITERS" "$RFC_DD_LIMIT_MIB"
# syncfs reports writeback errors in its result; plain sync always exits 0.
sync -f "$TR_MNT"
sync_rc=$?
sleep 1
tr_unwatch_pool
pool_ok=$?
set -- $(tr_pool_data_blocks pool)
used=$1 total=$2

enospc=0 acked=0 first_used=$total
i=1
while [ $i -le "$RFC_WRITERS" ]; do
	tr_msg "writer $i: dd exit $(tr_written "$TR_MNT/file$i" rc): $(tr_written "$TR_MNT/file$i" msg)," \
		"$(tr_mib "$(stat -c %s "$TR_MNT/file$i")") acknowledged"
	tr_written "$TR_MNT/file$i" msg | grep -q 'No space left on device' && enospc=$((enospc + 1))
	acked=$((acked + $(stat -c %s "$TR_MNT/file$i")))
	u=$(tr_written "$TR_MNT/file$i" used)
	[ "$u" -lt "$first_used" ] && first_used=$u
	i=$((i + 1))
done
first=$(tr_permille "$first_used" "$total")
tr_msg "$(($(date +%s) - start)) s; acknowledged $(tr_mib $acked) in all"
tr_msg "pool blocks in use when the first writer got ENOSPC: $first_used/$total ($(tr_percent "$first"))"
tr_msg "pool blocks in use after sync: $used/$total"

tr_check "every writer got ENOSPC ($enospc of $RFC_WRITERS)" [ "$enospc" = "$RFC_WRITERS" ]
tr_check "the pool never went out of data space" [ "$pool_ok" = 0 ]
tr_check "syncfs succeeded (no writeback error reported)" [ "$sync_rc" = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
# Blocks allocated but not yet written back are earmarked, not in use,
# when a writer gets ENOSPC; the second check counts them once written.
# Measured on 1 GiB: release 98.2% / 99.2%; debug 93.2-95.3% / 93.6-99.5%
# (the goal is 99%; these guard against the worst-case model's early
# ENOSPC). What is unused then is dirty data in flight and the metadata
# allowance, fixed amounts: a smaller pool is held to the same bytes.
block=$(tr_pool_block_bytes pool)
tr_check "ENOSPC came late: pool at least 90% used (or 10% of 1 GiB unused) when the first writer got ENOSPC" \
	tr_pool_used_within "$first_used" "$total" "$block" 900
tr_check "the acknowledged data fills at least 90% of the pool (or all but 10% of 1 GiB) once written ($(tr_percent "$(tr_permille "$used" "$total")"))" \
	tr_pool_used_within "$used" "$total" "$block" 900

umount "$TR_MNT"
tr_check "unmount gave every reservation back (pool reserved $before -> $(tr_pool_reserved pool))" \
	[ "$(tr_pool_reserved pool)" = "$before" ]
tr_check "xfs_repair -n finds nothing to fix" \
	sh -c "xfs_repair -n /dev/$TR_VG/thin >/dev/null 2>&1"

tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
intact=0
i=1
while [ $i -le "$RFC_WRITERS" ]; do
	tr_pattern_intact "$TR_MNT/file$i" $i && intact=$((intact + 1))
	i=$((i + 1))
done
tr_check "after a remount every acknowledged byte reads back ($intact of $RFC_WRITERS files intact)" \
	[ "$intact" = "$RFC_WRITERS" ]
tr_check "acknowledged bytes fit in the pool" \
	[ "$acked" -le $((total * $(tr_pool_block_bytes pool))) ]
umount "$TR_MNT"

# The pool's metadata: deactivate, check the metadata component read-only.
lvchange -q -an "$TR_VG" >/dev/null 2>&1
if lvchange -q -ay -y "$TR_VG/pool_tmeta" >/dev/null 2>&1; then
	tr_check "thin_check finds the pool metadata clean" \
		thin_check -q "/dev/$TR_VG/pool_tmeta"
	lvchange -q -an "$TR_VG/pool_tmeta" >/dev/null 2>&1
else
	tr_check "thin_check finds the pool metadata clean (pool reactivates, lvm runs thin_check)" \
		sh -c "lvchange -q -ay $TR_VG/pool >/dev/null 2>&1"
fi
tr_check "xfs_thin reported its unmount with zero provision failures" \
	sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'xfs_thin: .*released; .*provisioned, 0 provision failures'"

tr_vg_destroy
ktap_finished
