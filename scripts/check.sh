#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make check`: host tests, the kernel and module builds, the VM selftests,
# one verdict. Prints KTAP and ends with "N passed, N failed[, N skipped]";
# exits non-zero if anything failed or nothing ran.
#
#   FLAVOUR=debug|release   kernel to test on (default: debug, the checkers on)
#   TESTS="a.sh b.sh"       run only these VM selftests
source "$(dirname "$0")/lib.sh"
set +e

flavour=${FLAVOUR:-debug}
n=0 passed=0 failed=0 skipped=0
log=$TR_TOP/out/check-$flavour.log
mkdir -p "$TR_TOP/out"
: >"$log"

# Run a step quietly (output to the log); on failure show its tail.
step() { # step DESCRIPTION COMMAND...
	local desc=$1
	shift
	echo "=== $desc: $*" >>"$log"
	if "$@" >>"$log" 2>&1; then
		tr_result ok "$desc"
	else
		tr_result fail "$desc" "see $log"
		tail -n 20 "$log" | sed 's/^/#   /'
		return 1
	fi
}

# fd 3: our stdout, for progress lines from inside command substitutions.
exec 3>&1
echo "TAP version 13"
echo "# thin-reserve check on the $flavour kernel; step output in $log"

step "host: build dependencies present" "$TR_TOP/scripts/deps.sh" || {
	echo "1..$n"
	echo "$passed passed, $failed failed"
	exit 1
}

mapfile -t rust_files < <(cd "$TR_TOP" && git ls-files -co --exclude-standard '*.rs' |
	grep -v '/target/')
step "host: rustfmt --check (kernel .rustfmt.toml)" \
	"$TR_RUSTFMT" --check --config-path "$TR_TOP/.rustfmt.toml" \
	"${rust_files[@]/#/$TR_TOP/}"

step "host: the power-cut manifest lists each live file once" \
	sh "$TR_TOP/tools/testing/vm/manifest-live-test.sh"

step "host: the kernel-log harm pattern matches the shim's failure counts" \
	sh "$TR_TOP/tools/testing/vm/harm-pattern-test.sh"

host_crate=$TR_TOP/tools/testing/thin_reserve_host
step "host: clippy on the no_std cores" \
	cargo clippy --quiet --manifest-path "$host_crate/Cargo.toml" --all-targets -- -D warnings
cargo_out=$(cargo test --manifest-path "$host_crate/Cargo.toml" 2>&1)
cargo_rc=$?
echo "$cargo_out" >>"$log"
ran=0
while read -r _ name _ status; do
	ran=$((ran + 1))
	case $status in
	ok) tr_result ok "host: cargo test: $name" ;;
	ignored) tr_result skip "host: cargo test: $name" ignored ;;
	*) tr_result fail "host: cargo test: $name" ;;
	esac
done < <(echo "$cargo_out" | grep -E '^test .* \.\.\. (ok|FAILED|ignored)$')
if [ $cargo_rc != 0 ] || [ $ran = 0 ]; then
	tr_result fail "host: cargo test ran and passed" "exit $cargo_rc, $ran tests; see $log"
fi

vm_ok=1
echo "=== kernel" >>"$log"
if tree=$("$TR_TOP/scripts/kernel.sh" "$flavour" 2>>"$log"); then
	tr_result ok "build: $flavour kernel tree (cached by inputs)"
else
	tr_result fail "build: $flavour kernel tree (cached by inputs)" "see $log"
	tail -n 20 "$log" | sed 's/^/#   /'
	vm_ok=0
