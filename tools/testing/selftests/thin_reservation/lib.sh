#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Shared helpers for the thin_reservation selftests. POSIX sh (busybox ash in
# the VM). Source after setting nothing; the environment may override:
#   THIN_RESERVE_SCRATCH  block device the tests may wipe (default /dev/vda)
#   THIN_RESERVE_MODDIR   directory with dm_thin_reserve.ko and xfs_thin.ko
#   KTAP_HELPERS          path of the kernel's ktap_helpers.sh

: "${THIN_RESERVE_SCRATCH:=/dev/vda}"
: "${THIN_RESERVE_MODDIR:=/lib/modules/$(uname -r)/extra}"
: "${KTAP_HELPERS:=$(dirname "$0")/../kselftest/ktap_helpers.sh}"

# shellcheck source=/dev/null
. "$KTAP_HELPERS"

# The kernel flavour the project's VM booted (thin_reserve.flavour= on the
# command line): "debug" runs with lockdep, KASAN and kmemleak, several times
# slower under TCG, so repetitions that only add coverage of the same paths
# are shortened there (tr_repeat). Elsewhere: "release".
TR_FLAVOUR=$(sed -n 's/.*thin_reserve\.flavour=\([a-z]*\).*/\1/p' /proc/cmdline 2>/dev/null)
: "${TR_FLAVOUR:=release}"

# tr_repeat FULL DEBUG: how many rounds of a repeated case to run. The debug
# kernel runs enough to catch lock, memory and sleep bugs on every path of
# the case; the release kernel runs them all.
tr_repeat() { if [ "$TR_FLAVOUR" = debug ]; then echo "$2"; else echo "$1"; fi; }

# The RFC's names: VG test, pool test/pool, thin test/thin.
TR_VG=test
TR_MNT=/mnt/thin_reservation

tr_msg() { ktap_print_msg "$@"; }

# Everything the tests need from userspace; skip (not fail) without it.
tr_require() {
	[ "$(id -u)" = 0 ] || { ktap_skip_all "needs root"; exit "$KSFT_SKIP"; }
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 ||
			{ ktap_skip_all "needs $tool"; exit "$KSFT_SKIP"; }
	done
	[ -b "$THIN_RESERVE_SCRATCH" ] ||
		{ ktap_skip_all "no scratch disk $THIN_RESERVE_SCRATCH"; exit "$KSFT_SKIP"; }
}

# A fresh volume group on the scratch disk, nothing left from earlier tests.
tr_vg_create() {
	tr_vg_destroy
	wipefs -a -q "$THIN_RESERVE_SCRATCH" >/dev/null 2>&1 || true
	pvcreate -q -ff -y "$THIN_RESERVE_SCRATCH" >/dev/null &&
		vgcreate -q "$TR_VG" "$THIN_RESERVE_SCRATCH" >/dev/null 2>&1
}

tr_vg_destroy() {
	grep -qs " $TR_MNT " /proc/mounts && umount "$TR_MNT"
	if vgs "$TR_VG" >/dev/null 2>&1; then
		vgchange -q -an "$TR_VG" >/dev/null 2>&1
		vgremove -q -ff -y "$TR_VG" >/dev/null 2>&1
	fi
	pvremove -q -ff -y "$THIN_RESERVE_SCRATCH" >/dev/null 2>&1
	# Give the discarded space back to the host's sparse image.
	blkdiscard "$THIN_RESERVE_SCRATCH" >/dev/null 2>&1
	return 0
}

# dm name of an LV: dashes in names are doubled by lvm.
tr_dm_name() { echo "$(echo "$1" | sed 's/-/--/g')-$(echo "$2" | sed 's/-/--/g')"; }

# The thin-pool status line of VG/POOL (the -tpool layer holds the target).
tr_pool_status() { dmsetup status "$(tr_dm_name "$TR_VG" "$1")-tpool"; }

# Used and total data blocks of a pool: "used total".
tr_pool_data_blocks() {
	tr_pool_status "$1" | awk '{ split($6, d, "/"); print d[1], d[2] }'
}

