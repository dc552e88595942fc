// SPDX-License-Identifier: GPL-2.0

//! XFS's thin-pool interface (`include/linux/xfs_thin.h`) and the block
//! layer's reservation calls as safe Rust: the one place of this module
//! that touches raw bindings.
//!
//! [`Registration`] fills XFS's `struct xfs_thin_ops` with trampolines for a
//! [`Shim`] type: XFS keeps the pinned box `mount` returns as `m_thin` and
//! passes it back to every operation, which gets `&T`. [`ThinDevice`] is
//! the data device the mount was given, with the holder that opened it, so
//! that the shim can only make the calls the holder may make.

use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::pin::Pin;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::Error;
use kernel::prelude::*;

use crate::books::Provision;

/// What a shim knows of a mount (`struct xfs_thin_geometry`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    /// Filesystem block size in sectors.
    pub(crate) fs_block_sectors: u64,
    /// Sectors of the data device the filesystem covers.
    pub(crate) fs_sectors: u64,
    /// The device's reservation granularity, in sectors.
    pub(crate) thin_block_sectors: u64,
    /// Allocation groups.
    pub(crate) agcount: u32,
    /// Free blocks of every AG's head that metadata which may live in any
    /// AG leaves to the AG's own btrees (`XFS_THIN_HEAD_SLACK`).
    pub(crate) head_slack: u64,
}

impl Geometry {
    fn from_c(geo: &bindings::xfs_thin_geometry) -> Self {
        Self {
            fs_block_sectors: geo.fs_block_sectors,
            fs_sectors: geo.fs_sectors,
            thin_block_sectors: geo.thin_block_sectors,
            agcount: geo.agcount,
            head_slack: u64::from(bindings::XFS_THIN_HEAD_SLACK),
        }
    }
}

/// The data device of a mounted filesystem and its exclusive holder.
#[derive(Clone, Copy)]
pub(crate) struct ThinDevice {
    bdev: NonNull<bindings::block_device>,
    holder: *mut c_void,
}

// SAFETY: XFS keeps the block device open for as long as the filesystem is
// mounted, which outlives every `ThinDevice` (they live in the mount's
// state), and the block layer's reservation functions may be called from
// any thread. `holder` is never dereferenced: the block layer only compares
// it with the device's holder.
unsafe impl Send for ThinDevice {}
// SAFETY: See `Send`; the pointers are only passed to thread-safe functions.
unsafe impl Sync for ThinDevice {}

impl ThinDevice {
    /// The device as `major:minor`, for log lines.
    pub(crate) fn dev(&self) -> (u32, u32) {
        // SAFETY: `bdev` is valid for the life of the mount (see `Send`).
        let dev = unsafe { (*self.bdev.as_ptr()).bd_dev };
        (dev >> 20, dev & ((1 << 20) - 1))
    }

    /// `bdev_set_reserved_space()`.
    pub(crate) fn set_reserved(&self, sectors: u64) -> Result {
        // SAFETY: `bdev` is valid for the life of the mount, and `holder`
        // opened it exclusively.
        kernel::error::to_result(unsafe {
            bindings::bdev_set_reserved_space(self.bdev.as_ptr(), self.holder, sectors)
        })
    }

    /// `bdev_provision()`: the sectors newly provisioned, also on failure.
    pub(crate) fn provision(&self, start: u64, len: u64, how: Provision) -> (u64, Result) {
        let flags = match how {
            Provision::Allocated => 0,
            Provision::Overwrite { written: true } => {
                bindings::BDEV_PROVISION_OVERWRITE | bindings::BDEV_PROVISION_UNRESERVED
            }
            Provision::Overwrite { written: false } => bindings::BDEV_PROVISION_UNRESERVED,
            Provision::Pin => bindings::BDEV_PROVISION_PIN,
        };
        let mut mapped: u64 = 0;
        // SAFETY: `bdev` is valid for the life of the mount, `holder`
        // opened it exclusively, and `mapped` is a writable `sector_t`.
        let ret = unsafe {
            bindings::bdev_provision(
                self.bdev.as_ptr(),
                self.holder,
                start,
                len,
                flags,
                &mut mapped,
            )
        };
        (mapped, kernel::error::to_result(ret))
    }

