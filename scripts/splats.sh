#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Find kernel checker reports in a VM console log.
#
#   scripts/splats.sh console.log
#
# Exit 0 and print nothing when the log is clean; exit 1 and print the first
# report (its first line and the lines that follow it) when it is not.
# Kernel lines carry a printk timestamp; only those are matched, so a test's
# own output (lvm's "WARNING: ..." for instance) cannot trigger it. kmemleak's
# report is read from the debugfs file, which the VM's init prints as is.
set -euo pipefail
log=${1:?console log}

kernel_re='^\[ *[0-9]+\.[0-9]+\] .*(BUG: |WARNING: |Oops|Kernel panic|general protection fault|UBSAN: |list_(add|del) corruption|list_add double add|kernel BUG at|Unable to handle|INFO: task .* blocked for more than|INFO: possible recursive locking|possible circular locking|inconsistent lock state|suspicious RCU usage|rust_kernel: panicked|panicked at |kmemleak: [0-9]+ new suspected memory leaks|XFS: Assertion failed|Internal error|stack-protector|refcount_t: )'
leak_re='^unreferenced object 0x'

line=$(grep -nE "$kernel_re|$leak_re" "$log" | head -n1 | cut -d: -f1) || true
[ -n "$line" ] || exit 0
sed -n "${line},$((line + 25))p" "$log"
exit 1
