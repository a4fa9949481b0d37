//! A WHEP player: receives a room's media from any WHEP endpoint and checks every packet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{PeerConnection, PeerConnectionEventHandler, RTCSessionDescription};

use super::media::{new_pc, receive, Inbox, Received};

struct Receiving {
    inbox: Inbox,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Receiving {
    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        tokio::spawn(receive(remote, self.inbox.clone()));
    }
}

pub struct WhepViewer {
    pc: Arc<dyn PeerConnection>,
    client: reqwest::Client,
    /// The session resource from `Location`, absolute.
    pub resource: String,
    pub inbox: Inbox,
    /// When the offer was sent, to measure the time to first packet.
    pub started: Instant,
}

impl WhepViewer {
    /// Offers to receive one audio and one video track, authorized by a bearer token.
    pub async fn start(
        url: &str,
        bearer: &str,
        pem: &[u8],
        bind: &str,
    ) -> Result<WhepViewer, String> {
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?)
            .use_rustls_tls()
            .build()
            .map_err(|e| e.to_string())?;
        let inbox = Inbox::default();
        let pc = new_pc(
            Arc::new(Receiving {
                inbox: inbox.clone(),
            }),
            bind,
        )
        .await;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            };
            pc.add_transceiver_from_kind(kind, Some(init))
                .await
                .map_err(|e| e.to_string())?;
        }
        let offer = pc.create_offer(None).await.map_err(|e| e.to_string())?;
        pc.set_local_description(offer)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut local = pc.local_description().await.ok_or("no offer")?;
        while !local.sdp.contains("a=end-of-candidates") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            local = pc.local_description().await.ok_or("no offer")?;
        }
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
            .map_err(|e| e.to_string())?
            .to_string();
        pc.set_remote_description(RTCSessionDescription::answer(body).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| e.to_string())?;
        Ok(WhepViewer {
            pc,
            client,
            resource,
            inbox,
            started,
        })
    }

    pub fn received(&self) -> std::collections::HashMap<String, Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Ends playback with DELETE; returns the status.
    pub async fn stop(self) -> Result<u16, String> {
        let status = self
            .client
            .delete(&self.resource)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .status();
        let _ = self.pc.close().await;
        Ok(status.as_u16())
    }
}
