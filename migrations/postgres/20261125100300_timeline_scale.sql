-- The class timeline at school scale (issue 15): pages cost a fixed number of queries, so what
-- used to be worked out per item on every view is stored once, and every list that grows has
-- an index that serves its cursor.

-- A post's body rendered and sanitized when it is written (and again when it is edited);
-- NULL only for posts written before this migration, which start-up renders.
ALTER TABLE posts ADD COLUMN html TEXT;

-- Attendance worked out once, when a session ends: `attendees` counts the people (NULL while
-- the session is open, or until start-up summarizes one that ended before this migration),
-- and `session_attendance` keeps each person's stays for the log and the CSV export.
ALTER TABLE live_sessions ADD COLUMN attendees BIGINT;
-- The node that runs an open session: start-up closes only its own node's sessions.
ALTER TABLE live_sessions ADD COLUMN node_id TEXT;
CREATE TABLE session_attendance (
    session_id BIGINT NOT NULL REFERENCES live_sessions(id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    name TEXT NOT NULL,
    -- JSON [[joined_ms, left_ms], ...]
    intervals TEXT NOT NULL,
    total_ms BIGINT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE INDEX session_attendance_user ON session_attendance(session_id, user_id);
-- Who joined a (tutoring) session, asked in SQL for a page of sessions at once.
CREATE INDEX session_events_joins ON session_events(session_id, kind, user_id);

-- Keys the store keeps for the whole deployment (the room-token signing key), so a restart,
-- or another node, honours tokens handed out before.
CREATE TABLE server_keys (
    name TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Cursor pagination: each list is read newest (or oldest) first from a position, and these
-- indexes hold the rows in exactly that order.
DROP INDEX posts_class;
CREATE INDEX posts_published ON posts(class_id, state, published_at, id);
CREATE INDEX posts_updated ON posts(class_id, state, updated_at, id);
DROP INDEX live_sessions_room;
CREATE INDEX live_sessions_room ON live_sessions(room_id, started_at, id);
DROP INDEX comments_post;
CREATE INDEX comments_post ON comments(post_id, created_at, id);
DROP INDEX attachments_post;
CREATE INDEX attachments_post ON attachments(post_id, id);
DROP INDEX invites_class;
CREATE INDEX invites_class ON invites(class_id, id);
DROP INDEX memberships_class;
CREATE INDEX memberships_class ON memberships(class_id, user_id);
-- Visibility in SQL: the posts featuring a family's children.
CREATE INDEX post_students_student ON post_students(student_id);
CREATE INDEX family_students_student ON family_students(student_id);
CREATE INDEX students_user ON students(user_id);

-- The purge job finds what expired without reading everything.
CREATE INDEX auth_sessions_expiry ON auth_sessions(expires_at);
CREATE INDEX password_resets_expiry ON password_resets(expires_at);
CREATE INDEX setup_tokens_expiry ON setup_tokens(expires_at);
CREATE INDEX invites_expiry ON invites(expires_at);
