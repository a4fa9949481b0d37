//! Before the first subscriber: pinning, the server's certificate, signing in, and the
//! publisher (the teacher over Homeroom's signalling, or any WHIP endpoint).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};

use super::accounts::sign_in;
use super::joins::{Audience, Joining};
use super::pinning::pin;
use super::usage::Process;
use super::weak_link::WeakLink;
use super::LoadTest;
use crate::client::whip::WhipPublisher;
use crate::client::{Credential, Participant, Throttle, Video, VideoShape};
use crate::signal::protocol::ServerMessage;

/// The publisher's join and offer wait this long for the server.
const PUBLISHER_TIMEOUT: Duration = Duration::from_secs(30);

/// A run ready for its subscribers.
pub(super) struct Setup {
    pub(super) joining: Arc<Joining>,
    pub(super) publisher: Publisher,
    /// Holds the publisher to a trickle until the steady phase (`--idle-secs`).
    pub(super) throttle: Throttle,
}

/// The publisher, over Homeroom's signalling or WHIP.
pub(super) enum Publisher {
    Signalling(Participant),
    Whip(WhipPublisher),
}

impl Publisher {
    /// Packets sent so far, per kind.
    pub(super) fn sent(&self) -> Arc<[AtomicU64; 2]> {
        match self {
            Publisher::Signalling(p) => p.sent.clone(),
            Publisher::Whip(w) => w.sent.clone(),
        }
    }

    pub(super) async fn close(self, within: Duration) {
        match self {
            Publisher::Signalling(p) => p.quit(within).await,
            Publisher::Whip(w) => {
                let _ = tokio::time::timeout(within, w.stop()).await;
            }
        }
    }
}

pub(super) async fn setup(args: &LoadTest) -> anyhow::Result<Setup> {
    if let Some(cpus) = &args.tool_cpu {
        pin(&Process::me(), cpus)
            .map_err(anyhow::Error::msg)
            .context("--tool-cpu")?;
    }
    if let Some(cpus) = &args.server_cpu {
        let pid = args.server_pid.context("--server-cpu needs --server-pid")?;
        pin(&Process::of(pid), cpus)
            .map_err(anyhow::Error::msg)
            .context("--server-cpu")?;
    }
    let pem =
        std::fs::read(&args.ca).with_context(|| format!("cannot read {}", args.ca.display()))?;
    let tls = crate::client::tls_trusting(&pem).map_err(anyhow::Error::msg)?;
    let homeroom = match (&args.server, args.room, &args.login, &args.password) {
        (Some(server), Some(room), Some(login), Some(password)) => Some((
            server.trim_end_matches('/').to_owned(),
            room,
            login,
            password,
        )),
        _ => None,
    };
    if homeroom.is_none() && (args.whip.is_none() || args.whep.is_none()) {
        bail!("give --server, --room, --login and a password, or both --whip and --whep");
    }
    let audience = match (&args.whep, &args.viewer_login, &args.guest_link, &homeroom) {
        (Some(url), ..) => Audience::Whep {
            url: url.clone(),
            token: args.whep_token.clone().unwrap_or_default(),
        },
        (None, Some(viewer), None, Some((server, _, _, password))) => {
            let password = args.viewer_password.as_deref().unwrap_or(password);
            Audience::Family {
                cookie: sign_in(server, viewer, password, &pem).await?,
            }
        }
        (None, None, Some(code), Some(_)) => Audience::Guests { code: code.clone() },
        _ => bail!(
            "subscribers join as a family (--viewer-login) or as open-house guests \
             (--guest-link), never as the teacher: give one of them"
        ),
    };
    let video = match args.simulcast {
        true => Video::Simulcast,
        false => Video::Single(VideoShape {
            fps: args.fps,
            bitrate_bps: args.bitrate * 1000,
        }),
    };
    let weak_link = match (&args.throttle, &audience) {
        (None, _) => None,
        (Some(_), Audience::Whep { .. }) => {
            bail!("--throttle needs subscribers over Homeroom's signalling, not --whep")
        }
        (Some(throttling), _) => Some(Arc::new(WeakLink::open(throttling)?)),
    };
    let throttle = match args.idle_secs {
        0 => Throttle::default(),
        _ => Throttle::trickle(),
    };
    let publisher = match (&args.whip, &homeroom) {
        (Some(url), _) => {
            if args.idle_secs > 0 {
                bail!("--idle-secs needs the teacher publishing over Homeroom's signalling");
            }
            let key = args
                .whip_key
                .as_deref()
                .context("--whip needs a key (LOADTEST_WHIP_KEY)")?;
            let publisher = WhipPublisher::start(url, key, &pem, &args.bind, video)
                .await
                .map_err(anyhow::Error::msg)?;
            // A WHIP publisher's tracks exist once its media arrives, and WHEP viewers take the
            // tracks there are when they come: let the media start first.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Publisher::Whip(publisher)
        }
        (None, Some((server, room, login, password))) => {
            let cookie = sign_in(server, login, password, &pem).await?;
            // On a task of its own, so that a panic in the client is an error here.
            let (server, room, bind) = (server.clone(), *room, args.bind.clone());
            let (tls, throttle) = (tls.clone(), throttle.clone());
            let teacher = tokio::spawn(async move {
                teacher(&server, room, &cookie, tls, &bind, video, throttle).await
            });
            Publisher::Signalling(teacher.await.context("publishing failed")??)
        }
        (None, None) => bail!("--whip, or --server and the teacher's login, to publish"),
    };
    let (server, room) = match homeroom {
        Some((server, room, ..)) => (server, room),
        None => (String::new(), 0),
    };
    Ok(Setup {
        joining: Arc::new(Joining {
            server,
            room,
            audience,
            tls,
            pem,
            bind: args.bind.clone(),
            timeout: Duration::from_secs_f64(args.join_timeout),
            weak_link,
        }),
        publisher,
        throttle,
    })
}

/// The teacher joins and publishes; the session starts with it.
async fn teacher(
    server: &str,
    room: i64,
    cookie: &str,
    tls: Arc<rustls::ClientConfig>,
    bind: &str,
    video: Video,
    throttle: Throttle,
) -> anyhow::Result<Participant> {
    let mut teacher = Participant::open(server, tls, Credential::Cookie(cookie), bind).await?;
    match teacher.try_join(room, PUBLISHER_TIMEOUT).await? {
        ServerMessage::Joined { .. } => {}
        other => bail!("the teacher's join was refused: {other:?}"),
    }
    let publish = teacher.publish_throttled(video, throttle);
    match tokio::time::timeout(PUBLISHER_TIMEOUT, publish).await {
        Ok(ServerMessage::Answer { .. }) => Ok(teacher),
        Ok(other) => bail!("the server refused to publish: {other:?}"),
        Err(_) => bail!("no answer to the teacher's offer within {PUBLISHER_TIMEOUT:?}"),
    }
}
