-- Users, their sessions, institutions and who works for them.
-- Ids are text UUIDs and times are unix milliseconds (BIGINT), so the same queries run on
-- SQLite and PostgreSQL through sqlx's Any driver.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,      -- stored lower-cased
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,             -- argon2id PHC string
    is_admin      BIGINT NOT NULL DEFAULT 0,  -- 0 or 1: sqlx Any cannot decode SQLite booleans
    created_at    BIGINT NOT NULL
);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,       -- SHA-256 of the bearer token, hex
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    user_agent   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE institutions (
    id         TEXT PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    region     TEXT NOT NULL,                -- province/city/county/town/village, 1 to 5 levels
    created_at BIGINT NOT NULL
);
CREATE INDEX institutions_by_region ON institutions (region);

CREATE TABLE memberships (
    institution_id TEXT NOT NULL REFERENCES institutions (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role           TEXT NOT NULL CHECK (role IN ('staff', 'manager')),
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (institution_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);
