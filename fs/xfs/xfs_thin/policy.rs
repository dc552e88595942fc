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

    /// Thin blocks held beyond the worst case for the filesystem's promises:
    /// metadata XFS allocates without promising blocks first (free-list
    /// blocks btrees take, per-AG btree reservations) and reserve-pool
    /// transactions near a full pool.
    ///
    /// Reserve-pool promises are counted a thin block per filesystem block,
    /// like every one-by-one promise, so their part is a number of thin
    /// blocks whatever their size. The per-AG part is for the blocks an
    /// allocation group's own metadata takes while the pool cannot top the
    /// allowance up; XFS keeps them together (free-list refills take the
    /// smallest free extents, btree blocks are allocated near their
    /// neighbours), so a larger thin block holds more of them: each AG gets
    /// [`METADATA_ALLOWANCE_PER_AG_SECTORS`] of thin blocks, and at least one
    /// whole thin block.
    pub fn metadata_allowance(&self, agcount: u32) -> u64 {
        let per_ag = METADATA_ALLOWANCE_PER_AG_SECTORS
            .div_ceil(self.thin.sectors())
            .max(1);
        METADATA_ALLOWANCE_BASE.saturating_add(per_ag.saturating_mul(u64::from(agcount)))
    }
}

/// Thin blocks of metadata allowance every filesystem gets.
pub const METADATA_ALLOWANCE_BASE: u64 = 16;

/// Sectors of metadata allowance per allocation group (256 KiB: four
/// 64 KiB thin blocks, dm-thin's smallest), rounded up to whole thin
/// blocks.
pub const METADATA_ALLOWANCE_PER_AG_SECTORS: u64 = 512;