    /// `bdev_provision()` with `BDEV_PROVISION_RELEASE`: the device's
    /// allocation units wholly inside `[start, start + len)` are free in
    /// the filesystem and need no provisioning any more.
    pub(crate) fn release(&self, start: u64, len: u64) -> Result {
        let mut mapped: u64 = 0;
        // SAFETY: As in `provision`.
        kernel::error::to_result(unsafe {
            bindings::bdev_provision(
                self.bdev.as_ptr(),
                self.holder,
                start,
                len,
                bindings::BDEV_PROVISION_RELEASE,
                &mut mapped,
            )
        })
    }
}

/// A thin reservation shim for XFS: one `T` per mount, shared by every
/// operation XFS calls on it (from process context, in parallel), so
/// methods take `&self`. See `include/linux/xfs_thin.h` for each one.
pub(crate) trait Shim: Sized + Send + Sync {
    /// Starts keeping the books for a filesystem on `dev`.
    fn mount(dev: ThinDevice, geo: Geometry) -> Result<Pin<KBox<Self>>>;
    /// The filesystem is gone; give everything back.
    fn unmount(self: Pin<KBox<Self>>);
    /// Free blocks leave the free pool to back a promise (`meta`: of
    /// metadata only).
    fn reserve(&self, blocks: u64, rsvd: bool, meta: bool) -> Result;
    /// Promised blocks return to the free pool.
    fn unreserve(&self, blocks: u64);
    /// An extent was allocated.
    fn allocated(&self, daddr: u64, blocks: u64, from_reservation: u64);
    /// Allocated blocks were freed into their transaction's reservation.
    fn freed(&self, blocks: u64);
    /// Free blocks leave the free pool for one extent of user data.
    fn reserve_extent(&self, blocks: u64, rsvd: bool) -> Result;
    /// A single-extent promise ended without an allocation.
    fn extent_done(&self, blocks: u64);
    /// The one allocation of a single-extent promise.
    fn allocated_extent(&self, daddr: u64, blocks: u64, from_reservation: u64, extent: u64);
    /// Freed or grown blocks, on their way back.
    fn returning(&self, blocks: u64);
    /// Blocks reported by `returning` are back.
    fn returned(&self, blocks: u64);
    /// growfs changed the geometry.
    fn resize(&self, geo: Geometry);
    /// Delayed allocation extents changed.
    fn delalloc(&self, before: [u64; 2], after: [u64; 2], reserve: bool) -> Result;
    /// An allocated range is about to be written.
    fn overwrite(&self, daddr: u64, len: u64, written: bool) -> Result;
    /// A range of metadata to keep provisioned across snapshots.
    fn pin(&self, daddr: u64, len: u64) -> Result;
    /// Freed blocks joined a free extent.
    fn released(&self, daddr: u64, blocks: u64, free_daddr: u64, free_blocks: u64);
    /// A buffered write was refused: whether XFS should write back and
    /// retry it (again).
    fn flush_again(&self, mark: &mut u64) -> bool;
    /// An AG's head has `free` free blocks that are not busy.
    fn headroom(&self, agno: u32, free: u32);
}

/// Turns XFS's `m_thin` back into the mount.
///
/// # Safety
///
/// `thin` must come from `mount::<T>` and not yet be passed to
/// `unmount::<T>`.
unsafe fn shim<'a, T: Shim>(thin: *mut c_void) -> &'a T {
    // SAFETY: Per this function's contract the pointer is a live, pinned
    // `T` from `KBox::into_raw`; only shared references are made.
    unsafe { &*thin.cast::<T>() }
}

