// SPDX-License-Identifier: GPL-2.0

//! The pool ledger against a reference model, over random operation
//! sequences on a simulated pool: never over-commit, never negative, nothing
//! leaks, the same answers as the model, and every promise can be kept.

use proptest::prelude::*;
use std::collections::BTreeSet;
use thin_reserve_host::ledger::{
    merge_pin, promisable, Allocation, EarmarkChunk, LedgerError, PoolLedger, ThinReservation,
    EARMARK_CHUNK_BLOCKS, MAPPINGS_PER_METADATA_BLOCK, METADATA_MARGIN_BLOCKS,
};

const THINS: usize = 4;

#[derive(Clone, Debug)]
enum Op {
    Reserve(usize, u64),
    Release(usize, u64),
    Set(usize, u64),
    /// Allocate one block for a device; the pool really allocates it.
    Allocate(usize),
    /// Allocate, then the real allocation fails and the block is handed back.
    AllocateFails(usize),
    /// Blocks freed by discard or by deleting mappings.
    Discard(u64),
    /// The pool grows (lvextend).
    Grow(u64),
    /// A thin device goes away.
    Remove(usize),
    /// Provisioning earmarks one block for a device.
    Earmark(usize),
    /// An earmarked block is written: the pool allocates it from the earmark.
    AllocateEarmarked(usize),
    /// The same, but the real allocation fails and the earmark is restored.
    AllocateEarmarkedFails(usize),
    /// Earmarked blocks are discarded.
    ReleaseEarmarks(usize, u64),
    /// A write copies a block a snapshot shares, without an earmark.
    AllocateCopy(usize),
    /// An overwrite, or a pinned range at a snapshot, earmarks a block out
    /// of what nobody reserved.
    EarmarkUnreserved(usize),
}

fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..24u64,
        1 => Just(u64::MAX),
        1 => (u64::MAX - 64)..=u64::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..THINS;
    prop_oneof![
        1 => (t.clone(), count()).prop_map(|(t, n)| Op::Reserve(t, n)),
        1 => (t.clone(), count()).prop_map(|(t, n)| Op::Release(t, n)),
        1 => (t.clone(), count()).prop_map(|(t, n)| Op::Set(t, n)),
        3 => t.clone().prop_map(Op::Allocate),
        1 => t.clone().prop_map(Op::AllocateFails),
        1 => (0..16u64).prop_map(Op::Discard),
        1 => (0..16u64).prop_map(Op::Grow),
        1 => t.clone().prop_map(Op::Remove),
        2 => t.clone().prop_map(Op::Earmark),
        2 => t.clone().prop_map(Op::AllocateEarmarked),
        1 => t.clone().prop_map(Op::AllocateEarmarkedFails),
        1 => (t.clone(), 0..4u64).prop_map(|(t, n)| Op::ReleaseEarmarks(t, n)),
        2 => t.clone().prop_map(Op::AllocateCopy),
        2 => t.prop_map(Op::EarmarkUnreserved),
    ]
}

/// The simulated pool and the obvious model of what the ledger must do,
/// written without the ledger's code.
#[derive(Debug)]
struct Model {
    capacity: u64,
    used: u64,
    held: [u64; THINS],
    earmarked: [u64; THINS],
}

