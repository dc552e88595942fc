// SPDX-License-Identifier: GPL-2.0

//! The books of one filesystem on a thin device: which filesystem blocks
//! are promised and not yet allocated, and how much of the pool the device
//! holds for them. `no_std` and free of kernel dependencies, so the
//! accounting is property-tested on the host against a model pool.
//!
//! # What XFS reports, and what it means here
//!
//! * [`Books::reserve`]: free blocks leave XFS's free pool to back a promise
//!   (a transaction's block reservation, a delayed allocation's indirect
//!   blocks). They may be allocated later without asking again, so the
//!   device must hold the worst case for them before XFS may take them: a
//!   thin block a block ([`ThinFs::worst_case_thin_blocks`]), or for
//!   metadata, nothing for what the AGs' heads have room for
//!   ([`ThinFs::metadata_thin_blocks`]). This is the one call that can
//!   refuse (`-ENOSPC` to the writer).
//! * [`Books::head`]: the free blocks of an AG's head, where XFS allocates
//!   metadata first, changed.
//! * [`Books::unreserve`]: blocks return to the free pool: unused parts of
//!   promises, and freed blocks as their transaction commits.
//! * [`Books::allocated`]: an extent was allocated. It is provisioned on the
//!   device at once, so writing it can no longer need new pool space, and
//!   the promised blocks it used are no longer promised.
//! * [`Books::returning`]: allocated blocks were freed (or growfs added new
//!   ones); [`Books::returned`] says when their transaction committed and
//!   they are back in the free pool. They are no promise and cost the pool
//!   nothing, so a large `rm` or a grow in flight never makes a writer's
//!   promise fail.
//! * [`Books::freed`]: allocated blocks were freed back into their
//!   transaction's own reservation, which may allocate them again: they
//!   are promised again.
//! * [`Books::resize`]: growfs changed the filesystem's size.
//! * [`Books::delalloc`]: delayed allocation extents of the data fork
//!   changed. Their data blocks are not counted as promised one by one: the
//!   device holds, for each extent, the thin blocks one contiguous run of
//!   its length can touch ([`ThinFs::extent_thin_blocks`]), which is all
//!   that XFS's allocator, converting it whole or in pieces of whole
//!   aligned thin blocks, lets it touch (`xfs_bmap_btalloc_thin()`).
//! * [`Books::reserve_extent`]: a transaction that allocates at most one
//!   extent of user data promises its data blocks as one contiguous extent.
//!   The device holds [`ThinFs::extent_thin_blocks`] for it, not one thin
//!   block a block. Its blocks are not counted as promised: the promise
//!   ends when its one allocation is reported ([`Books::allocated`] with
//!   `extent`) or, if it allocates nothing, with [`Books::extent_done`];
//!   XFS returns its unused blocks to the free pool without telling us.
//!
//! The device's reservation is set as an absolute value, so the books never
//! drift from the device by accumulating deltas: whatever happened, the next
//! call states the whole truth again.
//!
//! # The metadata allowance
//!
//! Some metadata is allocated without a promise first (free-list blocks,
//! per-AG btree reservations), and transactions allowed into XFS's reserve
//! pool must not fail when the pool is full. The AGs' heads take most of
//! it; the device holds an allowance of thin blocks beyond the worst case
//! for the rest, sized by the thin block size and the number of AGs whose
//! heads are short ([`ThinFs::metadata_allowance`]); provisioning such
//! metadata draws on it and every later call tops it up while the pool has
//! room.

use super::policy::{HeadRoom, ThinFs};

/// Why the device did not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceError {
    /// The pool cannot back it.
    NoSpace,
    /// Anything else, as a negative errno.
    Failed(i32),
}

