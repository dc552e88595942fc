#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Hostile callers and a vanishing device, with XFS mounted on a thin volume
# and reservations on:
#
#  - an unprivileged process reaches none of the interface: pool messages,
#    the test client, the raw devices and FITRIM are refused, and the
#    reservation does not move; as a plain user of the filesystem it gets
#    ENOSPC at write time on a full pool, never an I/O error;
#  - unloading the modules while a writer runs is refused, and the writer
#    completes;
#  - an error target swapped in under the thin volume while a writer runs,
#    then the thin table swapped back: XFS fails cleanly (it shuts down on
#    the I/O errors, nothing else is reported), every file fsync'd before
#    the swap reads back after a remount, and the reservation ends;
#  - unmounted while the error target is in, XFS cannot release its
#    reservation: the pool keeps it (nobody else can change it) until the
#    next mount of the volume replaces it, and that mount's unmount
#    releases it.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate dmsetup dd xfs_io fstrim blockdev setpriv
ktap_set_plan 20

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 512M thin
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
thin=$(tr_dm_name "$TR_VG" thin)
pool=$(tr_dm_name "$TR_VG" pool)-tpool
dev=$(tr_thin_dev thin)
mkdir -m 1777 "$TR_MNT/users"
sync -f "$TR_MNT"

