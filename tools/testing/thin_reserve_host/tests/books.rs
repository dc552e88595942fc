// SPDX-License-Identifier: GPL-2.0

//! The xfs_thin books against a model thin pool and a model filesystem:
//! whatever XFS promises, allocates and frees, allocations of promised
//! blocks are always provisioned, refusals happen only when the pool really
//! cannot back the promise, and unmount gives everything back.

mod common;

use common::ModelPool;
use proptest::prelude::*;
use std::collections::BTreeSet;
use thin_reserve_host::books::{Books, DeviceError, Provision, Refusal, ReservationDevice};
use thin_reserve_host::geometry::{BlockSize, MIN_BLOCK_SECTORS};
use thin_reserve_host::policy::ThinFs;

/// Head slack as XFS keeps it (`XFS_THIN_HEAD_SLACK`).
const HEAD_SLACK: u64 = 32;

#[derive(Clone, Debug)]
enum Op {
    Reserve(u64, bool),
    Unreserve(u64),
    /// Allocate up to n promised blocks, scattered by the seed.
    Allocate(u64, u64),
    /// Free up to n allocated blocks; they return when the next Commit
    /// does, and other operations may come between.
    Free(u64, u64),
    /// The freeing transactions commit.
    Commit,
    /// Discard every thin block no allocated filesystem block lives in.
    Discard,
    /// A single-extent transaction promises n blocks; it allocates one
    /// contiguous run of up to n free blocks near the seed (or nothing, for
    /// an odd seed with the pool's free space in mind), then commits.
    Extent(u64, bool, u64),
    /// Allocate one run of up to n promised blocks near the seed with the
    /// device call outside the books' lock, while another thread promises
    /// m more blocks (which may set the reservation) before the device
    /// call, or after it if the flag says so.
    Racing(u64, u64, u64, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..40u64, any::<bool>()).prop_map(|(n, r)| Op::Reserve(n, r)),
        (1..40u64).prop_map(Op::Unreserve),
        (1..40u64, any::<u64>()).prop_map(|(n, s)| Op::Allocate(n, s)),
        (1..40u64, any::<u64>()).prop_map(|(n, s)| Op::Free(n, s)),
        Just(Op::Commit),
        Just(Op::Discard),
        (1..200u64, any::<bool>(), any::<u64>()).prop_map(|(n, r, s)| Op::Extent(n, r, s)),
        (1..40u64, any::<u64>(), 1..80u64, any::<bool>())
            .prop_map(|(n, s, m, after)| Op::Racing(n, s, m, after)),
    ]
}

struct World {
    fs: ThinFs,
    device_thin: u64,
    fs_sectors: u64,
    fs_blocks: u64,
    pool: ModelPool,
    books: Books,
    /// Blocks XFS may still allocate without asking: what it promised.
    budget: u64,
    allocated: BTreeSet<u64>,
    /// A reserve-pool promise was granted on the allowance, or the books
    /// could not get all they need: the cap of one thin block per promised
    /// block at the whole device counts blocks that are mapped already, so
    /// once allocations map most of the device, a pool barely larger than it
    /// cannot hold the capped need, and a discard can then make more
    /// unmapped blocks reachable than the books hold until their next call.
    /// From then on the promises are backed by the reservation and the
    /// unreserved free blocks together.
    dipped: bool,
    /// Freed blocks whose transaction has not committed yet.
    uncommitted: u64,
}

impl World {
    fn new(thin_mult: u64, fs_shift: u32, device_thin: u64, capacity: u64, agcount: u32) -> Self {
        let thin = BlockSize::new(thin_mult * MIN_BLOCK_SECTORS).unwrap();
        let fs_sectors = 1u64 << fs_shift;
        let device = device_thin * thin.sectors();
        let fs = ThinFs::new(thin, fs_sectors, device).unwrap();
        let mut pool = ModelPool::new(thin.sectors(), capacity);
        let mut books = Books::new(fs, agcount, HEAD_SLACK);
        books.open(&mut pool).unwrap();
        World {
            fs,
            device_thin,
            fs_sectors,
            fs_blocks: device / fs_sectors,
            pool,
            books,
            budget: 0,
            allocated: BTreeSet::new(),
            dipped: false,
            uncommitted: 0,
        }
    }

