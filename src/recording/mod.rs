//! Recording live sessions, without transcoding.
//!
//! A recording taps the publishers' incoming RTP (`Published::add_tap`, before any
//! per-subscriber rewriting) through a bounded queue that is never waited on, so a slow disk
//! drops recorded packets and never slows a viewer. Each publisher's camera (with its
//! microphone) and each screen share is its own file; every file starts at a known offset from
//! the start of the recording, so all are on one clock.
//!
//! While recording, frames go to an append-only journal per file (`journal.rs`), flushed every
//! quarter second; at the stop (or, after a crash, at the next start: `finalise.rs`) each journal is
//! muxed into WebM (`writer.rs`) and listed in the store. `recorder.rs` turns RTP into frames;
//! `retention.rs` deletes recordings past their retention.

pub mod finalise;
pub mod journal;
pub mod recorder;
pub mod retention;
mod tasks;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::domain::Source;
use crate::sfu::track::Published;
use crate::store::{now_ms, Store};
use journal::{Header, JournalWriter, Record, TrackKind};
use tasks::{record_track, write_file};

/// Packets a recorded track may have queued before the recorder drops them.
const TAP_QUEUE: usize = 1024;
/// How often a journal's buffer goes to the operating system (a killed process loses what is
/// newer), and how often it is put on disk and the free space looked at.
const FLUSH_EVERY: Duration = Duration::from_millis(250);
const SYNC_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("the server's disk has {free_mb} MB free and recording needs {floor_mb} MB; ask the school's administrator to free some space")]
    DiskFull { free_mb: u64, floor_mb: u64 },
    #[error("cannot make the recording's folder: {0}")]
    Io(#[from] std::io::Error),
}

/// The recording service: where recordings go and the disk floor.
#[derive(Clone)]
pub struct Recorder {
    settings: Arc<Settings>,
}

struct Settings {
    root: PathBuf,
    min_free_bytes: u64,
    store: Store,
}

/// Free bytes on the disk holding `path`, for an unprivileged writer.
pub fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid C string and `stat` a valid out-pointer.
    let ok = unsafe { libc::statvfs(name.as_ptr(), &mut stat) } == 0;
    ok.then(|| stat.f_bavail as u64 * stat.f_frsize as u64)
}

/// Who starts a recording, and of which session.
pub struct Start {
    pub session_id: i64,
    pub user_id: Option<i64>,
    pub name: String,
}

struct Stop {
    by: Option<String>,
    reason: &'static str,
}

/// Told once when a recording stops on its own (the disk filled).
pub type OnFailure = Box<dyn FnOnce(&'static str) + Send>;

impl Recorder {
    pub fn new(config: &Config, store: Store) -> Recorder {
        Recorder {
            settings: Arc::new(Settings {
                root: config.data_dir.join("recordings"),
                min_free_bytes: config.recording.min_free_mb * 1024 * 1024,
                store,
            }),
        }
    }

    /// The folder that holds every recording's folder.
    pub fn root(&self) -> &Path {
        &self.settings.root
    }

    /// Starts recording a session, unless the disk is under its floor.
    pub fn start(&self, start: Start, on_failure: OnFailure) -> Result<Active, RecordError> {
        std::fs::create_dir_all(self.root())?;
        let free = free_bytes(self.root()).unwrap_or(u64::MAX);
        if free < self.settings.min_free_bytes {
            return Err(RecordError::DiskFull {
                free_mb: free / (1024 * 1024),
                floor_mb: self.settings.min_free_bytes / (1024 * 1024),
            });
        }
        let started_ms = now_ms();
        let dir_name = format!("{}-{started_ms}", start.session_id);
        let dir = self.root().join(&dir_name);
        std::fs::create_dir_all(&dir)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            settings: self.settings.clone(),
            dir,
            started: Instant::now(),
            files: Mutex::default(),
            stopping: watch::channel(false).0,
            tasks: Mutex::default(),
            stop: Mutex::new(Some((stop_tx, on_failure))),
        });
        tracing::info!(session_id = start.session_id, dir = %dir_name, "recording started");
        tokio::spawn(control(
            shared.clone(),
            start,
            started_ms,
            dir_name,
            stop_rx,
        ));
        Ok(Active { shared })
    }
}

/// A file's input and the instant its clock starts, by (participant, source).
type FileInput = (mpsc::Sender<Record>, Instant);

/// A recording in progress; stopping it (or dropping it) finalises its files.
pub struct Active {
    shared: Arc<Shared>,
}

