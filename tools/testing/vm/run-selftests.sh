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
#   run-selftests.sh DIR TEST...

dir=$1
shift
collection=$(basename "$dir")
out=/results/ktap.txt
timeout=45
[ -r "$dir/settings" ] && timeout=$(sed -n 's/^timeout=//p' "$dir/settings")

emit() { echo "$*" | tee -a $out; }

: >$out
emit "TAP version 13"
emit "1..$#"
n=0
for test in "$@"; do
	n=$((n + 1))
	hdr="selftests: $collection: $test"
	emit "# $hdr"
	echo "thin-reserve-vm: start $test" >/dev/kmsg
	(
		cd "$dir" || exit 1
		timeout -s KILL "$timeout" "./$test" 2>&1
		echo "rc=$?" >/tmp/rc.$$
	) | while IFS= read -r line; do echo "# $line"; done | tee -a $out
	rc=$(sed -n 's/^rc=//p' /tmp/rc.$$)
	case $rc in
	0) emit "ok $n $hdr" ;;
	4) emit "ok $n $hdr # SKIP" ;;
	137 | 124) emit "not ok $n $hdr # TIMEOUT $timeout seconds" ;;
	*) emit "not ok $n $hdr # exit=$rc" ;;
	esac
	echo "thin-reserve-vm: end $test rc=$rc" >/dev/kmsg
	/opt/thin-reserve/publish.sh
done
