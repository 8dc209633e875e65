//! `TCP_CORK` while a response that mixes writes and `sendfile` goes out.
//!
//! A fetch response is written in pieces: `writev` of its framing up to the first record set,
//! `sendfile` of each record set, `writev` of what follows (for Fetch v12+ at least the tagged
//! fields that close the partition, the topic and the response). Connections run with
//! `TCP_NODELAY`, so without a cork every piece left as a segment of its own: a 16 KiB fetch
//! answer was three segments, and the client's network thread was woken for the ~100-byte
//! framing alone, then for the records, then for three bytes. Corked, the pieces fill whole
//! segments and the last goes out when the cork is removed. Linux only (elsewhere the
//! pieces go out as before).
#![allow(unsafe_code)]

use std::ops::{Deref, DerefMut};

use tokio::net::TcpStream;

/// A stream borrowed with `TCP_CORK` set, until dropped: write through it. A failed call is
/// ignored (the cork only saves segments and wake-ups).
pub(crate) struct Corked<'a> {
    stream: &'a mut TcpStream,
    on: bool,
}

impl<'a> Corked<'a> {
    /// `stream`, corked if `cork`.
    pub(crate) fn new(stream: &'a mut TcpStream, cork: bool) -> Corked<'a> {
        let on = cork && set(stream, true);
        Corked { stream, on }
    }
}

impl Deref for Corked<'_> {
    type Target = TcpStream;

    fn deref(&self) -> &TcpStream {
        self.stream
    }
}

impl DerefMut for Corked<'_> {
    fn deref_mut(&mut self) -> &mut TcpStream {
        self.stream
    }
}

impl Drop for Corked<'_> {
    /// Uncorks, which sends what is held at once.
    fn drop(&mut self) {
        if self.on {
            set(self.stream, false);
        }
    }
}

#[cfg(target_os = "linux")]
fn set(stream: &TcpStream, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    // The descriptor is the borrowed stream's, open for the whole call.
    super::low_water::set_int_option(
        stream.as_raw_fd(),
        libc::IPPROTO_TCP,
        libc::TCP_CORK,
        libc::c_int::from(on),
    )
}

#[cfg(not(target_os = "linux"))]
fn set(_stream: &TcpStream, _on: bool) -> bool {
    false
}

/// Segments the socket has sent (`TCP_INFO`'s `tcpi_segs_out`), for tests.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn segments_out(socket: &impl std::os::fd::AsRawFd) -> u32 {
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
