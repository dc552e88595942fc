#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Long cycles (make stress, not make check): nothing a mount reserved or
# provisioned outlives it, however often it repeats.
#
# 128 MiB pool of 64 KiB blocks, 512 MiB thin volume (its log takes 64
# MiB of the pool), mount -o discard:
#  - CYCLES rounds of mount, fill to ENOSPC, syncfs, delete, fstrim,
#    unmount: each fill gets ENOSPC with the pool nearly full, and once
#    unmounted the pool holds no more reservation than the earmarks of the
#    free lists' blocks (tr_free_list_blocks) - never a growing amount;
#    every tenth round the filler is read back after a remount first;
#  - REACTIVATIONS rounds of mount, a 4 MiB write with fsync, unmount,
#    vgchange -an, vgchange -ay: the pool comes back with nothing reserved.
# Rounds come from the kernel command line (thin_reserve.cycles=,
# thin_reserve.reactivations=; default 200 and 50). Kernel reports
# (kmemleak on the debug kernel) are the harness's to find.

. "$(dirname "$0")/lib.sh"

cycles=$(sed -n 's/.*thin_reserve\.cycles=\([0-9]*\).*/\1/p' /proc/cmdline)
reacts=$(sed -n 's/.*thin_reserve\.reactivations=\([0-9]*\).*/\1/p' /proc/cmdline)
: "${cycles:=200}" "${reacts:=50}"

ktap_print_header
tr_require lvcreate vgchange dmsetup mkfs.xfs xfs_io xfs_db dd fstrim
ktap_set_plan 8

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 512M thin -c 64K
dev=/dev/$TR_VG/thin
tr_dmesg_mark

enospc=0 nearly=0 held=0 max_left=0 verified=0 intact=0 i=0
while [ $i -lt "$cycles" ]; do
	i=$((i + 1))
	tr_xfs_mount discard thin "$TR_MNT" || { tr_msg "cycle $i: mount failed"; break; }
	tr_pattern $i | dd of="$TR_MNT/filler" bs=1M count=128 $TR_DD_FULLBLOCK 2>/tmp/tc-fill.err
	msg=$(grep -v records /tmp/tc-fill.err | tail -n 1)
	sync -f "$TR_MNT" || tr_msg "cycle $i: syncfs failed"
	set -- $(tr_pool_data_blocks pool)
	tr_is_enospc "$msg" && enospc=$((enospc + 1))
	tr_is_enospc "$msg" "$1" "$2" $((TR_BLOCK * 512)) && nearly=$((nearly + 1))
	if [ $((i % 10)) = 0 ]; then
		umount "$TR_MNT" && tr_xfs_mount "" thin "$TR_MNT"
		verified=$((verified + 1))
		tr_pattern_intact "$TR_MNT/filler" $i && intact=$((intact + 1))
	fi
	tr_xfs_delete "$TR_MNT/filler"
	fstrim "$TR_MNT"
	umount "$TR_MNT"
	left=$(tr_pool_reserved pool)
	[ "$left" -gt "$max_left" ] && max_left=$left
	[ "$left" -le "$(tr_free_list_blocks "$dev")" ] && held=$((held + 1))
	[ $((i % 20)) = 0 ] && tr_msg "cycle $i: $enospc ENOSPC, $nearly nearly full, pool reserved $left after unmount"
done
tr_check "$i of $cycles mount/fill/unmount cycles ran" [ "$i" = "$cycles" ]
tr_check "every fill got ENOSPC ($enospc of $i)" [ "$enospc" = "$i" ]
tr_check "with the pool nearly full ($nearly of $i)" [ "$nearly" = "$i" ]
tr_check "every filler read back after a remount ($intact of $verified)" [ "$intact" = "$verified" ]
tr_check "after every unmount the pool held at most the free lists' earmarks ($held of $i; at most $max_left blocks)" \
	[ "$held" = "$i" ]

zero=0 j=0
while [ $j -lt "$reacts" ]; do
	j=$((j + 1))
	tr_xfs_mount discard thin "$TR_MNT" || { tr_msg "reactivation $j: mount failed"; break; }
	tr_pattern r$j | dd of="$TR_MNT/f" bs=1M count=4 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null ||
		tr_msg "reactivation $j: write failed"
	umount "$TR_MNT"
	vgchange -q -an "$TR_VG" >/dev/null 2>&1 && vgchange -q -ay "$TR_VG" >/dev/null 2>&1 ||
		{ tr_msg "reactivation $j: vgchange failed"; break; }
	[ "$(tr_pool_reserved pool)" = 0 ] && zero=$((zero + 1))
done
tr_check "$j of $reacts deactivate/activate rounds ran, the pool back with nothing reserved each time ($zero)" \
	[ "$zero" = "$reacts" ]
tr_xfs_mount "" thin "$TR_MNT" && tr_pattern_intact "$TR_MNT/f" r$j
tr_check "the last round's file reads back" [ $? = 0 ]
umount "$TR_MNT" 2>/dev/null
tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
tr_vg_destroy
ktap_finished
