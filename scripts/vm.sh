#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the test VM once and collect what it produced.
#
#   scripts/vm.sh [--flavour release|debug] [--mode tests|demo|bench|shell]
#                 [--tests "a.sh b.sh"] [--timeout SECONDS]
#                 [--extra DIR --append "ARGS"]
#                 [--scratch FILE] [--power-cut SECONDS]
#
# --extra builds the out-of-tree modules in DIR as well, puts them next to
# ours and runs DIR/run.sh in the guest (mode "extra"); --append adds kernel
# command line arguments. scripts/harness-selftest.sh uses both.
#
# --scratch FILE keeps the scratch disk in FILE across runs (created if
# missing, never removed); --power-cut SECONDS kills QEMU that many seconds
# after the guest marks its workload phase on the console ("thin-reserve-vm:
# phase workload"), as a power cut would: the guest's page cache and the
# requests it had not completed are lost, completed writes are on the disk.
# scripts/stress.sh uses both.
#
# Builds (or reuses) the kernel, the modules and the base initramfs, adds a
# per-run archive with the project's files, makes fresh sparse scratch and
# results disks and runs qemu-system-x86_64 under TCG with a hard timeout.
# Prints the run directory: console.log (the whole serial console, kept),
# results/ (ktap.txt, dmesg.txt, ... as the guest left them) and qemu.rc.
# Interpreting the results is the caller's job (scripts/check.sh).
source "$(dirname "$0")/lib.sh"

flavour=release mode=tests tests="" timeout=2400 extra="" append=""
scratch="" power_cut=""
while (($#)); do
	case $1 in
	--flavour) flavour=$2; shift 2 ;;
	--mode) mode=$2; shift 2 ;;
	--tests) tests=$2; shift 2 ;;
	--timeout) timeout=$2; shift 2 ;;
	--extra) extra=$(cd "$2" && pwd); mode=extra; shift 2 ;;
	--append) append=$2; shift 2 ;;
	--scratch) scratch=$2; shift 2 ;;
	--power-cut) power_cut=$2; shift 2 ;;
	*) tr_die "unknown argument $1" ;;
	esac
done
selftests=$TR_TOP/tools/testing/selftests/thin_reservation
if [ -z "$tests" ]; then
	# TEST_PROGS from the selftest Makefile, in order.
	tests=$(sed -n 's/^TEST_PROGS[ :+]*= *//p' "$selftests/Makefile" | tr '\n' ' ')
fi

tree=$("$TR_TOP/scripts/kernel.sh" "$flavour")
build=$("$TR_TOP/scripts/modules.sh" "$flavour")
base=$("$TR_TOP/scripts/initramfs.sh" "$tree")

run=$TR_TOP/out/$mode-$flavour-$(date +%Y%m%d-%H%M%S)
mkdir -p "$run/results"
ln -sfn "$(basename "$run")" "$TR_TOP/out/latest-$mode"

stage=$run/overlay
opt=$stage/opt/thin-reserve
mkdir -p "$opt/modules" "$opt/selftests/thin_reservation"
install -m 0755 "$TR_TOP/tools/testing/vm/init" "$stage/init"
install -m 0755 "$TR_TOP/tools/testing/vm/run-selftests.sh" \
	"$TR_TOP/tools/testing/vm/publish.sh" "$opt/"
install -m 0755 "$TR_TOP/tools/testing/vm/demo.sh" "$TR_TOP/tools/testing/vm/bench.sh" \
	"$TR_TOP/tools/testing/vm/stress.sh" "$opt/"
install -m 0644 "$TR_TOP/tools/testing/vm/manifest-live.awk" "$opt/"
find "$build" -name '*.ko' -exec install -m 0644 {} "$opt/modules/" \;
if [ -n "$extra" ]; then
	xbuild=$("$TR_TOP/scripts/modules.sh" "$flavour" --src "$extra")
	find "$xbuild" -name '*.ko' -exec install -m 0644 {} "$opt/modules/" \;
	install -m 0755 "$extra/run.sh" "$opt/extra-run.sh"
