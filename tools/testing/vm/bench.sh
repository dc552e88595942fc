#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The benchmarks, in the VM (scripts/bench.sh boots it; not part of the
# test verdict). Every measurement runs stock XFS (our modules unloaded) and
# XFS with reservations on identical fresh pools, in this one VM run, and
# writes CSV files to /results for the host to plot:
#
#   utilization.csv  chunk, workload, concurrent writers, mode,
#                    acknowledged bytes, ENOSPC seen by every writer, pool
#                    blocks used when the first and when the last writer
#                    stopped, pool blocks, kernel error lines, promises the
#                    shim refused (empty for stock)
#   throughput.csv   workload, jobs, pool zeroing (y/n), repetition, mode,
#                    KiB/s
#   timeline.csv     mode, second, pool blocks used, pool blocks, kernel
#                    error lines so far (sequential fill, 64 KiB chunks)
#   overwrite.csv    snapshot (y/n), repetition, mode, KiB/s
#   nearfull.csv     workload, repetition, mode, pool blocks used before
#                    the workload, pool blocks, KiB/s: the throughput
#                    workloads with one job on a pool 90% full
#   cost.csv         for each run with reservations: the workload, its wall
#                    time, and what the shim reported at unmount (XFS calls
#                    into it, device calls and the microseconds they took)
#
# The throughput pool (14 GiB, on the 16 GiB scratch disk scripts/bench.sh
# asks for) holds the worst case of all data a run can have dirty (16 x the
# dirty limit of this 2 GiB guest), so it measures the cost of reserving,
# not of running out. Pools are created with --errorwhenfull y so that the stock path fails
# writes at once instead of queueing them for 60 s; nothing else differs.

export KTAP_HELPERS=${KTAP_HELPERS:-/opt/thin-reserve/selftests/kselftest/ktap_helpers.sh}
cd /opt/thin-reserve/selftests/thin_reservation || exit 1
. ./lib.sh

# Settings from the host come comma-separated (scripts/bench.sh).
for v in BENCH_POOL_MIB BENCH_THIN BENCH_REPS BENCH_CHUNKS BENCH_WORKLOADS \
	BENCH_TPUT_MIB BENCH_PARTS BENCH_ZERO BENCH_OVERWRITE_MIB BENCH_TPUT_WORKLOADS \
	BENCH_JOBS BENCH_WRITERS BENCH_NEARFULL_WORKLOADS; do
	eval "[ -n \"\${$v:-}\" ] && $v=\$(echo \"\$$v\" | tr ',' ' ')"
done

: "${BENCH_POOL_MIB:=1024}" "${BENCH_THIN:=10G}" "${BENCH_REPS:=5}"
: "${BENCH_CHUNKS:=64K 256K 1M}" "${BENCH_WORKLOADS:=sequential smallfiles random}"
# Concurrent writers of the utilization part; stock runs with the first.
: "${BENCH_WRITERS:=1 2 4}"
: "${BENCH_TPUT_MIB:=512}" "${BENCH_PARTS:=utilization throughput overwrite nearfull}"
# The overwrite part's file; half of it is overwritten.
: "${BENCH_OVERWRITE_MIB:=256}"
# Pool zeroing of new blocks for the throughput runs: lvm's default (y);
# "y n" adds runs without it, to show how much of the cost is zeroing.
: "${BENCH_ZERO:=y}"
# fio workloads of the throughput part (write: sequential 1 MiB, randwrite:
# random 4 KiB into a sparse file, fsync: random 4 KiB with an fsync after
# each, dio: sequential 64 KiB direct writes, dioseq: sequential 1 MiB
# direct writes, diorand: random 4 KiB direct writes into a sparse file,
# meta: 4 KiB files, one after another) and their concurrent jobs.
: "${BENCH_TPUT_WORKLOADS:=write randwrite fsync dioseq diorand meta}" "${BENCH_JOBS:=1 4}"
# The workloads of the near-full part (one job each, a quarter of
# BENCH_TPUT_MIB, on a 4 GiB pool 90% full).
: "${BENCH_NEARFULL_WORKLOADS:=write randwrite fsync dioseq diorand meta}"
CAP_MIB=$((BENCH_POOL_MIB * 2)) # writers stop here at the latest
R=/results

modprobe dm-thin-pool
modprobe xfs

