//! The file operations std offers only on nightly or not at all: reading into uninitialised
//! memory, vectored positional writes, and starting writeback early. Each is a thin wrapper
//! over one system call with its safety argument next to it.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Most iovecs passed to one `pwritev` (Linux's `IOV_MAX` is 1024).
const MAX_IOVECS: usize = 1024;

/// Reads exactly `len` bytes at `pos` into a new buffer without zero-filling it first (for
/// 1 MiB fetch reads the `memset` cost a tenth of the broker's fetch CPU).
pub(crate) fn read_exact_at(file: &File, pos: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::<u8>::with_capacity(len);
    while buf.len() < len {
        let filled = buf.len();
        let spare = &mut buf.spare_capacity_mut()[..len - filled];
        let offset = offset_of(pos, filled)?;
        // SAFETY: `spare` is writable memory owned by `buf` of `spare.len()` bytes; pread
        // writes at most that many bytes into it and does not keep the pointer.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                offset,
            )
        };
        match n {
            n if n > 0 => {
                // SAFETY: pread initialised the first `n` (<= spare.len()) bytes of the spare
                // capacity, which directly follow the `filled` initialised ones.
                unsafe { buf.set_len(filled + n as usize) };
            }
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file ended before the requested range",
                ));
            }
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buf)
}

/// Writes all of `parts`, back to back, at `pos` with as few `pwritev` calls as the kernel
/// allows (one, normally), so that a batch can be written from a patched header and the
/// request's own bytes without first copying them together.
pub(crate) fn write_all_vectored_at(file: &File, parts: &[&[u8]], pos: u64) -> io::Result<()> {
    let mut parts: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut first = 0;
    let mut written = 0usize;
    while first < parts.len() {
        let iovecs: Vec<libc::iovec> = parts[first..(first + MAX_IOVECS).min(parts.len())]
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr().cast_mut().cast(),
                iov_len: p.len(),
            })
            .collect();
        let offset = offset_of(pos, written)?;
        // SAFETY: every iovec points into a live slice of `parts` and gives its exact length;
        // pwritev only reads from them and does not keep the pointers. `iovecs.len()` is at
        // most MAX_IOVECS, within c_int.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iovecs.as_ptr(),
                iovecs.len() as libc::c_int,
                offset,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        let mut n = n as usize;
        written += n;
        // Skip what was written: whole parts, then the front of a partly written one.
        while n > 0 && first < parts.len() {
            let len = parts[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                parts[first] = &parts[first][n..];
                n = 0;
            }
        }
    }
    Ok(())
}

/// Asks the kernel to start writing back the dirty pages of `len` bytes at `pos` without
/// waiting for them (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`; a no-op elsewhere). This
/// is not a durability point: it keeps dirty page cache from piling up until the kernel's
/// background threshold, where writeback of gigabytes at once stalls every writer.
pub(crate) fn start_writeback(file: &File, pos: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let offset = offset_of(pos, 0)?;
        let len = libc::off64_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: plain system call on an open descriptor; no memory is passed.
        let rc = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, pos, len);
    Ok(())
}

/// Allocates disk blocks for `len` bytes at `pos` without changing the file's size (Linux
/// `fallocate(FALLOC_FL_KEEP_SIZE)`; a no-op elsewhere). Reads, recovery and the size a segment
/// reports are unaffected: the blocks lie past the end of the file until appends reach them.
pub(crate) fn allocate_past_end(file: &File, pos: u64, len: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    fallocate(file, libc::FALLOC_FL_KEEP_SIZE, pos, len)?;
    #[cfg(not(target_os = "linux"))]
    let _ = (file, pos, len);
    Ok(())
}

/// Frees the blocks allocated past `size`, the end of the file, up to `end`. ext4 ignores hole
/// punching past the end but frees such blocks when the file is truncated, even to its own
/// size; tmpfs and others punch. Both are done, so it works on either kind.
pub(crate) fn free_past_end(file: &File, size: u64, end: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let from = size.div_ceil(4096) * 4096;
        if end > from {
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            match fallocate(file, mode, from, end - from) {
                Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => return Err(e),
                _ => {}
            }
        }
        file.set_len(size)?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, size, end);
    Ok(())
}

