//! A WHEP player: receives a room's media from any WHEP endpoint and checks every packet.

use std::sync::Arc;

use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::peer_connection::PeerConnection;

use super::media::new_pc;
use super::receive::{tallies, Inbox, Received, Receiving, Tally};
use super::whip::{exchange, https_client};

pub struct WhepViewer {
    pc: Arc<dyn PeerConnection>,
    client: reqwest::Client,
    /// The session resource from `Location`, absolute.
    pub resource: String,
    pub inbox: Inbox,
}

impl WhepViewer {
    /// Offers to receive one audio and one video track, authorized by a bearer token.
    pub async fn start(
        url: &str,
        bearer: &str,
        pem: &[u8],
        bind: &str,
    ) -> Result<WhepViewer, String> {
        let client = https_client(pem)?;
        let inbox = Inbox::default();
        let pc = new_pc(
            Arc::new(Receiving {
                inbox: inbox.clone(),
            }),
            bind,
        )
        .await?;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            let init = RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            };
            pc.add_transceiver_from_kind(kind, Some(init))
                .await
                .map_err(|e| e.to_string())?;
        }
        let resource = exchange(&client, url, bearer, &pc).await?;
        Ok(WhepViewer {
            pc,
            client,
            resource,
            inbox,
        })
    }

    pub fn received(&self) -> std::collections::HashMap<String, Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// The counts of every received track, without copying what was seen.
    pub fn tallies(&self) -> Vec<Tally> {
        tallies(&self.inbox)
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
