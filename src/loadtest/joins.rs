//! How one subscriber joins, within its own deadline, and how a failed join is named.
//!
//! A join is the socket (TLS, upgrade) plus `join` → `joined`, or a WHEP exchange. It fails
//! with a reason that the summary counts: the server's error code (`node_full`, `room_full`,
//! `guests_full`…), `http_<status>` for a refused upgrade, guest token or WHEP offer (429,
//! 503…), `timeout` past `--join-timeout`, `closed` when the socket ended before the reply,
//! `connect` when there was no answer at all. A failed join never ends the run.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::accounts::guest_token;
use super::weak_link::WeakLink;
use crate::client::receive::seen_between;
use crate::client::whep::WhepViewer;
use crate::client::{ConnectError, Credential, Participant, RequestError, Tally};
use crate::signal::protocol::{Layer, ServerMessage};

/// A subscriber, over Homeroom's signalling or WHEP.
pub(super) enum Client {
    Signalling(Participant),
    Whep(WhepViewer),
}

impl Client {
    pub(super) fn tallies(&self) -> Vec<Tally> {
        match self {
            Client::Signalling(p) => p.tallies(),
            Client::Whep(w) => w.tallies(),
        }
    }

    /// Reads the room's events that came since the last call (the tool has no use for most,
    /// and unread they would pile up for the whole run): why the server let this subscriber
    /// go, if it did, and what it last said the subscriber receives.
    pub(super) fn drain_events(&mut self) -> News {
        let mut news = News::default();
        let Client::Signalling(p) = self else {
            return news;
        };
        while let Ok(event) = p.events.try_recv() {
            match event {
                ServerMessage::Kicked { reason } => news.gone = Some(format!("kicked_{reason}")),
                ServerMessage::Ended { reason } => news.gone = Some(format!("ended_{reason}")),
                ServerMessage::Reception { video, .. } => news.video = Some(video),
                _ => {}
            }
        }
        news
    }

    /// Distinct intact packets with sequence numbers in `video` or `audio`, by track kind.
    pub(super) fn seen_between(&self, video: Range<u32>, audio: Range<u32>) -> u64 {
        match self {
            Client::Signalling(p) => seen_between(&p.inbox, video, audio),
            Client::Whep(w) => seen_between(&w.inbox, video, audio),
        }
    }

    /// Leaves, waiting at most `within` for the server.
    pub(super) async fn close(self, within: Duration) {
        match self {
            Client::Signalling(p) => p.quit(within).await,
            Client::Whep(w) => {
                let _ = tokio::time::timeout(within, w.stop()).await;
            }
        }
    }
}

/// What a subscriber's events since the last look said.
#[derive(Debug, Default)]
pub(super) struct News {
    /// Why the server let it go (`kicked_<reason>`, `ended_<reason>`).
    pub(super) gone: Option<String>,
    /// The best layer it receives, or `off`, as the latest `reception` said.
    pub(super) video: Option<Layer>,
}

/// How the subscribers come in.
pub(super) enum Audience {
    /// As one family account's session.
    Family { cookie: String },
    /// As open-house guests of one link.
    Guests { code: String },
    /// From any WHEP endpoint with a bearer token.
    Whep { url: String, token: String },
}

/// What every join needs.
pub(super) struct Joining {
    pub(super) server: String,
    pub(super) room: i64,
    pub(super) audience: Audience,
    pub(super) tls: Arc<rustls::ClientConfig>,
    pub(super) pem: Vec<u8>,
    pub(super) bind: String,
    pub(super) timeout: Duration,
    /// The first subscribers' weak link (`--throttle`).
    pub(super) weak_link: Option<Arc<WeakLink>>,
}

/// A failed join: the reason it is counted under, and what happened.
#[derive(Debug)]
pub(super) struct Refusal {
    pub(super) reason: String,
    pub(super) detail: String,
}

impl Refusal {
    pub(super) fn new(reason: impl Into<String>, detail: impl std::fmt::Display) -> Refusal {
        Refusal {
            reason: reason.into(),
            detail: detail.to_string(),
        }
    }

    fn timeout(within: Duration) -> Refusal {
        Refusal::new("timeout", format_args!("no answer within {within:?}"))
    }
}

