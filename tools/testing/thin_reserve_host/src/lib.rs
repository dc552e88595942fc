// SPDX-License-Identifier: GPL-2.0

//! The kernel modules' pure cores, compiled for the host.
//!
//! These are the very files the modules include with `#[path]`; nothing is
//! copied. They must stay `no_std` and free of `kernel::` paths, which this
//! crate enforces by being `no_std` itself.

#![no_std]

#[path = "../../../../drivers/md/dm_thin_reserve/geometry.rs"]
pub mod geometry;

#[path = "../../../../drivers/md/dm_thin_reserve/ledger.rs"]
pub mod ledger;

#[path = "../../../../fs/xfs/xfs_thin/policy.rs"]
pub mod policy;

#[path = "../../../../fs/xfs/xfs_thin/books.rs"]
pub mod books;
