// SPDX-License-Identifier: GPL-2.0

//! dm-thin block reservations.
//!
//! A filesystem on an over-provisioned thin volume learns that the pool is
//! full only when writeback fails. This module lets it reserve pool space
//! ahead of its writes instead: it keeps, per thin pool, a ledger of blocks
//! promised to each thin device, refuses promises the pool cannot keep
//! (`-ENOSPC`), and makes sure unreserved writers cannot consume blocks
//! promised to others.
//!
//! dm-thin owns the pools and allocates; this module decides who may
//! allocate and keeps the books. It registers a `struct dm_thin_reserve_ops`
//! with dm-thin (see `include/linux/dm-thin-reserve.h` in the C hook series
//! under `patches/`), which calls it with the pool's `reserve_lock` held
//! from the `get_reserved_space`/`set_reserved_space` block device
//! operations, before every data-block allocation, when a range is
//! provisioned or discarded, and when a thin device or pool goes away. Each
//! pool with a ledger holds a reference on this module, so it cannot be
//! unloaded while any reservation exists.
//!
//! Provisioning earmarks unmapped virtual blocks instead of allocating
//! them: the earmark holds one pool block for the write that will map the
//! block, so nothing is written or zeroed ahead of the data. Earmarks are
//! kept as one 512-bit [`EarmarkChunk`] per 512 virtual blocks that have
//! any, so that the allocation path only clears a bit.
//!
//! The arithmetic lives in `dm_thin_reserve/`, which has no kernel
//! dependencies and is property-tested on the host.

use core::ffi::{c_int, c_void};
use core::ptr;
use kernel::bindings;
use kernel::error::code::{EINVAL, ENOMEM, ENOSPC};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNodeReservation};

/// Sector/block arithmetic; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/geometry.rs"]
pub mod geometry;

/// The per-pool reservation ledger; shared verbatim with the host test crate.
#[path = "dm_thin_reserve/ledger.rs"]
pub mod ledger;

use geometry::{BlockSize, GeometryError};
use ledger::{Allocation, EarmarkChunk, LedgerError, PoolLedger, ThinReservation};

/// Version of this extension, printed at load so test logs say what ran.
const VERSION: &str = "0.3.0";

module! {
    type: DmThinReserve,
    name: "dm_thin_reserve",
    author: "thin-reserve developers",
    description: "dm-thin block reservation ledger",
    license: "GPL",
}

/// What dm-thin knows as a pool's `ledger`: the books of one pool.
struct PoolState {
    geometry: BlockSize,
    ledger: PoolLedger,
    /// Reservations by thin device id; devices that hold nothing are absent.
    thins: RBTree<u32, ThinState>,
}

/// One thin device's reservation and earmarks.
struct ThinState {
    reservation: ThinReservation,
    /// Earmarked virtual blocks by chunk number; chunks without any are
    /// absent. Their bits add up to `reservation.earmarked()`.
    earmarks: RBTree<u64, EarmarkChunk>,
}

impl ThinState {
    fn new() -> Self {
        Self {
            reservation: ThinReservation::new(),
            earmarks: RBTree::new(),
        }
    }

    /// Whether virtual block `block` is earmarked.
    fn is_earmarked(&self, block: u64) -> bool {
        let (chunk, bit) = EarmarkChunk::locate(block);
        self.earmarks.get(&chunk).is_some_and(|c| c.contains(bit))
    }

    /// Clears `block`'s earmark bit, dropping its chunk when that empties.
    fn clear_earmark(&mut self, block: u64) {
        let (chunk, bit) = EarmarkChunk::locate(block);
        let empty = match self.earmarks.get_mut(&chunk) {
            Some(c) => {
                c.remove(bit);
                c.is_empty()
            }
            None => false,
        };
        if empty {
            self.earmarks.remove(&chunk);
        }
    }

