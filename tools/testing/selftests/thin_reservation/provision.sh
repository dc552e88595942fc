#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bdev_provision() on real lvm2 thin pools: a range is mapped without being
# written, charged to the device's reservation, costs nothing the second
# time, stays writable when the pool has nothing left for others, and a
# provision that the ledger cannot back fails with ENOSPC.

. "$(dirname "$0")/lib.sh"

BLOCK=$TR_BLOCK

ktap_print_header
tr_require lvcreate dmsetup dd insmod rmmod
ktap_set_plan 9

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
tr_check "provisioning 32 blocks maps them (mapped $r sectors, thin maps $(tr_thin_mapped a) blocks)" \
	sh -c "[ '$r' = $((32 * BLOCK)) ] && [ '$(tr_thin_mapped a)' = 32 ]"
tr_check "they came out of a's reservation (pool reserved $(tr_pool_reserved pool))" \
	sh -c "[ '$(tr_pool_reserved pool)' = 0 ] && [ '$(tr_client get $A)' = 0 ]"
free=$(tr_pool_free pool)
r=$(tr_client provision $A 100 200)
tr_check "provisioning mapped blocks again costs nothing ($r sectors)" \
	sh -c "[ '$r' = 0 ] && [ '$(tr_pool_free pool)' = $free ]"
r=$(tr_client provision $A $((32 * BLOCK + 1)) 1)
tr_check "a one-sector range maps its whole block ($r sectors)" [ "$r" = $BLOCK ]
r=$(tr_client provision $A $((2 * 1024 * 1024 - 1)) 2)
r2=$(tr_client provision $A 0 0)
tr_check "ranges past the end or empty: EINVAL ($r; $r2)" \
	sh -c "echo '$r' | grep -q 'Invalid argument' && echo '$r2' | grep -q 'Invalid argument'"

# Promise every free block to b: a has no reservation left.
free=$(tr_pool_free pool)
tr_client set $B $((free * BLOCK)) >/dev/null
r=$(tr_client provision $A $((64 * BLOCK)) $BLOCK)
tr_check "an unreserved provision while all free blocks are promised: ENOSPC ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(tr_client provision $B 0 $((free * BLOCK)))
tr_check "b provisions everything it reserved ($r sectors of $((free * BLOCK)))" \
	[ "$r" = $((free * BLOCK)) ]

# The pool is now full; a's provisioned range must still take writes.
dd if=/dev/urandom of="$A" bs=64K count=32 oflag=direct 2>/tmp/dd-prov.err
rc=$?
tr_check "provisioned blocks stay writable with the pool full (dd exit $rc, $(tr_pool_free pool) free)" \
	sh -c "[ $rc = 0 ] && [ '$(tr_pool_free pool)' = 0 ]"
r=$(dd if="$B" bs=64K count="$free" 2>/dev/null | od -An -v -tx1 | tr -d ' \n0' | wc -c)
tr_check "provisioned blocks read back as zeroes, not old data ($r non-zero hex digits)" [ "$r" = 0 ]

tr_vg_destroy
rmmod bdev_reserve_client
rmmod dm_thin_reserve
rm -f /tmp/dd-prov.err
ktap_finished
