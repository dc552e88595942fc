#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# ENOSPC only when the pool is really full, at every pool block size: XFS
# promises the pool what dm-thin will allocate (a delayed allocation
# extent, the pool blocks one contiguous run of its length can touch), not
# a pool block per filesystem block. On a 1 GiB pool behind a 10 GiB thin
# volume (mount -o discard), for each case: every writer gets ENOSPC with at
# least 99% of the pool in use when the first one stops, the pool never
# goes out of data space, no error is logged, and every acknowledged byte
# reads back after a remount.
#
# With pool blocks larger than 64 KiB the shim's metadata allowance and the
# writers' last indirect-block reservations (both counted in pool blocks)
# come to more than 1% of the pool: there the check is that once the data
# is written no more than the allowance and 2% of the pool is left free;
# the first ENOSPC is reported.
#
# Cases: CHUNK_KIB:WRITERS:WRITE_KIB, buffered sequential writers appending
# WRITE_KIB at a time. The release kernel runs the whole matrix (64 KiB,
# 256 KiB and 1 MiB pool blocks; 1, 2 and 4 writers); the debug kernel
# runs 1 MiB pool blocks with two writers appending 8 MiB at a time.

. "$(dirname "$0")/lib.sh"

if [ "$TR_FLAVOUR" = debug ]; then
	: "${PRECISION_CASES:=1024:2:8192}"
else
	: "${PRECISION_CASES:=64:1:4 64:4:4 256:2:1024 256:4:4 1024:1:8192 1024:2:8192 1024:4:1024}"
fi

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs dd cmp blkdiscard wipefs
ktap_set_plan $(($(echo $PRECISION_CASES | wc -w) * 3 + 1))

tr_load_xfs_thin
tr_dmesg_mark
for c in $PRECISION_CASES; do
	chunk=${c%%:*} rest=${c#*:}
	writers=${rest%%:*} kib=${rest#*:}
	what="${chunk} KiB pool blocks, $writers writer(s) of ${kib} KiB writes"
	tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
	tr_xfs_thin_volume 1G 10G thin -c "${chunk}k"
	tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
	tr_watch_pool
	TR_WRITE_KIB=$kib tr_run_writers "$writers" $((writers * 2048))
	sync -f "$TR_MNT"
	tr_unwatch_pool
	pool_ok=$?
	set -- $(tr_pool_data_blocks pool)
	used=$1 total=$2
	enospc=0 first=$total
	i=1
	while [ $i -le "$writers" ]; do
		tr_written "$TR_MNT/file$i" msg | grep -q 'No space left on device' &&
			enospc=$((enospc + 1))
		u=$(tr_written "$TR_MNT/file$i" used)
		[ "$u" -lt "$first" ] && first=$u
		i=$((i + 1))
	done
	tr_msg "$what: first ENOSPC at $(tr_percent "$(tr_permille "$first" "$total")"), $(tr_percent "$(tr_permille "$used" "$total")") once written"
	tr_check "$what: every writer got ENOSPC ($enospc of $writers), the pool never left rw" \
		[ "$enospc:$pool_ok" = "$writers:0" ]
	# Larger pool blocks: what stays free once the data is written is the
	# shim's metadata allowance (16 pool blocks and 256 KiB, at least one
	# pool block, per AG: 5 MiB of 64 KiB blocks, 8 MiB of 256 KiB
	# blocks, 32 MiB of 1 MiB blocks on this 16-AG filesystem) and at most
	# 2% of the pool more: each writer's last refused write still held its
	# indirect-block reservation, a pool block per block (measured: 5-18
	# of 1024 pool blocks).
	allowance=$(dmesg | grep -o 'allowance [0-9]* thin blocks' | tail -n 1 | awk '{ print $2 }')
	tr_msg "$what: $((total - first)) pool blocks free at the first ENOSPC, $((total - used)) once written, allowance $allowance"
	if [ "$chunk" = 64 ]; then
		tr_check "$what: pool at least 99% used at the first ENOSPC ($(tr_percent "$(tr_permille "$first" "$total")"))" \
			[ "$(tr_permille "$first" "$total")" -ge 990 ]
	else
		tr_check "$what: once written, no more than the allowance and 2% of the pool is free ($((total - used)) <= $allowance + $((total / 50)))" \
			[ $((total - used)) -le $((allowance + total / 50)) ]
	fi
	umount "$TR_MNT"
	tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
	intact=0
	i=1
	while [ $i -le "$writers" ]; do
		tr_pattern_intact "$TR_MNT/file$i" $i && intact=$((intact + 1))
		i=$((i + 1))
	done
	tr_check "$what: after a remount every acknowledged byte reads back ($intact of $writers files)" \
		[ "$intact" = "$writers" ]
	umount "$TR_MNT"
done
tr_check "no writeback errors, I/O errors, shutdowns, drift or allowance overdraws in the kernel log" \
	tr_no_harm

tr_vg_destroy
ktap_finished
