-- What a recipient does not want to be notified of (GET/PUT /preferences).
-- A recipient without a row mutes nothing; a row whose lists are all empty
-- is deleted, so a table without rows means nobody mutes anything and
-- ingest skips the lookup (internal/store/preferences.go).
CREATE TABLE recipient_preferences (
    recipient_id     text        PRIMARY KEY,
    muted_types      text[]      NOT NULL DEFAULT '{}',
    muted_organizers text[]      NOT NULL DEFAULT '{}',
    muted_merchants  text[]      NOT NULL DEFAULT '{}',
    updated_at       timestamptz NOT NULL DEFAULT now()
);