impl Model {
    fn free(&self) -> u64 {
        self.capacity - self.used
    }
    fn reserved(&self) -> u128 {
        self.held
            .iter()
            .chain(self.earmarked.iter())
            .map(|&h| u128::from(h))
            .sum()
    }
    fn earmark(&mut self, t: usize) -> Result<Allocation, LedgerError> {
        if self.held[t] > 0 {
            self.held[t] -= 1;
            self.earmarked[t] += 1;
            return Ok(Allocation::Reserved);
        }
        if u128::from(self.free()) > self.reserved() {
            self.earmarked[t] += 1;
            Ok(Allocation::Unreserved)
        } else {
            Err(LedgerError::NoSpace)
        }
    }
    fn allocate_earmarked(&mut self, t: usize) -> Result<Allocation, LedgerError> {
        if self.earmarked[t] == 0 {
            return Err(LedgerError::NotHeld);
        }
        // Reserved blocks are free blocks: the allocation cannot fail.
        assert!(self.free() > 0);
        self.earmarked[t] -= 1;
        Ok(Allocation::Earmarked)
    }
    fn reserve(&mut self, t: usize, n: u64) -> Result<(), LedgerError> {
        let total = self.reserved() + u128::from(n);
        if total > u128::from(u64::MAX)
            || u128::from(self.held[t]) + u128::from(n) > u128::from(u64::MAX)
        {
            return Err(LedgerError::Overflow);
        }
        if total > u128::from(self.free()) {
            return Err(LedgerError::NoSpace);
        }
        self.held[t] += n;
        Ok(())
    }
    fn release(&mut self, t: usize, n: u64) -> Result<(), LedgerError> {
        if n > self.held[t] {
            return Err(LedgerError::NotHeld);
        }
        self.held[t] -= n;
        Ok(())
    }
    fn allocate_copy(&mut self, t: usize) -> Result<Allocation, LedgerError> {
        if u128::from(self.free()) > self.reserved() {
            return Ok(Allocation::Unreserved);
        }
        self.allocate(t)
    }
    fn earmark_unreserved(&mut self, t: usize) -> Result<Allocation, LedgerError> {
        if u128::from(self.free()) > self.reserved() {
            self.earmarked[t] += 1;
            Ok(Allocation::Unreserved)
        } else {
            Err(LedgerError::NoSpace)
        }
    }
    fn allocate(&mut self, t: usize) -> Result<Allocation, LedgerError> {
        if self.free() == 0 {
            return Err(LedgerError::NoSpace);
        }
        if self.held[t] > 0 {
            self.held[t] -= 1;
            return Ok(Allocation::Reserved);
        }
        let others: u128 = self.reserved();
        if u128::from(self.free()) > others {
            Ok(Allocation::Unreserved)
        } else {
            Err(LedgerError::NoSpace)
        }
    }
}

