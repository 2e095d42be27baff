-- Text extracted from files for search: one row per subtitle cue, PDF page, or document part.
-- course_files.extraction: 'pending' (not tried yet), 'running' (claimed by a node's worker
-- since extraction_claimed_at), 'done', 'failed', or 'none' (nothing to extract: video, images).

ALTER TABLE course_files ADD COLUMN extraction TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE course_files ADD COLUMN extraction_claimed_at BIGINT;

CREATE TABLE file_segments (
    file_id TEXT NOT NULL REFERENCES course_files (id) ON DELETE CASCADE,
    ord     BIGINT NOT NULL,
    at_ms   BIGINT,                -- a cue's start
    page    BIGINT,                -- a PDF page, from 1
    text    TEXT NOT NULL,
    PRIMARY KEY (file_id, ord)
);

CREATE INDEX course_files_by_extraction ON course_files (extraction);
