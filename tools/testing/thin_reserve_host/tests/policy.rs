// SPDX-License-Identifier: GPL-2.0

//! The xfs_thin worst-case policy: whatever blocks a filesystem allocates,
//! the reservation covers the thin blocks they can newly map.

use proptest::prelude::*;
use std::collections::BTreeSet;
use thin_reserve_host::geometry::{BlockSize, GeometryError, MIN_BLOCK_SECTORS};
use thin_reserve_host::policy::ThinFs;

/// A thin block size (64 KiB..4 MiB), a filesystem block size dividing it
/// (512 B..64 KiB) and a device of up to 64 thin blocks plus a partial one.
fn thin_fs() -> impl Strategy<Value = (ThinFs, u64, u64)> {
    (1..=64u64, 0..=7u32, 1..=64u64, 0..128u64).prop_map(|(thin_mult, fs_shift, blocks, tail)| {
        let thin = BlockSize::new(thin_mult * MIN_BLOCK_SECTORS).unwrap();
        let fs = 1u64 << fs_shift;
        let device = blocks * thin.sectors() + tail / fs * fs;
        (ThinFs::new(thin, fs, device).unwrap(), fs, device)
    })
}

#[test]
fn refuses_block_sizes_the_model_cannot_cover() {
    let thin = BlockSize::new(128).unwrap();
    assert_eq!(
        ThinFs::new(thin, 0, 1 << 20),
        Err(GeometryError::NotAligned)
    );
    assert_eq!(
        ThinFs::new(thin, 256, 1 << 20),
        Err(GeometryError::NotAligned)
    );
    assert_eq!(
        ThinFs::new(thin, 48, 1 << 20),
        Err(GeometryError::NotAligned)
    );
    assert!(ThinFs::new(thin, 8, 1 << 20).is_ok());
    assert!(ThinFs::new(thin, 128, 1 << 20).is_ok());
}

proptest! {
    /// Any set of filesystem blocks maps no more thin blocks than reserved.
    #[test]
    fn worst_case_covers_any_placement(
        (fs, fs_sectors, device) in thin_fs(),
        picks in prop::collection::vec(any::<u64>(), 0..200),
    ) {
        let fs_blocks = device / fs_sectors;
        prop_assume!(fs_blocks > 0);
        let chosen: BTreeSet<u64> = picks.iter().map(|p| p % fs_blocks).collect();
        let touched: BTreeSet<u64> = chosen
            .iter()
            .map(|b| b * fs_sectors / fs.thin().sectors())
            .collect();
        let n = chosen.len() as u64;
        prop_assert!(touched.len() as u64 <= fs.worst_case_thin_blocks(n));
        prop_assert_eq!(
            fs.worst_case_sectors(n),
            Ok(fs.worst_case_thin_blocks(n) * fs.thin().sectors())
        );
    }

    /// The model is tight: one filesystem block in each of n thin blocks
    /// really needs n thin blocks, up to the size of the device.
    #[test]
    fn worst_case_is_needed((fs, fs_sectors, device) in thin_fs(), n in 0..100u64) {
        let thin_blocks = device.div_ceil(fs.thin().sectors());
        let placeable = n.min(thin_blocks);
        let touched: BTreeSet<u64> = (0..placeable)
            .map(|t| (t * fs.thin().sectors()) / fs_sectors * fs_sectors / fs.thin().sectors())
            .collect();
        prop_assert_eq!(touched.len() as u64, placeable);
        prop_assert_eq!(fs.worst_case_thin_blocks(n), placeable);
    }

    #[test]
    fn extent_sectors_is_exact_or_overflow((fs, fs_sectors, _d) in thin_fs(), start in any::<u64>(), len in any::<u64>()) {
        let s = u128::from(start);
        let l = u128::from(len) * u128::from(fs_sectors);
        match fs.extent_sectors(start, len) {
            Ok((a, b)) => {
                prop_assert_eq!((u128::from(a), u128::from(b)), (s, l));
                prop_assert!(s + l <= u128::from(u64::MAX));
            }
            Err(e) => {
                prop_assert_eq!(e, GeometryError::Overflow);
                prop_assert!(s + l > u128::from(u64::MAX));
            }
        }
    }
}