# The number of kernel log lines matching an extended regexp since the
# marker tr_dmesg_mark last wrote.
tr_dmesg_mark() {
	# A counter too: two marks in the same second must still differ.
	TR_MARK_N=$((${TR_MARK_N:-0} + 1))
	TR_MARK="thin_reservation test mark $$.$(date +%s).$TR_MARK_N"
	echo "$TR_MARK" >/dev/kmsg
}
tr_dmesg_since_mark() { dmesg | sed -n "/$TR_MARK/,\$p"; }
tr_dmesg_count() { tr_dmesg_since_mark | grep -cE "$1"; }

tr_module_loaded() { grep -q "^$1 " /proc/modules; }

# Result helper: tr_check DESCRIPTION CONDITION-COMMAND...
tr_check() {
	desc=$1
	shift
	if "$@"; then ktap_test_pass "$desc"; else ktap_test_fail "$desc"; fi
}

# Data block size of VG/POOL in bytes, from the thin-pool table line.
tr_pool_block_bytes() {
	dmsetup table "$(tr_dm_name "$TR_VG" "$1")-tpool" | awk '{ print $6 * 512 }'
}

# The 2016 RFC's scenario, on a fresh volume group:
#
#   lvcreate --thinpool test/pool -L1G; lvcreate -T test/pool -n thin -V 10G
#   mkfs.xfs -f /dev/test/thin; mount /dev/test/thin MNT -o discard
#   dd if=/dev/zero of=MNT/file bs=4k
#
# dd is bounded to RFC_DD_LIMIT_MIB (default three times the pool) so a run on
# the stock path, which never sees ENOSPC in time, ends. The filesystem stays
# mounted for the caller to inspect; tr_vg_destroy cleans up. Sets:
#   RFC_DD_RC RFC_DD_MSG     dd's exit status and last line of its stderr
#   RFC_SYNC_RC              syncfs's exit status (sync -f)
#   RFC_ACKED                bytes acknowledged to dd (the file's size)
#   RFC_POOL_BYTES           the pool's data size
#   RFC_USED RFC_TOTAL       pool data blocks used and total at the end
#   RFC_IO_ERRORS            kernel log lines with I/O or writeback errors
#   RFC_MODES                pool modes seen while dd ran, with counts
#   RFC_OUT_OF_SPACE         1 if the pool ever left rw mode (out of space or failed)
tr_rfc_scenario() {
	: "${RFC_POOL_SIZE:=1G}" "${RFC_THIN_SIZE:=10G}" "${RFC_DD_LIMIT_MIB:=3072}"
	tr_vg_create || ktap_exit_fail_msg "cannot create a volume group on $THIN_RESERVE_SCRATCH"
	# lvm warns about over-provisioning, which is the point here.
	lvcreate -q --thinpool "$TR_VG/pool" -L"$RFC_POOL_SIZE" >/tmp/rfc-lvm.log 2>&1 &&
		lvcreate -q -T "$TR_VG/pool" -n thin -V "$RFC_THIN_SIZE" >>/tmp/rfc-lvm.log 2>&1 ||
		{ cat /tmp/rfc-lvm.log; ktap_exit_fail_msg "lvcreate failed"; }
	mkfs.xfs -q -f "/dev/$TR_VG/thin" || ktap_exit_fail_msg "mkfs.xfs failed"
	mkdir -p "$TR_MNT"
	# -t xfs: busybox mount does not probe for a filesystem whose module is
	# not loaded yet.
	mount -t xfs -o discard "/dev/$TR_VG/thin" "$TR_MNT" || ktap_exit_fail_msg "mount failed"

	tr_dmesg_mark
	# Watch the pool while dd runs: record every mode it passes through.
	statlog=/tmp/rfc-pool-status.$$
	(while :; do tr_pool_status pool; sleep 1; done) >"$statlog" 2>&1 &
	watcher=$!
	dd if=/dev/zero of="$TR_MNT/file" bs=4k count=$((RFC_DD_LIMIT_MIB * 256)) \
		2>/tmp/rfc-dd.err.$$
	RFC_DD_RC=$?
	RFC_DD_MSG=$(grep -v 'records\|bytes' /tmp/rfc-dd.err.$$ | tail -n 1)
	[ -n "$RFC_DD_MSG" ] || RFC_DD_MSG="no error"
	# syncfs, whose result reports writeback errors (plain sync's does not).
	sync -f "$TR_MNT"
	RFC_SYNC_RC=$?
	sleep 2
	kill "$watcher"
	wait "$watcher" 2>/dev/null

	RFC_ACKED=$(stat -c %s "$TR_MNT/file")
	set -- $(tr_pool_data_blocks pool)
	RFC_USED=$1 RFC_TOTAL=$2
	RFC_POOL_BYTES=$((RFC_TOTAL * $(tr_pool_block_bytes pool)))
	RFC_IO_ERRORS=$(tr_dmesg_count 'writeback error|I/O error')
	RFC_MODES=$(awk '{ print $8 }' "$statlog" | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
	RFC_OUT_OF_SPACE=0
	grep -qE 'out_of_data_space|Fail' "$statlog" && RFC_OUT_OF_SPACE=1
	rm -f "$statlog" /tmp/rfc-dd.err.$$
}

tr_mib() { echo "$(($1 / 1048576)) MiB"; }

# --- Block reservations through the bdev_reserve_client test module ---

TR_CLIENT=/sys/kernel/debug/bdev_reserve_client/command

# Load dm-thin-pool, the ledger and the test client (in that order: each
# needs the one before).
tr_load_reserve_modules() {
	modprobe dm-thin-pool || ktap_exit_fail_msg "cannot load dm-thin-pool"
	for mod in dm_thin_reserve bdev_reserve_client; do
		tr_module_loaded $mod || insmod "$THIN_RESERVE_MODDIR/$mod.ko" ||
			ktap_exit_fail_msg "cannot load $mod"
	done
}

# tr_client OP DEV [ARGS]: one call; prints the value read back, or the error
# the write failed with as "error: ...".
tr_client() {
	if out=$(echo "$*" 2>&1 >$TR_CLIENT); then
		cat $TR_CLIENT
	else
		echo "error: ${out##*: }"
	fi
}

tr_thin_dev() { echo "/dev/mapper/$(tr_dm_name $TR_VG "$1")"; }
# Fields appended by the hook series: the pool line ends with its reserved
# blocks, the thin line with the device's reserved sectors.
tr_pool_reserved() { tr_pool_status "$1" | awk '{ print $NF }'; }
tr_thin_reserved() { dmsetup status "$(tr_dm_name $TR_VG "$1")" | awk '{ print $NF }'; }
tr_pool_free() { tr_pool_data_blocks "$1" | awk '{ print $2 - $1 }'; }
# Blocks (of 64 KiB) a thin device maps.
tr_thin_mapped() { dmsetup status "$(tr_dm_name $TR_VG "$1")" | awk '{ print $4 / 128 }'; }

# A fresh volume group with a 64 MiB pool of 64 KiB blocks that errors when
# full (so a failure never hangs a test) and two 1 GiB thin volumes, a and b.
# Extra arguments go to the pool's lvcreate.
TR_BLOCK=128 # sectors in the pool's 64 KiB blocks
tr_small_pool_two_thins() {
	tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
	lvcreate -q --thinpool $TR_VG/pool -L64M -c 64K --errorwhenfull y "$@" >/dev/null 2>&1 &&
		lvcreate -q -T $TR_VG/pool -n a -V 1G >/dev/null 2>&1 &&
		lvcreate -q -T $TR_VG/pool -n b -V 1G >/dev/null 2>&1 ||
		ktap_exit_fail_msg "lvcreate failed"
}

# ---------------------------------------------------------------------------
# XFS with thin-pool reservations (xfs_thin).

# All three project modules that reservations need, XFS first (xfs_thin
# registers with it).
tr_load_xfs_thin() {
	tr_load_reserve_modules
	modprobe xfs || ktap_exit_fail_msg "cannot load xfs"
	tr_module_loaded xfs_thin || insmod "$THIN_RESERVE_MODDIR/xfs_thin.ko" ||
		ktap_exit_fail_msg "cannot load xfs_thin"
}

# The stock path: none of our modules loaded.
tr_unload_our_modules() {
	for mod in xfs_thin bdev_reserve_client dm_thin_reserve; do
		tr_module_loaded $mod && rmmod $mod
	done
}

# stock|reserve: the stock path, or reservations on.
tr_use() {
	if [ "$1" = stock ]; then tr_unload_our_modules; else tr_load_xfs_thin; fi
}

# Runs N writers of TOTAL_MIB in all, writer i on $TR_MNT/file$i, and waits
# for them (only them: the pool watcher runs on).
tr_run_writers() {
	n=$1 i=1 pids=
	while [ $i -le "$n" ]; do
		tr_write_pattern "$TR_MNT/file$i" $i $(($2 / n)) &
		pids="$pids $!"
		i=$((i + 1))
	done
	wait $pids
}

# A pool VG/pool of $1 with a thin volume VG/$3 of $2 (default "thin"),
# mkfs.xfs on it. Extra lvcreate options for the pool follow as $4...
tr_xfs_thin_volume() {
	size=$1 vsize=$2 name=${3:-thin}
	if [ $# -ge 3 ]; then shift 3; else shift $#; fi
	if ! lvs "$TR_VG/pool" >/dev/null 2>&1; then
		lvcreate -q --thinpool "$TR_VG/pool" -L"$size" "$@" >/tmp/tr-lvm.log 2>&1 ||
			{ cat /tmp/tr-lvm.log; ktap_exit_fail_msg "lvcreate pool failed"; }
	fi
	lvcreate -q -T "$TR_VG/pool" -n "$name" -V "$vsize" >>/tmp/tr-lvm.log 2>&1 ||
		{ cat /tmp/tr-lvm.log; ktap_exit_fail_msg "lvcreate $name failed"; }
	# shellcheck disable=SC2086 # TR_MKFS_OPTS are words for mkfs.xfs
	mkfs.xfs -q -f ${TR_MKFS_OPTS:-} "/dev/$TR_VG/$name" ||
		ktap_exit_fail_msg "mkfs.xfs $name failed"
}

# mount -t xfs OPTIONS VG/NAME DIR (busybox mount does not probe).
tr_xfs_mount() {
	mkdir -p "$3"
	mount -t xfs ${1:+-o "$1"} "/dev/$TR_VG/$2" "$3"
}

# The byte stream writer N writes: no zero bytes, so a block lost on the way
# to a thin device (which reads back as zeros) cannot compare equal. Lines
# of 4 KiB: generating and comparing a gibibyte of short lines took over a
# minute under TCG.
tr_pattern_line() { printf '%-4095.4095s' "thin-reserve writer $1: $(seq -s ' ' 1 700)"; }
tr_pattern() { yes "$(tr_pattern_line "$1")"; }

# Writes file FILE from writer N with buffered writes until an error or
# LIMIT_MIB. Records, outside the filesystem, the dd exit code (rc), its
# last message (msg) and the pool's used data blocks when dd stopped (used);
# tr_written FILE rc|msg|used reads them.
# TR_WRITE_KIB sets the size of each write in KiB (default 4).
tr_write_pattern() {
	file=$1 n=$2 limit=$3 base=/tmp/written$(echo "$1" | tr / _)
	kib=${TR_WRITE_KIB:-4}
	tr_pattern "$n" | dd of="$file" bs=${kib}k count=$((limit * 1024 / kib)) \
		$TR_DD_FULLBLOCK 2>"$base.err"
	echo $? >"$base.rc"
	tr_pool_data_blocks pool | awk '{ print $1 }' >"$base.used"
	grep -v 'records\|bytes' "$base.err" | tail -n 1 >"$base.msg"
}

# tr_holds FILE OFFSET LEN N STREAM_OFFSET: FILE's bytes [OFFSET, OFFSET +
# LEN) are writer N's stream from STREAM_OFFSET on.
tr_holds() { [ "$3" = 0 ] || tr_pattern "$4" | cmp -s -n "$3" - "$1" "$5" "$2"; }

# tr_overwrite_dd FILE N FROM_MIB MIB [FLAGS]: overwrite MIB MiB of FILE
# from FROM_MIB on with writer N's stream, a MiB a write; sets OW_RC,
# OW_MSG, OW_MIB (whole MiB dd was told were written) and OW_PART (1 if a
# last write was short: its MiB holds an unknown mix of old and new).
tr_overwrite_dd() {
	tr_pattern "$2" | dd of="$1" bs=1M seek="$3" count="$4" \
		conv=notrunc ${5:-} $TR_DD_FULLBLOCK 2>/tmp/tr-ow.err
	OW_RC=$?
	set -- $(sed -n 's/^\([0-9]*\)+\([0-9]*\) records out$/\1 \2/p' /tmp/tr-ow.err) 0 0
	OW_MIB=$1 OW_PART=$2
	OW_MSG=$(grep -v 'records' /tmp/tr-ow.err | tail -n 1)
	[ -n "$OW_MSG" ] || OW_MSG="no error"
}

# Busybox dd reads a pipe in short reads unless told to fill each block.
TR_DD_FULLBLOCK=
dd if=/dev/zero of=/dev/null bs=4k count=1 iflag=fullblock 2>/dev/null &&
	TR_DD_FULLBLOCK=iflag=fullblock

tr_written() { cat "/tmp/written$(echo "$1" | tr / _).$2"; }

# Does FILE hold exactly what writer N wrote, as long as the file is?
# uniq -c reads the file once and compares line by line: an intact file is
# one line, writer N's, counted size / 4 KiB times; a lost block (zeros,
# no newline) or another writer's block makes more lines. Three times
# faster than cmp against a generated stream, which matters under TCG
# (a gibibyte took minutes). Files that are not whole lines use cmp.
tr_pattern_intact() {
	size=$(stat -c %s "$1")
	if [ $((size % 4096)) != 0 ] || [ "$size" = 0 ]; then
		tr_pattern "$2" | head -c "$size" | cmp -s - "$1"
		return
	fi
	[ "$(uniq -c "$1" | head -c 8192)" = "$(printf '%7d %s' $((size / 4096)) "$(tr_pattern_line "$2")")" ]
}

# Starts recording the pool's status every second into $TR_WATCH_LOG.
tr_watch_pool() {
	TR_WATCH_LOG=/tmp/tr-pool-watch.$$
	: >"$TR_WATCH_LOG"
	# Every 10 s the pool's usage also goes to the kernel log, so that a
	# slow or stuck run shows on the VM console how far it got.
	# When usage has not moved for a minute, the writers' kernel stacks go
	# there too, once.
	(n=0 last= same=0; while :; do
		st=$(tr_pool_status pool 2>&1)
		echo "$st"
		used=$(echo "$st" | awk '{ print $6, $8 }')
		if [ $((n % 10)) = 0 ]; then
			echo "thin_reservation: pool $used" >/dev/kmsg
			if [ "$used" = "$last" ]; then same=$((same + 1)); else same=0; fi
			last=$used
			[ $same = 6 ] && tr_dump_stacks
		fi
		n=$((n + 1))
		sleep 1
	done) >>"$TR_WATCH_LOG" 2>&1 &
	TR_WATCHER=$!
}

# Kernel stacks of every process in uninterruptible sleep or running dd,
# sync or umount, to the kernel log: what a stuck test is waiting for.
tr_dump_stacks() {
	for d in /proc/[0-9]*; do
		state=$(awk '{ print $3 }' "$d/stat" 2>/dev/null)
		comm=$(cat "$d/comm" 2>/dev/null)
		case "$state:$comm" in
		D:* | *:dd | *:sync | *:umount | *:kworker*) ;;
		*) continue ;;
		esac
		stack=$(cat "$d/stack" 2>/dev/null | head -n 24)
		[ -n "$stack" ] || continue
		echo "thin_reservation: stack of ${d#/proc/} $comm ($state)" >/dev/kmsg
		echo "$stack" | while IFS= read -r l; do echo "thin_reservation:   $l" >/dev/kmsg; done
	done
}