fn check(
    ledger: &PoolLedger,
    thins: &[ThinReservation],
    model: &Model,
) -> Result<(), TestCaseError> {
    for (t, thin) in thins.iter().enumerate() {
        prop_assert_eq!(thin.blocks(), model.held[t], "device {}", t);
        prop_assert_eq!(
            thin.earmarked(),
            model.earmarked[t],
            "device {} earmarks",
            t
        );
    }
    prop_assert_eq!(
        u128::from(ledger.reserved()),
        model.reserved(),
        "pool total = sum of devices"
    );
    prop_assert!(
        ledger.reserved() <= model.free(),
        "over-committed: {} reserved, {} free",
        ledger.reserved(),
        model.free()
    );
    prop_assert_eq!(
        ledger.unreserved(model.free()),
        model.free() - ledger.reserved()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn ledger_matches_model(capacity in 0..48u64, ops in prop::collection::vec(op(), 0..80)) {
        let mut ledger = PoolLedger::new();
        let mut thins: [ThinReservation; THINS] = Default::default();
        let mut model = Model { capacity, used: 0, held: [0; THINS], earmarked: [0; THINS] };

        for op in ops {
            let free = model.free();
            match op {
                Op::Reserve(t, n) => {
                    prop_assert_eq!(ledger.reserve(&mut thins[t], n, free), model.reserve(t, n));
                }
                Op::Release(t, n) => {
                    prop_assert_eq!(ledger.release(&mut thins[t], n), model.release(t, n));
                }
                Op::Set(t, n) => {
                    let held = model.held[t];
                    let want = if n >= held { model.reserve(t, n - held) } else { model.release(t, held - n) };
                    prop_assert_eq!(ledger.set(&mut thins[t], n, free), want);
                }
                Op::Allocate(t) => {
                    let got = ledger.allocate(&mut thins[t], free);
                    prop_assert_eq!(got, model.allocate(t));
                    if got.is_ok() {
                        model.used += 1;
                    }
                }
                Op::AllocateFails(t) => {
                    let before = model.held[t];
                    let got = ledger.allocate(&mut thins[t], free);
                    prop_assert_eq!(got, model.allocate(t));
                    if let Ok(how) = got {
                        ledger.allocation_failed(&mut thins[t], how);
                        model.held[t] = before;
                    }
                }
                Op::Discard(n) => model.used -= n.min(model.used),
                Op::Grow(n) => model.capacity += n,
                Op::Remove(t) => {
                    ledger.remove(&mut thins[t]);
                    model.held[t] = 0;
                    model.earmarked[t] = 0;
                }
                Op::Earmark(t) => {
                    prop_assert_eq!(ledger.earmark(&mut thins[t], free), model.earmark(t));
                }
                Op::AllocateEarmarked(t) => {
                    let got = ledger.allocate_earmarked(&mut thins[t]);
                    prop_assert_eq!(got, model.allocate_earmarked(t));
                    if got.is_ok() {
                        model.used += 1;
                    }
                }
                Op::AllocateEarmarkedFails(t) => {
                    let got = ledger.allocate_earmarked(&mut thins[t]);
                    prop_assert_eq!(got, model.allocate_earmarked(t));
                    if let Ok(how) = got {
                        ledger.allocation_failed(&mut thins[t], how);
                        model.earmarked[t] += 1;
                    }
                }
                Op::ReleaseEarmarks(t, n) => {
                    let want = if n > model.earmarked[t] {
                        Err(LedgerError::NotHeld)
                    } else {
                        model.earmarked[t] -= n;
                        Ok(())
                    };
                    prop_assert_eq!(ledger.release_earmarks(&mut thins[t], n), want);
                }
                Op::AllocateCopy(t) => {
                    let got = ledger.allocate_copy(&mut thins[t], free);
                    prop_assert_eq!(got, model.allocate_copy(t));
                    if got.is_ok() {
                        model.used += 1;
                    }
                }
                Op::EarmarkUnreserved(t) => {
                    let held = model.held[t];
                    prop_assert_eq!(
                        ledger.earmark_unreserved(&mut thins[t], free),
                        model.earmark_unreserved(t)
                    );
                    prop_assert_eq!(thins[t].blocks(), held, "the holder's reservation is not touched");
                }
            }
            check(&ledger, &thins, &model)?;
        }

        // Every promise can be kept: each device allocates all it holds,
        // whatever unreserved writers did before.
        for (t, thin) in thins.iter_mut().enumerate() {
            for _ in 0..thin.blocks() {
                let free = model.free();
                prop_assert_eq!(ledger.allocate(thin, free), Ok(Allocation::Reserved));
                model.used += 1;
                model.held[t] -= 1;
            }
            for _ in 0..thin.earmarked() {
                prop_assert_eq!(ledger.allocate_earmarked(thin), Ok(Allocation::Earmarked));
                prop_assert!(model.free() > 0, "an earmark without a free block");
                model.used += 1;
                model.earmarked[t] -= 1;
            }
        }
        // Nothing leaks: with every device gone, nothing is reserved.
        for thin in thins.iter_mut() {
            ledger.remove(thin);
        }
        prop_assert_eq!(ledger.reserved(), 0);
    }

    /// An unreserved writer fills the pool: it must stop exactly where the
    /// reservations begin, and the holder can still allocate all it holds.
    #[test]
    fn unreserved_writer_cannot_steal(capacity in 1..200u64, promised in 0..200u64) {
        let mut ledger = PoolLedger::new();
        let (mut holder, mut writer) = (ThinReservation::new(), ThinReservation::new());
        let mut used = 0;
        let granted = ledger.reserve(&mut holder, promised, capacity).is_ok();
        prop_assert_eq!(granted, promised <= capacity);
        while ledger.allocate(&mut writer, capacity - used).is_ok() {
            used += 1;
        }
        let promised = holder.blocks();
        prop_assert_eq!(used, capacity - promised);
        for _ in 0..promised {
            prop_assert_eq!(ledger.allocate(&mut holder, capacity - used), Ok(Allocation::Reserved));
            used += 1;
        }
        prop_assert_eq!(used, capacity);
        prop_assert_eq!(ledger.reserved(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// An earmark chunk against a set of earmarked blocks.
    #[test]
    fn earmark_chunk_matches_set(ops in prop::collection::vec((0..4u8, 0..600u32, 0..600u32), 0..200)) {
        let mut chunk = EarmarkChunk::new();
        let mut set = BTreeSet::new();
        for (what, a, b) in ops {
            let bit = a % EARMARK_CHUNK_BLOCKS as u32;
            match what {
                0 => prop_assert_eq!(chunk.insert(bit), set.insert(bit)),
                1 => prop_assert_eq!(chunk.remove(bit), set.remove(&bit)),
                2 => {
                    let (lo, hi) = (a.min(b), a.max(b));
                    let top = hi.min(EARMARK_CHUNK_BLOCKS as u32);
                    let gone: Vec<u32> = set.iter().copied().filter(|&b| b >= lo && b < top).collect();
                    for g in &gone {
                        set.remove(g);
                    }
                    prop_assert_eq!(chunk.remove_range(lo, hi), gone.len() as u32);
                }
                _ => prop_assert_eq!(chunk.contains(bit), set.contains(&bit)),
            }
            prop_assert_eq!(chunk.count() as usize, set.len());
            prop_assert_eq!(chunk.is_empty(), set.is_empty());
        }
    }

    /// Pinned ranges join exactly when they overlap or touch, into their
    /// union, and empty ranges join nothing.
    #[test]
    fn merge_pin_is_union(a in (0..64u64, 0..64u64), b in (0..64u64, 0..64u64)) {
        let set = |r: (u64, u64)| (r.0..r.1).collect::<BTreeSet<u64>>();
        let touch = a.0 < a.1 && b.0 < b.1 && a.0 <= b.1 && b.0 <= a.1;
        match merge_pin(a, b) {
            Some(u) => {
                prop_assert!(touch);
                let both: BTreeSet<u64> = set(a).union(&set(b)).copied().collect();
                prop_assert_eq!(set(u), both);
            }
            None => prop_assert!(!touch),
        }
    }

    /// Promises are bounded by the metadata their mappings need: never more
    /// than the free data blocks, none at or under the margin, and each
    /// promised block leaves a metadata block for every
    /// MAPPINGS_PER_METADATA_BLOCK of them beyond the margin.
    #[test]
    fn promisable_keeps_metadata_for_the_mappings(free in any::<u64>(), meta in any::<u64>()) {
        let p = promisable(free, meta);
        prop_assert!(p <= free);
        if meta <= METADATA_MARGIN_BLOCKS {
            prop_assert_eq!(p, 0);
        } else {
            let need = u128::from(p).div_ceil(u128::from(MAPPINGS_PER_METADATA_BLOCK));
            prop_assert!(need + u128::from(METADATA_MARGIN_BLOCKS) <= u128::from(meta));
            // And it is the largest such count, or all of `free`.
            let one_more = u128::from(p) + 1;
            prop_assert!(
                p == free
                    || one_more.div_ceil(u128::from(MAPPINGS_PER_METADATA_BLOCK))
                        + u128::from(METADATA_MARGIN_BLOCKS)
                        > u128::from(meta)
                    || p == u64::MAX
            );
        }
    }

    /// Blocks map to one chunk and bit each, and back.
    #[test]
    fn earmark_locate_is_exact(block in any::<u64>()) {
        let (chunk, bit) = EarmarkChunk::locate(block);
        prop_assert!(u64::from(bit) < EARMARK_CHUNK_BLOCKS);
        prop_assert_eq!(chunk * EARMARK_CHUNK_BLOCKS + u64::from(bit), block);
    }
}

#[test]
fn errors_name_their_errno() {
    assert_eq!(LedgerError::NoSpace.errno_name(), "ENOSPC");
    assert_eq!(LedgerError::NotHeld.errno_name(), "EINVAL");
    assert_eq!(LedgerError::Overflow.errno_name(), "EOVERFLOW");
}
