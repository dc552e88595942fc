#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# One boot of a power-cut trial (scripts/stress.sh) in the test VM. The
# scratch disk is kept from boot to boot; the kernel command line says
# which half of the trial this is:
#
#   thin_reserve.phase=load   activate (the first time: create) a 192 MiB
#       pool of 64 KiB blocks with a 1 GiB thin volume and XFS, mount it
#       with -o discard and reservations on, mark "phase workload" on the
#       console and run the trial's workload until the host cuts the power:
#         scenario 0  two writers fill the pool to ENOSPC, delete the
#                     oldest files and trim, and go on;
#         scenario 1  a writer, and a deleter that removes a random file
#                     and trims every second;
#         scenario 2  a snapshot of the mounted volume, an overwriter that
#                     rewrites every file in place, and a writer.
#   thin_reserve.phase=check  after the cut: KTAP checks that nothing the
#       workload was told is on disk was lost and that reservations work
#       again, then room for the next trial. Before it fills the pool it
#       marks "phase workload" again: a trial may cut the power there too,
#       and the next boot checks once more.
#
# Every file is written with fsync (dd conv=fsync). Only then does its
# record ("add NAME PATTERN BYTES") go to the manifest, appended with
# fsync; before a file is deleted or rewritten, "del NAME" goes there
# first. After the cut, every file the manifest holds must read back as
# its pattern. The load phase also fallocates a range and records it
# ("falloc NAME BYTES"); the check writes it on a full pool.

. /opt/thin-reserve/selftests/thin_reservation/lib.sh

arg() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }
phase=$(arg thin_reserve.phase)
seed=$(arg thin_reserve.seed)
trial=$(arg thin_reserve.trial)
scenario=$(arg thin_reserve.scenario)
: "${seed:=1}" "${trial:=1}" "${scenario:=0}"
MANIFEST=$TR_MNT/manifest

# rnd N KEY: a number in [0, N), determined by the trial's seed and KEY.
rnd() { h=$(echo "$seed $2" | md5sum | cut -c1-7) && echo $((0x$h % $1)); }

record() { echo "$*" | dd of="$MANIFEST" oflag=append conv=notrunc,fsync 2>/dev/null; }

# The manifest's live files, one "add" record each, oldest first.
live() { awk -f /opt/thin-reserve/manifest-live.awk "$MANIFEST" 2>/dev/null; }

# write_file NAME PATTERN MIB: writes it with fsync; records it if that
# succeeded.
write_file() {
	tr_pattern "$2" | dd of="$TR_MNT/$1" bs=1M count="$3" conv=fsync \
		$TR_DD_FULLBLOCK 2>/dev/null || return 1
	record "add $1 $2 $(($3 * 1048576))"
}

forget() { record "del $1" && rm -f "$TR_MNT/$1"; }

delete_oldest() {
	live | head -n "$1" | while read -r _ name _; do forget "$name"; done
	fstrim "$TR_MNT" 2>/dev/null
}

fill_writer() {
	k=0
	while :; do
		k=$((k + 1))
		name=w$1.$trial.$k
		if ! write_file "$name" "$name" $((1 + $(rnd 4 "$name"))); then
			rm -f "$TR_MNT/$name"
			delete_oldest 3
		fi
	done
}

deleter() {
	i=0
	while :; do
		sleep 1
		i=$((i + 1))
		n=$(live | wc -l)
		[ "$n" -gt 2 ] || continue
		name=$(live | sed -n "$((1 + $(rnd "$n" "deleter $i")))p" | awk '{ print $2 }')
		forget "$name"
		fstrim "$TR_MNT" 2>/dev/null
	done
}

overwriter() {
	while :; do
		live | while read -r _ name _ bytes; do
			record "del $name" || continue
			pat=$name.o$trial.$(rnd 1000 "$name $(date +%s)")
			tr_pattern "$pat" | dd of="$TR_MNT/$name" bs=1M count=$((bytes / 1048576)) \
				conv=notrunc,fsync $TR_DD_FULLBLOCK 2>/dev/null &&
				record "add $name $pat $bytes"
		done
		sleep 1
	done
}

load() {
	tr_load_xfs_thin
	if ! vgs "$TR_VG" >/dev/null 2>&1; then
		tr_vg_create || ktap_exit_fail_msg "cannot create a volume group"
		tr_xfs_thin_volume 192M 1G thin -c 64K
	fi
	vgchange -q -ay "$TR_VG" >/dev/null 2>&1
	tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount failed"
	[ -e "$MANIFEST" ] || { : >"$MANIFEST" && sync -f "$TR_MNT"; }
	# Appends to the manifest must not need new blocks on a full pool.
	xfs_io -c "falloc -k $(stat -c %s "$MANIFEST") 1m" "$MANIFEST"
	pre=pre.$trial
	xfs_io -f -c "falloc 0 4m" -c fsync "$TR_MNT/$pre" 2>/dev/null &&
		record "falloc $pre 4194304"
	echo "thin-reserve-vm: phase workload trial $trial scenario $scenario seed $seed" >/dev/kmsg
	case $scenario in
	0) fill_writer 1 & fill_writer 2 ;;
	1) fill_writer 1 & deleter ;;
	*)
		# Marked before the snapshot exists: the check allows for
		# what a snapshot leaves behind (see there).
		if [ ! -e "$TR_MNT/.snapshotted" ]; then
			: >"$TR_MNT/.snapshotted" && sync -f "$TR_MNT"
		fi
		lvs "$TR_VG/snap" >/dev/null 2>&1 || lvcreate -q -s "$TR_VG/thin" -n snap >/dev/null 2>&1
		fill_writer 1 & overwriter ;;
	esac
	wait
}