part() { case " $BENCH_PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

# fresh CHUNK POOL_MIB THIN [ZERO]: a new pool and thin volume, XFS mounted
# on it. ZERO (y/n, default y) is the pool's zeroing of new blocks.
fresh() {
	tr_vg_create || { echo "bench: cannot create a volume group"; exit 1; }
	lvcreate -q --thinpool "$TR_VG/pool" -L"$2"M -c "$1" -Z "${4:-y}" --errorwhenfull y \
		>/tmp/bench-lvm.log 2>&1 &&
		lvcreate -q -T "$TR_VG/pool" -n thin -V "$3" >>/tmp/bench-lvm.log 2>&1 ||
		{ cat /tmp/bench-lvm.log; exit 1; }
	mkfs.xfs -q -f "/dev/$TR_VG/thin" || exit 1
	tr_dmesg_mark
	tr_xfs_mount discard thin "$TR_MNT" || { echo "bench: mount failed"; exit 1; }
}

# uptime_cs: seconds since boot in hundredths, for wall times.
uptime_cs() { awk '{ sub(/\./, "", $1); print $1 + 0 }' /proc/uptime; }

# cost WORKLOAD START_CS: after the unmount of a run with reservations that
# started at START_CS, appends the shim's cost line to cost.csv.
cost() {
	wall=$(($(uptime_cs) - $2))
	nums=$(dmesg | grep 'xfs_thin: .* cost: ' | tail -n 1 | sed 's/.* cost: //' |
		grep -o '[0-9][0-9]*' | tr '\n' ',' | sed 's/,$//')
	[ -n "$nums" ] && echo "$1,$((wall * 10)),$nums" >>$R/cost.csv
}

used_blocks() { tr_pool_data_blocks pool | awk '{ print $1 }'; }
total_blocks() { tr_pool_data_blocks pool | awk '{ print $2 }'; }

# fio_run ARGS...: runs fio, leaves "error;KiB written;KiB/s" in FIO_RESULT.
fio_run() {
	FIO_RESULT=$(fio --minimal --group_reporting "$@" 2>/dev/null |
		awk -F';' '{ print $5 ";" $47 ";" $48 }' | tail -n 1)
}

# stopped_at USED: a writer stopped with USED pool blocks in use; keeps
# FIRST_USED (empty to start) and STOP_USED the lowest and the highest.
stopped_at() {
	if [ -z "$FIRST_USED" ] || [ "$1" -lt "$FIRST_USED" ]; then FIRST_USED=$1; fi
	if [ "$1" -gt "$STOP_USED" ]; then STOP_USED=$1; fi
}

# fio_fill WRITERS NAME ARGS...: WRITERS fio processes (jobs NAME1...)
# fill the filesystem together until ENOSPC or the cap; sets ACKED,
# ENOSPC (1 if every writer stopped on ENOSPC), FIRST_USED and STOP_USED
# (pool blocks used as the first and the last writer stopped).
fio_fill() {
	n=$1 name=$2
	shift 2
	j=1 pids=
	while [ $j -le "$n" ]; do
		(fio --minimal --name="$name$j" --directory="$TR_MNT" "$@" 2>/dev/null |
			awk -F';' '{ print $5 ";" $47 }' | tail -n 1 >/tmp/bench-fio.$j
		used_blocks >/tmp/bench-used.$j) &
		pids="$pids $!"
		j=$((j + 1))
	done
	wait $pids
	ACKED=0 ENOSPC=1 FIRST_USED= STOP_USED=0
	j=1
	while [ $j -le "$n" ]; do
		r=$(cat /tmp/bench-fio.$j) u=$(cat /tmp/bench-used.$j)
		ACKED=$((ACKED + ${r#*;} * 1024))
		[ "${r%%;*}" = 28 ] || ENOSPC=0
		stopped_at "$u"
		j=$((j + 1))
	done
}

# workload NAME WRITERS: fills the mounted filesystem with WRITERS
# concurrent writers; sets ACKED (bytes), ENOSPC (1 if every writer got
# it), FIRST_USED and STOP_USED (pool blocks used when the first and the
# last writer stopped).
workload() {
	case $1 in
	sequential)
		# Writers appending 1 MiB at a time, as the selftests' writers.
		TR_WRITE_KIB=1024 tr_run_writers "$2" $CAP_MIB
		ACKED=0 ENOSPC=1 FIRST_USED= STOP_USED=0
		i=1
		while [ $i -le "$2" ]; do
			f=$TR_MNT/file$i
			ACKED=$((ACKED + $(stat -c %s "$f")))
			tr_written "$f" msg | grep -q 'No space' || ENOSPC=0
			u=$(tr_written "$f" used)
			stopped_at "$u"
			i=$((i + 1))
		done
		;;
	smallfiles)
		# Files of 4-64 KiB (random sizes), written whole and closed,
		# until ENOSPC or the cap.
		fio_fill "$2" small --nrfiles=$((CAP_MIB * 30 / $2)) --filesize=4k-64k \
			--bs=4k --rw=write --openfiles=1 --file_service_type=sequential \
			--create_on_open=1 --fallocate=none --randrepeat=1
		;;
	random)
		# 4 KiB random writes, each writer into a sparse file of four
		# times the pool.
		fio_fill "$2" rand --size=$((BENCH_POOL_MIB * 4 / $2))M \
			--io_size=$((CAP_MIB / $2))M --bs=4k --rw=randwrite --fallocate=none \
			--randrepeat=1 --norandommap
		;;
	esac
}

# 1. Utilization at the first ENOSPC (and stock's outcome without one).
echo "chunk,workload,writers,mode,acked_bytes,enospc,first_used_blocks,used_blocks_at_stop,pool_blocks,error_lines,refused" >$R/utilization.csv
echo "mode,second,used_blocks,pool_blocks,error_lines" >$R/timeline.csv
part utilization || BENCH_CHUNKS=
first_writers=${BENCH_WRITERS%% *}
for chunk in $BENCH_CHUNKS; do
	for wl in $BENCH_WORKLOADS; do
		for writers in $BENCH_WRITERS; do
		for mode in stock reserve; do
			[ $mode = stock ] && [ "$writers" != "$first_writers" ] && continue
			tr_use $mode
			fresh "$chunk" "$BENCH_POOL_MIB" "$BENCH_THIN"
			total=$(total_blocks)
			timeline=0
			if [ "$chunk" = 64K ] && [ "$wl" = sequential ] && [ "$writers" = "$first_writers" ]; then
				timeline=1
				# Every 0.2 s: the fill takes seconds on the release kernel.
				(n=0; while :; do
					echo "$mode,$((n / 5)).$((n % 5 * 2)),$(used_blocks),$total,$(tr_harm_lines | wc -l)"
					n=$((n + 1))
					sleep 0.2
				done) >>$R/timeline.csv &
				sampler=$!
			fi
			workload "$wl" "$writers"
			sync -f "$TR_MNT"
			[ $timeline = 1 ] && { sleep 2; kill $sampler; wait $sampler 2>/dev/null; }
			errors=$(tr_harm_lines | wc -l)
			umount "$TR_MNT"
			refused=
			[ $mode = reserve ] && refused=$(dmesg | sed -n 's/.*xfs_thin: .* released; \([0-9]*\) promises refused.*/\1/p' | tail -n 1)
			line="$chunk,$wl,$writers,$mode,$ACKED,$ENOSPC,$FIRST_USED,$STOP_USED,$total,$errors,$refused"
			echo "$line" >>$R/utilization.csv
			echo "bench: utilization $line"
			/opt/thin-reserve/publish.sh
		done
		done
	done
done

# fio_args WORKLOAD MIB JOBS: fio's words for a throughput workload that
# writes MIB per job (8192 files in all for meta).
fio_args() {
	case $1 in
	write) echo "--rw=write --bs=1M --size=${2}M" ;;
	randwrite) echo "--rw=randwrite --bs=4k --size=${2}M" ;;
	# An fsync after every 4 KiB random write: log forces and cache
	# flushes dominate; a sixteenth of the data.
	fsync) echo "--rw=randwrite --bs=4k --fsync=1 --size=$(($2 / 16))M" ;;
	# Direct writes of 64 KiB extending a file: each one allocates.
	dio) echo "--rw=write --bs=64k --direct=1 --size=${2}M" ;;
	dioseq) echo "--rw=write --bs=1M --direct=1 --size=${2}M" ;;
	# Random direct 4 KiB writes into a sparse file: each one allocates
	# and converts an unwritten extent; a sixteenth of the data.
	diorand) echo "--rw=randwrite --bs=4k --direct=1 --size=$(($2 / 16))M" ;;
	# 4 KiB files created and written one after another: inode,
	# directory and allocation metadata; 8192 files in all.
	meta) echo "--rw=write --bs=4k --filesize=4k --nrfiles=$((8192 / $3)) --openfiles=1 --create_on_open=1 --file_service_type=sequential" ;;
	*) echo "bench: unknown throughput workload $1" >&2; return 1 ;;
	esac
}

