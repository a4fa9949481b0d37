//! The recording's tasks: one per recorded track (its packets in order, assembled into frames,
//! sent to its file) and one per file (frames into the journal, flushed as it goes, on a
//! blocking thread since it writes to disk).

use std::sync::Weak;
use std::time::{Duration, Instant};

use rtc::rtp;
use tokio::sync::{mpsc, watch};

use super::journal::{JournalWriter, Record, Track, TrackKind};
use super::recorder::{vp8_size, Assembler, JitterBuffer};
use super::{free_bytes, stop_for, Shared, Stop, FLUSH_EVERY, SYNC_EVERY};
use crate::sfu::track::Published;

/// One recorded track: packets in order, frames assembled, written to the file's journal.
pub(super) async fn record_track(
    mut packets: mpsc::Receiver<rtp::Packet>,
    track: Weak<Published>,
    (kind, number, clock_rate, t0): (TrackKind, u8, u32, Instant),
    file: mpsc::Sender<Record>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut jitter = JitterBuffer::default();
    let mut assembler: Option<Assembler> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let (mut ended, mut announced) = (false, false);
    while !ended {
        tokio::select! {
            packet = packets.recv() => match packet {
                Some(packet) => jitter.push(packet, Instant::now()),
                None => ended = true,
            },
            _ = tick.tick() => {}
            _ = stopping.changed() => ended = true,
        }
        let ready: Vec<_> = match ended {
            true => jitter.drain(),
            false => std::iter::from_fn(|| jitter.pop(Instant::now())).collect(),
        };
        for (packet, gap) in ready {
            let assembler = assembler.get_or_insert_with(|| {
                let base_ns = t0.elapsed().as_nanos() as u64;
                Assembler::new(kind, number, clock_rate, base_ns)
            });
            let out = assembler.push(&packet, gap);
            if out.keyframe_needed {
                if let Some(track) = track.upgrade() {
                    track.request_keyframe();
                }
            }
            let Some(frame) = out.frame else { continue };
            if !announced {
                // The track is named before its first frame (for video, a keyframe, which
                // carries the picture's size).
                let (width, height) = vp8_size(&frame.data).unwrap_or((640, 480));
                let header = Track {
                    number,
                    kind,
                    width,
                    height,
                };
                if file.send(Record::Track(header)).await.is_err() {
                    return;
                }
                announced = true;
            }
            if file.send(Record::Frame(frame)).await.is_err() {
                return;
            }
        }
    }
}

/// Writes one file's journal until its inputs close: handed to the operating system every
/// quarter second (what a killed process loses), put on disk every second; stops the whole
/// recording when the disk fills or falls under its floor.
pub(super) fn write_file(
    mut journal: JournalWriter,
    mut records: mpsc::Receiver<Record>,
    shared: Weak<Shared>,
) {
    let (mut flushed, mut synced) = (Instant::now(), Instant::now());
    while let Some(record) = records.blocking_recv() {
        let mut result = journal.write(&record);
        if result.is_ok() && flushed.elapsed() >= FLUSH_EVERY {
            flushed = Instant::now();
            result = journal.flush();
        }
        let mut low = false;
        if result.is_ok() && synced.elapsed() >= SYNC_EVERY {
            synced = Instant::now();
            result = journal.sync();
            low = shared.upgrade().is_some_and(|s| {
                free_bytes(&s.dir).unwrap_or(u64::MAX) < s.settings.min_free_bytes
            });
        }
        let failure = match result {
            Err(e) => Some(stop_for(&e)),
            Ok(()) => low.then_some(Stop {
                by: None,
                reason: "disk_full",
            }),
        };
        if let Some(stop) = failure {
            tracing::warn!(reason = stop.reason, "recording stops: the disk is full");
            if let Some(shared) = shared.upgrade() {
                shared.stop(stop, true);
            }
            break;
        }
    }
    if let Err(e) = journal.sync() {
        tracing::warn!(error = %e, "the end of a recording journal was not written");
    }
}
