// SPDX-License-Identifier: GPL-2.0

//! dm-thin block reservations.
//!
//! A filesystem on an over-provisioned thin volume learns that the pool is
//! full only when writeback fails. This module lets it reserve pool space
//! ahead of its writes instead: it keeps, per thin pool, a ledger of blocks
//! promised to each thin device, refuses promises the pool cannot keep
//! (`-ENOSPC`), and makes sure unreserved writers cannot consume blocks
//! promised to others.
//!
//! dm-thin owns the pools and allocates; this module decides who may
//! allocate and keeps the books. It registers a `struct dm_thin_reserve_ops`
//! with dm-thin (see `include/linux/dm-thin-reserve.h` in the C hook series
//! under `patches/`), which calls it with the pool's `reserve_lock` held
//! from the `get_reserved_space`/`set_reserved_space` block device
//! operations, before every data-block allocation, when a range is
//! provisioned or discarded, and when a thin device or pool goes away. Each
//! pool with a ledger holds a reference on this module, so it cannot be
//! unloaded while any reservation exists.
//!
//! Provisioning earmarks virtual blocks instead of allocating them: the
//! earmark holds one pool block for the write that will map the block (an
//! unmapped one) or copy it (one a snapshot shares), so nothing is written
//! or zeroed ahead of the data. Earmarks are kept as one 512-bit
//! [`EarmarkChunk`] per 512 virtual blocks that have any, so that the
//! allocation path only clears a bit.
//!
//! A device's holder can pin ranges (a filesystem's log and AG headers):
//! dm-thin asks for them at each snapshot of the device and earmarks their
//! shared blocks, or refuses the snapshot. Pins are kept per device, sorted
//! and merged, and end with the holder's reservation.
//!
//! The arithmetic lives in `dm_thin_reserve/`, which has no kernel
//! dependencies and is property-tested on the host.

use kernel::error::code::{E2BIG, EINVAL, ENOSPC};
use kernel::error::Error;
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// Sector/block arithmetic; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/geometry.rs"]
pub mod geometry;

/// The per-pool reservation ledger; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/ledger.rs"]
pub mod ledger;

/// dm-thin's ledger interface as a safe trait: all of this module's
/// `unsafe` lives there.
#[path = "dm_thin_reserve/ops.rs"]
mod ops;

use geometry::{BlockSize, GeometryError};
use ledger::{Allocation, EarmarkChunk, LedgerError, PoolLedger, ThinReservation};
use ops::{Charge, Ledger, Registration};

/// Version of this extension, printed at load so test logs say what ran.
const VERSION: &str = "0.4.0";

module! {
    type: DmThinReserve,
    name: "dm_thin_reserve",
    author: "thin-reserve developers",
    description: "dm-thin block reservation ledger",
    license: "GPL",
}

/// What dm-thin knows as a pool's `ledger`: the books of one pool.
struct PoolState {
    geometry: BlockSize,
    ledger: PoolLedger,
    /// Reservations by thin device id; devices that hold nothing are absent.
    thins: RBTree<u32, ThinState>,
}

/// One thin device's reservation, earmarks and pins.
struct ThinState {
    reservation: ThinReservation,
    /// Earmarked virtual blocks by chunk number; chunks without any are
    /// absent. Their bits add up to `reservation.earmarked()`.
    earmarks: RBTree<u64, EarmarkChunk>,
    /// Pinned ranges `[begin, end)`, sorted and disjoint: provisioned again
    /// whenever the device is snapshotted.
    pins: KVec<(u64, u64)>,
}

impl ThinState {
    fn new() -> Self {
        Self {
            reservation: ThinReservation::new(),
            earmarks: RBTree::new(),
            pins: KVec::new(),
        }
    }

    /// Whether the device holds nothing and pins nothing, so that its
    /// entry can go.
    fn is_empty(&self) -> bool {
        self.reservation.is_empty() && self.pins.is_empty()
    }