# Stops it; succeeds if the pool never left read-write mode.
tr_unwatch_pool() {
	tr_pool_status pool >>"$TR_WATCH_LOG" 2>&1
	kill "$TR_WATCHER" 2>/dev/null
	wait "$TR_WATCHER" 2>/dev/null
	! grep -qE 'out_of_data_space|Fail|read_only| ro ' "$TR_WATCH_LOG"
}

# Kernel log lines since the mark that mean data or the filesystem got hurt.
TR_HARM='writeback error|I/O error|Filesystem has been shut down|xfs_do_force_shutdown|Corruption|out-of-data-space|accounting drift|[1-9][0-9]* provision failures|provisioning .* failed|[1-9][0-9]* allowance overdraws'
tr_harm_lines() { tr_dmesg_since_mark | grep -E "$TR_HARM"; }
tr_no_harm() {
	lines=$(tr_harm_lines)
	[ -z "$lines" ] && return 0
	echo "$lines" | head -n 5 | while IFS= read -r l; do tr_msg "kernel: $l"; done
	return 1
}

# Deletes FILE so that its blocks are free when this returns: truncating
# frees them in the syscall, while rm alone leaves them to XFS's background
# inactivation (inodegc), which a following fstrim may run ahead of.
tr_xfs_delete() {
	[ -e "$1" ] && : >"$1"
	rm -f "$1"
	sync
}

