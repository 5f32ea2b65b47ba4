// The client's public types. Payloads come from the generated spec types
// (src/gen): the sync stream's pos and counts are added here until the specs
// carry them.
import type { InboxItem as RestInboxItem, NotificationCounts, Preferences as RestPreferences } from "./gen/rest.js";
import type { NotificationCreatedPayload, UpdatedData, ErrorData, WelcomeData } from "./gen/frames.js";

export type { UpdatedData, ErrorData, WelcomeData };

/** The badge: GET /notifications/counts, and the counts carried by frames. */
export type Counts = Omit<NotificationCounts, "pos"> & { pos?: number };

/** An inbox item (GET /notifications); pos is the position of its created change. */
export type InboxItem = RestInboxItem & { pos?: number };

/** A new notification (the created frame's data). */
export type Notification = NotificationCreatedPayload & { pos?: number };

export type Preferences = RestPreferences;

/** Any server frame, as received. */
export interface Frame {
  topic: string;
  room?: string;
  data: unknown;
  /** position in the recipient's stream (sync-stream servers) */
  pos?: number;
  /** the recipient's counts right after this change */
  counts?: Counts;
}

/** A change to the inbox, applied in stream order. */
export interface Change {
  topic: string;
  /** "created", "updated", or "other" for a stream topic this client does not know */
  kind: "created" | "updated" | "other";
  pos?: number;
  counts?: Counts;
  data: unknown;
}

/** connecting: opening or catching up; live: the stream is current; offline: not connected. */
export type ConnectionState = "connecting" | "live" | "offline";

export const TOPIC = {
  welcome: "signal/system/welcome",
  joined: "signal/system/joined",
  left: "signal/system/left",
  synced: "signal/system/synced",
  reset: "signal/system/reset",
  refreshed: "signal/system/refreshed",
  pong: "signal/system/pong",
  error: "signal/system/error",
  created: "observation/signal/notification/created",
  updated: "observation/signal/notification/updated",
  removed: "observation/signal/notification/removed",
  read: "observation/signal/notification/read",
} as const;

/** SignalError is every error the client reports: a REST answer, an error frame, a close, a token failure. */
export class SignalError extends Error {
  /** the API's error code (bad_request, unauthorized…), an error frame's code, or the client's own: token, closed, network, protocol, reset */
  readonly code: string;
  /** the HTTP status of a REST error */
  readonly status?: number;
  /** the room of an error frame */
  readonly room?: string;
  /** the close code, for code "closed" */
  readonly closeCode?: number;

  constructor(code: string, message: string, extra: { status?: number; room?: string; closeCode?: number; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "SignalError";
    this.code = code;
    if (extra.status !== undefined) this.status = extra.status;
    if (extra.room !== undefined) this.room = extra.room;
    if (extra.closeCode !== undefined) this.closeCode = extra.closeCode;
  }
}
