#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# THE PROBLEM, NOT THE GOAL: the 2016 RFC's scenario on the stock path (our
# modules not loaded, reservations off) loses acknowledged data. This test
# passes when the failure we exist to fix is observed: the pool goes out of
# data space, writeback fails, and dd is acknowledged more bytes than the pool
# can hold, i.e. it did not get ENOSPC in time. If it ever fails, the stock
# baseline changed and every comparison against it must be looked at again.
#
# To keep VM time short, dm-thin's no_space_timeout is lowered from 60 s to
# 5 s for the run: the pool then errors queued writes sooner. The outcome is
# the same (measured: `--errorwhenfull y` only removes the wait). The
# debug kernel runs it on a 512 MiB pool and stops dd at 768 MiB instead
# of 3 GiB: half again the pool shows the loss as well, in a quarter of
# the time.

. "$(dirname "$0")/lib.sh"

: "${RFC_POOL_SIZE:=$(tr_repeat 1G 512M)}" "${RFC_DD_LIMIT_MIB:=$(tr_repeat 3072 768)}"

ktap_print_header
tr_require lvcreate dmsetup mkfs.xfs dd blkdiscard wipefs
ktap_set_plan 5

tr_unload_our_modules
tr_check "stock path: our modules are not loaded" \
	sh -c "! grep -qE '^(dm_thin_reserve|xfs_thin) ' /proc/modules"

modprobe dm-thin-pool
param=/sys/module/dm_thin_pool/parameters/no_space_timeout
old_timeout=$(cat $param)
echo 5 >$param

tr_rfc_scenario
tr_msg "dd exit $RFC_DD_RC ($RFC_DD_MSG), sync exit $RFC_SYNC_RC"
tr_msg "acknowledged to dd: $(tr_mib "$RFC_ACKED"); pool holds $(tr_mib "$RFC_POOL_BYTES")"
tr_msg "pool data blocks used/total at the end: $RFC_USED/$RFC_TOTAL"
tr_msg "pool modes seen: $RFC_MODES"
tr_msg "kernel log lines with I/O or writeback errors: $RFC_IO_ERRORS"

tr_check "pool reached out_of_data_space (or failed) while dd wrote" [ "$RFC_OUT_OF_SPACE" = 1 ]
tr_check "the pool's data space is exhausted" [ "$RFC_USED" = "$RFC_TOTAL" ]
tr_check "kernel logged writeback or I/O errors" [ "$RFC_IO_ERRORS" -gt 0 ]
tr_check "dd was acknowledged more than the pool holds (no ENOSPC in time)" \
	[ "$RFC_ACKED" -gt "$RFC_POOL_BYTES" ]

tr_vg_destroy
echo "$old_timeout" >$param
ktap_finished
