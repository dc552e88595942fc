// SPDX-License-Identifier: GPL-2.0

//! xfs_thin: XFS reservations backed by thin-pool reservations.
//!
//! XFS already refuses to promise more filesystem blocks than it has: every
//! transaction and every delayed-allocation write takes blocks out of the
//! free-block counter first. On a thin volume those blocks may not exist in
//! the pool. This module registers a `struct xfs_thin_ops` with XFS (see
//! `include/linux/xfs_thin.h` in the hook series under `patches/`); XFS
//! calls it for every promise, every return, every allocation and every
//! free, and it turns them into reservations and provisioning on the thin
//! device through the block layer's reservation operations, so that XFS
//! returns `-ENOSPC` at write time instead of failing writeback later.
//!
//! The books and the policy are pure and host-tested: `xfs_thin/books.rs`
//! (what is promised, what the device holds) and `xfs_thin/policy.rs`
//! (how many thin blocks a promise needs). This file is the kernel glue:
//! one mutex-protected set of books per mounted filesystem, and the calls
//! to the block device.
//!
//! Every mounted filesystem using the shim holds a reference on this module
//! (XFS takes it at mount), so it cannot be unloaded under a mount.

use core::ffi::{c_int, c_void};
use core::pin::Pin;
use core::ptr::NonNull;
use kernel::bindings;
use kernel::error::code::{EINVAL, ENOSPC};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;

/// Sector/block arithmetic, shared with dm_thin_reserve and the host crate.
#[path = "../../drivers/md/dm_thin_reserve/geometry.rs"]
pub mod geometry;

/// How many thin blocks a filesystem reservation needs; shared verbatim with
/// the host test crate.
#[path = "xfs_thin/policy.rs"]
pub mod policy;

/// The books of one filesystem; shared verbatim with the host test crate.
#[path = "xfs_thin/books.rs"]
pub mod books;

use books::{Books, DeviceError, Refusal, ReservationDevice};
use geometry::BlockSize;
use policy::ThinFs;

/// Version of this shim, printed at load so test logs say what ran.
const VERSION: &str = "0.3.0";

/// How long to wait for a suspended device (a table reload, `lvextend`)
/// before giving up on a call: 10 ms steps, 30 s in all.
const SUSPENDED_RETRY_MS: u32 = 10;
const SUSPENDED_RETRIES: u32 = 3000;

module! {
    type: XfsThin,
    name: "xfs_thin",
    author: "thin-reserve developers",
    description: "XFS shim that reserves thin-pool space for filesystem reservations",
    license: "GPL",
}

/// The data device of a mounted XFS, for its reservation operations.
#[derive(Clone, Copy)]
struct ThinDevice {
    bdev: NonNull<bindings::block_device>,
}

// SAFETY: The block device stays open for as long as the filesystem is
// mounted, which outlives every `ThinDevice` (they live in the mount's
// books), and the block layer's reservation functions may be called from
// any thread.
unsafe impl Send for ThinDevice {}
// SAFETY: See `Send`; the pointer is only passed to thread-safe functions.
unsafe impl Sync for ThinDevice {}

impl ThinDevice {
    /// The device as `major:minor`, for log lines.
    fn dev(&self) -> (u32, u32) {
        // SAFETY: `bdev` is valid for the life of the mount (see `Send`).
        let dev = unsafe { (*self.bdev.as_ptr()).bd_dev };
        (dev >> 20, dev & ((1 << 20) - 1))
    }

    /// Calls `op` until the device is not suspended any more, or gives up.
    fn retry_suspended(mut op: impl FnMut() -> c_int) -> c_int {
        let mut ret = op();
        let mut tries = 0;
        while ret == -(bindings::EAGAIN as c_int) && tries < SUSPENDED_RETRIES {
            // SAFETY: Called from process context (XFS's contract for these
            // operations), where sleeping is allowed.
            unsafe { bindings::msleep(SUSPENDED_RETRY_MS) };
            tries += 1;
            ret = op();
        }
        ret
    }
}

fn device_error(ret: c_int) -> DeviceError {
    if ret == ENOSPC.to_errno() {
        DeviceError::NoSpace
    } else {
        DeviceError::Failed(ret)
    }
}

impl ReservationDevice for ThinDevice {
    fn set_reserved(&mut self, sectors: u64) -> Result<(), DeviceError> {
        let ret = Self::retry_suspended(|| {
            // SAFETY: `bdev` is valid for the life of the mount.
            unsafe { bindings::bdev_set_reserved_space(self.bdev.as_ptr(), sectors) }
        });
        match ret {
            0 => Ok(()),
            ret => Err(device_error(ret)),
        }
    }

