# SPDX-License-Identifier: GPL-2.0
#
# Block reservations between XFS and dm-thin, as out-of-tree Rust modules.
#
# Kernel developers: `make -C $KDIR M=$PWD` builds the modules against your
# tree (kbuild reads ./Kbuild, not this file). Everyone else:
#
#   make demo      build everything, boot the VM, run the 2016 RFC's scenario
#   make bench     stock vs reservations: utilization at ENOSPC, throughput (not a test)
#   make check     host tests, kernel + module builds, VM selftests, one verdict
#   make stress    reliability suite: power cuts, long cycles (an hour or more)
#
# and, for working on the code:
#
#   make kernel    prepare (or reuse) the cached kernel tree; FLAVOUR=debug|release
#   make modules   build the modules against it
#   make vm-tests  boot the VM and run the selftests (TESTS="a.sh b.sh" for some)
#   make shell     boot the VM with a shell on the console
#   make harness-selftest   show that each kernel checker turns a run red
#   make own-tree  build a tree outside the cache as docs/building.md says,
#                  then M=$PWD against it, and load the modules in the VM
#   make clean     remove build output and VM logs from the clone

FLAVOUR ?= debug

.PHONY: all demo check stress bench deps kernel modules vm-tests shell harness-selftest own-tree clean

all: modules

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

check:
	FLAVOUR=$(FLAVOUR) scripts/check.sh

stress:
	FLAVOUR=$(FLAVOUR) scripts/stress.sh

deps:
	scripts/deps.sh

kernel: deps
	scripts/kernel.sh $(FLAVOUR)

modules: deps
	scripts/modules.sh $(FLAVOUR)

vm-tests: deps
	scripts/vm.sh --flavour $(FLAVOUR) --mode tests $(if $(TESTS),--tests "$(TESTS)")

shell: deps
	scripts/vm.sh --flavour $(FLAVOUR) --mode shell

harness-selftest: deps
	scripts/harness-selftest.sh

own-tree:
	scripts/own-tree.sh

clean:
	rm -rf out tools/testing/thin_reserve_host/target
