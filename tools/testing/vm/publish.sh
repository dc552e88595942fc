#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Hand everything in /results (plus the kernel log) to the host: a tar archive
# written straight onto the results disk. Called after every test, so a guest
# that dies later still reports what it finished.
dmesg >/results/dmesg.txt
[ -n "$RESULTS_DEV" ] || exit 0
tar -cf "$RESULTS_DEV" -C /results . && sync
