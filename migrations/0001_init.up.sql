-- One row per (notification, recipient). The id is derived from the source
-- Kafka record and the recipient (see internal/event/id.go), so a redelivered
-- record maps to the same id and the primary key makes the insert idempotent.
CREATE TABLE notifications (
    id               uuid        PRIMARY KEY,
    -- Commit-ordered sequence: ingest takes a transaction-level advisory lock
    -- before inserting, so a larger seq is always committed later. Pagination
    -- cursors and WebSocket replay ("since") are built on it.
    seq              bigint      GENERATED ALWAYS AS IDENTITY,
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
    is_read          boolean     NOT NULL DEFAULT false,
    read_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    -- 16 bytes of SHA-256 over the event's identity (type, actor, organizer,
    -- merchant, canonical data, occurredAt): rows of one recipient with the
    -- same key are duplicates of one event (signalctl dedupe).
    event_key        bytea       NOT NULL,
    source_topic     text,
    source_partition integer,
    source_offset    bigint
);

-- A recipient's newest notifications, cursor pagination and replay.
CREATE UNIQUE INDEX notifications_recipient_seq ON notifications (recipient_id, seq);
-- Duplicate groups for dedupe: (recipient, event) with an index-only scan.
CREATE INDEX notifications_recipient_event ON notifications (recipient_id, event_key);

-- Who belongs to an organizer ("org") or a merchant ("merchant").
CREATE TABLE memberships (
    scope        text        NOT NULL CHECK (scope IN ('org', 'merchant')),
    scope_id     text        NOT NULL,
    recipient_id text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scope_id, recipient_id)
);
CREATE INDEX memberships_recipient ON memberships (recipient_id);

-- Records that could not become notifications, kept whole for replay.
CREATE TABLE dead_letters (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic            text        NOT NULL,
    partition        integer     NOT NULL,
    "offset"         bigint      NOT NULL,
    record_timestamp timestamptz NOT NULL,
    key              bytea,
    value            bytea,
    headers          jsonb       NOT NULL DEFAULT '[]',
    reason           text        NOT NULL,
    detail           text        NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    replayed_at      timestamptz,
    -- A redelivered record does not make a second dead letter.
    UNIQUE (topic, partition, "offset", record_timestamp)
);
CREATE INDEX dead_letters_pending ON dead_letters (created_at) WHERE replayed_at IS NULL;
