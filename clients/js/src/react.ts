// React bindings: hooks over a client's headless inbox store. react is an
// optional peer dependency: only this entry point imports it.
import { useEffect, useState, useSyncExternalStore } from "react";
import type { Client } from "./client.js";
import type { InboxSnapshot } from "./inbox.js";
import type { ConnectionState, Counts } from "./types.js";

export interface UseNotifications extends InboxSnapshot {
  /** the connection's state */
  state: ConnectionState;
  loadMore(): Promise<void>;
  markRead: Client["inbox"]["markRead"];
  markSeen: Client["inbox"]["markSeen"];
  markUnread: Client["inbox"]["markUnread"];
  archive: Client["inbox"]["archive"];
  unarchive: Client["inbox"]["unarchive"];
  remove: Client["inbox"]["delete"];
}

/** useNotifications renders the inbox: its items, counts and state, and the actions on it. */
export function useNotifications(client: Client): UseNotifications {
  const snap = useSyncExternalStore(client.inbox.subscribe, client.inbox.getSnapshot, client.inbox.getSnapshot);
  const state = useConnectionState(client);
  const inbox = client.inbox;
  return {
    ...snap,
    state,
    loadMore: () => inbox.loadMore(),
    markRead: (t) => inbox.markRead(t),
    markSeen: (t) => inbox.markSeen(t),
    markUnread: (t) => inbox.markUnread(t),
    archive: (t) => inbox.archive(t),
    unarchive: (t) => inbox.unarchive(t),
    remove: (t) => inbox.delete(t),
  };
}

const noCounts = null;

/** useCounts renders the badge: { unread, unseen, total }, or null until known. */
export function useCounts(client: Client): Counts | null {
  return useSyncExternalStore(
    client.inbox.subscribe,
    () => client.inbox.getSnapshot().counts,
    () => noCounts,
  );
}

/** useConnectionState renders connecting, live or offline. */
export function useConnectionState(client: Client): ConnectionState {
  const [state, setState] = useState(client.state);
  useEffect(() => {
    setState(client.state);
    return client.on("state", setState);
  }, [client]);
  return state;
}
