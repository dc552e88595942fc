#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Bad input gets a clean error and loses nothing. Random calls through
# bdev_reserve_client (seeded; the seed is printed, FUZZ_SEED repeats a
# run): set, get, granularity, provision, overwrite and pin with zero,
# partial-block, past-the-end and u64-overflowing sizes and offsets, on a
# thin device, on the pool device and on a disk; malformed and random pool
# messages; the same calls while XFS is mounted on the thin (EBUSY for
# everything that changes something). Every call must succeed or fail
# with an errno, the pool must stay rw, reservations must return to zero,
# and a file written before reads back. The harness fails the run on any
# kernel report.

. "$(dirname "$0")/lib.sh"

: "${FUZZ_SEED:=$(date +%s)}" "${FUZZ_CALLS:=$(tr_repeat 600 200)}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs awk blkdiscard wipefs
ktap_set_plan 6

tr_load_xfs_thin
tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
tr_xfs_thin_volume 128M 1G thin
T=$(tr_thin_dev thin)
P=/dev/mapper/$(tr_dm_name "$TR_VG" pool)-tpool
tr_msg "seed $FUZZ_SEED, $FUZZ_CALLS calls"
tr_dmesg_mark

# One random call a line: OP DEV [A [B]].
calls() {
	awk -v seed="$1" -v n="$2" -v t="$T" -v p="$P" 'BEGIN {
		srand(seed)
		split("set get granularity provision overwrite pin", ops, " ")
		split("0 1 127 128 129 4096 131072 262144 2097151 2097152 4294967295 4294967296 9223372036854775807 18446744073709551488 18446744073709551615", v, " ")
		for (i = 0; i < n; i++) {
			op = ops[int(rand() * 6) + 1]
			r = rand()
			dev = r < 0.8 ? t : (r < 0.9 ? p : "/dev/vda")
			a = rand() < 0.7 ? v[int(rand() * 15) + 1] : int(rand() * 2097152)
			b = rand() < 0.7 ? v[int(rand() * 15) + 1] : int(rand() * 262144)
			if (op == "get" || op == "granularity")
				print op, dev
			else if (op == "set")
				print op, dev, a
			else
				print op, dev, a, b
		}
	}'
}

# Runs the calls; counts those whose outcome is neither a value nor an
# errno the interface documents.
fuzz() {
	bad=0
	calls "$1" "$2" >/tmp/tr-fuzz.calls
	while read -r line; do
		out=$(tr_client $line)
		case $out in
		"" | *[!0-9]*)
			case $out in
			"error: No space left on device" | "error: Invalid argument" | \
				"error: Value too large for defined data type" | \
				"error: Operation not supported" | "error: Device or resource busy" | \
				"error: Argument list too long") ;;
			*)
				bad=$((bad + 1))
				[ $bad -le 3 ] && tr_msg "unexpected: $line -> $out"
				;;
			esac
			;;
		esac
	done </tmp/tr-fuzz.calls
	return $bad
}

fuzz "$FUZZ_SEED" "$FUZZ_CALLS"
tr_check "unmounted: every call succeeded or failed with a documented errno" [ $? = 0 ]

# Malformed and random pool messages: each is refused or done, none hurts.
pool=$(tr_dm_name "$TR_VG" pool)-tpool
for m in "create_snap" "create_snap 1" "create_snap x y" "create_snap 99 1" \
	"create_snap 1 1" "delete" "delete 999" "delete -1" "set_transaction_id 0" \
	"reserve_metadata_snap extra" "release_metadata_snap" "create_thin 18446744073709551615" \
	"delete 99" \
	"$(awk -v s="$FUZZ_SEED" 'BEGIN { srand(s); for (i = 0; i < 40; i++) printf "%c", 33 + int(rand() * 90) }')"; do
	# shellcheck disable=SC2086 # the words of a message
	dmsetup message "$pool" 0 $m >/dev/null 2>&1
done
tr_check "after malformed pool messages the pool is still rw" \
	sh -c "dmsetup status $pool | grep -q ' rw '"

# What the calls earmarked ends with a discard; a fresh filesystem follows.
tr_client set "$T" 0 >/dev/null
blkdiscard "$T" && mkfs.xfs -q -f "$T" || ktap_exit_fail_msg "mkfs.xfs after the calls failed"
tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
tr_pattern 1 | dd of="$TR_MNT/file" bs=64k count=256 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null
held=$(tr_thin_reserved thin)
fuzz $((FUZZ_SEED + 1)) $((FUZZ_CALLS / 2))
tr_check "mounted: every call succeeded or failed with a documented errno" [ $? = 0 ]
tr_check "mounted: nobody else changed the filesystem's reservation ($held -> $(tr_thin_reserved thin))" \
	[ "$(tr_thin_reserved thin)" = "$held" ]
umount "$TR_MNT"
tr_xfs_mount "" thin "$TR_MNT" || ktap_exit_fail_msg "remount failed"
tr_pattern_intact "$TR_MNT/file" 1 && tr_no_harm
tr_check "the file written before reads back, nothing logged" [ $? = 0 ]
umount "$TR_MNT"
tr_client set "$T" 0 >/dev/null
tr_check "with the filesystem and the client done, nothing is reserved" \
	[ "$(tr_pool_reserved pool)" = 0 ]

tr_vg_destroy
ktap_finished
