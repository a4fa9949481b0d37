-- Recordings of live sessions. A recording is one start..stop of the recorder in a session;
-- its files (one per publisher and source: camera with microphone, or screen) are listed once
-- it is finalised. `dir` is the recording's folder under the data directory's recordings/.
-- state: recording (being written, or left by a crash until the next start finalises it),
-- ready, empty (nothing was recorded), deleted (past retention; the files are gone).
CREATE TABLE recordings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id BIGINT NOT NULL REFERENCES live_sessions(id) ON DELETE CASCADE,
    dir TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL CHECK (state IN ('recording', 'ready', 'empty', 'deleted')),
    started_at BIGINT NOT NULL,
    started_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    started_by_name TEXT NOT NULL,
    ended_at BIGINT,
    stopped_by_name TEXT,
    stop_reason TEXT,
    deleted_at BIGINT
);
CREATE INDEX recordings_session ON recordings(session_id);

CREATE TABLE recording_files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recording_id BIGINT NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
    file_name TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('camera', 'screen')),
    participant_name TEXT NOT NULL,
    offset_ms BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL
);
CREATE INDEX recording_files_recording ON recording_files(recording_id);

-- A room whose every session is recorded from the moment its host arrives.
ALTER TABLE rooms ADD COLUMN record_sessions BIGINT NOT NULL DEFAULT 0;