    /// Clears the earmark bits of `[begin, end)`; returns how many were set.
    fn clear_earmarks(&mut self, begin: u64, end: u64) -> u64 {
        let (first, _) = EarmarkChunk::locate(begin);
        let mut removed: u64 = 0;
        let mut cursor = self.earmarks.cursor_lower_bound(&first);
        while let Some(mut c) = cursor {
            let (&chunk, bits) = c.current_mut();
            let base = chunk.saturating_mul(ledger::EARMARK_CHUNK_BLOCKS);
            if base >= end {
                break;
            }
            // Both bounds are within the chunk, so the casts cannot truncate.
            let lo = begin.saturating_sub(base).min(ledger::EARMARK_CHUNK_BLOCKS) as u32;
            let hi = (end - base).min(ledger::EARMARK_CHUNK_BLOCKS) as u32;
            removed += u64::from(bits.remove_range(lo, hi));
            if bits.is_empty() {
                // Removing yields the next node, or the previous one when
                // there is no next: stop unless it is further on.
                let (next, _node) = c.remove_current();
                cursor = next.filter(|n| *n.current().0 > chunk);
            } else {
                cursor = c.move_next();
            }
        }
        removed
    }
}

fn errno_of_geometry(e: GeometryError) -> c_int {
    match e {
        GeometryError::NotAligned => EINVAL.to_errno(),
        GeometryError::Overflow => -(bindings::EOVERFLOW as c_int),
    }
}

fn errno_of_ledger(e: LedgerError) -> c_int {
    match e {
        LedgerError::NoSpace => ENOSPC.to_errno(),
        LedgerError::NotHeld => EINVAL.to_errno(),
        LedgerError::Overflow => -(bindings::EOVERFLOW as c_int),
    }
}

/// Turns dm-thin's opaque ledger pointer back into the pool's books.
///
/// # Safety
///
/// `ledger` must come from [`pool_create`] and not yet be passed to
/// [`pool_destroy`], and the caller must hold the pool's `reserve_lock`,
/// which makes this the only reference for the duration of the call.
unsafe fn pool_state<'a>(ledger: *mut c_void) -> &'a mut PoolState {
    // SAFETY: Per this function's contract the pointer is a live
    // `PoolState` from `KBox::into_raw` and nobody else accesses it now.
    unsafe { &mut *ledger.cast::<PoolState>() }
}

/// `dm_thin_reserve_ops.pool_create`.
///
/// # Safety
///
/// Called by dm-thin only; the result is freed by [`pool_destroy`].
unsafe extern "C" fn pool_create(block_sectors: u64) -> *mut c_void {
    let Ok(geometry) = BlockSize::new(block_sectors) else {
        pr_err!("unsupported pool block size {} sectors\n", block_sectors);
        return ptr::null_mut();
    };
    let state = PoolState {
        geometry,
        ledger: PoolLedger::new(),
        thins: RBTree::new(),
    };
    match KBox::new(state, GFP_KERNEL) {
        Ok(state) => KBox::into_raw(state).cast(),
        Err(_) => ptr::null_mut(),
    }
}

/// `dm_thin_reserve_ops.pool_destroy`.
///
/// # Safety
///
/// Called by dm-thin only, once per pointer from [`pool_create`], when the
/// pool goes away and no other operation can run on it.
unsafe extern "C" fn pool_destroy(ledger: *mut c_void) {
    // SAFETY: dm-thin passes the pointer `pool_create` returned, once, when
    // the pool goes away and nothing else can reach it.
    drop(unsafe { KBox::from_raw(ledger.cast::<PoolState>()) });
}

/// `dm_thin_reserve_ops.set`: the block interface's absolute form.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn set(ledger: *mut c_void, dev_id: u32, sectors: u64, free: u64) -> c_int {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    let blocks = match state.geometry.sectors_to_blocks(sectors) {
        Ok(blocks) => blocks,
        Err(e) => return errno_of_geometry(e),
    };
    if let Some(thin) = state.thins.get_mut(&dev_id) {
        if let Err(e) = state.ledger.set(&mut thin.reservation, blocks, free) {
            return errno_of_ledger(e);
        }
        if thin.reservation.is_empty() {
            state.thins.remove(&dev_id);
        }
        return 0;
    }
    if blocks == 0 {
        return 0;
    }
    // Allocate the node first, so that a failure leaves the books untouched.
    let Ok(node) = RBTreeNodeReservation::new(GFP_KERNEL) else {
        return ENOMEM.to_errno();
    };
    let mut thin = ThinState::new();
    if let Err(e) = state.ledger.set(&mut thin.reservation, blocks, free) {
        return errno_of_ledger(e);
    }
    state.thins.insert(node.into_node(dev_id, thin));
    0
}

