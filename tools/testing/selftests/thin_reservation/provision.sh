#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# bdev_provision() on real lvm2 thin pools: a range is mapped without being
# written, charged to the device's reservation, costs nothing the second
# time, stays writable when the pool has nothing left for others, and a
# provision that the ledger cannot back fails with ENOSPC.

. "$(dirname "$0")/lib.sh"

CMD=/sys/kernel/debug/bdev_reserve_client/command
BLOCK=128

ktap_print_header
tr_require lvcreate dmsetup dd insmod rmmod
ktap_set_plan 9

modprobe dm-thin-pool || ktap_exit_fail_msg "cannot load dm-thin-pool"
for mod in dm_thin_reserve bdev_reserve_client; do
	tr_module_loaded $mod || insmod "$THIN_RESERVE_MODDIR/$mod.ko" ||
		ktap_exit_fail_msg "cannot load $mod"
done

client() {
	if out=$(echo "$*" 2>&1 >$CMD); then
		cat $CMD
	else
		echo "error: ${out##*: }"
	fi
}
thin_dev() { echo "/dev/mapper/$(tr_dm_name $TR_VG "$1")"; }
pool_reserved() { tr_pool_status pool | awk '{ print $NF }'; }
pool_free() { tr_pool_data_blocks pool | awk '{ print $2 - $1 }'; }
thin_mapped() { dmsetup status "$(tr_dm_name $TR_VG "$1")" | awk '{ print $4 / 128 }'; }

tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
# nopassdown: freed pool blocks keep their old data on the data device, so
# the zeroing of provisioned blocks is actually tested.
lvcreate -q --thinpool $TR_VG/pool -L64M -c 64K --errorwhenfull y --discards nopassdown >/dev/null 2>&1 &&
	lvcreate -q -T $TR_VG/pool -n a -V 1G >/dev/null 2>&1 &&
	lvcreate -q -T $TR_VG/pool -n b -V 1G >/dev/null 2>&1 ||
	ktap_exit_fail_msg "lvcreate failed"
A=$(thin_dev a)
B=$(thin_dev b)

# Leave old data in free pool blocks: write through a thin c, delete it.
lvcreate -q -T $TR_VG/pool -n c -V 1G >/dev/null 2>&1 &&
	dd if=/dev/urandom of="$(thin_dev c)" bs=64K count=128 oflag=direct 2>/dev/null &&
	lvremove -q -f $TR_VG/c >/dev/null 2>&1 ||
	ktap_exit_fail_msg "cannot leave old data in the pool"

client set $A $((32 * BLOCK)) >/dev/null
r=$(client provision $A 0 $((32 * BLOCK)))
tr_check "provisioning 32 blocks maps them (mapped $r sectors, thin maps $(thin_mapped a) blocks)" \
	sh -c "[ '$r' = $((32 * BLOCK)) ] && [ '$(thin_mapped a)' = 32 ]"
tr_check "they came out of a's reservation (pool reserved $(pool_reserved))" \
	sh -c "[ '$(pool_reserved)' = 0 ] && [ '$(client get $A)' = 0 ]"
free=$(pool_free)
r=$(client provision $A 100 200)
tr_check "provisioning mapped blocks again costs nothing ($r sectors)" \
	sh -c "[ '$r' = 0 ] && [ '$(pool_free)' = $free ]"
r=$(client provision $A $((32 * BLOCK + 1)) 1)
tr_check "a one-sector range maps its whole block ($r sectors)" [ "$r" = $BLOCK ]
r=$(client provision $A $((2 * 1024 * 1024 - 1)) 2)
r2=$(client provision $A 0 0)
tr_check "ranges past the end or empty: EINVAL ($r; $r2)" \
	sh -c "echo '$r' | grep -q 'Invalid argument' && echo '$r2' | grep -q 'Invalid argument'"

# Promise every free block to b: a has no reservation left.
free=$(pool_free)
client set $B $((free * BLOCK)) >/dev/null
r=$(client provision $A $((64 * BLOCK)) $BLOCK)
tr_check "an unreserved provision while all free blocks are promised: ENOSPC ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(client provision $B 0 $((free * BLOCK)))
tr_check "b provisions everything it reserved ($r sectors of $((free * BLOCK)))" \
	[ "$r" = $((free * BLOCK)) ]

# The pool is now full; a's provisioned range must still take writes.
dd if=/dev/urandom of="$A" bs=64K count=32 oflag=direct 2>/tmp/dd-prov.err
rc=$?
tr_check "provisioned blocks stay writable with the pool full (dd exit $rc, $(pool_free) free)" \
	sh -c "[ $rc = 0 ] && [ '$(pool_free)' = 0 ]"
r=$(dd if="$B" bs=64K count="$free" 2>/dev/null | od -An -v -tx1 | tr -d ' \n0' | wc -c)
tr_check "provisioned blocks read back as zeroes, not old data ($r non-zero hex digits)" [ "$r" = 0 ]

tr_vg_destroy
rmmod bdev_reserve_client
rmmod dm_thin_reserve
rm -f /tmp/dd-prov.err
ktap_finished
