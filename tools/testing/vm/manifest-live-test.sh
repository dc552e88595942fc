#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Host test of manifest-live.awk: overwritten files are listed once, in the
# place of their first add, with their last pattern; deleted files and torn
# records are not listed. Exits non-zero on any difference.
dir=$(dirname "$0")
got=$(printf '%s\n' \
	"add a a 1048576" \
	"add b b 2097152" \
	"del a" \
	"add a a.o1.7 1048576" \
	"add c c 1048576" \
	"del b" \
	"del a" \
	"add a a.o1.9 1048576" \
	"add b b.o2.3 2097152" \
	"add d d 1048576" \
	"del d" \
	"add e e 10" \
	"add f f" |
	awk -f "$dir/manifest-live.awk")
want=$(printf '%s\n' \
	"add a a.o1.9 1048576" \
	"add b b.o2.3 2097152" \
	"add c c 1048576" \
	"add e e 10")
[ "$got" = "$want" ] && exit 0
printf 'manifest-live.awk: wanted\n%s\ngot\n%s\n' "$want" "$got" >&2
exit 1
