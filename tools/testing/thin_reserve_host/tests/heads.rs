// SPDX-License-Identifier: GPL-2.0

//! Metadata backed by the AGs' heads: the xfs_thin books against a model of
//! XFS's allocator on thin volumes (`xfs_alloc_ag_vextent_thin()`) and a
//! pool that another device fills as soon as it has room.
//!
//! Each AG starts on a thin block; its first thin block, the head, holds the
//! AG headers and so is mapped. XFS allocates metadata in a head first:
//! metadata that may live in any AG goes to the head of the AG it aims at
//! if that has more than the slack free, else to the head with the most
//! room, and the AG's own btrees use their head down to its last block.
//! Beyond the heads, and for file data (which stays out of them), the model
//! picks the worst place: a free block in a thin block nobody mapped.
//!
//! The property: once the pool is full, every allocation of promised blocks
//! is provisioned out of what the books hold, however the allocations fall,
//! as long as metadata nobody promised takes no more than
//! `UNPROMISED_HEAD_BLOCKS` head blocks while the pool cannot top up.

mod common;

use common::ModelPool;
use proptest::prelude::*;
use std::collections::BTreeSet;
use thin_reserve_host::books::{Books, Refusal};
use thin_reserve_host::geometry::{BlockSize, MIN_BLOCK_SECTORS};
use thin_reserve_host::policy::{ThinFs, UNPROMISED_HEAD_BLOCKS};

/// Head slack as XFS keeps it (`XFS_THIN_HEAD_SLACK`).
const SLACK: u64 = 32;

/// XFS reports heads rounded down to this (`XFS_THIN_HEAD_STEP`).
const STEP: u64 = 8;

#[derive(Clone, Debug)]
enum Op {
    /// Promise n blocks: metadata, or not (file data, anything).
    Promise(u64, bool, bool),
    /// Allocate a promised metadata block aimed at an AG, for an AG's own
    /// btree (false) or for anything (true), by a transaction that may lock
    /// no AG below the second.
    Meta(u32, bool, u32, u64),
    /// Allocate a promised block of file data.
    Data(u64),
    /// Metadata nobody promised, in an AG (a free-list refill).
    Unpromised(u32),
    /// Free an allocated metadata block.
    FreeMeta(u64),
    /// Another device takes every free block nobody reserved.
    Fill,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..64u64, any::<bool>(), any::<bool>()).prop_map(|(n, m, r)| Op::Promise(n, m, r)),
        4 => (any::<u32>(), any::<bool>(), any::<u32>(), any::<u64>())
            .prop_map(|(a, any, m, s)| Op::Meta(a, any, m, s)),
        2 => any::<u64>().prop_map(Op::Data),
        1 => any::<u32>().prop_map(Op::Unpromised),
        1 => any::<u64>().prop_map(Op::FreeMeta),
        1 => Just(Op::Fill),
    ]
}

struct World {
    /// Filesystem blocks a thin block.
    k: u64,
    agcount: u32,
    /// Thin blocks an AG.
    ag_thin: u64,
    fs_sectors: u64,
    pool: ModelPool,
    books: Books,
    allocated: BTreeSet<u64>,
    meta: Vec<u64>,
    /// Free blocks of each head, and what XFS last told the books.
    head_free: Vec<u64>,
    told: Vec<u64>,
    /// Promised blocks not allocated yet, by kind.
    promised_meta: u64,
    promised_plain: u64,
    /// Unpromised head blocks taken since the pool filled.
    unpromised_since_full: u64,
    full: bool,
    /// AGs whose heads were short when the pool filled and that have not
    /// used the allowance's block of theirs since.
    allowance_left: Vec<bool>,
    /// A reserve-pool promise was granted on the allowance: what it takes
    /// is no longer there for the AGs' own btrees.
    dipped: bool,
}

