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
//! (how many thin blocks a promise needs). `xfs_thin/ffi.rs` holds every
//! raw binding behind a safe trait and device handle. This file is safe
//! Rust: one mutex-protected set of books per mounted filesystem, and the
//! log lines.
//!
//! Every mounted filesystem using the shim holds a reference on this module
//! (XFS takes it at mount), so it cannot be unloaded under a mount.

use core::pin::Pin;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::error::code::{EINVAL, ENOSPC};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::time::Ktime;

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

/// XFS's interface and the block layer's calls as safe Rust: all of this
/// module's `unsafe` lives there.
#[path = "xfs_thin/ffi.rs"]
mod ffi;

use books::{Books, DeviceError, Provision, Refusal, ReservationDevice};
use ffi::{Geometry, Registration, Shim, ThinDevice};
use geometry::BlockSize;
use policy::ThinFs;

/// Version of this shim, printed at load so test logs say what ran.
const VERSION: &str = "0.4.0";

module! {
    type: XfsThin,
    name: "xfs_thin",
    author: "thin-reserve developers",
    description: "XFS shim that reserves thin-pool space for filesystem reservations",
    license: "GPL",
}

fn device_error(e: Error) -> DeviceError {
    if e == ENOSPC {
        DeviceError::NoSpace
    } else {
        DeviceError::Failed(e.to_errno())
    }
}

/// What the shim cost one mount: how often XFS called it, how often it
/// called the device and how long the device took. Reported at unmount, so
/// that a benchmark can say where the time of a workload went.
#[derive(Default)]
struct Cost {
    /// XFS calls that took the books' mutex.
    hooks: AtomicU64,
    /// `bdev_set_reserved_space()` calls, and their nanoseconds.
    sets: AtomicU64,
    set_ns: AtomicU64,
    /// `bdev_provision()` calls for allocations and pins, and their time.
    provisions: AtomicU64,
    provision_ns: AtomicU64,
    /// The part of those calls that provisioned a thin block anew (the
    /// others found every block mapped or earmarked), and its time: where
    /// a call that found nothing to do is slow, it waited for a bio in
    /// flight to the block.
    provisions_new: AtomicU64,
    provision_new_ns: AtomicU64,
    /// `bdev_provision()` calls for overwrites, and their time.
    overwrites: AtomicU64,
    overwrite_ns: AtomicU64,
    /// `bdev_provision()` calls that release freed thin blocks, and their
    /// time.
    releases: AtomicU64,
    release_ns: AtomicU64,
}

impl Cost {
    /// Counts one device call that started at `start` in `calls` and `ns`.
    fn count(calls: &AtomicU64, ns: &AtomicU64, start: Ktime) {
        let took = Ktime::ktime_get().to_ns().saturating_sub(start.to_ns());
        calls.fetch_add(1, Ordering::Relaxed);
        ns.fetch_add(u64::try_from(took).unwrap_or(0), Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The books' view of the device; every call is counted and timed.
struct Device<'a> {
    dev: ThinDevice,
    cost: &'a Cost,
}

impl ReservationDevice for Device<'_> {
    fn set_reserved(&mut self, sectors: u64) -> Result<(), DeviceError> {
        let start = Ktime::ktime_get();
        let result = self.dev.set_reserved(sectors).map_err(device_error);
        Cost::count(&self.cost.sets, &self.cost.set_ns, start);
        result
    }

    fn provision(
        &mut self,
        start: u64,
        len: u64,
        how: Provision,
    ) -> (u64, Result<(), DeviceError>) {
        let began = Ktime::ktime_get();
        let (mapped, result) = self.dev.provision(start, len, how);
        match how {
            Provision::Overwrite { .. } => {
                Cost::count(&self.cost.overwrites, &self.cost.overwrite_ns, began)
            }
            Provision::Allocated | Provision::Pin => {
                Cost::count(&self.cost.provisions, &self.cost.provision_ns, began);
                if mapped != 0 {
                    Cost::count(
                        &self.cost.provisions_new,
                        &self.cost.provision_new_ns,
                        began,
                    );
                }
            }
        }
        (mapped, result.map_err(device_error))
    }
}

/// One mounted filesystem: XFS's `m_thin`.
#[pin_data]
struct ThinMount {
    dev: ThinDevice,
    /// The block sizes, for the ranges frees release: they never change,
    /// so releasing needs no lock (the device size in here may be stale
    /// after growfs; releases do not use it).
    fs: ThinFs,
    #[pin]
    books: Mutex<State>,
    cost: Cost,
}

/// What the mount's mutex protects.
struct State {
    books: Books,
    log: RefusalLog,
    /// Free blocks of each AG's head, as XFS last reported them.
    heads: KVec<u32>,
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
    /// The device, as the books call it.
    fn device(&self) -> Device<'_> {
        Device {
            dev: self.dev,
            cost: &self.cost,
        }
    }

