#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Runs kselftests in the VM and prints the kselftest runner's format
# (tools/testing/selftests/kselftest/runner.sh): a TAP plan, each test's own
# KTAP output prefixed with "# ", and one "ok N selftests: DIR: TEST" line a
# test. The kernel's runner needs GNU timeout; busybox's has no --foreground,
# hence this small copy. Output also goes to /results/ktap.txt, which the init
# publish.sh hands to the host after every test.
#
# Each test runs under its own time limit: the "timeout=" of DIR/settings
# (the kselftest way, one limit for all), or the test's line in
# DIR/timeouts ("TEST SECONDS") where it has one. Every test's wall time is
# printed as "# time: TEST N s" and, with its start, on the console, so the
# host can show progress and a slowdown is visible before it is a timeout.
#
#   run-selftests.sh DIR TEST...

dir=$1
shift
collection=$(basename "$dir")
out=/results/ktap.txt
default_timeout=45
[ -r "$dir/settings" ] && default_timeout=$(sed -n 's/^timeout=//p' "$dir/settings")

emit() { echo "$*" | tee -a $out; }

: >$out
emit "TAP version 13"
emit "1..$#"
n=0
suite_start=$(date +%s)
for test in "$@"; do
	n=$((n + 1))
	hdr="selftests: $collection: $test"
	timeout=$(awk -v t="$test" '$1 == t { print $2 }' "$dir/timeouts" 2>/dev/null)
	[ -n "$timeout" ] || timeout=$default_timeout
	emit "# $hdr"
	echo "thin-reserve-vm: start $test limit=${timeout}s" >/dev/kmsg
	start=$(date +%s)
	(
		cd "$dir" || exit 1
		timeout -s KILL "$timeout" "./$test" 2>&1
		echo "rc=$?" >/tmp/rc.$$
	) | while IFS= read -r line; do echo "# $line"; done | tee -a $out
	rc=$(sed -n 's/^rc=//p' /tmp/rc.$$)
	took=$(($(date +%s) - start))
	emit "# time: $test $took s (limit $timeout s)"
	case $rc in
	0) emit "ok $n $hdr" ;;
	4) emit "ok $n $hdr # SKIP" ;;
	137 | 124) emit "not ok $n $hdr # TIMEOUT $timeout seconds" ;;
	*) emit "not ok $n $hdr # exit=$rc" ;;
	esac
	echo "thin-reserve-vm: end $test rc=$rc time=${took}s" >/dev/kmsg
	/opt/thin-reserve/publish.sh
done
emit "# time: all $(($(date +%s) - suite_start)) s"
