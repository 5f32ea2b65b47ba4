// Code generated from api/asyncapi.yaml by internal/tsgen (make types). DO NOT EDIT.
/* eslint-disable */

export type MemberChange = {
  scope: "org" | "merchant";
  scopeId: Text;
  /** add and remove change the listed members; replace makes the group exactly these (an empty list empties it). */
  op: "add" | "remove" | "replace";
  recipientIds: Text[];
};

/**
 * A non-empty string of valid UTF-8 without NUL (or U+FFFD, which stands
 * for invalid bytes) and at most 256 bytes (maxLength counts characters:
 * for non-ASCII text the byte limit comes first).
 */
export type Text = string;

/** Any JSON value with no NUL character in a key or a string (PostgreSQL cannot store it). */
export type NulFreeJSON = unknown;

/**
 * One activity. A field set to null counts as missing. Other fields are
 * ignored. A message that does not match becomes a dead letter, with the
 * reason: malformed_json (not a JSON object), missing_field, invalid_field,
 * invalid_scope, too_many_recipients; and no_recipients when an org or
 * merchant scope has no members (signalctl members).
 */
export type TActivityNotificationMessage = {
  /** Selects the template of content and actionUrl (PAYMENT_SUCCESS is built in; others get a generic one unless configured). */
  eventType: Text;
  /** org: the members of organizerId; merchant: the members of merchantId; users: recipientIds. */
  recipientScope: string & ("org" | "merchant" | "users");
  actorId: Text;
  actor: {
    id: Text;
    name: Text;
    type: Text;
  };
  organizerId: Text;
  /** Required when recipientScope is merchant. */
  merchantId?: Text;
  /** Required and non-empty when recipientScope is users; duplicates are removed, the order kept. */
  recipientIds?: Text[];
  /** Any JSON object; the notification's data, and what templates read. */
  data: Record<string, unknown> & NulFreeJSON;
  /** RFC 3339. */
  occurredAt: string;
  /** The producer's id of the event (identifier rule). DELETE /events/{eventId} retracts its notifications, PATCH /events/{eventId} updates them. */
  eventId?: Text;
  /** RFC 3339. The notifications leave every inbox, the counts and every device at this time (an observation/signal/notification/removed change, reason expired), and are never pushed after it. A message already expired makes no notification. */
  expiresAt?: string;
  /** A recipient's notifications with one groupKey within notifications.group_window collapse into one item with count and actors. */
  groupKey?: Text;
};

/**
 * A stored notification: the data of observation/signal/notification/created,
 * and an item of GET /notifications without its inbox states (openapi.yaml,
 * InboxItem: the same properties).
 */
export type NotificationCreatedPayload = {
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
};

export type ServerFrame = {
  topic: string;
  room?: Room;
  /** On the changes of a recipient's stream only: the change's position, one more than the previous change of the same stream. */
  pos?: number;
  counts?: Counts;
  /** Any JSON value. */
  data: unknown;
};

/** The recipient's counts right after the change (GET /notifications/counts). */
export type Counts = {
  unread: number;
  unseen: number;
  total: number;
};

export type SyncedData = {
  room: Room;
  /** The stream's position from which it is live. */
  pos: number;
  counts?: Counts;
  /** Reset only. expired: the changes after the cursor are no longer kept (or more than websocket.replay_limit of them); unknown: since names no notification of this recipient; ahead: since is beyond the stream's last position. */
  reason?: "expired" | "unknown" | "ahead";
};

export type RemovedData = {
  ids: string[];
  /** deleted: in a catch-up, a created change whose notification is deleted since; expired: its expiresAt passed; retracted: DELETE /events/{eventId}; revoked: the recipient left the organizer or merchant it was for (members.revoke_on_remove). */
  reason: "deleted" | "expired" | "retracted" | "revoked";
};

/** A room name. UTF-8 text of at most 512 bytes, no control characters. */
export type Room = string;

export type WelcomeData = {
  /** Works from every instance as soon as the welcome is sent. */
  clientId: string;
  rooms: Room[];
};

export type RoomData = {
  room: Room;
  /** With since, how many changes of the stream the catch-up sends. */
  replayed?: number;
};

export type ReadData = {
  ids?: string[];
  all?: true;
  count: number;
};

export type ErrorData = {
  /**
   * bad_request: not a JSON object, unknown field, missing action, binary frame;
   * unknown_action; invalid_room; forbidden: the token does not allow the room
   * (the client stays out); too_many_rooms (websocket.max_rooms); not_joined:
   * leave of a room the client is not in; invalid_since: neither a position
   * nor a notification id (a reset follows); unavailable: the server cannot
   * do it now; rate_limited: past websocket.action_rate, the action was
   * not carried out; invalid_token: refresh without a valid token (forbidden:
   * a token for another sub). The message quotes at most a short excerpt of
   * the input.
   */
  code: "bad_request" | "unknown_action" | "invalid_room" | "forbidden" | "too_many_rooms" | "not_joined" | "invalid_since" | "unavailable" | "rate_limited" | "invalid_token";
  message: string;
  room?: Room;
};

