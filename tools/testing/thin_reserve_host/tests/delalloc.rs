// SPDX-License-Identifier: GPL-2.0

//! Delayed allocation extents promised by the thin blocks one contiguous
//! run of their length can touch, against a model filesystem whose
//! allocator converts them the way `xfs_bmap_btalloc_thin()` does: the
//! whole extent in one piece anywhere, else whole aligned thin blocks,
//! else anything (when no wholly free aligned thin block is left). Writers
//! append to extents or start new ones, the allocator converts them near
//! random places in fragmented free space, files are freed and discarded:
//! every conversion is provisioned, refusals are honest, and unmount leaves
//! nothing held.

mod common;

use common::ModelPool as Pool;
use proptest::prelude::*;
use std::collections::BTreeSet;
use thin_reserve_host::books::{Books, DeviceError, Refusal};
use thin_reserve_host::geometry::{BlockSize, MIN_BLOCK_SECTORS};
use thin_reserve_host::policy::ThinFs;

#[derive(Clone, Debug)]
enum Op {
    /// A buffered write of n blocks: appended to the last delayed extent
    /// (merged) or a new one.
    Write(u64, bool),
    /// Writeback converts delayed extent i (mod count) near a seed.
    Convert(usize, u64),
    /// Scatter n single allocated blocks (other files' data) by a seed,
    /// fragmenting free space; they are provisioned as allocated.
    Scatter(u64, u64),
    /// Free n allocated blocks picked by a seed, and discard the thin
    /// blocks left with no allocated block.
    FreeDiscard(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..80u64, any::<bool>()).prop_map(|(n, m)| Op::Write(n, m)),
        4 => (any::<usize>(), any::<u64>()).prop_map(|(i, s)| Op::Convert(i, s)),
        1 => (1..30u64, any::<u64>()).prop_map(|(n, s)| Op::Scatter(n, s)),
        1 => (1..60u64, any::<u64>()).prop_map(|(n, s)| Op::FreeDiscard(n, s)),
    ]
}

struct World {
    fs: ThinFs,
    /// Filesystem blocks per thin block.
    k: u64,
    fs_sectors: u64,
    fs_blocks: u64,
    pool: Pool,
    books: Books,
    allocated: BTreeSet<u64>,
    delayed: Vec<u64>,
}

impl World {
    fn new(thin_mult: u64, fs_shift: u32, device_thin: u64, capacity: u64) -> Self {
        let thin = BlockSize::new(thin_mult * MIN_BLOCK_SECTORS).unwrap();
        let fs_sectors = 1u64 << fs_shift;
        let device = device_thin * thin.sectors();
        let fs = ThinFs::new(thin, fs_sectors, device).unwrap();
        let mut pool = Pool::new(thin.sectors(), capacity);
        let mut books = Books::new(fs, 1, 32);
        books.open(&mut pool).unwrap();
        World {
            fs,
            k: thin.sectors() / fs_sectors,
            fs_sectors,
            fs_blocks: device / fs_sectors,
            pool,
            books,
            allocated: BTreeSet::new(),
            delayed: Vec::new(),
        }
    }

    fn is_free(&self, b: u64) -> bool {
        b < self.fs_blocks && !self.allocated.contains(&b)
    }

    /// The first free run of exactly `len` blocks starting at a block
    /// `start % align == 0`, searching from `from` and wrapping.
    fn find(&self, len: u64, align: u64, from: u64) -> Option<u64> {
        let slots = self.fs_blocks / align;
        for i in 0..slots {
            let start = ((from / align + i) % slots) * align;
            if (start..start + len).all(|b| self.is_free(b)) {
                return Some(start);
            }
        }
        None
    }

    /// The longest free run of at most `len` blocks, the first found from
    /// `from`: XFS's last resort.
    fn find_any(&self, len: u64, from: u64) -> Option<(u64, u64)> {
        let mut best: Option<(u64, u64)> = None;
        for i in 0..self.fs_blocks {
            let b = (from + i) % self.fs_blocks;
            if !self.is_free(b) {
                continue;
            }
            let mut n = 1;
            while n < len && self.is_free(b + n) {
                n += 1;
            }
            if best.map_or(true, |(_, l)| n > l) {
                best = Some((b, n));
            }
        }
        best
    }

    /// `xfs_bmap_btalloc_thin()`'s choice for a delayed extent of `len`.
    fn place(&self, len: u64, from: u64) -> Option<(u64, u64)> {
        if let Some(start) = self.find(len, 1, from) {
            return Some((start, len));
        }
        if len > self.k {
            // The longest run of whole aligned thin blocks, up to len.
            let mut m = len / self.k;
            while m > 0 {
                if let Some(start) = self.find(m * self.k, self.k, from) {
                    return Some((start, m * self.k));
                }
                m -= 1;
            }
        }
        self.find_any(len, from)
    }