/// `dm_thin_reserve_ops.get`.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held. `sectors` points to a writable `u64`.
unsafe extern "C" fn get(ledger: *mut c_void, dev_id: u32, sectors: *mut u64) -> c_int {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    let blocks = state
        .thins
        .get(&dev_id)
        .map_or(0, |thin| thin.reservation.blocks());
    match state.geometry.blocks_to_sectors(blocks) {
        Ok(value) => {
            // SAFETY: dm-thin passes a valid pointer to a `u64`.
            unsafe { sectors.write(value) };
            0
        }
        Err(e) => errno_of_geometry(e),
    }
}

/// `dm_thin_reserve_ops.pool_reserved`.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn pool_reserved(ledger: *mut c_void) -> u64 {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    unsafe { pool_state(ledger) }.ledger.reserved()
}

/// `dm_thin_reserve_ops.charge`: may `dev_id` allocate a data block for its
/// virtual block `block` now?
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn charge(ledger: *mut c_void, dev_id: u32, block: u64, free: u64) -> c_int {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    let how = match state.thins.get_mut(&dev_id) {
        Some(thin) if thin.is_earmarked(block) => {
            let how = state.ledger.allocate_earmarked(&mut thin.reservation);
            if how.is_ok() {
                thin.clear_earmark(block);
            }
            how
        }
        Some(thin) => state.ledger.allocate(&mut thin.reservation, free),
        None => state.ledger.allocate(&mut ThinReservation::new(), free),
    };
    match how {
        Ok(Allocation::Reserved) => bindings::DM_THIN_CHARGE_RESERVED as c_int,
        Ok(Allocation::Unreserved) => bindings::DM_THIN_CHARGE_UNRESERVED as c_int,
        Ok(Allocation::Earmarked) => bindings::DM_THIN_CHARGE_EARMARKED as c_int,
        Err(e) => errno_of_ledger(e),
    }
}

/// `dm_thin_reserve_ops.uncharge`: the allocation `charge` allowed failed.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn uncharge(ledger: *mut c_void, dev_id: u32, block: u64, how: c_int) {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held, the
    // same hold as the `charge` it undoes.
    let state = unsafe { pool_state(ledger) };
    // A device charged from its reservation or an earmark had an entry at
    // `charge` time, under the same lock hold, and still has it.
    let Some(thin) = state.thins.get_mut(&dev_id) else {
        return;
    };
    if how == bindings::DM_THIN_CHARGE_RESERVED as c_int {
        state
            .ledger
            .allocation_failed(&mut thin.reservation, Allocation::Reserved);
    } else if how == bindings::DM_THIN_CHARGE_EARMARKED as c_int {
        // Put the earmark back. Its chunk may have gone with the bit; if
        // there is no memory for it, the block goes back into the
        // device's reservation instead, so that the counts stay true.
        let (chunk, bit) = EarmarkChunk::locate(block);
        let restored = match thin.earmarks.get_mut(&chunk) {
            Some(c) => c.insert(bit),
            None => {
                let mut c = EarmarkChunk::new();
                c.insert(bit);
                thin.earmarks
                    .try_create_and_insert(chunk, c, GFP_NOWAIT)
                    .is_ok()
            }
        };
        let back = if restored {
            Allocation::Earmarked
        } else {
            Allocation::Reserved
        };
        state.ledger.allocation_failed(&mut thin.reservation, back);
    }
}

