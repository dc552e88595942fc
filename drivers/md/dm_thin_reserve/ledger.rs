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
    blocks: u64,
}

impl ThinReservation {
    /// A device that holds nothing.
    pub const fn new() -> Self {
        Self { blocks: 0 }
    }

    /// Blocks held.
    pub fn blocks(&self) -> u64 {
        self.blocks
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
        let thin_total = thin
            .blocks
            .checked_sub(blocks)
            .ok_or(LedgerError::NotHeld)?;
        // Cannot fail while the pool total is the sum of its devices'.
        let pool_total = self
            .reserved
            .checked_sub(blocks)
            .ok_or(LedgerError::NotHeld)?;
        thin.blocks = thin_total;
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

    /// Undoes a successful [`PoolLedger::allocate`] whose allocation did not
    /// happen: a block taken from the reservation goes back into it.
    pub fn allocation_failed(&mut self, thin: &mut ThinReservation, how: Allocation) {
        if how == Allocation::Reserved {
            // Both counts were decremented by allocate(); they cannot be at
            // u64::MAX, so these additions cannot overflow.
            thin.blocks = thin.blocks.saturating_add(1);
            self.reserved = self.reserved.saturating_add(1);
        }
    }

    /// A thin device goes away: its reservation returns to the pool.
    pub fn remove(&mut self, thin: &mut ThinReservation) {
        let held = thin.blocks;
        // Cannot fail while the pool total is the sum of its devices'.
        let _ = self.release(thin, held);
    }
}