    fn allocate(&mut self, start: u64, len: u64) -> Result<(), DeviceError> {
        for b in start..start + len {
            self.allocated.insert(b);
        }
        self.books
            .allocated(&mut self.pool, start * self.fs_sectors, len, 0, 0)
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Write(n, merge) => {
                let (before, after, idx) = match self.delayed.last() {
                    Some(&l) if merge => ([l, 0], [l + n, 0], Some(self.delayed.len() - 1)),
                    _ => ([0, 0], [n, 0], None),
                };
                let need = self.books.need() + self.fs.extent_thin_blocks(after[0])
                    - self.fs.extent_thin_blocks(before[0]);
                match self.books.delalloc(&mut self.pool, before, after, true) {
                    Ok(()) => match idx {
                        Some(i) => self.delayed[i] += n,
                        None => self.delayed.push(n),
                    },
                    Err(Refusal::NoSpace) => prop_assert!(
                        self.pool.free() < need,
                        "refused with {} free for a need of {}",
                        self.pool.free(),
                        need
                    ),
                    Err(Refusal::Overflow) => prop_assert!(false, "overflow"),
                }
            }
            Op::Convert(i, seed) => {
                if self.delayed.is_empty() {
                    return Ok(());
                }
                let i = i % self.delayed.len();
                let len = self.delayed[i];
                let Some((start, got)) = self.place(len, seed % self.fs_blocks) else {
                    // The model filesystem is full; XFS would have refused
                    // the write. Drop the extent as a truncate would.
                    self.delayed.remove(i);
                    self.books
                        .delalloc(&mut self.pool, [len, 0], [0, 0], false)
                        .unwrap();
                    return Ok(());
                };
                let mapped = self.pool.mapped.len() as u64;
                let result = self.allocate(start, got);
                // The piece maps no more new thin blocks than the part of
                // the extent's promise it ends: the rest stays covered.
                // (The policy caps at the device: what is left can touch
                // no more than the device has unmapped.)
                let cost = self.pool.mapped.len() as u64 - mapped;
                let unmapped = self.fs_blocks.div_ceil(self.k) - self.pool.mapped.len() as u64;
                let rest = self.fs.extent_thin_blocks(len - got).min(unmapped);
                prop_assert!(
                    cost + rest <= self.fs.extent_thin_blocks(len),
                    "{} of {} delayed blocks at {} mapped {} thin blocks, {} left, promise {}",
                    got,
                    len,
                    start,
                    cost,
                    rest,
                    self.fs.extent_thin_blocks(len)
                );
                prop_assert_eq!(
                    result,
                    Ok(()),
                    "converting {} of {} delayed blocks at {} was not provisioned",
                    got,
                    len,
                    start
                );
                self.books
                    .delalloc(&mut self.pool, [len, 0], [len - got, 0], false)
                    .unwrap();
                if got == len {
                    self.delayed.remove(i);
                } else {
                    self.delayed[i] = len - got;
                }
            }
            Op::Scatter(n, seed) => {
                let mut x = seed | 1;
                for _ in 0..n {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let b = x % self.fs_blocks;
                    if self.is_free(b) {
                        // Promised one by one, then allocated.
                        if self.books.reserve(&mut self.pool, 1, false, false).is_ok() {
                            let r = self.allocate_promised(b);
                            prop_assert_eq!(r, Ok(()));
                        }
                    }
                }
            }
            Op::FreeDiscard(n, seed) => {
                let victims: Vec<u64> = self
                    .allocated
                    .iter()
                    .copied()
                    .skip((seed % 11) as usize)
                    .step_by(1 + (seed % 3) as usize)
                    .take(n as usize)
                    .collect();
                for b in &victims {
                    self.allocated.remove(b);
                }
                self.books.returning(victims.len() as u64);
                self.books.returned(victims.len() as u64);
                let in_use: BTreeSet<u64> = self.allocated.iter().map(|b| b / self.k).collect();
                self.pool.mapped.retain(|t| in_use.contains(t));
            }
        }
        prop_assert_eq!(self.books.held(), self.pool.reserved);
        prop_assert_eq!(self.books.stats().drift, 0);
        Ok(())
    }

    fn allocate_promised(&mut self, b: u64) -> Result<(), DeviceError> {
        self.allocated.insert(b);
        self.books
            .allocated(&mut self.pool, b * self.fs_sectors, 1, 1, 0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(384))]

    #[test]
    fn delayed_extents_are_converted_within_their_promise(
        thin_mult in 1..=4u64,
        fs_shift in 0..=4u32,
        device_thin in 4..64u64,
        capacity in 0..96u64,
        ops in prop::collection::vec(op(), 0..100),
    ) {
        let mut w = World::new(thin_mult, fs_shift, device_thin, capacity);
        for op in &ops {
            w.apply(op)?;
        }
        // Writeback converts everything left, then unmount.
        while !w.delayed.is_empty() {
            w.apply(&Op::Convert(0, 0))?;
        }
        prop_assert_eq!(w.books.delalloc_cost(), 0);
        let (left, result) = w.books.close(&mut w.pool);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(w.pool.reserved, 0);
        prop_assert_eq!(w.books.stats().provision_failures, 0);
        prop_assert_eq!(w.books.stats().drift, 0);
    }
}
