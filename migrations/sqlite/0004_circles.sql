-- Learning circles: rooms where residents study together and talk live.
-- Messages carry a per-circle seq handed out from circles.last_seq inside the sending
-- transaction, so seqs have no gaps and no duplicates whatever the number of senders.

CREATE TABLE circles (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    owner_id    TEXT NOT NULL REFERENCES users (id),
    invite_code TEXT NOT NULL,
    last_seq    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE circle_members (
    circle_id   TEXT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('owner', 'moderator', 'member')),
    muted_until BIGINT,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (circle_id, user_id)
);
CREATE INDEX circle_members_by_user ON circle_members (user_id);

CREATE TABLE circle_messages (
    circle_id  TEXT NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    author_id  TEXT NOT NULL REFERENCES users (id),
    client_id  TEXT NOT NULL,           -- the sender's idempotency key
    body       TEXT NOT NULL,
    card       TEXT,                   -- JSON: the course a message links to, if any
    sent_at    BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (circle_id, seq),
    UNIQUE (circle_id, author_id, client_id)
);
