#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The demo: the 2016 RFC's scenario in the VM, with a short summary a person
# can read. Runs on the stock path (reservations off); dm-thin's default
# no_space_timeout (60 s) is kept, so this is what a user sees today.

export KTAP_HELPERS=${KTAP_HELPERS:-/opt/thin-reserve/selftests/kselftest/ktap_helpers.sh}
cd /opt/thin-reserve/selftests/thin_reservation || exit 1
. ./lib.sh

modprobe dm-thin-pool
echo "== RFC scenario, stock path (reservations off)"
echo "   lvcreate --thinpool test/pool -L1G; lvcreate -T test/pool -n thin -V 10G"
echo "   mkfs.xfs -f /dev/test/thin; mount /dev/test/thin /mnt -o discard"
echo "   dd if=/dev/zero of=/mnt/file bs=4k   (stopped at 3 GiB, three times the pool)"
start=$(date +%s)
tr_rfc_scenario
lost=$((RFC_ACKED - RFC_POOL_BYTES))
[ $lost -gt 0 ] || lost=0
errors=$(tr_dmesg_since_mark | grep -E 'writeback error|I/O error|out-of-data-space|Filesystem has been shut down' |
	sed 's/^\[ *[0-9.]*\] //' | sed 's/inode [0-9]*/inode N/; s/offset [0-9]*/offset N/; s/size [0-9]*/size N/; s/sector [0-9]*/sector N/' |
	sort | uniq -c | sort -rn | head -n 6)
tr_vg_destroy

cat <<SUMMARY

== Summary (stock, $(($(date +%s) - start)) s)
dd returned:            exit $RFC_DD_RC, $RFC_DD_MSG
sync returned:          exit $RFC_SYNC_RC
acknowledged to dd:     $(tr_mib "$RFC_ACKED")
pool data space:        $(tr_mib "$RFC_POOL_BYTES"), $RFC_USED of $RFC_TOTAL blocks used at the end
pool modes seen:        $RFC_MODES
acknowledged, not kept: at least $(tr_mib $lost)
kernel I/O errors:      $RFC_IO_ERRORS lines (printk rate-limits them); most frequent:
$errors
SUMMARY