/// `dm_thin_reserve_ops.earmark`: provisioning promises `dev_id`'s unmapped
/// virtual block `block` the data block its write will need.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn earmark(ledger: *mut c_void, dev_id: u32, block: u64, free: u64) -> c_int {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    if state
        .thins
        .get(&dev_id)
        .is_some_and(|t| t.is_earmarked(block))
    {
        return 0;
    }
    // Allocate the tree nodes that are missing first, so that a failure
    // leaves the books untouched.
    let (chunk, bit) = EarmarkChunk::locate(block);
    let thin_node = match state.thins.get(&dev_id) {
        Some(_) => None,
        None => match RBTreeNodeReservation::new(GFP_KERNEL) {
            Ok(node) => Some(node),
            Err(_) => return ENOMEM.to_errno(),
        },
    };
    let chunk_node = match state.thins.get(&dev_id) {
        Some(thin) if thin.earmarks.get(&chunk).is_some() => None,
        _ => match RBTreeNodeReservation::new(GFP_KERNEL) {
            Ok(node) => Some(node),
            Err(_) => return ENOMEM.to_errno(),
        },
    };
    if let Some(node) = thin_node {
        state.thins.insert(node.into_node(dev_id, ThinState::new()));
    }
    let Some(thin) = state.thins.get_mut(&dev_id) else {
        return EINVAL.to_errno();
    };
    if let Err(e) = state.ledger.earmark(&mut thin.reservation, free) {
        if thin.reservation.is_empty() {
            state.thins.remove(&dev_id);
        }
        return errno_of_ledger(e);
    }
    match (thin.earmarks.get_mut(&chunk), chunk_node) {
        (Some(c), _) => {
            c.insert(bit);
        }
        (None, Some(node)) => {
            let mut c = EarmarkChunk::new();
            c.insert(bit);
            thin.earmarks.insert(node.into_node(chunk, c));
        }
        // The chunk was looked for above, under the same lock hold.
        (None, None) => return EINVAL.to_errno(),
    }
    1
}

/// `dm_thin_reserve_ops.discard`: `dev_id`'s virtual blocks `[begin, end)`
/// were discarded; their earmarks end.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn discard(ledger: *mut c_void, dev_id: u32, begin: u64, end: u64) {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    let Some(thin) = state.thins.get_mut(&dev_id) else {
        return;
    };
    let removed = thin.clear_earmarks(begin, end);
    // Cannot fail: every bit cleared was counted when it was set.
    let _ = state
        .ledger
        .release_earmarks(&mut thin.reservation, removed);
    if thin.reservation.is_empty() {
        state.thins.remove(&dev_id);
    }
}

/// `dm_thin_reserve_ops.delete_thin`: the device is gone from the pool.
///
/// # Safety
///
/// Called by dm-thin only: `ledger` comes from [`pool_create`] and is not yet
/// destroyed, and the pool's `reserve_lock` is held.
unsafe extern "C" fn delete_thin(ledger: *mut c_void, dev_id: u32) {
    // SAFETY: dm-thin calls with its ledger and `reserve_lock` held.
    let state = unsafe { pool_state(ledger) };
    if let Some(mut thin) = state.thins.remove(&dev_id) {
        state.ledger.remove(&mut thin.reservation);
    }
}

/// The operations table registered with dm-thin.
struct Registration(KBox<bindings::dm_thin_reserve_ops>);

// SAFETY: The table is written once in `init`, then only read (by dm-thin);
// its raw `owner` pointer is the module itself, valid as long as we are.
unsafe impl Send for Registration {}
// SAFETY: See `Send`: shared references only ever read it.
unsafe impl Sync for Registration {}

struct DmThinReserve {
    ops: Registration,
}

impl kernel::Module for DmThinReserve {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let ops = KBox::new(
            bindings::dm_thin_reserve_ops {
                owner: module.as_ptr(),
                pool_create: Some(pool_create),
                pool_destroy: Some(pool_destroy),
                set: Some(set),
                get: Some(get),
                pool_reserved: Some(pool_reserved),
                charge: Some(charge),
                uncharge: Some(uncharge),
                earmark: Some(earmark),
                discard: Some(discard),
                delete_thin: Some(delete_thin),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The table is heap-allocated and outlives the registration:
        // `drop` unregisters before it is freed.
        kernel::error::to_result(unsafe { bindings::dm_thin_reserve_register(&*ops) })?;
        pr_info!(
            "dm-thin reservation extension {} loaded (thin block {}..{} sectors)\n",
            VERSION,
            geometry::MIN_BLOCK_SECTORS,
            geometry::MAX_BLOCK_SECTORS
        );
        Ok(DmThinReserve {
            ops: Registration(ops),
        })
    }
}

impl Drop for DmThinReserve {
    fn drop(&mut self) {
        // SAFETY: Registered in `init`. Module exit only runs when no pool
        // holds a ledger (each holds a module reference), so dm-thin calls
        // none of the operations any more.
        unsafe { bindings::dm_thin_reserve_unregister(&*self.ops.0) };
        pr_info!("dm-thin reservation extension {} unloaded\n", VERSION);
    }
}
