#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The project's modules load, say which version runs, carry their metadata
# and unload cleanly. Later tests rely on this; a module that cannot be
# unloaded would also make every rebuild-and-rerun cycle need a reboot.

. "$(dirname "$0")/lib.sh"

MODULES="dm_thin_reserve xfs_thin"

ktap_print_header
tr_require insmod rmmod modinfo
# dm_thin_reserve registers with dm-thin: load it first, as modprobe would.
modprobe dm-thin-pool || ktap_exit_fail_msg "cannot load dm-thin-pool"
# xfs_thin registers with XFS: load XFS first, as modprobe would.
modprobe xfs || ktap_exit_fail_msg "cannot load xfs"
ktap_set_plan 8

for mod in $MODULES; do
	ko=$THIN_RESERVE_MODDIR/$mod.ko
	if tr_module_loaded "$mod"; then
		rmmod "$mod" || ktap_exit_fail_msg "$mod was loaded and will not unload"
	fi

	tr_check "$mod: modinfo says GPL with a description" \
		sh -c "modinfo '$ko' | grep -q '^license:.*GPL' &&
		       modinfo '$ko' | grep -q '^description:..*'"

	tr_dmesg_mark
	insmod "$ko"
	rc=$?
	tr_check "$mod: insmod succeeds" [ $rc = 0 ]
	tr_check "$mod: logs its version at load" \
		sh -c "dmesg | sed -n '/$TR_MARK/,\$p' | grep -qE '^(\[[ 0-9.]+\] )?$mod: .* [0-9]+\.[0-9]+\.[0-9]+ loaded'"
	rmmod "$mod"
	rc=$?
	tr_check "$mod: rmmod succeeds and the module is gone" \
		sh -c "[ $rc = 0 ] && ! grep -q '^$mod ' /proc/modules"
done

ktap_finished
