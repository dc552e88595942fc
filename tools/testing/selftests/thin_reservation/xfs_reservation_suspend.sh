#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Suspends, table reloads and lvextend while XFS writes: the reservation
# calls must neither wait for the resume (they are made with XFS's locks
# held) nor fail a promise the pool can back. A buffered writer runs while
# the thin volume is suspended without freezing XFS for 35 s (longer than
# the 30 s the shim once retried for) with writeback forced, while its
# table is reloaded, and while the pool is
# extended: it completes, syncfs succeeds, nothing is logged, and unmount
# reports no provision failures.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate lvextend dmsetup mkfs.xfs dd blkdiscard wipefs
ktap_set_plan 6

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 512M 4G thin
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_dmesg_mark
thin=$(tr_dm_name "$TR_VG" thin)

tr_pattern 1 | dd of="$TR_MNT/file" bs=64k count=$((192 * 16)) $TR_DD_FULLBLOCK \
	2>/tmp/tr-dd.err &
writer=$!
sleep 2
# Buffered writes go on into the page cache while the device is
# suspended; syncfs then makes writeback allocate (and provision) them
# before the resume, and completes after it.
dmsetup suspend --nolockfs "$thin" &&
	tr_pattern 2 | dd of="$TR_MNT/during" bs=64k count=512 $TR_DD_FULLBLOCK 2>/dev/null &&
	{ sync -f "$TR_MNT" & syncer=$!; sleep 35; } && dmsetup resume "$thin"
suspend_rc=$?
wait $syncer
dmsetup table "$thin" | dmsetup reload "$thin" && dmsetup resume "$thin"
reload_rc=$?
lvextend -q -L+64M "$TR_VG/pool" >/tmp/tr-lvm.log 2>&1
extend_rc=$?
tr_check "suspend 35 s / resume, table reload and lvextend under I/O succeed ($suspend_rc $reload_rc $extend_rc)" \
	[ "$suspend_rc:$reload_rc:$extend_rc" = 0:0:0 ]
wait $writer
tr_check "the writer completes ($(grep -v records /tmp/tr-dd.err | tail -n 1))" [ $? = 0 ]
tr_check "syncfs succeeds" sync -f "$TR_MNT"
tr_check "no writeback or I/O error, shutdown or failed provision in the kernel log" tr_no_harm
umount "$TR_MNT"
tr_check "unmount reports no provision failures" \
	sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'released; .*provisioned, 0 provision failures'"
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
tr_pattern_intact "$TR_MNT/file" 1 && tr_pattern_intact "$TR_MNT/during" 2
tr_check "both files read back" [ $? = 0 ]
umount "$TR_MNT"

tr_vg_destroy
ktap_finished
