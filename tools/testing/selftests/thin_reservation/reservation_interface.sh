#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The block reservation interface on real lvm2 thin pools, without a
# filesystem: bdev_{get,set}_reserved_space() through dm core into dm-thin
# and the dm_thin_reserve ledger, called from the shell through the
# bdev_reserve_client test module.
#
# The promise under test: a reservation never exceeds what the pool can
# allocate; a writer without one fails fast with an I/O error (never a hang,
# never the pool going out of data space) before it touches reserved blocks;
# the reserving device can write everything it reserved.

. "$(dirname "$0")/lib.sh"

BLOCK=$TR_BLOCK

ktap_print_header
tr_require lvcreate dmsetup dd blkdiscard insmod rmmod
ktap_set_plan 20

tr_load_reserve_modules

pool_field() { tr_pool_status pool | awk -v f="$1" '{ print $f }'; }

tr_small_pool_two_thins
A=$(tr_thin_dev a)
B=$(tr_thin_dev b)

tr_check "get on a fresh thin device: 0 sectors" [ "$(tr_client get $A)" = 0 ]
tr_check "status: pool and thin lines end with reserved counts (0)" \
	sh -c "[ '$(tr_pool_reserved pool)' = 0 ] && [ '$(tr_thin_reserved a)' = 0 ]"

free=$(tr_pool_free pool)
tr_msg "pool: $free free blocks of $BLOCK sectors"
r=$(tr_client set $A $(((free + 1) * BLOCK)))
tr_check "reserving one block more than is free: ENOSPC ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(tr_client set $A 100)
tr_check "reserving part of a block: EINVAL ($r)" \
	sh -c "echo '$r' | grep -q 'Invalid argument'"
r=$(tr_client set $A 18446744073709551488)
tr_check "reserving 2^64 - 128 sectors: ENOSPC, no overflow ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(tr_client get /dev/vda)
r2=$(tr_client get "/dev/mapper/$(tr_dm_name $TR_VG pool)-tpool")
tr_check "devices without reservations: EOPNOTSUPP ($r; thin-pool: $r2)" \
	sh -c "echo '$r' | grep -q 'not supported' && echo '$r2' | grep -q 'not supported'"
tr_check "nothing was reserved by the failed calls" [ "$(tr_pool_reserved pool)" = 0 ]

# Leave 16 unreserved blocks; promise the rest to a.
unreserved=16
promise=$((free - unreserved))
r=$(tr_client set $A $((promise * BLOCK)))
tr_check "reserving all but $unreserved free blocks for a" [ "$r" = 0 ]
tr_check "get and status report it (get $(tr_client get $A), pool $(tr_pool_reserved pool), thin $(tr_thin_reserved a))" \
	sh -c "[ '$(tr_client get $A)' = $((promise * BLOCK)) ] &&
	       [ '$(tr_pool_reserved pool)' = $promise ] && [ '$(tr_thin_reserved a)' = $((promise * BLOCK)) ]"

dmsetup table "$(tr_dm_name $TR_VG a)" | dmsetup reload "$(tr_dm_name $TR_VG a)" &&
	dmsetup resume "$(tr_dm_name $TR_VG a)"
tr_check "the reservation survives a table reload of a" \
	[ "$(tr_client get $A)" = $((promise * BLOCK)) ]

# b has no reservation: it may take the 16 unreserved blocks and no more.
timeout 120 dd if=/dev/urandom of="$B" bs=64K count=$((unreserved * 4)) oflag=direct \
	2>/tmp/dd-b.err
rc=$?
used_b=$(tr_thin_mapped b)
tr_msg "dd to b: exit $rc, $(grep -v records /tmp/dd-b.err | tail -n1); b maps $used_b blocks"
tr_check "an unreserved writer fails with an I/O error, promptly" \
	sh -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -qE 'I/O error|No space' /tmp/dd-b.err"
tr_check "it got the $unreserved unreserved blocks and none of a's" [ "$used_b" = $unreserved ]
tr_check "the pool stays in write mode (not out_of_data_space): $(pool_field 8)" \
	[ "$(pool_field 8)" = rw ]

timeout 300 dd if=/dev/urandom of="$A" bs=64K count=$promise oflag=direct 2>/tmp/dd-a.err
rc=$?
tr_check "a writes everything it reserved ($promise blocks; dd exit $rc)" [ $rc = 0 ]
tr_check "a's writes consumed its reservation (pool reserved $(tr_pool_reserved pool))" \
	sh -c "[ '$(tr_pool_reserved pool)' = 0 ] && [ '$(tr_client get $A)' = 0 ]"

# Give a's blocks back, reserve again, then remove a: the reservation ends.
blkdiscard "$A"
tr_client set $A $((8 * BLOCK)) >/dev/null
before=$(tr_pool_reserved pool)
lvremove -q -f $TR_VG/a >/dev/null 2>&1
tr_check "removing thin LV a returns its reservation ($before -> $(tr_pool_reserved pool) blocks)" \
	sh -c "[ '$before' = 8 ] && [ '$(tr_pool_reserved pool)' = 0 ]"

lvs $TR_VG >/dev/null 2>&1 && lvextend -q -L+64M $TR_VG/pool >/dev/null 2>&1
rc=$?
r=$(tr_client set $B $(((free + 8) * BLOCK)))
tr_check "lvs and lvextend work; the grown pool backs a bigger reservation ($r)" \
	sh -c "[ $rc = 0 ] && [ '$r' = 0 ]"

g=$(tr_client granularity $B)
tr_check "the reservation granularity is the pool's block ($g sectors)" [ "$g" = "$BLOCK" ]

rmmod dm_thin_reserve 2>/dev/null
tr_check "dm_thin_reserve cannot be unloaded while a pool has reservations" \
	tr_module_loaded dm_thin_reserve

tr_vg_destroy
rmmod bdev_reserve_client && rmmod dm_thin_reserve
tr_check "once the pool is gone, both modules unload" \
	sh -c "! grep -qE '^(dm_thin_reserve|bdev_reserve_client) ' /proc/modules"
rm -f /tmp/dd-a.err /tmp/dd-b.err
ktap_finished