/// What a provisioning call is for (`bdev_provision()`'s flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provision {
    /// Newly allocated blocks: the device charges our reservation first.
    Allocated,
    /// Allocated blocks about to be written: blocks a snapshot shares, and
    /// unmapped blocks whose earmark ended (the pool was deactivated since
    /// they were allocated), cost, out of space nobody reserved. For
    /// `written` blocks only sharing can cost, so a device that shares
    /// nothing answers at once.
    Overwrite {
        /// The blocks were written before (not unwritten extents).
        written: bool,
    },
    /// Blocks the filesystem rewrites soon after any snapshot (its log, its
    /// AG headers): charged as [`Provision::Allocated`], and provisioned
    /// again by the device at each snapshot, or the snapshot is refused.
    Pin,
}

/// A device with block reservations, as the books use it.
pub trait ReservationDevice {
    /// Sets the device's reservation to exactly `sectors`.
    fn set_reserved(&mut self, sectors: u64) -> Result<(), DeviceError>;

    /// Provisions `[start, start + len)` in sectors. Returns the sectors
    /// newly provisioned, also on failure (part of the range may be).
    fn provision(&mut self, start: u64, len: u64, how: Provision)
        -> (u64, Result<(), DeviceError>);
}

/// Whether a promise may use the metadata allowance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rsvd {
    /// No: it is refused if the pool cannot back it.
    No,
    /// It may use the allowance, and is refused beyond it.
    May,
    /// It may use the allowance, and goes ahead beyond it (a reserve-pool
    /// transaction's blocks, which XFS cannot fail).
    Must,
}

/// Why a promise was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The pool cannot back the promise.
    NoSpace,
    /// The promise does not fit in the arithmetic: a caller bug.
    Overflow,
}

/// Counters for the log at unmount, and for tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Promises refused.
    pub refused: u64,
    /// Thin blocks newly mapped by provisioning.
    pub provisioned: u64,
    /// Provisions that failed: writes there may fail. Should stay zero.
    pub provision_failures: u64,
    /// Filesystem blocks reported returned or allocated beyond what was
    /// promised: an accounting bug in the callers. Should stay zero.
    pub drift: u64,
    /// Thin blocks held until unmount for extents whose provisioning
    /// failed.
    pub unprovisioned: u64,
    /// Changes that could not be refused (a delayed extent split by a
    /// deletion in its middle) and that the device could not back at
    /// once: the metadata allowance did.
    pub overdraws: u64,
    /// Thin blocks provisioned for overwrites of blocks a snapshot shares.
    pub copies: u64,
    /// Overwrites refused: the pool could not back their copies.
    pub copies_refused: u64,
}

/// The books of one filesystem.
#[derive(Clone, Debug)]
pub struct Books {
    fs: ThinFs,
    allowance: u64,
    /// The AGs' heads, where XFS puts metadata first.
    heads: HeadRoom,
    /// Filesystem blocks promised and not yet allocated.
    promised: u64,
    /// The part of `promised` that may be file data, or metadata XFS did
    /// not say was metadata: each block of it may need a thin block of its
    /// own. The rest is metadata, which the heads' room backs first
    /// ([`ThinFs::metadata_thin_blocks`]). Blocks that leave `promised`
    /// without saying which kind they were leave the metadata first, which
    /// keeps the worst case: a block of `plain` can cost more, never less.
    plain: u64,
    /// The part of the metadata promised by reserve-pool transactions,
    /// which may use the heads' room kept for them: the first to leave,
    /// since their blocks can cost the least.
    rsvd: u64,
    /// Thin blocks held for single-extent promises not yet allocated.
    extent_cost: u64,
    /// Filesystem blocks freed (or grown) whose transaction has not yet
    /// handed them back through [`Books::returned`].
    returning: u64,
    /// Thin blocks held for the delayed allocation extents.
    delalloc_cost: u64,
    /// Delayed blocks added to or taken from the delayed extents so far
    /// (written, allocated by write-back, deleted), wrapping: what
    /// [`Books::flush_again`] compares to tell whether anything moved.
    delalloc_moved: u64,
    /// Thin blocks held for allocated extents whose provisioning failed
    /// (a fatal signal, a suspend that outlasted the retries, no memory):
    /// the device draws on its own reservation first when their writes map
    /// them, so holding these keeps the promise. We cannot tell when they
    /// are written, so they are held until unmount.
    unprovisioned: u64,
    /// Thin blocks the device holds for this filesystem, as far as we know.
    held: u64,
    /// Successful reservation sets so far: an allocation provisioned
    /// outside the books' lock compares it to tell whether `held` may have
    /// been set under it ([`Books::provisioned`]).
    sets: u64,
    stats: Stats,
}

