#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Writes that allocate in the syscall reserve what dm-thin will really
# allocate. fallocate and direct I/O allocate at most one extent per XFS
# transaction, so each transaction promises the pool the thin blocks one
# contiguous extent can touch, not one thin block per filesystem block:
#  - on an empty 1 GiB pool, fallocate of all its free space but 1% succeeds,
#    and the fallocated range stays writable after buffered writers have
#    filled the rest of the pool;
#  - a fallocate the pool cannot back fails at once with ENOSPC and leaves
#    nothing reserved;
#  - direct I/O, sequential 1 MiB and random 4 KiB, fills the pool to at
#    least 99% before it gets ENOSPC;
# with no I/O error, no shutdown and the pool never out of data space.
# The release kernel runs it with 64 KiB, 256 KiB and 1 MiB pool blocks,
# each on a fresh pool. The debug kernel runs 64 KiB pool blocks on a
# 256 MiB pool, where it writes four times the pool, and holds it to the
# same unused space in bytes that 99% of 1 GiB allows
# (tr_pool_nearly_full): what stays free is fixed, not a share of the pool.

. "$(dirname "$0")/lib.sh"

: "${FALLOC_POOL:=$(tr_repeat 1G 256M)}"
: "${FALLOC_CHUNKS:=$(tr_repeat "64K 256K 1M" 64K)}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs xfs_io xfs_repair fio dd cmp fstrim blkdiscard wipefs
ktap_set_plan $((13 * $(echo $FALLOC_CHUNKS | wc -w)))

