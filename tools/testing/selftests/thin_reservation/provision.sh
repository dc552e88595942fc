#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bdev_provision() on real lvm2 thin pools: a range is provisioned without
# being written or mapped (dm-thin earmarks its blocks), charged to the
# device's reservation, costs nothing the second time, stays writable when
# every other free block is promised, a provision that the ledger cannot
# back fails with ENOSPC, discarding a provisioned range ends its
# earmarks, and a partial write to a provisioned block never exposes old
# data in the rest of the block.

. "$(dirname "$0")/lib.sh"

BLOCK=$TR_BLOCK

ktap_print_header
tr_require lvcreate dmsetup dd insmod rmmod blkdiscard
ktap_set_plan 11

tr_load_reserve_modules

# nopassdown: freed pool blocks keep their old data on the data device, so
# the zeroing of provisioned blocks is actually tested.
tr_small_pool_two_thins --discards nopassdown
A=$(tr_thin_dev a)
B=$(tr_thin_dev b)

# Leave old data in free pool blocks: write through a thin c, delete it.
lvcreate -q -T $TR_VG/pool -n c -V 1G >/dev/null 2>&1 &&
	dd if=/dev/urandom of="$(tr_thin_dev c)" bs=64K count=128 oflag=direct 2>/dev/null &&
	lvremove -q -f $TR_VG/c >/dev/null 2>&1 ||
	ktap_exit_fail_msg "cannot leave old data in the pool"

tr_client set $A $((32 * BLOCK)) >/dev/null
r=$(tr_client provision $A 0 $((32 * BLOCK)))
tr_check "provisioning 32 blocks earmarks them, unmapped (provisioned $r sectors, thin maps $(tr_thin_mapped a) blocks)" \
	sh -c "[ '$r' = $((32 * BLOCK)) ] && [ '$(tr_thin_mapped a)' = 0 ]"
tr_check "they came out of a's reservation and stay reserved (get $(tr_client get $A), pool reserved $(tr_pool_reserved pool))" \
	sh -c "[ '$(tr_client get $A)' = 0 ] && [ '$(tr_pool_reserved pool)' = 32 ]"
r=$(tr_client provision $A 100 200)
tr_check "provisioning them again costs nothing ($r sectors, pool reserved $(tr_pool_reserved pool))" \
	sh -c "[ '$r' = 0 ] && [ '$(tr_pool_reserved pool)' = 32 ]"
r=$(tr_client provision $A $((32 * BLOCK + 1)) 1)
tr_check "a one-sector range provisions its whole block ($r sectors)" [ "$r" = $BLOCK ]
r=$(tr_client provision $A $((2 * 1024 * 1024 - 1)) 2)
r2=$(tr_client provision $A 0 0)
tr_check "ranges past the end or empty: EINVAL ($r; $r2)" \
	sh -c "echo '$r' | grep -q 'Invalid argument' && echo '$r2' | grep -q 'Invalid argument'"

# Promise every unreserved free block to b: a has no reservation left.
unreserved=$(($(tr_pool_free pool) - $(tr_pool_reserved pool)))
tr_client set $B $((unreserved * BLOCK)) >/dev/null
r=$(tr_client provision $A $((64 * BLOCK)) $BLOCK)
tr_check "an unreserved provision while all free blocks are promised: ENOSPC ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(tr_client provision $B 0 $((unreserved * BLOCK)))
tr_check "b provisions everything it reserved ($r sectors of $((unreserved * BLOCK)))" \
	[ "$r" = $((unreserved * BLOCK)) ]

# Every free block is earmarked now; a's provisioned range must take writes.
dd if=/dev/urandom of="$A" bs=64K count=32 oflag=direct 2>/tmp/dd-prov.err
rc=$?
tr_check "provisioned blocks are writable with every free block promised (dd exit $rc; a maps $(tr_thin_mapped a))" \
	sh -c "[ $rc = 0 ] && [ '$(tr_thin_mapped a)' = 32 ]"
tr_check "the writes took a's earmarks (pool reserved $(tr_pool_reserved pool), $(tr_pool_free pool) free)" \
	sh -c "[ '$(tr_pool_reserved pool)' = $((unreserved + 1)) ] && [ '$(tr_pool_free pool)' = $((unreserved + 1)) ]"

# A 4 KiB write into b's first provisioned block: the rest of the block
# must read as zeroes, not as what deleted thin c left in the pool.
dd if=/dev/urandom of="$B" bs=4K count=1 oflag=direct 2>/dev/null
r=$(dd if="$B" bs=4K skip=1 count=15 iflag=direct 2>/dev/null | od -An -v -tx1 | tr -d ' \n0' | wc -c)
tr_check "a partial write to a provisioned block exposes no old data ($r non-zero hex digits)" [ "$r" = 0 ]

# Discarding provisioned blocks ends their earmarks.
before=$(tr_pool_reserved pool)
blkdiscard -o $((64 * BLOCK * 512)) -l $((16 * BLOCK * 512)) "$B"
tr_check "discarding 16 provisioned blocks of b returns them ($before -> $(tr_pool_reserved pool) reserved)" \
	[ "$(tr_pool_reserved pool)" = $((before - 16)) ]

tr_vg_destroy
rmmod bdev_reserve_client
rmmod dm_thin_reserve
rm -f /tmp/dd-prov.err
ktap_finished
