#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`: boot the VM on the release kernel (2 vCPUs, 2 GiB, as every
# run) and measure stock XFS against XFS with reservations in that one run:
# pool utilization at the first ENOSPC, write throughput, a fill timeline.
# Writes docs/bench/{utilization,throughput,timeline}.csv, results.json and
# PNG plots. Not a test: it prints numbers and ratios, it does not judge.
source "$(dirname "$0")/lib.sh"

# Debian's python3 with Debian's matplotlib draws the plots.
"$TR_TOP/scripts/deps.sh" --plots
# BENCH_* settings (see tools/testing/vm/bench.sh) reach the guest's init
# as environment through the kernel command line, lists comma-separated.
append=""
for v in BENCH_POOL_MIB BENCH_THIN BENCH_REPS BENCH_CHUNKS BENCH_WORKLOADS \
	BENCH_TPUT_MIB BENCH_PARTS BENCH_ZERO BENCH_OVERWRITE_MIB BENCH_TPUT_WORKLOADS \
	BENCH_JOBS BENCH_WRITERS BENCH_NEARFULL_WORKLOADS; do
	[ -n "${!v:-}" ] && append+=" $v=$(echo "${!v}" | tr ' ' ',')"
done
# A 16 GiB sparse scratch disk: the throughput pool must hold the worst
# case of everything a run can have dirty, so that it measures reserving,
# not running out.
run=$(TR_SCRATCH_SIZE=16G "$TR_TOP/scripts/vm.sh" --flavour "${FLAVOUR:-release}" --mode bench \
	--timeout "${BENCH_TIMEOUT:-7200}" --append "$append" | tail -n1)
grep -q '^bench: done' "$run/results/bench.txt" 2>/dev/null ||
	{ tail -n 30 "$run/console.log"; tr_die "the benchmark did not finish; see $run/console.log"; }
out=$TR_TOP/docs/bench
mkdir -p "$out"
# Parts that did not run (BENCH_PARTS) leave the committed results alone.
for csv in utilization throughput timeline overwrite nearfull cost; do
	[ "$(wc -l <"$run/results/$csv.csv" 2>/dev/null || echo 0)" -gt 1 ] &&
		cp "$run/results/$csv.csv" "$out/"
done
/usr/bin/python3 "$TR_TOP/scripts/bench-report.py" "$out" "$(uname -m) TCG, 2 vCPUs, 2 GiB, $(basename "$run")"
