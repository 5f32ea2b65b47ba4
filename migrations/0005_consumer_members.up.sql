-- Which serve instance each member of the Kafka consumer group is. The group
-- knows its members only by client id and address, the same for every
-- instance; status uses this to name the instance that owns a partition.
-- Live state only, like instances: UNLOGGED.
CREATE UNLOGGED TABLE consumer_members (
    member_id   text        PRIMARY KEY,
    instance_id text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consumer_members_instance ON consumer_members (instance_id);
