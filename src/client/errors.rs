//! How a client's socket or request can fail, for callers that must carry on: the load tool
//! counts these by reason; tests unwrap them.

/// Opening the signalling socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server answered the WebSocket upgrade with an HTTP error (401, 429, 503…).
    #[error("the server refused the socket: HTTP {status}")]
    Refused { status: u16 },
    /// No answer at all: the connection, TLS or the handshake failed.
    #[error("signalling socket: {0}")]
    Failed(String),
}

/// A request got no reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("no reply in time")]
    Timeout,
    #[error("the socket closed before answering")]
    Closed,
}
