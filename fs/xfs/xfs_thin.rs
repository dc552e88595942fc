// SPDX-License-Identifier: GPL-2.0

//! xfs_thin: XFS reservations backed by thin-pool reservations.
//!
//! XFS already refuses to promise more filesystem blocks than it has: every
//! transaction and every delayed-allocation write reserves blocks from the
//! free-block counter first. On a thin volume those blocks may not exist in
//! the pool. This shim is called from XFS's reservation paths (transaction
//! reserve, delalloc, the reserve pool), its allocator and its free path,
//! and turns filesystem reservations into reservations on the underlying
//! thin pool through the block layer's reservation operations, so XFS
//! returns `-ENOSPC` at write time instead of failing writeback later.
//!
//! The C call sites will be part of the hook series in `patches/`; today the
//! module carries the reservation policy (`xfs_thin/policy.rs`, host-tested)
//! and nothing calls it yet.

use kernel::prelude::*;

/// Sector/block arithmetic, shared with dm_thin_reserve and the host crate.
#[path = "../../drivers/md/dm_thin_reserve/geometry.rs"]
pub mod geometry;

/// How many thin blocks a filesystem reservation needs; shared verbatim with
/// the host test crate.
#[path = "xfs_thin/policy.rs"]
pub mod policy;

/// Version of this shim, printed at load so test logs say what ran.
const VERSION: &str = "0.1.0";

module! {
    type: XfsThin,
    name: "xfs_thin",
    author: "thin-reserve developers",
    description: "XFS shim that reserves thin-pool space for filesystem reservations",
    license: "GPL",
}

struct XfsThin;

impl kernel::Module for XfsThin {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("XFS thin-pool reservation shim {} loaded\n", VERSION);
        Ok(XfsThin)
    }
}

impl Drop for XfsThin {
    fn drop(&mut self) {
        pr_info!("XFS thin-pool reservation shim {} unloaded\n", VERSION);
    }
}