    fn provision(&mut self, start: u64, len: u64) -> (u64, Result<(), DeviceError>) {
        let mut mapped: u64 = 0;
        let ret = Self::retry_suspended(|| {
            // SAFETY: `bdev` is valid for the life of the mount and
            // `mapped` is a writable `sector_t`.
            unsafe { bindings::bdev_provision(self.bdev.as_ptr(), start, len, &mut mapped) }
        });
        match ret {
            0 => (mapped, Ok(())),
            ret => (mapped, Err(device_error(ret))),
        }
    }
}

/// One mounted filesystem: XFS's `m_thin`.
#[pin_data]
struct ThinMount {
    dev: ThinDevice,
    #[pin]
    books: Mutex<(Books, RefusalLog)>,
}

/// When the log last said that a mount refuses promises, so that a full
/// pool gives a line every few seconds instead of one per refused write.
/// XFS retries a refused delayed allocation without its speculative
/// preallocation, so refusals and grants alternate while writers run.
#[derive(Clone, Copy, Default)]
struct RefusalLog {
    /// `ktime_get()` of the last line, in nanoseconds; 0 for never.
    last_ns: i64,
    /// Refusals counted at the last line.
    refused_then: u64,
}

/// Nanoseconds between two "refusing" lines of one mount.
const REFUSAL_LOG_INTERVAL_NS: i64 = 5_000_000_000;

impl ThinMount {
    /// Runs `f` on the books, with a device handle, under the mount's mutex.
    fn with<R>(&self, f: impl FnOnce(&mut Books, &mut ThinDevice) -> R) -> R {
        let mut dev = self.dev;
        let mut books = self.books.lock();
        f(&mut books.0, &mut dev)
    }
}

/// Turns XFS's `m_thin` back into the mount.
///
/// # Safety
///
/// `thin` must come from [`mount`] and not yet be passed to [`unmount`].
unsafe fn thin_mount<'a>(thin: *mut c_void) -> &'a ThinMount {
    // SAFETY: Per this function's contract the pointer is a live, pinned
    // `ThinMount` from `KBox::into_raw`; only shared references are made.
    unsafe { &*thin.cast::<ThinMount>() }
}

/// The policy's view of a filesystem with geometry `geo`.
fn thin_fs(geo: &bindings::xfs_thin_geometry) -> Result<ThinFs, geometry::GeometryError> {
    BlockSize::new(geo.thin_block_sectors)
        .and_then(|thin| ThinFs::new(thin, geo.fs_block_sectors, geo.fs_sectors))
}

/// `xfs_thin_ops.mount`.
///
/// # Safety
///
/// Called by XFS only, with a valid open `bdev`, a valid `geo` and a
/// writable `thin`.
unsafe extern "C" fn mount(
    bdev: *mut bindings::block_device,
    geo: *const bindings::xfs_thin_geometry,
    thin: *mut *mut c_void,
) -> c_int {
    let Some(bdev) = NonNull::new(bdev) else {
        return EINVAL.to_errno();
    };
    // SAFETY: XFS passes a valid geometry for the duration of the call.
    let geo = unsafe { &*geo };
    let fs = match thin_fs(geo) {
        Ok(fs) => fs,
        Err(e) => {
            pr_info!(
                "thin block {} sectors, filesystem block {} sectors: {}\n",
                geo.thin_block_sectors,
                geo.fs_block_sectors,
                e.errno_name()
            );
            return EINVAL.to_errno();
        }
    };
    let mut dev = ThinDevice { bdev };
    let mut books = Books::new(fs, geo.agcount);
    if let Err(e) = books.open(&mut dev) {
        let ret = match e {
            DeviceError::NoSpace => ENOSPC.to_errno(),
            DeviceError::Failed(ret) => ret,
        };
        return ret;
    }
    let (major, minor) = dev.dev();
    let mounted = KBox::pin_init(
        pin_init!(ThinMount {
            dev,
            books <- new_mutex!((books, RefusalLog::default()), "xfs_thin::ThinMount::books"),
        }),
        GFP_KERNEL,
    );
    let mounted = match mounted {
        Ok(mounted) => mounted,
        Err(e) => {
            // Nothing refers to the reservation yet: give it back.
            let _ = books::Books::new(fs, geo.agcount).close(&mut dev);
            return e.to_errno();
        }
    };
    {
        let books = &mounted.books.lock().0;
        pr_info!(
            "{}:{}: reserving, thin block {} sectors, fs block {} sectors, allowance {} thin blocks, {} held\n",
            major,
            minor,
            fs.thin().sectors(),
            geo.fs_block_sectors,
            books.allowance(),
            books.held()
        );
    }
    // SAFETY: XFS keeps the pointer until `unmount` and never moves what it
    // points to; `unmount` turns it back into the pinned box.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(mounted) });
    // SAFETY: XFS passes a writable pointer.
    unsafe { thin.write(raw.cast()) };
    0
}

