//! Muxing: a frame journal becomes a WebM file (VP8 and Opus) with its duration and cues, so a
//! browser can seek in it. The muxer is libwebm, Google's reference WebM muxer, through the
//! `webm` crate: it writes the seek head, cues on video keyframes and the duration when the
//! output can seek, which a file can.
//!
//! libwebm wants timestamps that never go back across tracks, while audio and video arrive
//! interleaved only roughly: frames pass through a one-second reordering window, and a frame
//! that is still late is written at the last timestamp written.

use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use webm::mux::{AudioCodecId, Segment, SegmentBuilder, TrackNum, VideoCodecId, Writer};

use super::journal::{Frame, Header, JournalReader, Record, Track, TrackKind};

/// How far a frame may arrive out of order, across tracks.
const REORDER_NS: u64 = 1_000_000_000;
/// Opus at 48 kHz, stereo, as WebRTC sends it.
const OPUS_RATE: u32 = 48_000;
const OPUS_CHANNELS: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the journal has no header")]
    NoHeader,
    #[error("the journal holds no frames")]
    Empty,
    #[error("the WebM muxer refused: {0}")]
    Muxer(String),
}

/// What muxing gave: the journal's header with its offset moved to the first frame written.
#[derive(Debug, Clone)]
pub struct Muxed {
    pub header: Header,
    pub duration_ms: i64,
    pub frames: u64,
}

/// The `OpusHead` that WebM carries as the Opus track's codec private data (RFC 7845, 5.1);
/// browsers will not decode Opus in WebM without it.
fn opus_head() -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1); // version
    head.push(OPUS_CHANNELS as u8);
    head.extend_from_slice(&0u16.to_le_bytes()); // pre-skip
    head.extend_from_slice(&OPUS_RATE.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family
    head
}

/// First pass: the header, the tracks, and the first frame's time (the file starts there).
fn survey(journal: &Path) -> Result<(Header, Vec<Track>, u64), MuxError> {
    let mut header = None;
    let mut tracks: Vec<Track> = Vec::new();
    let mut first_ns = None::<u64>;
    for record in JournalReader::open(journal)? {
        match record {
            Record::Header(h) => header = Some(h),
            Record::Track(t) if !tracks.iter().any(|k| k.number == t.number) => tracks.push(t),
            Record::Track(_) => {}
            Record::Frame(f) => first_ns = Some(first_ns.map_or(f.ts_ns, |n| n.min(f.ts_ns))),
        }
    }
    let header = header.ok_or(MuxError::NoHeader)?;
    let first_ns = first_ns.ok_or(MuxError::Empty)?;
    tracks.sort_by_key(|t| t.number);
    Ok((header, tracks, first_ns))
}

/// A frame ordered by time (earliest first out of the heap), then by arrival.
struct Queued(u64, u64, Frame);

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        (self.0, self.1) == (other.0, other.1)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.0, other.1).cmp(&(self.0, self.1))
    }
}

