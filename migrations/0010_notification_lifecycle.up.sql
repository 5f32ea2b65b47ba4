-- Issue 25: the life of a notification after it is created.
--
-- notifications gains the message's optional fields: event_id (the
-- producer's event, for DELETE and PATCH /events/{eventId}), expires_at
-- (when it leaves the inbox),
-- group_key with group_count and actors (a grouped item collapses the
-- events of one group_key within notifications.group_window). All are
-- nullable: no row is rewritten, and rows of before read as before.
--
-- expiry_queue holds the notifications still to expire, by time: the
-- sweeper takes what is due (FOR UPDATE SKIP LOCKED: instances share the
-- work, none takes a row twice) and removes it from the inbox in the
-- transaction that deletes it from the queue, so the queue only ever holds
-- what is still to do.
--
-- notify_requests holds the Idempotency-Key of each POST /notifications:
-- its primary key makes the same key create one notification, however
-- many instances receive it and across restarts. The request's time is
-- the identity of its rows (internal/event/id.go), so a repeat rebuilds
-- the same ids.
BEGIN;
ALTER TABLE notifications
    ADD COLUMN event_id    text,
    ADD COLUMN expires_at  timestamptz,
    ADD COLUMN group_key   text,
    ADD COLUMN group_count integer,
    ADD COLUMN actors      jsonb;
CREATE INDEX notifications_event ON notifications (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX notifications_group ON notifications (recipient_id, group_key, seq) WHERE group_key IS NOT NULL;

CREATE TABLE expiry_queue (
    id           uuid        PRIMARY KEY,
    recipient_id text        NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX expiry_queue_due ON expiry_queue (expires_at);

-- group_joins remembers each notification that joined a group's item
-- instead of becoming a row: a record delivered again (or a repeated
-- POST /notifications) finds it here and is not counted twice.
CREATE TABLE group_joins (
    id         uuid        PRIMARY KEY,
    item       uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE notify_requests (
    key        text        PRIMARY KEY,
    id         bigint      GENERATED ALWAYS AS IDENTITY,
    at         timestamptz NOT NULL,
    ids        uuid[],
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMIT;
