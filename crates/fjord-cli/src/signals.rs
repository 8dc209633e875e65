//! Ctrl-C / SIGTERM for the console tools: a flag the main loop polls, so the tools flush,
//! print their summary and exit cleanly instead of dying mid-write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;

/// A flag that becomes true on SIGINT or SIGTERM.
#[derive(Clone)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Whether a stop signal arrived.
    pub fn stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Installs the handlers (before returning, so no early signal is lost) and returns the flag.
pub fn install() -> anyhow::Result<StopFlag> {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = StopFlag(Arc::new(AtomicBool::new(false)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    let (mut int, mut term) = {
        let _guard = rt.enter();
        (
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        )
    };
    let f = flag.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            f.0.store(true, Ordering::Relaxed);
        })
        .context("starting the signal thread")?;
    Ok(flag)
}