/// Muxes `journal` into `output` (written whole, then renamed into place).
pub fn mux(journal: &Path, output: &Path) -> Result<Muxed, MuxError> {
    let (mut header, tracks, first_ns) = survey(journal)?;
    let partial = output.with_extension("webm.part");
    let file = BufWriter::with_capacity(256 * 1024, File::create(&partial)?);
    let muxer_error = |what: &str| MuxError::Muxer(what.to_owned());
    let mut builder = SegmentBuilder::new(Writer::new(file)).map_err(|_| muxer_error("segment"))?;
    let mut numbers: HashMap<u8, TrackNum> = HashMap::new();
    for track in &tracks {
        match track.kind {
            TrackKind::Video => {
                let (b, t) = builder
                    .add_video_track(
                        track.width.max(2) as u32,
                        track.height.max(2) as u32,
                        VideoCodecId::VP8,
                        None,
                    )
                    .map_err(|_| muxer_error("video track"))?;
                builder = b;
                numbers.insert(track.number, t.into());
            }
            TrackKind::Audio => {
                let (b, t) = builder
                    .add_audio_track(OPUS_RATE, OPUS_CHANNELS, AudioCodecId::Opus, None)
                    .map_err(|_| muxer_error("audio track"))?;
                builder = b
                    .set_codec_private(t, &opus_head())
                    .map_err(|_| muxer_error("codec private"))?;
                numbers.insert(track.number, t.into());
            }
        }
    }
    let mut segment = builder.build();
    let mut heap = BinaryHeap::new();
    let (mut arrival, mut newest, mut last, mut frames) = (0u64, 0u64, 0u64, 0u64);
    let mut write =
        |segment: &mut Segment<BufWriter<File>>, frame: Frame| -> Result<(), MuxError> {
            let Some(&number) = numbers.get(&frame.track) else {
                return Ok(());
            };
            let ts = frame.ts_ns.saturating_sub(first_ns).max(last);
            last = ts;
            frames += 1;
            segment
                .add_frame(number, &frame.data, ts, frame.keyframe)
                .map_err(|_| muxer_error("frame"))
        };
    for record in JournalReader::open(journal)? {
        let Record::Frame(frame) = record else {
            continue;
        };
        newest = newest.max(frame.ts_ns);
        arrival += 1;
        heap.push(Queued(frame.ts_ns, arrival, frame));
        while heap.peek().is_some_and(|q| q.0 + REORDER_NS <= newest) {
            let Queued(_, _, frame) = heap.pop().expect("peeked");
            write(&mut segment, frame)?;
        }
    }
    while let Some(Queued(_, _, frame)) = heap.pop() {
        write(&mut segment, frame)?;
    }
    let duration_ns = last;
    let writer = segment
        .finalize(Some(duration_ns / 1_000_000))
        .map_err(|_| muxer_error("finalize"))?;
    writer
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::rename(&partial, output)?;
    header.offset_ms += (first_ns / 1_000_000) as i64;
    Ok(Muxed {
        header,
        duration_ms: (duration_ns / 1_000_000) as i64,
        frames,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::Bytes;
    use rtc::rtp;

    use super::*;
    use crate::recording::journal::JournalWriter;
    use crate::recording::recorder::{Assembler, JitterBuffer};

    fn rtp(seq: u16, ts: u32, marker: bool, payload: Vec<u8>) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                sequence_number: seq,
                timestamp: ts,
                marker,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }

    /// A minute of 1 Mbit/s VP8 (30 fps, a keyframe a second) and Opus goes through the whole
    /// recorder (jitter buffer, frame assembly, journal, WebM) with every frame kept; prints the
    /// CPU time it took and the bytes written (docs/performance.md).
    #[test]
    fn a_minute_of_one_megabit_video_is_recorded_whole() {
        let dir = tempfile::tempdir().unwrap();
        let journal_path = dir.path().join("1-camera.frames");
        let header = Header {
            participant: "Ms Ada".into(),
            source: "camera".into(),
            offset_ms: 0,
        };
        let mut journal = JournalWriter::create(&journal_path, &header).unwrap();
        let (seconds, fps, frame_bytes) = (60u32, 30u32, 1_000_000usize / 8 / 30);
        let started = Instant::now();
        let cpu = cpu_time();
        let mut video = (
            JitterBuffer::default(),
            Assembler::new(TrackKind::Video, 1, 90_000, 0),
        );
        let mut audio = (
            JitterBuffer::default(),
            Assembler::new(TrackKind::Audio, 2, 48_000, 0),
        );
        for (number, kind) in [(1, TrackKind::Video), (2, TrackKind::Audio)] {
            let track = Track {
                number,
                kind,
                width: 640,
                height: 480,
            };
            journal.write(&Record::Track(track)).unwrap();
        }
        let (mut vseq, mut aseq) = (0u16, 0u16);
        let now = std::time::Instant::now();
        for frame in 0..seconds * fps {
            let key = frame % fps == 0;
            let chunks = frame_bytes.div_ceil(1100);
            for i in 0..chunks {
                let mut payload = vec![if i == 0 { 0x10 } else { 0x00 }];
                payload.push(if i == 0 && !key { 0x01 } else { 0x00 });
                payload.resize(2 + frame_bytes / chunks, 0xab);
                video
                    .0
                    .push(rtp(vseq, frame * 3000, i + 1 == chunks, payload), now);
                vseq = vseq.wrapping_add(1);
            }
            // Opus: 20 ms packets, 50 a second.
            for _ in 0..(if frame % 3 == 2 { 1 } else { 2 }) {
                audio
                    .0
                    .push(rtp(aseq, aseq as u32 * 960, true, vec![0xfc; 100]), now);
                aseq = aseq.wrapping_add(1);
            }
            for (jitter, assembler) in [&mut video, &mut audio] {
                while let Some((packet, gap)) = jitter.pop(now) {
                    if let Some(frame) = assembler.push(&packet, gap).frame {
                        journal.write(&Record::Frame(frame)).unwrap();
                    }
                }
            }
        }
        journal.sync().unwrap();
        let journal_bytes = journal.written;
        let output = dir.path().join("1-camera.webm");
        let muxed = mux(&journal_path, &output).unwrap();
        let cpu_ms = (cpu_time() - cpu) * 1000.0;
        assert_eq!(
            muxed.frames,
            (seconds * fps + aseq as u32) as u64,
            "every frame kept"
        );
        assert!(
            (muxed.duration_ms - 60_000).abs() <= 40,
            "{}",
            muxed.duration_ms
        );
        let webm_bytes = std::fs::metadata(&output).unwrap().len();
        println!(
            "recorder, 60 s of 1 Mbit/s VP8 + Opus: {cpu_ms:.0} ms CPU ({:.2}% of one core), \
             {:.0} ms wall; journal {:.1} MB, WebM {:.1} MB ({:.1} MB per hour)",
            cpu_ms / 600.0,
            started.elapsed().as_secs_f64() * 1000.0,
            journal_bytes as f64 / 1e6,
            webm_bytes as f64 / 1e6,
            webm_bytes as f64 * 60.0 / 1e6,
        );
    }

    /// This thread's CPU time in seconds.
    fn cpu_time() -> f64 {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid out-pointer.
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(usage.ru_utime) + t(usage.ru_stime)
    }
}