# falloc_dio_case CHUNK: the whole case on a fresh pool of CHUNK blocks.
falloc_dio_case() {
	chunk=$1
	tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
	tr_xfs_thin_volume "$FALLOC_POOL" 10G thin -c "$chunk"
	before=$(tr_pool_reserved pool)
	block=$(tr_pool_block_bytes pool)
	tr_dmesg_mark
	tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
	tr_watch_pool

	# fallocate everything free but 1% of the pool, or on a pool under 1 GiB
	# but 1% of 1 GiB (the metadata allowance alone is 5 MiB here).
	set -- $(tr_pool_data_blocks pool)
	slack=$(($2 * block / 100))
	[ "$slack" -ge $((1073741824 / 100)) ] || slack=$((1073741824 / 100))
	free_mib=$(((($2 - $1) * block - slack) / 1048576))
	tr_msg "$chunk: pool used/total $1/$2 after mkfs; fallocate $free_mib MiB"
	# The filler exists before the fallocate: creating a file promises
	# its metadata (41 blocks on this filesystem) a pool block a block
	# where the last AG's head has no room for it, 10 MiB with 256 KiB
	# pool blocks, which is as much as the fallocate leaves
	# (docs/limits.md). What is measured here is how full the pool gets
	# around a fallocated range, not where creating files stops.
	: >"$TR_MNT/filler"
	xfs_io -f -c "falloc 0 ${free_mib}m" "$TR_MNT/prealloc" >/tmp/tr-falloc.log 2>&1
	tr_check "$chunk: fallocate of the pool's free space less 1% (of 1 GiB at least: $free_mib MiB) succeeds" [ $? = 0 ]
	tr_msg "$chunk: after fallocate: pool used/total $(tr_pool_data_blocks pool), reserved $(tr_pool_reserved pool)"

	# Buffered writers fill what is left; the fallocated range stays writable.
	tr_write_pattern "$TR_MNT/filler" 1 1024
	tr_check "$chunk: a buffered writer gets ENOSPC on the rest of the pool" \
		tr_is_enospc "$(tr_written "$TR_MNT/filler" msg)"
	tr_pattern 2 | dd of="$TR_MNT/prealloc" bs=1M count="$free_mib" conv=notrunc,fsync \
		$TR_DD_FULLBLOCK 2>/tmp/tr-fill.err
	tr_check "$chunk: the whole fallocated range is written and fsync'd on the full pool" [ $? = 0 ]
	set -- $(tr_pool_data_blocks pool)
	tr_msg "$chunk: pool used/total once written: $1/$2 ($(tr_percent "$(tr_permille "$1" "$2")"))"
	tr_check "$chunk: pool full once the fallocated range is written (99%, or at most 10 MiB unused)" \
		tr_pool_nearly_full "$1" "$2" "$block"

	# A fallocate the pool cannot back is refused at once, nothing held.
	# (Unmount reports any promise the books still hold as accounting drift.)
	# Deleting the filler and punching 16 MiB out of the preallocation leave
	# room for the small fallocate after the refusal on any pool size.
	tr_xfs_delete "$TR_MNT/filler"
	xfs_io -c "fpunch 0 16m" -c fsync "$TR_MNT/prealloc"
	tr_pool_settle
	big=$(xfs_io -f -c "falloc 0 2g" "$TR_MNT/huge" 2>&1)
	tr_check "$chunk: fallocate of 2 GiB on the nearly full pool fails at once with ENOSPC" tr_is_enospc "$big"
	xfs_io -f -c "falloc 0 1m" "$TR_MNT/small" >/tmp/tr-falloc.log 2>&1
	tr_check "$chunk: after the refusal, a fallocate the pool can back succeeds" [ $? = 0 ]
	rm -f "$TR_MNT/huge" "$TR_MNT/small" "$TR_MNT/prealloc"
	tr_fstrim "$TR_MNT"

	# Direct I/O, sequential 1 MiB, until ENOSPC.
	tr_pattern 3 | dd of="$TR_MNT/direct" bs=1M count=2048 oflag=direct $TR_DD_FULLBLOCK \
		2>/tmp/tr-dio.err
	dio_msg=$(grep -v 'records\|bytes' /tmp/tr-dio.err | tail -n 1)
	set -- $(tr_pool_data_blocks pool)
	total=$2
	tr_msg "$chunk: direct I/O 1 MiB: ${dio_msg:-no error}, $(tr_mib "$(stat -c %s "$TR_MNT/direct")"), pool $1/$2 ($(tr_percent "$(tr_permille "$1" "$2")"))"
	tr_check "$chunk: sequential 1 MiB direct I/O fills the pool (99%, or at most 10 MiB unused), then ENOSPC" \
		tr_is_enospc "$dio_msg" "$1" "$2" "$block"
	tr_check "$chunk: the direct I/O data reads back" tr_pattern_intact "$TR_MNT/direct" 3

	# Direct I/O, random 4 KiB into a sparse file, until ENOSPC: the direct
	# file gives back a twentieth of the pool first (online discard), so that
	# random writes fill the last 5% (on the debug kernel a whole pool of them
	# would take a quarter of a million allocations).
	truncate -s $(($(stat -c %s "$TR_MNT/direct") - total * block / 20)) "$TR_MNT/direct"
	sync -f "$TR_MNT"
	tr_pool_settle
	tr_msg "$chunk: after truncating the direct I/O file: pool used/total $(tr_pool_data_blocks pool)"
	fio --name=rand --filename="$TR_MNT/sparse" --size=8g --rw=randwrite --bs=4k \
		--direct=1 --ioengine=psync --randrepeat=0 --norandommap --output=/tmp/tr-fio.out \
		>/dev/null 2>&1
	set -- $(tr_pool_data_blocks pool)
	fio_err=$(grep -o 'No space left on device' /tmp/tr-fio.out | head -n 1)
	tr_msg "$chunk: direct I/O random 4 KiB: ${fio_err:-no ENOSPC}, pool $1/$2 ($(tr_percent "$(tr_permille "$1" "$2")"))"
	tr_check "$chunk: random 4 KiB direct I/O fills the pool (99%, or at most 10 MiB unused), then ENOSPC" \
		tr_is_enospc "$fio_err" "$1" "$2" "$block"
	umount "$TR_MNT"
	tr_unwatch_pool
	tr_check "$chunk: the pool never went out of data space" [ $? = 0 ]
	tr_check "$chunk: no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
	# A btree block that went back to its AG's free list before it was ever
	# written keeps the pool block it was provisioned in (docs/limits.md):
	# those are the only earmarks unmount may leave.
	after=$(tr_pool_reserved pool)
	agfl=$(tr_free_list_blocks "/dev/$TR_VG/thin")
	tr_check "$chunk: unmount gave every reservation back, but for free-list blocks ($before -> $after, $agfl on the free lists)" \
		[ "$after" -ge "$before" -a $((after - before)) -le "$agfl" ]
	tr_check "$chunk: xfs_repair -n finds nothing to fix" \
		sh -c "xfs_repair -n /dev/$TR_VG/thin >/dev/null 2>&1"
	tr_vg_destroy
}

tr_load_xfs_thin
for chunk in $FALLOC_CHUNKS; do
	falloc_dio_case "$chunk"
done
ktap_finished
