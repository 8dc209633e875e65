//! Listeners and connections.
//!
//! [`Server::bind`] binds every configured listener (port 0 picks a free port) and records the
//! advertised addresses; [`Server::serve`] accepts connections until shutdown, running one task
//! per connection (see [`connection`]). Background housekeeping (flush.ms, time-based rolls,
//! retention) runs beside the accept loops.

pub mod connection;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;

/// Bound listeners, ready to serve.
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
}

impl Server {
    /// Binds every listener of the broker's config.
    pub async fn bind(broker: Arc<Broker>) -> std::io::Result<Server> {
        let mut listeners = Vec::new();
        let mut addrs = Vec::new();
        for l in &broker.config.listeners {
            let listener = TcpListener::bind(l.bind_addr()?).await?;
            addrs.push(listener.local_addr()?);
            listeners.push(listener);
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
        for listener in self.listeners {
            let broker = Arc::clone(&self.broker);
            let shutdown = shutdown.clone();
            tasks.spawn(accept_loop(broker, listener, shutdown));
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

async fn accept_loop(broker: Arc<Broker>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
    let mut conns = tokio::task::JoinSet::new();
    let stop = stopped(shutdown.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let broker = Arc::clone(&broker);
                    let shutdown = shutdown.clone();
                    conns.spawn(connection::serve(broker, stream, peer, shutdown));
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
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let now = crate::broker::now_ms();
                let due = now - last_retention >= retention_every;
                if due {
                    last_retention = now;
                }
                let b = Arc::clone(&broker);
                let _ = tokio::task::spawn_blocking(move || b.housekeeping(due)).await;
            }
        }
    }
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
