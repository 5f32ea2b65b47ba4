-- Back to 0008: positions stay as they are (each recipient's rows keep
-- their order; the previous version numbers new rows by transaction id,
-- above all of them), the stream's own state goes, and the counts caches
-- are recounted at their next use.
BEGIN;
DROP TABLE inbox_changes;
ALTER TABLE inbox_states
    DROP COLUMN head,
    DROP COLUMN floor,
    ADD COLUMN counts_seq bigint NOT NULL DEFAULT 0;
UPDATE inbox_states SET counts_epoch = -1;
COMMIT;