/// `xfs_thin_ops.unmount`.
///
/// # Safety
///
/// Called by XFS only, once per pointer from [`mount`], when no other
/// operation can run on it.
unsafe extern "C" fn unmount(thin: *mut c_void) {
    // SAFETY: XFS passes what `mount` stored, once, when nothing else uses it.
    let mounted = unsafe { KBox::from_raw(thin.cast::<ThinMount>()) };
    let (major, minor) = mounted.dev.dev();
    let (left, closed, stats) = mounted.with(|books, dev| {
        let (left, closed) = books.close(dev);
        (left, closed, books.stats())
    });
    if left != 0 || stats.drift != 0 {
        pr_warn!(
            "{}:{}: accounting drift: {} blocks still promised at unmount, {} blocks of drift\n",
            major,
            minor,
            left,
            stats.drift
        );
    }
    if let Err(e) = closed {
        pr_warn!(
            "{}:{}: releasing the reservation failed: {:?}\n",
            major,
            minor,
            e
        );
    }
    pr_info!(
        "{}:{}: released; {} promises refused, {} thin blocks provisioned, {} provision failures ({} thin blocks held for them), {} allowance overdraws\n",
        major,
        minor,
        stats.refused,
        stats.provisioned,
        stats.provision_failures,
        stats.unprovisioned,
        stats.overdraws
    );
    drop(mounted);
}

/// `xfs_thin_ops.reserve`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn reserve(thin: *mut c_void, blocks: u64, rsvd: bool) -> c_int {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.promise(blocks, |books, dev| books.reserve(dev, blocks, rsvd))
}

/// `xfs_thin_ops.reserve_extent`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn reserve_extent(thin: *mut c_void, blocks: u64, rsvd: bool) -> c_int {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.promise(blocks, |books, dev| books.reserve_extent(dev, blocks, rsvd))
}

impl ThinMount {
    /// Makes a promise of `blocks` with `make` under the mount's mutex; logs
    /// a refusal (at most every few seconds) and returns XFS's errno.
    fn promise(
        &self,
        blocks: u64,
        make: impl FnOnce(&mut Books, &mut ThinDevice) -> Result<(), Refusal>,
    ) -> c_int {
        let mut dev = self.dev;
        let mut guard = self.books.lock();
        let (books, log) = &mut *guard;
        let result = make(books, &mut dev);
        if result == Err(Refusal::NoSpace) {
            log.refused(books, &dev, blocks);
        }
        match result {
            Ok(()) => 0,
            Err(Refusal::NoSpace) => ENOSPC.to_errno(),
            Err(Refusal::Overflow) => -(bindings::EOVERFLOW as c_int),
        }
    }
}

impl RefusalLog {
    /// A promise of `blocks` was refused: say so unless a line went out
    /// less than [`REFUSAL_LOG_INTERVAL_NS`] ago.
    fn refused(&mut self, books: &Books, dev: &ThinDevice, blocks: u64) {
        // SAFETY: `ktime_get()` may be called from any context.
        let now = unsafe { bindings::ktime_get() };
        if self.last_ns != 0 && now.saturating_sub(self.last_ns) < REFUSAL_LOG_INTERVAL_NS {
            return;
        }
        let refused = books.stats().refused;
        let (major, minor) = dev.dev();
        pr_info!(
            "{}:{}: pool cannot back {} more blocks ({} promised, {} thin blocks held); {} refusals since the last line\n",
            major,
            minor,
            blocks,
            books.promised(),
            books.held(),
            refused.saturating_sub(self.refused_then)
        );
        *self = RefusalLog {
            last_ns: now.max(1),
            refused_then: refused,
        };
    }
}

/// `xfs_thin_ops.extent_done`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn extent_done(thin: *mut c_void, blocks: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.with(|books, dev| books.extent_done(dev, blocks));
}

/// `xfs_thin_ops.unreserve`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn unreserve(thin: *mut c_void, blocks: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.with(|books, dev| books.unreserve(dev, blocks));
}

/// `xfs_thin_ops.allocated`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn allocated(thin: *mut c_void, daddr: u64, blocks: u64, from_reservation: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.allocated(daddr, blocks, from_reservation, 0);
}

/// `xfs_thin_ops.allocated_extent`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn allocated_extent(
    thin: *mut c_void,
    daddr: u64,
    blocks: u64,
    from_reservation: u64,
    extent: u64,
) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.allocated(daddr, blocks, from_reservation, extent);
}

