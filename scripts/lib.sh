# SPDX-License-Identifier: GPL-2.0
# Common settings for the build, VM and test scripts. Sourced, not run.
#
# Everything that is expensive to make (the kernel trees, the bindgen
# binary, the initramfs base image) lives in a cache outside the clone,
# keyed by its inputs, so a fresh clone reuses what an earlier run built.

set -euo pipefail

TR_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TR_CACHE=${TR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/thin-reserve}

# The kernel we overlay: Debian's linux-source-6.12 (pinned by package name).
TR_KPKG=linux-source-6.12
TR_KTARBALL=/usr/src/linux-source-6.12.tar.xz

# Toolchain: Debian's rustc-web (its rust-src matches), clang/lld 14, and a
# pinned bindgen-cli. The rustup rustc first on PATH has no rust-src.
TR_RUSTC=${RUSTC:-/usr/bin/rustc}
TR_CLIPPY=/usr/bin/clippy-driver
TR_RUSTFMT=/usr/bin/rustfmt
TR_BINDGEN_VERSION=0.70.1
TR_BINDGEN=${BINDGEN:-$TR_CACHE/tools/bindgen-cli-$TR_BINDGEN_VERSION/bin/bindgen}
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-14/lib}

tr_jobs() { nproc; }

tr_log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
tr_die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }

# tr_result ok|fail|skip DESCRIPTION [DETAIL]: one KTAP result line of a
# host suite, counted in the caller's n, passed, failed and skipped.
tr_result() {
	n=$((n + 1))
	case $1 in
	ok) echo "ok $n $2"; passed=$((passed + 1)) ;;
	skip) echo "ok $n $2 # SKIP ${3:-}"; skipped=$((skipped + 1)) ;;
	*) echo "not ok $n $2${3:+ # $3}"; failed=$((failed + 1)) ;;
	esac
}

# Arguments every kernel make call needs: without RUSTC/BINDGEN even the
# config targets silently turn CONFIG_RUST off.
tr_kmake_args() {
	printf '%s\n' LLVM=1 "RUSTC=$TR_RUSTC" "BINDGEN=$TR_BINDGEN" \
		"HOSTRUSTC=$TR_RUSTC" "CLIPPY_DRIVER=$TR_CLIPPY" "RUSTFMT=$TR_RUSTFMT"
}

# The series' patch files in order, without comments and blank lines.
tr_series_patches() {
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TR_TOP/patches/series"
}

tr_pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo none; }

tr_sha() { sha256sum | cut -c1-16; }
