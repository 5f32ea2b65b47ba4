-- Back to 0009: the lifecycle columns and the idempotency keys go; the
-- notifications stay (grouped ones as single items).
BEGIN;
DROP TABLE notify_requests;
DROP TABLE expiry_queue;
DROP TABLE group_joins;
DROP INDEX notifications_event;
DROP INDEX notifications_group;
ALTER TABLE notifications
    DROP COLUMN event_id,
    DROP COLUMN expires_at,
    DROP COLUMN group_key,
    DROP COLUMN group_count,
    DROP COLUMN actors;
COMMIT;
