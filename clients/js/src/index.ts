export { createClient, Client } from "./client.js";
export type { ClientOptions, ClientEvents, ClientStats } from "./client.js";
export type { Inbox, InboxSnapshot, Target } from "./inbox.js";
export type { Page, PageQuery } from "./rest.js";
export type { TokenProvider } from "./token.js";
export type { WebSocketLike, WebSocketConstructor } from "./connection.js";
export type { BackoffOptions } from "./backoff.js";
export { SignalError, TOPIC } from "./types.js";
export type { Change, ConnectionState, Counts, Frame, InboxItem, Notification, Preferences, UpdatedData, ErrorData, WelcomeData } from "./types.js";
