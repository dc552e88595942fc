# SPDX-License-Identifier: GPL-2.0
#
# The live files of a power-cut trial's manifest (tools/testing/vm/stress.sh):
# one line "add NAME PATTERN BYTES" per file, the file's last record, in the
# order the files were first added. "del NAME" ends a file; a later "add"
# of the same name (an overwrite) brings it back with its new pattern, in
# its first place, listed once: the check prunes the list by running total
# and must never see one file twice. Torn records (a cut mid-append) have
# the wrong field count and are ignored.
$1 == "add" && NF == 4 {
	if (!($2 in seen)) {
		seen[$2] = 1
		order[++n] = $2
	}
	live[$2] = $0
}
$1 == "del" && NF == 2 { delete live[$2] }
END { for (i = 1; i <= n; i++) if (order[i] in live) print live[order[i]] }
