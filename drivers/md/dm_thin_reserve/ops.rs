// SPDX-License-Identifier: GPL-2.0

//! The ledger interface of dm-thin (`include/linux/dm-thin-reserve.h`) as a
//! safe trait: the one place of this module that touches raw bindings.
//!
//! dm-thin calls a registered `struct dm_thin_reserve_ops` with an opaque
//! per-pool pointer and the pool's `reserve_lock` held. [`Registration`]
//! fills that table with trampolines for a [`Ledger`] type, turns the
//! pointer back into `&mut T` (exclusive: the lock is held) and the results
//! into errnos, so the driver implements plain safe methods.

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::ptr;
use kernel::bindings;
use kernel::error::Error;
use kernel::prelude::*;

/// Where an allowed allocation was charged (`DM_THIN_CHARGE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Charge {
    /// The device's own reservation.
    Reserved,
    /// Free blocks nobody reserved.
    Unreserved,
    /// The block's earmark.
    Earmarked,
}

impl Charge {
    fn to_c(self) -> c_int {
        // The constants are small; the casts cannot truncate.
        (match self {
            Charge::Reserved => bindings::DM_THIN_CHARGE_RESERVED,
            Charge::Unreserved => bindings::DM_THIN_CHARGE_UNRESERVED,
            Charge::Earmarked => bindings::DM_THIN_CHARGE_EARMARKED,
        }) as c_int
    }

    fn from_c(how: c_int) -> Option<Self> {
        [Charge::Reserved, Charge::Unreserved, Charge::Earmarked]
            .into_iter()
            .find(|c| c.to_c() == how)
    }
}

/// The books of one thin pool, as dm-thin drives them. Every method runs
/// with the pool's `reserve_lock` held, so `&mut self` is exclusive. See the
/// header for the contract of each operation.
pub(crate) trait Ledger: Sized + Send {
    /// A ledger for a pool of `block_sectors`-sector data blocks.
    fn new(block_sectors: u64) -> Result<KBox<Self>>;
    /// Sets `dev_id`'s reservation to `sectors`, with `free` blocks free.
    fn set(&mut self, dev_id: u32, sectors: u64, free: u64) -> Result;
    /// `dev_id`'s reservation in sectors.
    fn get(&self, dev_id: u32) -> Result<u64>;
    /// Blocks reserved in the pool.
    fn reserved(&self) -> u64;
    /// May `dev_id` allocate a data block for virtual `block` now?
    fn charge(&mut self, dev_id: u32, block: u64, free: u64, copy: bool) -> Result<Charge>;
    /// The allocation a `charge` allowed failed: undo it.
    fn uncharge(&mut self, dev_id: u32, block: u64, how: Charge);
    /// Earmarks `block`; `Ok(true)` if newly.
    fn earmark(&mut self, dev_id: u32, block: u64, free: u64, unreserved: bool) -> Result<bool>;
    /// Whether `block` is earmarked.
    fn is_earmarked(&self, dev_id: u32, block: u64) -> bool;
    /// Blocks `[begin, end)` were discarded.
    fn discard(&mut self, dev_id: u32, begin: u64, end: u64);
    /// Pins `[begin, end)`.
    fn pin(&mut self, dev_id: u32, begin: u64, end: u64) -> Result;
    /// The first pinned range that ends after `from`.
    fn next_pin(&self, dev_id: u32, from: u64) -> Option<(u64, u64)>;
    /// Unreserved free blocks with `free` free.
    fn unreserved(&self, free: u64) -> u64;
    /// Data blocks that may be promised with this much free.
    fn promisable(free: u64, free_metadata: u64) -> u64;
    /// Thin device `dev_id` was deleted.
    fn delete_thin(&mut self, dev_id: u32);
}

/// Turns dm-thin's opaque ledger pointer back into the pool's books.
///
/// # Safety
///
/// `ledger` must come from `pool_create::<T>` and not yet be passed to
/// `pool_destroy::<T>`, and the caller must hold the pool's `reserve_lock`,
/// which makes this the only reference for the duration of the call.
unsafe fn ledger<'a, T: Ledger>(ledger: *mut c_void) -> &'a mut T {
    // SAFETY: Per this function's contract the pointer is a live `T` from
    // `KBox::into_raw` and nobody else accesses it now.
    unsafe { &mut *ledger.cast::<T>() }
}

