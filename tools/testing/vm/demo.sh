#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The demo: the 2016 RFC's scenario in the VM, twice on identical fresh
# pools: on the stock path (our modules not loaded) and with reservations
# (dm_thin_reserve + xfs_thin), then the two outcomes side by side.
# dm-thin's default no_space_timeout (60 s) is kept: this is what a user
# sees today.

export KTAP_HELPERS=${KTAP_HELPERS:-/opt/thin-reserve/selftests/kselftest/ktap_helpers.sh}
cd /opt/thin-reserve/selftests/thin_reservation || exit 1
. ./lib.sh

WRITERS=3
LIMIT_MIB=3072
R=/results

# mark WORDS: a line the host prints as progress ("# vm: ...").
mark() { echo "thin-reserve-vm: $*" >/dev/kmsg; }

# sample MODE: every second, the pool's use and the kernel's error lines so
# far, for the plot (demo-timeline.csv); every ten, a progress line.
sample() {
	n=0
	while :; do
		set -- $(tr_pool_data_blocks pool)
		echo "$mode,$n,$1,$2,$(tr_harm_lines | wc -l)" >>$R/demo-timeline.csv
		[ $((n % 10)) = 0 ] &&
			mark "phase $mode: ${n}s, pool $(tr_percent "$(tr_permille "$1" "$2")") used"
		n=$((n + 1))
		sleep 1
	done
}

modprobe dm-thin-pool
modprobe xfs

# run stock|reserve: the scenario; results in ${1}_* variables.
run() {
	mode=$1
	tr_use "$mode"
	tr_vg_create || { echo "cannot create a volume group"; exit 1; }
	tr_xfs_thin_volume 1G 10G thin
	tr_dmesg_mark
	tr_xfs_mount discard thin "$TR_MNT" || { echo "mount failed"; exit 1; }
	enabled=$(tr_dmesg_since_mark | grep -o 'Thin pool reservation [a-z]*.*' | head -n 1)
	tr_watch_pool
	start=$(date +%s)
	mark "start $mode: $WRITERS writers, $LIMIT_MIB MiB at most"
	sample &
	sampler=$!
	tr_run_writers $WRITERS $LIMIT_MIB
	mark "phase $mode: writers stopped, syncfs"
	sync -f "$TR_MNT"
	sync_rc=$?
	sleep 2
	kill $sampler
	wait $sampler 2>/dev/null
	tr_unwatch_pool
	modes=$(awk '{ print $8 }' "$TR_WATCH_LOG" | sort | uniq -c |
		awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
	set -- $(tr_pool_data_blocks pool)
	used=$1 total=$2
	pool_bytes=$((total * $(tr_pool_block_bytes pool)))
	acked=0 results="" first_used=$total
	i=1
	while [ $i -le $WRITERS ]; do
		acked=$((acked + $(stat -c %s "$TR_MNT/file$i")))
		msg=$(tr_written "$TR_MNT/file$i" msg)
		msg=${msg##*: }
		results="$results${msg:-no error}
"
		u=$(tr_written "$TR_MNT/file$i" used)
		[ "$u" -lt "$first_used" ] && first_used=$u
		i=$((i + 1))
	done
	results=$(printf '%s' "$results" | sort | uniq -c |
		awk '{ n = $1; $1 = ""; printf "%s%s x%s", sep, substr($0, 2), n; sep = ", " }')
	errors=$(tr_harm_lines | wc -l)
	umount "$TR_MNT"
	# What survives: remount and compare every file with what was written.
	# A file that lost its tail comes back shorter; one that differs counts
	# as lost entirely.
	intact=0 kept=0
	if tr_xfs_mount "" thin "$TR_MNT" 2>/dev/null; then
		i=1
		while [ $i -le $WRITERS ]; do
			if tr_pattern_intact "$TR_MNT/file$i" $i; then
				intact=$((intact + 1))
				kept=$((kept + $(stat -c %s "$TR_MNT/file$i")))
			fi
			i=$((i + 1))
		done
		umount "$TR_MNT"
	fi
	lost=$((acked - kept))
	eval "${mode}_enabled=\"\${enabled:-(no message)}\" ${mode}_secs=$(($(date +%s) - start))"
	eval "${mode}_results=\"\$results\" ${mode}_sync=$sync_rc ${mode}_acked=$acked"
	eval "${mode}_pool=$pool_bytes ${mode}_used=\"$used/$total\" ${mode}_modes=\"\$modes\""
	eval "${mode}_errors=$errors ${mode}_intact=$intact ${mode}_lost=$lost ${mode}_kept=$kept"
	eval "${mode}_first=\"$(tr_percent "$(tr_permille "$first_used" "$total")")\""
	tr_vg_destroy
	mark "end $mode time=$(($(date +%s) - start))s"
}

echo "== The RFC scenario, twice: stock 6.12, then with reservations"
echo "   lvcreate --thinpool test/pool -L1G; lvcreate -T test/pool -n thin -V 10G"
echo "   mkfs.xfs -f /dev/test/thin; mount /dev/test/thin /mnt -o discard"
echo "   $WRITERS buffered writers (dd bs=4k of a known pattern), $LIMIT_MIB MiB in all at most"
echo "   then syncfs (sync -f), remount, and compare every file with what was written"
echo "mode,second,used_blocks,pool_blocks,error_lines" >$R/demo-timeline.csv
run stock
run reserve

row() { printf '%-28s %-34s %s\n' "$1" "$2" "$3"; }
echo
echo "== Summary"
row "" "stock" "with reservations"
row "mount says" "$stock_enabled" "$reserve_enabled"
row "writers got" "$stock_results" "$reserve_results"
row "syncfs exit" "$stock_sync" "$reserve_sync"
row "acknowledged to writers" "$(tr_mib "$stock_acked")" "$(tr_mib "$reserve_acked")"
row "pool data space" "$(tr_mib "$stock_pool")" "$(tr_mib "$reserve_pool")"
row "pool blocks used at the end" "$stock_used" "$reserve_used"
row "pool used at first ENOSPC" "-" "$reserve_first"
row "pool modes seen" "$stock_modes" "$reserve_modes"
row "files intact after remount" "$stock_intact of $WRITERS" "$reserve_intact of $WRITERS"
row "bytes kept after remount" "$(tr_mib "$stock_kept")" "$(tr_mib "$reserve_kept")"
row "acknowledged, then lost" "$(tr_mib "$stock_lost")" "$(tr_mib "$reserve_lost")"
row "kernel error lines" "$stock_errors" "$reserve_errors"
row "time" "$stock_secs s" "$reserve_secs s"