/// Bytes an unprivileged writer can still allocate on the file system holding `path`
/// (`statvfs`: available blocks times the fragment size).
pub(crate) fn available_bytes(path: &std::path::Path) -> io::Result<u64> {
    Ok(disk_space(path)?.available)
}

/// The size of the file system holding a path, and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Its size in bytes.
    pub total: u64,
    /// Bytes an unprivileged writer can still allocate (blocks reserved for root excluded).
    pub available: u64,
}

/// [`DiskSpace`] of the file system holding `path` (`statvfs`: block counts times the
/// fragment size).
pub fn disk_space(path: &std::path::Path) -> io::Result<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call; `stat` is writable
    // memory of the size statvfs fills, and it is read only after statvfs returned success.
    let stat = unsafe {
        if libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        stat.assume_init()
    };
    Ok(DiskSpace {
        total: stat.f_blocks.saturating_mul(stat.f_frsize),
        available: stat.f_bavail.saturating_mul(stat.f_frsize),
    })
}

#[cfg(target_os = "linux")]
fn fallocate(file: &File, mode: libc::c_int, pos: u64, len: u64) -> io::Result<()> {
    let offset = offset_of(pos, 0)?;
    let len = libc::off_t::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?;
    loop {
        // SAFETY: plain system call on an open descriptor; no memory is passed.
        let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Disk blocks a segment has asked to have allocated past its end (see
/// [`Reservation::extend_in_background`]). Once released, later requests are ignored, so blocks
/// asked for just before a roll cannot stay allocated behind a finished segment.
#[derive(Debug)]
pub(crate) struct Reservation {
    file: Arc<File>,
    /// `true` after [`Reservation::release`]. Held while blocks are allocated, so a release
    /// waits for an allocation under way instead of racing it.
    released: Mutex<bool>,
}

impl Reservation {
    pub(crate) fn new(file: Arc<File>) -> Self {
        Reservation {
            file,
            released: Mutex::new(false),
        }
    }

    /// Allocates `len` bytes at `pos` on the background thread (see [`background`]), so that an
    /// append never waits for the block allocator; failures (a full disk, a file system without
    /// `fallocate`) only mean the kernel allocates at writeback, as without a reservation.
    pub(crate) fn extend_in_background(self: &Arc<Self>, pos: u64, len: u64) {
        // Advisory: a dropped request means the kernel allocates at writeback.
        let _ = background(Job::Allocate(Arc::clone(self), pos, len));
    }

    fn allocate(&self, pos: u64, len: u64) {
        let released = self.released.lock().unwrap_or_else(PoisonError::into_inner);
        if !*released && let Err(e) = allocate_past_end(&self.file, pos, len) {
            tracing::debug!(error = %e, "block reservation refused");
        }
    }

    /// Frees whatever was allocated past `size`, the file's end, up to `end`, and ignores later
    /// requests. `size` must be the file's true size: the file is truncated to it.
    pub(crate) fn release(&self, size: u64, end: u64) -> io::Result<()> {
        let mut released = self.released.lock().unwrap_or_else(PoisonError::into_inner);
        *released = true;
        if end > size {
            free_past_end(&self.file, size, end)?;
        }
        Ok(())
    }

    /// [`Reservation::release`] for a segment that has just stopped being the active one: later
    /// requests are ignored from now on, and the blocks are freed on the background thread.
    /// Freeing blocks waits for the disk where the file system discards them (`-o discard`:
    /// 138 ms behind a busy queue), and a roll holds its partition's lock. Done here when the
    /// thread is too far behind to take the job.
    pub(crate) fn release_in_background(self: &Arc<Self>, size: u64, end: u64) {
        *self.released.lock().unwrap_or_else(PoisonError::into_inner) = true;
        if end > size && !background(Job::Free(Arc::clone(self), size, end)) {
            self.free(size, end);
        }
    }

    /// The background half of [`Reservation::release_in_background`]. The file is cut only if
    /// it still is `size` long: a truncation since (which holds the same lock while it cuts,
    /// see [`Reservation::cut`]) must not be undone.
    fn free(&self, size: u64, end: u64) {
        let _released = self.released.lock().unwrap_or_else(PoisonError::into_inner);
        let result = match self.file.metadata() {
            Ok(meta) if meta.len() == size => free_past_end(&self.file, size, end),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not free the blocks reserved past a segment's end");
        }
    }

    /// Truncates the file to `len`, excluding a background [`Reservation::free`] meanwhile.
    pub(crate) fn cut(&self, len: u64) -> io::Result<()> {
        let _released = self.released.lock().unwrap_or_else(PoisonError::into_inner);
        self.file.set_len(len)
    }
}

/// Work for the background thread.
enum Job {
    Writeback(Arc<File>, u64, u64),
    Allocate(Arc<Reservation>, u64, u64),
    Free(Arc<Reservation>, u64, u64),
    PrepareSpare(Arc<crate::spare::Spare>, u64),
}

impl Job {
    fn run(self) {
        match self {
            Job::Writeback(file, pos, len) => {
                if let Err(e) = start_writeback(&file, pos, len) {
                    tracing::debug!(error = %e, "early writeback refused");
                }
            }
            Job::Allocate(reservation, pos, len) => reservation.allocate(pos, len),
            Job::Free(reservation, size, end) => reservation.free(size, end),
            Job::PrepareSpare(spare, reserve) => spare.make(reserve),
        }
    }
}

/// [`start_writeback`] on a background thread: with the device queue full, starting writeback
/// waits for free request slots, and an append must not wait for that (it holds its
/// partition).
pub(crate) fn start_writeback_in_background(file: &Arc<File>, pos: u64, len: u64) {
    // Advisory: a dropped request means the kernel's flushers write the range back.
    let _ = background(Job::Writeback(Arc::clone(file), pos, len));
}

/// [`crate::spare::Spare::make`] on the "fjord-spare" thread, its own: allocating up to a whole
/// segment can take long enough on a busy disk that the writeback thread's jobs (top-ups of
/// active segments' reserves, early writeback) must not queue behind it. False when the job was
/// dropped (the thread is far behind or could not be started; never run inline, which would be
/// under the partition's lock).
pub(crate) fn prepare_spare_in_background(spare: &Arc<crate::spare::Spare>, reserve: u64) -> bool {
    static QUEUE: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    match background_queue(&QUEUE, "fjord-spare") {
        Some(tx) => tx
            .try_send(Job::PrepareSpare(Arc::clone(spare), reserve))
            .is_ok(),
        None => false,
    }
}

/// Removes `paths` (files, or directories with everything in them) on the "fjord-delete"
/// thread once `delay` has passed (see `Segment::delete` and `Log::delete`): where the file
/// system discards freed blocks (`-o discard`), removing a written 1 GiB segment took 0.75 s on
/// this project's VM, and a retention pass holds the partition's lock. Done here when no thread
/// could be started. A process that stops first leaves the files for the next open to hand
/// over again (their names end in `crate::segment::DELETED_SUFFIX`).
pub(crate) fn remove_in_background(paths: Vec<PathBuf>, delay: Duration) {
    let job = Removal::Later(Instant::now() + delay, paths);
    let unsent = match delete_queue() {
        Some(tx) => tx.send(job).err().map(|e| e.0),
        None => Some(job),
    };
    if let Some(Removal::Later(_, paths)) = unsent {
        paths.iter().for_each(|p| remove_logged(p));
    }
}

/// A disk is full: has the "fjord-delete" thread remove everything it holds now, whatever its
/// delay, and waits (at most `wait`) until it has. True if there was anything to remove.
pub(crate) fn remove_deleted_now(wait: Duration) -> bool {
    let Some(tx) = delete_queue() else {
        return false;
    };
    let (done_tx, done) = channel();
    if tx.send(Removal::Now(done_tx)).is_err() {
        return false;
    }
    done.recv_timeout(wait).unwrap_or(false)
}

/// The "fjord-delete" thread's queue, started on first use; `None` if it could not be.
fn delete_queue() -> Option<&'static Sender<Removal>> {
    static QUEUE: OnceLock<Option<Sender<Removal>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel();
            std::thread::Builder::new()
                .name("fjord-delete".into())
                .spawn(move || remove_when_due(&rx))
                .ok()
                .map(|_| tx)
        })
        .as_ref()
}

