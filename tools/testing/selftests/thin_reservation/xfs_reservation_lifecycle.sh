#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# When reservations are on and when not, and what they cover:
#  - mount says why reservations are off when xfs_thin is not loaded, and
#    says nothing on a device without block reservations;
#  - xfs_thin cannot be unloaded under a mounted filesystem;
#  - direct I/O and fallocate reserve like buffered writes: they get ENOSPC
#    when the pool cannot back them, never an I/O error at writeback, and a
#    fallocated range stays writable after the pool has filled up;
#  - the xfs_thin_* trace events show each promise with the shim's answer
#    and each provisioning (on kernels with event tracing).

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs xfs_io dd blkdiscard wipefs
ktap_set_plan 13

tr_load_reserve_modules
modprobe xfs || ktap_exit_fail_msg "cannot load xfs"
tr_module_loaded xfs_thin && rmmod xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
lvcreate -q -L 320M -n plain "$TR_VG" >/dev/null 2>&1 && mkfs.xfs -q -f "/dev/$TR_VG/plain" ||
	ktap_exit_fail_msg "cannot create a plain volume"

tr_dmesg_mark
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
umount "$TR_MNT"
tr_check "without xfs_thin, mount says reservations are off and why" \
	sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'Thin pool reservation off: the xfs_thin module is not loaded'"

tr_load_xfs_thin
tr_dmesg_mark
tr_xfs_mount "" plain "$TR_MNT" || ktap_exit_fail_msg "mount of the plain volume failed"
umount "$TR_MNT"
tr_check "a device without block reservations mounts without them, silently" \
	sh -c "! dmesg | sed -n '/$TR_MARK/,\$p' | grep -q 'Thin pool reservation'"

tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_check "rmmod xfs_thin is refused while a filesystem uses it" sh -c "! rmmod xfs_thin 2>/dev/null"
tr_check "xfs_thin is still loaded" tr_module_loaded xfs_thin
held=$(tr_thin_reserved thin)
r=$(tr_client set "$(tr_thin_dev thin)" 0)
r2=$(tr_client provision "$(tr_thin_dev thin)" 0 128)
tr_check "another opener cannot change or provision a mounted filesystem's reservation: EBUSY ($r; $r2)" \
	sh -c "echo '$r' | grep -q 'busy' && echo '$r2' | grep -q 'busy' && [ '$(tr_thin_reserved thin)' = '$held' ]"

# fallocate: a range the pool can back is provisioned and stays writable
# after the pool fills up; a range it cannot back is refused up front. One
# extent promises the thin blocks it can touch: 32 MiB needs 513 of the
# pool's 64 KiB blocks, not one per 4 KiB block (8192, four times the pool).
tracing=/sys/kernel/tracing
[ -d $tracing/events ] || mount -t tracefs tracefs $tracing 2>/dev/null
if [ -d $tracing/events/xfs/xfs_thin_reserve ]; then
	: >$tracing/trace
	for e in $tracing/events/xfs/xfs_thin_*; do echo 1 >"$e/enable"; done
else
	tracing=
fi
xfs_io -f -c "falloc 0 1m" "$TR_MNT/prealloc" >/tmp/tr-falloc.log 2>&1
tr_check "fallocate of 1 MiB succeeds" [ $? = 0 ]
xfs_io -f -c "falloc 0 32m" "$TR_MNT/quarter" >/tmp/tr-falloc.log 2>&1
tr_check "fallocate of 32 MiB, a quarter of the 128 MiB pool, succeeds" [ $? = 0 ]
rm -f "$TR_MNT/quarter"
big=$(xfs_io -f -c "falloc 0 4g" "$TR_MNT/huge" 2>&1)
tr_msg "fallocate 4 GiB on a 128 MiB pool: ${big:-succeeded}"
tr_check "fallocate of 4 GiB on a 128 MiB pool fails with ENOSPC" tr_is_enospc "$big"
rm -f "$TR_MNT/huge"
if [ -n "$tracing" ]; then
	for e in $tracing/events/xfs/xfs_thin_*; do echo 0 >"$e/enable"; done
	grep -o 'xfs_thin_[a-z_]*: dev [0-9:]* .*' $tracing/trace >/tmp/tr-trace.txt
	tr_msg "trace: $(wc -l </tmp/tr-trace.txt) xfs_thin events, $(grep -c 'xfs_thin_allocated' /tmp/tr-trace.txt) provisionings"
	tr_check "the trace shows the granted and the refused fallocate and the provisioning" \
		sh -c "grep -q 'xfs_thin_reserve_extent: dev .* rsvd 0 error 0' /tmp/tr-trace.txt &&
			grep -q 'xfs_thin_reserve_extent: dev .* rsvd 0 error -28' /tmp/tr-trace.txt &&
			grep -q 'xfs_thin_allocated: dev .* from_reservation' /tmp/tr-trace.txt"
else
	ktap_test_skip "the trace events: this kernel has no event tracing"
fi

# Direct I/O until the pool is full.
tr_pattern 7 | dd of="$TR_MNT/direct" bs=1M count=512 oflag=direct $TR_DD_FULLBLOCK 2>/tmp/tr-dio.err
dio_msg=$(grep -v 'records\|bytes' /tmp/tr-dio.err | tail -n 1)
tr_msg "direct I/O writer: ${dio_msg:-no error}, $(tr_mib "$(stat -c %s "$TR_MNT/direct")") written"
tr_check "direct I/O stops with ENOSPC" tr_is_enospc "$dio_msg"
tr_pattern 8 | dd of="$TR_MNT/prealloc" bs=64k count=16 conv=notrunc,fsync $TR_DD_FULLBLOCK 2>/dev/null
tr_check "the fallocated range is still writable on the full pool" [ $? = 0 ]
tr_check "no writeback errors, I/O errors, shutdowns or accounting drift in the kernel log" tr_no_harm
umount "$TR_MNT"
tr_check "rmmod xfs_thin succeeds once nothing uses it" rmmod xfs_thin

tr_vg_destroy
ktap_finished
