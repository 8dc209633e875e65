//! Short scheduler time slices for the threads that serve requests
//! (`request.thread.slice.us`).
//!
//! Why: a request wakes a runtime worker that sleeps in `epoll_wait`. The kernel puts it on
//! the CPU it last ran on, and if another task runs there (on a shared host, often the
//! client itself), the worker waits for that task's time slice to end, even while the other
//! CPU falls idle. `perf sched` of a consumer reading 1 GB on this 2-core machine showed the
//! worker waiting about 0.12 ms per 1 MiB fetch behind the client's application thread,
//! while the client's fetch thread slept until the answer came: a fifth of each fetch's round
//! trip (docs/performance.md, "Session 15").
//!
//! How: since Linux 6.12, a normal (`SCHED_OTHER`) thread may ask for its own time slice with
//! `sched_setattr` (`sched_runtime`, clamped by the kernel to 0.1–100 ms), and a woken thread
//! whose slice is shorter than the running one's preempts it. This needs no privilege and
//! changes no priority: the thread gets the same share of the CPU, in shorter turns. Older
//! kernels ignore the field. Threads under another policy (a broker started with `chrt` or
//! `SCHED_BATCH`) are left alone. On other systems [`request_slice`] does nothing.

#![allow(unsafe_code)]

use std::io;
use std::time::Duration;

#[cfg(not(target_os = "linux"))]
/// Does nothing: scheduler time slices are a Linux interface.
pub fn request_slice(_slice: Duration) -> io::Result<bool> {
    Ok(false)
}

/// `struct sched_attr` as `sched_setattr(2)` defines it (`SCHED_ATTR_SIZE_VER1`, 56 bytes).
#[cfg(target_os = "linux")]
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

#[cfg(target_os = "linux")]
const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// The calling thread's scheduling attributes. For a `SCHED_OTHER` thread, `runtime` is its
/// time slice in ns (its own, or the kernel's default; 0 before Linux 6.6).
#[cfg(target_os = "linux")]
fn get() -> io::Result<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `attr` is a writable `sched_attr` of the size passed; pid 0 is this thread.
    let r = unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            SCHED_ATTR_SIZE,
            0,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr)
}

/// Asks the kernel for time slices of `slice` for the calling thread, keeping its policy and
/// nice value. Returns whether it applied: false for a thread not under `SCHED_OTHER`.
#[cfg(target_os = "linux")]
pub fn request_slice(slice: Duration) -> io::Result<bool> {
    let mut attr = get()?;
    if attr.policy != libc::SCHED_OTHER as u32 {
        return Ok(false);
    }
    attr.size = SCHED_ATTR_SIZE;
    attr.flags = 0;
    attr.runtime = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
    attr.deadline = 0;
    attr.period = 0;
    // SAFETY: `attr` is a valid `sched_attr` of the size it names; pid 0 is this thread.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(true)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_thread_gets_the_slice_it_asks_for_and_keeps_its_nice_value() {
        std::thread::spawn(|| {
            let before = get().unwrap();
            assert_eq!(before.policy, libc::SCHED_OTHER as u32);
            if before.runtime == 0 {
                // Kernels before EEVDF (6.6) report no slice; there is nothing to check.
                eprintln!("kernel reports no time slice; skipped");
                return;
            }
            assert!(request_slice(Duration::from_micros(300)).unwrap());
            let after = get().unwrap();
            assert_eq!(after.nice, before.nice);
            assert_eq!(after.policy, before.policy);
            // Custom slices came with 6.12; 6.6-6.11 keep the default.
            if kernel_at_least(6, 12) {
                assert_eq!(after.runtime, 300_000);
            }
            // Back to the default.
            assert!(request_slice(Duration::ZERO).unwrap());
            assert_eq!(get().unwrap().runtime, before.runtime);
        })
        .join()
        .unwrap();
    }

    fn kernel_at_least(major: u32, minor: u32) -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        version >= (major, minor)
    }
}
