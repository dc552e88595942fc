// SPDX-License-Identifier: GPL-2.0

//! A model thin pool for the books' tests: one thin device alone in a pool.

use std::collections::BTreeSet;
use thin_reserve_host::books::{DeviceError, Provision, ReservationDevice};

/// One thin device alone in a pool of `capacity` thin blocks.
#[derive(Debug)]
pub struct ModelPool {
    pub thin_sectors: u64,
    pub capacity: u64,
    pub mapped: BTreeSet<u64>,
    /// Our reservation, in thin blocks.
    pub reserved: u64,
    /// The next provision fails after mapping nothing.
    pub fail_next_provision: bool,
    /// Blocks a snapshot shares: a write must copy them.
    pub shared: BTreeSet<u64>,
    /// Blocks provisioned for a copy (earmarked out of unreserved space).
    pub copies: BTreeSet<u64>,
}

impl ModelPool {
    /// A pool of `capacity` thin blocks of `thin_sectors`, nothing mapped.
    pub fn new(thin_sectors: u64, capacity: u64) -> Self {
        Self {
            thin_sectors,
            capacity,
            mapped: BTreeSet::new(),
            reserved: 0,
            fail_next_provision: false,
            shared: BTreeSet::new(),
            copies: BTreeSet::new(),
        }
    }

    pub fn free(&self) -> u64 {
        self.capacity - self.mapped.len() as u64 - self.copies.len() as u64
    }

    /// Free blocks that neither our reservation nor a copy holds.
    fn unreserved(&self) -> u64 {
        self.free().saturating_sub(self.reserved)
    }
}

impl ReservationDevice for ModelPool {
    fn set_reserved(&mut self, sectors: u64) -> Result<(), DeviceError> {
        assert_eq!(sectors % self.thin_sectors, 0, "partial thin block");
        let blocks = sectors / self.thin_sectors;
        if blocks > self.free() {
            return Err(DeviceError::NoSpace);
        }
        self.reserved = blocks;
        Ok(())
    }

    fn provision(
        &mut self,
        start: u64,
        len: u64,
        how: Provision,
    ) -> (u64, Result<(), DeviceError>) {
        if std::mem::take(&mut self.fail_next_provision) {
            return (0, Err(DeviceError::Failed(-4)));
        }
        if how == (Provision::Overwrite { written: true }) && self.shared.is_empty() {
            return (0, Ok(()));
        }
        let unreserved_only = matches!(how, Provision::Overwrite { .. });
        let first = start / self.thin_sectors;
        let end = (start + len).div_ceil(self.thin_sectors);
        let mut mapped = 0;
        for block in first..end {
            let shared = self.shared.contains(&block);
            if (self.mapped.contains(&block) && !shared) || self.copies.contains(&block) {
                continue;
            }
            if !unreserved_only && self.reserved > 0 {
                self.reserved -= 1;
            } else if self.unreserved() == 0 {
                return (mapped, Err(DeviceError::NoSpace));
            }
            if shared {
                self.copies.insert(block);
            } else {
                self.mapped.insert(block);
            }
            mapped += self.thin_sectors;
        }
        (mapped, Ok(()))
    }
}