proptest! {
    /// One contiguous extent of `n` filesystem blocks, wherever it starts,
    /// never touches more thin blocks than a single-extent promise holds,
    /// and some start touches exactly that many (the bound is tight).
    #[test]
    fn one_extent_touches_at_most_its_promise((fs, fs_sectors, device) in thin_fs(), n in 1..2000u64) {
        let fs_blocks = device / fs_sectors;
        prop_assume!(n <= fs_blocks);
        let thin = fs.thin().sectors();
        let promise = fs.extent_thin_blocks(n);
        let mut worst = 0;
        let mut start = 0;
        while start + n <= fs_blocks {
            let first = start * fs_sectors / thin;
            let last = ((start + n) * fs_sectors - 1) / thin;
            worst = worst.max(last - first + 1);
            // Every start within one thin block and the next is enough.
            if start * fs_sectors > 2 * thin { break; }
            start += 1;
        }
        prop_assert!(worst <= promise, "{} blocks touched {} thin blocks, promise {}", n, worst, promise);
        let device_thin = device.div_ceil(thin);
        prop_assert!(worst == promise || promise == device_thin || start + n > fs_blocks,
            "loose: {} blocks touch at most {}, promise {}", n, worst, promise);
        prop_assert!(promise <= fs.worst_case_thin_blocks(n));
    }
}

#[test]
fn an_empty_extent_costs_nothing() {
    let fs = ThinFs::new(BlockSize::new(128).unwrap(), 8, 1 << 30).unwrap();
    assert_eq!(fs.extent_thin_blocks(0), 0);
    assert_eq!(fs.extent_thin_blocks(1), 1);
    assert_eq!(fs.extent_thin_blocks(16), 2);
    assert_eq!(fs.extent_thin_blocks(17), 2);
    assert_eq!(fs.extent_thin_blocks(18), 3);
    assert_eq!(
        fs.extent_thin_blocks(u64::MAX),
        fs.worst_case_thin_blocks(u64::MAX)
    );
}

proptest! {
    /// A free releases exactly the thin blocks it touches that lie wholly
    /// in the free extent it joins: never one that still holds an
    /// allocated block, and none that is free whole left out.
    #[test]
    fn a_free_releases_the_thin_blocks_it_leaves_wholly_free(
        (fs, fs_sectors, device) in thin_fs(),
        picks in (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()),
    ) {
        let fs_blocks = device / fs_sectors;
        prop_assume!(fs_blocks > 0);
        // A free extent [fa, fa + fl) and a freed range [a, a + l) in it.
        let fa = picks.0 % fs_blocks;
        let fl = 1 + picks.1 % (fs_blocks - fa);
        let a = fa + picks.2 % fl;
        let l = 1 + picks.3 % (fa + fl - a);
        let got = fs.released_sectors(a * fs_sectors, l, fa * fs_sectors, fl);
        let thin = fs.thin().sectors();
        let expected: BTreeSet<u64> = (0..device.div_ceil(thin))
            .filter(|t| {
                let (ts, te) = (t * thin, (t + 1) * thin);
                let touched = ts < (a + l) * fs_sectors && te > a * fs_sectors;
                let whole = ts >= fa * fs_sectors && te <= (fa + fl) * fs_sectors;
                touched && whole
            })
            .collect();
        let released: BTreeSet<u64> = match got {
            Some((start, len)) => {
                prop_assert!(len > 0);
                prop_assert_eq!(start % thin, 0);
                prop_assert_eq!(len % thin, 0);
                (start / thin..(start + len) / thin).collect()
            }
            None => BTreeSet::new(),
        };
        prop_assert_eq!(released, expected);
    }

    /// A freed range that is not inside its free extent, or that does not
    /// fit the arithmetic, releases nothing.
    #[test]
    fn a_free_outside_its_free_extent_releases_nothing(
        (fs, fs_sectors, _device) in thin_fs(),
        daddr in any::<u64>(),
        blocks in any::<u64>(),
        free_daddr in any::<u64>(),
        free_blocks in any::<u64>(),
    ) {
        let inside = |s: u128, l: u128, fs_: u128, fl: u128| s >= fs_ && s + l <= fs_ + fl;
        let f = u128::from(fs_sectors);
        let fits = |d: u64, b: u64| u128::from(d) + u128::from(b) * f <= u128::from(u64::MAX);
        if let Some((start, len)) = fs.released_sectors(daddr, blocks, free_daddr, free_blocks) {
            prop_assert!(fits(daddr, blocks) && fits(free_daddr, free_blocks));
            prop_assert!(blocks > 0);
            prop_assert!(inside(
                u128::from(daddr),
                u128::from(blocks) * f,
                u128::from(free_daddr),
                u128::from(free_blocks) * f
            ));
            prop_assert!(inside(
                u128::from(start),
                u128::from(len),
                u128::from(free_daddr),
                u128::from(free_blocks) * f
            ));
        }
    }
}