# 2. Throughput on a pool with plenty of room, alternating stock/reserve.
echo "workload,jobs,zero,rep,mode,kib_per_s" >$R/throughput.csv
echo "workload,wall_ms,hooks,sets,set_us,provisions,provision_us,overwrites,overwrite_us,releases,release_us,new_provisions,new_provision_us" >$R/cost.csv
part throughput || BENCH_ZERO=
for zero in $BENCH_ZERO; do
for wl in $BENCH_TPUT_WORKLOADS; do
	for jobs in $BENCH_JOBS; do
		mib=$((BENCH_TPUT_MIB / jobs))
		args=$(fio_args "$wl" "$mib" "$jobs") || exit 1
		rep=1
		while [ $rep -le "$BENCH_REPS" ]; do
			for mode in stock reserve; do
				tr_use $mode
				fresh 64K 14336 32G "$zero"
				began=$(uptime_cs)
				# shellcheck disable=SC2086 # $args are fio's words
				fio_run --name=tput --directory="$TR_MNT" $args --numjobs=$jobs \
					--end_fsync=1 --fallocate=none --randrepeat=1
				kib=$(echo "$FIO_RESULT" | cut -d';' -f3)
				line="$wl,$jobs,$zero,$rep,$mode,$kib"
				echo "$line" >>$R/throughput.csv
				echo "bench: throughput $line"
				umount "$TR_MNT"
				[ $mode = reserve ] && cost "$wl-$jobs-$zero" "$began"
			done
			rep=$((rep + 1))
		done
		/opt/thin-reserve/publish.sh
	done