fi
cp -a "$selftests/." "$opt/selftests/thin_reservation/"
echo "$tests" >"$opt/tests"
(cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$run/overlay.cpio.gz"
cat "$base" "$run/overlay.cpio.gz" >"$run/initramfs.cpio.gz"
rm -rf "$stage" "$run/overlay.cpio.gz"

# Fresh sparse disks every run: the scratch disk for lvm (TR_SCRATCH_SIZE,
# default 4G; the benchmark asks for more) unless --scratch names one to
# keep, and the results disk the guest writes a tar archive onto.
if [ -z "$scratch" ]; then
	scratch=$run/scratch.img
	truncate -s "${TR_SCRATCH_SIZE:-4G}" "$scratch"
	keep_scratch=
else
	[ -e "$scratch" ] || truncate -s "${TR_SCRATCH_SIZE:-4G}" "$scratch"
	keep_scratch=y
fi
truncate -s 64M "$run/results.img"

console=(-serial "file:$run/console.log")
stdin=/dev/null
if [ "$mode" = shell ]; then
	# Interactive: the console on this terminal, no time limit worth having.
	console=(-serial mon:stdio)
	stdin=/dev/stdin
	timeout=86400
fi
tr_log "booting $flavour kernel, mode $mode, timeout ${timeout}s; console: $run/console.log"
start=$(date +%s)
set +e
# Progress: the guest marks each phase on the console as it starts and ends
# ("thin-reserve-vm: start NAME ..." / "end NAME ... time=Ns"); echo those
# to stderr as "# vm: ..." lines while the VM runs, with the host's clock.
progress=
if [ "$mode" != shell ]; then
	: >"$run/console.log"
	(tail -n +1 -F "$run/console.log" 2>/dev/null |
		sed -un 's/^.*thin-reserve-vm: \(start\|end\|phase\) /\1 /p' |
		while IFS= read -r line; do
			printf '# vm: +%ss %s\n' "$(($(date +%s) - start))" "$line" >&2
		done) &
	progress=$!
fi
# --foreground: QEMU stays in our process group, so killing us kills it too.
qemu() {
	timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
		-accel tcg -m 2G -smp 2,sockets=2,cores=1,threads=1 \
		-display none -no-reboot -monitor none \
		"${console[@]}" \
		-kernel "$tree/arch/x86/boot/bzImage" -initrd "$run/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 oops=panic tsc=reliable thin_reserve.mode=$mode thin_reserve.flavour=$flavour $append" \
		-drive "file=$scratch,if=none,id=scratch,format=raw,discard=unmap,cache=unsafe" \
		-device virtio-blk-pci,drive=scratch,serial=tr-scratch \
		-drive "file=$run/results.img,if=none,id=results,format=raw" \
		-device virtio-blk-pci,drive=results,serial=tr-results \
		<"$stdin"
}
if [ -z "$power_cut" ]; then
	qemu
	echo $? >"$run/qemu.rc"
else
	qemu &
	vm=$!
	# The cut: SIGKILL to this run's QEMU (named by its initramfs) once the
	# workload has run for the given time.
	(until grep -q 'thin-reserve-vm: phase workload' "$run/console.log" 2>/dev/null; do
		kill -0 "$vm" 2>/dev/null || exit 0
		sleep 0.2
	done
	sleep "$power_cut"
	echo "power cut after ${power_cut}s of workload" >"$run/power-cut"
	pkill -KILL -f -- "-initrd $run/initramfs.cpio.gz") &
	cutter=$!
	wait "$vm"
	echo $? >"$run/qemu.rc"
	kill "$cutter" 2>/dev/null
	wait "$cutter" 2>/dev/null
fi
if [ -n "$progress" ]; then
	sleep 1
	pkill -P "$progress" 2>/dev/null
	kill "$progress" 2>/dev/null
	wait "$progress" 2>/dev/null
fi
set -e
tr_log "VM exited with $(cat "$run/qemu.rc") after $(($(date +%s) - start)) s"

tar -xf "$run/results.img" -C "$run/results" 2>/dev/null ||
	tr_log "no results archive on the results disk"
[ -n "$keep_scratch" ] || rm -f "$scratch"
rm -f "$run/results.img" "$run/initramfs.cpio.gz"
echo "$run"
