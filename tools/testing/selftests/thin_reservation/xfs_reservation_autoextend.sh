#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# lvm's own safety nets keep working with reservations on. Monitoring on
# (dmeventd with its thin-pool plugin), thin_pool_autoextend_threshold=70,
# thin_pool_autoextend_percent=100; a 192 MiB pool of 64 KiB blocks with a
# 1 GiB thin volume (mkfs.xfs maps its 64 MiB log), XFS mounted with
# -o discard:
#  - 80 MiB written with fsync show in the pool's data_percent as they
#    would on stock (reservations are not usage);
#  - the pool's low-water event fires and dmeventd extends the pool;
#  - the filesystem writes 48 MiB more after the extension, without a
#    remount: promises follow the pool's new size;
#  - a writer on the same pool that holds no reservation (dd onto a thin
#    volume without a filesystem) writes into unreserved space as on stock.

. "$(dirname "$0")/lib.sh"

ktap_print_header
tr_require lvcreate lvs dmsetup dmeventd mkfs.xfs dd
ktap_set_plan 9

conf=/etc/lvm/lvm.conf
cp "$conf" /tmp/tr-lvm.conf.orig
restore() {
	cp /tmp/tr-lvm.conf.orig "$conf"
	[ -n "${dmeventd_pid:-}" ] && kill "$dmeventd_pid" 2>/dev/null
}
awk '$1 == "monitoring" { print "\tmonitoring = 1"; next }
     { print }
     $0 == "activation {" { print "\tthin_pool_autoextend_threshold = 70"
                            print "\tthin_pool_autoextend_percent = 100" }' \
	/tmp/tr-lvm.conf.orig >"$conf"
dmeventd
sleep 1
dmeventd_pid=$(pidof dmeventd)
tr_check "dmeventd runs" [ -n "$dmeventd_pid" ]

tr_load_xfs_thin
tr_vg_create || { restore; ktap_exit_fail_msg "cannot create a volume group"; }
tr_xfs_thin_volume 192M 1G thin -c 64K
lvcreate -q -T "$TR_VG/pool" -n raw -V 1G >/dev/null 2>&1 || { restore; ktap_exit_fail_msg "lvcreate raw failed"; }
lvchange --monitor y "$TR_VG/pool" >/tmp/tr-mon.log 2>&1
monitor=$(lvs --noheadings -o seg_monitor "$TR_VG/pool" | tr -d ' ')
[ "$monitor" = monitored ] || while read -r l; do tr_msg "$l"; done </tmp/tr-mon.log
tr_check "lvm monitors the pool ($monitor)" [ "$monitor" = monitored ]
pool_mib() { lvs --noheadings --units m --nosuffix -o lv_size "$TR_VG/pool" | awk '{ printf "%d", $1 }'; }
tr_xfs_mount discard thin "$TR_MNT" || { restore; ktap_exit_fail_msg "mount failed"; }
tr_dmesg_mark

events=$(dmsetup info -c --noheadings -o events "$(tr_dm_name $TR_VG pool)-tpool")
tr_pattern 1 | dd of="$TR_MNT/a" bs=1M count=80 conv=fsync $TR_DD_FULLBLOCK 2>/dev/null
a_rc=$?
pct=$(lvs --noheadings -o data_percent "$TR_VG/pool" | tr -d ' ')
set -- $(tr_pool_data_blocks pool)
lvs_bp=$(echo "$pct" | tr -d .) status_bp=$(($1 * 10000 / $2))
tr_check "80 MiB with fsync written ($a_rc) show in data_percent ($pct%; the pool maps $1 of $2 blocks)" \
	sh -c "[ $a_rc = 0 ] && [ $(($1 * 64)) -ge $((80 * 1024)) ] && [ $((lvs_bp - status_bp)) -le 2 ] && [ $((status_bp - lvs_bp)) -le 2 ]"

size=$(pool_mib) waited=0
while [ "$size" -le 192 ] && [ $waited -lt 120 ]; do
	sleep 2
	waited=$((waited + 2))
	size=$(pool_mib)
done
events_now=$(dmsetup info -c --noheadings -o events "$(tr_dm_name $TR_VG pool)-tpool")
tr_check "the pool's low-water event fired (events $events -> $events_now)" [ "$events_now" -gt "$events" ]
tr_check "dmeventd extended the pool (192 -> $size MiB in ${waited}s)" [ "$size" -gt 192 ]

tr_pattern 2 | dd of="$TR_MNT/b" bs=1M count=48 conv=fsync $TR_DD_FULLBLOCK 2>/tmp/tr-b.err
b_rc=$?
tr_msg "48 MiB more: $(grep -v records /tmp/tr-b.err | tail -n 1), pool $(pool_mib) MiB at $(tr_pool_pct)"
tr_check "after the extension the filesystem writes 48 MiB more without a remount" [ $b_rc = 0 ]

dd if=/dev/zero of="$(tr_thin_dev raw)" bs=1M count=8 oflag=direct 2>/dev/null
raw_rc=$?
tr_check "a writer without a reservation writes 8 MiB onto another thin volume" \
	sh -c "[ $raw_rc = 0 ] && [ $(tr_thin_mapped raw) -ge 128 ]"
umount "$TR_MNT"
tr_xfs_mount "" thin "$TR_MNT" &&
	tr_pattern_intact "$TR_MNT/a" 1 && tr_pattern_intact "$TR_MNT/b" 2
tr_check "both files read back after a remount" [ $? = 0 ]
tr_check "no writeback or I/O error, shutdown or drift in the kernel log" tr_no_harm
umount "$TR_MNT"

tr_vg_destroy
restore
ktap_finished
