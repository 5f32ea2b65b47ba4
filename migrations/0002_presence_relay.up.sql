-- Several serve instances share one database. Each registers itself and
-- keeps a heartbeat; the WebSocket clients and rooms it holds are listed so
-- the others can address them. These tables describe live connections only:
-- UNLOGGED (no WAL, emptied after a server crash, when every instance
-- re-registers what it holds).
CREATE UNLOGGED TABLE instances (
    id           text        PRIMARY KEY,
    http_addr    text        NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNLOGGED TABLE ws_clients (
    client_id    text        PRIMARY KEY,
    instance_id  text        NOT NULL,
    subject      text        NOT NULL,
    rooms        text[]      NOT NULL,
    connected_at timestamptz NOT NULL
);
CREATE INDEX ws_clients_instance ON ws_clients (instance_id);

-- One row per (room, instance holding at least one member of it): which
-- instances a notification must be relayed to.
CREATE UNLOGGED TABLE ws_rooms (
    room        text NOT NULL,
    instance_id text NOT NULL,
    PRIMARY KEY (room, instance_id)
);
CREATE INDEX ws_rooms_instance ON ws_rooms (instance_id);

-- Relay messages too large for a NOTIFY payload (8000 bytes) are stored
-- here and the NOTIFY carries their id. Rows are purged after minutes.
CREATE UNLOGGED TABLE relay_payloads (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
