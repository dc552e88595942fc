#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make stress`: the reliability suite, on the debug kernel by default.
# Not part of `make check` (it runs for an hour or more). Prints KTAP and
# ends with "N passed, N failed"; the summary also goes to
# out/stress-suite-<flavour>-<time>/summary.txt.
#
#   STRESS_SEED=N      seed of the power-cut trials (default: the time; printed)
#   STRESS_TRIALS=N    power-cut trials (default 20)
#   STRESS_PARTS="powercut cycles enospc"   which parts run (default all)
#   STRESS_CYCLES=N STRESS_REACTIVATIONS=N   rounds of the cycles test
#                      (default 200 and 50)
#   STRESS_ENOSPC_SECONDS=N   load near ENOSPC (default 600)
#   STRESS_SCENARIOS="0 1 2"   workloads the trials draw from (default all)
#   STRESS_CHECK_CUTS=N  every Nth trial also cuts the power during the
#                      check's own fill of the pool (default 3; 0: never)
#   STRESS_KEEP=y      keep the power cuts' scratch disk image
#   FLAVOUR=release|debug
#
# Power cuts: one scratch disk for all trials. Each trial boots the VM with
# a workload (tools/testing/vm/stress.sh, phase load: filling to ENOSPC,
# deleting and trimming, or overwriting under a snapshot, by the seed) and
# kills QEMU a seeded number of seconds into it, then boots again to check
# (phase check): thin_check, log recovery, every fsync'd file intact, the
# reservation rebuilt, a fallocated range writable on a full pool,
# xfs_repair -n. Every STRESS_CHECK_CUTS-th trial cuts that check too, a
# seeded 1-8 seconds into its fill of the pool, and boots a second check.
# A trial passes when every boot is free of kernel reports and harm and
# every check of the last one passed.
#
# Cycles: stress_cycles.sh, mount/fill/unmount and deactivate/activate
# rounds. Near ENOSPC: stress_near_enospc.sh, two filesystems sharing a
# pool held within a few percent of full under writers, fio overwrites
# with verification and FITRIM. Each runs in a VM boot of its own.
source "$(dirname "$0")/lib.sh"
set +e

flavour=${FLAVOUR:-debug}
seed=${STRESS_SEED:-$(date +%s)}
trials=${STRESS_TRIALS:-20}
check_cuts=${STRESS_CHECK_CUTS:-3}
[[ $check_cuts =~ ^[0-9]+$ ]] || tr_die "STRESS_CHECK_CUTS: '$check_cuts' is not a number"
parts=${STRESS_PARTS:-powercut cycles enospc}
read -ra scenarios <<<"${STRESS_SCENARIOS:-0 1 2}"
for sc in "${scenarios[@]}"; do
	[[ $sc == [012] ]] || tr_die "STRESS_SCENARIOS: '$sc' is not a workload (0, 1 or 2)"
