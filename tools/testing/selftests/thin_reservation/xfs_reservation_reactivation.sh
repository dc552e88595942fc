#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Earmarks live in memory with the pool: after vgchange -an / -ay, blocks
# that XFS allocated but has not written (fallocate) have none until the
# mount provisions its unwritten extents again. A fallocated range must
# then stay writable on a full pool, and an unwritten range the pool could
# not back at mount must not fail at writeback: it gets ENOSPC at write
# time.
#
# 128 MiB pool, 1 GiB thin volume, mount -o discard: fallocate 16 MiB,
# deactivate and reactivate the volume group, mount, fill the pool with
# another file until ENOSPC, then write the fallocated range with fsync:
# it succeeds. Then fallocate 16 MiB more, deactivate and reactivate, let
# another thin volume take all but 4 MiB of the pool, mount: the mount
# cannot provision the range and says so, and writing it gets ENOSPC at
# write time; once that volume's blocks are discarded it is written. No write error at writeback,
# no shutdown, and every acknowledged byte reads back after a remount.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate vgchange dmsetup mkfs.xfs xfs_io dd cmp blkdiscard wipefs
ktap_set_plan 13

# Deactivates and activates the volume group: the pool's earmarks end.
reactivate() {
	vgchange -q -an "$TR_VG" >/dev/null 2>&1 && vgchange -q -ay "$TR_VG" >/dev/null 2>&1
}

# write_range NAME N: writes the first 16 MiB of $TR_MNT/NAME with writer
# N's pattern and fsync; dd's exit code in pre_rc, its last message in
# pre_msg, whole 64 KiB records in pre_blocks.
write_range() {
	tr_pattern "$2" | dd of="$TR_MNT/$1" bs=64k count=256 conv=notrunc,fsync \
		$TR_DD_FULLBLOCK 2>/tmp/tr-pre.err
	pre_rc=$?
	pre_msg=$(grep -v 'records' /tmp/tr-pre.err | tail -n 1)
	pre_blocks=$(sed -n 's/^\([0-9]*\)+[0-9]* records out$/\1/p' /tmp/tr-pre.err)
}

both_intact() {
	tr_pattern_intact "$TR_MNT/prealloc" 2 && tr_pattern_intact "$TR_MNT/late" 3
}

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_dmesg_mark
xfs_io -f -c "falloc 0 16m" "$TR_MNT/prealloc" >/tmp/tr-falloc.log 2>&1
tr_check "fallocate of 16 MiB succeeds" [ $? = 0 ]
umount "$TR_MNT"
reactivate
tr_check "the volume group deactivates and activates again" [ $? = 0 ]
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount after reactivation failed"
tr_check "the mount provisions the fallocated range again" \
	[ "$(tr_dmesg_count 'unwritten extents not provisioned')" = 0 ]

tr_watch_pool
tr_pattern 1 | dd of="$TR_MNT/filler" bs=1M count=256 $TR_DD_FULLBLOCK 2>/tmp/tr-fill.err
fill_msg=$(grep -v 'records' /tmp/tr-fill.err | tail -n 1)
tr_msg "filler: ${fill_msg:-no error}"
tr_check "the filler gets ENOSPC" tr_is_enospc "$fill_msg"
sync -f "$TR_MNT"
write_range prealloc 2
tr_msg "write into the fallocated range on the full pool: ${pre_msg:-no error}, ${pre_blocks:-0} x 64 KiB"
tr_check "the fallocated range is written whole on the full pool (fsync succeeded)" \
	[ "$pre_rc:$pre_blocks" = 0:256 ]

# A range the pool cannot back when the filesystem is mounted again:
# another thin volume takes the pool's free space while it is inactive.
tr_xfs_delete "$TR_MNT/filler"
sync -f "$TR_MNT"
tr_pool_settle
xfs_io -f -c "falloc 0 16m" "$TR_MNT/late" >/tmp/tr-falloc.log 2>&1
tr_check "with the filler gone, fallocate of 16 MiB more succeeds" [ $? = 0 ]
tr_unwatch_pool
watch1=$?
umount "$TR_MNT"
reactivate
lvcreate -q -T "$TR_VG/pool" -n other -V 1G >/dev/null 2>&1 ||
	ktap_exit_fail_msg "lvcreate other failed"
# Leave 4 MiB of the pool free: less than the range, and no writer without
# a reservation runs the pool out of space.
other_mib=$(($(tr_pool_free pool) * $(tr_pool_block_bytes pool) / 1048576 - 4))
dd if=/dev/zero of="$(tr_thin_dev other)" bs=1M count="$other_mib" oflag=direct 2>/dev/null
tr_check "another thin volume takes all but 4 MiB of the pool" [ $? = 0 ]
tr_dmesg_mark
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount on the full pool failed"
tr_check "the mount says the range is not provisioned" \
	[ "$(tr_dmesg_count 'unwritten extents not provisioned')" = 1 ]
tr_watch_pool
write_range late 3
tr_msg "write into the unbacked range: ${pre_msg:-no error} after ${pre_blocks:-0} x 64 KiB"
tr_check "writing it gets ENOSPC at write time" tr_is_enospc "$pre_msg"
# Room again: the other volume's blocks are discarded, and the range is
# written whole.
blkdiscard "$(tr_thin_dev other)"
tr_pool_settle
write_range late 3
tr_check "with space back the whole range is written (fsync succeeded)" \
	[ "$pre_rc:$pre_blocks" = 0:256 ]
tr_unwatch_pool
tr_check "the pool never left rw" [ "$?:$watch1" = 0:0 ]
tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
umount "$TR_MNT"
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
tr_check "after a remount both ranges read back" both_intact
umount "$TR_MNT"

tr_vg_destroy
ktap_finished
