// SPDX-License-Identifier: GPL-2.0

//! Refused buffered writes against concurrent writers: XFS writes back and
//! retries while [`Books::flush_again`] says write-back may help. Writers
//! dirty isolated blocks (random 4 KiB writes into sparse files), each of
//! which holds a whole thin block until write-back packs it next to the
//! others. Whatever the schedule, a writer's retries end, and a refusal
//! stands only when the pool cannot back the write with nothing left to
//! write back.

mod common;

use common::ModelPool;
use proptest::prelude::*;
use thin_reserve_host::books::Books;
use thin_reserve_host::geometry::{BlockSize, MIN_BLOCK_SECTORS};
use thin_reserve_host::policy::ThinFs;

/// Retries XFS would make before anything else is assumed broken.
const RETRY_LIMIT: u32 = 100_000;

struct World {
    fs_sectors: u64,
    k: u64,
    fs_blocks: u64,
    pool: ModelPool,
    books: Books,
    /// Dirty isolated delayed blocks, one extent each.
    dirty: u64,
    /// Write-back allocates here and onwards (XFS packs such blocks near
    /// each other; a seed makes it skip to the next thin block at times).
    next: u64,
    written: u64,
}

impl World {
    fn new(thin_mult: u64, capacity: u64) -> Self {
        let thin = BlockSize::new(thin_mult * MIN_BLOCK_SECTORS).unwrap();
        let fs_sectors = 8;
        // A thin volume ten times the pool.
        let device = capacity * 10 * thin.sectors();
        let fs = ThinFs::new(thin, fs_sectors, device).unwrap();
        let mut pool = ModelPool::new(thin.sectors(), capacity);
        let mut books = Books::new(fs, 1, 32);
        books.open(&mut pool).unwrap();
        World {
            fs_sectors,
            k: thin.sectors() / fs_sectors,
            fs_blocks: device / fs_sectors,
            pool,
            books,
            dirty: 0,
            next: 0,
            written: 0,
        }
    }

    /// One 4 KiB write into a hole: a new delayed extent of one block.
    fn write(&mut self) -> bool {
        let ok = self
            .books
            .delalloc(&mut self.pool, [0, 0], [1, 0], true)
            .is_ok();
        if ok {
            self.dirty += 1;
        }
        ok
    }

