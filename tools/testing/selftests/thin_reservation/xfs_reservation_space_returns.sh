#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# After ENOSPC the filesystem keeps working, as it would had the filesystem
# itself filled up: deleting files and trimming (fstrim, or online discard
# with -o discard) gives the pool space back and writes succeed again;
# rounds of fill / rm / fstrim (twenty on the release kernel) never end in
# EIO (the pattern of fstests generic/500); growing the pool with lvextend after ENOSPC lets
# writing resume without a remount (generic/347's pattern).

. "$(dirname "$0")/lib.sh"

# generic/500 runs 20 rounds; the debug kernel runs 3 (tr_repeat), and
# fills with 64 KiB writes instead of 4 KiB ones, which took most of its
# time there.
: "${ROUNDS:=$(tr_repeat 20 3)}" "${TR_WRITE_KIB:=$(tr_repeat 4 64)}"

ktap_print_header
tr_require lvcreate lvextend dmsetup mkfs.xfs xfs_growfs fstrim dd cmp blkdiscard wipefs
ktap_set_plan 13

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
tr_dmesg_mark

# Fill FILE as writer N until dd stops; succeed if it wrote something and
# then stopped with ENOSPC.
fill_to_enospc() {
	tr_write_pattern "$1" "$2" 4096
	[ -s "$1" ] && tr_written "$1" msg | grep -q 'No space left on device'
}

# Write MIB fresh mebibytes as writer N; succeed if all were accepted.
write_mib() {
	tr_write_pattern "$TR_MNT/again$2" "$2" "$1"
	[ "$(tr_written "$TR_MNT/again$2" rc)" = 0 ] && sync -f "$TR_MNT"
}

# fstrim. FITRIM returns before its discards complete; a writer right after
# it must not be refused while they are on their way (XFS waits for them
# before it says ENOSPC on a thin volume), so nothing here waits.
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_watch_pool
fill_to_enospc "$TR_MNT/fill" 1
full=$(tr_pool_data_blocks pool)
tr_xfs_delete "$TR_MNT/fill"
fstrim "$TR_MNT"
tr_check "after ENOSPC, rm + fstrim give space back and 32 MiB write again at once" write_mib 32 1
tr_msg "pool used/total: full $full, after rm + fstrim + 32 MiB $(tr_pool_data_blocks pool)"
for f in "$TR_MNT"/again*; do tr_xfs_delete "$f"; done
tr_fstrim "$TR_MNT"
umount "$TR_MNT"

# Online discard: rm alone gives the space back.
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount -o discard failed"
empty=$(tr_pool_data_blocks pool | awk '{ print $1 }')
fill_to_enospc "$TR_MNT/fill" 2
# XFS discards freed extents when the log checkpoint that frees them
# completes. A plain rm leaves the freeing to background inactivation,
# which may run after a sync and then wait for XFS's 30 s log worker:
# truncate first, so that the sync's log force sends the discards out.
tr_xfs_delete "$TR_MNT/fill"
for _ in $(seq 30); do
	[ "$(tr_pool_data_blocks pool | awk '{ print $1 }')" -le $((empty + 64)) ] && break
	sleep 1
done
tr_msg "after rm with online discard: pool used/total $(tr_pool_data_blocks pool)"
tr_check "after ENOSPC, rm with -o discard gives space back and 32 MiB write again" write_mib 32 2
rm -f "$TR_MNT"/again*
umount "$TR_MNT"

# generic/500's pattern: fill, rm, fstrim, many times.
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
# rm alone leaves the blocks to XFS's background inactivation, which fstrim
# may run ahead of: tr_xfs_delete truncates first (see the README's limits).
enospc=0 intact=0 wrote=0 round=1
while [ $round -le "$ROUNDS" ]; do
	before="pool used/total $(tr_pool_data_blocks pool), reserved $(tr_pool_reserved pool)"
	fill_to_enospc "$TR_MNT/round" $round && enospc=$((enospc + 1))
	if [ -e "$TR_MNT/round" ]; then
		wrote=$((wrote + 1))
		tr_pattern_intact "$TR_MNT/round" $round && intact=$((intact + 1))
	else
		tr_msg "round $round: no file ($(tr_written "$TR_MNT/round" msg)); before it $before"
	fi
	tr_xfs_delete "$TR_MNT/round"
	fstrim "$TR_MNT"
	round=$((round + 1))
done
tr_check "each of $ROUNDS fill / rm / fstrim rounds ended in ENOSPC ($enospc)" [ "$enospc" = "$ROUNDS" ]
tr_check "every round's acknowledged data reads back intact ($intact of $wrote files)" \
	[ "$intact" = "$wrote" ]
# Each round starts right after the last one's fstrim: its writer must not
# be refused while the trim's discards are in flight (XFS waits for them),
# nor find the pool "full" of blocks freed since the last metadata commit
# (dm-thin commits and retries).
tr_check "every round could create its file after rm + fstrim ($wrote of $ROUNDS)" \
	[ "$wrote" = "$ROUNDS" ]

# generic/347's pattern: grow the pool after ENOSPC, write on.
fill_to_enospc "$TR_MNT/before-grow" 1
tr_check "wrote, then ENOSPC before growing" [ $? = 0 ]
lvextend -q -L+64M "$TR_VG/pool" >/tmp/tr-lvm.log 2>&1 ||
	{ cat /tmp/tr-lvm.log; ktap_exit_fail_msg "lvextend failed"; }
tr_msg "pool grown: used/total $(tr_pool_data_blocks pool)"
tr_check "after lvextend, 32 MiB write again without a remount" write_mib 32 3
tr_check "data written before the grow is intact" tr_pattern_intact "$TR_MNT/before-grow" 1

# growfs: the shim follows the filesystem's new size.
tr_dmesg_mark
lvextend -q -L+1G "$TR_VG/thin" >/tmp/tr-lvm.log 2>&1 && xfs_growfs "$TR_MNT" >>/tmp/tr-lvm.log 2>&1 ||
	{ cat /tmp/tr-lvm.log; ktap_exit_fail_msg "growing the filesystem failed"; }
tr_check "after xfs_growfs the shim follows the new size (2 GiB)" \
	sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'xfs_thin: .*resized to 4194304 sectors'"
tr_check "after xfs_growfs, 8 MiB write again" write_mib 8 4
umount "$TR_MNT"

tr_unwatch_pool
pool_ok=$?
tr_check "the pool never went out of data space" [ "$pool_ok" = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
tr_check "xfs_repair -n finds nothing to fix" \
	sh -c "xfs_repair -n /dev/$TR_VG/thin >/dev/null 2>&1"

tr_vg_destroy
ktap_finished
