#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Prepare a kernel tree: extract Debian's linux-source-6.12, apply
# patches/series, merge our config fragments onto tinyconfig and build
# bzImage + in-tree modules with LLVM=1 and Rust.
#
#   scripts/kernel.sh [release|debug]     prints the prepared tree's path
#
# The tree lives in $TR_CACHE/kernel/<flavour>-<key>, where the key hashes
# every input: the kernel package version, the patch series, the config
# fragments, the toolchain versions and this recipe's version. Same inputs:
# nothing is rebuilt. Changed inputs: a fresh extract, so a series is never
# applied twice. KDIR=/path/to/tree skips all of this and uses that tree.
source "$(dirname "$0")/lib.sh"

# Bump when the recipe below changes in a way that changes the result.
RECIPE=1

flavour=${1:-release}
case $flavour in
release) fragments=(base.config) ;;
debug) fragments=(base.config debug.config) ;;
*) tr_die "unknown flavour '$flavour' (release or debug)" ;;
esac

if [ -n "${KDIR:-}" ]; then
	[ -f "$KDIR/Module.symvers" ] || tr_die "KDIR=$KDIR is not a built kernel tree"
	echo "$KDIR"
	exit 0
fi

inputs() {
	echo "recipe $RECIPE flavour $flavour"
	echo "kernel $(tr_pkg_version "$TR_KPKG")"
	"$TR_RUSTC" --version
	"$TR_BINDGEN" --version
	clang --version | head -n1
	ld.lld --version | head -n1
	for f in "${fragments[@]}"; do
		echo "config $f"
		cat "$TR_TOP/kernel/configs/$f"
	done
	echo series
	while read -r p; do
		echo "patch $p"
		cat "$TR_TOP/patches/$p"
	done < <(tr_series_patches)
}

key=$(inputs | tr_sha)
tree=$TR_CACHE/kernel/$flavour-$key
if [ -f "$tree/.thin-reserve-built" ]; then
	echo "$tree"
	exit 0
fi

mapfile -t kmake < <(tr_kmake_args)
jobs=$(tr_jobs)
tr_log "building $flavour kernel in $tree (key $key)"
start=$(date +%s)
rm -rf "$tree"
mkdir -p "$tree"
tar -xf "$TR_KTARBALL" -C "$tree" --strip-components=1

while read -r p; do
	tr_log "applying $p"
	patch -d "$tree" -p1 --batch --forward --quiet -i "$TR_TOP/patches/$p" ||
		tr_die "patch $p does not apply"
done < <(tr_series_patches)

cd "$tree"
make -s "${kmake[@]}" tinyconfig >/dev/null
frag_paths=()
for f in "${fragments[@]}"; do frag_paths+=("$TR_TOP/kernel/configs/$f"); done
scripts/kconfig/merge_config.sh -m -O . .config "${frag_paths[@]}" >/dev/null
make -s "${kmake[@]}" olddefconfig >/dev/null

# Kconfig drops options whose dependencies are not met without a word.
bad=0
for f in "${frag_paths[@]}"; do
	while read -r line; do
		case $line in
		CONFIG_*=*)
			grep -qxF "$line" .config && continue
			got=$(grep "^${line%%=*}=" .config || echo "unset") ;;
		"# CONFIG_"*" is not set")
			sym=${line#\# }
			sym=${sym%% *}
			grep -q "^$sym=" .config || continue
			got=$(grep "^$sym=" .config) ;;
		*) continue ;;
		esac
		tr_log "config: wanted '$line', got '$got'"
		bad=1
	done <"$f"
done
[ $bad = 0 ] || tr_die "the config fragments did not apply (see above)"

make -s "${kmake[@]}" -j"$jobs" bzImage modules
rm -rf _modinst
make -s "${kmake[@]}" INSTALL_MOD_PATH="$tree/_modinst" modules_install >/dev/null
echo "$key" >.thin-reserve-built
tr_log "$flavour kernel built in $(($(date +%s) - start)) s"

# Keep the newest two trees of this flavour; each is several GB.
ls -1dt "$TR_CACHE/kernel/$flavour"-* | tail -n +3 | xargs -r rm -rf
echo "$tree"
