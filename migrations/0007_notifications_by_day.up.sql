-- Issue 13: the inbox over time.
--
-- 1. notifications becomes a table partitioned by range of id, one
--    partition per UTC day. The id is a UUIDv8 whose first 48 bits are the
--    Kafka record's timestamp in milliseconds (internal/event/id.go): the
--    partition follows from the record, not from the time of the insert, so
--    a redelivered record meets its old row and the primary key (id) keeps
--    ingest idempotent. Removing a day of old rows is then a DETACH and a
--    DROP (internal/store/partitions.go), not millions of DELETEs.
--
--    The existing table is not copied: it is attached whole as the
--    partition notifications_legacy, FROM (MINVALUE) TO a bound B above
--    every row it holds. A CHECK constraint proves the bound, so ATTACH
--    does not scan the table; the constraint is added NOT VALID (a brief
--    lock) and validated in a transaction of its own, which scans the
--    table while reads and writes go on. Day partitions start at B. An
--    empty table is dropped instead: day partitions start today.
--
-- 2. The states of a notification (read, seen, archived, deleted) live off
--    the wide row: notification_marks holds explicit per-row marks (NULL:
--    not set), inbox_states a recipient's watermarks for the "all"
--    operations and a cache of their counts (internal/store/inbox.go).
--    notifications.is_read is read, never written again.
--
-- Each BEGIN … COMMIT below is its own transaction (golang-migrate sends the
-- file as one simple query; explicit transaction blocks split it).

