-- The sync stream (internal/stream; docs/design.md, "The sync stream").
--
-- Every change of a recipient's inbox takes the next position of the
-- recipient's stream, inbox_states.head, in the transaction that makes it:
-- a notification's seq is the position of its created change, and the other
-- changes (state changes) are rows of inbox_changes. Positions are dense
-- per recipient from here on; the rows stored before keep their seq (a
-- transaction id and a rank), so each recipient's stream continues after
-- its newest row, and floor marks where density starts. The watermarks of
-- the "all" operations of before were taken at a global horizon, above the
-- recipient's own newest row: the stream starts above them too, or new
-- notifications would be born read, seen or deleted.
--
-- The counts on inbox_states now cover every notification up to head
-- (ingest adds to them): the caches of before (up to counts_seq plus a
-- tail) are recounted at their next use.
--
-- Instances of the previous version must be stopped before this runs:
-- they would keep numbering rows by transaction id. notifications is
-- locked against writes while the heads are computed (an index-only scan
-- of (recipient_id, seq): seconds per million rows).
BEGIN;
LOCK TABLE notifications IN SHARE MODE;

DO $$
BEGIN
    IF greatest((SELECT coalesce(max(seq), 0) FROM notifications),
                (SELECT coalesce(max(greatest(read_wm, seen_wm, deleted_wm)), 0) FROM inbox_states)) >= 2^52 THEN
        RAISE EXCEPTION 'notifications.seq reaches 2^52: positions would not be exact in JavaScript clients; renumber first';
    END IF;
END $$;

ALTER TABLE inbox_states
    ADD COLUMN head  bigint NOT NULL DEFAULT 0,
    ADD COLUMN floor bigint NOT NULL DEFAULT 0,
    DROP COLUMN counts_seq;
UPDATE inbox_states SET counts_epoch = -1,
    head = greatest(read_wm, seen_wm, deleted_wm), floor = greatest(read_wm, seen_wm, deleted_wm);

INSERT INTO inbox_states AS s (recipient_id, head, floor, counts_epoch)
SELECT recipient_id, max(seq), max(seq), -1 FROM notifications GROUP BY recipient_id
ON CONFLICT (recipient_id) DO UPDATE SET head = greatest(s.head, EXCLUDED.head), floor = greatest(s.floor, EXCLUDED.floor);

-- The changes of a stream other than created ones, each as its frame's
-- topic and data (JSON, exactly as pushed) with the counts after it. Kept
-- as long as notifications (notifications.retention).
CREATE TABLE inbox_changes (
    recipient_id text        NOT NULL,
    pos          bigint      NOT NULL,
    topic        text        NOT NULL,
    data         text        NOT NULL,
    total        bigint,
    unread       bigint,
    unseen       bigint,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (recipient_id, pos)
);
-- Retention removes the oldest: rows arrive in time order.
CREATE INDEX inbox_changes_created ON inbox_changes USING brin (created_at);
COMMIT;
