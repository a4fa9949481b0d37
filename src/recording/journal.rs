//! The frame journal: what the recorder writes while a session is recorded. It is append-only,
//! flushed every quarter second and synced every second, so `kill -9` loses at most the last
//! quarter second (a power cut, the last second); `writer.rs`
//! muxes it into WebM when the recording stops, or at the next start after a crash.
//!
//! A journal is a magic line and then records `[kind: u8][length: u32 LE][body]`: one header
//! (JSON: who and what, and where on the recording's clock the file starts), a track record
//! for each track before its first frame, and frames. A record cut short by a crash ends the
//! reading; everything before it is kept.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

const MAGIC: &[u8] = b"homeroom-frames-1\n";
const HEADER: u8 = 0;
const TRACK: u8 = 1;
const FRAME: u8 = 2;

/// Who and what a recorded file shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub participant: String,
    /// camera (with the microphone) or screen.
    pub source: String,
    /// When the file's clock starts, from the start of the recording.
    pub offset_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Track {
    /// 1 for video, 2 for audio: the track number in the WebM file.
    pub number: u8,
    pub kind: TrackKind,
    pub width: u16,
    pub height: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: u8,
    /// On the file's clock.
    pub ts_ns: u64,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Header(Header),
    Track(Track),
    Frame(Frame),
}

pub struct JournalWriter {
    out: BufWriter<File>,
    /// Bytes written so far, for the disk cost figures.
    pub written: u64,
}

impl JournalWriter {
    pub fn create(path: &Path, header: &Header) -> io::Result<JournalWriter> {
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(path)?);
        out.write_all(MAGIC)?;
        let mut writer = JournalWriter {
            out,
            written: MAGIC.len() as u64,
        };
        writer.write(&Record::Header(header.clone()))?;
        Ok(writer)
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        let (kind, body) = match record {
            Record::Header(header) => (HEADER, serde_json::to_vec(header)?),
            Record::Track(t) => {
                let mut body = vec![t.number, (t.kind == TrackKind::Video) as u8];
                body.extend_from_slice(&t.width.to_le_bytes());
                body.extend_from_slice(&t.height.to_le_bytes());
                (TRACK, body)
            }
            Record::Frame(f) => {
                let mut body = Vec::with_capacity(10 + f.data.len());
                body.push(f.track);
                body.extend_from_slice(&f.ts_ns.to_le_bytes());
                body.push(f.keyframe as u8);
                body.extend_from_slice(&f.data);
                (FRAME, body)
            }
        };
        self.out.write_all(&[kind])?;
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&body)?;
        self.written += 5 + body.len() as u64;
        Ok(())
    }

    /// Hands what is buffered to the operating system: it survives the process being killed.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Hands what is buffered to the operating system and asks it to put it on disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Reads a journal's records up to its end or to the first record a crash cut short.
pub struct JournalReader {
    input: BufReader<File>,
}

impl JournalReader {
    pub fn open(path: &Path) -> io::Result<JournalReader> {
        let mut input = BufReader::with_capacity(256 * 1024, File::open(path)?);
        let mut magic = vec![0u8; MAGIC.len()];
        input.read_exact(&mut magic)?;
        if magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a frame journal",
            ));
        }
        Ok(JournalReader { input })
    }

    fn next_record(&mut self) -> Option<Record> {
        let mut head = [0u8; 5];
        self.input.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes(head[1..5].try_into().expect("4 bytes")) as usize;
        let mut body = vec![0u8; len];
        self.input.read_exact(&mut body).ok()?;
        match head[0] {
            HEADER => serde_json::from_slice(&body).ok().map(Record::Header),
            TRACK if len >= 6 => Some(Record::Track(Track {
                number: body[0],
                kind: match body[1] {
                    1 => TrackKind::Video,
                    _ => TrackKind::Audio,
                },
                width: u16::from_le_bytes([body[2], body[3]]),
                height: u16::from_le_bytes([body[4], body[5]]),
            })),
            FRAME if len >= 10 => Some(Record::Frame(Frame {
                track: body[0],
                ts_ns: u64::from_le_bytes(body[1..9].try_into().expect("8 bytes")),
                keyframe: body[9] == 1,
                data: body[10..].to_vec(),
            })),
            _ => None,
        }
    }
}

impl Iterator for JournalReader {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        self.next_record()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_cut_short_reads_up_to_its_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.frames");
        let header = Header {
            participant: "Ms Ada".into(),
            source: "camera".into(),
            offset_ms: 120,
        };
        let mut writer = JournalWriter::create(&path, &header).unwrap();
        let track = Track {
            number: 1,
            kind: TrackKind::Video,
            width: 640,
            height: 480,
        };
        writer.write(&Record::Track(track)).unwrap();
        for i in 0..3u64 {
            writer
                .write(&Record::Frame(Frame {
                    track: 1,
                    ts_ns: i * 33_000_000,
                    keyframe: i == 0,
                    data: vec![i as u8; 100],
                }))
                .unwrap();
        }
        writer.sync().unwrap();
        // A crash in the middle of the last frame.
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 40)
            .unwrap();
        let records: Vec<Record> = JournalReader::open(&path).unwrap().collect();
        assert_eq!(records[0], Record::Header(header));
        assert_eq!(records[1], Record::Track(track));
        assert_eq!(records.len(), 4, "the cut frame is left out");
        assert!(matches!(&records[3], Record::Frame(f) if f.ts_ns == 33_000_000));
    }
}
