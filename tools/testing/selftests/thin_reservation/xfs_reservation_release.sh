#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Blocks that XFS allocated and frees again without writing them hold no
# pool space once they are free. Provisioning earmarks the unmapped pool
# blocks of every allocation; a free that leaves a pool block wholly free
# gives its earmark back (BDEV_PROVISION_RELEASE), with or without online
# discard, and a pool block that still holds an allocated block keeps it:
#  - small fallocated files that share pool blocks, deleted one by one,
#    leave nothing earmarked once all of them are gone;
#  - a fallocated file deleted on a filesystem mounted without discard
#    leaves nothing earmarked;
#  - a small file whose pool block lost its neighbours stays writable
#    after the pool has filled up;
#  - unmount leaves the pool's reservations where they were before mount.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs xfs_io dd cmp
ktap_set_plan 10

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
before=$(tr_pool_reserved pool)
block_sectors=$(($(tr_pool_block_bytes pool) / 512))
tr_dmesg_mark
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"

# Pool blocks held as earmarks: what the pool has reserved beyond the
# thin's own reservation (it is the pool's only thin).
earmarks() {
	echo $(($(tr_pool_reserved pool) - $(tr_thin_reserved thin) / block_sectors))
}
# Fallocates 4 KiB files DIR/PREFIX1..N. (Files are truncated before they
# are deleted below: that frees their blocks in the syscall, not later in
# XFS's background inactivation.)
small_files() {
	for i in $(seq "$3"); do
		xfs_io -f -c "falloc 0 4k" "$1/$2$i" || return 1
	done
}

e0=$(earmarks)
small_files "$TR_MNT" s 64
e1=$(earmarks)
tr_check "64 fallocated 4 KiB files earmark the pool blocks they share ($e0 -> $e1)" \
	[ "$e1" -gt "$e0" ]
for i in $(seq 64); do : >"$TR_MNT/s$i" && rm "$TR_MNT/s$i"; done
sync
e2=$(earmarks)
tr_check "deleting them one by one gives those back ($e1 -> $e2)" [ "$e2" -le "$e0" ]

xfs_io -f -c "falloc 0 32m" "$TR_MNT/big" >/tmp/tr-falloc.log 2>&1
e3=$(earmarks)
tr_check "fallocate of 32 MiB earmarks its pool blocks ($e2 -> $e3)" [ "$e3" -ge $((e2 + 500)) ]
tr_xfs_delete "$TR_MNT/big"
e4=$(earmarks)
tr_check "deleting it without online discard gives them back ($e3 -> $e4)" [ "$e4" -le "$e2" ]

# Sixteen 4 KiB files, the last one kept: its pool block lost the others
# but still holds it, so its earmark stays and the file stays writable on
# a full pool.
small_files "$TR_MNT" t 16
for i in $(seq 15); do : >"$TR_MNT/t$i" && rm "$TR_MNT/t$i"; done
sync
e5=$(earmarks)
tr_check "the kept file's pool block keeps its earmark ($e4 -> $e5)" [ "$e5" -gt "$e4" ]
tr_pattern 1 | dd of="$TR_MNT/fill" bs=1M count=256 $TR_DD_FULLBLOCK 2>/tmp/tr-fill.err
fill_msg=$(grep -v 'records\|bytes' /tmp/tr-fill.err | tail -n 1)
tr_check "a writer then fills the pool to ENOSPC" tr_is_enospc "$fill_msg"
tr_pattern 2 | head -c 4096 >/tmp/tr-t16.expected
dd if=/tmp/tr-t16.expected of="$TR_MNT/t16" bs=4k count=1 conv=notrunc,fsync 2>/tmp/tr-t16.err
tr_check "the kept file is writable on the full pool" [ $? = 0 ]
tr_check "and reads back" cmp -s /tmp/tr-t16.expected "$TR_MNT/t16"
umount "$TR_MNT"
tr_check "no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
tr_check "unmount gave every reservation back (pool reserved $before -> $(tr_pool_reserved pool))" \
	[ "$(tr_pool_reserved pool)" = "$before" ]

tr_vg_destroy
ktap_finished