impl Joining {
    /// Joins subscriber number `index` within the join timeout.
    pub(super) async fn join(&self, index: usize) -> Result<Client, Refusal> {
        let deadline = Instant::now() + self.timeout;
        let client = self.join_by(index, deadline).await?;
        // A timer only fires once its future has been polled: a reply that was ready at that
        // moment can still come in after the deadline, and is then late all the same.
        if Instant::now() > deadline {
            client.close(Duration::ZERO).await;
            return Err(Refusal::timeout(self.timeout));
        }
        Ok(client)
    }

    async fn join_by(&self, index: usize, deadline: Instant) -> Result<Client, Refusal> {
        match &self.audience {
            Audience::Whep { url, token } => {
                let start = WhepViewer::start(url, token, &self.pem, &self.bind);
                match tokio::time::timeout(self.timeout, start).await {
                    Err(_) => Err(Refusal::timeout(self.timeout)),
                    Ok(Err(e)) => Err(Refusal::new(whep_reason(&e), e)),
                    Ok(Ok(viewer)) => Ok(Client::Whep(viewer)),
                }
            }
            Audience::Family { cookie } => self
                .join_signalling(index, Owned::Cookie(cookie.clone()), deadline)
                .await
                .map(Client::Signalling),
            Audience::Guests { code } => {
                let token = guest_token(&self.server, code, index, &self.pem);
                let token = match tokio::time::timeout_at(deadline.into(), token).await {
                    Err(_) => return Err(Refusal::timeout(self.timeout)),
                    Ok(token) => token?,
                };
                self.join_signalling(index, Owned::Token(token), deadline)
                    .await
                    .map(Client::Signalling)
            }
        }
    }

    async fn join_signalling(
        &self,
        index: usize,
        credential: Owned,
        deadline: Instant,
    ) -> Result<Participant, Refusal> {
        let open = self.open(index, credential);
        let mut participant = match tokio::time::timeout_at(deadline.into(), open).await {
            Err(_) => return Err(Refusal::timeout(self.timeout)),
            Ok(Err(e @ ConnectError::Refused { status })) => {
                return Err(Refusal::new(format!("http_{status}"), e))
            }
            Ok(Err(e @ ConnectError::Failed(_))) => return Err(Refusal::new("connect", e)),
            Ok(Ok(participant)) => participant,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let refusal = match participant.try_join(self.room, left).await {
            Ok(ServerMessage::Joined { .. }) => return Ok(participant),
            Ok(ServerMessage::Error { code, message, .. }) => Refusal::new(code, message),
            Ok(other) => Refusal::new("unexpected_reply", format_args!("{other:?}")),
            Err(RequestError::Timeout) => Refusal::timeout(self.timeout),
            Err(e @ RequestError::Closed) => Refusal::new("closed", e),
        };
        participant.vanish().await;
        Err(refusal)
    }

    /// Opens subscriber number `index`'s socket: on the host, or, on the weak link, inside
    /// its namespace, where every socket of the participant then lives.
    async fn open(&self, index: usize, credential: Owned) -> Result<Participant, ConnectError> {
        let (server, tls) = (self.server.clone(), self.tls.clone());
        let Some(link) = self.weak_link.as_ref().filter(|l| l.holds(index)) else {
            return Participant::open(&server, tls, credential.as_ref(), &self.bind).await;
        };
        let port = url::Url::parse(&server)
            .ok()
            .and_then(|u| u.port_or_known_default())
            .ok_or_else(|| ConnectError::Failed(format!("no port in {server}")))?;
        let (bind, via) = (link.bind(), link.via(port));
        let opened = link.runtime().spawn(async move {
            Participant::open_via(&server, tls, credential.as_ref(), &bind, via).await
        });
        opened
            .await
            .unwrap_or_else(|e| Err(ConnectError::Failed(e.to_string())))
    }
}

/// A credential that can go to another runtime with the join.
enum Owned {
    Cookie(String),
    Token(String),
}

impl Owned {
    fn as_ref(&self) -> Credential<'_> {
        match self {
            Owned::Cookie(cookie) => Credential::Cookie(cookie),
            Owned::Token(token) => Credential::Token(token),
        }
    }
}

/// A WHEP client's error starts with the HTTP status when the server answered one.
fn whep_reason(error: &str) -> String {
    match error.split_whitespace().next().map(str::parse::<u16>) {
        Some(Ok(status)) => format!("http_{status}"),
        _ => "connect".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whep_refusals_are_named_by_status() {
        assert_eq!(
            whep_reason("503 Service Unavailable: node full"),
            "http_503"
        );
        assert_eq!(whep_reason("error sending request"), "connect");
    }
}
