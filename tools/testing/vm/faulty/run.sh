#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# In the VM: commit the fault named on the kernel command line
# (thin_reserve.fault=NAME), then give kmemleak time to age the object
# (it reports nothing younger than 5 s) before the init's final scan.
fault=$(sed -n 's/.*thin_reserve.fault=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "faulty: committing $fault"
case $fault in
rust_overflow) insmod /opt/thin-reserve/modules/faulty_rust_overflow.ko ;;
*) insmod /opt/thin-reserve/modules/faulty.ko fault="$fault" ;;
esac
echo "faulty: insmod returned $?"
sleep 8
