// SPDX-License-Identifier: GPL-2.0

//! How many thin-pool blocks a filesystem reservation needs: the policy of
//! the xfs_thin shim, `no_std` and free of kernel dependencies, so that it is
//! property-tested on the host and a precise policy can replace it later.
//!
//! # The worst-case model (the 2016 RFC's)
//!
//! XFS reserves filesystem blocks before it knows where they will land. Any
//! unallocated filesystem block may end up in a thin block that is not
//! mapped yet, so the safe promise is one whole thin block per filesystem
//! block, capped by the number of thin blocks the filesystem could ever map
//! (no write can map more than the whole device). With 4 KiB filesystem
//! blocks on 64 KiB thin blocks this reserves 16 times what sequential
//! writes use; it is correct, not precise, and the reason ENOSPC comes early
//! until allocation-aware accounting replaces it.
//!
//! Where XFS knows more, it says so: a transaction that allocates at most
//! one extent of user data (fallocate, direct I/O) promises its data blocks
//! as one contiguous extent, which touches far fewer thin blocks
//! ([`ThinFs::extent_thin_blocks`]).
//!
//! The model assumes the filesystem starts at sector 0 of the thin device and
//! that filesystem blocks are no larger than thin blocks (XFS blocks are at
//! most 64 KiB, dm-thin blocks at least 64 KiB), so a filesystem block never
//! straddles two thin blocks.

use super::geometry::{BlockSize, GeometryError};

/// A filesystem on a thin device, as far as reservations are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThinFs {
    thin: BlockSize,
    fs_block_sectors: u64,
    device_thin_blocks: u64,
}

impl ThinFs {
    /// Describes a filesystem with `fs_block_sectors`-sector blocks on a thin
    /// device of `device_sectors` with `thin` blocks. Refuses filesystem
    /// blocks that are empty, larger than a thin block or do not divide it.
    pub fn new(
        thin: BlockSize,
        fs_block_sectors: u64,
        device_sectors: u64,
    ) -> Result<Self, GeometryError> {
        if fs_block_sectors == 0
            || fs_block_sectors > thin.sectors()
            || thin.sectors() % fs_block_sectors != 0
        {
            return Err(GeometryError::NotAligned);
        }
        // Whole thin blocks the device covers, a partial last one included.
        let covering = thin.covering_blocks(0, device_sectors)?;
        Ok(Self {
            thin,
            fs_block_sectors,
            device_thin_blocks: covering.count,
        })
    }

    /// The thin-pool block size.
    pub fn thin(&self) -> BlockSize {
        self.thin
    }

    /// Thin blocks to hold in reserve while `fs_blocks` filesystem blocks
    /// are reserved and not yet allocated: one each, at most the device.
    pub fn worst_case_thin_blocks(&self, fs_blocks: u64) -> u64 {
        fs_blocks.min(self.device_thin_blocks)
    }

    /// Thin blocks to hold while `fs_blocks` filesystem blocks are promised
    /// to one contiguous extent, allocated in one piece (XFS's single-extent
    /// transactions: fallocate and direct I/O allocate with `nimaps == 1`).
    /// A run of `n` blocks that starts at the last filesystem block of a
    /// thin block touches `1 + ceil((n - 1) / k)` thin blocks, `k`
    /// filesystem blocks to a thin block; no start touches more, and no
    /// shorter run of the same extent touches more. Capped at the device.
    pub fn extent_thin_blocks(&self, fs_blocks: u64) -> u64 {
        let Some(rest) = fs_blocks.checked_sub(1) else {
            return 0;
        };
        // `new` refuses filesystem blocks larger than a thin one, so the
        // divisions cannot fail; if they did, the worst case still holds.
        let per_thin = self
            .thin
            .sectors()
            .checked_div(self.fs_block_sectors)
            .unwrap_or(0);
        let (Some(whole), Some(part)) = (rest.checked_div(per_thin), rest.checked_rem(per_thin))
        else {
            return self.worst_case_thin_blocks(fs_blocks);
        };
        whole
            .saturating_add(u64::from(part != 0))
            .saturating_add(1)
            .min(self.device_thin_blocks)
    }

    /// The same in sectors, as `bdev_set_reserved_space()` takes it.
    pub fn worst_case_sectors(&self, fs_blocks: u64) -> Result<u64, GeometryError> {
        self.thin
            .blocks_to_sectors(self.worst_case_thin_blocks(fs_blocks))
    }

