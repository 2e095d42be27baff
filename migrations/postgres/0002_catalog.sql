-- The catalog: courses, their files, the append-only catalog log, and uploads in progress.
-- List-valued fields (subjects, audience, languages, tags) are JSON arrays of strings in TEXT:
-- both backends store and compare them the same way through sqlx Any.

CREATE TABLE courses (
    id             TEXT PRIMARY KEY,
    origin         TEXT NOT NULL,          -- id (public URL) of the server that published it
    institution_id TEXT REFERENCES institutions (id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    subjects       TEXT NOT NULL,          -- JSON array
    audience       TEXT NOT NULL,          -- JSON array
    level          TEXT NOT NULL,
    languages      TEXT NOT NULL,          -- JSON array
    license        TEXT NOT NULL,
    tags           TEXT NOT NULL,          -- JSON array
    credits        DOUBLE PRECISION NOT NULL,
    region         TEXT NOT NULL,          -- the institution's, copied so filters need no join
    version        BIGINT NOT NULL,        -- rises with every change: the origin_version
    withdrawn_at   BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX courses_by_institution ON courses (institution_id, id);

CREATE TABLE course_files (
    id           TEXT PRIMARY KEY,
    course_id    TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    kind         TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,            -- hex
    object_key   TEXT NOT NULL,            -- built by media::MediaKey, never from client input
    created_at   BIGINT NOT NULL,
    UNIQUE (course_id, name)
);

CREATE TABLE catalog_log (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    course_id      TEXT NOT NULL,
    op             TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    origin         TEXT NOT NULL,
    origin_version BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX catalog_log_by_course ON catalog_log (course_id);

-- An upload writing to object_key right now. A row older than storage.sweep_grace_seconds
-- belongs to an upload that died; the sweep deletes its object.
CREATE TABLE pending_uploads (
    object_key TEXT PRIMARY KEY,
    started_at BIGINT NOT NULL
);