#[test]
fn the_metadata_allowance_follows_the_thin_block_size() {
    let fs = |thin_sectors| ThinFs::new(BlockSize::new(thin_sectors).unwrap(), 8, 1 << 30).unwrap();
    // Heads not counted yet (or too small to hold more than their slack):
    // 16 thin blocks for reserve-pool promises and a share per group, as
    // before: four 64 KiB blocks, one 256 KiB or 1 MiB block.
    assert_eq!(fs(128).metadata_allowance(16, 0), 16 + 4 * 16);
    assert_eq!(fs(512).metadata_allowance(16, 0), 16 + 16);
    assert_eq!(fs(2048).metadata_allowance(16, 0), 16 + 16);
    assert_eq!(fs(256).metadata_allowance(4, 0), 16 + 2 * 4);
    // Heads with room for the reserve-pool band cost nothing but 1 MiB, at
    // least a thin block.
    assert_eq!(fs(2048).metadata_allowance(0, 200), 1);
    assert_eq!(fs(1 << 21).metadata_allowance(0, 200), 1);
    assert_eq!(fs(512).metadata_allowance(0, 200), 4);
    // Heads with 22 blocks of room hold 6 of the band's 16 blocks.
    assert_eq!(fs(512).metadata_allowance(0, 22), 10);
}

#[test]
fn metadata_within_the_heads_room_is_free() {
    let fs = ThinFs::new(BlockSize::new(2048).unwrap(), 8, 1 << 30).unwrap();
    // 200 blocks of room: 16 left to unpromised metadata, 16 kept for the
    // reserve pool, 168 for every promise.
    assert_eq!(fs.metadata_thin_blocks(168, 0, 200), 0);
    assert_eq!(fs.metadata_thin_blocks(169, 0, 200), 1);
    assert_eq!(fs.metadata_thin_blocks(184, 16, 200), 0);
    assert_eq!(fs.metadata_thin_blocks(185, 17, 200), 1);
    // No room: a thin block a block.
    assert_eq!(fs.metadata_thin_blocks(10, 10, 0), 10);
}

proptest! {
    /// Every short group gets at least 256 KiB and at least one thin block,
    /// every filesystem 1 MiB and at least one, and at least one thin block
    /// for every block of the reserve-pool band the heads cannot hold; the
    /// arithmetic never wraps, whatever the geometry.
    #[test]
    fn the_metadata_allowance_covers_every_short_group(
        thin_mult in 1u64..=(1 << 14),
        short in any::<u32>(),
        room in any::<u64>(),
    ) {
        let thin_sectors = thin_mult * MIN_BLOCK_SECTORS;
        let fs = ThinFs::new(BlockSize::new(thin_sectors).unwrap(), 8, 1 << 40).unwrap();
        let base = fs.metadata_allowance(0, room);
        let band = room.saturating_sub(16).min(16);
        prop_assert!(base >= 1 && base * thin_sectors >= 2048);
        prop_assert!(base >= 16 - band);
        prop_assert!(base == 1 || base == 16 - band || (base - 1) * thin_sectors < 2048);
        let allowance = fs.metadata_allowance(short, room);
        let per_ag = (allowance - base) / u64::from(short.max(1));
        prop_assert!(allowance >= base + u64::from(short));
        if short > 0 {
            prop_assert!(per_ag * thin_sectors >= 512);
            prop_assert!(per_ag == 1 || (per_ag - 1) * thin_sectors < 512);
        }
    }
}
