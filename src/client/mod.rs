//! Clients of a Homeroom server, built on the same `webrtc` crate: the participant used by
//! the end-to-end tests and the load tool, and its synthetic media.

mod errors;
mod frames;
pub mod media;
pub mod netns;
pub mod participant;
mod publish;
pub mod receive;
mod sender;
mod seq_set;
mod signalling;
pub mod simulcast;
pub(crate) mod vp8;
pub mod whep;
pub mod whip;

pub use errors::{ConnectError, RequestError};
pub use frames::FrameCounts;
pub use media::{check_payload, make_payload, Throttle, VideoShape};
pub use participant::{Credential, Participant, RelayPick};
pub use publish::Video;
pub use receive::{Inbox, Received, Tally};
pub use seq_set::SeqSet;

use std::sync::Arc;

/// TLS that trusts exactly the given PEM certificates (e.g. the server's self-signed one).
pub fn tls_trusting(pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    crate::tls::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