    /// Write-back of `n` dirty blocks; `skip` sends some to a fresh thin
    /// block (scattered allocation).
    fn write_back(&mut self, n: u64, mut skip: u64) -> Result<(), TestCaseError> {
        for _ in 0..n.min(self.dirty) {
            if skip & 1 == 1 {
                self.next = self.next.div_ceil(self.k) * self.k;
            }
            skip >>= 1;
            prop_assert!(self.next < self.fs_blocks);
            let r = self
                .books
                .allocated(&mut self.pool, self.next * self.fs_sectors, 1, 0, 0);
            prop_assert_eq!(r, Ok(()), "write-back of a delayed block not provisioned");
            self.books
                .delalloc(&mut self.pool, [1, 0], [0, 0], false)
                .unwrap();
            self.next += 1;
            self.dirty -= 1;
            self.written += 1;
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Writer 0 writes until a refusal stands; the others dirty blocks
    /// while each write-back runs (up to `during` each, by the schedule).
    /// The refusal stands only with nothing dirty left and the pool unable
    /// to back one more block beyond the allowance; the retries end.
    #[test]
    fn a_refusal_stands_only_when_the_pool_is_full(
        thin_mult in prop::sample::select(vec![1u64, 2, 4, 8, 16]),
        capacity in 24..200u64,
        writers in 1..5u64,
        schedule in prop::collection::vec((0..64u64, any::<u64>()), 1..64),
    ) {
        let mut w = World::new(thin_mult, capacity);
        let mut step = 0usize;
        let mut retries = 0u32;
        'writing: loop {
            if w.write() {
                continue;
            }
            // XFS asks at every refusal; it retries once anyway, then as
            // long as the books say so. Other writers keep dirtying blocks
            // while each write-back runs.
            let mut mark = 0u64;
            let mut first = true;
            loop {
                let again = w.books.flush_again(&mut mark);
                if !again && !first {
                    break 'writing;
                }
                first = false;
                let (during, skip) = schedule[step % schedule.len()];
                step += 1;
                let dirty_at_start = w.dirty;
                w.write_back(dirty_at_start, skip)?;
                for _ in 0..during * (writers - 1) {
                    if !w.write() {
                        break;
                    }
                }
                if w.write() {
                    continue 'writing;
                }
                retries += 1;
                prop_assert!(retries < RETRY_LIMIT, "retries do not end");
            }
        }
        // What was dirty at the last write-back is written; blocks dirtied
        // during it would be written by the next one, and keep the writer
        // retrying (flush_again), so the refusal stood with none.
        prop_assert_eq!(w.dirty, 0, "refused with {} blocks dirty", w.dirty);
        prop_assert_eq!(w.books.delalloc_cost(), 0);
        // The pool cannot back one more block beyond the allowance.
        let mapped = w.pool.mapped.len() as u64;
        prop_assert!(
            mapped + w.books.allowance() + 1 > capacity,
            "refused with {} of {} thin blocks mapped, allowance {}",
            mapped,
            capacity,
            w.books.allowance()
        );
        prop_assert!(w.written > 0);
    }
}

#[test]
fn the_first_refusal_only_sets_the_mark() {
    let mut w = World::new(16, 64);
    let mut mark = 0;
    assert!(w.write());
    assert!(!w.books.flush_again(&mut mark));
    assert_ne!(mark, 0);
}

#[test]
fn retries_follow_the_delayed_extents() {
    let mut w = World::new(16, 64);
    let mut mark = 0;
    assert!(w.write());
    assert!(w.write());
    assert!(!w.books.flush_again(&mut mark));
    // Nothing moved since: the refusal stands.
    assert!(!w.books.flush_again(&mut mark));
    // Another writer dirtied a block: retry.
    assert!(w.write());
    assert!(w.books.flush_again(&mut mark));
    // Write-back took one of three: retry.
    w.write_back(1, 0).unwrap();
    assert!(w.books.flush_again(&mut mark));
    assert!(!w.books.flush_again(&mut mark));
    // Write-back of the rest, with nothing dirty left: one more retry,
    // which the write may win; after that the refusal stands.
    w.write_back(2, 0).unwrap();
    assert_eq!(w.books.delalloc_cost(), 0);
    assert!(w.books.flush_again(&mut mark));
    assert!(!w.books.flush_again(&mut mark));
    // Refused writes move nothing.
    while w.write() {}
    let _ = w.books.flush_again(&mut mark);
    assert!(!w.write());
    assert!(!w.books.flush_again(&mut mark));
}

/// One retry, as XFS makes for any filesystem, refuses a writer early when
/// another dirties blocks during its write-back; following the delayed
/// extents lets it through until the pool is full.
#[test]
fn one_retry_is_not_enough_with_a_concurrent_writer() {
    let run = |follow: bool| {
        let mut w = World::new(16, 256);
        loop {
            if w.write() {
                continue;
            }
            let mut mark = 0;
            let mut first = true;
            let stood = loop {
                let again = follow && w.books.flush_again(&mut mark);
                if !again && !first {
                    break true;
                }
                first = false;
                w.write_back(w.dirty, 0).unwrap();
                // The other writer dirties as much as the pool backs.
                while w.write() {}
                if w.write() {
                    break false;
                }
            };
            if stood {
                return w.pool.mapped.len() as u64;
            }
        }
    };
    let once = run(false);
    let followed = run(true);
    assert!(once < 16, "one retry: {} mapped", once);
    assert!(
        followed + 16 + 1 > 256 - 16,
        "following: {} mapped",
        followed
    );
}
