// Code generated from api/openapi.yaml by internal/tsgen (make types). DO NOT EDIT.
/* eslint-disable */

/** A valid API key without the scope the route needs (contract section 9). The one error body that is not `{"error":{"code","message"}}`. */
export type ScopeError = {
  error: "forbidden";
  scope: "send" | "notify" | "inbox" | "members" | "status" | "admin";
};

/** Every error answer, whatever the status. */
export type Error = {
  error: {
    code: ErrorCode;
    message: string;
  };
};

/**
 * bad_request (400), invalid_room (400), unauthorized (401), forbidden
 * (403), not_found (404), method_not_allowed (405, with Allow),
 * payload_too_large (413), unsupported_media_type (415), unavailable
 * (503), internal (500: a bug, the log has the details),
 * client_closed_request (499: the client hung up first; nobody reads
 * it, the metrics count it); WebSocket upgrades also rate_limited (429),
 * too_many_connections (429), server_full (503); a connection past
 * http.max_connections_per_ip too_many_connections (429), past
 * http.max_connections server_full (503), answered before its request
 * is read.
 * POST /notifications answers a message a Kafka record would be a
 * dead letter for with the dead letter's reason (400): malformed_json,
 * missing_field, invalid_field, invalid_scope, too_many_recipients,
 * too_large, no_recipients.
 */
export type ErrorCode = "bad_request" | "invalid_room" | "unauthorized" | "forbidden" | "not_found" | "method_not_allowed" | "payload_too_large" | "unsupported_media_type" | "unavailable" | "internal" | "rate_limited" | "too_many_connections" | "server_full" | "client_closed_request" | "malformed_json" | "missing_field" | "invalid_field" | "invalid_scope" | "too_many_recipients" | "too_large" | "no_recipients";

/** A recipient, client or scope id. UTF-8 text of at most 256 bytes. */
export type Identifier = string;

/** A room name. UTF-8 text of at most 512 bytes, no control characters. */
export type Room = string;

/** A frame topic. At most 256 bytes, no control characters. */
export type Topic = string;

export type SendBody = {
  topic: Topic;
  /** Any JSON value; null when left out. */
  data?: unknown;
};

export type Sent = {
  status: "sent";
  topic: Topic;
  room?: Room;
  clientId?: string;
};

export type ClientInfo = {
  /** The client id (the welcome frame's clientId), to send to it with POST /socket/websocket/clients/{clientId}/send. */
  clientId: string;
  /** The same as clientId, the name of earlier releases; read clientId. */
  id: string;
  /** The token's sub. */
  subject: string;
  rooms: Room[];
  /** RFC 3339, UTC, milliseconds, as every time of the API. */
  connectedSince: string;
  /** The instance holding the connection. */
  instance?: string;
};

export type ClientPage = {
  clients: ClientInfo[];
  /** Clients connected to every instance. */
  total: number;
  /** The cursor of the next page; null on the last one. */
  nextCursor: string | null;
};

export type NotificationPage = {
  items: InboxItem[];
  /** null on the last page. */
  nextCursor: string | null;
  /** The recipient's stream position read before the page: the page reflects at least every change up to it, so a client continues the stream from here (docs/sync-stream.md). */
  pos: number;
};

export type Readiness = {
  status: "ready" | "unavailable" | "draining";
  /** Each check by name (database, kafka, relay, shutdown) and "ok" or what fails. */
  checks: Record<string, string>;
};

export type Status = {
  /** The instance that answered. */
  instance: string;
  version: string;
  startedAt: string;
  ready: boolean;
  checks: Record<string, string>;
  connections: {
    /** On this instance. */
    local: number;
    /** On every instance. */
    total: number;
  };
  consumer: {
    topic: string;
    group: string;
    /** By this instance. */
    partitionsOwned: number;
    /** Every partition of the topic, whichever instance owns it. */
    lag: PartitionLag[];
    totalLag: number;
    error?: string;
  };
  deadLetters: DeadLetterStats | null;
  /** Registered instances (the length of cluster). */
  instances: number;
  cluster: InstanceStatus[];
  push?: PushStatus;
};