CREATE OR REPLACE FUNCTION pg_temp.day_bound(ms bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS $$
    SELECT (substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-0000-0000-000000000000')::uuid
    FROM (SELECT lpad(to_hex(ms), 12, '0') AS h) x
$$;

-- 1. The bound B: the start of the UTC day after both the newest id and
--    tomorrow, so that instances of the previous version still writing
--    meanwhile stay below it. Brief ACCESS EXCLUSIVE lock.
BEGIN;
ALTER TABLE notifications ALTER COLUMN seq DROP IDENTITY IF EXISTS;
DO $$
DECLARE
    day_ms constant bigint := 86400000;
    top_ms bigint;
    b_ms   bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'notifications_legacy_bound') THEN
        RETURN; -- a rerun after a failure: keep the bound already proven
    END IF;
    SELECT coalesce((SELECT ('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint
                     FROM notifications ORDER BY id DESC LIMIT 1), 0) INTO top_ms;
    b_ms := (greatest(top_ms, (extract(epoch FROM now()) * 1000)::bigint + day_ms) / day_ms + 1) * day_ms;
    EXECUTE format('ALTER TABLE notifications ADD CONSTRAINT notifications_legacy_bound CHECK (id < %L::uuid) NOT VALID',
                   pg_temp.day_bound(b_ms));
END $$;
COMMIT;

-- 2. Prove it: a full scan under SHARE UPDATE EXCLUSIVE (reads and writes
--    go on).
BEGIN;
ALTER TABLE notifications VALIDATE CONSTRAINT notifications_legacy_bound;
COMMIT;

-- 3. The swap: brief ACCESS EXCLUSIVE lock, no scan, no copy.
BEGIN;
ALTER TABLE notifications RENAME TO notifications_legacy;
ALTER INDEX notifications_pkey RENAME TO notifications_legacy_pkey;
ALTER INDEX notifications_recipient_event RENAME TO notifications_legacy_recipient_event;
ALTER INDEX notifications_recipient_seq_plain RENAME TO notifications_legacy_recipient_seq;
DROP INDEX notifications_recipient_seq; -- the unique one: seq is unique by construction

CREATE TABLE notifications (
    id               uuid        NOT NULL,
    -- (transaction id << 20) | rank in the transaction, always given by the
    -- writer (internal/store/order.go): the order of cursors and replay.
    seq              bigint      NOT NULL,
    recipient_id     text        NOT NULL,
    type             text        NOT NULL,
    organizer_id     text,
    merchant_id      text,
    actor_id         text        NOT NULL,
    actor            jsonb       NOT NULL,
    content          text        NOT NULL,
    action_url       text,
    data             jsonb       NOT NULL,
    occurred_at      timestamptz NOT NULL,
    -- Read state written before issue 13; states are in notification_marks
    -- and inbox_states now.
    is_read          boolean     NOT NULL DEFAULT false,
    read_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    event_key        bytea       NOT NULL,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    CONSTRAINT notifications_pkey PRIMARY KEY (id)
) PARTITION BY RANGE (id);
CREATE INDEX notifications_recipient_seq ON notifications (recipient_id, seq) INCLUDE (is_read);
CREATE INDEX notifications_recipient_event ON notifications (recipient_id, event_key);

DO $$
DECLARE
    b uuid := substring((SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'notifications_legacy_bound')
                        FROM '''([0-9a-f-]+)''')::uuid;
    b_ms bigint := ('x' || substr(replace(b::text, '-', ''), 1, 12))::bit(48)::bigint;
    day_ms constant bigint := 86400000;
    first_ms bigint := b_ms;
    d bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM notifications_legacy) THEN
        -- The indexes match the parent's: ATTACH adopts them, builds nothing.
        EXECUTE format('ALTER TABLE notifications ATTACH PARTITION notifications_legacy FOR VALUES FROM (MINVALUE) TO (%L)', b);
        ALTER TABLE notifications_legacy DROP CONSTRAINT notifications_legacy_bound; -- the partition bound says it now
    ELSE
        -- Nothing to keep: every day gets its own partition, from today.
        DROP TABLE notifications_legacy;
        first_ms := (extract(epoch FROM now()) * 1000)::bigint / day_ms * day_ms;
    END IF;
    -- A week of day partitions; serve keeps creating them ahead, and
    -- creates the partition of any other day a record needs.
    FOR d IN 0..6 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF notifications FOR VALUES FROM (%L) TO (%L)',
                       'notifications_' || to_char(to_timestamp((first_ms + d * day_ms) / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD'),
                       pg_temp.day_bound(first_ms + d * day_ms), pg_temp.day_bound(first_ms + (d + 1) * day_ms));
    END LOOP;
END $$;

-- Explicit marks: one row per notification a recipient changed one by one
-- (or that was visible above the horizon during an "all" operation). NULL:
-- not set, the watermarks decide.
CREATE TABLE notification_marks (
    id           uuid        PRIMARY KEY,
    recipient_id text        NOT NULL,
    seq          bigint      NOT NULL,
    is_read      boolean,
    is_seen      boolean,
    is_archived  boolean,
    is_deleted   boolean,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notification_marks_recipient_seq ON notification_marks (recipient_id, seq);

-- One row per recipient who changed a state or asked for counts: the
-- watermarks of read-all, seen-all and delete-all (every notification with
-- seq <= the mark is read, seen, deleted unless a mark says otherwise), and
-- the counts of the notifications up to counts_seq, valid while
-- counts_epoch equals inbox_epoch.epoch.
CREATE TABLE inbox_states (
    recipient_id text        PRIMARY KEY,
    read_wm      bigint      NOT NULL DEFAULT 0,
    seen_wm      bigint      NOT NULL DEFAULT 0,
    deleted_wm   bigint      NOT NULL DEFAULT 0,
    counts_epoch bigint      NOT NULL DEFAULT -1,
    counts_seq   bigint      NOT NULL DEFAULT 0,
    total        bigint      NOT NULL DEFAULT 0,
    unread       bigint      NOT NULL DEFAULT 0,
    unseen       bigint      NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70); -- room for HOT updates: every state change writes its row

-- Bumped when retention removes rows: every cached count is then stale.
CREATE TABLE inbox_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL DEFAULT 0
);
INSERT INTO inbox_epoch DEFAULT VALUES;
COMMIT;
