// SPDX-License-Identifier: GPL-2.0

//! dm-thin block reservations.
//!
//! A filesystem on an over-provisioned thin volume learns that the pool is
//! full only when writeback fails. This module lets it reserve pool space
//! ahead of its writes instead: it keeps, per thin pool, a ledger of blocks
//! promised to each thin device, refuses promises the pool cannot keep
//! (`-ENOSPC`), makes sure unreserved writers cannot consume blocks promised
//! to others, and provisions (allocates and maps without writing) ranges of
//! a thin device.
//!
//! It implements the `get_reserved_space`, `set_reserved_space` and
//! `provision` block device operations that the C hook series in
//! `patches/` adds to the block layer and dm core; dm-thin calls into it on
//! data-block allocation. The arithmetic lives in `dm_thin_reserve/`, which
//! has no kernel dependencies and is tested on the host.

use kernel::prelude::*;

/// Sector/block arithmetic; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/geometry.rs"]
pub mod geometry;

/// The per-pool reservation ledger; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/ledger.rs"]
pub mod ledger;

/// Version of this extension, printed at load so test logs say what ran.
const VERSION: &str = "0.1.0";

module! {
    type: DmThinReserve,
    name: "dm_thin_reserve",
    author: "thin-reserve developers",
    description: "dm-thin block reservation ledger and range provisioning",
    license: "GPL",
}

struct DmThinReserve;

impl kernel::Module for DmThinReserve {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!(
            "dm-thin reservation extension {} loaded (thin block {}..{} sectors)\n",
            VERSION,
            geometry::MIN_BLOCK_SECTORS,
            geometry::MAX_BLOCK_SECTORS
        );
        Ok(DmThinReserve)
    }
}

impl Drop for DmThinReserve {
    fn drop(&mut self) {
        pr_info!("dm-thin reservation extension {} unloaded\n", VERSION);
    }
}
