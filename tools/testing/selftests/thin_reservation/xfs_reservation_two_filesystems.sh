#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Two XFS filesystems on two thin volumes of one pool write at the same
# time: both end with ENOSPC, neither loses data, the pool is never driven
# out of space, and unmounting both gives every reservation back. The
# debug kernel shares a 256 MiB pool instead of 512 MiB.

. "$(dirname "$0")/lib.sh"

: "${TWO_FS_POOL:=$(tr_repeat 512M 256M)}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs dd cmp blkdiscard wipefs
ktap_set_plan 6

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume "$TWO_FS_POOL" 4G a
tr_xfs_thin_volume "$TWO_FS_POOL" 4G b
before=$(tr_pool_reserved pool)
tr_dmesg_mark
tr_xfs_mount "" a "$TR_MNT/a" && tr_xfs_mount "" b "$TR_MNT/b" ||
	ktap_exit_fail_msg "mount failed"

tr_watch_pool
tr_write_pattern "$TR_MNT/a/file" 1 4096 &
pids=$!
tr_write_pattern "$TR_MNT/b/file" 2 4096 &
wait $pids $!
sync
tr_unwatch_pool
pool_ok=$?
for fs in a b; do
	tr_msg "$fs: $(tr_written "$TR_MNT/$fs/file" msg)," \
		"$(tr_mib "$(stat -c %s "$TR_MNT/$fs/file")") acknowledged"
done
tr_msg "pool used/total: $(tr_pool_data_blocks pool)"

enospc=0
for fs in a b; do
	tr_written "$TR_MNT/$fs/file" msg | grep -q 'No space left on device' &&
		enospc=$((enospc + 1))
done
tr_check "both writers got ENOSPC ($enospc of 2)" [ "$enospc" = 2 ]
tr_check "the pool never went out of data space" [ "$pool_ok" = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
umount "$TR_MNT/a" "$TR_MNT/b"
tr_check "unmounting both gave every reservation back" [ "$(tr_pool_reserved pool)" = "$before" ]
tr_xfs_mount "" a "$TR_MNT/a" && tr_xfs_mount "" b "$TR_MNT/b" ||
	ktap_exit_fail_msg "remount failed"
tr_check "a's data reads back intact after a remount" tr_pattern_intact "$TR_MNT/a/file" 1
tr_check "b's data reads back intact after a remount" tr_pattern_intact "$TR_MNT/b/file" 2
umount "$TR_MNT/a" "$TR_MNT/b"

tr_vg_destroy
ktap_finished