    /// Pins `[begin, end)`, merging it with the ranges it overlaps or
    /// touches. On error nothing changes.
    fn pin(&mut self, begin: u64, end: u64) -> Result {
        if begin >= end {
            return Err(EINVAL);
        }
        let mut merged = (begin, end);
        let mut pins = KVec::with_capacity(self.pins.len() + 1, GFP_KERNEL)?;
        let mut placed = false;
        for &range in self.pins.iter() {
            if let Some(union) = ledger::merge_pin(merged, range) {
                merged = union;
                continue;
            }
            if !placed && range.0 > merged.1 {
                pins.push(merged, GFP_KERNEL)?;
                placed = true;
            }
            pins.push(range, GFP_KERNEL)?;
        }
        if !placed {
            pins.push(merged, GFP_KERNEL)?;
        }
        if pins.len() > ledger::MAX_PINS {
            return Err(E2BIG);
        }
        self.pins = pins;
        Ok(())
    }

    /// The first pinned range that ends after `from`.
    fn next_pin(&self, from: u64) -> Option<(u64, u64)> {
        self.pins.iter().copied().find(|&(_, end)| end > from)
    }

    /// Whether virtual block `block` is earmarked.
    fn is_earmarked(&self, block: u64) -> bool {
        let (chunk, bit) = EarmarkChunk::locate(block);
        self.earmarks.get(&chunk).is_some_and(|c| c.contains(bit))
    }

    /// Clears `block`'s earmark bit, dropping its chunk when that empties.
    fn clear_earmark(&mut self, block: u64) {
        let (chunk, bit) = EarmarkChunk::locate(block);
        let empty = match self.earmarks.get_mut(&chunk) {
            Some(c) => {
                c.remove(bit);
                c.is_empty()
            }
            None => false,
        };
        if empty {
            self.earmarks.remove(&chunk);
        }
    }

    /// Clears the earmark bits of `[begin, end)`; returns how many were set.
    fn clear_earmarks(&mut self, begin: u64, end: u64) -> u64 {
        let (first, _) = EarmarkChunk::locate(begin);
        let mut removed: u64 = 0;
        let mut cursor = self.earmarks.cursor_lower_bound(&first);
        while let Some(mut c) = cursor {
            let (&chunk, bits) = c.current_mut();
            let base = chunk.saturating_mul(ledger::EARMARK_CHUNK_BLOCKS);
            if base >= end {
                break;
            }
            // Both bounds are within the chunk, so the casts cannot truncate.
            let lo = begin.saturating_sub(base).min(ledger::EARMARK_CHUNK_BLOCKS) as u32;
            let hi = (end - base).min(ledger::EARMARK_CHUNK_BLOCKS) as u32;
            removed += u64::from(bits.remove_range(lo, hi));
            if bits.is_empty() {
                // Removing yields the next node, or the previous one when
                // there is no next: stop unless it is further on.
                let (next, _node) = c.remove_current();
                cursor = next.filter(|n| *n.current().0 > chunk);
            } else {
                cursor = c.move_next();
            }
        }
        removed
    }
}

fn error_of_geometry(e: GeometryError) -> Error {
    match e {
        GeometryError::NotAligned => EINVAL,
        GeometryError::Overflow => ops::eoverflow(),
    }
}

fn error_of_ledger(e: LedgerError) -> Error {
    match e {
        LedgerError::NoSpace => ENOSPC,
        LedgerError::NotHeld => EINVAL,
        LedgerError::Overflow => ops::eoverflow(),
    }
}

fn charge_of(how: Allocation) -> Charge {
    match how {
        Allocation::Reserved => Charge::Reserved,
        Allocation::Unreserved => Charge::Unreserved,
        Allocation::Earmarked => Charge::Earmarked,
    }
}

impl PoolState {
    /// Drops `dev_id`'s entry if it holds and pins nothing.
    fn forget_if_empty(&mut self, dev_id: u32) {
        if self.thins.get(&dev_id).is_some_and(|t| t.is_empty()) {
            self.thins.remove(&dev_id);
        }
    }
}

