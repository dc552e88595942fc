#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# A reservation must promise a mappable block: data space is not enough
# when the pool's metadata device would fill first. A 3.5 GiB pool of
# 64 KiB blocks with the smallest metadata device lvm makes: its metadata
# can map fewer blocks than the data holds (dm-thin's btree, half-full
# nodes, a metadata block for every 64 mappings counted). Reserving all
# free data blocks is refused with ENOSPC although they are free; half of
# them is granted; after the data device grows, no more can be promised
# than before, since the metadata did not grow. Writes a filesystem would
# then make get ENOSPC at write time instead of driving the pool read-only.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate lvextend dmsetup blkdiscard wipefs
ktap_set_plan 4

tr_load_reserve_modules
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
lvcreate -q --thinpool "$TR_VG/pool" -L 3500M -c 64k --poolmetadatasize 2M \
	>/tmp/tr-lvm.log 2>&1 &&
	lvcreate -q -T "$TR_VG/pool" -n thin -V 16G >>/tmp/tr-lvm.log 2>&1 ||
	{ cat /tmp/tr-lvm.log; ktap_exit_fail_msg "lvcreate failed"; }
T=$(tr_thin_dev thin)
meta() { tr_pool_status pool | awk '{ split($5, m, "/"); print m[1], m[2] }'; }
set -- $(meta)
free=$(tr_pool_free pool)
tr_msg "metadata blocks used $1 of $2; $free data blocks free"

r=$(tr_client set "$T" $((free * TR_BLOCK)))
tr_check "reserving every free data block is refused: the metadata cannot map them ($r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
r=$(tr_client set "$T" $((free / 2 * TR_BLOCK)))
tr_check "reserving half of them is granted ($r)" [ "$r" = 0 ]
tr_client set "$T" 0 >/dev/null
lvextend -q -L+256M "$TR_VG/pool" >/tmp/tr-lvm.log 2>&1
free2=$(tr_pool_free pool)
r=$(tr_client set "$T" $(((free + 64) * TR_BLOCK)))
tr_check "more data space alone promises no more ($free2 free now; $r)" \
	sh -c "echo '$r' | grep -q 'No space left'"
tr_check "nothing stays reserved" [ "$(tr_pool_reserved pool)" = 0 ]

tr_vg_destroy
ktap_finished