    /// Allocates `blocks` (sorted) as XFS would: one call per contiguous run.
    fn allocate(&mut self, blocks: &[u64], from_promise: bool) -> Result<(), DeviceError> {
        let mut i = 0;
        let mut result = Ok(());
        while i < blocks.len() {
            let mut j = i + 1;
            while j < blocks.len() && blocks[j] == blocks[j - 1] + 1 {
                j += 1;
            }
            let run = (j - i) as u64;
            self.allocated.extend(&blocks[i..j]);
            let from = if from_promise { run } else { 0 };
            let one =
                self.books
                    .allocated(&mut self.pool, blocks[i] * self.fs_sectors, run, from, 0);
            result = result.and(one);
            i = j;
        }
        result
    }

    fn pick_free(&self, n: u64, seed: u64) -> Vec<u64> {
        let mut picked = BTreeSet::new();
        let mut x = seed | 1;
        let mut tries = 0;
        while (picked.len() as u64) < n && tries < 10 * n + 100 {
            // xorshift: scattered, reproducible placement.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = if seed % 2 == 0 {
                x % self.fs_blocks
            } else {
                (seed / 2 + tries) % self.fs_blocks
            };
            if !self.allocated.contains(&b) {
                picked.insert(b);
            }
            tries += 1;
        }
        picked.into_iter().collect()
    }

    /// The longest run of free blocks (at most `n`) at or after `seed`'s
    /// block, wrapping: where an allocator could put one extent.
    fn free_run(&self, n: u64, seed: u64) -> Option<(u64, u64)> {
        let start = seed % self.fs_blocks;
        let mut best: Option<(u64, u64)> = None;
        let mut b = start;
        for _ in 0..self.fs_blocks {
            if !self.allocated.contains(&b) {
                let mut len = 1;
                while len < n && b + len < self.fs_blocks && !self.allocated.contains(&(b + len)) {
                    len += 1;
                }
                if best.map_or(true, |(_, l)| len > l) {
                    best = Some((b, len));
                }
                if len == n {
                    break;
                }
            }
            b = (b + 1) % self.fs_blocks;
        }
        best
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        self.dipped |= self.books.held() < self.books.need();
        match *op {
            Op::Extent(n, rsvd, seed) => {
                let before = self.books.extent_cost();
                match self.books.reserve_extent(&mut self.pool, n, rsvd) {
                    Ok(()) => {
                        prop_assert_eq!(
                            self.books.extent_cost(),
                            before + self.fs.extent_thin_blocks(n)
                        );
                        let need = self.fs.worst_case_thin_blocks(self.budget)
                            + self.books.extent_cost()
                            + self.books.allowance();
                        self.dipped |= self.books.held() < need;
                        // Other promises may still be outstanding while
                        // this one allocates: check the guarantee now.
                        self.check()?;
                        match self.free_run(n, seed).filter(|_| seed % 5 != 0) {
                            Some((start, len)) => {
                                for b in start..start + len {
                                    self.allocated.insert(b);
                                }
                                let result = self.books.allocated(
                                    &mut self.pool,
                                    start * self.fs_sectors,
                                    len,
                                    0,
                                    n,
                                );
                                prop_assert!(
                                    result.is_ok() || self.books.stats().overdraws > 0,
                                    "a single-extent promise was not kept"
                                );
                            }
                            None => self.books.extent_done(&mut self.pool, n),
                        }
                        prop_assert_eq!(self.books.extent_cost(), before);
                    }
                    Err(Refusal::NoSpace) => {
                        let need = self.fs.worst_case_thin_blocks(self.budget)
                            + before
                            + self.fs.extent_thin_blocks(n)
                            + self.books.allowance();
                        prop_assert!(
                            self.pool.free() < need || self.books.stats().overdraws > 0,
                            "refused an extent the pool could back"
                        );
                    }
                    Err(Refusal::Overflow) => prop_assert!(false, "overflow on small numbers"),
                }
            }
            Op::Reserve(n, rsvd) => {
                let need = self.fs.worst_case_thin_blocks(self.budget + n) + self.books.allowance();
                match self.books.reserve(&mut self.pool, n, rsvd, false) {
                    Ok(()) => {
                        self.budget += n;
                        self.dipped |= self.books.held() < need;
                    }
                    Err(Refusal::NoSpace) => {
                        prop_assert!(!rsvd, "a reserve-pool promise was refused");
                        prop_assert!(
                            self.pool.free() < need || self.books.stats().overdraws > 0,
                            "refused {} blocks with {} free thin blocks for a need of {}",
                            n,
                            self.pool.free(),
                            need
                        );
                    }
                    Err(Refusal::Overflow) => prop_assert!(false, "overflow on small numbers"),
                }
            }
            Op::Racing(n, seed, m, after) => {
                let n = n.min(self.budget);
                let Some((start, len)) = self.free_run(n, seed).filter(|_| n != 0) else {
                    return self.check();
                };
                for b in start..start + len {
                    self.allocated.insert(b);
                }
                self.budget -= len;
                let allocation = self.books.allocation(start * self.fs_sectors, len);
                let (from, count) = allocation.range.unwrap();
                if !after {
                    self.promise_between(m);
                }
                let first = self.pool.provision(from, count, Provision::Allocated);
                if after {
                    self.promise_between(m);
                }
                let result =
                    self.books
                        .provisioned(&mut self.pool, allocation, Some(first), len, len, 0);
                prop_assert!(
                    result.is_ok() || self.books.stats().overdraws > 0,
                    "a promised allocation was not provisioned"
                );
            }
            Op::Unreserve(n) => {
                let n = n.min(self.budget);
                self.budget -= n;
                self.books.unreserve(&mut self.pool, n);
            }
            Op::Allocate(n, seed) => {
                let blocks = self.pick_free(n.min(self.budget), seed);
                self.budget -= blocks.len() as u64;
                let result = self.allocate(&blocks, true);
                prop_assert!(
                    result.is_ok() || self.books.stats().overdraws > 0,
                    "a promised allocation was not provisioned"
                );
            }
            Op::Free(n, seed) => {
                let n = self.free_some(n, seed);
                self.books.returning(n);
                self.uncommitted += n;
            }
            Op::Commit => {
                // The blocks return to the free pool.
                self.books.returned(self.uncommitted);
                self.uncommitted = 0;
            }
            Op::Discard => {
                let per_thin = self.pool.thin_sectors / self.fs_sectors;
                let in_use: BTreeSet<u64> = self.allocated.iter().map(|b| b / per_thin).collect();
                self.pool.mapped.retain(|t| in_use.contains(t));
            }
        }
        self.check()
    }

    /// Another thread's promise of `m` blocks, granted or refused, while an
    /// allocation's device call runs.
    fn promise_between(&mut self, m: u64) {
        if self.books.reserve(&mut self.pool, m, false, false).is_ok() {
            self.budget += m;
        }
    }

    /// Frees up to `n` allocated blocks picked by `seed`; returns how many.
    fn free_some(&mut self, n: u64, seed: u64) -> u64 {
        let victims: Vec<u64> = self
            .allocated
            .iter()
            .copied()
            .skip((seed % 7) as usize)
            .take(n as usize)
            .collect();
        for b in &victims {
            self.allocated.remove(b);
        }
        victims.len() as u64
    }

    /// XFS at unmount: the last transactions commit, what is still promised
    /// comes back.
    fn unmount(&mut self) {
        self.books.returned(self.uncommitted);
        self.books.unreserve(&mut self.pool, self.budget);
        self.uncommitted = 0;
        self.budget = 0;
    }

    /// What must hold between any two calls.
    fn check(&self) -> Result<(), TestCaseError> {
        // The books know what the device holds, and the promises can be
        // kept: each may still map a new thin block, but no more than the
        // device has unmapped (the policy caps at the whole device, so after
        // allocations its own figure can exceed what can still happen).
        // What the reservation does not cover must be free and unreserved:
        // a discard can unmap blocks after a reserve-pool promise was
        // granted against the capped figure, and the books only hear of it
        // at their next call; the discard freed at least as many blocks.
        prop_assert_eq!(self.books.held(), self.pool.reserved);
        prop_assert_eq!(self.books.promised(), self.budget);
        prop_assert_eq!(self.books.returning_blocks(), self.uncommitted);
        let unmapped = self.device_thin - self.pool.mapped.len() as u64;
        let can_still_map =
            (self.fs.worst_case_thin_blocks(self.budget) + self.books.extent_cost()).min(unmapped);
        let unreserved = self.pool.free().saturating_sub(self.pool.reserved);
        // A reserve-pool promise the pool could not back went ahead anyway
        // (an overdraw): from then on nothing is guaranteed.
        if self.books.stats().overdraws > 0 {
            return Ok(());
        }
        prop_assert!(
            self.books.held() + unreserved >= can_still_map,
            "holds {} thin blocks with {} unreserved, promises can still map {}",
            self.books.held(),
            unreserved,
            can_still_map
        );
        // Until a reserve-pool promise dips into the allowance, the
        // reservation alone covers the promises.
        if !self.dipped {
            prop_assert!(
                self.books.held() >= can_still_map,
                "holds {} thin blocks, promises can still map {}",
                self.books.held(),
                can_still_map
            );
        }
        prop_assert_eq!(self.books.stats().drift, 0);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Promised allocations are always provisioned, refusals are honest, and
    /// unmount leaves nothing reserved and nothing promised.
    #[test]
    fn promises_are_kept_and_released(
        thin_mult in 1..=16u64,
        fs_shift in 0..=7u32,
        device_thin in 1..400u64,
        capacity in 0..300u64,
        agcount in 1..8u32,
        ops in prop::collection::vec(op(), 0..120),
    ) {
        prop_assume!((thin_mult * MIN_BLOCK_SECTORS) % (1 << fs_shift) == 0);
        let mut w = World::new(thin_mult, fs_shift, device_thin, capacity, agcount);
        for op in &ops {
            w.apply(op)?;
        }
        // Unmount: XFS returns what it still promised, then the books close.
        w.unmount();
        let (left, result) = w.books.close(&mut w.pool);
        prop_assert_eq!(left, 0);
        prop_assert_eq!(result, Ok(()));
        prop_assert_eq!(w.pool.reserved, 0);
        if w.books.stats().overdraws == 0 {
            prop_assert_eq!(w.books.stats().provision_failures, 0);
        }
    }

    /// The device never holds much more than the promises need.
    #[test]
    fn does_not_hoard(
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let mut w = World::new(1, 3, 4096, 4096, 4);
        for op in &ops {
            w.apply(op)?;
            let need = w.fs.worst_case_thin_blocks(w.budget)
                + w.books.extent_cost()
                + w.books.allowance();
            prop_assert!(w.books.held() <= need + 2 * w.fs.grow_headroom());
        }
    }

    /// Metadata allocated without a promise draws on the allowance; within
    /// it, promised allocations still never fail, and the allowance is
    /// topped up again once the pool has room.
    #[test]
    fn metadata_within_the_allowance_is_safe(
        meta in 1..20u64,
        seed in any::<u64>(),
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let mut w = World::new(1, 3, 1024, 600, 1);
        prop_assume!(meta <= w.books.allowance());
        for op in &ops {
            w.apply(op)?;
        }
        let blocks = w.pick_free(meta, seed);
        prop_assert_eq!(w.allocate(&blocks, false), Ok(()));
        prop_assert!(w.books.held() >= w.fs.worst_case_thin_blocks(w.budget).min(w.device_thin - w.pool.mapped.len() as u64));
        // Whatever remains promised can still be allocated.
        let blocks = w.pick_free(w.budget, seed.rotate_left(7));
        w.budget -= blocks.len() as u64;
        prop_assert_eq!(w.allocate(&blocks, true), Ok(()));
    }
}

