//! The retention cleaner: a recording whose session ended more than `recording.retention_days`
//! ago loses its files; its row stays, marked deleted with the time, so the session's log
//! says what became of it.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::RecordingConfig;
use crate::store::{now_ms, Store};

/// Deletes the recordings past retention; returns how many.
pub async fn sweep(
    store: &Store,
    root: &std::path::Path,
    retention_days: u64,
) -> anyhow::Result<usize> {
    let before = now_ms() - (retention_days as i64) * 86_400_000;
    let expired = store.expired_recordings(before).await?;
    for row in &expired {
        let dir = root.join(&row.dir);
        if dir.exists() {
            tokio::fs::remove_dir_all(&dir).await?;
        }
        store.mark_recording_deleted(row.id).await?;
        tracing::info!(
            recording = row.id,
            session_id = row.session_id,
            "recording deleted: past retention"
        );
    }
    Ok(expired.len())
}

/// Runs the cleaner every `cleanup_interval_secs` until the process ends.
pub fn spawn(store: Store, root: PathBuf, config: RecordingConfig) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(config.cleanup_interval_secs));
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&store, &root, config.retention_days).await {
                tracing::error!(error = %e, "the recording cleaner failed");
            }
        }
    });
}