fi
if [ $vm_ok = 1 ]; then
	# checkpatch's MAINTAINERS question is a heuristic for new files; the
	# series' one new header is covered by DEVICE-MAPPER's dm-*.h pattern.
	# In trace headers, TRACE_EVENT()'s layout (TP_STRUCT__entry( at the
	# end of a line, its arguments indented by a tab) is the kernel's own
	# and draws two layout checks on every event: those two are dropped
	# there, and only there.
	cp_out=$(cd "$tree" && for p in "$TR_TOP"/patches/*.patch; do
		[ -e "$p" ] || continue
		perl scripts/checkpatch.pl --strict --no-tree -q --show-types "$p" 2>&1 |
			awk '/^(ERROR|WARNING|CHECK):/ { if (msg != "") print msg; msg = $0; next }
			msg != "" && / FILE: / {
				if (!(msg ~ /^CHECK:(OPEN_ENDED_LINE|PARENTHESIS_ALIGNMENT):/ &&
				      $0 ~ / FILE: (fs\/xfs\/xfs_trace\.h|include\/trace\/)/))
					print msg
				msg = ""
			}
			END { if (msg != "") print msg }' |
			grep -v 'does MAINTAINERS need updating' | sed "s|^|${p##*/}: |"
	done)
	echo "$cp_out" >>"$log"
	if [ -z "$cp_out" ]; then
		tr_result ok "patches: checkpatch.pl --strict clean"
	else
		tr_result fail "patches: checkpatch.pl --strict clean" "see $log"
		head -n 5 <<<"$cp_out" | sed 's/^/#   /'
	fi
	# CLIPPY=1 runs clippy-driver in place of rustc; any warning (rustc,
	# clippy or objtool) fails. Clean first: objects that are up to date
	# would be skipped and their warnings never printed.
	echo "=== modules" >>"$log"
	"$TR_TOP/scripts/modules.sh" "$flavour" clean >>"$log" 2>&1
	mod_out=$("$TR_TOP/scripts/modules.sh" "$flavour" CLIPPY=1 2>&1)
	mod_rc=$?
	echo "$mod_out" >>"$log"
	if [ $mod_rc = 0 ] && ! grep -q 'warning' <<<"$mod_out"; then
		tr_result ok "build: modules with CLIPPY=1, no warnings"
	else
		tr_result fail "build: modules with CLIPPY=1, no warnings" "see $log"
		grep -m5 -A5 'warning\|error' <<<"$mod_out" | sed 's/^/#   /'
		[ $mod_rc = 0 ] || vm_ok=0
	fi
fi

selftests=$TR_TOP/tools/testing/selftests/thin_reservation
expected=${TESTS:-$(sed -n 's/^TEST_PROGS[ :+]*= *//p' "$selftests/Makefile" | tr '\n' ' ')}
if [ $vm_ok = 1 ]; then
	start=$(date +%s)
	# Progress lines ("# vm: ...") as each test starts and ends; the rest
	# of vm.sh's stderr goes to the log only.
	run=$("$TR_TOP/scripts/vm.sh" --flavour "$flavour" --mode tests --tests "$expected" \
		--timeout "${VM_TIMEOUT:-4200}" \
		2> >(tee -a "$log" | grep --line-buffered '^# vm: ' >&3) | tail -n1)
	echo "# VM run took $(($(date +%s) - start)) s; logs in $run"
fi
ktap=${run:-/nonexistent}/results/ktap.txt
for t in $expected; do
	line=$(grep -E "^(not )?ok [0-9]+ selftests: thin_reservation: $t( |$)" "$ktap" 2>/dev/null)
	took=$(sed -n "s/^# time: $t \([0-9]*\) s .*/\1/p" "$ktap" 2>/dev/null)
	desc="vm: thin_reservation: $t${took:+ ($took s)}"
	case $line in
	"") tr_result fail "$desc" "not run: ${run:+the guest stopped before it finished (see $run/console.log)}${run:-build failed}" ;;
	"not ok"*) tr_result fail "$desc" "${line#*# }" ;;
	*"# SKIP"*) tr_result skip "$desc" "${line#*# SKIP}" ;;
	*) tr_result ok "$desc" ;;
	esac
	# Show the subtests that failed, so the reason is in the CI log.
	sed -n "/^# selftests: thin_reservation: $t\$/,/^\(not \)\?ok [0-9]/p" "$ktap" 2>/dev/null |
		grep -E '^# (not ok|Bail out|# )' | sed 's/^/#   /' | grep -E 'not ok|Bail' || true
done
suite_time=$(sed -n 's/^# time: all \([0-9]*\) s$/\1/p' "$ktap" 2>/dev/null)
[ -z "$suite_time" ] || echo "# VM selftests took $suite_time s of guest time in all"
if [ -n "${run:-}" ]; then
	if grep -q '^thin-reserve-vm: finished' "$run/console.log"; then
		tr_result ok "vm: guest ran to the end and powered off"
	else
		tr_result fail "vm: guest ran to the end and powered off" \
			"it hung or crashed: qemu exit $(cat "$run/qemu.rc"), see $run/console.log"
		tail -n 15 "$run/console.log" | sed 's/^/#   /'
	fi
	if report=$("$TR_TOP/scripts/splats.sh" "$run/console.log"); then
		tr_result ok "vm: no kernel warnings, oopses or checker reports"
	else
		tr_result fail "vm: no kernel warnings, oopses or checker reports" \
			"$(head -n1 <<<"$report" | sed 's/^\[ *[0-9.]*\] //')"
		sed 's/^/#   /' <<<"$report"
	fi
else
	tr_result fail "vm: guest ran" "not run: build failed"
fi

echo "1..$n"
summary="$passed passed, $failed failed"
[ $skipped = 0 ] || summary="$summary, $skipped skipped"
echo "$summary"
[ $failed = 0 ] && [ $passed -gt 0 ]
