-- OAI-PMH (src/oai): harvesters page through courses by (updated_at, id), and resumption
-- tokens are signed with a secret that every node of a cluster shares.

CREATE INDEX courses_by_update ON courses (updated_at, id);

-- Secrets made once, by whichever node needs one first, and shared by every node since they
-- read them from here. Only `oai_resumption_token` so far.
CREATE TABLE server_secrets (
    name       TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,              -- base64 of random bytes
    created_at BIGINT NOT NULL
);
