// SPDX-License-Identifier: GPL-2.0

//! The pool ledger against a reference model, over random operation
//! sequences on a simulated pool: never over-commit, never negative, nothing
//! leaks, the same answers as the model, and every promise can be kept.

use proptest::prelude::*;
use thin_reserve_host::ledger::{Allocation, LedgerError, PoolLedger, ThinReservation};

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
        1 => t.prop_map(Op::Remove),
    ]
}

/// The simulated pool and the obvious model of what the ledger must do,
/// written without the ledger's code.
#[derive(Debug)]
struct Model {
    capacity: u64,
    used: u64,
    held: [u64; THINS],
}

impl Model {
    fn free(&self) -> u64 {
        self.capacity - self.used
    }
    fn reserved(&self) -> u128 {
        self.held.iter().map(|&h| u128::from(h)).sum()
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
        let mut model = Model { capacity, used: 0, held: [0; THINS] };

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

#[test]
fn errors_name_their_errno() {
    assert_eq!(LedgerError::NoSpace.errno_name(), "ENOSPC");
    assert_eq!(LedgerError::NotHeld.errno_name(), "EINVAL");
    assert_eq!(LedgerError::Overflow.errno_name(), "EOVERFLOW");
}
