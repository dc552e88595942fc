#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Stress near ENOSPC (make stress, not make check): two XFS filesystems on
# two thin volumes of one 256 MiB pool (64 KiB blocks), mounted with
# -o discard, under mixed load for SECONDS (thin_reserve.enospc_seconds=
# on the kernel command line, default 600) with the pool held near full.
# On each filesystem:
#  - two writers write files of 1-4 MiB with fsync; on ENOSPC each deletes
#    its two oldest files and goes on, which keeps the pool within a few
#    percent of full;
#  - fio overwrites a 16 MiB fallocated file at random in 4 KiB blocks,
#    fsyncs every 32 writes and verifies what it wrote (crc32c) as it goes:
#    writes into fallocated space must never fail, however full the pool;
#  - a trimmer runs FITRIM every 20 s.
# Afterwards: no error but ENOSPC, no verification failure, every file
# whose fsync returned reads back, the pool stayed rw and at 90% or more,
# nothing harmful in the kernel log, xfs_repair -n clean, and unmounted
# the pool holds no more than the free lists' earmarks. Kernel reports
# are the harness's to find.

. "$(dirname "$0")/lib.sh"

secs=$(sed -n 's/.*thin_reserve\.enospc_seconds=\([0-9]*\).*/\1/p' /proc/cmdline)
: "${secs:=600}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs xfs_io xfs_db xfs_repair dd fstrim fio
ktap_set_plan 9

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 256M 1G a -c 64K
tr_xfs_thin_volume 256M 1G b
tr_dmesg_mark
for fs in a b; do
	tr_xfs_mount discard $fs "$TR_MNT/$fs" || ktap_exit_fail_msg "mount $fs failed"
	xfs_io -f -c "falloc 0 16m" -c fsync "$TR_MNT/$fs/fio.dat" ||
		ktap_exit_fail_msg "fallocate on $fs failed"
done
rm -f /tmp/ne-*

# writer FS N: files of 1-4 MiB, each fsync'd, listed once written.
writer() {
	mnt=$TR_MNT/$1 list=/tmp/ne-$1-$2.live err=/tmp/ne-$1-$2.err k=0
	: >"$list"
	while [ ! -e /tmp/ne-stop ]; do
		k=$((k + 1))
		name=w$2.$k
		if tr_pattern "$1.$name" | dd of="$mnt/$name" bs=1M count=$((1 + k % 4)) \
			conv=fsync $TR_DD_FULLBLOCK 2>"$err"; then
			echo "$name" >>"$list"
			continue
		fi
		msg=$(grep -v records "$err" | tail -n 1)
		rm -f "$mnt/$name"
		if tr_is_enospc "$msg"; then
			echo "$name" >>/tmp/ne-$1-$2.enospc
		else
			echo "$1/$name: $msg" >>/tmp/ne-errors
		fi
		head -n 2 "$list" | while read -r old; do rm -f "$mnt/$old"; done
		sed -i 1,2d "$list"
	done
}

trimmer() {
	while [ ! -e /tmp/ne-stop ]; do
		sleep 20
		fstrim "$TR_MNT/$1" 2>>/tmp/ne-trim-errors
	done
}

tr_watch_pool
fios= others=
for fs in a b; do
	fio --name="overwrite-$fs" --filename="$TR_MNT/$fs/fio.dat" --size=16m \
		--rw=randwrite --bs=4k --ioengine=psync --fallocate=none --fsync=32 \
		--verify=crc32c --verify_backlog=512 --verify_fatal=1 \
		--time_based --runtime="$secs" --output="/tmp/ne-fio-$fs.log" &
	fios="$fios $!"
	writer $fs 1 &
	others="$others $!"
	writer $fs 2 &
	others="$others $!"
	trimmer $fs &
	others="$others $!"
done
fio_rc=0
for pid in $fios; do wait "$pid" || fio_rc=$?; done
touch /tmp/ne-stop
# Not a bare wait: the pool watcher runs until tr_unwatch_pool.
wait $others
tr_unwatch_pool
pool_rw=$?

files=0 lost=0 enospc=0
for fs in a b; do
	for n in 1 2; do
		enospc=$((enospc + $(cat /tmp/ne-$fs-$n.enospc 2>/dev/null | wc -l)))
		while read -r name; do
			files=$((files + 1))
			tr_pattern_intact "$TR_MNT/$fs/$name" "$fs.$name" && continue
			lost=$((lost + 1))
			tr_msg "lost: $fs/$name"
		done </tmp/ne-$fs-$n.live
	done
	tr_msg "fio on $fs: $(grep -E 'err=|write:' /tmp/ne-fio-$fs.log | tr -s ' ' | head -n 2 | tr '\n' ' ')"
done
errors=$(cat /tmp/ne-errors 2>/dev/null | wc -l)
[ "$errors" = 0 ] || head -n 5 /tmp/ne-errors | while read -r l; do tr_msg "error: $l"; done

# The watcher's samples of the pool (used/total data blocks is field 6,
# reserved blocks the last), from the first at 90% used on: how many, how
# many at 90% used or more, and the lowest and median use, and the median
# of used and reserved together, in permille.
awk '$3 == "thin-pool" { split($6, d, "/"); p = int(d[1] * 1000 / d[2]); if (p >= 900) on = 1;
       if (on) { n++; if (p >= 900) hi++; u[n] = p; h[n] = int((d[1] + $NF) * 1000 / d[2]) } }
     END { if (!n) { print "0 0 0 0 0"; exit }
           for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) {
             if (u[j] < u[i]) { t = u[i]; u[i] = u[j]; u[j] = t }
             if (h[j] < h[i]) { t = h[i]; h[i] = h[j]; h[j] = t } }
           m = int((n + 1) / 2); printf "%d %d %d %d %d\n", n, hi, u[1], u[m], h[m] }' \
	"$TR_WATCH_LOG" >/tmp/ne-samples
read -r samples high low median held </tmp/ne-samples
tr_msg "pool use in $samples samples: lowest $(tr_percent "$low"), median $(tr_percent "$median"); used and reserved, median $(tr_percent "$held")"

tr_check "$secs s of load: writers got ENOSPC $enospc times and no other error ($errors)" \
	sh -c "[ $enospc -gt 0 ] && [ $errors = 0 ]"
tr_check "fio overwrote fallocated space on both filesystems without an error or a verification failure (exit $fio_rc)" \
	[ "$fio_rc" = 0 ]
tr_check "the pool was at 90% or more in $high of $samples samples since it first got there (at least 90%)" \
	sh -c "[ $samples -gt 0 ] && [ $((high * 10)) -ge $((samples * 9)) ]"
tr_check "all $files files whose fsync returned read back ($lost lost)" [ $lost = 0 ]
tr_check "FITRIM never failed" [ ! -s /tmp/ne-trim-errors ]
tr_check "the pool never left rw" [ $pool_rw = 0 ]
tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
fl=0 repaired=0
for fs in a b; do
	umount "$TR_MNT/$fs" || tr_msg "umount $fs failed"
	xfs_repair -n "/dev/$TR_VG/$fs" >/tmp/ne-repair.log 2>&1 && repaired=$((repaired + 1))
	fl=$((fl + $(tr_free_list_blocks "/dev/$TR_VG/$fs")))
done
tr_check "xfs_repair -n is clean on both filesystems ($repaired of 2)" [ $repaired = 2 ]
tr_check "unmounted, the pool holds no more than the free lists' earmarks ($(tr_pool_reserved pool) <= $fl)" \
	[ "$(tr_pool_reserved pool)" -le "$fl" ]

tr_vg_destroy
ktap_finished