/** Which notifications changed and the new value of each state or field that changed, and only those (set them on the items named). */
export type UpdatedData = {
  /** With all: at most 1,000 of them, newest first. */
  ids: string[];
  /** read-all, seen all or delete-all: every notification the recipient had when it ran changed; apply the change to everything shown. */
  all?: true;
  isRead?: boolean;
  isSeen?: boolean;
  isArchived?: boolean;
  isDeleted?: boolean;
  /** PATCH /events/{eventId}: the items' new content. */
  content?: string;
  /** PATCH /events/{eventId}: the items' new actionUrl ("": none, null in the payload). */
  actionUrl?: string;
  /** PATCH /events/{eventId}: the items' new data. */
  data?: Record<string, unknown>;
  /** A grouped item took another event: its new count. */
  count?: number;
  /** A grouped item's latest actors, newest first. */
  actors?: {
    id: string;
    name: string;
    type: string;
  }[];
};

/** `TActivityNotificationMessage`: An activity to notify */
export type ActivityNotificationMessage = TActivityNotificationMessage;

/** `MemberChange`: A change to who belongs to an organizer or a merchant */
export type MemberChangeMessage = MemberChange;

/** `signal/system/welcome`: First frame after the upgrade */
export type WelcomeMessage = ServerFrame & {
  topic?: "signal/system/welcome";
  data?: WelcomeData;
};

/** `observation/signal/notification/created`: A new notification, after its row is committed */
export type NotificationCreatedMessage = ServerFrame & {
  topic?: "observation/signal/notification/created";
  room: string;
  data?: NotificationCreatedPayload;
};

/** `observation/signal/notification/read`: Notifications were marked read (other tabs update) */
export type NotificationReadMessage = ServerFrame & {
  topic?: "observation/signal/notification/read";
  data?: ReadData;
};

/** `signal/system/joined`: */
export type JoinedMessage = ServerFrame & {
  topic?: "signal/system/joined";
  data?: RoomData;
};

/** `signal/system/left`: */
export type LeftMessage = ServerFrame & {
  topic?: "signal/system/left";
  data?: RoomData;
};

/** `signal/system/pong`: */
export type PongMessage = ServerFrame & {
  topic?: "signal/system/pong";
  data?: Record<string, never>;
};

/** `signal/system/error`: A refused action; the client stays connected */
export type ErrorMessage = ServerFrame & {
  topic?: "signal/system/error";
  data?: ErrorData;
};

/** `api frame`: A frame sent through the REST API (broadcast, room or client send) */
export type ApiFrameMessage = ServerFrame;

/** `join`: */
export type JoinMessage = {
  action: "join";
  room: Room;
  /** Notification rooms only: resume the room's stream after this position (a number, or digits) or after this notification (its id): every later change oldest first, then synced. Joining a room one is in again with since starts its stream over. */
  since?: number | string | string;
};

/** `leave`: */
export type LeaveMessage = {
  action: "leave";
  room: Room;
};

/** `ping`: */
export type PingMessage = {
  action: "ping";
};

/** `refresh`: Replace the connection's token (same sub) before it expires; rooms the new token does not allow are left first. */
export type RefreshMessage = {
  action: "refresh";
  /** A new token for the same sub. */
  token: string;
};

/** `signal/system/refreshed`: The answer to refresh; the connection now ends at expiresAt (null without exp). */
export type RefreshedMessage = ServerFrame & {
  topic?: "signal/system/refreshed";
  data?: {
    expiresAt: string | null;
  };
};

/** `observation/signal/notification/updated`: The states of some of the recipient's notifications changed (every device updates) */
export type NotificationUpdatedMessage = ServerFrame & {
  topic?: "observation/signal/notification/updated";
  data?: UpdatedData;
};

/** `observation/signal/notification/removed`: Notifications left the inbox (expired, retracted, revoked; in a catch-up, a created change whose notification is deleted since) */
export type NotificationRemovedMessage = ServerFrame & {
  topic?: "observation/signal/notification/removed";
  data?: RemovedData;
};

/** `signal/system/synced`: Every change of the room's stream up to pos has been sent; what follows is live */
export type SyncedMessage = ServerFrame & {
  topic?: "signal/system/synced";
  data?: SyncedData;
};

/** `signal/system/reset`: The client's resume point cannot be resumed; reload the inbox and continue from pos */
export type ResetMessage = ServerFrame & {
  topic?: "signal/system/reset";
  data?: SyncedData;
};