impl World {
    fn new(thin_mult: u64, agcount: u32, ag_thin: u64, used: &[u64], capacity: u64) -> Self {
        let thin = BlockSize::new(thin_mult * MIN_BLOCK_SECTORS).unwrap();
        let fs_sectors = 8;
        let k = thin.sectors() / fs_sectors;
        let device = u64::from(agcount) * ag_thin * thin.sectors();
        let fs = ThinFs::new(thin, fs_sectors, device).unwrap();
        let mut pool = ModelPool::new(thin.sectors(), capacity);
        let mut books = Books::new(fs, agcount, SLACK);
        let mut allocated = BTreeSet::new();
        let mut head_free = Vec::new();
        for ag in 0..u64::from(agcount) {
            // The AG headers, written by mkfs: the head is mapped.
            let n = used[ag as usize % used.len()].clamp(1, k);
            for b in 0..n {
                allocated.insert(ag * ag_thin * k + b);
            }
            pool.mapped.insert(ag * ag_thin);
            head_free.push(k - n);
        }
        books.open(&mut pool).unwrap();
        let mut w = World {
            k,
            agcount,
            ag_thin,
            fs_sectors,
            pool,
            books,
            allocated,
            meta: Vec::new(),
            told: vec![0; agcount as usize],
            head_free,
            promised_meta: 0,
            promised_plain: 0,
            unpromised_since_full: 0,
            full: false,
            allowance_left: vec![false; agcount as usize],
            dipped: false,
        };
        // XFS counts the heads after mount.
        for ag in 0..agcount {
            w.report(ag);
        }
        w
    }

    fn ag_start(&self, ag: u32) -> u64 {
        u64::from(ag) * self.ag_thin * self.k
    }

    /// What XFS tells the books after a head changed.
    fn report(&mut self, ag: u32) {
        let i = ag as usize;
        let now = self.head_free[i] / STEP * STEP;
        if now != self.told[i] {
            let old = self.told[i];
            self.told[i] = now;
            self.books.head(
                &mut self.pool,
                ag,
                u32::try_from(old).unwrap(),
                u32::try_from(now).unwrap(),
            );
        }
    }

    /// The first free block of an AG's head.
    fn head_block(&self, ag: u32) -> Option<u64> {
        let start = self.ag_start(ag);
        (start..start + self.k).find(|b| !self.allocated.contains(b))
    }

    /// The worst free block of an AG outside its head: one in a thin block
    /// nobody mapped if there is one (picked by `seed`), else any.
    fn worst_block(&self, ag: u32, seed: u64) -> Option<u64> {
        let start = self.ag_start(ag) + self.k;
        let end = self.ag_start(ag) + self.ag_thin * self.k;
        let fresh: Vec<u64> = (start..end)
            .step_by(self.k as usize)
            .filter(|b| !self.pool.mapped.contains(&(b / self.k)))
            .collect();
        if !fresh.is_empty() {
            return Some(fresh[(seed % fresh.len() as u64) as usize]);
        }
        (start..end).find(|b| !self.allocated.contains(b))
    }