    /// The sector range to provision when `blocks` filesystem blocks from
    /// sector `daddr` are allocated: `(start sector, length in sectors)`.
    pub fn extent_sectors(&self, daddr: u64, blocks: u64) -> Result<(u64, u64), GeometryError> {
        let len = blocks
            .checked_mul(self.fs_block_sectors)
            .ok_or(GeometryError::Overflow)?;
        daddr.checked_add(len).ok_or(GeometryError::Overflow)?;
        Ok((daddr, len))
    }

    /// The sectors whose provisioning ends when `blocks` filesystem blocks
    /// from sector `daddr` are freed and become part of the free extent of
    /// `free_blocks` from `free_daddr`: the thin blocks the freed blocks
    /// touch that lie wholly in free space now, `(start, len)`, or `None`.
    /// A thin block that also holds an allocated block stays provisioned
    /// for it, so the blocks at either end of the freed range qualify only
    /// if the free extent covers them whole. A freed range outside its free
    /// extent (a caller bug) releases nothing.
    pub fn released_sectors(
        &self,
        daddr: u64,
        blocks: u64,
        free_daddr: u64,
        free_blocks: u64,
    ) -> Option<(u64, u64)> {
        let (start, len) = self.extent_sectors(daddr, blocks).ok()?;
        let (free_start, free_len) = self.extent_sectors(free_daddr, free_blocks).ok()?;
        if len == 0 || start < free_start || start + len > free_start + free_len {
            return None;
        }
        let touched = self.thin.covering_blocks(start, len).ok()?;
        let whole = self.thin.contained_blocks(free_start, free_len).ok()?;
        let first = touched.first.max(whole.first);
        let end = (touched.first + touched.count).min(whole.first + whole.count);
        if first >= end {
            return None;
        }
        let sectors = self.thin.sectors();
        Some((
            first.checked_mul(sectors)?,
            (end - first).checked_mul(sectors)?,
        ))
    }

    /// Thin blocks that `meta` filesystem blocks promised one by one for
    /// metadata can need, `rsvd` of them by reserve-pool transactions, when
    /// the AGs' heads have `room` free blocks beyond their slack
    /// ([`HeadRoom`]).
    ///
    /// XFS allocates metadata in the head of an AG first, its first pool
    /// block, which the AG headers keep provisioned: metadata there needs no
    /// new pool blocks. Metadata that may live in any AG goes to a head with
    /// more than the slack free while one has it, the last AG's last, and
    /// every such allocation takes one of those blocks: even a transaction
    /// that may lock no AG but the last finds `room` of them there.
    /// Metadata nobody promised (free-list refills, per-AG btrees) also
    /// takes head blocks, and may take them from that room:
    /// [`UNPROMISED_HEAD_BLOCKS`] of it are left to it. Of the rest, up to
    /// [`RESERVE_POOL_HEAD_BLOCKS`] are kept for reserve-pool promises
    /// (unwritten extent conversion must not fail on a full pool), and the
    /// others back every metadata promise; so promised metadata within
    /// those two shares costs nothing, and only the rest may each need a
    /// thin block of its own. (An AG's own btrees use its head, slack
    /// included, and beyond it the per-AG allowance.)
    pub fn metadata_thin_blocks(&self, meta: u64, rsvd: u64, room: u64) -> u64 {
        let room = room.saturating_sub(UNPROMISED_HEAD_BLOCKS);
        let band = room.min(RESERVE_POOL_HEAD_BLOCKS);
        let exempt = rsvd.min(meta).min(band);
        let rest = meta - exempt;
        self.worst_case_thin_blocks(rest.saturating_sub(room - band))
    }

    /// Thin blocks held beyond the worst case for the filesystem's promises:
    /// for metadata XFS allocates without promising blocks first (free-list
    /// blocks btrees take, per-AG btree reservations) and reserve-pool
    /// transactions near a full pool, with `short` of the filesystem's AGs
    /// whose heads have no more than their slack free, and `room` free
    /// blocks beyond the slack in the heads ([`HeadRoom::room`]).
    ///
    /// An AG's own metadata goes to its head first, which costs the pool
    /// nothing; an AG whose head is short gets
    /// [`METADATA_ALLOWANCE_PER_AG_SECTORS`] of thin blocks, at least one,
    /// for what its metadata takes beyond the head while the pool cannot top
    /// the allowance up. Reserve-pool transactions (unwritten extent
    /// conversion, which must not fail) may draw on the allowance when the
    /// pool is full: every filesystem gets [`METADATA_ALLOWANCE_BASE_SECTORS`]
    /// for them, at least a thin block, and at least a thin block for each
    /// of the [`RESERVE_POOL_HEAD_BLOCKS`] blocks of their promises that the
    /// heads have no room for ([`ThinFs::metadata_thin_blocks`]).
    pub fn metadata_allowance(&self, short: u32, room: u64) -> u64 {
        let per_ag = METADATA_ALLOWANCE_PER_AG_SECTORS
            .div_ceil(self.thin.sectors())
            .max(1);
        let band = room
            .saturating_sub(UNPROMISED_HEAD_BLOCKS)
            .min(RESERVE_POOL_HEAD_BLOCKS);
        let base = METADATA_ALLOWANCE_BASE_SECTORS
            .div_ceil(self.thin.sectors())
            .max(1)
            .max(RESERVE_POOL_HEAD_BLOCKS - band);
        base.saturating_add(per_ag.saturating_mul(u64::from(short)))
    }

