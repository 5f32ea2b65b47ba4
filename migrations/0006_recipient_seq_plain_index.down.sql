-- One statement: CONCURRENTLY cannot run in a transaction block.
DROP INDEX CONCURRENTLY IF EXISTS notifications_recipient_seq_plain;