fn errno(result: Result) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

// The trampolines below are what dm-thin calls. For each: dm-thin passes
// the pointer `pool_create` returned, not yet destroyed, with the pool's
// `reserve_lock` held (the contract of `include/linux/dm-thin-reserve.h`),
// and valid pointers for the out parameters.

/// `dm_thin_reserve_ops.pool_create`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn pool_create<T: Ledger>(block_sectors: u64) -> *mut c_void {
    match T::new(block_sectors) {
        Ok(ledger) => KBox::into_raw(ledger).cast(),
        Err(_) => ptr::null_mut(),
    }
}

/// `dm_thin_reserve_ops.pool_destroy`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn pool_destroy<T: Ledger>(ledger: *mut c_void) {
    // SAFETY: dm-thin passes the pointer `pool_create` returned, once,
    // when the pool goes away and nothing else can reach it.
    drop(unsafe { KBox::from_raw(ledger.cast::<T>()) });
}

/// `dm_thin_reserve_ops.set`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn set<T: Ledger>(l: *mut c_void, dev_id: u32, sectors: u64, free: u64) -> c_int {
    // SAFETY: See the trampolines' contract above.
    errno(unsafe { ledger::<T>(l) }.set(dev_id, sectors, free))
}

/// `dm_thin_reserve_ops.get`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn get<T: Ledger>(l: *mut c_void, dev_id: u32, sectors: *mut u64) -> c_int {
    // SAFETY: See the trampolines' contract above.
    match unsafe { ledger::<T>(l) }.get(dev_id) {
        Ok(value) => {
            // SAFETY: dm-thin passes a valid pointer to a `u64`.
            unsafe { sectors.write(value) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `dm_thin_reserve_ops.pool_reserved`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn pool_reserved<T: Ledger>(l: *mut c_void) -> u64 {
    // SAFETY: See the trampolines' contract above.
    unsafe { ledger::<T>(l) }.reserved()
}

/// `dm_thin_reserve_ops.charge`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn charge<T: Ledger>(
    l: *mut c_void,
    dev_id: u32,
    block: u64,
    free: u64,
    copy: bool,
) -> c_int {
    // SAFETY: See the trampolines' contract above.
    match unsafe { ledger::<T>(l) }.charge(dev_id, block, free, copy) {
        Ok(how) => how.to_c(),
        Err(e) => e.to_errno(),
    }
}

/// `dm_thin_reserve_ops.uncharge`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn uncharge<T: Ledger>(l: *mut c_void, dev_id: u32, block: u64, how: c_int) {
    // Only what `charge` returned comes back; anything else changes nothing.
    if let Some(how) = Charge::from_c(how) {
        // SAFETY: See the trampolines' contract above.
        unsafe { ledger::<T>(l) }.uncharge(dev_id, block, how);
    }
}

/// `dm_thin_reserve_ops.earmark`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn earmark<T: Ledger>(
    l: *mut c_void,
    dev_id: u32,
    block: u64,
    free: u64,
    unreserved: bool,
) -> c_int {
    // SAFETY: See the trampolines' contract above.
    match unsafe { ledger::<T>(l) }.earmark(dev_id, block, free, unreserved) {
        Ok(newly) => c_int::from(newly),
        Err(e) => e.to_errno(),
    }
}

/// `dm_thin_reserve_ops.is_earmarked`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn is_earmarked<T: Ledger>(l: *mut c_void, dev_id: u32, block: u64) -> bool {
    // SAFETY: See the trampolines' contract above.
    unsafe { ledger::<T>(l) }.is_earmarked(dev_id, block)
}

/// `dm_thin_reserve_ops.discard`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn discard<T: Ledger>(l: *mut c_void, dev_id: u32, begin: u64, end: u64) {
    // SAFETY: See the trampolines' contract above.
    unsafe { ledger::<T>(l) }.discard(dev_id, begin, end)
}

