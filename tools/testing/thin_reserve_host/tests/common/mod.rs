// SPDX-License-Identifier: GPL-2.0

//! A model thin pool for the books' tests: one thin device alone in a pool.

use std::collections::BTreeSet;
use thin_reserve_host::books::{DeviceError, ReservationDevice};

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
}

impl ModelPool {
    pub fn free(&self) -> u64 {
        self.capacity - self.mapped.len() as u64
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

    fn provision(&mut self, start: u64, len: u64) -> (u64, Result<(), DeviceError>) {
        if std::mem::take(&mut self.fail_next_provision) {
            return (0, Err(DeviceError::Failed(-4)));
        }
        let first = start / self.thin_sectors;
        let end = (start + len).div_ceil(self.thin_sectors);
        let mut mapped = 0;
        for block in first..end {
            if self.mapped.contains(&block) {
                continue;
            }
            if self.reserved > 0 {
                self.reserved -= 1;
            } else if self.free() == 0 {
                return (mapped, Err(DeviceError::NoSpace));
            }
            self.mapped.insert(block);
            mapped += self.thin_sectors;
        }
        (mapped, Ok(()))
    }
}