#[test]
fn a_full_pool_still_mounts_and_refuses_promises() {
    let mut w = World::new(1, 3, 1024, 0, 4);
    assert_eq!(w.books.held(), 0);
    assert_eq!(
        w.books.reserve(&mut w.pool, 1, false, false),
        Err(Refusal::NoSpace)
    );
    // A reserve-pool promise goes ahead, counted as an overdraw.
    assert_eq!(w.books.reserve(&mut w.pool, 1, true, false), Ok(()));
    assert_eq!(w.books.stats().overdraws, 1);
    w.budget += 1;
    // Zero blocks is always fine.
    assert_eq!(w.books.reserve(&mut w.pool, 0, false, false), Ok(()));
}

#[test]
fn reserve_pool_transactions_may_use_the_allowance() {
    // Pool exactly as large as the allowance plus four blocks.
    let fs = ThinFs::new(BlockSize::new(128).unwrap(), 8, 128 * 1024).unwrap();
    let allowance = fs.metadata_allowance(1, 0);
    let mut w = World::new(1, 3, 1024, allowance + 4, 1);
    assert_eq!(w.books.reserve(&mut w.pool, 4, false, false), Ok(()));
    w.budget += 4;
    assert_eq!(
        w.books.reserve(&mut w.pool, 1, false, false),
        Err(Refusal::NoSpace)
    );
    assert_eq!(w.books.reserve(&mut w.pool, 1, true, false), Ok(()));
    w.budget += 1;
    assert!(w.books.held() >= fs.worst_case_thin_blocks(w.budget));
}

