//! Finishing a recording: each journal of its folder is muxed into WebM and the files are
//! listed in the store. The same path serves a stop and, at start-up, every recording a crash
//! or `kill -9` left unfinished: what its journals hold (all but the last second at most)
//! becomes a file that plays to its end, with its duration and cues.

use std::path::Path;

use super::writer::{mux, MuxError};
use crate::store::recordings::NewFile;
use crate::store::Store;

/// How a recording ended.
pub struct Stopped {
    /// None after a crash: the end of the longest file.
    pub ended_at: Option<i64>,
    pub by: Option<String>,
    pub reason: &'static str,
}

struct Made {
    file_name: String,
    source: String,
    participant: String,
    offset_ms: i64,
    duration_ms: i64,
    size_bytes: i64,
}

/// Muxes every journal in `dir`; a journal is deleted once its WebM file is whole.
fn mux_folder(dir: &Path) -> std::io::Result<Vec<Made>> {
    let mut made = Vec::new();
    let mut journals: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "frames"))
        .collect();
    journals.sort();
    for journal in journals {
        let output = journal.with_extension("webm");
        match mux(&journal, &output) {
            Ok(muxed) => {
                made.push(Made {
                    file_name: output
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    source: muxed.header.source,
                    participant: muxed.header.participant,
                    offset_ms: muxed.header.offset_ms,
                    duration_ms: muxed.duration_ms,
                    size_bytes: std::fs::metadata(&output)?.len() as i64,
                });
                std::fs::remove_file(&journal)?;
            }
            Err(MuxError::Empty | MuxError::NoHeader) => std::fs::remove_file(&journal)?,
            Err(e) => {
                tracing::error!(error = %e, journal = %journal.display(), "cannot mux a recording journal")
            }
        }
    }
    Ok(made)
}

/// Muxes a recording's journals and marks it finished.
pub async fn finish(
    store: &Store,
    root: &Path,
    id: i64,
    dir_name: &str,
    started_at: i64,
    stopped: Stopped,
) -> anyhow::Result<()> {
    let dir = root.join(dir_name);
    let made = match dir.exists() {
        true => tokio::task::spawn_blocking(move || mux_folder(&dir)).await??,
        false => Vec::new(),
    };
    let ended_at = stopped.ended_at.unwrap_or_else(|| {
        started_at
            + made
                .iter()
                .map(|m| m.offset_ms + m.duration_ms)
                .max()
                .unwrap_or(0)
    });
    let files: Vec<NewFile<'_>> = made
        .iter()
        .map(|m| NewFile {
            file_name: &m.file_name,
            source: &m.source,
            participant_name: &m.participant,
            offset_ms: m.offset_ms,
            duration_ms: m.duration_ms,
            size_bytes: m.size_bytes,
        })
        .collect();
    store
        .finish_recording(id, ended_at, stopped.by.as_deref(), stopped.reason, &files)
        .await?;
    tracing::info!(recording = id, files = files.len(), "recording finalised");
    Ok(())
}

/// At start-up, before serving: finishes every recording an earlier run left unfinished.
pub async fn recover(store: &Store, root: &Path) -> anyhow::Result<usize> {
    let unfinished = store.unfinished_recordings().await?;
    for row in &unfinished {
        let stopped = Stopped {
            ended_at: None,
            by: None,
            reason: "server_restart",
        };
        finish(store, root, row.id, &row.dir, row.started_at, stopped).await?;
    }
    Ok(unfinished.len())
}
