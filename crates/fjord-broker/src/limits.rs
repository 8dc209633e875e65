//! The open-file limit, raised at start from its soft value to the hard one.
//!
//! Each partition keeps three files open (its active segment and two indexes; see
//! `docs/design.md` §3), and CreateTopics refuses partitions past the soft limit. Many Linux
//! desktops and containers start processes with a soft limit of 1,024 under a hard limit of
//! hundreds of thousands: room for about 250 partitions where the system allows far more. A
//! process may raise its own soft limit up to the hard one without privilege, and servers that
//! hold a file per segment commonly do (Go's runtime does it for every program), so the broker
//! does it before it opens any log. The hard limit is never raised: that is the operator's
//! (`ulimit -Hn`, `LimitNOFILE`).

#![allow(unsafe_code)]

use std::io;

/// What [`raise_open_file_limit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileLimit {
    /// Raised from the first soft limit to the second.
    Raised(u64, u64),
    /// The soft limit already was the hard one (or unlimited); nothing to do.
    AtHard(u64),
}

/// This process's `RLIMIT_NOFILE` (soft and hard).
#[cfg(target_os = "linux")]
fn nofile() -> io::Result<libc::rlimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the call to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim)
}

/// The soft open-file limit, the one opening a file is refused past; `None` when unlimited or
/// unknown (not Linux).
pub fn open_file_limit() -> Option<i64> {
    #[cfg(target_os = "linux")]
    {
        let soft = nofile().ok()?.rlim_cur;
        if soft == libc::RLIM_INFINITY {
            return None;
        }
        i64::try_from(soft).ok()
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// Files this process has open now (entries of `/proc/self/fd`); `None` where that is not
/// readable.
pub fn open_files() -> Option<i64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    i64::try_from(n).ok()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit. An unlimited hard limit is
/// taken as the kernel's per-process ceiling (`/proc/sys/fs/nr_open`), which is what an
/// unlimited soft limit would be refused above.
#[cfg(target_os = "linux")]
pub fn raise_open_file_limit() -> io::Result<FileLimit> {
    let mut lim = nofile()?;
    let target = if lim.rlim_max == libc::RLIM_INFINITY {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<libc::rlim_t>().ok())
            .unwrap_or(lim.rlim_cur)
    } else {
        lim.rlim_max
    };
    if lim.rlim_cur >= target {
        return Ok(FileLimit::AtHard(lim.rlim_cur));
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = target;
    // SAFETY: `lim` is a valid rlimit; only the soft value changed, and not above the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileLimit::Raised(before, target))
}

/// Does nothing outside Linux.
#[cfg(not(target_os = "linux"))]
pub fn raise_open_file_limit() -> io::Result<FileLimit> {
    Ok(FileLimit::AtHard(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_limit_and_open_files_are_read() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|l| l > 0));
            assert!(open_files().is_some_and(|n| n > 0));
        }
    }
}
