// SPDX-License-Identifier: GPL-2.0

//! The reservation ledger of one thin pool, in thin-block units.
//!
//! `no_std`, allocation-free and free of kernel dependencies: the kernel
//! module keeps one [`PoolLedger`] per pool and one [`ThinReservation`] per
//! thin device, under one lock per pool, and calls these functions with the
//! pool's current free data-block count; the host test crate checks them
//! against a reference model.
//!
//! # The promise
//!
//! A reservation is a promise that the holder can later allocate that many
//! new data blocks. The ledger keeps the promise with one invariant:
//!
//! > the blocks reserved in a pool never exceed its free blocks.
//!
//! Every way the pool's free count can go down is an allocation, and every
//! allocation passes [`PoolLedger::allocate`], which keeps the invariant:
//! a device consumes its own reservation first; a device without one may
//! take a block only while more blocks are free than are reserved by
//! others. Freeing blocks (discard, thin removal) and growing the pool only
//! add free blocks, so they cannot break it; they need no ledger call.
//!
//! # Earmarks
//!
//! Provisioning turns part of a device's reservation into earmarks: a
//! promise for one particular unmapped virtual block, so that the write
//! that maps it later cannot fail ([`PoolLedger::earmark`]). An earmarked
//! block is still free in the pool and counts as reserved until it is
//! allocated ([`PoolLedger::allocate_earmarked`]) or discarded
//! ([`PoolLedger::release_earmarks`]). Which blocks are earmarked is kept
//! by the caller (see [`EarmarkChunk`]); the ledger keeps the counts.
//!
//! The block interface is absolute (`set_reserved_space` says "my
//! reservation is now N"); the ledger works in deltas
//! ([`PoolLedger::reserve`], [`PoolLedger::release`]) and
//! [`PoolLedger::set`] computes the delta under the caller's lock, so two
//! racing callers cannot both be granted against the same free blocks.

/// Why the ledger refused an operation. The kernel module maps these to
/// errnos (see [`LedgerError::errno_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerError {
    /// The pool cannot back the request (`-ENOSPC`).
    NoSpace,
    /// Releasing more than is held (`-EINVAL`).
    NotHeld,
    /// A count would leave `u64` (`-EOVERFLOW`).
    Overflow,
}

impl LedgerError {
    /// The errno name the kernel side returns for this error; for messages.
    pub const fn errno_name(self) -> &'static str {
        match self {
            LedgerError::NoSpace => "ENOSPC",
            LedgerError::NotHeld => "EINVAL",
            LedgerError::Overflow => "EOVERFLOW",
        }
    }
}

/// Blocks one thin device holds in reserve. Only the ledger changes it, so
/// the pool's total always equals the sum over its devices.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ThinReservation {
    /// The reservation the device sets (`set_reserved_space`).
    blocks: u64,
    /// Blocks earmarked for particular virtual blocks by provisioning.
    earmarked: u64,
}

impl ThinReservation {
    /// A device that holds nothing.
    pub const fn new() -> Self {
        Self {
            blocks: 0,
            earmarked: 0,
        }
    }

    /// Blocks held as the device's reservation, earmarks not included.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Blocks earmarked for particular virtual blocks.
    pub fn earmarked(&self) -> u64 {
        self.earmarked
    }

    /// Whether the device holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.blocks == 0 && self.earmarked == 0
    }
}

/// Blocks reserved in one pool, by all its devices together.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PoolLedger {
    reserved: u64,
}

/// Where an allocated block came from, so callers can account for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Taken out of the allocating device's own reservation.
    Reserved,
    /// Taken from blocks nobody had reserved.
    Unreserved,
    /// The block's own earmark.
    Earmarked,
}

impl PoolLedger {
    /// A pool with nothing reserved.
    pub const fn new() -> Self {
        Self { reserved: 0 }
    }

    /// Blocks reserved in the pool.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// Blocks free in the pool that nobody has reserved.
    pub fn unreserved(&self, free: u64) -> u64 {
        free.saturating_sub(self.reserved)
    }

    /// Adds `blocks` to `thin`'s reservation if the pool, with `free` data
    /// blocks free, can back it next to everything already reserved.
    pub fn reserve(
        &mut self,
        thin: &mut ThinReservation,
        blocks: u64,
        free: u64,
    ) -> Result<(), LedgerError> {
        let pool_total = self
            .reserved
            .checked_add(blocks)
            .ok_or(LedgerError::Overflow)?;
        let thin_total = thin
            .blocks
            .checked_add(blocks)
            .ok_or(LedgerError::Overflow)?;
        if pool_total > free {
            return Err(LedgerError::NoSpace);
        }
        self.reserved = pool_total;
        thin.blocks = thin_total;
        Ok(())
    }

    /// Gives back `blocks` of `thin`'s reservation.
    pub fn release(&mut self, thin: &mut ThinReservation, blocks: u64) -> Result<(), LedgerError> {
        self.give_back(&mut thin.blocks, blocks)
    }

