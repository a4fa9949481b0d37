-- A school sets itself up from the browser: its name, accounts that are deactivated (history
-- kept, no sign-in), what an admin made an account for, archived classes, and deleted rooms
-- (their session logs stay, so the row stays too).

CREATE TABLE school (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE users ADD COLUMN deactivated_at BIGINT;
ALTER TABLE users ADD COLUMN staff_role TEXT CHECK (staff_role IN ('teacher', 'tutor'));
ALTER TABLE classes ADD COLUMN archived_at BIGINT;
ALTER TABLE rooms ADD COLUMN deleted_at BIGINT;

-- A family invite may name more than one child (siblings in one class): `invites.student_id`
-- is the first, these are the others.
CREATE TABLE invite_students (
    invite_id BIGINT NOT NULL REFERENCES invites(id) ON DELETE CASCADE,
    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    PRIMARY KEY (invite_id, student_id)
);

-- Who may enter a tutoring room: when a room lists students, only they and their families may
-- ask to come in (the host still admits them); an empty list leaves it to the host alone.
CREATE TABLE room_students (
    room_id BIGINT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    student_id BIGINT NOT NULL REFERENCES students(id) ON DELETE CASCADE,
    PRIMARY KEY (room_id, student_id)
);
