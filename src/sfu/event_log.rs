//! Session events are written by one task per node, in the order rooms emit them, so that a
//! slow database never makes a room (let alone a media packet) wait. An event someone is told
//! was accepted (a chat message answered `ok`) is sent with `send_durable`: its sender awaits
//! the write, the room does not.

use tokio::sync::mpsc;

use crate::store::live_sessions::SessionEvent;
use crate::store::Store;

/// Resolves once the event is committed to the store: `true`, or `false` if it was lost.
pub type Written = tokio::sync::oneshot::Receiver<bool>;

/// What rooms send to the writer.
pub enum LogEntry {
    Event(SessionEvent),
    /// An event whose writing someone awaits.
    Durable(SessionEvent, tokio::sync::oneshot::Sender<bool>),
    /// Closes the session row after its events.
    End {
        session_id: i64,
        reason: String,
        peak: i64,
    },
    /// Answers once everything sent before it is written (shutdown, tests).
    Flush(tokio::sync::oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::UnboundedSender<LogEntry>,
}

impl EventLog {
    /// Starts the writer task.
    pub fn start(store: Store) -> EventLog {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(store, rx));
        EventLog { tx }
    }

    pub fn send(&self, entry: LogEntry) {
        // The writer only stops at shutdown; late events then have nowhere to go.
        let _ = self.tx.send(entry);
    }

    /// Sends an event; the answer says when it is in the store.
    pub fn send_durable(&self, event: SessionEvent) -> Written {
        let (done, written) = tokio::sync::oneshot::channel();
        self.send(LogEntry::Durable(event, done));
        written
    }

    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.send(LogEntry::Flush(done));
        let _ = wait.await;
    }
}

async fn write_loop(store: Store, mut rx: mpsc::UnboundedReceiver<LogEntry>) {
    let mut batch = Vec::new();
    let mut waiting = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Take everything queued so far: one transaction per burst, order kept.
        while let Some(entry) = next {
            match entry {
                LogEntry::Event(event) => batch.push(event),
                LogEntry::Durable(event, done) => {
                    batch.push(event);
                    waiting.push(done);
                }
                other => {
                    write_batch(&store, &mut batch, &mut waiting).await;
                    match other {
                        LogEntry::End {
                            session_id,
                            reason,
                            peak,
                        } => {
                            if let Err(e) = store.end_live_session(session_id, &reason, peak).await
                            {
                                tracing::error!(error = %e, session_id, "cannot close live session");
                            }
                        }
                        LogEntry::Flush(done) => {
                            let _ = done.send(());
                        }
                        LogEntry::Event(_) | LogEntry::Durable(..) => unreachable!(),
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        write_batch(&store, &mut batch, &mut waiting).await;
    }
}

/// Writes the batch, then tells those waiting for its events whether they were written.
async fn write_batch(
    store: &Store,
    batch: &mut Vec<SessionEvent>,
    waiting: &mut Vec<tokio::sync::oneshot::Sender<bool>>,
) {
    if batch.is_empty() {
        return;
    }
    let mut written = false;
    // A failed write is retried a few times; the events stay in order either way.
    for attempt in 1..=3 {
        match store.append_session_events(batch).await {
            Ok(()) => {
                written = true;
                break;
            }
            Err(e) if attempt < 3 => {
                tracing::warn!(error = %e, attempt, "session events not written yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => tracing::error!(error = %e, count = batch.len(), "session events lost"),
        }
    }
    batch.clear();
    for done in waiting.drain(..) {
        let _ = done.send(written);
    }
}
