-- catalog_log_by_course_seq (course_id, seq) answers every lookup by course_id alone, so this
-- index only cost an extra entry on every catalog change (a federated catch-up writes 100,000).
DROP INDEX IF EXISTS catalog_log_by_course;