    /// Thin blocks to ask for beyond the need when the reservation must
    /// grow, so that a stream of small promises does not call the device
    /// for each one: [`GROW_HEADROOM`]. It never makes ENOSPC come earlier:
    /// a refusal is retried for the exact need, and when that fails too the
    /// pool has no unreserved block left and the books hold less beyond
    /// their need than the refused promise itself (they give back what
    /// they hold beyond twice the headroom as promises end).
    pub fn grow_headroom(&self) -> u64 {
        GROW_HEADROOM
    }
}

/// Sectors of metadata allowance every filesystem gets (1 MiB: sixteen
/// 64 KiB thin blocks, dm-thin's smallest), rounded up to whole thin blocks.
pub const METADATA_ALLOWANCE_BASE_SECTORS: u64 = 2048;

/// Sectors of metadata allowance per allocation group whose head is short
/// (256 KiB: four 64 KiB thin blocks), rounded up to whole thin blocks.
pub const METADATA_ALLOWANCE_PER_AG_SECTORS: u64 = 512;

/// Thin blocks asked for beyond the need when the reservation grows.
pub const GROW_HEADROOM: u64 = 16;

/// Head blocks beyond the slack that promised metadata leaves to metadata
/// nobody promised, which XFS allocates while the pool may be full: the
/// free-list refills and per-AG btree blocks of the transactions running
/// then (frees of files and the end of writes already promised), which
/// take a few blocks each. Should more be taken while the pool cannot top
/// up, the books count an allowance overdraw.
pub const UNPROMISED_HEAD_BLOCKS: u64 = 16;

/// Head blocks kept for the metadata promises of reserve-pool transactions
/// beyond every other promise's: an unwritten extent conversion promises
/// two bmbt splits, about ten blocks, and must not be refused on a full
/// pool (its data would read back as zeros). Where the heads are too small
/// for them, the allowance holds a thin block for each block short.
pub const RESERVE_POOL_HEAD_BLOCKS: u64 = 16;

/// The free blocks of the AGs' heads, as the books use them: the room
/// beyond the slack of the last AG's head, and the AGs whose heads have no
/// more than their slack.
///
/// Metadata that may live in any AG goes to the head of the AG it aims at,
/// or else to the first head with room from the lowest AG its transaction
/// may still lock; the last AG's head is taken last. A transaction that
/// holds the last AG's AGF can use no other head, so the room of that head
/// is what every promise of metadata can count on, and what the books
/// count. XFS reports each AG's head as it changes; the caller keeps the
/// last report of each and hands old and new here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadRoom {
    slack: u64,
    agcount: u32,
    last_free: u32,
    short: u32,
}

impl HeadRoom {
    /// `agcount` AGs whose heads are not counted yet (no room, all short),
    /// each keeping `slack` free blocks for its own btrees.
    pub fn new(agcount: u32, slack: u64) -> Self {
        Self {
            slack,
            agcount,
            last_free: 0,
            short: agcount,
        }
    }

    /// AG `agno`'s head went from `old` free blocks to `new`.
    pub fn replace(&mut self, agno: u32, old: u32, new: u32) {
        if agno >= self.agcount {
            return;
        }
        let short = |free: u32| u32::from(u64::from(free) <= self.slack);
        self.short = self
            .short
            .saturating_sub(short(old))
            .saturating_add(short(new));
        if agno == self.agcount - 1 {
            self.last_free = new;
        }
    }

    /// `added` AGs, not counted yet, joined the filesystem (growfs): the
    /// last AG is a new one.
    pub fn grow(&mut self, added: u32) {
        if added == 0 {
            return;
        }
        self.agcount = self.agcount.saturating_add(added);
        self.short = self.short.saturating_add(added);
        self.last_free = 0;
    }

    /// Free blocks of the last AG's head beyond its slack.
    pub fn room(&self) -> u64 {
        u64::from(self.last_free).saturating_sub(self.slack)
    }

    /// AGs whose heads have no more than their slack free.
    pub fn short(&self) -> u32 {
        self.short
    }
}