# fstrim MOUNTPOINT, then wait (up to 120 s) until pool POOL's usage has
# stopped falling for 2 s: since Linux 6.6 FITRIM returns before its
# discards complete. Writers need no such wait (XFS waits for the discards
# before it says ENOSPC on a thin volume); tests that measure the pool
# right after a trim do.
tr_fstrim() {
	fstrim "$1" || return 1
	tr_pool_settle "${2:-pool}"
}

# tr_is_enospc MESSAGE [USED TOTAL BLOCK_BYTES]: MESSAGE says "No space
# left on device", and, if given, the pool was nearly full then
# (tr_pool_nearly_full USED TOTAL BLOCK_BYTES).
tr_is_enospc() {
	echo "$1" | grep -q 'No space left on device' || return 1
	[ -z "${2:-}" ] || tr_pool_nearly_full "$2" "$3" "$4"
}

# tr_pool_nearly_full USED TOTAL BLOCK_BYTES: at least 99% of the pool's
# TOTAL blocks are USED, or at most 1% of 1 GiB is left unused. What stays
# free at the first ENOSPC is a fixed amount (dm-thin's metadata margin and
# the shim's allowance, sized by the filesystem, not by the pool), so a
# pool smaller than 1 GiB is held to the same slack in bytes that 99% of
# 1 GiB allows, never to a looser one.
tr_pool_nearly_full() { tr_pool_used_within "$1" "$2" "$3" 990; }

