#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Earmarks live in memory with the pool: after vgchange -an / -ay, blocks
# that XFS allocated but has not written (fallocate) have none. A write
# into them must then not fail at writeback on a full pool: XFS provisions
# unwritten blocks again before it acknowledges the write, from unreserved
# space, or the write gets ENOSPC.
#
# 128 MiB pool, 1 GiB thin volume, mount -o discard: fallocate 16 MiB,
# deactivate and reactivate the volume group, mount, fill the pool with
# another file until ENOSPC, then write the fallocated range with fsync;
# then free space and write it again. No write error at writeback, no
# shutdown, and every acknowledged byte reads back after a remount.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate vgchange dmsetup mkfs.xfs xfs_io dd cmp blkdiscard wipefs
ktap_set_plan 8

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_dmesg_mark
xfs_io -f -c "falloc 0 16m" "$TR_MNT/prealloc" >/tmp/tr-falloc.log 2>&1
tr_check "fallocate of 16 MiB succeeds" [ $? = 0 ]
umount "$TR_MNT"
vgchange -q -an "$TR_VG" >/dev/null 2>&1 && vgchange -q -ay "$TR_VG" >/dev/null 2>&1
tr_check "the volume group deactivates and activates again" [ $? = 0 ]
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount after reactivation failed"

tr_watch_pool
tr_pattern 1 | dd of="$TR_MNT/filler" bs=1M count=256 $TR_DD_FULLBLOCK 2>/tmp/tr-fill.err
fill_msg=$(grep -v 'records' /tmp/tr-fill.err | tail -n 1)
tr_msg "filler: ${fill_msg:-no error}"
tr_check "the filler gets ENOSPC" tr_is_enospc "$fill_msg"
sync -f "$TR_MNT"
tr_pattern 2 | dd of="$TR_MNT/prealloc" bs=64k count=256 conv=notrunc,fsync $TR_DD_FULLBLOCK \
	2>/tmp/tr-pre.err
pre_msg=$(grep -v 'records' /tmp/tr-pre.err | tail -n 1)
pre_blocks=$(sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' /tmp/tr-pre.err)
tr_msg "write into the fallocated range on the full pool: ${pre_msg:-no error} after ${pre_blocks:-0} x 64 KiB"
tr_check "the write into the fallocated range gets ENOSPC at write time" tr_is_enospc "$pre_msg"
# Room again: the filler goes, and the whole range is written.
rm -f "$TR_MNT/filler"
sync -f "$TR_MNT"
tr_pattern 2 | dd of="$TR_MNT/prealloc" bs=64k count=256 conv=notrunc,fsync $TR_DD_FULLBLOCK \
	2>/dev/null
tr_check "with space back the whole range is written (fsync succeeded)" [ $? = 0 ]
tr_unwatch_pool
tr_check "the pool never left rw" [ $? = 0 ]
tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
umount "$TR_MNT"
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
tr_check "after a remount the range reads back" tr_pattern_intact "$TR_MNT/prealloc" 2
umount "$TR_MNT"

tr_vg_destroy
ktap_finished