# As nobody: no capabilities, no groups.
nobody() { /usr/bin/setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

tr_dmesg_mark
held=$(tr_thin_reserved thin)
nobody dmsetup message "$pool" 0 "create_thin 77" >/dev/null 2>&1
msg_rc=$?
nobody sh -c "echo 'set $dev 0' >$TR_CLIENT" 2>/dev/null
client_rc=$?
nobody dd if=/dev/zero of="$dev" bs=4k count=1 2>/dev/null
thin_rc=$?
nobody dd if=/dev/zero of="/dev/mapper/$pool" bs=4k count=1 2>/dev/null
pool_rc=$?
nobody fstrim "$TR_MNT" 2>/dev/null
trim_rc=$?
tr_check "unprivileged: pool messages ($msg_rc), the client ($client_rc), writes to the thin ($thin_rc) and pool ($pool_rc) devices and FITRIM ($trim_rc) are refused" \
	sh -c "[ $msg_rc != 0 ] && [ $client_rc != 0 ] && [ $thin_rc != 0 ] && [ $pool_rc != 0 ] && [ $trim_rc != 0 ]"
tr_check "unprivileged: no thin device 77 was created" \
	sh -c "! dmsetup message '$pool' 0 'delete 77' 2>/dev/null"
tr_check "unprivileged: the filesystem's reservation did not move ($held -> $(tr_thin_reserved thin))" \
	[ "$(tr_thin_reserved thin)" = "$held" ]

# More than the pool has, less than the filesystem: the pool refuses it.
r=$(nobody xfs_io -f -c "falloc 0 256m" "$TR_MNT/users/big" 2>&1)
tr_check "unprivileged: fallocate of 256 MiB on a 128 MiB pool: ENOSPC ($r)" tr_is_enospc "$r"
rm -f "$TR_MNT/users/big"
tr_watch_pool
tr_pattern nobody | nobody dd of="$TR_MNT/users/fill" bs=1M count=512 conv=fsync \
	$TR_DD_FULLBLOCK 2>/tmp/tr-nobody.err
r=$(grep -v records /tmp/tr-nobody.err | tail -n 1)
tr_check "unprivileged: a filler gets ENOSPC at write time with the pool at $(tr_pool_pct) ($r)" \
	tr_is_enospc "$r"
tr_xfs_delete "$TR_MNT/users/fill"
tr_fstrim "$TR_MNT"
tr_unwatch_pool
tr_check "the pool never left rw" [ $? = 0 ]
tr_check "no writeback or I/O error, shutdown or drift so far" tr_no_harm

# From here to the end the pool is watched again: unload attempts, the
# error target and the remounts must not take it out of rw either.
tr_watch_pool

# Module unload while in use, under I/O.
tr_pattern busy | dd of="$TR_MNT/busy" bs=1M count=32 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null &
writer=$!
sleep 1
refused=
for mod in xfs_thin dm_thin_reserve dm_thin_pool; do
	rmmod "$mod" 2>/dev/null && refused="$refused $mod:unloaded"
	tr_module_loaded "$mod" || refused="$refused $mod:gone"
done
wait $writer
writer_rc=$?
tr_check "rmmod of xfs_thin, dm_thin_reserve and dm_thin_pool while mounted is refused${refused:+:$refused}" \
	[ -z "$refused" ]
intact=
[ $writer_rc = 0 ] && tr_pattern_intact "$TR_MNT/busy" busy && intact=y
tr_check "the writer under the unload attempts completes and reads back (dd $writer_rc)" [ -n "$intact" ]

# An error target under the mounted filesystem while a writer runs.
tr_pattern kept | dd of="$TR_MNT/kept" bs=1M count=16 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null
kept_rc=$?
table=$(dmsetup table "$thin")
sectors=$(blockdev --getsz "$dev")
tr_pattern doomed | dd of="$TR_MNT/doomed" bs=1M count=64 $TR_DD_FULLBLOCK 2>/dev/null &
writer=$!
sleep 1
dmsetup load "$thin" --table "0 $sectors error" &&
	dmsetup suspend "$thin" && dmsetup resume "$thin"
swap_rc=$?
# The suspend flushes what the writer dirtied so far, and a fast writer may
# be done before it: a write issued after the swap is what must fail.
tr_pattern late | dd of="$TR_MNT/late" bs=1M count=1 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null
late_rc=$?
sync -f "$TR_MNT" 2>/dev/null
sync_rc=$?
wait $writer
tr_check "an error target swaps in under the writer ($swap_rc); a write with fsync then fails ($late_rc), and so does syncfs ($sync_rc)" \
	sh -c "[ $swap_rc = 0 ] && [ $late_rc != 0 ] && [ $sync_rc != 0 ]"
dmsetup load "$thin" --table "$table" &&
	dmsetup suspend --nolockfs "$thin" && dmsetup resume "$thin"
tr_check "the thin table swaps back" [ $? = 0 ]
umount "$TR_MNT"
tr_check "XFS unmounts" [ $? = 0 ]
fl=$(tr_free_list_blocks "$dev")
tr_check "unmounted, the pool holds no more than the free lists' earmarks ($(tr_pool_reserved pool) <= $fl)" \
	[ "$(tr_pool_reserved pool)" -le "$fl" ]
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "XFS does not mount again"
ktap_test_pass "XFS mounts again (log recovery)"
intact=
[ $kept_rc = 0 ] && tr_pattern_intact "$TR_MNT/kept" kept && intact=y
tr_check "the file fsync'd before the swap reads back (dd $kept_rc)" [ -n "$intact" ]

# Unmounted behind the error target: the release cannot reach the pool.
dmsetup load "$thin" --table "0 $sectors error" &&
	dmsetup suspend "$thin" && dmsetup resume "$thin"
umount "$TR_MNT"
stale=$(tr_pool_reserved pool)
dmsetup load "$thin" --table "$table" &&
	dmsetup suspend "$thin" && dmsetup resume "$thin"
tr_check "unmounted behind an error target, the reservation stays with the device ($stale blocks, logged: $(tr_dmesg_count 'releasing the reservation failed'))" \
	sh -c "[ '$stale' -gt 0 ] && [ $(tr_dmesg_count 'releasing the reservation failed') -ge 1 ]"
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "XFS does not mount a third time"
taken=$(tr_thin_reserved thin) intact=
tr_pattern_intact "$TR_MNT/kept" kept && intact=y
tr_check "the next mount takes the reservation over ($taken sectors) and reads the file back" \
	sh -c "[ '$taken' -gt 0 ] && [ -n '$intact' ]"
umount "$TR_MNT"
fl=$(tr_free_list_blocks "$dev")
tr_check "its unmount releases it ($(tr_pool_reserved pool) <= $fl)" \
	[ "$(tr_pool_reserved pool)" -le "$fl" ]
xfs_repair -n "$dev" >/tmp/tr-repair.log 2>&1
rc=$?
[ $rc = 0 ] || tail -n 5 /tmp/tr-repair.log | while read -r l; do tr_msg "$l"; done
tr_check "xfs_repair -n is clean" [ $rc = 0 ]
tr_unwatch_pool
tr_check "the pool never left rw through the unload attempts, the error target and the remounts" [ $? = 0 ]

tr_vg_destroy
ktap_finished
