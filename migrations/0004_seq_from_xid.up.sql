-- Ingest no longer takes seq from the identity under one global advisory
-- lock: each writer sets seq = (its transaction id << 20) | the row's rank
-- in the transaction, and readers stop at the oldest writer still in flight
-- (internal/store/order.go). Rows stored before keep their identity values;
-- they must all be below the seq of any new row, which holds unless a
-- single transaction ever stored more than 2^20 rows.
DO $$
DECLARE
    top bigint := (SELECT coalesce(max(seq), 0) FROM notifications);
BEGIN
    IF top >= pg_current_xact_id()::text::bigint << 20 THEN
        RAISE EXCEPTION 'notifications.seq reaches % (above the seq new rows get): renumber with UPDATE notifications SET seq = seq - % before migrating', top, top;
    END IF;
END $$;