fn errno(result: Result) -> c_int {
    match result {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

// The trampolines below are what XFS calls: with the pointer `mount`
// stored, until `unmount`, in process context (the contract of
// `include/linux/xfs_thin.h`).

/// `xfs_thin_ops.mount`.
///
/// # Safety
///
/// Called by XFS only, with a valid `bdev` that `holder` opened
/// exclusively and keeps open until `unmount`, a valid `geo` and a
/// writable `thin`.
unsafe extern "C" fn mount<T: Shim>(
    bdev: *mut bindings::block_device,
    holder: *mut c_void,
    geo: *const bindings::xfs_thin_geometry,
    thin: *mut *mut c_void,
) -> c_int {
    let Some(bdev) = NonNull::new(bdev) else {
        return EINVAL.to_errno();
    };
    // SAFETY: XFS passes a valid geometry for the duration of the call.
    let geo = Geometry::from_c(unsafe { &*geo });
    match T::mount(ThinDevice { bdev, holder }, geo) {
        Ok(mounted) => {
            // SAFETY: XFS keeps the pointer until `unmount` and never moves
            // what it points to; `unmount` turns it back into the pinned box.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(mounted) });
            // SAFETY: XFS passes a writable pointer.
            unsafe { thin.write(raw.cast()) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `xfs_thin_ops.unmount`.
///
/// # Safety
///
/// Called by XFS only, once per pointer from `mount`, when no other
/// operation can run on it.
unsafe extern "C" fn unmount<T: Shim>(thin: *mut c_void) {
    // SAFETY: XFS passes what `mount` stored, once, when nothing else uses
    // it; it was pinned there and is pinned again.
    let mounted = unsafe { Pin::new_unchecked(KBox::from_raw(thin.cast::<T>())) };
    mounted.unmount();
}

macro_rules! trampoline {
    ($name:ident($($arg:ident: $ty:ty),*) -> c_int) => {
        #[doc = concat!("`xfs_thin_ops.", stringify!($name), "`.")]
        ///
        /// # Safety
        ///
        /// Called by XFS only, as the trampolines' contract above says.
        unsafe extern "C" fn $name<T: Shim>(thin: *mut c_void, $($arg: $ty),*) -> c_int {
            // SAFETY: See the trampolines' contract above.
            errno(unsafe { shim::<T>(thin) }.$name($($arg),*))
        }
    };
    ($name:ident($($arg:ident: $ty:ty),*)) => {
        #[doc = concat!("`xfs_thin_ops.", stringify!($name), "`.")]
        ///
        /// # Safety
        ///
        /// Called by XFS only, as the trampolines' contract above says.
        unsafe extern "C" fn $name<T: Shim>(thin: *mut c_void, $($arg: $ty),*) {
            // SAFETY: See the trampolines' contract above.
            unsafe { shim::<T>(thin) }.$name($($arg),*)
        }
    };
}

trampoline!(reserve(blocks: u64, rsvd: bool, meta: bool) -> c_int);
trampoline!(unreserve(blocks: u64));
trampoline!(allocated(daddr: u64, blocks: u64, from_reservation: u64));
trampoline!(freed(blocks: u64));
trampoline!(reserve_extent(blocks: u64, rsvd: bool) -> c_int);
trampoline!(extent_done(blocks: u64));
trampoline!(allocated_extent(daddr: u64, blocks: u64, from_reservation: u64, extent: u64));
trampoline!(returning(blocks: u64));
trampoline!(returned(blocks: u64));
trampoline!(overwrite(daddr: u64, len: u64, written: bool) -> c_int);
trampoline!(pin(daddr: u64, len: u64) -> c_int);
trampoline!(released(daddr: u64, blocks: u64, free_daddr: u64, free_blocks: u64));
trampoline!(headroom(agno: u32, free: u32));

/// `xfs_thin_ops.resize`.
///
/// # Safety
///
/// Called by XFS only, as the trampolines' contract above says, with a
/// valid `geo`.
unsafe extern "C" fn resize<T: Shim>(thin: *mut c_void, geo: *const bindings::xfs_thin_geometry) {
    // SAFETY: XFS passes a valid geometry for the duration of the call.
    let geo = Geometry::from_c(unsafe { &*geo });
    // SAFETY: See the trampolines' contract above.
    unsafe { shim::<T>(thin) }.resize(geo)
}

/// `xfs_thin_ops.delalloc`.
///
/// # Safety
///
/// Called by XFS only, as the trampolines' contract above says.
unsafe extern "C" fn delalloc<T: Shim>(
    thin: *mut c_void,
    before0: u64,
    before1: u64,
    after0: u64,
    after1: u64,
    reserve: bool,
) -> c_int {
    // SAFETY: See the trampolines' contract above.
    errno(unsafe { shim::<T>(thin) }.delalloc([before0, before1], [after0, after1], reserve))
}

/// `xfs_thin_ops.flush_again`.
///
/// # Safety
///
/// Called by XFS only, as the trampolines' contract above says, with a
/// valid, writable `mark`.
unsafe extern "C" fn flush_again<T: Shim>(thin: *mut c_void, mark: *mut u64) -> bool {
    // SAFETY: XFS passes a valid pointer to a `u64` of its own for the
    // duration of the call; nothing else refers to it meanwhile.
    let mark = unsafe { &mut *mark };
    // SAFETY: See the trampolines' contract above.
    unsafe { shim::<T>(thin) }.flush_again(mark)
}

/// `T`'s operations registered with XFS, for as long as this lives.
pub(crate) struct Registration<T: Shim> {
    table: KBox<bindings::xfs_thin_ops>,
    _shim: PhantomData<T>,
}

// SAFETY: The table is written once in `new`, then only read (by XFS); its
// raw `owner` pointer is the module itself, valid as long as we are.
unsafe impl<T: Shim> Send for Registration<T> {}
// SAFETY: See `Send`: shared references only ever read it.
unsafe impl<T: Shim> Sync for Registration<T> {}

impl<T: Shim> Registration<T> {
    /// Offers `T` to filesystems mounted from now on; each pins `module`.
    pub(crate) fn new(module: &'static ThisModule) -> Result<Self> {
        let table = KBox::new(
            bindings::xfs_thin_ops {
                owner: module.as_ptr(),
                mount: Some(mount::<T>),
                unmount: Some(unmount::<T>),
                reserve: Some(reserve::<T>),
                unreserve: Some(unreserve::<T>),
                allocated: Some(allocated::<T>),
                freed: Some(freed::<T>),
                reserve_extent: Some(reserve_extent::<T>),
                extent_done: Some(extent_done::<T>),
                allocated_extent: Some(allocated_extent::<T>),
                returning: Some(returning::<T>),
                returned: Some(returned::<T>),
                resize: Some(resize::<T>),
                delalloc: Some(delalloc::<T>),
                overwrite: Some(overwrite::<T>),
                pin: Some(pin::<T>),
                released: Some(released::<T>),
                flush_again: Some(flush_again::<T>),
                headroom: Some(headroom::<T>),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The table is heap-allocated and outlives the
        // registration: `drop` unregisters before it is freed.
        kernel::error::to_result(unsafe { bindings::xfs_thin_register(&*table) })?;
        Ok(Self {
            table,
            _shim: PhantomData,
        })
    }
}

impl<T: Shim> Drop for Registration<T> {
    fn drop(&mut self) {
        // SAFETY: Registered in `new`. Module exit only runs when no
        // filesystem uses the shim (each holds a module reference), so XFS
        // calls none of the operations any more.
        unsafe { bindings::xfs_thin_unregister(&*self.table) };
    }
}

/// `-EOVERFLOW`, which `kernel::error::code` does not name.
pub(crate) fn eoverflow() -> Error {
    Error::from_errno(-(bindings::EOVERFLOW as c_int))
}