impl Ledger for PoolState {
    fn new(block_sectors: u64) -> Result<KBox<Self>> {
        let Ok(geometry) = BlockSize::new(block_sectors) else {
            pr_err!("unsupported pool block size {} sectors\n", block_sectors);
            return Err(EINVAL);
        };
        let state = PoolState {
            geometry,
            ledger: PoolLedger::new(),
            thins: RBTree::new(),
        };
        Ok(KBox::new(state, GFP_KERNEL)?)
    }

    /// The block interface's absolute form.
    fn set(&mut self, dev_id: u32, sectors: u64, free: u64) -> Result {
        let blocks = self
            .geometry
            .sectors_to_blocks(sectors)
            .map_err(error_of_geometry)?;
        if let Some(thin) = self.thins.get_mut(&dev_id) {
            self.ledger
                .set(&mut thin.reservation, blocks, free)
                .map_err(error_of_ledger)?;
            // The holder is done: its pins end with its reservation.
            if blocks == 0 {
                thin.pins = KVec::new();
            }
            self.forget_if_empty(dev_id);
            return Ok(());
        }
        if blocks == 0 {
            return Ok(());
        }
        // Allocate the node first, so that a failure leaves the books untouched.
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut thin = ThinState::new();
        self.ledger
            .set(&mut thin.reservation, blocks, free)
            .map_err(error_of_ledger)?;
        self.thins.insert(node.into_node(dev_id, thin));
        Ok(())
    }

    fn get(&self, dev_id: u32) -> Result<u64> {
        let blocks = self
            .thins
            .get(&dev_id)
            .map_or(0, |thin| thin.reservation.blocks());
        self.geometry
            .blocks_to_sectors(blocks)
            .map_err(error_of_geometry)
    }

    fn reserved(&self) -> u64 {
        self.ledger.reserved()
    }

    /// May `dev_id` allocate a data block for its virtual block `block` now?
    fn charge(&mut self, dev_id: u32, block: u64, free: u64, copy: bool) -> Result<Charge> {
        let how = match self.thins.get_mut(&dev_id) {
            Some(thin) if thin.is_earmarked(block) => {
                let how = self.ledger.allocate_earmarked(&mut thin.reservation);
                if how.is_ok() {
                    thin.clear_earmark(block);
                }
                how
            }
            Some(thin) if copy => self.ledger.allocate_copy(&mut thin.reservation, free),
            Some(thin) => self.ledger.allocate(&mut thin.reservation, free),
            None => self.ledger.allocate(&mut ThinReservation::new(), free),
        };
        how.map(charge_of).map_err(error_of_ledger)
    }

    /// The allocation `charge` allowed failed.
    fn uncharge(&mut self, dev_id: u32, block: u64, how: Charge) {
        // A device charged from its reservation or an earmark had an entry
        // at `charge` time, under the same lock hold, and still has it.
        let Some(thin) = self.thins.get_mut(&dev_id) else {
            return;
        };
        match how {
            Charge::Unreserved => {}
            Charge::Reserved => self
                .ledger
                .allocation_failed(&mut thin.reservation, Allocation::Reserved),
            Charge::Earmarked => {
                // Put the earmark back. Its chunk may have gone with the
                // bit; if there is no memory for it, the block goes back
                // into the device's reservation instead, so that the
                // counts stay true.
                let (chunk, bit) = EarmarkChunk::locate(block);
                let restored = match thin.earmarks.get_mut(&chunk) {
                    Some(c) => c.insert(bit),
                    None => {
                        let mut c = EarmarkChunk::new();
                        c.insert(bit);
                        thin.earmarks
                            .try_create_and_insert(chunk, c, GFP_NOWAIT)
                            .is_ok()
                    }
                };
                let back = if restored {
                    Allocation::Earmarked
                } else {
                    Allocation::Reserved
                };
                self.ledger.allocation_failed(&mut thin.reservation, back);
            }
        }
    }

