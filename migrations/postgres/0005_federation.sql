-- Federation (SPEC §9): this server's identity, its peers, the origins whose keys it has pinned,
-- and the signed records of courses published elsewhere, kept verbatim to relay onward.

-- The public key every node of this server signs with: a node started with another key file
-- refuses to run, so a cluster never publishes under two keys.
CREATE TABLE server_identity (
    singleton  BIGINT PRIMARY KEY CHECK (singleton = 1),
    server_id  TEXT NOT NULL,
    public_key TEXT NOT NULL
);

-- A course from another server has no local institution: its institution is named here.
ALTER TABLE courses ADD COLUMN remote_institution_slug TEXT;
ALTER TABLE courses ADD COLUMN remote_institution_name TEXT;
-- 1 when the bytes are in this server's object store; 0 for a federated file not mirrored (yet).
ALTER TABLE course_files ADD COLUMN stored BIGINT NOT NULL DEFAULT 1;

CREATE TABLE peers (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    server_id        TEXT NOT NULL UNIQUE,     -- the id its /.well-known/shuyuan gave
    name             TEXT NOT NULL,
    public_key       TEXT NOT NULL,            -- pinned when the peer was added
    media            TEXT NOT NULL CHECK (media IN ('redirect', 'mirror')),
    last_seq         BIGINT NOT NULL DEFAULT 0, -- the peer's feed position, moved with each applied batch
    records_received BIGINT NOT NULL DEFAULT 0,
    records_rejected BIGINT NOT NULL DEFAULT 0,
    mirrors_rejected BIGINT NOT NULL DEFAULT 0,
    failures         BIGINT NOT NULL DEFAULT 0, -- consecutive failed syncs, for the backoff
    last_sync_at     BIGINT,
    last_success_at  BIGINT,
    last_error       TEXT,
    last_rejection   TEXT,
    added_at         BIGINT NOT NULL
);

CREATE TABLE origins (
    id          TEXT PRIMARY KEY,              -- the origin's server id (its public URL)
    public_key  TEXT NOT NULL,
    source      TEXT NOT NULL,                 -- 'peer', 'well-known' or 'relay': how it was learnt
    via_peer    TEXT,                          -- the peer whose feed first named it
    pinned_at   BIGINT NOT NULL
);

CREATE TABLE federated_records (
    course_id      TEXT PRIMARY KEY,
    origin         TEXT NOT NULL,
    origin_version BIGINT NOT NULL,
    op             TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    course         TEXT NOT NULL,              -- the course record as its origin signed it (JSON)
    signature      TEXT NOT NULL,
    origin_key     TEXT NOT NULL,
    peer_id        TEXT NOT NULL,              -- the peer it came through (its media policy applies)
    received_at    BIGINT NOT NULL
);

-- The feed serves each course's newest entry only: found through this index.
CREATE INDEX catalog_log_by_course_seq ON catalog_log (course_id, seq);
