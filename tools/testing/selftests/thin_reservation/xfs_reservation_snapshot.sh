#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Thin snapshots with reservations on. A snapshot shares every block of its
# origin, so the next write to each needs a new pool block that nobody had
# reserved. XFS provisions it before the write is acknowledged, or the
# write gets ENOSPC; the log and the AG headers are pinned, so the pool
# earmarks their copies when the snapshot is taken, or refuses it.
#
# On a pool of SNAP_POOL_MIB (1 GiB on release, 512 MiB on debug) behind a
# 10 GiB thin volume, mount -o discard, snapshots taken with lvm:
#  - a file of a third of the pool, a snapshot of the mounted origin, a
#    second file that fills the pool; then the first file is overwritten in
#    place with buffered writes, direct I/O and mmap, each in its own third
#    and each after a little space was freed: each stops with ENOSPC
#    (SIGBUS for mmap), the pool stays rw and XFS does not shut down;
#  - a second snapshot on the full pool is refused, and the origin goes on;
#  - deleting the snapshot returns its blocks: the overwrite completes;
#  - after a remount every acknowledged byte reads back;
#  - two snapshots of the origin, one activated, mounted (-o nouuid) and
#    written until ENOSPC: both filesystems read back what they were told;
#  - thin_check and xfs_repair -n are clean at the end.

. "$(dirname "$0")/lib.sh"

# The debug kernel runs a 512 MiB pool. A snapshot earmarks the whole log
# (mkfs.xfs makes at least 64 MiB of it), once for the origin and once for
# the mounted snapshot, so the pool cannot be much smaller.
: "${SNAP_POOL_MIB:=$(tr_repeat 1024 512)}" "${SNAP_MKFS_OPTS=}"

ktap_print_header
tr_require lvcreate lvremove lvchange dmsetup mkfs.xfs xfs_io xfs_repair thin_check \
	dd cmp blkdiscard wipefs
ktap_set_plan 30

# The origin's file is a third of the pool; the overwrites take a third
# of it each.
third=$((SNAP_POOL_MIB / 9))
file=$TR_MNT/origin

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
TR_MKFS_OPTS=$SNAP_MKFS_OPTS tr_xfs_thin_volume "${SNAP_POOL_MIB}M" 10G thin
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_dmesg_mark

tr_pattern 1 | dd of="$file" bs=1M count=$((third * 3)) $TR_DD_FULLBLOCK 2>/dev/null
sync -f "$TR_MNT"
tr_check "the origin's file of $((third * 3)) MiB is written (syncfs succeeded)" [ $? = 0 ]
lvcreate -q -s "$TR_VG/thin" -n snap >/tmp/tr-lvm.log 2>&1
tr_check "lvcreate -s takes a snapshot of the mounted origin" [ $? = 0 ]
tr_msg "pool at $(tr_pool_pct) after the snapshot, $(tr_pool_reserved pool) blocks reserved"

tr_watch_pool
tr_pattern 2 | dd of="$TR_MNT/filler" bs=1M count=$((SNAP_POOL_MIB * 2)) $TR_DD_FULLBLOCK \
	2>/tmp/tr-fill.err
fill_msg=$(grep -v 'records\|bytes' /tmp/tr-fill.err | tail -n 1)
tr_msg "filler: ${fill_msg:-no error}, pool at $(tr_pool_pct)"
tr_check "the filler gets ENOSPC" tr_is_enospc "$fill_msg"

# Buffered: the first third of the file.
tr_free_filler 16
tr_overwrite_dd "$file" 3 0 "$third"
a_mib=$OW_MIB
tr_msg "buffered overwrite: $OW_MSG after $a_mib MiB, pool at $(tr_pool_pct)"
tr_check "a buffered overwrite of shared blocks gets ENOSPC" tr_is_enospc "$OW_MSG"
tr_check "syncfs after the buffered overwrite succeeds" sync -f "$TR_MNT"

# Direct I/O: the second third.
tr_free_filler 16
tr_overwrite_dd "$file" 4 "$third" "$third" oflag=direct
b_mib=$OW_MIB b_part=$OW_PART
tr_msg "direct I/O overwrite: $OW_MSG after $b_mib MiB (+$b_part short), pool at $(tr_pool_pct)"
tr_check "a direct I/O overwrite of shared blocks gets ENOSPC" tr_is_enospc "$OW_MSG"

