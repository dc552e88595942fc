#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make demo`: build everything, boot the VM on the release kernel and run the
# 2016 RFC's scenario; print the guest's summary, and plot the pool's use
# over time, stock beside ours (out/demo-pool.png).
source "$(dirname "$0")/lib.sh"

"$TR_TOP/scripts/deps.sh" --plots
run=$("$TR_TOP/scripts/vm.sh" --flavour "${FLAVOUR:-release}" --mode demo --timeout 900 | tail -n1)
if [ -s "$run/results/demo.txt" ] && grep -q '^== Summary' "$run/results/demo.txt"; then
	cat "$run/results/demo.txt"
	echo
	/usr/bin/python3 "$TR_TOP/scripts/demo-plot.py" "$run/results/demo-timeline.csv" \
		"$run/demo-pool.png" && cp "$run/demo-pool.png" "$TR_TOP/out/demo-pool.png" &&
		echo "(pool use over time, stock beside ours: out/demo-pool.png)"
	echo "(full console log: $run/console.log)"
else
	tail -n 40 "$run/console.log"
	tr_die "the demo did not finish; console log: $run/console.log"
fi
