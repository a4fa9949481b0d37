//! The SFU's events as wire messages: the one place where what a room or a participant's
//! media tells the participant (`sfu::event::Event`) becomes a `ServerMessage`.

use super::error::SignalError;
use super::protocol::ServerMessage;
use crate::sfu::event::Event;

impl From<Event> for ServerMessage {
    fn from(event: Event) -> ServerMessage {
        match event {
            Event::ParticipantJoined(participant) => {
                ServerMessage::ParticipantJoined { participant }
            }
            Event::ParticipantUpdated(participant) => {
                ServerMessage::ParticipantUpdated { participant }
            }
            Event::ParticipantLeft {
                participant_id,
                reason,
            } => ServerMessage::ParticipantLeft {
                participant_id,
                reason: reason.to_owned(),
            },
            Event::ParticipantCount(count) => ServerMessage::ParticipantCount { count },
            Event::TrackPublished(track) => ServerMessage::TrackPublished { track },
            Event::TrackUnpublished {
                track_id,
                participant_id,
            } => ServerMessage::TrackUnpublished {
                track_id,
                participant_id,
            },
            Event::TrackMuted {
                track_id,
                participant_id,
                muted,
            } => ServerMessage::TrackMuted {
                track_id,
                participant_id,
                muted,
            },
            Event::Chat {
                participant_id,
                display_name,
                text,
                at,
            } => ServerMessage::Chat {
                participant_id,
                display_name,
                text,
                at,
            },
            Event::Admitted => ServerMessage::Admitted,
            Event::RecordingStarted { by } => ServerMessage::Recording {
                recording: true,
                by,
                reason: None,
            },
            Event::RecordingStopped { by, reason } => ServerMessage::Recording {
                recording: false,
                by,
                reason: Some(reason.to_owned()),
            },
            Event::Kicked { reason } => ServerMessage::Kicked {
                reason: reason.to_owned(),
            },
            Event::Ended { reason } => ServerMessage::Ended {
                reason: reason.to_owned(),
            },
            Event::Offer { sdp } => ServerMessage::Offer { sdp },
            Event::Candidate { target, candidate } => {
                ServerMessage::Candidate { target, candidate }
            }
            Event::Reception {
                quality,
                video,
                weak,
                estimate_kbps,
                layers,
            } => ServerMessage::Reception {
                quality,
                video,
                weak,
                estimate_kbps,
                layers,
            },
            Event::Done { request } => ServerMessage::Ok { id: request },
            Event::Failed { request, error } => SignalError::from(error).to_message(request),
        }
    }
}