# mmap: the last third, a MiB per xfs_io until one is killed.
tr_free_filler 16
c_mib=0
while [ $c_mib -lt $third ]; do
	off=$(((2 * third + c_mib) * 1048576))
	xfs_io -c "mmap -w $off 1m" -c "mwrite -S 0x55 $off 1m" -c "msync -s $off 1m" \
		"$file" >/dev/null 2>&1 || break
	c_mib=$((c_mib + 1))
done
mmap_rc=$(xfs_io -c "mmap -w $off 1m" -c "mwrite -S 0x55 $off 1m" "$file" >/dev/null 2>&1; echo $?)
tr_msg "mmap overwrite: $c_mib MiB written, then exit $mmap_rc, pool at $(tr_pool_pct)"
tr_check "an mmap overwrite of shared blocks gets SIGBUS before the end" \
	[ "$c_mib" -lt "$third" -a "$mmap_rc" = 135 ]
tr_check "syncfs after the overwrites succeeds" sync -f "$TR_MNT"
tr_unwatch_pool
tr_check "the pool never left rw" [ $? = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or drift so far" tr_no_harm

lvcreate -q -s "$TR_VG/thin" -n snap2 >/tmp/tr-lvm.log 2>&1
snap2_rc=$?
tr_msg "a second snapshot on the full pool: exit $snap2_rc, $(grep -i 'space\|fail' /tmp/tr-lvm.log | head -n 1)"
tr_check "a second snapshot on the full pool is refused" [ "$snap2_rc" != 0 ]
tr_check "the refused snapshot leaves the origin active, not suspended" \
	sh -c "dmsetup info $(tr_dm_name "$TR_VG" thin) | grep -q 'State: *ACTIVE'"

used_before=$(tr_pool_data_blocks pool | awk '{ print $1 }')
lvremove -q -f "$TR_VG/snap" >/tmp/tr-lvm.log 2>&1
tr_check "lvremove deletes the snapshot" [ $? = 0 ]
tr_pool_settle
used_after=$(tr_pool_data_blocks pool | awk '{ print $1 }')
tr_msg "deleting the snapshot freed $((used_before - used_after)) pool blocks"
tr_check "deleting the snapshot returns its blocks" [ "$used_after" -lt "$used_before" ]
tr_overwrite_dd "$file" 3 "$a_mib" $((third - a_mib))
tr_msg "buffered overwrite resumed at $a_mib MiB: $OW_MSG after $OW_MIB MiB"
tr_check "with the snapshot gone the overwrite completes" \
	[ "$OW_RC" = 0 -a "$OW_MIB" = $((third - a_mib)) ]
tr_check "syncfs succeeds" sync -f "$TR_MNT"

umount "$TR_MNT"
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
# What the file must hold: each third overwritten as far as acknowledged
# (the first one completely, resumed from its last whole MiB), the rest
# the original stream.
mib=1048576
b_end=$((third + b_mib + b_part))
tr_holds "$file" 0 $((a_mib * mib)) 3 0 &&
	tr_holds "$file" $((a_mib * mib)) $(((third - a_mib) * mib)) 3 0 &&
	tr_holds "$file" $((third * mib)) $((b_mib * mib)) 4 0 &&
	tr_holds "$file" $((b_end * mib)) $(((2 * third - b_end) * mib)) 1 $((b_end * mib))
tr_check "after a remount the buffered and direct I/O thirds hold every acknowledged byte" [ $? = 0 ]
c_off=$((2 * third + c_mib + 1))
c_bad=$(dd if="$file" bs=1M skip=$((2 * third)) count="$c_mib" 2>/dev/null | tr -d U | wc -c)
tr_holds "$file" $((c_off * mib)) $(((3 * third - c_off) * mib)) 1 $((c_off * mib))
c_rest=$?
tr_check "after a remount the mmap third holds its $c_mib written MiB and the original beyond" \
	[ "$c_bad" = 0 -a "$c_rest" = 0 ]

# Two snapshots of the origin; the second is activated, mounted and filled.
rm -f "$TR_MNT/filler"
sync -f "$TR_MNT"
tr_pool_settle
lvcreate -q -s "$TR_VG/thin" -n s1 >/tmp/tr-lvm.log 2>&1 &&
	lvcreate -q -s "$TR_VG/thin" -n s2 >>/tmp/tr-lvm.log 2>&1
tr_check "two snapshots of the origin" [ $? = 0 ]
lvchange -q -ay -K "$TR_VG/s2" >>/tmp/tr-lvm.log 2>&1 &&
	tr_xfs_mount nouuid,discard s2 /mnt/s2
tr_check "the second snapshot activates and mounts (-o nouuid)" [ $? = 0 ]
tr_watch_pool
tr_pattern 6 | dd of=/mnt/s2/new bs=1M count=$((SNAP_POOL_MIB * 2)) $TR_DD_FULLBLOCK \
	2>/tmp/tr-fill.err
s2_msg=$(grep -v 'records' /tmp/tr-fill.err | tail -n 1)
tr_msg "writer on the snapshot: ${s2_msg:-no error}, pool at $(tr_pool_pct)"
tr_check "the writer on the snapshot gets ENOSPC" tr_is_enospc "$s2_msg"
tr_check "syncfs on the snapshot succeeds" sync -f /mnt/s2
s2_size=$(stat -c %s /mnt/s2/new)
# Room for the origin's overwrite: half of the snapshot's file goes.
xfs_io -c "truncate $((s2_size / 2))" /mnt/s2/new
s2_size=$((s2_size / 2))
sync -f /mnt/s2
tr_pool_settle
tr_overwrite_dd "$file" 7 0 $((third * 3))
o_mib=$OW_MIB
tr_msg "overwrite on the origin: $OW_MSG after $o_mib MiB, pool at $(tr_pool_pct)"
tr_check "the origin's overwrite of blocks two snapshots share gets ENOSPC" tr_is_enospc "$OW_MSG"
tr_check "syncfs on the origin succeeds" sync -f "$TR_MNT"
tr_unwatch_pool
tr_check "the pool never left rw" [ $? = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or drift" tr_no_harm
umount /mnt/s2
umount "$TR_MNT"
# Both mount again once the pool has grown (a mount that the pool cannot
# back copies of its log for is refused, see xfs-thin-reservations.rst).
lvextend -q -L+256M "$TR_VG/pool" >/tmp/tr-lvm.log 2>&1
tr_xfs_mount nouuid s2 /mnt/s2 || ktap_exit_fail_msg "remount of the snapshot failed"
tr_pattern_intact /mnt/s2/new 6 && [ "$(stat -c %s /mnt/s2/new)" = "$s2_size" ]
tr_check "after a remount the snapshot's file reads back ($(tr_mib "$s2_size"))" [ $? = 0 ]
umount /mnt/s2
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount of the origin failed"
tr_holds "$file" 0 $((o_mib * mib)) 7 0
tr_check "after a remount the origin holds its acknowledged overwrite ($o_mib MiB)" [ $? = 0 ]
umount "$TR_MNT"

vgchange -q -an "$TR_VG" >/dev/null 2>&1
lvchange -q -ay "$TR_VG/pool" >/dev/null 2>&1
tmeta=$(lvs --noheadings -o lv_name -a "$TR_VG" | grep -o 'pool_tmeta' | head -n 1)
lvchange -q -an "$TR_VG/pool" >/dev/null 2>&1
lvchange -q -ay -y "$TR_VG/$tmeta" >/tmp/tr-lvm.log 2>&1
thin_check -q "/dev/$TR_VG/$tmeta" >/tmp/tr-check.log 2>&1
tr_check "thin_check of the pool metadata is clean" [ $? = 0 ]
lvchange -q -an "$TR_VG/$tmeta" >/dev/null 2>&1
lvchange -q -ay "$TR_VG/thin" >/dev/null 2>&1
xfs_repair -n "/dev/$TR_VG/thin" >/tmp/tr-repair.log 2>&1
tr_check "xfs_repair -n of the origin is clean" [ $? = 0 ]

tr_vg_destroy
ktap_finished