impl ThinMount {
    /// Provisions an allocation and settles the books; logs the first
    /// failure of the mount (unmount reports the count).
    fn allocated(&self, daddr: u64, blocks: u64, from_reservation: u64, extent: u64) {
        let (result, failures) = self.with(|books, dev| {
            let result = books.allocated(dev, daddr, blocks, from_reservation, extent);
            (result, books.stats().provision_failures)
        });
        if let Err(e) = result {
            if failures == 1 {
                let (major, minor) = self.dev.dev();
                pr_warn!(
                    "{}:{}: provisioning {} blocks at sector {} failed: {:?}; their pool blocks stay reserved until unmount\n",
                    major,
                    minor,
                    blocks,
                    daddr,
                    e
                );
            }
        }
    }
}

/// `xfs_thin_ops.returning`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`].
unsafe extern "C" fn returning(thin: *mut c_void, blocks: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.with(|books, _dev| books.returning(blocks));
}

/// `xfs_thin_ops.returned`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`].
unsafe extern "C" fn returned(thin: *mut c_void, blocks: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.with(|books, _dev| books.returned(blocks));
}

/// `xfs_thin_ops.delalloc`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`], in process context.
unsafe extern "C" fn delalloc(
    thin: *mut c_void,
    before0: u64,
    before1: u64,
    after0: u64,
    after1: u64,
    reserve: bool,
) -> c_int {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    let blocks = after0.saturating_add(after1);
    mounted.promise(blocks, |books, dev| {
        books.delalloc(dev, [before0, before1], [after0, after1], reserve)
    })
}

/// `xfs_thin_ops.resize`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`] and a valid `geo`, in
/// process context.
unsafe extern "C" fn resize(thin: *mut c_void, geo: *const bindings::xfs_thin_geometry) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    // SAFETY: XFS passes a valid geometry for the duration of the call.
    let geo = unsafe { &*geo };
    let (major, minor) = mounted.dev.dev();
    match thin_fs(geo) {
        Ok(fs) => {
            mounted.with(|books, dev| books.resize(dev, fs, geo.agcount));
            pr_info!(
                "{}:{}: filesystem resized to {} sectors in {} allocation groups\n",
                major,
                minor,
                geo.fs_sectors,
                geo.agcount
            );
        }
        // The old geometry stays: only a cap can be stale, never a promise.
        Err(e) => pr_warn!(
            "{}:{}: resize to {} sectors not followed: {}\n",
            major,
            minor,
            geo.fs_sectors,
            e.errno_name()
        ),
    }
}

/// `xfs_thin_ops.freed`.
///
/// # Safety
///
/// Called by XFS only, with a pointer from [`mount`].
unsafe extern "C" fn freed(thin: *mut c_void, blocks: u64) {
    // SAFETY: Per the contract, `thin` is a live mount.
    let mounted = unsafe { thin_mount(thin) };
    mounted.with(|books, dev| books.freed(dev, blocks));
}

/// The operations table registered with XFS.
struct Registration(KBox<bindings::xfs_thin_ops>);

// SAFETY: The table is written once in `init`, then only read (by XFS); its
// raw `owner` pointer is the module itself, valid as long as we are.
unsafe impl Send for Registration {}
// SAFETY: See `Send`: shared references only ever read it.
unsafe impl Sync for Registration {}

struct XfsThin {
    ops: Registration,
}

impl kernel::Module for XfsThin {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let ops = KBox::new(
            bindings::xfs_thin_ops {
                owner: module.as_ptr(),
                mount: Some(mount),
                unmount: Some(unmount),
                reserve: Some(reserve),
                unreserve: Some(unreserve),
                allocated: Some(allocated),
                freed: Some(freed),
                reserve_extent: Some(reserve_extent),
                extent_done: Some(extent_done),
                allocated_extent: Some(allocated_extent),
                returning: Some(returning),
                returned: Some(returned),
                resize: Some(resize),
                delalloc: Some(delalloc),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: The table is heap-allocated and outlives the registration:
        // `drop` unregisters before it is freed.
        kernel::error::to_result(unsafe { bindings::xfs_thin_register(&*ops) })?;
        pr_info!("XFS thin-pool reservation shim {} loaded\n", VERSION);
        Ok(XfsThin {
            ops: Registration(ops),
        })
    }
}

impl Drop for XfsThin {
    fn drop(&mut self) {
        // SAFETY: Registered in `init`. Module exit only runs when no
        // filesystem uses the shim (each holds a module reference), so XFS
        // calls none of the operations any more.
        unsafe { bindings::xfs_thin_unregister(&*self.ops.0) };
        pr_info!("XFS thin-pool reservation shim {} unloaded\n", VERSION);
    }
}
