-- A post's revision counts its content edits, so a teacher's approval names the version the
-- teacher read, and an edit made after that reading is never published by it.
ALTER TABLE posts ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