struct Shared {
    settings: Arc<Settings>,
    dir: PathBuf,
    started: Instant,
    files: Mutex<HashMap<(u64, &'static str), FileInput>>,
    /// Set when the recording stops: every track task ends.
    stopping: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Taken by whichever comes first: a stop, or a failure (which also tells the room).
    stop: Mutex<Option<(oneshot::Sender<Stop>, OnFailure)>>,
}

impl Shared {
    fn stop(&self, stop: Stop, failed: bool) {
        let Some((tx, on_failure)) = self.stop.lock().expect("stop lock").take() else {
            return;
        };
        if failed {
            on_failure(stop.reason);
        }
        let _ = tx.send(stop);
    }
}

impl Active {
    /// Records a published track from now on: a VP8 video track or an Opus audio track.
    pub fn add_track(&self, track: &Arc<Published>, participant_name: &str) {
        let shared = &self.shared;
        if *shared.stopping.borrow() {
            return;
        }
        let mime = track.codec.mime_type.to_ascii_lowercase();
        let kind = match mime.as_str() {
            "video/vp8" => TrackKind::Video,
            "audio/opus" => TrackKind::Audio,
            _ => {
                tracing::warn!(track = %track.id, %mime, "this codec is not recorded");
                return;
            }
        };
        let source = match track.source {
            Source::Screen => "screen",
            Source::Camera | Source::Microphone => "camera",
        };
        let Some((file, t0)) = self.file(track.participant_id(), source, participant_name) else {
            return;
        };
        let (tap, packets) = mpsc::channel(TAP_QUEUE);
        track.add_tap(tap);
        let number = if kind == TrackKind::Video { 1 } else { 2 };
        let task = tokio::spawn(record_track(
            packets,
            Arc::downgrade(track),
            (kind, number, track.codec.clock_rate, t0),
            file,
            shared.stopping.subscribe(),
        ));
        shared.tasks.lock().expect("tasks lock").push(task);
        track.request_keyframe();
    }

    /// The input of the participant's file for `source`, made on first use.
    fn file(
        &self,
        participant_id: u64,
        source: &'static str,
        participant: &str,
    ) -> Option<FileInput> {
        let shared = &self.shared;
        let mut files = shared.files.lock().expect("files lock");
        if let Some(file) = files.get(&(participant_id, source)) {
            return Some(file.clone());
        }
        let now = Instant::now();
        let header = Header {
            participant: participant.to_owned(),
            source: source.to_owned(),
            offset_ms: now.duration_since(shared.started).as_millis() as i64,
        };
        let path = shared.dir.join(format!("{participant_id}-{source}.frames"));
        let journal = match JournalWriter::create(&path, &header) {
            Ok(journal) => journal,
            Err(e) => {
                tracing::error!(error = %e, "cannot create a recording journal");
                shared.stop(stop_for(&e), true);
                return None;
            }
        };
        let (tx, rx) = mpsc::channel(256);
        let weak = Arc::downgrade(shared);
        let task = tokio::task::spawn_blocking(move || write_file(journal, rx, weak));
        shared.tasks.lock().expect("tasks lock").push(task);
        files.insert((participant_id, source), (tx.clone(), now));
        Some((tx, now))
    }

    /// Stops recording; the files are finalised in the background.
    pub fn stop(self, by: Option<String>, reason: &'static str) {
        self.shared.stop(Stop { by, reason }, false);
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.shared.stop(
            Stop {
                by: None,
                reason: "session_ended",
            },
            false,
        );
    }
}

fn stop_for(error: &std::io::Error) -> Stop {
    let reason = match error.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "disk_full",
        _ => "write_error",
    };
    Stop { by: None, reason }
}

/// The recording's life: its row, then (at the stop) its tasks end and its files are muxed.
async fn control(
    shared: Arc<Shared>,
    start: Start,
    started_ms: i64,
    dir_name: String,
    stop: oneshot::Receiver<Stop>,
) {
    let store = shared.settings.store.clone();
    let row = store
        .create_recording(
            start.session_id,
            &dir_name,
            started_ms,
            start.user_id,
            &start.name,
        )
        .await;
    let stop = stop.await.unwrap_or(Stop {
        by: None,
        reason: "session_ended",
    });
    let _ = shared.stopping.send(true);
    shared.files.lock().expect("files lock").clear();
    let tasks = std::mem::take(&mut *shared.tasks.lock().expect("tasks lock"));
    for task in tasks {
        let _ = task.await;
    }
    tracing::info!(
        session_id = start.session_id,
        reason = stop.reason,
        "recording stopped"
    );
    match row {
        Ok(id) => {
            let root = shared.settings.root.clone();
            let stopped = finalise::Stopped {
                ended_at: Some(now_ms()),
                by: stop.by,
                reason: stop.reason,
            };
            if let Err(e) =
                finalise::finish(&store, &root, id, &dir_name, started_ms, stopped).await
            {
                tracing::error!(error = %e, recording = id, "cannot finalise a recording");
            }
        }
        Err(e) => tracing::error!(error = %e, "the recording could not be stored"),
    }
}