#[test]
fn huge_promises_are_refused_not_wrapped() {
    let mut w = World::new(1, 3, 1024, 1024, 4);
    assert_eq!(
        w.books.reserve(&mut w.pool, u64::MAX, false, false),
        Err(Refusal::NoSpace)
    );
    assert_eq!(w.books.reserve(&mut w.pool, 10, false, false), Ok(()));
    assert_eq!(
        w.books.reserve(&mut w.pool, u64::MAX, false, false),
        Err(Refusal::Overflow)
    );
    assert_eq!(w.books.promised(), 10);
}

#[test]
fn over_returns_are_counted_as_drift_not_underflow() {
    let mut w = World::new(1, 3, 1024, 1024, 4);
    w.books.unreserve(&mut w.pool, 5);
    assert_eq!(w.books.promised(), 0);
    assert_eq!(w.books.stats().drift, 5);
}

#[test]
fn blocks_being_freed_are_no_promise() {
    // A pool with room for the allowance and 8 thin blocks.
    let fs = ThinFs::new(BlockSize::new(128).unwrap(), 8, 128 * 1024).unwrap();
    let allowance = fs.metadata_allowance(1, 0);
    let mut w = World::new(1, 3, 1024, allowance + 8, 1);
    // A large rm is in flight: its blocks return when it commits.
    w.books.returning(100_000);
    // Meanwhile a writer's promise that the pool can back is granted.
    assert_eq!(w.books.reserve(&mut w.pool, 8, false, false), Ok(()));
    // The rm commits; the writer's unused promise comes back later.
    w.books.returned(100_000);
    assert_eq!(w.books.promised(), 8);
    w.books.unreserve(&mut w.pool, 8);
    assert_eq!(w.books.promised(), 0);
    assert_eq!(w.books.stats().drift, 0);
}