/// Work for the "fjord-delete" thread.
enum Removal {
    /// Remove these paths at that time.
    Later(Instant, Vec<PathBuf>),
    /// Remove everything pending now, then say whether there was anything.
    Now(Sender<bool>),
}

/// The "fjord-delete" thread: removes each job's files when it is due.
fn remove_when_due(jobs: &Receiver<Removal>) {
    let mut pending: Vec<(Instant, Vec<PathBuf>)> = Vec::new();
    loop {
        let now = Instant::now();
        pending.retain(|(due, paths)| {
            let keep = *due > now;
            if !keep {
                paths.iter().for_each(|p| remove_logged(p));
            }
            keep
        });
        let next = match pending.iter().map(|(due, _)| *due).min() {
            Some(due) => jobs.recv_timeout(due.saturating_duration_since(Instant::now())),
            None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(Removal::Later(due, paths)) => pending.push((due, paths)),
            Ok(Removal::Now(done)) => {
                let any = !pending.is_empty();
                for (_, paths) in pending.drain(..) {
                    paths.iter().for_each(|p| remove_logged(p));
                }
                let _ = done.send(any);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn remove_logged(path: &std::path::Path) {
    let removed = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        _ => std::fs::remove_file(path),
    };
    match removed {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), error = %e, "could not remove deleted data");
        }
        _ => {}
    }
}

