//! Writing one participant's socket. A task of its own takes the participant's queue (the
//! outbox) and writes it, so a client that stops reading stalls only this task: the reading
//! side goes on, sees the queue full and disconnects it (`too_slow`). The queue holds the
//! connection's own answers and the SFU's events in one order; events become wire messages
//! (`events.rs`) as they are written.
//!
//! The last message a socket carries is `kicked` or `ended`, if any; then the close frame, with
//! a code that says why (docs/signalling.md, "Closing"):
//!
//! | code | when |
//! | --- | --- |
//! | 1000 | the client left (`leave`) |
//! | 1009 | a message too big to read |
//! | 4000 | the session ended (`ended`) |
//! | 4001 | the participant was removed (`kicked`) |
//! | 4002 | the socket was silent longer than `limits.idle_timeout_secs` |
//!
//! A client that does not take its messages gets no close frame: its connection is dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::protocol::ServerMessage;
use crate::sfu::event::Event;

/// One item of a socket's queue.
pub enum Outgoing {
    /// What the room or the participant's media said.
    Event(Event),
    /// The connection's own answer to a request.
    Message(ServerMessage),
}

impl From<Event> for Outgoing {
    fn from(event: Event) -> Outgoing {
        Outgoing::Event(event)
    }
}

impl From<ServerMessage> for Outgoing {
    fn from(message: ServerMessage) -> Outgoing {
        Outgoing::Message(message)
    }
}

impl Outgoing {
    fn into_message(self) -> ServerMessage {
        match self {
            Outgoing::Event(event) => event.into(),
            Outgoing::Message(message) => message,
        }
    }
}

/// How a socket closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    pub code: u16,
    pub reason: String,
}

impl Close {
    pub fn new(code: u16, reason: &str) -> Close {
        Close {
            code,
            reason: reason.to_owned(),
        }
    }

    pub fn left() -> Close {
        Close::new(1000, "left")
    }

    /// The close that follows a last message (`kicked`, `ended`), if it is one.
    fn after(message: &ServerMessage) -> Option<Close> {
        match message {
            ServerMessage::Ended { reason } => Some(Close::new(4000, reason)),
            ServerMessage::Kicked { reason } => Some(Close::new(4001, reason)),
            _ => None,
        }
    }
}

pub struct Writer {
    task: JoinHandle<()>,
    close: Option<oneshot::Sender<Close>>,
    finished: bool,
    /// Messages written so far: whether the socket still takes them.
    written: Arc<AtomicU64>,
}

impl Writer {
    pub fn start(sink: SplitSink<WebSocket, Message>, outbox: mpsc::Receiver<Outgoing>) -> Writer {
        let (close, close_rx) = oneshot::channel();
        let written = Arc::new(AtomicU64::new(0));
        Writer {
            task: tokio::spawn(write(sink, outbox, close_rx, written.clone())),
            close: Some(close),
            finished: false,
            written,
        }
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Writes what is queued, then closes with `close` (unless a last message comes first).
    pub fn close(&mut self, close: Close) {
        if let Some(tx) = self.close.take() {
            let _ = tx.send(close);
        }
    }

    /// Completes when the writer has closed the socket: after `kicked` or `ended`, or when
    /// writing failed.
    pub async fn finished(&mut self) {
        if !self.finished {
            let _ = (&mut self.task).await;
            self.finished = true;
        }
    }

    /// Waits up to `within` for the close to be written; a client that does not read gets
    /// no more time than that.
    pub async fn finish(mut self, within: Duration) {
        if tokio::time::timeout(within, self.finished()).await.is_err() {
            self.task.abort();
        }
    }

    /// Stops writing at once (the client is not reading).
    pub fn abort(self) {
        self.task.abort();
    }
}

async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbox: mpsc::Receiver<Outgoing>,
    mut close: oneshot::Receiver<Close>,
    written: Arc<AtomicU64>,
) {
    let last = loop {
        tokio::select! {
            biased;
            asked = &mut close => {
                let mut last = asked.unwrap_or_else(|_| Close::left());
                // What is queued goes first (e.g. the `ok` to `leave`), up to a last message.
                while let Ok(queued) = outbox.try_recv() {
                    let message = queued.into_message();
                    if send(&mut sink, &message).await.is_err() {
                        return;
                    }
                    if let Some(close) = Close::after(&message) {
                        last = close;
                        break;
                    }
                }
                break last;
            }
            message = outbox.recv() => {
                let Some(mut message) = message.map(Outgoing::into_message) else {
                    break Close::left();
                };
                // What is queued goes out in one flush.
                let last = loop {
                    if sink.feed(text(&message)).await.is_err() {
                        return;
                    }
                    written.fetch_add(1, Ordering::Relaxed);
                    if let Some(close) = Close::after(&message) {
                        break Some(close);
                    }
                    match outbox.try_recv() {
                        Ok(next) => message = next.into_message(),
                        Err(_) => break None,
                    }
                };
                if sink.flush().await.is_err() {
                    return;
                }
                if let Some(close) = last {
                    break close;
                }
            }
        }
    };
    let frame = CloseFrame {
        code: last.code,
        reason: last.reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
}

async fn send(
    sink: &mut SplitSink<WebSocket, Message>,
    message: &ServerMessage,
) -> Result<(), axum::Error> {
    sink.send(text(message)).await
}

fn text(message: &ServerMessage) -> Message {
    let json = serde_json::to_string(message).expect("server messages serialize");
    Message::Text(json.into())
}