#[test]
fn growfs_raises_the_cap_and_the_allowance() {
    let thin = BlockSize::new(128).unwrap();
    // 1 MiB filesystem: 16 thin blocks, so promises cap at 16.
    let small = ThinFs::new(thin, 8, 2048).unwrap();
    let big = ThinFs::new(thin, 8, 4096).unwrap();
    let mut pool = ModelPool::new(128, 1000);
    let mut books = Books::new(small, 1, HEAD_SLACK);
    books.open(&mut pool).unwrap();
    assert_eq!(books.reserve(&mut pool, 100, false, false), Ok(()));
    assert!(books.held() >= 16 + small.metadata_allowance(1, 0));
    assert!(books.held() <= 16 + small.metadata_allowance(1, 0) + small.grow_headroom());
    books.resize(&mut pool, big, 1);
    // The 100 promised blocks may now land in 32 thin blocks.
    assert!(books.held() >= 32 + big.metadata_allowance(2, 0));
    assert_eq!(pool.reserved, books.held());
}

#[test]
fn blocks_freed_into_a_reservation_are_promised_again() {
    // XFS_TRANS_RES_FDBLKS chains free blocks back into their reservation
    // and may allocate them again without asking.
    let mut w = World::new(1, 3, 1024, 1024, 4);
    assert_eq!(w.books.reserve(&mut w.pool, 10, false, false), Ok(()));
    w.books.freed(&mut w.pool, 5);
    assert_eq!(w.books.promised(), 15);
    assert!(w.books.held() >= 15 + w.books.allowance());
    w.books.unreserve(&mut w.pool, 15);
    assert_eq!(w.books.promised(), 0);
    assert_eq!(w.books.stats().drift, 0);
}