/// A deleted partition directory or segment file (its name ends in `.deleted`) found at start:
/// hands it to the "fjord-delete" thread, to be removed at once, and returns true; false for
/// any other path.
pub fn remove_if_deleted(path: &std::path::Path) -> bool {
    let deleted = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(crate::segment::DELETED_SUFFIX));
    if deleted {
        remove_in_background(vec![path.to_path_buf()], Duration::ZERO);
    }
    deleted
}

/// Runs `job` on the "fjord-writeback" thread, in the order queued. Jobs are dropped when the
/// thread is 256 behind; returns false then.
fn background(job: Job) -> bool {
    static QUEUE: OnceLock<Option<SyncSender<Job>>> = OnceLock::new();
    match background_queue(&QUEUE, "fjord-writeback") {
        Some(tx) => tx.try_send(job).is_ok(),
        // No thread could be started: do it here rather than not at all.
        None => {
            job.run();
            true
        }
    }
}

/// The queue of the background thread `name`, started on first use; `None` when no thread
/// could be started.
fn background_queue(
    queue: &'static OnceLock<Option<SyncSender<Job>>>,
    name: &str,
) -> &'static Option<SyncSender<Job>> {
    queue.get_or_init(|| {
        let (tx, rx) = sync_channel::<Job>(256);
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || rx.into_iter().for_each(Job::run))
            .ok()
            .map(|_| tx)
    })
}