/** What holds this instance's pushes back. Notifications are pushed in seq order, once no transaction that writes notifications with a smaller seq is still running (docs/design.md, "The order of notifications"). */
export type PushStatus = {
  /** Transaction id below which every notification writer has ended. */
  horizon: number;
  /** Seq below which every stored notification has been pushed. */
  bound: number;
  /** Notifications held for the horizon. */
  waiting: number;
  /** Seq of the first one held. */
  oldest?: number;
  /** This instance's own transactions that stored notifications and have not yet settled. */
  expected?: number[];
  /** When the bound last moved. */
  since: string;
};

export type PartitionLag = {
  partition: number;
  /** The group's committed offset; -1 when nothing was consumed from it yet. */
  committed: number;
  end: number;
  lag: number;
  /** The owning group member (client id and address). */
  member?: string;
  /** The instance that member is. */
  instance?: string;
};

export type InstanceStatus = {
  id: string;
  httpAddr: string;
  startedAt: string;
  /** The instance that answered. */
  self: boolean;
  clients: number;
  partitions: number[];
  /** Age of its last heartbeat. */
  silentSeconds: number;
  /** Silent for more than two heartbeats (killed, frozen or cut off). */
  stale: boolean;
  /** With stale, what happens to its clients and partitions meanwhile. */
  note?: string;
};

export type DeadLetterStats = {
  pending: number;
  byReason: Record<string, number>;
  oldest: string | null;
};

export type IdsBody = {
  ids: string[];
};

/**
 * A stored notification with its inbox states: the fields up to `createdAt`
 * (and `expiresAt`, `count`, `actors` when present)
 * are the data of the WebSocket `created` frame, byte for byte
 * (NotificationCreatedPayload in asyncapi.yaml).
 */
export type InboxItem = {
  id: string;
  /** The message's eventType. */
  type: string;
  organizerId: string | null;
  /** Rendered from the eventType's template. */
  content: string;
  /** Rendered from the eventType's template; null when it renders empty. */
  actionUrl: string | null;
  /** The message's data. */
  data: Record<string, unknown>;
  isRead: boolean;
  /** When Signal stored it (not the message's occurredAt): RFC 3339, UTC, milliseconds. */
  createdAt: string;
  /** The message's expiresAt, when set: RFC 3339, UTC, milliseconds. */
  expiresAt?: string;
  /** On a grouped item (the message had a groupKey) only: how many events it collapses. */
  count?: number;
  /** On a grouped item only: the latest actors of its events, newest first, each once. */
  actors?: {
    id: string;
    name: string;
    type: string;
  }[];
  /** The badge counts what is not seen. */
  isSeen: boolean;
  isArchived: boolean;
  /** The position of the notification's created change in the recipient's stream. */
  pos: number;
};

export type NotificationCounts = {
  unread: number;
  unseen: number;
  /** Not archived, not deleted. */
  total: number;
  /** The position of the recipient's stream these counts are at. */
  pos: number;
};

/** At most 1,000 ids, or every notification of the recipient. */
export type ChangeBody = {
  ids: string[];
} | {
  all: true;
};

export type Preferences = {
  mutedTypes: string[];
  mutedOrganizers: Identifier[];
  mutedMerchants: Identifier[];
};

export type RecipientIds = {
  recipientIds: Identifier[];
};

export type MemberPage = {
  items: Identifier[];
  nextCursor: string | null;
};

export type MembersReplaced = {
  /** Members that were not in the group before. */
  added: number;
  /** Members no longer in it. */
  removed: number;
  /** The group's size now. */
  members: number;
};

export type MembersAdded = {
  /** Members that were not there yet (adding one twice is fine). */
  added: number;
};

export type MembersRemoved = {
  /** Members that were there (removing an absent one is fine: 0). */
  removed: number;
};