    /// Allocates block `b` as XFS would: the head's count changes and is
    /// reported first, then the allocation is provisioned.
    fn allocate(&mut self, b: u64, from_promise: u64) -> Result<(), TestCaseError> {
        let ag = u32::try_from(b / (self.ag_thin * self.k)).unwrap();
        self.allocated.insert(b);
        if b - self.ag_start(ag) < self.k {
            self.head_free[ag as usize] -= 1;
            self.report(ag);
        }
        let result = self
            .books
            .allocated(&mut self.pool, b * self.fs_sectors, 1, from_promise, 0);
        // A reserve-pool promise the pool could not back went ahead (an
        // overdraw): from then on nothing is guaranteed.
        if from_promise != 0 && self.books.stats().overdraws == 0 {
            prop_assert_eq!(
                result,
                Ok(()),
                "a promised allocation of block {} (AG {}) was not provisioned: heads {:?} told {:?}, held {}, need {}, promised {} ({} meta), full {}",
                b,
                ag,
                self.head_free,
                self.told,
                self.books.held(),
                self.books.need(),
                self.books.promised(),
                self.promised_meta,
                self.full
            );
        }
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Promise(n, meta, rsvd) => match self.books.reserve(&mut self.pool, n, rsvd, meta) {
                Ok(()) => {
                    if meta {
                        self.promised_meta += n;
                    } else {
                        self.promised_plain += n;
                    }
                    self.dipped |= self.books.held() < self.books.need();
                }
                Err(Refusal::NoSpace) => {}
                Err(Refusal::Overflow) => prop_assert!(false, "overflow on small numbers"),
            },
            Op::Meta(aim, anyag, minimum, seed) => {
                if self.promised_meta == 0 {
                    return Ok(());
                }
                let last = self.agcount - 1;
                let minimum = minimum % self.agcount;
                let mut ag = (aim % self.agcount).max(minimum);
                let free = |w: &Self, a: u32| w.head_free[a as usize];
                let b = if anyag {
                    // xfs_alloc_thin_head_agno(), then the head first.
                    let need = SLACK + 1;
                    if free(self, ag) < need || (ag == last && minimum != last) {
                        if let Some(a) = (minimum..=last).find(|&a| free(self, a) >= need) {
                            ag = a;
                        }
                    }
                    if free(self, ag) >= need {
                        self.head_block(ag)
                    } else {
                        None
                    }
                } else if free(self, ag) >= 1 {
                    self.head_block(ag)
                } else {
                    None
                };
                let b = match b {
                    Some(b) => b,
                    None => {
                        // An AG's own btree beyond its head: the per-AG
                        // allowance's block, once, while the pool is full.
                        if !anyag && self.full {
                            if !self.allowance_left[ag as usize] || self.dipped {
                                return Ok(());
                            }
                            self.allowance_left[ag as usize] = false;
                        }
                        let Some(b) = self.worst_block(ag, seed) else {
                            return Ok(());
                        };
                        b
                    }
                };
                self.promised_meta -= 1;
                self.allocate(b, 1)?;
                self.meta.push(b);
            }
            Op::Data(seed) => {
                if self.promised_plain == 0 {
                    return Ok(());
                }
                let ag = u32::try_from(seed % u64::from(self.agcount)).unwrap();
                let Some(b) = self.worst_block(ag, seed / 7) else {
                    return Ok(());
                };
                self.promised_plain -= 1;
                self.allocate(b, 1)?;
            }
            Op::Unpromised(aim) => {
                let ag = aim % self.agcount;
                // The assumption the books rest on, while the pool is full.
                if self.full && self.unpromised_since_full >= UNPROMISED_HEAD_BLOCKS {
                    return Ok(());
                }
                let Some(b) = self.head_block(ag) else {
                    return Ok(());
                };
                self.unpromised_since_full += u64::from(self.full);
                self.allocate(b, 0)?;
                self.meta.push(b);
            }
            Op::FreeMeta(seed) => {
                if self.meta.is_empty() {
                    return Ok(());
                }
                let b = self
                    .meta
                    .swap_remove((seed % self.meta.len() as u64) as usize);
                self.allocated.remove(&b);
                let ag = u32::try_from(b / (self.ag_thin * self.k)).unwrap();
                if b - self.ag_start(ag) < self.k {
                    self.head_free[ag as usize] += 1;
                    self.report(ag);
                }
            }
            Op::Fill => {
                // Another device maps every free block nobody reserved: from
                // now on only the books' reservation backs our writes.
                let grab = self.pool.free() - self.pool.reserved;
                self.pool.capacity -= grab;
                if !self.full {
                    for ag in 0..self.agcount as usize {
                        self.allowance_left[ag] = self.told[ag] <= SLACK;
                    }
                }
                self.full = true;
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn promised_metadata_never_needs_more_than_is_held(
        thin_mult in prop::sample::select(vec![1u64, 2, 4, 8, 16]),
        agcount in 1..6u32,
        ag_thin in 2..12u64,
        used in prop::collection::vec(1..300u64, 1..6),
        extra in 0..200u64,
        ops in prop::collection::vec(op(), 0..200),
    ) {
        let device = u64::from(agcount) * ag_thin;
        let mut w = World::new(thin_mult, agcount, ag_thin, &used, device + extra);
        for op in &ops {
            w.apply(op)?;
        }
        // The pool fills up, and every promise left is allocated.
        w.apply(&Op::Fill)?;
        let mut seed = 1u64;
        while w.promised_meta + w.promised_plain > 0 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let before = w.promised_meta + w.promised_plain;
            if w.promised_meta > 0 {
                w.apply(&Op::Meta(
                    (seed >> 33) as u32,
                    seed & 1 == 1,
                    (seed >> 45) as u32,
                    seed >> 7,
                ))?;
            }
            if w.promised_plain > 0 {
                w.apply(&Op::Data(seed >> 11))?;
            }
            if w.promised_meta + w.promised_plain == before {
                break; // the filesystem itself is full
            }
        }
        if w.books.stats().overdraws == 0 {
            prop_assert_eq!(w.books.stats().provision_failures, 0);
        }
    }
}