# tr_pool_used_within USED TOTAL BLOCK_BYTES PERMILLE: at least PERMILLE
# of the pool's TOTAL blocks are USED, or no more bytes are unused than
# that leaves of 1 GiB (the same fixed slack, for pools under 1 GiB).
tr_pool_used_within() {
	[ "$(tr_permille "$1" "$2")" -ge "$4" ] && return 0
	[ $((($2 - $1) * $3)) -le $((1073741824 / 1000 * (1000 - $4))) ]
}

# Waits (up to 120 s) until pool POOL's usage has stopped changing for 2 s:
# discards of freed blocks reach the pool some time after the free.
tr_pool_settle() {
	last=$(tr_pool_data_blocks "${1:-pool}" | awk '{ print $1 }') same=0
	for _ in $(seq 240); do
		sleep 0.5
		now=$(tr_pool_data_blocks "${1:-pool}" | awk '{ print $1 }')
		if [ "$now" = "$last" ]; then
			same=$((same + 1))
			[ $same -ge 4 ] && return 0
		else
			same=0
		fi
		last=$now
	done
}

# Frees MIB of $TR_MNT/filler and waits until the pool has the space back.
# Its last writes may still be dirty: write them first, so that the
# truncation frees pool blocks and not only promises.
tr_free_filler() {
	sync -f "$TR_MNT"
	size=$(stat -c %s "$TR_MNT/filler")
	xfs_io -c "truncate $((size - $1 * 1048576))" "$TR_MNT/filler"
	sync -f "$TR_MNT"
	tr_pool_settle
}

# Blocks on the free lists (AGFLs) of the unmounted XFS on DEVICE, all
# allocation groups together.
tr_free_list_blocks() {
	ags=$(xfs_db -r -c "sb 0" -c "print agcount" "$1" | awk '{ print $3 }')
	ag=0 n=0
	while [ "$ag" -lt "$ags" ]; do
		fl=$(xfs_db -r -c "agf $ag" -c "print flcount" "$1" | awk '{ print $3 }')
		n=$((n + fl)) ag=$((ag + 1))
	done
	echo "$n"
}

# Pool "pool"'s data usage now, as a percentage.
tr_pool_pct() {
	set -- $(tr_pool_data_blocks pool)
	tr_percent "$(tr_permille "$1" "$2")"
}

# Pool data usage as a percentage with one decimal: "used*1000/total".
tr_permille() { echo $(($1 * 1000 / $2)); }
tr_percent() { echo "$(($1 / 10)).$(($1 % 10))%"; }