/// A byte range of a segment file, from [`crate::Log::read_slices`]: batches to be sent from
/// the page cache without being read into memory first. Holds the file open, so a segment
/// deleted meanwhile stays readable.
#[derive(Debug, Clone)]
pub struct FileSlice {
    file: Arc<File>,
    pos: u64,
    len: usize,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, pos: u64, len: usize) -> Self {
        FileSlice { file, pos, len }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the bytes, for a sender that cannot send from the file.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        read_exact_at(&self.file, self.pos, self.len)
    }

    /// Whether some of the slice's bytes are not in the page cache, so that sending it would
    /// wait for the disk. False where the kernel cannot tell (`uncached_pages`).
    pub fn is_cold(&self) -> bool {
        uncached_pages(&self.file, self.pos, self.len as u64).is_some_and(|n| n > 0)
    }

    /// Reads the slice's bytes into the page cache and throws them away: a blocking call for a
    /// blocking thread, so that the `sendfile` that follows on the runtime finds them cached.
    pub fn warm(&self) -> io::Result<()> {
        let mut buf = Vec::<u8>::with_capacity(WARM_CHUNK.min(self.len));
        let mut done = 0usize;
        while done < self.len {
            let want = (self.len - done).min(WARM_CHUNK);
            let offset = offset_of(self.pos, done)?;
            // SAFETY: the spare capacity is writable memory owned by `buf` of at least `want`
            // bytes; pread writes at most `want` bytes into it and keeps no pointer. Nothing
            // reads those bytes, so they may stay uninitialised.
            let n = unsafe {
                libc::pread(
                    self.file.as_raw_fd(),
                    buf.spare_capacity_mut().as_mut_ptr().cast(),
                    want,
                    offset,
                )
            };
            match n {
                n if n > 0 => done += n as usize,
                0 => return Ok(()), // truncated under the slice: the send will say so
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends bytes `done..` of the slice to the socket `socket` with one `sendfile` (Linux; a
    /// `pread` and `write` elsewhere), returning how many went: fewer than asked when the
    /// socket buffer fills. `WouldBlock` means none fit. `Ok(0)` with bytes left means the file
    /// was truncated under the slice.
    pub fn send_to(&self, socket: std::os::fd::BorrowedFd<'_>, done: usize) -> io::Result<usize> {
        let left = self.len.saturating_sub(done);
        if left == 0 {
            return Ok(0);
        }
        let offset = offset_of(self.pos, done)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let mut offset = offset;
            // SAFETY: both descriptors are open for the duration of the call (`socket` is
            // borrowed, `self.file` owned); `offset` is a live local the kernel updates.
            let n = unsafe {
                libc::sendfile(socket.as_raw_fd(), self.file.as_raw_fd(), &mut offset, left)
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = offset;
            let data = read_exact_at(&self.file, self.pos + done as u64, left.min(1 << 20))?;
            let mut socket = File::from(socket.try_clone_to_owned()?);
            io::Write::write(&mut socket, &data)
        }
    }
}

/// Pages of `len` bytes at `pos` that are not in the page cache, by `cachestat(2)` (Linux
/// 6.5 and later). `None` where the kernel cannot tell (an older kernel, another system, a
/// refused call): callers then read as if everything were cached, as before the probe existed.
/// The call walks the page cache's tree under RCU; it never waits for the disk.
pub(crate) fn uncached_pages(file: &File, pos: u64, len: u64) -> Option<u64> {
    if len == 0 {
        return Some(0); // `cachestat` reads a zero length as "to the end of the file".
    }
    #[cfg(target_os = "linux")]
    {
        /// `struct cachestat_range` of `<linux/mman.h>`.
        #[repr(C)]
        struct Range {
            off: u64,
            len: u64,
        }
        /// `struct cachestat` of `<linux/mman.h>`.
        #[repr(C)]
        #[derive(Default)]
        struct Stat {
            nr_cache: u64,
            nr_dirty: u64,
            nr_writeback: u64,
            nr_evicted: u64,
            nr_recently_evicted: u64,
        }
        /// `cachestat`'s number, the same on every architecture (it postdates the unified
        /// table).
        const SYS_CACHESTAT: libc::c_long = 451;
        let range = Range { off: pos, len };
        let mut stat = Stat::default();
        // SAFETY: `range` and `stat` are live locals of the layouts the kernel reads and writes;
        // the descriptor is open for the duration of the call; the kernel keeps no pointer.
        let rc = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd(),
                &range as *const Range,
                &mut stat as *mut Stat,
                0u32,
            )
        };
        if rc != 0 {
            return None;
        }
        let first = pos / PAGE;
        let end = pos.saturating_add(len).div_ceil(PAGE);
        Some((end - first).saturating_sub(stat.nr_cache))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, pos);
        None
    }
}

