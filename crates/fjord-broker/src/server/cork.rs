//! `TCP_CORK` while a response that mixes writes and `sendfile` goes out.
//!
//! A fetch response is written in pieces: `writev` of its framing up to the first record set,
//! `sendfile` of each record set, `writev` of what follows (for Fetch v12+ at least the tagged
//! fields that close the partition, the topic and the response). Connections run with
//! `TCP_NODELAY`, so without a cork every piece left as a segment of its own: a 16 KiB fetch
//! answer was three segments, and the client's network thread was woken for the ~100-byte
//! framing alone, then for the records, then for three bytes. Corked, the pieces fill whole
//! segments and the last goes out when the cork is removed.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, RawFd};

/// `TCP_CORK` set on a socket until dropped. A failed call is ignored: the cork only saves
/// segments and wake-ups.
pub(crate) struct Cork {
    fd: RawFd,
    on: bool,
}

impl Cork {
    /// Corks `socket` (a TCP socket that outlives the value).
    pub(crate) fn new(socket: &impl AsRawFd) -> Cork {
        let fd = socket.as_raw_fd();
        Cork {
            fd,
            on: set(fd, true),
        }
    }
}

impl Drop for Cork {
    /// Uncorks, which sends what is held at once.
    fn drop(&mut self) {
        if self.on {
            set(self.fd, false);
        }
    }
}

fn set(fd: RawFd, on: bool) -> bool {
    let value = libc::c_int::from(on);
    // SAFETY: setsockopt reads one c_int from a live local; the descriptor belongs to the
    // connection's stream, which outlives the cork (see `Cork::new`).
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

/// Segments the socket has sent (`TCP_INFO`'s `tcpi_segs_out`), for tests.
#[cfg(test)]
pub(crate) fn segments_out(socket: &impl AsRawFd) -> u32 {
    // SAFETY: tcp_info is plain old data, for which all zeros is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY (test): getsockopt writes at most `len` bytes into a live local and its length.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_segs_out
}
