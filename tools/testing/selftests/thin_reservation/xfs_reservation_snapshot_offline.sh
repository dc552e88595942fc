#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Snapshots the shim never saw: taken while the filesystem was unmounted
# and none of our modules were loaded, and a snapshot of that snapshot.
# dm-thin reads from its metadata, when the table is loaded, whether a thin
# may share blocks, and XFS pins its log and AG headers at every mount, so
# reservations that start later still cover the shared blocks.
#
# On a pool of SNAPO_POOL_MIB (1 GiB on release, 512 MiB on debug) behind
# a 2 GiB thin volume:
#  - stock: a file of a sixth of the pool is written, the filesystem
#    unmounted, then `lvcreate -s` of the origin and of that snapshot;
#  - with reservations: the origin and the second snapshot mount
#    (-o nouuid), a filler fills the pool from the origin until ENOSPC;
#    with a little space freed, a buffered overwrite of the shared file on
#    the origin, then one on the second snapshot, each get ENOSPC; syncfs
#    succeeds, the pool stays rw, XFS does not shut down;
#  - after a remount, each of the three filesystems holds exactly what it
#    was told; xfs_repair -n is clean.

. "$(dirname "$0")/lib.sh"

# Each mount of a thin that shares its log earmarks the whole log (64 MiB
# at least from mkfs.xfs): three such mounts at the end.
: "${SNAPO_POOL_MIB:=$(tr_repeat 1024 512)}"

ktap_print_header
tr_require lvcreate lvremove lvchange mkfs.xfs xfs_io xfs_repair dd cmp
ktap_set_plan 14

sixth=$((SNAPO_POOL_MIB / 6))
mib=1048576
S2=/mnt/thin_reservation_s2
S1=/mnt/thin_reservation_s1

# Stock: nothing of ours is loaded while the file is written and the
# snapshots are taken.
tr_use stock
modprobe dm-thin-pool || ktap_exit_fail_msg "cannot load dm-thin-pool"
modprobe xfs || ktap_exit_fail_msg "cannot load xfs"
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume "${SNAPO_POOL_MIB}M" 2G thin
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_pattern 1 | dd of="$TR_MNT/shared" bs=1M count="$sixth" $TR_DD_FULLBLOCK 2>/dev/null
sync -f "$TR_MNT"
tr_check "without our modules, a file of $sixth MiB is written (syncfs succeeded)" [ $? = 0 ]
umount "$TR_MNT"
lvcreate -q -s "$TR_VG/thin" -n s1 >/tmp/tr-lvm.log 2>&1 &&
	lvcreate -q -s "$TR_VG/s1" -n s2 >>/tmp/tr-lvm.log 2>&1
tr_check "lvcreate -s of the unmounted origin, and of that snapshot" [ $? = 0 ]

tr_use reserve
tr_dmesg_mark
tr_xfs_mount discard thin "$TR_MNT" &&
	lvchange -q -ay -K "$TR_VG/s2" >>/tmp/tr-lvm.log 2>&1 &&
	tr_xfs_mount nouuid,discard s2 "$S2"
tr_check "with reservations, the origin and the snapshot of the snapshot mount" [ $? = 0 ]
tr_check "both mounts log that reservations are on" \
	[ "$(tr_dmesg_count 'Thin pool reservation enabled')" = 2 ]
tr_msg "pool at $(tr_pool_pct) after both mounts, $(tr_pool_reserved pool) blocks reserved"

tr_watch_pool
tr_pattern 2 | dd of="$TR_MNT/filler" bs=1M count=$((SNAPO_POOL_MIB * 2)) $TR_DD_FULLBLOCK \
	2>/tmp/tr-fill.err
fill_msg=$(grep -v 'records\|bytes' /tmp/tr-fill.err | tail -n 1)
tr_msg "filler: ${fill_msg:-no error}, pool at $(tr_pool_pct)"
tr_check "the filler gets ENOSPC" tr_is_enospc "$fill_msg"

tr_free_filler 8
tr_overwrite_dd "$TR_MNT/shared" 3 0 "$sixth"
o_mib=$OW_MIB
tr_msg "overwrite on the origin: $OW_MSG after $o_mib MiB, pool at $(tr_pool_pct)"
tr_check "a buffered overwrite on the origin of blocks the snapshots share gets ENOSPC" \
	tr_is_enospc "$OW_MSG"

tr_free_filler 8
tr_overwrite_dd "$S2/shared" 4 0 "$sixth"
s_mib=$OW_MIB
tr_msg "overwrite on the second snapshot: $OW_MSG after $s_mib MiB, pool at $(tr_pool_pct)"
tr_check "a buffered overwrite on the snapshot of the snapshot gets ENOSPC" \
	tr_is_enospc "$OW_MSG"
sync -f "$TR_MNT" && sync -f "$S2"
tr_check "syncfs on both succeeds" [ $? = 0 ]
tr_unwatch_pool
tr_check "the pool never left rw" [ $? = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or drift" tr_no_harm

# Room for the next mounts' pins: the filler goes.
rm -f "$TR_MNT/filler"
sync -f "$TR_MNT"
umount "$S2"
umount "$TR_MNT"
tr_pool_settle
tr_xfs_mount "" thin "$TR_MNT" &&
	tr_xfs_mount nouuid s2 "$S2" &&
	lvchange -q -ay -K "$TR_VG/s1" >>/tmp/tr-lvm.log 2>&1 &&
	tr_xfs_mount nouuid s1 "$S1" || ktap_exit_fail_msg "remount failed"
tr_holds "$TR_MNT/shared" 0 $((o_mib * mib)) 3 0 &&
	tr_holds "$TR_MNT/shared" $(((o_mib + 1) * mib)) $(((sixth - o_mib - 1) * mib)) 1 \
		$(((o_mib + 1) * mib))
tr_check "after a remount the origin holds its acknowledged $o_mib MiB and the original beyond" \
	[ $? = 0 ]
tr_holds "$S2/shared" 0 $((s_mib * mib)) 4 0 &&
	tr_holds "$S2/shared" $(((s_mib + 1) * mib)) $(((sixth - s_mib - 1) * mib)) 1 \
		$(((s_mib + 1) * mib))
tr_check "the snapshot of the snapshot holds its acknowledged $s_mib MiB and the original beyond" \
	[ $? = 0 ]
tr_holds "$S1/shared" 0 $((sixth * mib)) 1 0
tr_check "the first snapshot still holds the original file" [ $? = 0 ]
umount "$S1"
umount "$S2"
umount "$TR_MNT"
xfs_repair -n "/dev/$TR_VG/thin" >/tmp/tr-repair.log 2>&1 &&
	xfs_repair -n "/dev/$TR_VG/s2" >>/tmp/tr-repair.log 2>&1
tr_check "xfs_repair -n of the origin and the second snapshot is clean" [ $? = 0 ]

tr_vg_destroy
ktap_finished