/// Drops the file's clean pages from the page cache (`POSIX_FADV_DONTNEED`; dirty pages stay
/// until written back, so fsync first). For tests of reads that have to go to the disk.
pub fn evict_from_page_cache(path: &std::path::Path) -> io::Result<()> {
    let file = File::open(path)?;
    // SAFETY: plain system call on an open descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Whether this kernel tells which pages are cached (`cachestat(2)`, Linux 6.5 and later);
/// without it [`FileSlice::is_cold`] is always false and reads go to the disk where they are.
pub fn kernel_reports_page_cache() -> bool {
    // Any open file will do: the answer is about the call, not the file.
    File::open("/proc/self/exe").is_ok_and(|file| uncached_pages(&file, 0, 1).is_some())
}

/// The page size `cachestat` counts in. Larger pages only make [`uncached_pages`] count
/// fewer, never report a cached range as cold.
const PAGE: u64 = 4096;

/// Bytes [`FileSlice::warm`] reads per `pread`.
const WARM_CHUNK: usize = 256 * 1024;

fn offset_of(pos: u64, delta: usize) -> io::Result<libc::off_t> {
    pos.checked_add(delta as u64)
        .and_then(|p| libc::off_t::try_from(p).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "file offset out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    /// A release left to the background frees the blocks past the end, but never undoes a
    /// truncation made in between: it cuts only a file still as long as it was at the roll.
    #[test]
    fn a_background_release_frees_the_reserve_and_never_extends_a_truncated_file() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(name))
                .unwrap();
            file.write_all_at(&[7u8; 8192], 0).unwrap();
            allocate_past_end(&file, 8192, 1 << 20).unwrap();
            Arc::new(Reservation::new(Arc::new(file)))
        };
        let freed = open("freed");
        freed.free(8192, 8192 + (1 << 20));
        let meta = freed.file.metadata().unwrap();
        assert_eq!(meta.len(), 8192);
        assert!(
            meta.blocks() * 512 < 1 << 20,
            "{} bytes allocated",
            meta.blocks() * 512
        );
        let cut = open("cut");
        cut.cut(4096).unwrap();
        cut.free(8192, 8192 + (1 << 20));
        assert_eq!(cut.file.metadata().unwrap().len(), 4096);
    }

    #[test]
    fn vectored_write_and_uninit_read_round_trip() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(b"xxxx", 0).unwrap();
        let parts: Vec<Vec<u8>> = (0..2000u32)
            .map(|i| vec![i as u8; (i % 7) as usize])
            .collect();
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        write_all_vectored_at(&file, &slices, 4).unwrap();
        let expected: Vec<u8> = parts.concat();
        assert_eq!(read_exact_at(&file, 4, expected.len()).unwrap(), expected);
        assert_eq!(read_exact_at(&file, 0, 4).unwrap(), b"xxxx");
        let past = read_exact_at(&file, 4, expected.len() + 1).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
        assert!(read_exact_at(&file, 0, 0).unwrap().is_empty());
        start_writeback(&file, 0, 4 + expected.len() as u64).unwrap();
        start_writeback_in_background(&std::sync::Arc::new(file), 0, 4);
    }

    /// Bytes of disk the file occupies.
    fn allocated(file: &File) -> u64 {
        use std::os::unix::fs::MetadataExt;
        file.metadata().unwrap().blocks() * 512
    }

    #[test]
    fn a_released_reservation_frees_its_blocks_and_ignores_later_requests() {
        let file = Arc::new(tempfile::tempfile().unwrap());
        file.write_all_at(&[7u8; 5000], 0).unwrap();
        let reservation = Reservation::new(Arc::clone(&file));
        reservation.allocate(4096, 1 << 20);
        assert!(allocated(&file) >= 1 << 20, "{}", allocated(&file));
        assert_eq!(
            file.metadata().unwrap().len(),
            5000,
            "the size does not change"
        );
        reservation.release(5000, 4096 + (1 << 20)).unwrap();
        assert!(allocated(&file) <= 8192, "{}", allocated(&file));
        // A request queued before the release and run after it allocates nothing.
        reservation.allocate(8192, 1 << 20);
        assert!(allocated(&file) <= 8192, "{}", allocated(&file));
        let mut data = vec![0u8; 5000];
        file.read_exact_at(&mut data, 0).unwrap();
        assert!(data.iter().all(|&b| b == 7), "the data is untouched");
    }
}
