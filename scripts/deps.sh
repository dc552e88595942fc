#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what building and testing need, skipping what is present.
# Debian packages (apt) and bindgen-cli (crates.io); nothing else.
# --plots: also what make demo and make bench plot with.
source "$(dirname "$0")/lib.sh"

PKGS=(
	# kernel source and toolchain
	linux-source-6.12 rustc-web rust-web-src clang lld llvm libclang-14-dev
	rust-web-clippy rustfmt-web
	flex bison bc libelf-dev libssl-dev cpio kmod xz-utils make
	# VM and guest userspace
	qemu-system-x86 busybox-static lvm2 dmeventd thin-provisioning-tools xfsprogs
	util-linux fdisk fio
)

# The plots of make demo and make bench (--plots).
[ "${1:-}" = --plots ] && PKGS+=(python3-matplotlib)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if ((${#missing[@]})); then
	tr_log "installing: ${missing[*]}"
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -q
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
		--no-install-recommends "${missing[@]}"
fi

if [ ! -x "$TR_BINDGEN" ]; then
	tr_log "building bindgen-cli $TR_BINDGEN_VERSION"
	command -v cargo >/dev/null || tr_die "cargo is needed to build bindgen-cli"
	cargo install --locked "bindgen-cli@$TR_BINDGEN_VERSION" \
		--root "$TR_CACHE/tools/bindgen-cli-$TR_BINDGEN_VERSION"
fi

"$TR_RUSTC" --version | grep -q '^rustc 1\.96' ||
	tr_die "$TR_RUSTC is not Debian's rustc-web 1.96"
[ -r "$TR_KTARBALL" ] || tr_die "$TR_KTARBALL missing"
