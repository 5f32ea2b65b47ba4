-- The previous version takes seq from the identity: make it continue above
-- the values written since (transaction id << 20 | rank).
SELECT setval(pg_get_serial_sequence('notifications', 'seq'), greatest((SELECT max(seq) FROM notifications), 1));
