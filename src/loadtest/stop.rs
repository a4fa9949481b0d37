//! Ctrl-C and SIGTERM end a run early, the same way its duration does: through the summary.
//! Once installed, the handlers stay for the life of the process, so a second signal does not
//! kill the tool halfway through printing; closing the connections after the summary is bounded
//! in time instead.

use tokio::sync::watch;

/// Whether a signal asked the run to stop.
pub(super) struct Stop {
    signalled: watch::Receiver<bool>,
}

impl Stop {
    /// Listens for SIGINT and SIGTERM from now on.
    pub(super) fn install() -> Stop {
        let (tx, signalled) = watch::channel(false);
        let terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::spawn(async move {
            let term = async {
                match terminate {
                    Some(mut terminate) => {
                        terminate.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term => {}
            }
            let _ = tx.send(true);
        });
        Stop { signalled }
    }

    /// Waits for a signal; returns how the run ended (`signal`). Cancel-safe.
    pub(super) async fn wait(&mut self) -> &'static str {
        match self.signalled.wait_for(|signalled| *signalled).await {
            Ok(_) => "signal",
            // The listener is gone (it cannot be): never stop.
            Err(_) => std::future::pending().await,
        }
    }
}
