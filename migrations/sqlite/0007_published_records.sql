-- This server's own courses as signed when they changed (src/federation/publish.rs), so the
-- federation feed serves stored bytes instead of signing every record on every read.
CREATE TABLE published_records (
    course_id      TEXT PRIMARY KEY,
    origin         TEXT NOT NULL,              -- the server id it was signed under (ids change with the public URL)
    origin_version BIGINT NOT NULL,            -- the course version the signature covers
    op             TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
    course         TEXT NOT NULL,              -- the course record as signed (JSON)
    signature      TEXT NOT NULL
);

-- How far the publisher has read the catalog log; shared by every node of a cluster.
CREATE TABLE publisher_position (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    last_seq  BIGINT NOT NULL
);
INSERT INTO publisher_position (singleton, last_seq) VALUES (1, 0);