#[test]
fn a_failed_provision_keeps_its_backing() {
    // A pool with room for the allowance and 8 thin blocks of 16 fs blocks.
    let fs = ThinFs::new(BlockSize::new(128).unwrap(), 8, 128 * 1024).unwrap();
    let allowance = fs.metadata_allowance(1, 0);
    let mut w = World::new(1, 3, 1024, allowance + 8, 1);
    assert_eq!(w.books.reserve(&mut w.pool, 8, false, false), Ok(()));
    // Eight blocks in eight thin blocks; provisioning fails (EINTR).
    w.pool.fail_next_provision = true;
    let blocks: Vec<u64> = (0..8).map(|i| i * 16).collect();
    for b in &blocks {
        w.allocated.insert(*b);
    }
    assert!(w.books.allocated(&mut w.pool, 0, 1, 1, 0).is_err());
    for b in &blocks[1..] {
        assert_eq!(w.books.allocated(&mut w.pool, b * 8, 1, 1, 0), Ok(()));
    }
    // The first block's thin block is still held for it: its write maps
    // it out of our reservation, even with every other block taken.
    assert_eq!(w.books.stats().unprovisioned, 1);
    assert_eq!(w.books.promised(), 0);
    assert_eq!(w.books.need(), allowance + 1);
    assert!(w.pool.reserved > allowance);
    let (_, closed) = w.books.close(&mut w.pool);
    assert_eq!(closed, Ok(()));
    assert_eq!(w.pool.reserved, 0);
}

