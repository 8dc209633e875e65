//! Listeners and connections.
//!
//! [`Server::bind`] binds every configured listener (port 0 picks a free port) and records the
//! advertised addresses; [`Server::serve`] accepts connections until shutdown, running one task
//! per connection (see [`connection`]). Background housekeeping (flush.ms, time-based rolls,
//! retention) runs beside the accept loops.

mod congestion;
pub mod connection;
mod cork;
mod fetch_decode;
mod fetch_encode;
pub mod frame;
mod low_water;
#[cfg(test)]
mod xorshift;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::broker::Broker;

/// Bound listeners, ready to serve.
pub struct Server {
    broker: Arc<Broker>,
    /// Each listener, and whether it took `socket.loopback.congestion.control` itself (its
    /// connections then inherit it).
    listeners: Vec<(TcpListener, bool)>,
    addrs: Vec<SocketAddr>,
}

impl Server {
    /// Binds every listener of the broker's config.
    pub async fn bind(broker: Arc<Broker>) -> std::io::Result<Server> {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        let loopback_congestion = loopback_congestion(&broker);
        for l in &broker.config.listeners {
            let listener = TcpListener::bind(l.bind_addr()?).await?;
            let local = listener.local_addr()?;
            let inherited =
                congestion::set_for_loopback(&listener, local.ip(), &loopback_congestion);
            addrs.push(local);
            listeners.push((listener, inherited));
        }
        let advertised: Vec<(String, u16)> = if broker.config.advertised_listeners.is_empty() {
            addrs
                .iter()
                .map(|a| {
                    // Clients cannot connect to 0.0.0.0; advertise loopback for a wildcard bind.
                    let host = if a.ip().is_unspecified() {
                        "127.0.0.1".to_string()
                    } else {
                        a.ip().to_string()
                    };
                    (host, a.port())
                })
                .collect()
        } else {
            broker
                .config
                .advertised_listeners
                .iter()
                .map(|l| (l.host.clone(), l.port))
                .collect()
        };
        broker.set_advertised(advertised);
        Ok(Server {
            broker,
            listeners,
            addrs,
        })
    }

    /// Returns the bound addresses (with real ports when port 0 was configured).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Serves until `shutdown` becomes true, then stops accepting and tells every connection
    /// to finish its current request and close.
    pub async fn serve(self, mut shutdown: watch::Receiver<bool>) {
        let mut tasks = tokio::task::JoinSet::new();
        let limits = Arc::new(Limits::from_config(&self.broker));
        for (listener, inherited) in self.listeners {
            let broker = Arc::clone(&self.broker);
            let shutdown = shutdown.clone();
            let limits = Arc::clone(&limits);
            tasks.spawn(accept_loop(broker, listener, inherited, shutdown, limits));
        }
        let broker = Arc::clone(&self.broker);
        let hk_shutdown = shutdown.clone();
        tasks.spawn(housekeeping(broker, hk_shutdown));
        tasks.spawn(group_ticker(Arc::clone(&self.broker), shutdown.clone()));
        let _ = shutdown.wait_for(|s| *s).await;
        // Give connections a bounded time to finish the request in hand.
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
    }
}

/// Resolves when `shutdown` becomes true (or its sender is gone).
pub(crate) async fn stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Connection and memory limits shared by every listener: `max.connections`,
/// `max.connections.per.ip`, `queued.max.request.bytes` and `connections.max.idle.ms`.
pub struct Limits {
    max_connections: usize,
    max_per_ip: usize,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
    request_memory: Arc<Semaphore>,
    request_memory_max: usize,
    /// `connections.max.idle.ms`.
    pub(crate) idle: Duration,
}

/// Releases a connection's slot when dropped.
pub(crate) struct ConnectionSlot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    /// Creates limits from their settings; each count is at least 1. Servers take them from
    /// the broker config; the `frame_stream` fuzz target builds its own for
    /// [`connection::read_frame`].
    pub fn new(
        max_connections: usize,
        max_connections_per_ip: usize,
        queued_max_request_bytes: usize,
        idle: Duration,
    ) -> Self {
        let request_memory_max = queued_max_request_bytes.clamp(1, Semaphore::MAX_PERMITS);
        Limits {
            max_connections: max_connections.max(1),
            max_per_ip: max_connections_per_ip.max(1),
            open: Mutex::new((0, HashMap::new())),
            request_memory: Arc::new(Semaphore::new(request_memory_max)),
            request_memory_max,
            idle,
        }
    }

    fn from_config(broker: &Broker) -> Self {
        let int = |name: &str| broker.config.get_i64(name).max(1) as usize;
        Limits::new(
            int("max.connections"),
            int("max.connections.per.ip"),
            int("queued.max.request.bytes"),
            Duration::from_millis(int("connections.max.idle.ms") as u64),
        )
    }

    /// Takes a connection slot for `ip`, or says which limit is reached.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, &'static str> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.0 >= self.max_connections {
            return Err("max.connections");
        }
        let per_ip = open.1.get(&ip).copied().unwrap_or(0);
        if per_ip >= self.max_per_ip {
            return Err("max.connections.per.ip");
        }
        open.0 += 1;
        open.1.insert(ip, per_ip + 1);
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            ip,
        })
    }

    /// Waits until `size` bytes of request memory are free and takes them. A frame larger
    /// than the whole pool takes all of it.
    pub(crate) async fn reserve_request_memory(
        &self,
        size: usize,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let n = size.min(self.request_memory_max).min(u32::MAX as usize) as u32;
        // The semaphore is never closed, so this only fails if that changes.
        Arc::clone(&self.request_memory)
            .acquire_many_owned(n)
            .await
            .ok()
    }
}