    /// Returns `blocks` of a device's count `held` (its reservation or its
    /// earmarks) to the pool; on error nothing changes.
    fn give_back(&mut self, held: &mut u64, blocks: u64) -> Result<(), LedgerError> {
        let held_total = held.checked_sub(blocks).ok_or(LedgerError::NotHeld)?;
        // Cannot fail while the pool total is the sum of its devices'.
        let pool_total = self
            .reserved
            .checked_sub(blocks)
            .ok_or(LedgerError::NotHeld)?;
        *held = held_total;
        self.reserved = pool_total;
        Ok(())
    }

    /// Sets `thin`'s reservation to `blocks` (the block interface's
    /// absolute form). Growing it must fit in `free`; shrinking always
    /// succeeds. On error nothing changes.
    pub fn set(
        &mut self,
        thin: &mut ThinReservation,
        blocks: u64,
        free: u64,
    ) -> Result<(), LedgerError> {
        match blocks.checked_sub(thin.blocks) {
            Some(grow) => self.reserve(thin, grow, free),
            None => self.release(thin, thin.blocks - blocks),
        }
    }

    /// Decides whether `thin` may allocate one data block now, with `free`
    /// blocks free in the pool, and charges it. Call before every data-block
    /// allocation, holding the pool's ledger lock until the allocation has
    /// happened or failed; if it failed for another reason, hand the block
    /// back with [`PoolLedger::allocation_failed`] under the same lock hold.
    pub fn allocate(
        &mut self,
        thin: &mut ThinReservation,
        free: u64,
    ) -> Result<Allocation, LedgerError> {
        if free == 0 {
            return Err(LedgerError::NoSpace);
        }
        if thin.blocks > 0 {
            thin.blocks -= 1;
            // At least thin.blocks + 1 while the pool total is the sum of
            // its devices'; saturating so a broken caller cannot panic us.
            self.reserved = self.reserved.saturating_sub(1);
            return Ok(Allocation::Reserved);
        }
        // The block must come from what nobody reserved: free > reserved.
        if free > self.reserved {
            Ok(Allocation::Unreserved)
        } else {
            Err(LedgerError::NoSpace)
        }
    }

    /// The same for a block that replaces one a snapshot shares (a
    /// copy-on-write that nothing earmarked): blocks nobody reserved pay
    /// first, and the device's reservation only when there are none. A
    /// holder of a reservation then sees its reservation shrink only when
    /// the pool is at its limit, which is when copies of its metadata must
    /// still go through.
    pub fn allocate_copy(
        &mut self,
        thin: &mut ThinReservation,
        free: u64,
    ) -> Result<Allocation, LedgerError> {
        if free > self.reserved {
            return Ok(Allocation::Unreserved);
        }
        self.allocate(thin, free)
    }

    /// Undoes a successful [`PoolLedger::allocate`] or
    /// [`PoolLedger::allocate_earmarked`] whose allocation did not happen:
    /// a block taken from the reservation or an earmark goes back there.
    pub fn allocation_failed(&mut self, thin: &mut ThinReservation, how: Allocation) {
        // The counts were decremented by the allocation; they cannot be at
        // u64::MAX, so these additions cannot overflow.
        match how {
            Allocation::Reserved => thin.blocks = thin.blocks.saturating_add(1),
            Allocation::Earmarked => thin.earmarked = thin.earmarked.saturating_add(1),
            Allocation::Unreserved => return,
        }
        self.reserved = self.reserved.saturating_add(1);
    }

    /// Earmarks one unmapped block for `thin`, with `free` blocks free in
    /// the pool, charged as [`PoolLedger::allocate`] would charge its
    /// allocation: the device's reservation first, else a block nobody
    /// reserved. The caller records which block it is.
    pub fn earmark(
        &mut self,
        thin: &mut ThinReservation,
        free: u64,
    ) -> Result<Allocation, LedgerError> {
        if thin.blocks == 0 {
            return self.earmark_unreserved(thin, free);
        }
        thin.earmarked = thin.earmarked.checked_add(1).ok_or(LedgerError::Overflow)?;
        thin.blocks -= 1;
        Ok(Allocation::Reserved)
    }

    /// Earmarks one block for `thin` out of blocks nobody reserved, never
    /// out of the device's own reservation: for space the device's holder
    /// did not plan for (an overwrite of a block a snapshot shares, a
    /// pinned range at a snapshot).
    pub fn earmark_unreserved(
        &mut self,
        thin: &mut ThinReservation,
        free: u64,
    ) -> Result<Allocation, LedgerError> {
        let earmarked = thin.earmarked.checked_add(1).ok_or(LedgerError::Overflow)?;
        if free > self.reserved {
            // free > reserved, so reserved + 1 cannot overflow.
            self.reserved += 1;
            thin.earmarked = earmarked;
            Ok(Allocation::Unreserved)
        } else {
            Err(LedgerError::NoSpace)
        }
    }

    /// An earmarked block of `thin` is being allocated: the earmark pays.
    /// Same rules as [`PoolLedger::allocate`] about the lock and failure.
    pub fn allocate_earmarked(
        &mut self,
        thin: &mut ThinReservation,
    ) -> Result<Allocation, LedgerError> {
        thin.earmarked = thin.earmarked.checked_sub(1).ok_or(LedgerError::NotHeld)?;
        // At least 1 while the pool total is the sum of its devices'.
        self.reserved = self.reserved.saturating_sub(1);
        Ok(Allocation::Earmarked)
    }

