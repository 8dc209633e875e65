//! The socket's receive low-water mark (`SO_RCVLOWAT`), set only when it changes.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, RawFd};

/// One connection's `SO_RCVLOWAT`. Linux wakes a reader (and reports the socket readable)
/// only once this many bytes are queued, or when the receive buffer comes under pressure, and
/// grows the receive buffer to twice the mark when it is smaller, so a mark never stalls the
/// sender. A failed call is ignored: the mark only saves wake-ups.
pub(crate) struct LowWater {
    fd: RawFd,
    current: usize,
}

impl LowWater {
    /// Tracks the mark of `socket` (the kernel's default is 1).
    pub(crate) fn new(socket: &impl AsRawFd) -> LowWater {
        LowWater {
            fd: socket.as_raw_fd(),
            current: 1,
        }
    }

    /// Sets the mark to `bytes` (at least 1) if it differs.
    pub(crate) fn set(&mut self, bytes: usize) {
        let bytes = bytes.clamp(1, i32::MAX as usize);
        if bytes == self.current {
            return;
        }
        // The descriptor belongs to the connection's stream, which outlives this value (both
        // live in `serve`).
        let rc = set_int_option(
            self.fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            bytes as libc::c_int,
        );
        if rc {
            self.current = bytes;
        }
    }
}

/// Sets the `c_int` socket option `level`/`name` of the open descriptor `fd` to `value`;
/// false if the kernel refused it.
pub(crate) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> bool {
    // SAFETY: setsockopt reads one c_int from a live local; the caller passes a descriptor
    // that is open for the whole call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use bytes::BytesMut;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    use crate::server::Limits;
    use crate::server::connection::{ConnectionError, READ_CHUNK, read_frame_with};

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    fn mark(socket: RawFd) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY (test): getsockopt writes one c_int and its length into live locals.
        let rc = unsafe {
            libc::getsockopt(
                socket,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        value
    }

    fn frame(len: usize) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.extend((0..len).map(|i| (i % 251) as u8));
        f
    }

    #[tokio::test]
    async fn the_mark_follows_the_frame_and_returns_to_one_between_frames() {
        let (mut client, mut server) = pair().await;
        let mut low = LowWater::new(&server);
        let limits = Limits::new(10, 10, 1 << 30, Duration::from_secs(60));
        let mut seen = Vec::new();
        let fd = server.as_raw_fd();
        let sent = frame(3 << 20);
        let writer = tokio::spawn(async move {
            // In pieces, so that the reader waits in the middle of the frame.
            for piece in sent.chunks(300_000) {
                client.write_all(piece).await.unwrap();
                client.flush().await.unwrap();
            }
            client
        });
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let (got, _) = read_frame_with(&mut server, &mut buf, 8 << 20, &limits, |n| {
            low.set(n);
            seen.push((n, mark(fd)));
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(got[..], frame(3 << 20)[4..]);
        assert!(
            seen.iter().any(|&(n, _)| n > READ_CHUNK),
            "asked for more than a chunk: {seen:?}"
        );
        for &(n, on_socket) in &seen {
            assert!(n <= super::super::connection::LOW_WATER_MAX);
            assert_eq!(on_socket as usize, n, "the mark is on the socket");
        }
        // A new frame is waited for from its first byte.
        let mut client = writer.await.unwrap();
        client.write_all(&frame(10)).await.unwrap();
        let (got, _) = read_frame_with(&mut server, &mut buf, 8 << 20, &limits, |n| low.set(n))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(mark(fd), 1);
    }

    /// A peer that closes in the middle of a frame is noticed although fewer bytes than the
    /// mark ever arrive.
    #[tokio::test]
    async fn a_close_mid_frame_wakes_the_reader() {
        let (mut client, mut server) = pair().await;
        let mut low = LowWater::new(&server);
        let limits = Limits::new(10, 10, 1 << 30, Duration::from_secs(60));
        let sent = frame(2 << 20);
        client.write_all(&sent[..200_000]).await.unwrap();
        let closer = tokio::spawn(async move {
            client.write_all(&sent[200_000..300_000]).await.unwrap();
            drop(client);
        });
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        let got = tokio::time::timeout(
            Duration::from_secs(60),
            read_frame_with(&mut server, &mut buf, 8 << 20, &limits, |n| low.set(n)),
        )
        .await
        .expect("the reader must not wait for bytes that never come");
        assert!(matches!(got, Err(ConnectionError::Io(_))), "{got:?}");
        closer.await.unwrap();
    }
}
