//! A WHIP (RFC 9725) publisher: synthetic media to any WHIP endpoint, as OBS would send it.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};

use super::media::{new_pc, Throttle};
use super::publish::{Counters, Tracks, Video};

/// WHIP gives the server no way to trickle, and this client sends its candidates in the offer.
struct NoTrickle;

impl PeerConnectionEventHandler for NoTrickle {}

pub struct WhipPublisher {
    pc: Arc<dyn PeerConnection>,
    client: reqwest::Client,
    key: String,
    /// The session resource from `Location`, absolute.
    pub resource: String,
    pub sent: Arc<[AtomicU64; 2]>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl WhipPublisher {
    /// Offers to `url` with the stream key and starts sending `video` (a shape, or
    /// `Video::Simulcast`) and audio once answered.
    pub async fn start(
        url: &str,
        key: &str,
        pem: &[u8],
        bind: &str,
        video: impl Into<Video>,
    ) -> Result<WhipPublisher, String> {
        let video = video.into();
        let client = https_client(pem)?;
        let pc = new_pc(Arc::new(NoTrickle), bind).await?;
        let tracks = Tracks::add_to(&pc, video).await?;
        let resource = exchange(&client, url, key, &pc).await?;
        let sent: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let counters = Counters {
            throttle: Throttle::default(),
            sent: sent.clone(),
            plis: Arc::default(),
        };
        let tasks = tracks.start(&pc, counters).await?;
        Ok(WhipPublisher {
            pc,
            client,
            key: key.to_owned(),
            resource,
            sent,
            tasks,
        })
    }

    /// Ends the session with DELETE on its resource; returns the status.
    pub async fn stop(self) -> Result<u16, String> {
        for task in &self.tasks {
            task.abort();
        }
        let status = self
            .client
            .delete(&self.resource)
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status();
        let _ = self.pc.close().await;
        Ok(status.as_u16())
    }
}

/// Sends a WHIP or WHEP offer (with all candidates) and applies the answer; returns the
/// session resource URL from `Location`.
pub(crate) async fn exchange(
    client: &reqwest::Client,
    url: &str,
    bearer: &str,
    pc: &Arc<dyn PeerConnection>,
) -> Result<String, String> {
    let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
    pc.set_local_description(offer)
        .await
        .map_err(|e| e.to_string())?;
    let local = crate::sfu::media::gathered_description(pc)
        .await
        .ok_or("no offer")?;
    let response = client
        .post(url)
        .bearer_auth(bearer)
        .header("content-type", "application/sdp")
        .body(local.sdp)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("{status}: {body}"));
    }
    let location = location.ok_or("no Location in the answer")?;
    let resource = url::Url::parse(url)
        .and_then(|u| u.join(&location))
        .map_err(|e| e.to_string())?;
    let answer = RTCSessionDescription::answer(body).map_err(|e| e.to_string())?;
    pc.set_remote_description(answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(resource.to_string())
}

/// An HTTPS client that trusts the given PEM certificates.
pub(crate) fn https_client(pem: &[u8]) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?)
        .use_rustls_tls()
        .build()
        .map_err(|e| e.to_string())
}
