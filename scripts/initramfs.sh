#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The test VM's base initramfs: busybox, Debian's lvm2 and dmeventd (with its
# thin-pool plugin), thin-provisioning-tools, xfsprogs, util-linux and fio
# with their libraries, an lvm.conf for a guest
# without udev, the kernel's modules and the kselftest KTAP helpers.
#
#   scripts/initramfs.sh KERNEL_TREE      prints the path of the base archive
#
# Cached by the kernel tree, the package versions and this script's text. The
# project's own files (modules, tests, /init) go in a small second archive that
# scripts/vm.sh makes for every run; the kernel unpacks both in order.
source "$(dirname "$0")/lib.sh"

tree=${1:?kernel tree}
PKGS=(busybox-static lvm2 dmsetup dmeventd thin-provisioning-tools xfsprogs util-linux fio libc6)
BINS=(lvm dmsetup pdata_tools mkfs.xfs xfs_db xfs_repair xfs_io xfs_growfs
	fstrim blkdiscard wipefs fio dmeventd setpriv)
# dmeventd's thin-pool plugin (lvm's autoextend), loaded by name from here.
PLUGINS=(/lib/x86_64-linux-gnu/libdevmapper-event-lvm2thin.so
	/lib/x86_64-linux-gnu/device-mapper/libdevmapper-event-lvm2thin.so)
LVM_CMDS=(pvcreate pvremove pvs vgcreate vgremove vgchange vgs lvcreate lvremove
	lvextend lvchange lvs lvdisplay)
PDATA_CMDS=(thin_check thin_dump thin_ls thin_repair thin_restore thin_delta
	thin_metadata_size)

# The key covers the tree's installed modules themselves, not only its
# path: a tree given as KDIR is rebuilt in place, and a stale dm-thin-pool
# or xfs module would run against fresh bindings without a word.
key=$( {
	echo "$tree"
	cat "$tree/.thin-reserve-built" 2>/dev/null || true
	find "$tree/_modinst" -type f -printf '%P %s %T@\n' 2>/dev/null | sort
	for p in "${PKGS[@]}"; do echo "$p $(tr_pkg_version "$p")"; done
	cat "$0"
} | tr_sha)
out=$TR_CACHE/initramfs/base-$key.cpio.gz
if [ -f "$out" ]; then
	echo "$out"
	exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc/lvm,proc,sys,dev,run,tmp,mnt}
mkdir -p "$stage/opt/thin-reserve/selftests/kselftest"

copy_with_libs() {
	local path=$1 real
	real=$(readlink -f "$path")
	install -D -m 0755 "$real" "$stage$path"
	ldd "$real" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		[ -e "$stage$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$stage$lib"
	done
}

cp /bin/busybox "$stage/bin/busybox"
ln -s busybox "$stage/bin/sh"
for b in "${BINS[@]}"; do
	path=$(PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$b") ||
		tr_die "$b not found (run scripts/deps.sh)"
	copy_with_libs "$path"
done
for p in "${PLUGINS[@]}"; do
	[ -e "$p" ] || tr_die "$p not found (run scripts/deps.sh)"
	copy_with_libs "$p"
done
lvm=$(PATH=/usr/sbin:/sbin command -v lvm)
for c in "${LVM_CMDS[@]}"; do ln -sf "$lvm" "$stage/usr/sbin/$c"; done
pdata=$(PATH=/usr/sbin:/sbin command -v pdata_tools)
for c in "${PDATA_CMDS[@]}"; do ln -sf "$pdata" "$stage/usr/sbin/$c"; done

cat >"$stage/etc/lvm/lvm.conf" <<'CONF'
# No udev, no daemons, no device files, no metadata backups in the VM.
devices {
	dir = "/dev"
	scan = [ "/dev" ]
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
	multipath_component_detection = 0
	md_component_detection = 0
	fw_raid_component_detection = 0
	sysfs_scan = 1
}
global {
	use_lvmpolld = 0
	thin_check_executable = "/usr/sbin/thin_check"
	locking_dir = "/run/lock/lvm"
}
activation {
	udev_sync = 0
	udev_rules = 0
	verify_udev_operations = 1
	monitoring = 0
}
backup {
	backup = 0
	archive = 0
}
CONF
printf "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n" >"$stage/etc/passwd"
printf "root:x:0:\nnogroup:x:65534:\n" >"$stage/etc/group"

cp -a "$tree/_modinst/lib" "$stage/"
rm -f "$stage"/lib/modules/*/build "$stage"/lib/modules/*/source
cp "$tree/tools/testing/selftests/kselftest/ktap_helpers.sh" \
	"$stage/opt/thin-reserve/selftests/kselftest/"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out.tmp"
mv "$out.tmp" "$out"
ls -1t "$TR_CACHE"/initramfs/base-*.cpio.gz | tail -n +5 | xargs -r rm -f
echo "$out"
