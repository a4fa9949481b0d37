//! Recording a live session from the room: the host starts and stops it (or the room records
//! every session), every track published meanwhile is added, and everyone admitted is told.
//! The recorder itself is `crate::recording`.

use super::{Command, Room};
use crate::recording::Start;
use crate::sfu::error::RoomError;
use crate::sfu::event::Event;

impl Room {
    /// Starts or stops recording; everyone admitted is told, and the log says who did it.
    pub(super) fn record(&mut self, participant_id: u64, on: bool) -> Result<(), RoomError> {
        let peer = &self.peers[&participant_id];
        let name = peer.display_name.clone();
        if !on {
            if let Some(recording) = self.recording.take() {
                recording.stop(Some(name.clone()), "stopped");
                self.recording_stopped(Some(participant_id), "stopped");
            }
            return Ok(());
        }
        if self.recording.is_some() {
            return Ok(());
        }
        let start = Start {
            session_id: self.spec.session_id,
            user_id: peer.user_id,
            name: name.clone(),
        };
        let commands = self.me.clone();
        let on_failure = Box::new(move |reason| {
            if let Some(tx) = commands.upgrade() {
                let _ = tx.try_send(Command::RecordingFailed(reason));
            }
        });
        let recording = self.spec.recorder.start(start, on_failure).map_err(|e| {
            tracing::warn!(error = %e, "recording refused");
            RoomError::RecordingRefused(e.to_string())
        })?;
        for track in self.tracks.values() {
            let publisher = self.peers.get(&track.participant_id());
            recording.add_track(track, publisher.map_or("", |p| p.display_name.as_str()));
        }
        self.recording = Some(recording);
        self.log(
            Some(participant_id),
            "recording_started",
            serde_json::json!({}),
        );
        self.broadcast(Event::RecordingStarted { by: name }, None);
        Ok(())
    }

    /// Tells the room the recording stopped (by the host, or on its own).
    pub(super) fn recording_stopped(&mut self, participant_id: Option<u64>, reason: &'static str) {
        self.recording = None;
        let by = participant_id
            .and_then(|id| self.peers.get(&id))
            .map(|p| p.display_name.clone())
            .unwrap_or_default();
        self.log(
            participant_id,
            "recording_stopped",
            serde_json::json!({"reason": reason}),
        );
        self.broadcast(Event::RecordingStopped { by, reason }, None);
    }
}