/// An allocation to provision, taken from the books under their lock; the
/// device call may then run without it ([`Books::provisioned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The sectors to provision, or `None` if the range overflows.
    pub range: Option<(u64, u64)>,
    sets: u64,
}

impl Books {
    /// Books for `fs` with `agcount` allocation groups, each keeping
    /// `head_slack` free blocks of its head for its own btrees; nothing held
    /// yet, no head counted.
    pub fn new(fs: ThinFs, agcount: u32, head_slack: u64) -> Self {
        let heads = HeadRoom::new(agcount, head_slack);
        Self {
            fs,
            allowance: fs.metadata_allowance(heads.short(), heads.room()),
            heads,
            promised: 0,
            plain: 0,
            rsvd: 0,
            extent_cost: 0,
            returning: 0,
            delalloc_cost: 0,
            delalloc_moved: 0,
            unprovisioned: 0,
            held: 0,
            sets: 0,
            stats: Stats::default(),
        }
    }

    /// Starts the books: asks the device for the metadata allowance. A full
    /// pool is not an error (the filesystem must mount so that files can be
    /// deleted); promises are refused until the pool has room again.
    pub fn open(&mut self, dev: &mut impl ReservationDevice) -> Result<(), DeviceError> {
        match self.set(dev, self.allowance) {
            Ok(()) | Err(DeviceError::NoSpace) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Ends the books: gives everything back. Returns the filesystem blocks
    /// still promised, which should be none.
    pub fn close(&mut self, dev: &mut impl ReservationDevice) -> (u64, Result<(), DeviceError>) {
        let left = self.promised.saturating_add(self.returning);
        self.promised = 0;
        self.plain = 0;
        self.rsvd = 0;
        self.returning = 0;
        self.unprovisioned = 0;
        let unended = self.extent_cost.saturating_add(self.delalloc_cost);
        if unended != 0 {
            self.stats.drift = self.stats.drift.saturating_add(unended);
            self.extent_cost = 0;
            self.delalloc_cost = 0;
        }
        (left, self.set(dev, 0))
    }

    /// The thin blocks the device must hold while `promised` filesystem
    /// blocks are promised one by one, `plain` of them not known to be
    /// metadata, and `extent_cost` thin blocks are held for single-extent
    /// promises.
    fn target(&self, promised: u64, plain: u64, rsvd: u64, extent_cost: u64) -> Option<u64> {
        let plain = plain.min(promised);
        self.fs
            .worst_case_thin_blocks(plain)
            .checked_add(
                self.fs
                    .metadata_thin_blocks(promised - plain, rsvd, self.heads.room()),
            )?
            .checked_add(extent_cost)?
            .checked_add(self.delalloc_cost)?
            .checked_add(self.unprovisioned)?
            .checked_add(self.allowance)
    }

    /// Sets the device's reservation to `blocks` thin blocks; `held` follows
    /// only on success.
    fn set(&mut self, dev: &mut impl ReservationDevice, blocks: u64) -> Result<(), DeviceError> {
        let sectors = self
            .fs
            .thin()
            .blocks_to_sectors(blocks)
            .map_err(|_| DeviceError::NoSpace)?;
        dev.set_reserved(sectors)?;
        self.held = blocks;
        self.sets = self.sets.wrapping_add(1);
        Ok(())
    }

    /// `blocks` free filesystem blocks are to back a promise, of metadata
    /// if `meta` says so. `rsvd` marks transactions XFS lets into its
    /// reserve pool; they may use the metadata allowance when the pool is
    /// full, and are not refused even beyond it (an allowance overdraw).
    pub fn reserve(
        &mut self,
        dev: &mut impl ReservationDevice,
        blocks: u64,
        rsvd: bool,
        meta: bool,
    ) -> Result<(), Refusal> {
        if blocks == 0 {
            return Ok(());
        }
        let promised = self.promised.checked_add(blocks);
        let plain = if meta {
            Some(self.plain)
        } else {
            self.plain.checked_add(blocks)
        };
        let reserve_pool = if meta && rsvd {
            self.rsvd.checked_add(blocks)
        } else {
            Some(self.rsvd)
        };
        let (Some(promised), Some(plain), Some(reserve_pool)) = (promised, plain, reserve_pool)
        else {
            self.stats.refused += 1;
            return Err(Refusal::Overflow);
        };
        let rsvd = if rsvd { Rsvd::Must } else { Rsvd::No };
        self.grant(dev, promised, plain, reserve_pool, self.extent_cost, rsvd)?;
        self.promised = promised;
        self.plain = plain;
        self.rsvd = reserve_pool;
        Ok(())
    }

    /// `blocks` free filesystem blocks are to back one extent of user data,
    /// allocated in one piece by the transaction that promises them.
    pub fn reserve_extent(
        &mut self,
        dev: &mut impl ReservationDevice,
        blocks: u64,
        rsvd: bool,
    ) -> Result<(), Refusal> {
        if blocks == 0 {
            return Ok(());
        }
        let cost = self.fs.extent_thin_blocks(blocks);
        let Some(extent_cost) = self.extent_cost.checked_add(cost) else {
            self.stats.refused += 1;
            return Err(Refusal::Overflow);
        };
        let rsvd = if rsvd { Rsvd::May } else { Rsvd::No };
        self.grant(dev, self.promised, self.plain, self.rsvd, extent_cost, rsvd)?;
        self.extent_cost = extent_cost;
        Ok(())
    }

    /// The single-extent promise of `blocks` ends without an allocation.
    pub fn extent_done(&mut self, dev: &mut impl ReservationDevice, blocks: u64) {
        self.end_extent(blocks);
        self.settle(dev);
    }

    /// Delayed allocation extents of `before` blocks became extents of
    /// `after` blocks (0: no extent). With `reserve` more delayed blocks
    /// are promised and the change may be refused; otherwise it happens,
    /// and what the device cannot back at once comes out of the allowance.
    pub fn delalloc(
        &mut self,
        dev: &mut impl ReservationDevice,
        before: [u64; 2],
        after: [u64; 2],
        reserve: bool,
    ) -> Result<(), Refusal> {
        let cost = |lens: [u64; 2]| {
            self.fs
                .extent_thin_blocks(lens[0])
                .saturating_add(self.fs.extent_thin_blocks(lens[1]))
        };
        let (old, new) = (cost(before), cost(after));
        let blocks = |lens: [u64; 2]| lens[0].saturating_add(lens[1]);
        let moved = blocks(before).abs_diff(blocks(after));
        if new <= old {
            self.delalloc_moved = self.delalloc_moved.wrapping_add(moved);
            match self.delalloc_cost.checked_sub(old - new) {
                Some(left) => self.delalloc_cost = left,
                None => {
                    let over = old - new - self.delalloc_cost;
                    self.stats.drift = self.stats.drift.saturating_add(over);
                    self.delalloc_cost = 0;
                }
            }
            self.settle(dev);
            return Ok(());
        }
        let Some(total) = self.delalloc_cost.checked_add(new - old) else {
            self.stats.refused += 1;
            return Err(Refusal::Overflow);
        };
        let previous = self.delalloc_cost;
        self.delalloc_cost = total;
        if reserve {
            if let Err(refusal) = self.grant(
                dev,
                self.promised,
                self.plain,
                self.rsvd,
                self.extent_cost,
                Rsvd::No,
            ) {
                self.delalloc_cost = previous;
                return Err(refusal);
            }
            self.delalloc_moved = self.delalloc_moved.wrapping_add(moved);
            return Ok(());
        }
        self.delalloc_moved = self.delalloc_moved.wrapping_add(moved);
        self.settle(dev);
        if self
            .target(self.promised, self.plain, self.rsvd, self.extent_cost)
            .is_some_and(|need| need > self.held)
        {
            self.stats.overdraws = self.stats.overdraws.saturating_add(1);
        }
        Ok(())
    }

    /// Stops holding thin blocks for a single-extent promise of `blocks`.
    fn end_extent(&mut self, blocks: u64) {
        let cost = self.fs.extent_thin_blocks(blocks);
        match self.extent_cost.checked_sub(cost) {
            Some(left) => self.extent_cost = left,
            None => {
                self.stats.drift = self.stats.drift.saturating_add(cost - self.extent_cost);
                self.extent_cost = 0;
            }
        }
    }

    /// Makes the device hold enough for `promised` one-by-one promises and
    /// `extent_cost` for single-extent ones, or says why it cannot.
    fn grant(
        &mut self,
        dev: &mut impl ReservationDevice,
        promised: u64,
        plain: u64,
        reserve_pool: u64,
        extent_cost: u64,
        rsvd: Rsvd,
    ) -> Result<(), Refusal> {
        let Some(need) = self.target(promised, plain, reserve_pool, extent_cost) else {
            self.stats.refused += 1;
            return Err(Refusal::Overflow);
        };
        if need <= self.held
            || self
                .set(dev, need.saturating_add(self.fs.grow_headroom()))
                .is_ok()
            || self.set(dev, need).is_ok()
            || (rsvd != Rsvd::No && need.saturating_sub(self.allowance) <= self.held)
        {
            return Ok(());
        }
        if rsvd == Rsvd::Must {
            // XFS cannot fail a reserve-pool transaction without losing
            // data (an unwritten extent conversion at I/O completion) or
            // leaving an inode on the unlinked list: it goes ahead on what
            // the heads and the allowance hold, and the overdraw is
            // counted.
            self.stats.overdraws = self.stats.overdraws.saturating_add(1);
            return Ok(());
        }
        self.stats.refused += 1;
        Err(Refusal::NoSpace)
    }

    /// `blocks` promised filesystem blocks return to the free pool.
    pub fn unreserve(&mut self, dev: &mut impl ReservationDevice, blocks: u64) {
        self.forget(blocks);
        self.settle(dev);
    }

    /// growfs made the filesystem `fs_sectors` long with `added` more
    /// allocation groups (their heads not counted yet): the cap on what
    /// promises can map, and the metadata allowance, follow.
    pub fn resize(&mut self, dev: &mut impl ReservationDevice, fs: ThinFs, added: u32) {
        self.fs = fs;
        self.heads.grow(added);
        self.allowance = fs.metadata_allowance(self.heads.short(), self.heads.room());
        self.settle(dev);
    }

    /// AG `agno`'s head went from `old` free blocks to `new` (XFS reports
    /// them rounded down, so never more than it has). Metadata allocated
    /// there cost nothing; unpromised metadata that took head blocks may
    /// leave the promises needing more than is held, which cannot be
    /// refused: the device is asked, and an allowance overdraw counted if
    /// it cannot.
    pub fn head(&mut self, dev: &mut impl ReservationDevice, agno: u32, old: u32, new: u32) {
        self.heads.replace(agno, old, new);
        self.allowance = self
            .fs
            .metadata_allowance(self.heads.short(), self.heads.room());
        self.settle(dev);
        if new < old
            && self
                .target(self.promised, self.plain, self.rsvd, self.extent_cost)
                .is_some_and(|need| need > self.held)
        {
            self.stats.overdraws = self.stats.overdraws.saturating_add(1);
        }
    }

    /// `blocks` filesystem blocks from sector `daddr` were allocated,
    /// `from_promise` of them out of promised blocks; `extent` is nonzero
    /// when this is the one allocation of a single-extent promise of
    /// `extent` blocks ([`Books::reserve_extent`]), which ends with it.
    pub fn allocated(
        &mut self,
        dev: &mut impl ReservationDevice,
        daddr: u64,
        blocks: u64,
        from_promise: u64,
        extent: u64,
    ) -> Result<(), DeviceError> {
        let allocation = self.allocation(daddr, blocks);
        let first = allocation
            .range
            .map(|(start, len)| dev.provision(start, len, Provision::Allocated));
        self.provisioned(dev, allocation, first, blocks, from_promise, extent)
    }

    /// The first half of [`Books::allocated`]: what to provision for
    /// `blocks` filesystem blocks from sector `daddr`. The caller makes the
    /// device call, `provision(start, len, Provision::Allocated)`, and hands
    /// its answer to [`Books::provisioned`]; between the two it need not
    /// hold the books' lock, so that promises do not wait for the device.
    pub fn allocation(&self, daddr: u64, blocks: u64) -> Allocation {
        Allocation {
            range: self.fs.extent_sectors(daddr, blocks).ok(),
            sets: self.sets,
        }
    }

    /// The second half of [`Books::allocated`]: `first` is the device's
    /// answer to provisioning `allocation.range` (`None` if it had none).
    ///
    /// The device charged what it newly provisioned to our reservation,
    /// and `held` follows. If a reservation was set while the device call
    /// ran, that absolute value may have been stated before or after the
    /// charge, so `held` may now count the charge twice: too low, never too
    /// high (a set only follows the books, which still counted this
    /// allocation's promise). The reservation is then stated again, which
    /// makes `held` exact.
    pub fn provisioned(
        &mut self,
        dev: &mut impl ReservationDevice,
        allocation: Allocation,
        first: Option<(u64, Result<(), DeviceError>)>,
        blocks: u64,
        from_promise: u64,
        extent: u64,
    ) -> Result<(), DeviceError> {
        let raced = allocation.sets != self.sets;
        let result = match (allocation.range, first) {
            (Some((start, len)), Some((sectors, first))) => {
                let mut mapped = self.account(Provision::Allocated, sectors);
                let mut result = first;
                if result == Err(DeviceError::NoSpace) {
                    // At its limit the pool may have spent part of our
                    // reservation on copies a snapshot forced: state the
                    // whole need again and retry once.
                    let need = self.need();
                    if self.set(dev, need).is_ok() {
                        let (more, again) = self.provision(dev, start, len, Provision::Allocated);
                        mapped = mapped.saturating_add(more);
                        result = again;
                    }
                }
                if result.is_err() {
                    // What was not provisioned stays backed by our
                    // reservation: at most every block the range touches.
                    let touched = self
                        .fs
                        .thin()
                        .covering_blocks(start, len)
                        .map_or(u64::MAX, |r| r.count);
                    let unbacked = touched.saturating_sub(mapped);
                    self.unprovisioned = self.unprovisioned.saturating_add(unbacked);
                    self.stats.unprovisioned = self.stats.unprovisioned.saturating_add(unbacked);
                }
                result
            }
            _ => Err(DeviceError::Failed(OVERFLOW_ERRNO)),
        };
        if result.is_err() {
            self.stats.provision_failures += 1;
        }
        if extent != 0 {
            self.end_extent(extent);
        }
        self.forget(from_promise.min(blocks));
        if from_promise > blocks {
            self.stats.drift = self.stats.drift.saturating_add(from_promise - blocks);
        }
        if raced {
            self.resync(dev);
        } else {
            self.settle(dev);
        }
        result
    }

    /// States the reservation again after `held` may have come out too low:
    /// the target, or if the pool cannot back that, what `held` says, which
    /// is no more than the device holds and so always succeeds.
    fn resync(&mut self, dev: &mut impl ReservationDevice) {
        let Some(need) = self.target(self.promised, self.plain, self.rsvd, self.extent_cost) else {
            return;
        };
        if self.set(dev, need).is_err() {
            let _ = self.set(dev, self.held);
        }
    }

    /// Provisions `[start, start + len)` for `how`; returns the thin blocks
    /// newly provisioned. The device charges newly allocated and pinned
    /// ranges to our reservation first, so `held` follows.
    fn provision(
        &mut self,
        dev: &mut impl ReservationDevice,
        start: u64,
        len: u64,
        how: Provision,
    ) -> (u64, Result<(), DeviceError>) {
        let (sectors, result) = dev.provision(start, len, how);
        (self.account(how, sectors), result)
    }

    /// The device newly provisioned `sectors` for `how`: returns them in
    /// thin blocks, and `held` follows.
    fn account(&mut self, how: Provision, sectors: u64) -> u64 {
        let blocks = self
            .fs
            .thin()
            .covering_blocks(0, sectors)
            .map_or(u64::MAX, |r| r.count);
        match how {
            Provision::Allocated | Provision::Pin => {
                self.held = self.held.saturating_sub(blocks);
                self.stats.provisioned = self.stats.provisioned.saturating_add(blocks);
            }
            Provision::Overwrite { .. } => {
                self.stats.copies = self.stats.copies.saturating_add(blocks);
            }
        }
        blocks
    }

    /// Pins `[start, start + len)` (sectors): metadata the filesystem
    /// rewrites soon after any snapshot. Provisioned now, and by the device
    /// again at each snapshot.
    pub fn pin(
        &mut self,
        dev: &mut impl ReservationDevice,
        start: u64,
        len: u64,
    ) -> Result<(), DeviceError> {
        let (_, result) = self.provision(dev, start, len, Provision::Pin);
        self.settle(dev);
        result
    }

    /// `[start, start + len)` (sectors), allocated (and `written`
    /// before), is about to be written: blocks a snapshot shares, and
    /// blocks whose earmark ended, need new pool blocks, which the device
    /// earmarks out of space nobody reserved. If it cannot, the headroom we
    /// hold beyond our need goes back first and the call is retried once;
    /// then the write is refused.
    pub fn overwrite(
        &mut self,
        dev: &mut impl ReservationDevice,
        start: u64,
        len: u64,
        written: bool,
    ) -> Result<(), Refusal> {
        let how = Provision::Overwrite { written };
        let (_, mut result) = self.provision(dev, start, len, how);
        if result == Err(DeviceError::NoSpace) {
            let need = self.need();
            if need < self.held && self.set(dev, need).is_ok() {
                result = self.provision(dev, start, len, how).1;
            }
        }
        match result {
            Ok(()) => Ok(()),
            Err(_) => {
                self.stats.copies_refused = self.stats.copies_refused.saturating_add(1);
                Err(Refusal::NoSpace)
            }
        }
    }

    /// `sectors` were provisioned for an overwrite without the books: the
    /// kernel tries an overwrite first without taking the mount's lock.
    pub fn copied(&mut self, sectors: u64) {
        let blocks = self
            .fs
            .thin()
            .covering_blocks(0, sectors)
            .map_or(u64::MAX, |r| r.count);
        self.stats.copies = self.stats.copies.saturating_add(blocks);
    }

    /// `blocks` allocated filesystem blocks were freed into their
    /// transaction's reservation: promised again, as they may be allocated
    /// again without asking. This promise cannot be refused; the device is
    /// asked to back it, and the metadata allowance does while it cannot.
    pub fn freed(&mut self, dev: &mut impl ReservationDevice, blocks: u64) {
        match self.promised.checked_add(blocks) {
            Some(promised) => self.promised = promised,
            None => {
                self.stats.drift = self.stats.drift.saturating_add(blocks);
                self.promised = u64::MAX;
            }
        }
        // They may be allocated for anything: counted as plain.
        self.plain = self
            .plain
            .saturating_add(blocks)
            .min(self.promised - self.rsvd.min(self.promised));
        self.settle(dev);
    }

    /// `blocks` filesystem blocks were freed or added by growfs; they return
    /// through [`Books::returned`] when their transaction commits.
    pub fn returning(&mut self, blocks: u64) {
        match self.returning.checked_add(blocks) {
            Some(returning) => self.returning = returning,
            None => {
                self.stats.drift = self.stats.drift.saturating_add(blocks);
                self.returning = u64::MAX;
            }
        }
    }

    /// `blocks` reported by [`Books::returning`] are back in the free pool.
    pub fn returned(&mut self, blocks: u64) {
        match self.returning.checked_sub(blocks) {
            Some(returning) => self.returning = returning,
            None => {
                self.stats.drift = self.stats.drift.saturating_add(blocks - self.returning);
                self.returning = 0;
            }
        }
    }

    /// Stops counting `blocks` as promised: reserve-pool metadata first,
    /// then other metadata, then plain promises, the order in which their
    /// blocks may cost more ([`Books::plain`], [`Books::rsvd`]).
    fn forget(&mut self, blocks: u64) {
        match self.promised.checked_sub(blocks) {
            Some(promised) => self.promised = promised,
            None => {
                self.stats.drift = self.stats.drift.saturating_add(blocks - self.promised);
                self.promised = 0;
            }
        }
        self.rsvd = self.rsvd.saturating_sub(blocks);
        self.plain = self.plain.min(self.promised - self.rsvd.min(self.promised));
    }

    /// Brings the device's reservation back towards the target: tops up
    /// what provisioning drew on, gives back what is no longer needed.
    /// Failures leave the books as they were; the next call tries again.
    fn settle(&mut self, dev: &mut impl ReservationDevice) {
        let Some(need) = self.target(self.promised, self.plain, self.rsvd, self.extent_cost) else {
            return;
        };
        let headroom = self.fs.grow_headroom();
        if self.held < need {
            let _ = self.set(dev, need);
        } else if self.held - need > headroom.saturating_mul(2) {
            let _ = self.set(dev, need.saturating_add(headroom));
        }
    }

    /// A buffered write was refused. XFS writes back the filesystem's
    /// dirty data and retries once, and then again as long as this says
    /// so: the delayed extents changed since the previous refusal of this
    /// write (`mark` keeps what was seen, 0 before the first). A delayed
    /// extent holds all that its blocks could touch, usually far more than
    /// write-back allocates, so a change means space may have come back:
    /// write-back allocated delayed blocks, or another writer added some,
    /// which the pool backed and the next write-back allocates. Delayed
    /// extents that stay as they are (nothing is written, nothing is left
    /// to write back) end the retries and the refusal stands.
    pub fn flush_again(&self, mark: &mut u64) -> bool {
        let seen = self.delalloc_moved.wrapping_add(1);
        let moved = *mark != 0 && *mark != seen;
        *mark = seen;
        moved
    }

    /// Filesystem blocks promised and not yet allocated.
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Filesystem blocks freed whose transaction has not handed them back.
    pub fn returning_blocks(&self) -> u64 {
        self.returning
    }

    /// Thin blocks the device should hold now: the worst case of the
    /// promises, what single-extent promises and delayed extents can touch,
    /// and the metadata allowance.
    pub fn need(&self) -> u64 {
        self.target(self.promised, self.plain, self.rsvd, self.extent_cost)
            .unwrap_or(u64::MAX)
    }

    /// The AGs' heads as the books count them.
    pub fn heads(&self) -> HeadRoom {
        self.heads
    }

    /// Thin blocks held for the delayed allocation extents.
    pub fn delalloc_cost(&self) -> u64 {
        self.delalloc_cost
    }

    /// Thin blocks held for single-extent promises not yet allocated.
    pub fn extent_cost(&self) -> u64 {
        self.extent_cost
    }

    /// Thin blocks the device holds for this filesystem, as far as we know.
    pub fn held(&self) -> u64 {
        self.held
    }

    /// The thin blocks held beyond the worst case for promises.
    pub fn allowance(&self) -> u64 {
        self.allowance
    }

    /// Counters for logs and tests.
    pub fn stats(&self) -> Stats {
        self.stats
    }
}

/// `-EOVERFLOW`, for extents beyond the arithmetic.
const OVERFLOW_ERRNO: i32 = -75;