    /// Provisioning promises `dev_id`'s virtual block `block` (unmapped, or
    /// shared with a snapshot) the data block its write will need; with
    /// `unreserved` out of blocks nobody reserved only.
    fn earmark(&mut self, dev_id: u32, block: u64, free: u64, unreserved: bool) -> Result<bool> {
        if self
            .thins
            .get(&dev_id)
            .is_some_and(|t| t.is_earmarked(block))
        {
            return Ok(false);
        }
        // Allocate the tree nodes that are missing first, so that a
        // failure leaves the books untouched.
        let (chunk, bit) = EarmarkChunk::locate(block);
        let thin_node = match self.thins.get(&dev_id) {
            Some(_) => None,
            None => Some(RBTreeNodeReservation::new(GFP_KERNEL)?),
        };
        let chunk_node = match self.thins.get(&dev_id) {
            Some(thin) if thin.earmarks.get(&chunk).is_some() => None,
            _ => Some(RBTreeNodeReservation::new(GFP_KERNEL)?),
        };
        if let Some(node) = thin_node {
            self.thins.insert(node.into_node(dev_id, ThinState::new()));
        }
        let Some(thin) = self.thins.get_mut(&dev_id) else {
            return Err(EINVAL);
        };
        let charged = if unreserved {
            self.ledger.earmark_unreserved(&mut thin.reservation, free)
        } else {
            self.ledger.earmark(&mut thin.reservation, free)
        };
        if let Err(e) = charged {
            self.forget_if_empty(dev_id);
            return Err(error_of_ledger(e));
        }
        match (thin.earmarks.get_mut(&chunk), chunk_node) {
            (Some(c), _) => {
                c.insert(bit);
            }
            (None, Some(node)) => {
                let mut c = EarmarkChunk::new();
                c.insert(bit);
                thin.earmarks.insert(node.into_node(chunk, c));
            }
            // The chunk was looked for above, under the same lock hold.
            (None, None) => return Err(EINVAL),
        }
        Ok(true)
    }

    fn is_earmarked(&self, dev_id: u32, block: u64) -> bool {
        self.thins
            .get(&dev_id)
            .is_some_and(|t| t.is_earmarked(block))
    }

    /// `dev_id`'s virtual blocks `[begin, end)` were discarded; their
    /// earmarks end.
    fn discard(&mut self, dev_id: u32, begin: u64, end: u64) {
        let Some(thin) = self.thins.get_mut(&dev_id) else {
            return;
        };
        let removed = thin.clear_earmarks(begin, end);
        // Cannot fail: every bit cleared was counted when it was set.
        let _ = self.ledger.release_earmarks(&mut thin.reservation, removed);
        self.forget_if_empty(dev_id);
    }

    /// `dev_id`'s blocks `[begin, end)` stay provisioned across snapshots.
    fn pin(&mut self, dev_id: u32, begin: u64, end: u64) -> Result {
        if let Some(thin) = self.thins.get_mut(&dev_id) {
            return thin.pin(begin, end);
        }
        let node = RBTreeNodeReservation::new(GFP_KERNEL)?;
        let mut thin = ThinState::new();
        thin.pin(begin, end)?;
        self.thins.insert(node.into_node(dev_id, thin));
        Ok(())
    }

    fn next_pin(&self, dev_id: u32, from: u64) -> Option<(u64, u64)> {
        self.thins.get(&dev_id).and_then(|t| t.next_pin(from))
    }

    fn unreserved(&self, free: u64) -> u64 {
        self.ledger.unreserved(free)
    }

    fn promisable(free: u64, free_metadata: u64) -> u64 {
        ledger::promisable(free, free_metadata)
    }

    /// The device is gone from the pool.
    fn delete_thin(&mut self, dev_id: u32) {
        if let Some(mut thin) = self.thins.remove(&dev_id) {
            self.ledger.remove(&mut thin.reservation);
        }
    }
}

struct DmThinReserve {
    _registration: Registration<PoolState>,
}

impl kernel::Module for DmThinReserve {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::new(module)?;
        pr_info!(
            "dm-thin reservation extension {} loaded (thin block {}..{} sectors)\n",
            VERSION,
            geometry::MIN_BLOCK_SECTORS,
            geometry::MAX_BLOCK_SECTORS
        );
        Ok(DmThinReserve {
            _registration: registration,
        })
    }
}

impl Drop for DmThinReserve {
    fn drop(&mut self) {
        pr_info!("dm-thin reservation extension {} unloaded\n", VERSION);
    }
}
