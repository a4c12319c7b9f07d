//! Shutdown plumbing shared by every server and controller: one signal,
//! observed as a `watch` channel that turns `true` once.

use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};

use crate::error::{Error, Result};

/// Resolves once `true` is sent (or the sender is gone).
pub async fn fired(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// One shutdown signal (SIGTERM or SIGINT) for every server and controller.
pub fn on_signal() -> Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    Ok(rx)
}