/// After a snapshot, overwrites of shared blocks are provisioned out of what
/// nobody reserved, never out of the promises, and refused once only
/// promised blocks are left; before it they cost nothing.
#[test]
fn overwrites_of_shared_blocks_take_unreserved_space_only() {
    let thin = BlockSize::new(128).unwrap();
    // 4 KiB blocks on 64 KiB thin blocks, 64 thin blocks of filesystem.
    let fs = ThinFs::new(thin, 8, 128 * 64).unwrap();
    let mut pool = ModelPool::new(128, 40);
    let mut books = Books::new(fs, 1, HEAD_SLACK);
    books.open(&mut pool).unwrap();
    let allowance = books.allowance();
    pool.mapped.extend(0..8);

    // No snapshot: nothing to copy, nothing provisioned.
    assert_eq!(books.overwrite(&mut pool, 0, 8 * 128, true), Ok(()));
    assert!(pool.copies.is_empty());

    // A snapshot shares the eight blocks; the first four are overwritten.
    pool.shared = pool.mapped.clone();
    assert_eq!(books.overwrite(&mut pool, 0, 4 * 128, true), Ok(()));
    assert_eq!(pool.copies.len(), 4);
    assert_eq!(books.stats().copies, 4);
    assert_eq!(
        pool.reserved, allowance,
        "copies come out of unreserved space"
    );
    // Again: provisioned already, free.
    assert_eq!(books.overwrite(&mut pool, 0, 4 * 128, true), Ok(()));
    assert_eq!(pool.copies.len(), 4);

    // Promises take every block that is left.
    let left = pool.free() - allowance;
    assert_eq!(books.reserve(&mut pool, left, false, false), Ok(()));
    assert_eq!(pool.reserved, pool.free());
    assert_eq!(
        books.overwrite(&mut pool, 4 * 128, 128, true),
        Err(Refusal::NoSpace)
    );
    assert_eq!(books.stats().copies_refused, 1);
    assert_eq!(pool.reserved, pool.free(), "a refused copy takes nothing");
    assert_eq!(pool.copies.len(), 4);
}

/// Unwritten extents whose earmarks ended with a pool deactivation are
/// provisioned again, from unreserved space, before a write into them is
/// acknowledged; a second write costs nothing.
#[test]
fn writes_into_unwritten_extents_provision_lost_earmarks() {
    let thin = BlockSize::new(128).unwrap();
    let fs = ThinFs::new(thin, 8, 128 * 64).unwrap();
    let mut pool = ModelPool::new(128, 40);
    let mut books = Books::new(fs, 1, HEAD_SLACK);
    books.open(&mut pool).unwrap();
    let allowance = books.allowance();
    // Blocks 0..4 were fallocated before the pool was last deactivated:
    // nothing is earmarked for them now.
    assert_eq!(books.overwrite(&mut pool, 0, 4 * 128, false), Ok(()));
    assert_eq!(pool.mapped.len(), 4);
    assert_eq!(pool.reserved, allowance, "taken from unreserved space");
    assert_eq!(books.overwrite(&mut pool, 0, 4 * 128, false), Ok(()));
    assert_eq!(books.stats().copies, 4);
    // Written blocks of a volume that shares nothing cost nothing at all.
    assert_eq!(books.overwrite(&mut pool, 8 * 128, 4 * 128, true), Ok(()));
    assert_eq!(pool.mapped.len(), 4);
}

#[test]
fn a_set_during_an_unlocked_provision_leaves_the_books_exact() {
    // 64 KiB thin blocks, 4 KiB filesystem blocks, a roomy pool.
    let mut w = World::new(1, 3, 1024, 1024, 1);
    assert_eq!(w.books.reserve(&mut w.pool, 16, false, false), Ok(()));
    w.budget = 16;
    let allocation = w.books.allocation(0, 16);
    let (start, len) = allocation.range.unwrap();
    let first = w.pool.provision(start, len, Provision::Allocated);
    // Another promise states the whole reservation after the charge.
    assert_eq!(
        w.books
            .reserve(&mut w.pool, 4 * w.fs.grow_headroom(), false, false),
        Ok(())
    );
    w.budget += 4 * w.fs.grow_headroom();
    assert_eq!(
        w.books
            .provisioned(&mut w.pool, allocation, Some(first), 16, 16, 0),
        Ok(())
    );
    w.budget -= 16;
    for b in 0..16 {
        w.allocated.insert(b);
    }
    assert_eq!(w.books.held(), w.pool.reserved);
    w.check().unwrap();
}