    /// Runs `f` on the books, with a device handle, under the mount's mutex.
    fn with<R>(&self, f: impl FnOnce(&mut Books, &mut Device<'_>) -> R) -> R {
        let mut dev = self.device();
        let mut state = self.books.lock();
        self.cost.hooks.fetch_add(1, Ordering::Relaxed);
        f(&mut state.books, &mut dev)
    }

    /// Makes a promise of `blocks` with `make` under the mount's mutex; logs
    /// a refusal (at most every few seconds) and returns XFS's error.
    fn promise(
        &self,
        blocks: u64,
        make: impl FnOnce(&mut Books, &mut Device<'_>) -> Result<(), Refusal>,
    ) -> Result {
        let mut dev = self.device();
        let mut guard = self.books.lock();
        self.cost.hooks.fetch_add(1, Ordering::Relaxed);
        let State { books, log, .. } = &mut *guard;
        let result = make(books, &mut dev);
        if result == Err(Refusal::NoSpace) {
            log.refused(books, &self.dev, blocks);
        }
        match result {
            Ok(()) => Ok(()),
            Err(Refusal::NoSpace) => Err(ENOSPC),
            Err(Refusal::Overflow) => Err(ffi::eoverflow()),
        }
    }

    /// Provisions an allocation and settles the books; logs the first
    /// failure of the mount (unmount reports the count).
    ///
    /// The device call runs without the mount's mutex: every page a writer
    /// dirties makes a promise under it, and provisioning (a metadata
    /// lookup and the pool's locks) must not make writers wait. The books
    /// take the device's answer afterwards ([`Books::provisioned`]).
    fn provision_allocation(&self, daddr: u64, blocks: u64, from_reservation: u64, extent: u64) {
        let allocation = self.with(|books, _dev| books.allocation(daddr, blocks));
        let first = allocation
            .range
            .map(|(start, len)| self.device().provision(start, len, Provision::Allocated));
        let (result, failures) = self.with(|books, dev| {
            let result =
                books.provisioned(dev, allocation, first, blocks, from_reservation, extent);
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

impl RefusalLog {
    /// A promise of `blocks` was refused: say so unless a line went out
    /// less than [`REFUSAL_LOG_INTERVAL_NS`] ago.
    fn refused(&mut self, books: &Books, dev: &ThinDevice, blocks: u64) {
        let now = Ktime::ktime_get().to_ns();
        if self.last_ns != 0 && now.saturating_sub(self.last_ns) < REFUSAL_LOG_INTERVAL_NS {
            return;
        }
        let refused = books.stats().refused;
        let (major, minor) = dev.dev();
        pr_info!(
            "{}:{}: pool cannot back {} more blocks ({} promised, {} thin blocks held: {} for delayed extents, {} for single extents, {} allowance; heads {} blocks of room, {} short); {} refusals since the last line\n",
            major,
            minor,
            blocks,
            books.promised(),
            books.held(),
            books.delalloc_cost(),
            books.extent_cost(),
            books.allowance(),
            books.heads().room(),
            books.heads().short(),
            refused.saturating_sub(self.refused_then)
        );
        *self = RefusalLog {
            last_ns: now.max(1),
            refused_then: refused,
        };
    }
}

/// The policy's view of a filesystem with geometry `geo`.
fn thin_fs(geo: &Geometry) -> Result<ThinFs, geometry::GeometryError> {
    BlockSize::new(geo.thin_block_sectors)
        .and_then(|thin| ThinFs::new(thin, geo.fs_block_sectors, geo.fs_sectors))
}

impl Shim for ThinMount {
    fn mount(dev: ThinDevice, geo: Geometry) -> Result<Pin<KBox<Self>>> {
        let fs = match thin_fs(&geo) {
            Ok(fs) => fs,
            Err(e) => {
                pr_info!(
                    "thin block {} sectors, filesystem block {} sectors: {}\n",
                    geo.thin_block_sectors,
                    geo.fs_block_sectors,
                    e.errno_name()
                );
                return Err(EINVAL);
            }
        };
        let opening = Cost::default();
        let mut device = Device {
            dev,
            cost: &opening,
        };
        let agcount = usize::try_from(geo.agcount).map_err(|_| EINVAL)?;
        let heads = KVec::from_elem(0u32, agcount, GFP_KERNEL)?;
        let mut books = Books::new(fs, geo.agcount, geo.head_slack);
        books.open(&mut device).map_err(|e| match e {
            DeviceError::NoSpace => ENOSPC,
            DeviceError::Failed(ret) => Error::from_errno(ret),
        })?;
        let (major, minor) = dev.dev();
        let mounted = KBox::pin_init(
            pin_init!(ThinMount {
                dev,
                fs,
                books <- new_mutex!(
                    State {
                        books,
                        log: RefusalLog::default(),
                        heads,
                    },
                    "xfs_thin::ThinMount::books"
                ),
                cost: Cost::default(),
            }),
            GFP_KERNEL,
        );
        let mounted = match mounted {
            Ok(mounted) => mounted,
            Err(e) => {
                // Nothing refers to the reservation yet: give it back.
                let _ = Books::new(fs, geo.agcount, geo.head_slack).close(&mut device);
                return Err(e);
            }
        };
        {
            let books = &mounted.books.lock().books;
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
        Ok(mounted)
    }

    fn unmount(self: Pin<KBox<Self>>) {
        let (major, minor) = self.dev.dev();
        let (left, closed, stats) = self.with(|books, dev| {
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
            "{}:{}: released; {} promises refused, {} thin blocks provisioned, {} provision failures ({} thin blocks held for them), {} allowance overdraws, {} copies provisioned, {} overwrites refused\n",
            major,
            minor,
            stats.refused,
            stats.provisioned,
            stats.provision_failures,
            stats.unprovisioned,
            stats.overdraws,
            stats.copies,
            stats.copies_refused
        );
        let cost = &self.cost;
        pr_info!(
            "{}:{}: cost: {} hook calls; device: {} sets in {} us, {} provisions in {} us, {} overwrite queries in {} us, {} releases in {} us; {} provisions of new thin blocks in {} us\n",
            major,
            minor,
            Cost::get(&cost.hooks),
            Cost::get(&cost.sets),
            Cost::get(&cost.set_ns) / 1000,
            Cost::get(&cost.provisions),
            Cost::get(&cost.provision_ns) / 1000,
            Cost::get(&cost.overwrites),
            Cost::get(&cost.overwrite_ns) / 1000,
            Cost::get(&cost.releases),
            Cost::get(&cost.release_ns) / 1000,
            Cost::get(&cost.provisions_new),
            Cost::get(&cost.provision_new_ns) / 1000
        );
    }

    fn reserve(&self, blocks: u64, rsvd: bool, meta: bool) -> Result {
        self.promise(blocks, |books, dev| books.reserve(dev, blocks, rsvd, meta))
    }

    fn unreserve(&self, blocks: u64) {
        self.with(|books, dev| books.unreserve(dev, blocks));
    }

    fn allocated(&self, daddr: u64, blocks: u64, from_reservation: u64) {
        self.provision_allocation(daddr, blocks, from_reservation, 0);
    }

    fn freed(&self, blocks: u64) {
        self.with(|books, dev| books.freed(dev, blocks));
    }

    fn reserve_extent(&self, blocks: u64, rsvd: bool) -> Result {
        self.promise(blocks, |books, dev| books.reserve_extent(dev, blocks, rsvd))
    }

    fn extent_done(&self, blocks: u64) {
        self.with(|books, dev| books.extent_done(dev, blocks));
    }

    fn allocated_extent(&self, daddr: u64, blocks: u64, from_reservation: u64, extent: u64) {
        self.provision_allocation(daddr, blocks, from_reservation, extent);
    }

    fn returning(&self, blocks: u64) {
        self.with(|books, _dev| books.returning(blocks));
    }

    fn returned(&self, blocks: u64) {
        self.with(|books, _dev| books.returned(blocks));
    }

    fn resize(&self, geo: Geometry) {
        let (major, minor) = self.dev.dev();
        match thin_fs(&geo) {
            Ok(fs) => {
                let mut dev = self.device();
                let mut state = self.books.lock();
                self.cost.hooks.fetch_add(1, Ordering::Relaxed);
                let known = state.heads.len();
                let added = usize::try_from(geo.agcount)
                    .unwrap_or(known)
                    .saturating_sub(known);
                // New AGs count as short until XFS counts their heads; if
                // there is no memory for them, their reports are ignored
                // and they stay short, which only holds more.
                let _ = state.heads.extend_with(added, 0, GFP_KERNEL);
                let added = u32::try_from(added).unwrap_or(u32::MAX);
                state.books.resize(&mut dev, fs, added);
                drop(state);
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

    fn delalloc(&self, before: [u64; 2], after: [u64; 2], reserve: bool) -> Result {
        let blocks = after[0].saturating_add(after[1]);
        self.promise(blocks, |books, dev| {
            books.delalloc(dev, before, after, reserve)
        })
    }

    /// XFS is about to acknowledge a write of `len` sectors at `daddr`,
    /// which it allocated (and, if `written`, wrote) before.
    fn overwrite(&self, daddr: u64, len: u64, written: bool) -> Result {
        // First without the mount's lock: on a device that shares nothing
        // this returns at once, and an overwrite must not queue behind
        // promises.
        let (sectors, result) =
            self.device()
                .provision(daddr, len, Provision::Overwrite { written });
        match result {
            Ok(()) if sectors == 0 => Ok(()),
            Ok(()) => {
                self.with(|books, _dev| books.copied(sectors));
                Ok(())
            }
            Err(DeviceError::NoSpace) => {
                self.promise(0, |books, dev| books.overwrite(dev, daddr, len, written))
            }
            Err(DeviceError::Failed(ret)) => Err(Error::from_errno(ret)),
        }
    }

    /// Freed blocks joined a free extent: see [`ThinMount::release_freed`].
    fn released(&self, daddr: u64, blocks: u64, free_daddr: u64, free_blocks: u64) {
        self.release_freed(daddr, blocks, free_daddr, free_blocks);
    }

    fn flush_again(&self, mark: &mut u64) -> bool {
        self.with(|books, _dev| books.flush_again(mark))
    }

    fn headroom(&self, agno: u32, free: u32) {
        let mut dev = self.device();
        let mut state = self.books.lock();
        self.cost.hooks.fetch_add(1, Ordering::Relaxed);
        let State { books, heads, .. } = &mut *state;
        let Some(head) = usize::try_from(agno).ok().and_then(|i| heads.get_mut(i)) else {
            return;
        };
        let old = core::mem::replace(head, free);
        books.head(&mut dev, agno, old, free);
    }

    /// `len` sectors at `daddr` hold metadata the filesystem rewrites soon
    /// after any snapshot (its log, its AG headers).
    fn pin(&self, daddr: u64, len: u64) -> Result {
        self.with(|books, dev| books.pin(dev, daddr, len))
            .map_err(|e| match e {
                DeviceError::NoSpace => ENOSPC,
                DeviceError::Failed(ret) => Error::from_errno(ret),
            })
    }
}

impl ThinMount {
    /// `blocks` freed at `daddr` joined the free extent of `free_blocks`
    /// at `free_daddr`: the thin blocks that are wholly free now give up
    /// their provisioning, so that space the filesystem allocated and
    /// freed without writing it (free-list blocks, unwritten extents,
    /// frees without online discard, which ends provisioning only for
    /// whole thin blocks a discard covers) is not held in the pool for it.
    /// Nothing is discarded; the books are not involved: provisioning
    /// already took these blocks out of what they hold.
    fn release_freed(&self, daddr: u64, blocks: u64, free_daddr: u64, free_blocks: u64) {
        let Some((start, len)) = self
            .fs
            .released_sectors(daddr, blocks, free_daddr, free_blocks)
        else {
            return;
        };
        let began = Ktime::ktime_get();
        let result = self.dev.release(start, len);
        Cost::count(&self.cost.releases, &self.cost.release_ns, began);
        if let Err(e) = result {
            let (major, minor) = self.dev.dev();
            pr_warn!(
                "{}:{}: releasing {} freed sectors at {} failed: {:?}\n",
                major,
                minor,
                len,
                start,
                e
            );
        }
    }
}

struct XfsThin {
    _registration: Registration<ThinMount>,
}

impl kernel::Module for XfsThin {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let registration = Registration::new(module)?;
        pr_info!("XFS thin-pool reservation shim {} loaded\n", VERSION);
        Ok(XfsThin {
            _registration: registration,
        })
    }
}

impl Drop for XfsThin {
    fn drop(&mut self) {
        pr_info!("XFS thin-pool reservation shim {} unloaded\n", VERSION);
    }
}
