#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Self-test of the VM harness, run on demand (`make harness-selftest`), not
# part of `make check`: boots the debug kernel once per deliberate bug in
# tools/testing/vm/faulty/ and requires scripts/splats.sh to turn each run
# red with the matching checker's report. A checker that stays silent here
# would let the same bug through in our code.
source "$(dirname "$0")/lib.sh"
set +e

# fault name | what the report must say
cases=(
	"sleep_in_atomic|BUG: sleeping function called from invalid context"
	"lock_inversion|possible circular locking dependency"
	"kasan_oob|BUG: KASAN: slab-out-of-bounds"
	"leak|unreferenced object"
	"list_corruption|list_del corruption"
	"rust_overflow|attempt to add with overflow|panicked at"
	"none|"
)
n=0 passed=0 failed=0
echo "TAP version 13"
echo "1..${#cases[@]}"
for c in "${cases[@]}"; do
	fault=${c%%|*}
	want=${c#*|}
	n=$((n + 1))
	run=$("$TR_TOP/scripts/vm.sh" --flavour debug --extra "$TR_TOP/tools/testing/vm/faulty" \
		--append "thin_reserve.fault=$fault" --timeout 600 2>/dev/null | tail -n1)
	report=$("$TR_TOP/scripts/splats.sh" "$run/console.log")
	red=$?
	first=$(head -n1 <<<"$report" | sed 's/^\[ *[0-9.]*\] //')
	if [ "$fault" = none ]; then
		# The control: the same module, no fault, must stay green.
		ok=$([ $red = 0 ] && echo 1)
		first=${first:-clean}
	else
		ok=$([ $red = 1 ] && grep -qE "$want" <<<"$report" && echo 1)
	fi
	if [ -n "$ok" ]; then
		echo "ok $n $fault: $first"
		passed=$((passed + 1))
	else
		echo "not ok $n $fault: wanted /$want/, splats.sh exit $red: ${first:-nothing found} ($run)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed"
[ $failed = 0 ]