done
[ ${#scenarios[@]} -gt 0 ] || tr_die "STRESS_SCENARIOS is empty"
out=$TR_TOP/out/stress-suite-$flavour-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
summary=$out/summary.txt
n=0 passed=0 failed=0

emit() { echo "$*" | tee -a "$summary"; }
# A result line, to the summary and to us.
result() { tr_result "$@" >>"$summary" && tail -n 1 "$summary"; }
# Kernel lines on a console that mean data or the filesystem got hurt: the
# selftests' own list (TR_HARM in their lib.sh).
harm_re=$(sed -n "s/^TR_HARM='\(.*\)'\$/\1/p" "$TR_TOP/tools/testing/selftests/thin_reservation/lib.sh")
[ -n "$harm_re" ] || tr_die "TR_HARM not found in the selftests' lib.sh"

emit "TAP version 13"
emit "# thin-reserve stress on the $flavour kernel, seed $seed, parts: $parts, workloads: ${scenarios[*]}"
"$TR_TOP/scripts/deps.sh" >>"$out/build.log" 2>&1 || tr_die "build dependencies missing"

if [[ " $parts " == *" powercut "* ]]; then
	img=$out/scratch.img
	for t in $(seq 1 "$trials"); do
		tseed=$((0x$(echo "$seed $t" | md5sum | cut -c1-7)))
		delay=$((2 + tseed % 29))
		scenario=${scenarios[(tseed / 29) % ${#scenarios[@]}]}
		name="power cut $t: scenario $scenario, cut ${delay}s into the workload"
		check_delay=
		if [ "$check_cuts" -gt 0 ] && [ $((t % check_cuts)) = 0 ]; then
			check_delay=$((1 + tseed / 87 % 8))
			name+=", then ${check_delay}s into the check's fill"
		fi
		name+=", trial seed $tseed"
		args="thin_reserve.seed=$tseed thin_reserve.trial=$t thin_reserve.scenario=$scenario"
		load=$("$TR_TOP/scripts/vm.sh" --flavour "$flavour" --mode stress --scratch "$img" \
			--power-cut "$delay" --timeout 900 --append "thin_reserve.phase=load $args" \
			2>>"$out/vm.log" | tail -n1)
		cut_check=
		if [ -n "$check_delay" ]; then
			cut_check=$("$TR_TOP/scripts/vm.sh" --flavour "$flavour" --mode stress \
				--scratch "$img" --power-cut "$check_delay" --timeout 1200 \
				--append "thin_reserve.phase=check $args" 2>>"$out/vm.log" | tail -n1)
		fi
		check=$("$TR_TOP/scripts/vm.sh" --flavour "$flavour" --mode stress --scratch "$img" \
			--timeout 1200 --append "thin_reserve.phase=check $args" 2>>"$out/vm.log" | tail -n1)
		why=
		[ -e "$load/power-cut" ] || why="the workload never started (see $load/console.log)"
		if [ -z "$why" ] && grep -E "$harm_re" "$load/console.log" >/dev/null; then
			why="before the cut: $(grep -m1 -E "$harm_re" "$load/console.log")"
		fi
		if [ -z "$why" ] && [ -n "$cut_check" ]; then
			# The cut check's own checks before its fill must pass too.
			if [ ! -e "$cut_check/power-cut" ]; then
				why="the check's fill never started (see $cut_check/console.log)"
			elif grep -E "$harm_re" "$cut_check/console.log" >/dev/null; then
				why="before the check's cut: $(grep -m1 -E "$harm_re" "$cut_check/console.log")"
			elif grep -q '^not ok' "$cut_check/console.log"; then
				# Cut, it never published its results: its KTAP is
				# on the console.
				why="before the check's cut: $(grep -m1 '^not ok' "$cut_check/console.log")"
			fi
		fi
		for run in $load $cut_check $check; do
			if [ -z "$why" ] && ! report=$("$TR_TOP/scripts/splats.sh" "$run/console.log"); then
				why="kernel report: $(head -n1 <<<"$report")"
			fi
		done
		ktap=$check/results/ktap.txt
		totals=$(grep -m1 '^# Totals:' "$ktap" 2>/dev/null)
		if [ -z "$why" ]; then
			if [ -z "$totals" ] || grep -q '^Bail out' "$ktap" ||
				! grep -q '^thin-reserve-vm: finished' "$check/console.log"; then
				why="the check did not finish (see $check/console.log)"
			elif ! [[ $totals =~ \ fail:0\  ]]; then
				why="$(grep -m1 '^not ok' "$ktap")"
			fi
		fi
		grep -E '^(ok|not ok) |^# (all|falloc-before-cut)' "$ktap" 2>/dev/null |
			sed "s/^/# trial $t: /" >>"$summary"
		if [ -z "$why" ]; then result ok "$name"; else result fail "$name" "$why"; fi
	done
	[ -n "${STRESS_KEEP:-}" ] || rm -f "$img"
	emit "# fallocated before the cut and written on the full pool after it:" \
		"$(grep -c 'falloc-before-cut: written' "$summary") written," \
		"$(grep -c 'falloc-before-cut: ENOSPC' "$summary") ENOSPC at write time"
fi

# selftest_part TEST TIMEOUT APPEND DESCRIPTION: one selftest in a VM boot
# of its own, as one result; its checks go to the summary.
selftest_part() {
	local run ktap line why report
	run=$("$TR_TOP/scripts/vm.sh" --flavour "$flavour" --mode tests --tests "$1" \
		--timeout "$2" --append "$3" 2>>"$out/vm.log" | tail -n1)
	ktap=$run/results/ktap.txt
	grep -E '^# (ok|not ok) |^# # ' "$ktap" 2>/dev/null | sed "s/^/# ${1%.sh}: /" >>"$summary"
	line=$(grep -m1 -E "^(not )?ok [0-9]+ selftests: thin_reservation: $1" "$ktap")
	why=
	case $line in
	"") why="not run (see $run/console.log)" ;;
	"not ok"*) why="$(grep -m1 -E '^# (not ok|Bail out)' "$ktap")"; why=${why:-${line#*# }} ;;
	esac
	if [ -z "$why" ] && ! report=$("$TR_TOP/scripts/splats.sh" "$run/console.log"); then
		why="kernel report: $(head -n1 <<<"$report")"
	fi
	result "$([ -z "$why" ] && echo ok || echo fail)" "$4" "$why"
}

if [[ " $parts " == *" cycles "* ]]; then
	selftest_part stress_cycles.sh 7200 \
		"thin_reserve.cycles=${STRESS_CYCLES:-200} thin_reserve.reactivations=${STRESS_REACTIVATIONS:-50}" \
		"cycles: ${STRESS_CYCLES:-200} mount/fill/unmount, ${STRESS_REACTIVATIONS:-50} deactivate/activate"
fi

if [[ " $parts " == *" enospc "* ]]; then
	selftest_part stress_near_enospc.sh $((${STRESS_ENOSPC_SECONDS:-600} * 3 + 600)) \
		"thin_reserve.enospc_seconds=${STRESS_ENOSPC_SECONDS:-600}" \
		"near ENOSPC: two filesystems on one pool, ${STRESS_ENOSPC_SECONDS:-600} s of mixed load"
fi

emit "1..$n"
emit "$passed passed, $failed failed"
[ $failed = 0 ] && [ $passed -gt 0 ]