check() {
	ktap_print_header
	ktap_set_plan 14
	tr_require lvchange vgchange thin_check xfs_repair xfs_io
	tr_load_xfs_thin
	tr_dmesg_mark

	lvchange -q -ay -y "$TR_VG/pool_tmeta" >/tmp/st-lvm.log 2>&1
	thin_check "/dev/$TR_VG/pool_tmeta" >/tmp/st-tc.log 2>&1
	tc=$?
	lvchange -q -an "$TR_VG/pool_tmeta" >/dev/null 2>&1
	[ $tc = 0 ] || cat /tmp/st-lvm.log /tmp/st-tc.log | while read -r l; do tr_msg "$l"; done
	tr_check "thin_check of the pool's metadata after the cut is clean" [ $tc = 0 ]
	vgchange -q -ay "$TR_VG" >/tmp/st-lvm.log 2>&1
	tr_check "the volume group activates" [ $? = 0 ]
	tr_check "the pool starts with nothing reserved ($(tr_pool_reserved pool))" \
		[ "$(tr_pool_reserved pool)" = 0 ]
	how="with reservations on"
	if ! tr_xfs_mount discard thin "$TR_MNT" 2>/tmp/st-mount.err; then
		# A snapshot shares the log, whose next pass needs new pool
		# blocks: on a full pool the mount is refused (ENOSPC) rather
		# than shut down in log recovery. Deleting the snapshot is the
		# way out.
		tr_msg "mount refused: $(dmesg | grep -i 'xfs\|thin' | tail -n 1)"
		lvs "$TR_VG/snap" >/dev/null 2>&1 || ktap_exit_fail_msg "mount after the cut failed"
		lvremove -q -f "$TR_VG/snap" >/dev/null 2>&1
		tr_xfs_mount discard thin "$TR_MNT" || ktap_exit_fail_msg "mount after the cut failed"
		how="once the snapshot that shared its log on the full pool was deleted"
	fi
	ktap_test_pass "XFS mounts after the cut (log recovery) $how"
	pool_res=$(tr_pool_reserved pool) thin_res=$(tr_thin_reserved thin)
	tr_check "the pool holds the filesystem's reservation again ($pool_res blocks, thin $thin_res sectors)" \
		sh -c "[ '$thin_res' -gt 0 ] && [ $((pool_res * TR_BLOCK)) -ge '$thin_res' ]"

	files=0 bad=0 bytes_ok=0
	live >/tmp/st-live
	while read -r _ name pat bytes; do
		files=$((files + 1))
		if [ "$(stat -c %s "$TR_MNT/$name" 2>/dev/null)" = "$bytes" ] &&
			tr_pattern_intact "$TR_MNT/$name" "$pat"; then
			bytes_ok=$((bytes_ok + bytes))
		else
			bad=$((bad + 1))
			tr_msg "lost: $name ($bytes bytes of $pat): $(stat -c %s "$TR_MNT/$name" 2>&1) bytes, holding"
			uniq -c "$TR_MNT/$name" 2>&1 | cut -c1-60 | head -n 4 | while read -r l; do tr_msg "  $l"; done
			xfs_io -r -c "bmap -v" "$TR_MNT/$name" 2>&1 | head -n 6 | while read -r l; do tr_msg "  $l"; done
		fi
	done </tmp/st-live
	tr_check "all $files files fsync'd before the cut read back ($(tr_mib $bytes_ok), $bad lost)" [ $bad = 0 ]

	# Room for what follows and for the next trial: the snapshot goes,
	# files the manifest does not hold go, live files beyond 48 MiB go.
	lvremove -q -f "$TR_VG/snap" >/dev/null 2>&1
	falloc_record=$(awk '$1 == "falloc" && NF == 3' "$MANIFEST" | tail -n 1)
	falloc=$(echo "$falloc_record" | awk '{ print $2 }')
	for f in "$TR_MNT"/*; do
		n=${f##*/}
		[ "$n" = manifest ] || [ "$n" = "$falloc" ] || grep -q "^add $n " /tmp/st-live || rm -f "$f"
	done
	# The shorter manifest is on disk before its dropped files go, so
	# that a cut in between (this check may be cut too) never leaves a
	# manifest that lists a deleted file.
	total=0
	: >/tmp/st-drop
	while read -r _ name pat bytes; do
		total=$((total + bytes))
		if [ $total -gt $((48 * 1048576)) ]; then echo "$name" >>/tmp/st-drop; else echo "add $name $pat $bytes"; fi
	done </tmp/st-live >/tmp/st-manifest
	# The fallocated range stays recorded: a cut check leaves it to the
	# next one.
	[ -n "$falloc_record" ] && echo "$falloc_record" >>/tmp/st-manifest
	dd if=/tmp/st-manifest of="$MANIFEST.new" conv=fsync 2>/dev/null &&
		mv "$MANIFEST.new" "$MANIFEST" && sync -f "$TR_MNT" ||
		ktap_exit_fail_msg "cannot write the shorter manifest"
	while read -r name; do rm -f "$TR_MNT/$name"; done </tmp/st-drop
	sync -f "$TR_MNT"
	tr_fstrim "$TR_MNT"

	xfs_io -f -c "falloc 0 8m" "$TR_MNT/prealloc" 2>/dev/null
	tr_check "fallocate of 8 MiB after the cut succeeds" [ $? = 0 ]
	tr_watch_pool
	# A trial may cut the power here too (scripts/stress.sh): the next
	# boot checks again, over what this fill left.
	echo "thin-reserve-vm: phase workload check fill trial $trial" >/dev/kmsg
	tr_pattern filler | dd of="$TR_MNT/filler" bs=1M count=512 $TR_DD_FULLBLOCK 2>/tmp/st-fill.err
	fill_msg=$(grep -v records /tmp/st-fill.err | tail -n 1)
	sync -f "$TR_MNT"
	tr_check "a filler gets ENOSPC with the pool at $(tr_pool_pct)" tr_is_enospc "$fill_msg"
	tr_pattern prealloc | dd of="$TR_MNT/prealloc" bs=1M count=8 conv=notrunc,fsync $TR_DD_FULLBLOCK \
		2>/dev/null
	tr_check "the range fallocated after the cut is written on the full pool (fsync succeeded)" [ $? = 0 ]
	if [ -n "$falloc" ] && [ -e "$TR_MNT/$falloc" ]; then
		tr_pattern "$falloc" | dd of="$TR_MNT/$falloc" bs=1M count=4 conv=notrunc,fsync \
			$TR_DD_FULLBLOCK 2>/tmp/st-pre.err
		pre_rc=$? pre_msg=$(grep -v records /tmp/st-pre.err | tail -n 1)
		case $pre_rc:$pre_msg in
		0:*) outcome=written ;;
		*"No space"*) outcome="ENOSPC at write time" ;;
		*) outcome="failed (dd $pre_rc)" ;;
		esac
		tr_msg "falloc-before-cut: $outcome${pre_msg:+ ($pre_msg)}"
		# The mount provisioned it again (its earmarks ended with the
		# cut): writing it on the full pool must succeed.
		tr_check "the range fallocated before the cut is written on the full pool (fsync succeeded)" \
			[ $pre_rc = 0 ]
	else
		ktap_test_skip "no range was fallocated before the cut"
	fi
	rm -f "$TR_MNT/filler" "$TR_MNT/prealloc"
	[ -n "$falloc" ] && rm -f "$TR_MNT/$falloc"
	sync -f "$TR_MNT"
	tr_fstrim "$TR_MNT"
	tr_unwatch_pool
	tr_check "the pool never left rw" [ $? = 0 ]
	tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
	snapshotted=
	[ -e "$TR_MNT/.snapshotted" ] && snapshotted=y
	umount "$TR_MNT"
	xfs_repair -n "/dev/$TR_VG/thin" >/tmp/st-repair.log 2>&1
	rc=$?
	[ $rc = 0 ] || tail -n 5 /tmp/st-repair.log | while read -r l; do tr_msg "$l"; done
	tr_check "xfs_repair -n is clean" [ $rc = 0 ]
	fl=$(tr_free_list_blocks "/dev/$TR_VG/thin")
	limit=$fl what="the free lists' earmarks"
	if [ -n "$snapshotted" ]; then
		# Once a snapshot has shared the volume, dm-thin copies each
		# old block at its next write, deleted snapshot or not (its
		# test of sharing is the mapping's age): the pinned log keeps
		# earmarks for the copies its next pass makes.
		set -- $(xfs_db -r -c "sb 0" -c "print logblocks" -c "print blocksize" \
			"/dev/$TR_VG/thin" | awk '{ print $3 }')
		log_blocks=$(((${1:-0} * ${2:-0} / 512 + TR_BLOCK - 1) / TR_BLOCK + 1))
		limit=$((fl + log_blocks)) what="the free lists' and the log's copies' earmarks"
	fi
	tr_check "unmounted, the pool holds no more than $what ($(tr_pool_reserved pool) <= $limit)" \
		[ "$(tr_pool_reserved pool)" -le "$limit" ]
	ktap_finished
}

case $phase in
load) load ;;
check) check ;;
*) echo "stress.sh: unknown phase '$phase'" ;;
esac