/// `socket.loopback.congestion.control`, trimmed (empty: keep the system's).
fn loopback_congestion(broker: &Broker) -> String {
    broker
        .config
        .get("socket.loopback.congestion.control")
        .map(|(v, _)| v.trim().to_string())
        .unwrap_or_default()
}

/// Accepts connections until shutdown. `inherited`: the listener took the loopback congestion
/// control, so its connections need no call of their own.
async fn accept_loop(
    broker: Arc<Broker>,
    listener: TcpListener,
    inherited: bool,
    shutdown: watch::Receiver<bool>,
    limits: Arc<Limits>,
) {
    let mut conns = tokio::task::JoinSet::new();
    let loopback_congestion = if inherited {
        String::new()
    } else {
        loopback_congestion(&broker)
    };
    let stop = stopped(shutdown.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let slot = match limits.admit(peer.ip()) {
                        Ok(slot) => slot,
                        Err(limit) => {
                            tracing::warn!(%peer, limit, "refusing connection: limit reached");
                            drop(stream);
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    congestion::set_for_loopback(&stream, peer.ip(), &loopback_congestion);
                    let broker = Arc::clone(&broker);
                    let shutdown = shutdown.clone();
                    let limits = Arc::clone(&limits);
                    conns.spawn(async move {
                        connection::serve(broker, stream, peer, shutdown, limits).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    while conns.join_next().await.is_some() {}
}

async fn housekeeping(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let retention_every = broker.config.retention_check_interval_ms.max(1);
    let mut last_retention = crate::broker::now_ms();
    // Roll flushes in progress, one per partition at most (the log hands out one job at a time).
    let mut roll_flushes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = roll_flushes.join_next(), if !roll_flushes.is_empty() => {}
            _ = tick.tick() => {
                let now = crate::broker::now_ms();
                let due = now - last_retention >= retention_every;
                if due {
                    last_retention = now;
                }
                let b = Arc::clone(&broker);
                let rolled = tokio::task::spawn_blocking(move || b.housekeeping(due))
                    .await
                    .unwrap_or_default();
                for p in rolled {
                    let b = Arc::clone(&broker);
                    roll_flushes.spawn_blocking(move || {
                        if let Err(e) = p.flush_rolled() {
                            // A topic deleted meanwhile takes its directory with it.
                            let live = b
                                .partition(&p.topic, p.index)
                                .is_some_and(|q| Arc::ptr_eq(&q, &p));
                            if live {
                                tracing::error!(topic = %p.topic, partition = p.index, error = %e,
                                    "fsync of rolled segments failed; retrying at the next tick");
                            } else {
                                tracing::debug!(topic = %p.topic, partition = p.index, error = %e,
                                    "fsync of rolled segments of a deleted partition failed");
                            }
                        }
                    });
                }
            }
        }
    }
    // Let running fsyncs finish, so that the clean shutdown after this finds the partitions free.
    while roll_flushes.join_next().await.is_some() {}
}

/// Drives group session and rebalance timeouts.
async fn group_ticker(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let stop = stopped(shutdown);
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => broker.groups.tick(&broker, crate::broker::now_ms()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running server's housekeeping runs the roll flush: after a roll, the recovery
    /// point reaches the new active segment without anything else asking for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn housekeeping_fsyncs_rolled_segments_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open_for_test(dir.path(), &["log.segment.bytes=200"]);
        broker.create_test_topic("t", 1, Default::default()).await;
        let p = broker.partition("t", 0).unwrap();
        let opened_at = p.lock().log.recovery_point();
        let server = Server::bind(Arc::clone(&broker)).await.unwrap();
        let (stop, shutdown) = watch::channel(false);
        let serving = tokio::spawn(server.serve(shutdown));
        // Timestamped now, so that segment.ms (seven days) does not roll them again.
        let now = crate::broker::now_ms();
        let batch = fjord_log::testing::build_batch(0, &[(None, Some(&[b'v'; 100][..]), now)]);
        let headers = fjord_log::validate_batches(&batch).unwrap();
        for _ in 0..3 {
            p.lock().append(&batch, &headers[0], 0, now).unwrap();
        }
        let active_base = p.lock().log.log_end_offset() - 1;
        assert!(active_base > opened_at);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while p.lock().log.recovery_point() != active_base {
            assert!(
                std::time::Instant::now() < deadline,
                "the recovery point stayed at {}",
                p.lock().log.recovery_point()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        serving.await.unwrap();
    }
}
