#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Host test of the selftests' TR_HARM pattern against the shim's own
# unmount line (its format string in fs/xfs/xfs_thin.rs, numbers filled
# in): a clean unmount must not match, one with provision failures or
# allowance overdraws must. Exits non-zero on any difference.
top=$(cd "$(dirname "$0")/../../.." && pwd)
harm=$(sed -n "s/^TR_HARM='\(.*\)'\$/\1/p" "$top/tools/testing/selftests/thin_reservation/lib.sh")
fmt=$(grep -o '"{}:{}: released;[^"]*' "$top/fs/xfs/xfs_thin.rs" | sed 's/^"//; s/\\n$//')
[ -n "$harm" ] && [ -n "$fmt" ] || {
	echo "harm-pattern-test: TR_HARM or the unmount line not found" >&2
	exit 1
}
# line NUMBERS...: the unmount line with each {} replaced in turn.
line() {
	l=$fmt
	for v in "$@"; do
		l=$(printf '%s' "$l" | sed "s/{}/$v/")
	done
	printf 'xfs_thin: %s\n' "$l"
}
rc=0
expect() {
	want=$1
	shift
	l=$(line "$@")
	if printf '%s\n' "$l" | grep -qE "$harm"; then got=harm; else got=clean; fi
	[ "$got" = "$want" ] && return
	printf 'harm-pattern-test: wanted %s, got %s for: %s\n' "$want" "$got" "$l" >&2
	rc=1
}
# major minor refused provisioned failures held overdraws copies copies_refused
expect clean 253 3 41 16384 0 0 0 0 0
expect clean 253 10 10 100 0 0 0 10 10
expect harm 253 3 0 16384 1 16 0 0 0
expect harm 253 3 0 16384 12 160 0 0 0
expect harm 253 3 0 16384 0 0 2 0 0
expect harm 253 3 0 16384 0 0 10 0 0
exit $rc