/// `dm_thin_reserve_ops.pin`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn pin<T: Ledger>(l: *mut c_void, dev_id: u32, begin: u64, end: u64) -> c_int {
    // SAFETY: See the trampolines' contract above.
    errno(unsafe { ledger::<T>(l) }.pin(dev_id, begin, end))
}

/// `dm_thin_reserve_ops.next_pin`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn next_pin<T: Ledger>(
    l: *mut c_void,
    dev_id: u32,
    from: u64,
    begin: *mut u64,
    end: *mut u64,
) -> bool {
    // SAFETY: See the trampolines' contract above.
    let Some((b, e)) = unsafe { ledger::<T>(l) }.next_pin(dev_id, from) else {
        return false;
    };
    // SAFETY: dm-thin passes valid pointers to `u64`s.
    unsafe {
        begin.write(b);
        end.write(e);
    }
    true
}

/// `dm_thin_reserve_ops.unreserved`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn unreserved<T: Ledger>(l: *mut c_void, free: u64) -> u64 {
    // SAFETY: See the trampolines' contract above.
    unsafe { ledger::<T>(l) }.unreserved(free)
}

/// `dm_thin_reserve_ops.promisable`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn promisable<T: Ledger>(free: u64, free_metadata: u64) -> u64 {
    T::promisable(free, free_metadata)
}

/// `dm_thin_reserve_ops.delete_thin`.
///
/// # Safety
///
/// Called by dm-thin only, as the trampolines' contract above says.
unsafe extern "C" fn delete_thin<T: Ledger>(l: *mut c_void, dev_id: u32) {
    // SAFETY: See the trampolines' contract above.
    unsafe { ledger::<T>(l) }.delete_thin(dev_id)
}

/// `T`'s operations registered with dm-thin, for as long as this lives.
pub(crate) struct Registration<T: Ledger> {
    table: KBox<bindings::dm_thin_reserve_ops>,
    _ledger: PhantomData<T>,
}

// SAFETY: The table is written once in `new`, then only read (by dm-thin);
// its raw `owner` pointer is the module itself, valid as long as we are.
unsafe impl<T: Ledger> Send for Registration<T> {}
// SAFETY: See `Send`: shared references only ever read it.
unsafe impl<T: Ledger> Sync for Registration<T> {}

impl<T: Ledger> Registration<T> {
    /// Registers `T` as the ledger of every pool from now on. Each pool
    /// with a ledger pins `module`, so this outlives them all.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let table = KBox::new(
            bindings::dm_thin_reserve_ops {
                owner: module.as_ptr(),
                pool_create: Some(pool_create::<T>),
                pool_destroy: Some(pool_destroy::<T>),
                set: Some(set::<T>),
                get: Some(get::<T>),
                pool_reserved: Some(pool_reserved::<T>),
                charge: Some(charge::<T>),
                uncharge: Some(uncharge::<T>),
                earmark: Some(earmark::<T>),
                is_earmarked: Some(is_earmarked::<T>),
                discard: Some(discard::<T>),
                pin: Some(pin::<T>),
                next_pin: Some(next_pin::<T>),
                unreserved: Some(unreserved::<T>),
                promisable: Some(promisable::<T>),
                delete_thin: Some(delete_thin::<T>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The table is heap-allocated and outlives the
        // registration: `drop` unregisters before it is freed.
        kernel::error::to_result(unsafe { bindings::dm_thin_reserve_register(&*table) })?;
        Ok(Self {
            table,
            _ledger: PhantomData,
        })
    }
}

impl<T: Ledger> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`. The module's exit only runs when no
        // pool holds a ledger (each holds a module reference), so dm-thin
        // calls none of the operations any more.
        unsafe { bindings::dm_thin_reserve_unregister(&*self.table) };
    }
}

/// `-EOVERFLOW`, which `kernel::error::code` does not name.
pub(crate) fn eoverflow() -> Error {
    Error::from_errno(-(bindings::EOVERFLOW as c_int))
}
