// SPDX-License-Identifier: GPL-2.0

//! Properties of the thin-block geometry against plain u128 arithmetic.

use proptest::prelude::*;
use thin_reserve_host::geometry::{BlockSize, GeometryError, MAX_BLOCK_SECTORS, MIN_BLOCK_SECTORS};

fn block_size() -> impl Strategy<Value = BlockSize> {
    (1..=MAX_BLOCK_SECTORS / MIN_BLOCK_SECTORS)
        .prop_map(|n| BlockSize::new(n * MIN_BLOCK_SECTORS).unwrap())
}

#[test]
fn block_size_limits_match_dm_thin() {
    assert_eq!(BlockSize::new(0), Err(GeometryError::NotAligned));
    assert_eq!(BlockSize::new(64), Err(GeometryError::NotAligned));
    assert_eq!(BlockSize::new(192), Err(GeometryError::NotAligned));
    assert_eq!(BlockSize::new(384 + 1), Err(GeometryError::NotAligned));
    assert!(BlockSize::new(128).is_ok());
    assert!(
        BlockSize::new(384).is_ok(),
        "non-power-of-two multiples of 64 KiB are valid"
    );
    assert!(BlockSize::new(MAX_BLOCK_SECTORS).is_ok());
    assert_eq!(
        BlockSize::new(MAX_BLOCK_SECTORS + MIN_BLOCK_SECTORS),
        Err(GeometryError::NotAligned)
    );
}

proptest! {
    #[test]
    fn block_size_accepts_exactly_dm_thin_sizes(sectors in any::<u64>()) {
        let valid = (MIN_BLOCK_SECTORS..=MAX_BLOCK_SECTORS).contains(&sectors)
            && sectors % MIN_BLOCK_SECTORS == 0;
        prop_assert_eq!(BlockSize::new(sectors).is_ok(), valid);
    }

    #[test]
    fn sectors_to_blocks_is_exact_or_refused(bs in block_size(), sectors in any::<u64>()) {
        match bs.sectors_to_blocks(sectors) {
            Ok(blocks) => {
                prop_assert_eq!(sectors % bs.sectors(), 0);
                prop_assert_eq!(bs.blocks_to_sectors(blocks), Ok(sectors));
            }
            Err(e) => {
                prop_assert_eq!(e, GeometryError::NotAligned);
                prop_assert_ne!(sectors % bs.sectors(), 0);
            }
        }
    }

    #[test]
    fn blocks_to_sectors_overflows_only_past_u64(bs in block_size(), blocks in any::<u64>()) {
        let wide = u128::from(blocks) * u128::from(bs.sectors());
        match bs.blocks_to_sectors(blocks) {
            Ok(sectors) => prop_assert_eq!(u128::from(sectors), wide),
            Err(e) => {
                prop_assert_eq!(e, GeometryError::Overflow);
                prop_assert!(wide > u128::from(u64::MAX));
            }
        }
    }

    #[test]
    fn covering_blocks_is_the_smallest_cover(
        bs in block_size(),
        start in any::<u64>(),
        len in prop_oneof![0..4 * MAX_BLOCK_SECTORS, any::<u64>()],
    ) {
        let s = u128::from(bs.sectors());
        let end = u128::from(start) + u128::from(len);
        match bs.covering_blocks(start, len) {
            Ok(r) => {
                prop_assert!(end <= u128::from(u64::MAX));
                let first = u128::from(r.first);
                let last_exclusive = first + u128::from(r.count);
                // Covers the range...
                prop_assert!(first * s <= u128::from(start));
                prop_assert!(last_exclusive * s >= end);
                // ...and no block more than needed.
                prop_assert!((first + 1) * s > u128::from(start));
                if len > 0 {
                    prop_assert!((last_exclusive - 1) * s < end);
                } else {
                    prop_assert!(r.count <= 1);
                    prop_assert_eq!(r.count, u64::from(u128::from(start) % s != 0));
                }
            }
            Err(e) => {
                prop_assert_eq!(e, GeometryError::Overflow);
                prop_assert!(end > u128::from(u64::MAX));
            }
        }
    }

    #[test]
    fn contained_blocks_is_the_largest_inside(
        bs in block_size(),
        start in any::<u64>(),
        len in prop_oneof![0..4 * MAX_BLOCK_SECTORS, any::<u64>()],
    ) {
        let s = u128::from(bs.sectors());
        let begin = u128::from(start);
        let end = begin + u128::from(len);
        match bs.contained_blocks(start, len) {
            Ok(r) => {
                prop_assert!(end <= u128::from(u64::MAX));
                let first = u128::from(r.first);
                let last_exclusive = first + u128::from(r.count);
                if r.count > 0 {
                    // Inside the range...
                    prop_assert!(first * s >= begin);
                    prop_assert!(last_exclusive * s <= end);
                }
                // ...and no block inside it left out.
                let lo = begin.div_ceil(s);
                let hi = end / s;
                prop_assert_eq!(u128::from(r.count), hi.saturating_sub(lo));
            }
            Err(e) => {
                prop_assert_eq!(e, GeometryError::Overflow);
                prop_assert!(end > u128::from(u64::MAX));
            }
        }
    }
}