    /// `blocks` earmarks of `thin` end without an allocation (the blocks
    /// were discarded): they return to the pool.
    pub fn release_earmarks(
        &mut self,
        thin: &mut ThinReservation,
        blocks: u64,
    ) -> Result<(), LedgerError> {
        self.give_back(&mut thin.earmarked, blocks)
    }

    /// A thin device goes away: its reservation and earmarks return to the
    /// pool.
    pub fn remove(&mut self, thin: &mut ThinReservation) {
        let held = thin.blocks;
        let earmarked = thin.earmarked;
        // Cannot fail while the pool total is the sum of its devices'.
        let _ = self.release(thin, held);
        let _ = self.release_earmarks(thin, earmarked);
    }
}

/// Virtual blocks per [`EarmarkChunk`].
pub const EARMARK_CHUNK_BLOCKS: u64 = 512;

/// Which of 512 consecutive virtual blocks of a device are earmarked. The
/// kernel module keeps one per chunk that has any, by chunk number, so
/// that an earmark costs a bit and consuming one never allocates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EarmarkChunk {
    bits: [u64; (EARMARK_CHUNK_BLOCKS / 64) as usize],
}

impl EarmarkChunk {
    /// The chunk number and the bit within it of virtual block `block`.
    pub fn locate(block: u64) -> (u64, u32) {
        // The remainder is below 512, so the cast cannot truncate.
        (
            block / EARMARK_CHUNK_BLOCKS,
            (block % EARMARK_CHUNK_BLOCKS) as u32,
        )
    }

    /// A chunk with nothing earmarked.
    pub const fn new() -> Self {
        Self {
            bits: [0; (EARMARK_CHUNK_BLOCKS / 64) as usize],
        }
    }

    fn word_mask(bit: u32) -> (usize, u64) {
        let bit = bit % EARMARK_CHUNK_BLOCKS as u32;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    /// Whether `bit` is earmarked.
    pub fn contains(&self, bit: u32) -> bool {
        let (word, mask) = Self::word_mask(bit);
        self.bits[word] & mask != 0
    }

    /// Earmarks `bit`; false if it was already.
    pub fn insert(&mut self, bit: u32) -> bool {
        let (word, mask) = Self::word_mask(bit);
        let was = self.bits[word] & mask != 0;
        self.bits[word] |= mask;
        !was
    }

    /// Ends `bit`'s earmark; false if it had none.
    pub fn remove(&mut self, bit: u32) -> bool {
        let (word, mask) = Self::word_mask(bit);
        let was = self.bits[word] & mask != 0;
        self.bits[word] &= !mask;
        was
    }

    /// Ends the earmarks of bits `[begin, end)` (clamped to the chunk) and
    /// returns how many there were.
    pub fn remove_range(&mut self, begin: u32, end: u32) -> u32 {
        let end = end.min(EARMARK_CHUNK_BLOCKS as u32);
        let mut removed = 0;
        let mut bit = begin;
        while bit < end {
            if self.remove(bit) {
                removed += 1;
            }
            bit += 1;
        }
        removed
    }

    /// Earmarked bits in the chunk.
    pub fn count(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether nothing in the chunk is earmarked.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }
}

/// Ranges of virtual blocks `[begin, end)` that a device's holder pinned:
/// they stay provisioned when the device is snapshotted. The kernel module
/// keeps them sorted and disjoint; [`merge_pin`] says how a new one joins.
pub const MAX_PINS: usize = 256;

/// Whether pinned ranges `a` and `b` overlap or touch, and if so their
/// union. Empty ranges join nothing.
pub fn merge_pin(a: (u64, u64), b: (u64, u64)) -> Option<(u64, u64)> {
    if a.0 >= a.1 || b.0 >= b.1 || a.0 > b.1 || b.0 > a.1 {
        return None;
    }
    Some((a.0.min(b.0), a.1.max(b.1)))
}

/// Data blocks counted to one pool metadata block when promises are
/// checked against metadata space. dm-thin's mapping btree holds up to 254
/// mappings a 4 KiB node and splits nodes in halves, so 127 a node is its
/// worst fill; half of that leaves room for the inner nodes and for the
/// blocks a transaction shadows before it commits.
pub const MAPPINGS_PER_METADATA_BLOCK: u64 = 64;

/// Metadata blocks kept free beyond what the promised mappings need.
pub const METADATA_MARGIN_BLOCKS: u64 = 64;

/// How many of `free` data blocks may be promised while `free_metadata`
/// metadata blocks are free (dm-thin's count, its own reserve already
/// taken off): a promise the pool cannot map is no promise, so metadata
/// space bounds it. Never more than `free`; nothing once the metadata is
/// down to its margin.
pub fn promisable(free: u64, free_metadata: u64) -> u64 {
    free_metadata
        .saturating_sub(METADATA_MARGIN_BLOCKS)
        .saturating_mul(MAPPINGS_PER_METADATA_BLOCK)
        .min(free)
}
