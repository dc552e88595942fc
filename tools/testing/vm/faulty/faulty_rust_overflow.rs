// SPDX-License-Identifier: GPL-2.0

//! Overflows a `u32` at load time, for scripts/harness-selftest.sh: with
//! `CONFIG_RUST_OVERFLOW_CHECKS` this panics, and the harness must see it.

use kernel::prelude::*;

module! {
    type: FaultyRustOverflow,
    name: "faulty_rust_overflow",
    author: "thin-reserve developers",
    description: "Deliberate Rust integer overflow for testing the test harness",
    license: "GPL",
}

struct FaultyRustOverflow;

impl kernel::Module for FaultyRustOverflow {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // black_box hides the values, so the overflow happens at run time.
        let big = core::hint::black_box(u32::MAX);
        let one = core::hint::black_box(1u32);
        pr_info!("faulty_rust_overflow: {}\n", big + one);
        Ok(FaultyRustOverflow)
    }
}
