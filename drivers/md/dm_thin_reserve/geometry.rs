// SPDX-License-Identifier: GPL-2.0

//! Thin-pool block geometry: conversions between 512-byte sectors and
//! thin-pool data blocks.
//!
//! This file is `no_std` and free of kernel dependencies: it is compiled into
//! `dm_thin_reserve.ko` and, unchanged, into the host test crate under
//! `tools/testing/thin_reserve_host`, where it is property-tested.
//!
//! All arithmetic is checked. The block interface speaks sectors (`u64`);
//! dm-thin allocates whole data blocks, so every conversion that could lose
//! precision either rejects its input or says in its name which way it rounds.
//! The block size is a `NonZeroU64`, so no division here has a panic path.

use core::num::NonZeroU64;

/// Why a geometry calculation was refused. The kernel module maps these to
/// errnos (see [`GeometryError::errno_name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeometryError {
    /// The value is not a whole number of blocks, or not a valid block size
    /// (`-EINVAL`).
    NotAligned,
    /// The result does not fit in 64 bits (`-EOVERFLOW`).
    Overflow,
}

impl GeometryError {
    /// The errno name the kernel side returns for this error; for messages.
    pub const fn errno_name(self) -> &'static str {
        match self {
            GeometryError::NotAligned => "EINVAL",
            GeometryError::Overflow => "EOVERFLOW",
        }
    }
}

/// dm-thin's smallest data block: 64 KiB (`DATA_DEV_BLOCK_SIZE_MIN_SECTORS`).
pub const MIN_BLOCK_SECTORS: u64 = 128;
/// dm-thin's largest data block: 1 GiB (`DATA_DEV_BLOCK_SIZE_MAX_SECTORS`).
pub const MAX_BLOCK_SECTORS: u64 = 2_097_152;

/// The data block size of one thin pool, in sectors.
///
/// dm-thin accepts any multiple of 64 KiB from 64 KiB to 1 GiB (not only
/// powers of two), so conversions divide rather than shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSize {
    sectors: NonZeroU64,
}

/// A range of whole thin blocks: `count` blocks from block `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRange {
    /// First block of the range.
    pub first: u64,
    /// Number of blocks; zero for an empty range.
    pub count: u64,
}

impl BlockSize {
    /// Validates a pool's block size the way dm-thin's constructor does.
    pub fn new(sectors: u64) -> Result<Self, GeometryError> {
        if !(MIN_BLOCK_SECTORS..=MAX_BLOCK_SECTORS).contains(&sectors)
            || sectors % MIN_BLOCK_SECTORS != 0
        {
            return Err(GeometryError::NotAligned);
        }
        let sectors = NonZeroU64::new(sectors).ok_or(GeometryError::NotAligned)?;
        Ok(Self { sectors })
    }

    /// The block size in sectors.
    pub fn sectors(self) -> u64 {
        self.sectors.get()
    }

    /// Converts a sector count that must be a whole number of blocks, as the
    /// reservation calls require: a caller that asks for part of a block has
    /// a bug, and silently rounding would hide it.
    pub fn sectors_to_blocks(self, sectors: u64) -> Result<u64, GeometryError> {
        if sectors % self.sectors != 0 {
            return Err(GeometryError::NotAligned);
        }
        Ok(sectors / self.sectors)
    }

    /// Converts blocks to sectors, refusing results beyond `u64`.
    pub fn blocks_to_sectors(self, blocks: u64) -> Result<u64, GeometryError> {
        blocks
            .checked_mul(self.sectors.get())
            .ok_or(GeometryError::Overflow)
    }

    /// The blocks a sector range touches: start rounded down and end rounded
    /// up to block boundaries. Provisioning maps whole blocks, so this is the
    /// set of blocks that a provision of `[start, start + len)` may map.
    pub fn covering_blocks(self, start: u64, len: u64) -> Result<BlockRange, GeometryError> {
        let end = start.checked_add(len).ok_or(GeometryError::Overflow)?;
        let first = start / self.sectors;
        // Round `end` up without computing `end + sectors - 1`, which could
        // overflow for ranges that end near `u64::MAX`.
        let last_exclusive = end / self.sectors + u64::from(end % self.sectors != 0);
        Ok(BlockRange {
            first,
            count: last_exclusive - first,
        })
    }

    /// The blocks a sector range holds whole: start rounded up and end
    /// rounded down to block boundaries (empty if it holds none). Only
    /// these can be given up for the range alone: a block it covers in
    /// part is shared with sectors outside it.
    pub fn contained_blocks(self, start: u64, len: u64) -> Result<BlockRange, GeometryError> {
        let end = start.checked_add(len).ok_or(GeometryError::Overflow)?;
        // Round `start` up without computing `start + sectors - 1`.
        let first = start / self.sectors + u64::from(start % self.sectors != 0);
        let last_exclusive = end / self.sectors;
        Ok(BlockRange {
            first,
            count: last_exclusive.saturating_sub(first),
        })
    }
}
