//! TCP congestion control for connections from this host.
//!
//! A machine whose default is a pacing algorithm (BBR) paces every socket, loopback ones
//! included: each burst a fetch sends waits for a pacing timer, although a loopback path has
//! no link or queue to pace for. In a VM each timer is a trap to the host. Measured on the
//! project's machine (docs/performance.md, session 9), consume from the page cache ran at
//! about 1.25 GB/s with 0.34 broker CPU-s per GB read under BBR, and 1.75 GB/s with 0.09 under
//! CUBIC. So the broker sets `socket.loopback.congestion.control` (CUBIC by default) on
//! connections whose peer is a loopback address; other connections keep the system's choice.
//!
//! Where it is set matters. Set on an accepted connection, the algorithm changes, but BBR has
//! already asked the kernel to pace the socket (`sk_pacing_status`), and that request outlives
//! BBR: the connection is paced on, at a rate CUBIC's window implies. Set on a listener, it is
//! inherited by every connection the listener accepts, which then never start with BBR. So a
//! listener bound to a loopback address (only loopback peers can reach it) takes the setting
//! itself; a wildcard listener sets it per accepted loopback connection, which saves part of
//! the cost. Both go through [`set_for_loopback`].
#![allow(unsafe_code)]

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sets `algorithm` as the congestion control of `socket` when `addr` is a loopback address
/// and `algorithm` is not empty: for a connection `addr` is its peer's, for a listener its own
/// (a listener passes the setting to every connection it accepts). Returns whether it was set.
/// A refusal (an algorithm the kernel lacks, or one an unprivileged process may not choose) is
/// logged once and leaves the system's choice: this only saves time.
pub(crate) fn set_for_loopback(socket: &impl AsRawFd, addr: IpAddr, algorithm: &str) -> bool {
    if algorithm.is_empty() || !addr.to_canonical().is_loopback() {
        return false;
    }
    match set(socket, algorithm) {
        Ok(()) => true,
        Err(e) => {
            static WARNED: AtomicBool = AtomicBool::new(false);
            if !WARNED.swap(true, Ordering::Relaxed) {
                tracing::info!(algorithm, error = %e,
                    "could not set the congestion control of loopback connections; keeping the system's");
            }
            false
        }
    }
}

#[cfg(target_os = "linux")]
fn set(socket: &impl AsRawFd, algorithm: &str) -> std::io::Result<()> {
    let name = algorithm.as_bytes();
    let len =
        libc::socklen_t::try_from(name.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    // SAFETY: setsockopt reads `len` bytes from `name`, a live slice; the descriptor belongs
    // to the caller's socket, open for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn set(_socket: &impl AsRawFd, _algorithm: &str) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The congestion control `socket` uses (Linux), for tests.
#[cfg(all(test, target_os = "linux"))]
pub(crate) fn current(socket: &impl AsRawFd) -> String {
    let mut name = [0u8; 16];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY (test): getsockopt writes at most `len` bytes into `name` and the length into
    // `len`, both live locals.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    let name = &name[..len as usize];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    async fn accepted(listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
        let addr = listener.local_addr().unwrap();
        let (_client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        accepted.unwrap().0
    }

    #[tokio::test]
    async fn loopback_connections_take_the_configured_algorithm_others_keep_theirs() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // "reno" is built into every Linux kernel and allowed to unprivileged processes.
        let socket = accepted(&listener).await;
        assert!(set_for_loopback(
            &socket,
            "127.0.0.1".parse().unwrap(),
            "reno"
        ));
        assert_eq!(current(&socket), "reno");

        let socket = accepted(&listener).await;
        let before = current(&socket);
        let remote: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!set_for_loopback(&socket, remote, "reno"));
        assert!(!set_for_loopback(&socket, "127.0.0.1".parse().unwrap(), ""));
        assert_eq!(current(&socket), before, "left as the system chose");

        assert!(!set_for_loopback(
            &socket,
            "::1".parse().unwrap(),
            "no-such-algorithm"
        ));
        assert_eq!(
            current(&socket),
            before,
            "a refusal keeps the system's choice"
        );

        let socket = accepted(&listener).await;
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(
            set_for_loopback(&socket, mapped, "reno"),
            "IPv4-mapped loopback"
        );
    }

    /// A loopback listener's algorithm is inherited by the connections it accepts, with no
    /// per-connection call; a wildcard listener is left alone (its remote peers keep the
    /// system's choice).
    #[tokio::test]
    async fn a_loopback_listener_passes_its_algorithm_to_accepted_connections() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().ip();
        assert!(set_for_loopback(&listener, local, "reno"));
        assert_eq!(current(&listener), "reno");
        assert_eq!(current(&accepted(&listener).await), "reno");

        let wildcard = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
        let before = current(&wildcard);
        let ip = wildcard.local_addr().unwrap().ip();
        assert!(!set_for_loopback(&wildcard, ip, "reno"));
        assert_eq!(current(&wildcard), before);
        assert!(!set_for_loopback(&listener, local, ""));
        assert!(!set_for_loopback(&listener, local, "no-such-algorithm"));
        assert_eq!(current(&listener), "reno", "a refusal changes nothing");
    }

    /// The broker's accept loop applies `socket.loopback.congestion.control`: the accepted
    /// socket's algorithm is read with `ss`, the one view of a server-side socket from outside.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_broker_applies_the_configured_algorithm_to_loopback_connections() {
        let dir = tempfile::tempdir().unwrap();
        let broker = crate::broker::Broker::open_for_test(
            dir.path(),
            &["socket.loopback.congestion.control=reno"],
        );
        let server = crate::server::Server::bind(broker).await.unwrap();
        let addr = server.local_addrs()[0];
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let serving = tokio::spawn(server.serve(shutdown));
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let client_port = client.local_addr().unwrap().port();
        let filter = format!("( sport = :{} and dport = :{client_port} )", addr.port());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let info = loop {
            let out = match std::process::Command::new("ss")
                .args(["-tin", "state", "established", &filter])
                .output()
            {
                Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
                Err(e) => {
                    eprintln!(
                        "no ss on this machine ({e}): the accept loop's setting is not checked"
                    );
                    break None;
                }
            };
            // The kernel lists the connection before the broker accepts it, so this waits
            // for the algorithm, not for the listing.
            if out.contains(" reno ") {
                break Some(out);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the accepted connection never used reno: {out}"
            );
            tokio::task::yield_now().await;
        };
        assert!(info.is_none_or(|i| i.contains(" reno ")));
        drop(client);
        stop.send(true).unwrap();
        serving.await.unwrap();
    }
}