done
done
# 3. Overwrites in place, without and with a thin snapshot: 4 KiB random
# buffered overwrites of a file written before, stock and ours alternating.
# Without a snapshot ours answers each overwrite mapping with one call that
# returns at once; with one, every first write of a pool block is
# provisioned (copy-on-write) before it is acknowledged.
echo "snapshot,rep,mode,kib_per_s" >$R/overwrite.csv
overwrite_reps=$BENCH_REPS
part overwrite || overwrite_reps=0
for snap in n y; do
	rep=1
	while [ $rep -le "$overwrite_reps" ]; do
		for mode in stock reserve; do
			tr_use $mode
			fresh 64K 14336 32G y
			fio_run --name=fill --filename="$TR_MNT/file" --rw=write --bs=1M \
				--size=${BENCH_OVERWRITE_MIB}M --end_fsync=1
			[ $snap = y ] && lvcreate -q -s "$TR_VG/thin" -n snap >/dev/null 2>&1
			began=$(uptime_cs)
			fio_run --name=ow --filename="$TR_MNT/file" --rw=randwrite --bs=4k \
				--size=${BENCH_OVERWRITE_MIB}M --io_size=$((BENCH_OVERWRITE_MIB / 2))M \
				--end_fsync=1 --randrepeat=1 --norandommap
			kib=$(echo "$FIO_RESULT" | cut -d';' -f3)
			line="$snap,$rep,$mode,$kib"
			echo "$line" >>$R/overwrite.csv
			echo "bench: overwrite $line"
			umount "$TR_MNT"
			[ $mode = reserve ] && cost "overwrite-$snap" "$began"
		done
		rep=$((rep + 1))
	done
	/opt/thin-reserve/publish.sh
done
# 4. The throughput workloads with one job on a pool 90% full: a 4 GiB pool
# (64 KiB blocks) is filled to 90% with one file, then each workload runs
# in turn, a quarter of BENCH_TPUT_MIB (a sixteenth of that for fsync and
# diorand) into the last 10%; its files are deleted and trimmed and XFS is
# mounted again before the next one, so each starts at 90% and the shim's
# cost is reported per workload.
echo "workload,rep,mode,used_blocks_before,pool_blocks,kib_per_s" >$R/nearfull.csv
part nearfull || BENCH_NEARFULL_WORKLOADS=
rep=1
while [ -n "$BENCH_NEARFULL_WORKLOADS" ] && [ $rep -le "$BENCH_REPS" ]; do
	for mode in stock reserve; do
		tr_use $mode
		fresh 64K 4096 32G y
		total=$(total_blocks)
		fill=$(((total * 9 / 10 - $(used_blocks)) / 16))
		fio_run --name=fill --filename="$TR_MNT/fill" --rw=write --bs=1M \
			--size=${fill}M --end_fsync=1
		for wl in $BENCH_NEARFULL_WORKLOADS; do
			args=$(fio_args "$wl" $((BENCH_TPUT_MIB / 4)) 1) || exit 1
			mkdir "$TR_MNT/w"
			sync -f "$TR_MNT"
			before=$(used_blocks)
			began=$(uptime_cs)
			# shellcheck disable=SC2086 # $args are fio's words
			fio_run --name=nearfull --directory="$TR_MNT/w" $args \
				--end_fsync=1 --fallocate=none --randrepeat=1
			kib=$(echo "$FIO_RESULT" | cut -d';' -f3)
			[ "$(echo "$FIO_RESULT" | cut -d';' -f1)" = 0 ] ||
				echo "bench: nearfull $wl $mode failed: $FIO_RESULT"
			line="$wl,$rep,$mode,$before,$total,$kib"
			echo "$line" >>$R/nearfull.csv
			echo "bench: nearfull $line"
			rm -rf "$TR_MNT/w"
			tr_fstrim "$TR_MNT"
			umount "$TR_MNT"
			[ $mode = reserve ] && cost "nearfull-$wl" "$began"
			tr_xfs_mount discard thin "$TR_MNT" ||
				{ echo "bench: mount failed"; exit 1; }
		done
		umount "$TR_MNT"
	done
	rep=$((rep + 1))
	/opt/thin-reserve/publish.sh
done
tr_vg_destroy
echo "bench: done"
